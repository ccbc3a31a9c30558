//! What a loader hands the trainer: a prepared batch (graph view, input features, which
//! output rows are the batch's items) and where a pass's time went.

use std::sync::Arc;

use scalegnn_nn::{Features, GraphCtx};

use serde::Serialize;

/// The graph of a batch: borrowed from the loader (the whole graph, whose propagation
/// matrices are built once for every pass) or owned (a sampled batch's blocks).
pub enum GraphView<'g> {
    Borrowed(&'g GraphCtx<'g>),
    // Boxed: a batch moves through the prefetch queue, and a pointer moves cheaply.
    Owned(Box<GraphCtx<'g>>),
}

impl<'g> std::ops::Deref for GraphView<'g> {
    type Target = GraphCtx<'g>;
    fn deref(&self) -> &GraphCtx<'g> {
        match self {
            GraphView::Borrowed(g) => g,
            GraphView::Owned(g) => g,
        }
    }
}

/// A batch ready for the model.
pub struct Prepared<'g> {
    /// The whole graph, or the batch's sampled blocks.
    pub graph: GraphView<'g>,
    /// Input features of the graph's (or the batch's) nodes.
    pub x: Features,
    /// Global ids of the batch's items (its seeds), in output-row order of `rows`.
    pub items: Arc<Vec<u32>>,
    /// The output rows holding the items, in order (row ids on the whole graph; `None`: the
    /// first `items.len()` rows, as on a sampled batch).
    pub rows: Option<Arc<Vec<usize>>>,
    /// Targets the batch itself carries, one per scored row pair (link prediction: 1 for
    /// each positive pair, 0 for each negative drawn for the batch); None: the task's own.
    pub targets: Option<Arc<Vec<f32>>>,
    pub times: StageTimes,
}

/// Where one pass's time went, in milliseconds, and what it moved.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StageTimes {
    pub batches: usize,
    pub seeds: usize,
    /// Worker: neighbour sampling.
    pub sample_ms: f64,
    /// Worker: feature gather from the store (decode included).
    pub fetch_ms: f64,
    /// Worker: building the blocks' propagation matrices.
    pub prepare_ms: f64,
    /// Trainer: the step (forward, backward, optimizer).
    pub compute_ms: f64,
    /// Trainer: waiting for the next prepared batch.
    pub wait_ms: f64,
    /// Wall time of the whole pass.
    pub wall_ms: f64,
    pub sampled_nodes: usize,
    pub sampled_edges: usize,
    pub bytes_read: u64,
}

impl StageTimes {
    /// Seeds per second of wall time.
    pub fn seeds_per_s(&self) -> f64 {
        self.seeds as f64 / (self.wall_ms / 1e3).max(1e-9)
    }

    /// Adds the per-batch figures of `o`.
    pub fn add(&mut self, o: &StageTimes) {
        self.batches += o.batches;
        self.seeds += o.seeds;
        self.sample_ms += o.sample_ms;
        self.fetch_ms += o.fetch_ms;
        self.prepare_ms += o.prepare_ms;
        self.compute_ms += o.compute_ms;
        self.wait_ms += o.wait_ms;
        self.wall_ms += o.wall_ms;
        self.sampled_nodes += o.sampled_nodes;
        self.sampled_edges += o.sampled_edges;
        self.bytes_read += o.bytes_read;
    }
}

/// A source of prepared batches the trainer runs steps on.
pub trait Loader: Send + Sync {
    /// Runs `step` on every batch covering `items` (in this order); `seed` makes sampling
    /// deterministic. A step that fails returns `Err(LoaderError::Stopped)` after keeping its
    /// own error, and the pass ends. Returns the pass's stage times.
    fn run(
        &self,
        items: &[u32],
        seed: u64,
        step: &mut dyn FnMut(&Prepared) -> Result<(), crate::LoaderError>,
    ) -> Result<StageTimes, crate::LoaderError>;

    /// True when every batch is the whole graph: evaluating more items in one pass costs
    /// nothing more.
    fn whole_graph(&self) -> bool;

    /// The feature store batches are gathered from (its cache statistics), if any.
    fn store(&self) -> Option<&dyn scalegnn_store::FeatureStore> {
        None
    }
}
