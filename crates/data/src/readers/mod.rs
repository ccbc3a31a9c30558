//! Readers: each turns one input format into a `RawDataset` that `ingest` writes out.

pub mod csv;
pub mod graphbolt;
pub mod npy_dir;
pub mod npz;
pub mod ogb;
pub mod parquet;
mod parquet_guard;
pub mod table;
pub mod tu;
