//! Training: the settings of a run (`RunConfig`), what it learns (`Task`), the one training
//! loop (`Trainer`) with its callbacks, resumable state, run directories, checkpoints,
//! metrics as JSON lines, and `train`, a whole command from configuration to summary.

mod callbacks;
mod checkpoint;
mod config;
mod error;
pub mod graph;
pub mod infer;
pub mod link;
mod metrics;
mod plot;
mod run;
pub mod rundir;
pub mod sagmm;
pub mod scores;
mod state;
mod task;
mod trainer;
pub mod tune;

pub use callbacks::{Callback, ModelSelection, Progress, Sagmm};
pub use checkpoint::Checkpoint;
pub use config::{ConfigError, LoaderKind, RunConfig, Selection};
pub use error::TrainError;
pub use metrics::{MetricLine, MetricsLog};
pub use plot::{plot_curves, plot_summary, PlotInfo};
pub use run::{
    full_features, load_run, node_outputs, run_task, task_of, train, Reporter, RunOptions, Setup,
    Silent, TrainOutcome,
};
pub use rundir::RunDir;
pub use state::Saver;
pub use task::{node_task, Classification, MultiLabel, Prediction, Regression, Splits, Task};
pub use trainer::{
    value, Best, EpochEnd, Evaluator, ExactEval, Outcome, RunSummary, State, Trainer,
};
