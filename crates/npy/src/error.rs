//! Errors of the npy crate; every variant names the file it is about.

use std::path::PathBuf;

/// What can go wrong reading or writing a `.npy` file.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The operating system refused an operation on the file.
    // The OS error is part of the message and not a `source`, so a chain printed with
    // `{:#}` does not repeat it.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    /// The path is a directory, FIFO, socket or device, not a regular file.
    #[error("{path}: not a regular file ({kind})")]
    NotRegular { path: PathBuf, kind: &'static str },
    /// A name from a manifest or config that would leave its directory.
    #[error("{path}: {reason}")]
    Confinement { path: PathBuf, reason: String },
    /// The array is larger than the memory a run may use.
    #[error("{path}: {err}")]
    TooLarge {
        path: PathBuf,
        err: scalegnn_limits::LimitError,
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
            err: source,
        }
    }
}
