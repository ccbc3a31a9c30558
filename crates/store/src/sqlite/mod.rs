//! The SQLite feature store (`x.sqlite` in a dataset dir): schema and file checks, the bulk
//! loader, and the reader with one read-only connection per concurrent worker.

mod direct_vfs;
mod load;
mod schema;
mod store;

pub(crate) use load::write_sqlite;
pub use schema::SQLITE_FILE;
pub use store::{SqliteRead, SqliteStore};
