//! Errors of the loader crate.

/// What can stop a pass over batches.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    #[error(transparent)]
    Store(#[from] scalegnn_store::StoreError),
    /// The sampler refused a batch (an id out of range, a bad fan-out).
    #[error("sampling: {0}")]
    Sample(String),
    /// Settings that cannot work (a budget that cannot hold a batch, no prefetch threads).
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Npy(#[from] scalegnn_npy::NpyError),
    #[error("{path}: {err}")]
    Io {
        path: std::path::PathBuf,
        err: std::io::Error,
    },
    /// The step asked to stop (it keeps its own error; see `Loader::run`).
    #[error("stopped by the step")]
    Stopped,
}
