//! Layers and models on the tensor tape: GCN, GraphSAGE (mean) and MLP, each usable on the
//! whole graph through a `Propagation` built once from the CSR.

mod model;
mod propagation;

pub use model::{Features, Model, ModelConfig, ModelKind, NnError};
pub use propagation::Propagation;
