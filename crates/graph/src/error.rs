//! Errors of the graph crate.

use std::path::PathBuf;

/// What can go wrong loading or building a graph.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A `.npy` file could not be read.
    #[error(transparent)]
    Npy(#[from] scalegnn_npy::NpyError),
    /// A CSR file holds an invalid structure.
    #[error("{path}: invalid CSR: {reason}")]
    InvalidCsr { path: PathBuf, reason: String },
    /// An edge names a node outside `0..num_nodes`.
    #[error("edge {edge}: node id {id} is out of range 0..{num_nodes}")]
    IdOutOfRange {
        edge: usize,
        id: i64,
        num_nodes: usize,
    },
    /// Source and destination lists differ in length.
    #[error("edge list has {src} sources but {dst} destinations")]
    LengthMismatch { src: usize, dst: usize },
    /// The node count (from the largest id, or given) needs more memory than may be used.
    #[error(
        "{nodes} nodes (largest node id {max_id}): {err}; node ids must run 0..N-1 \
             (`--relabel` maps sparse ids, e.g. 64-bit user ids, to 0..N-1)"
    )]
    TooManyNodes {
        nodes: u128,
        max_id: i64,
        err: scalegnn_limits::LimitError,
    },
    /// A partition cannot be computed as asked.
    #[error("partition: {0}")]
    BadPartition(String),
    /// A node set names a node twice or outside the graph.
    #[error("node set: {0}")]
    BadNodeSet(String),
}
