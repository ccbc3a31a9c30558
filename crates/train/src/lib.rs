//! Training: the full-batch node-classification loop with early stopping, metrics as JSON
//! lines, and atomic, reloadable checkpoints.

mod checkpoint;
mod error;
mod inference;
mod metrics;
mod minibatch;
mod node;
mod plot;
mod rundir;
pub mod sagmm;

pub use checkpoint::Checkpoint;
pub use error::TrainError;
pub use inference::{accuracy_of, layerwise_logits};
pub use metrics::{MetricLine, MetricsLog};
pub use minibatch::{
    check_blocks, evaluate_sampled, train_minibatch, train_step, BatchSource, MiniBatchConfig,
    NodeSplits, Prepared, StageTimes,
};
pub use node::{evaluate, train_node_classification, NodeData, RunSummary, Selection, TrainConfig};
pub use plot::plot_curves;
pub use rundir::RunDir;
