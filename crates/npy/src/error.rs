//! Errors of the npy crate; every variant names the file it is about.

use std::path::PathBuf;

/// What can go wrong reading or writing a `.npy` file.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The operating system refused an operation on the file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with a valid `.npy` header.
    #[error("{path}: not a valid .npy file: {reason}")]
    BadHeader { path: PathBuf, reason: String },
    /// The payload is shorter or longer than the header promises.
    #[error("{path}: file is truncated or has trailing bytes: header promises {expected} data bytes, file holds {actual}")]
    SizeMismatch {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    /// The array's dtype is not the one the caller needs.
    #[error("{path}: wrong dtype: expected {expected}, found {found}")]
    WrongDType {
        path: PathBuf,
        expected: String,
        found: String,
    },
    /// The array's shape is not the one the caller needs.
    #[error("{path}: wrong shape: expected {expected}, found {found:?}")]
    WrongShape {
        path: PathBuf,
        expected: String,
        found: Vec<usize>,
    },
}

impl NpyError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        NpyError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
