//! Errors of the train crate.

use std::path::PathBuf;

/// What can stop a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Nn(#[from] scalegnn_nn::NnError),
    #[error(transparent)]
    Npy(#[from] scalegnn_npy::NpyError),
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    /// The dataset lacks something the task needs (labels, features, a split).
    #[error("{path}: {reason}")]
    Dataset { path: PathBuf, reason: String },
    #[error(transparent)]
    Store(#[from] scalegnn_store::StoreError),
    /// The sampler refused a batch (an id out of range, a bad fan-out).
    #[error("sampling: {0}")]
    Sample(String),
    /// Settings that cannot work together.
    #[error("{0}")]
    Config(String),
    /// The loss stopped being a number.
    #[error("loss became {value} at epoch {epoch}; stopped (the best checkpoint so far is kept). Lower the learning rate or check the features for extreme values")]
    NanLoss { epoch: usize, value: f32 },
    /// A run directory scalegnn may not write into (not its own, in use, a link inside).
    #[error("{path}: {reason}")]
    RunDir { path: PathBuf, reason: String },
    /// A size or thread count a limit refuses.
    #[error(transparent)]
    Limit(#[from] scalegnn_limits::LimitError),
    #[error(transparent)]
    Loader(#[from] scalegnn_loader::LoaderError),
    #[error(transparent)]
    Data(#[from] scalegnn_data::DataError),
    /// Boxed: it is large and rare, and every `Result` of the crate carries this enum.
    #[error(transparent)]
    Derived(Box<scalegnn_loader::derived::DerivedError>),
    /// A setting that cannot be used, named by its key.
    #[error(transparent)]
    Key(#[from] crate::ConfigError),
    /// Stopped by the user (SIGINT); the state to resume from is saved.
    #[error("interrupted")]
    Interrupted,
    /// A checkpoint does not fit the model it is loaded into.
    #[error("{path}: checkpoint does not match: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            err: source,
        }
    }
}

impl From<scalegnn_loader::derived::DerivedError> for TrainError {
    fn from(e: scalegnn_loader::derived::DerivedError) -> Self {
        TrainError::Derived(Box::new(e))
    }
}
