//! `open_store`: the store a dataset manifest names (kind + codec), and the files each uses.

use std::path::Path;

use crate::mmap::{mmap_file, SCALE_FILE};
use crate::sqlite::SQLITE_FILE;
use crate::{Codec, FeatureStore, MmapStore, SqliteStore, StoreError};

/// Store kinds this build can open and write.
pub const KINDS: [&str; 2] = ["mmap", "sqlite"];

/// Opens the store a dataset directory's manifest points at (kind + codec), e.g. from the
/// `feature_store` field {"kind":"mmap","codec":"f32"}.
pub fn open_store(
    dir: &Path,
    kind: &str,
    codec: Codec,
) -> Result<Box<dyn FeatureStore>, StoreError> {
    match kind {
        "mmap" => Ok(Box::new(MmapStore::open(dir, codec)?)),
        "sqlite" => Ok(Box::new(SqliteStore::open(dir, codec)?)),
        other => Err(StoreError::UnknownKind(other.to_string())),
    }
}

/// Names of the files (relative to the dataset dir) a store of `kind` and `codec` consists of.
pub fn store_files(kind: &str, codec: Codec) -> Result<Vec<&'static str>, StoreError> {
    match (kind, codec) {
        ("mmap", Codec::U8) => Ok(vec![mmap_file(codec), SCALE_FILE]),
        ("mmap", _) => Ok(vec![mmap_file(codec)]),
        ("sqlite", _) => Ok(vec![SQLITE_FILE]),
        (other, _) => Err(StoreError::UnknownKind(other.to_string())),
    }
}
