//! The `Sampler` trait: seeds in (nodes, edges or graphs), a `Batch` of message-flow blocks out.

use crate::{Batch, SampleError};

/// What a mini-batch is built around.
#[derive(Debug, Clone, Copy)]
pub enum SeedInput<'a> {
    /// Output nodes (node-level tasks), each at most once.
    Nodes(&'a [u32]),
    /// Edges `src[i] → dst[i]` (link prediction: positives and negatives); the batch's seeds
    /// are their distinct endpoints and `Batch::edges` says where each endpoint is.
    Edges { src: &'a [u32], dst: &'a [u32] },
    /// Whole graphs of a graph collection, by id (graph-level tasks).
    Graphs(&'a [u32]),
}

impl SeedInput<'_> {
    /// What the input holds, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            SeedInput::Nodes(_) => "nodes",
            SeedInput::Edges { .. } => "edges",
            SeedInput::Graphs(_) => "graphs",
        }
    }
}

/// Builds mini-batches; shared by reference across worker threads (hence `Send + Sync`).
pub trait Sampler: Send + Sync {
    /// Builds the batch of `input`; `seed` makes it deterministic. A sampler refuses the
    /// inputs it does not build batches for (`SampleError::Unsupported`).
    fn sample_input(&self, input: SeedInput<'_>, seed: u64) -> Result<Batch, SampleError>;

    /// Builds the batch whose output nodes are `seeds`.
    fn sample(&self, seeds: &[u32], seed: u64) -> Result<Batch, SampleError> {
        self.sample_input(SeedInput::Nodes(seeds), seed)
    }
}
