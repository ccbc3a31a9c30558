//! Graph topology: the in-neighbour CSR (memory-mapped or owned), its parallel builder,
//! hub-degree capping, induced subgraphs, partitions (METIS) and degree statistics.

mod builder;
mod csr;
mod degree_cap;
mod error;
mod partition;
mod spectral;
mod stats;
mod subgraph;
mod sync_ptr;

pub use builder::{BuiltGraph, CsrBuilder, NodeId};
pub use csr::{Csr, Indices, Neighbors, Validation};
pub use degree_cap::DegreeCap;
pub use error::GraphError;
pub use partition::{Partition, PartitionMethod, PartitionQuality};
pub use spectral::{laplacian_eigenvectors, Spectrum};
pub use stats::DegreeStats;
pub use subgraph::Subgraph;

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, GraphError>;
