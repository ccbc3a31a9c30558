//! Errors of the data crate; each names the file (and line or key) at fault.

use std::path::PathBuf;

/// What can go wrong reading, writing or ingesting a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Npy(#[from] scalegnn_npy::NpyError),
    #[error(transparent)]
    Graph(#[from] scalegnn_graph::GraphError),
    /// The operating system refused an operation.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    /// A manifest is unreadable or lacks a key.
    #[error("{path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    /// A file's checksum differs from the one recorded at ingest.
    #[error("{path}: checksum mismatch (manifest says xxh3 {expected}, file has {actual}); the file changed or is corrupt (use --no-verify to skip the check)")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// A text input has a bad line.
    #[error("{path}:{line}: {reason}")]
    Parse {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    /// An input or dataset is structurally wrong (shape, range, NaN, missing part).
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    /// The output directory exists and `force` was not given.
    #[error("{path}: output directory already exists (use --force to replace it)")]
    Exists { path: PathBuf },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            err: source,
        }
    }
    pub(crate) fn invalid(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }
    pub(crate) fn parse(path: impl Into<PathBuf>, line: u64, reason: impl Into<String>) -> Self {
        DataError::Parse {
            path: path.into(),
            line,
            reason: reason.into(),
        }
    }
}
