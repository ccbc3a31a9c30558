//! The `Sampler` trait: seeds in, a `Batch` of message-flow blocks out.

use crate::{Batch, SampleError};

/// Builds mini-batches; shared by reference across worker threads (hence `Send + Sync`).
pub trait Sampler: Send + Sync {
    /// Builds the batch whose output nodes are `seeds`; `seed` makes it deterministic.
    fn sample(&self, seeds: &[u32], seed: u64) -> Result<Batch, SampleError>;
}
