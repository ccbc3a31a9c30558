//! The input pipeline between the stores and the trainer: a [`Loader`] yields prepared
//! batches — the whole graph ([`FullGraph`]), or sampled blocks gathered through the feature
//! cache on prefetch workers ([`Sampled`]), or node pairs for link prediction
//! ([`LinkBatches`]) — planned under the memory budget ([`plan`]);
//! exact layer-wise inference ([`exact`]) and derived per-node tables ([`derived`]) live
//! beside them.

mod batch;
mod cluster;
pub mod derived;
mod error;
pub mod exact;
mod full;
mod graphs;
mod link;
mod plan;
mod sampled;

pub use batch::{GraphView, Loader, Prepared, StageTimes};
pub use cluster::ClusterBatches;
pub use error::LoaderError;
pub use full::FullGraph;
pub use graphs::{edge_features_of, GraphBatches};
pub use link::{LinkBatches, LinkSource, PairTable};
pub use plan::{plan, PlanInputs, Planned};
pub use sampled::{normalize_csr_rows, normalize_rows, Sampled};
