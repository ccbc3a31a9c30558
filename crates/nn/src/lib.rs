//! Layers and models on the tensor tape: one file per architecture under `arch/`, the
//! propagation matrices they share (`GraphCtx`), and the `Model` that ties them together.

pub mod arch;
mod edge_features;
mod features;
mod model;
pub mod moe;
mod propagation;
pub mod readout;
pub mod registry;
mod virtual_node;

pub use edge_features::EdgeFeatures;
pub use features::{Features, Input};
pub use model::{Architecture, Model, ModelConfig, ModelOutput, NnError, SizeShape};
pub use propagation::{GraphCtx, Propagation};
pub use readout::{Pool, Segments};
pub use registry::ModelKind;
pub use virtual_node::VirtualNode;
