//! Errors of the sample crate.

/// What can go wrong building a sampler or a mini-batch.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SampleError {
    /// A seed names a node outside the graph.
    #[error("seed {position}: node id {id} is out of range 0..{num_nodes}")]
    SeedOutOfRange {
        position: usize,
        id: u32,
        num_nodes: usize,
    },
    /// A node appears twice among the seeds.
    #[error("seed node {id} appears twice (positions {first} and {second})")]
    DuplicateSeed {
        id: u32,
        first: usize,
        second: usize,
    },
    /// No hop was given.
    #[error("fanouts is empty: give one fan-out per layer (-1 = all neighbours)")]
    EmptyFanouts,
    /// A fan-out is neither -1 nor a count.
    #[error("fanouts[{hop}] = {value}: expected -1 (all neighbours) or a count >= 0")]
    InvalidFanout { hop: usize, value: i64 },
    /// The graph has more nodes than 32-bit ids can name.
    #[error(
        "graph has {num_nodes} nodes; the sampler needs node ids below {}",
        u32::MAX
    )]
    TooManyNodes { num_nodes: usize },
    /// The sampler does not build batches of this kind of seed input.
    #[error("the {sampler} sampler does not build batches of {input}")]
    Unsupported {
        sampler: &'static str,
        input: &'static str,
    },
    /// An edge seed list whose two sides differ in length.
    #[error("edge seeds: {src} sources but {dst} destinations")]
    EdgeLengths { src: usize, dst: usize },
    /// The CSR holds a row or index that is not valid (it was opened unchecked).
    #[error("corrupt graph at node {node}: {reason}")]
    CorruptGraph { node: u32, reason: String },
}
