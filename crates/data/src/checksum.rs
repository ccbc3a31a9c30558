//! File checksums recorded in the manifest: xxh3-64 (hashes ~10 GB/s, so verifying a 1.5 GB
//! dataset on open costs a fraction of a second from the page cache).

use std::path::Path;

use crate::{DataError, Result};

/// The xxh3-64 hash of a file's bytes as 16 hex digits.
pub fn xxh3_file(path: &Path) -> Result<String> {
    let f = scalegnn_npy::open_regular(path)?;
    let len = f.metadata().map_err(|e| DataError::io(path, e))?.len();
    let h = if len == 0 {
        xxhash_rust::xxh3::xxh3_64(&[])
    } else {
        // SAFETY: read-only map of a file no scalegnn process writes in place.
        let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| DataError::io(path, e))?;
        xxhash_rust::xxh3::xxh3_64(&map)
    };
    Ok(format!("{h:016x}"))
}
