//! Mini-batch construction: the `Sampler` trait over `SeedInput` (nodes, edges, graphs), the
//! `Batch`/`Block` message-flow layers it returns, and `NeighborSampler` (per-hop fan-outs, PyG's `NeighborLoader` semantics), and
//! `ClusterSampler` (ClusterGCN's induced subgraphs) and `NegativeSampler` (link prediction's
//! negative pairs).

mod block;
mod cluster;
mod error;
mod id_map;
mod negative;
mod neighbor;
mod pick;
mod prefetch;
mod sampler;

pub use block::{Batch, Block, Csc, EdgeSeeds};
pub use cluster::ClusterSampler;
pub use error::SampleError;
pub use negative::{NegativeKind, NegativeSampler};
pub use neighbor::NeighborSampler;
pub use sampler::{Sampler, SeedInput};

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, SampleError>;
