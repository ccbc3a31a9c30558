//! Node features off the heap: the `FeatureStore` trait, its mmap (`.npy`), SQLite,
//! PostgreSQL and sparse (CSR) stores, the f32/f16/u8 codecs, and `write_store` / `open_store` for dataset dirs.

mod budget;
mod cache;
mod codec;
mod direct;
mod error;
mod feature_store;
mod gather;
mod mmap;
mod open;
mod postgres;
mod scale;
mod source;
mod sparse;
mod sqlite;
mod write;

#[doc(hidden)]
pub mod conformance;

pub use self::postgres::{
    drop_postgres_store, PostgresStore, RetryPolicy, PG_URL_ENV, POSTGRES_FILE,
};
pub use budget::{BudgetError, BudgetInputs, BudgetPlan, MemoryBudget, DEFAULT_HUB_SHARE};
#[doc(hidden)]
pub use cache::sim;
pub use cache::{hub_nodes, top_nodes, CacheStats, FeatureCache};
pub use codec::Codec;
pub use error::StoreError;
pub use feature_store::FeatureStore;
pub use mmap::{mmap_file, MmapStore, SCALE_FILE};
pub use open::{open_store, open_store_with, store_files, StoreOptions, KINDS};
pub use scale::U8Scale;
pub use source::{ChunkFn, IterRows, NpyRows, RowSource, SliceRows, StoreRows};
pub use sparse::{SparseStore, SPARSE_FILES};
pub use sqlite::{SqliteRead, SqliteStore, SQLITE_FILE};
pub use write::{write_store, write_store_with};
