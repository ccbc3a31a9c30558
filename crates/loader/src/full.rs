//! `FullGraph`: the loader of full-batch training — one batch, the whole graph, features
//! held in memory.

use std::sync::Arc;
use std::time::Instant;

use scalegnn_graph::Csr;
use scalegnn_nn::{Features, GraphCtx};

use crate::{GraphView, Loader, LoaderError, Prepared, StageTimes};

/// One batch per pass: every node, the items' rows picked from the output.
pub struct FullGraph<'g> {
    graph: &'g Csr,
    x: Features,
    /// The propagation matrices are built once and shared by every pass.
    ctx: GraphCtx<'g>,
}

impl<'g> FullGraph<'g> {
    /// A loader over `graph` with node features `x` (`[N, F]`).
    pub fn new(graph: &'g Csr, x: Features) -> FullGraph<'g> {
        FullGraph {
            graph,
            x,
            ctx: GraphCtx::new(graph),
        }
    }

    /// The whole graph as a collection of graphs (graph-level models read one row per graph;
    /// items are then graph ids).
    pub fn with_segments(mut self, segments: Arc<scalegnn_nn::Segments>) -> FullGraph<'g> {
        self.ctx.set_segments(segments);
        self
    }

    /// Attaches the whole graph's edge features (models that read them, GINE).
    pub fn with_edge_features(mut self, e: Arc<scalegnn_nn::EdgeFeatures>) -> FullGraph<'g> {
        self.ctx.set_edge_features(e);
        self
    }

    /// The graph view every pass uses (its propagation matrices are built once).
    pub fn graph(&self) -> &GraphCtx<'g> {
        &self.ctx
    }

    /// The node features.
    pub fn features(&self) -> &Features {
        &self.x
    }

    /// The CSR.
    pub fn csr(&self) -> &'g Csr {
        self.graph
    }

    /// Runs `step` on the one batch of the whole graph whose items are `items`, read from
    /// output `rows`, with the `targets` the batch carries (link prediction's labels).
    pub fn run_rows(
        &self,
        items: &[u32],
        rows: Vec<usize>,
        targets: Option<Vec<f32>>,
        step: &mut dyn FnMut(&Prepared) -> Result<(), LoaderError>,
    ) -> Result<StageTimes, LoaderError> {
        let t0 = Instant::now();
        let p = Prepared {
            graph: GraphView::Borrowed(&self.ctx),
            x: self.x.clone(),
            items: Arc::new(items.to_vec()),
            rows: Some(Arc::new(rows)),
            targets: targets.map(Arc::new),
            times: StageTimes {
                batches: 1,
                seeds: items.len(),
                ..Default::default()
            },
        };
        step(&p)?;
        let wall = t0.elapsed().as_secs_f64() * 1e3;
        Ok(StageTimes {
            compute_ms: wall,
            wall_ms: wall,
            ..p.times
        })
    }
}

impl Loader for FullGraph<'_> {
    fn run(
        &self,
        items: &[u32],
        _seed: u64,
        step: &mut dyn FnMut(&Prepared) -> Result<(), LoaderError>,
    ) -> Result<StageTimes, LoaderError> {
        let rows = items.iter().map(|&i| i as usize).collect();
        self.run_rows(items, rows, None, step)
    }

    fn whole_graph(&self) -> bool {
        true
    }
}
