//! Scratch files of f32 rows for the streaming build: unlinked as soon as they are created
//! (a killed build leaves nothing behind), read and written with positioned I/O rather than
//! through a map, so their pages are page cache the kernel may drop, never resident memory
//! of the process (a writable map's dirty pages count in its RSS until written back).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::DerivedError;

/// An unlinked file of rows of `width` f32 values.
pub(crate) struct Scratch {
    file: File,
    path: PathBuf,
    width: usize,
}

/// The bytes of an f32 slice.
pub(crate) fn as_bytes(v: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding; any f32 is 4 valid bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// The bytes of an f32 slice, writable.
fn as_bytes_mut(v: &mut [f32]) -> &mut [u8] {
    // SAFETY: as above, and every bit pattern is a valid f32, so whatever is read is too.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

pub(crate) fn io(path: &Path, err: std::io::Error) -> DerivedError {
    DerivedError::Io {
        path: path.to_path_buf(),
        err,
    }
}

impl Scratch {
    /// Creates `path` (never through a planted link: `create_new`) and unlinks it at once.
    pub(crate) fn create(path: &Path, width: usize) -> Result<Scratch, DerivedError> {
        let _ = std::fs::remove_file(path);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| io(path, e))?;
        std::fs::remove_file(path).map_err(|e| io(path, e))?;
        Ok(Scratch {
            file,
            path: path.to_path_buf(),
            width,
        })
    }

    /// Writes `rows` (whole rows) as rows `first..`.
    pub(crate) fn write_rows(&self, first: usize, rows: &[f32]) -> Result<(), DerivedError> {
        self.file
            .write_all_at(as_bytes(rows), (first * self.width * 4) as u64)
            .map_err(|e| io(&self.path, e))
    }

    /// Reads rows `first..` into `out` (whole rows).
    pub(crate) fn read_rows(&self, first: usize, out: &mut [f32]) -> Result<(), DerivedError> {
        self.file
            .read_exact_at(as_bytes_mut(out), (first * self.width * 4) as u64)
            .map_err(|e| io(&self.path, e))
    }
}
