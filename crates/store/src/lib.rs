//! Node features off the heap: the `FeatureStore` trait, its mmap (`.npy`) and SQLite stores,
//! the f32/f16/u8 codecs, and `write_store` / `open_store` for dataset directories.

mod codec;
mod error;
mod feature_store;
mod gather;
mod mmap;
mod open;
mod scale;
mod source;
mod sqlite;
mod write;

#[doc(hidden)]
pub mod conformance;

pub use codec::Codec;
pub use error::StoreError;
pub use feature_store::FeatureStore;
pub use mmap::{mmap_file, MmapStore, SCALE_FILE};
pub use open::{open_store, store_files, KINDS};
pub use scale::U8Scale;
pub use source::{ChunkFn, IterRows, NpyRows, RowSource, SliceRows};
pub use sqlite::{SqliteRead, SqliteStore, SQLITE_FILE};
pub use write::write_store;
