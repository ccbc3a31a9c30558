//! Dataset directories (manifest + `.npy` arrays): the on-disk contract, its checksummed
//! atomic writer, the readers that turn other formats into it, and the synthetic generator.

mod checksum;
mod dataset;
mod error;
pub mod export;
mod ingest;
pub mod link;
mod manifest;
pub mod partition;
mod progress;
pub mod readers;
mod split;
pub mod synth;
mod writer;

pub use checksum::xxh3_file;
pub use dataset::{Dataset, DatasetInfo, FileInfo, Labels, OpenOptions};
pub use error::DataError;
pub use ingest::{
    degree_profile, ingest, IngestOptions, RawDataset, RawEdgeAttr, RawFeatures, RawGraphs,
    RawLabels, RawSplits, DEGREE_PROFILE,
};
pub use link::{LinkSplit, LinkSplitInfo, LinkSplitSpec};
pub use manifest::{FeatureStoreInfo, FileEntry, IngestStats, Manifest, Task, FORMAT_VERSION};
pub use progress::{NoProgress, Progress};
pub use split::SplitSpec;
pub use writer::DatasetWriter;

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, DataError>;
