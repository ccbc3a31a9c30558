//! The PostgreSQL feature store: one table per dataset on a server, found through
//! `x.postgres.json` in the dataset dir; the binary-COPY bulk loader and the pooled reader.

mod conn;
mod load;
mod schema;
mod store;

pub(crate) use conn::url_for_write;
pub use conn::{RetryPolicy, PG_URL_ENV};
pub use load::drop_postgres_store;
pub(crate) use load::write_postgres;
pub use schema::POSTGRES_FILE;
pub use store::PostgresStore;
