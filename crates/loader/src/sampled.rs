//! `Sampled`: mini-batches of sampled neighbourhoods. A worker samples batch N+1 and gathers
//! its features from the feature store while batch N trains (a bounded queue); feature
//! buffers come back from the trainer and are reused, so the steady state allocates no new
//! feature memory.

use std::sync::mpsc::{channel, sync_channel};
use std::sync::Arc;
use std::time::Instant;

use scalegnn_graph::Csr;
use scalegnn_nn::{Features, GraphCtx, ModelKind};
use scalegnn_sample::{EdgeSeeds, Sampler, SeedInput};
use scalegnn_store::FeatureStore;
use scalegnn_tensor::Matrix;

use crate::{GraphView, Loader, LoaderError, Prepared, StageTimes};

/// Prepares the batch of a chunk of items: `(chunk, its index, a recycled feature buffer)`.
pub type MakeBatch<'f, 'a> =
    dyn Fn(&[u32], usize, Option<Matrix>) -> Result<Prepared<'a>, LoaderError> + Sync + 'f;

/// Neighbour-sampled batches of `batch_size` items, prefetched `depth` ahead.
pub struct Sampled<'a> {
    graph: &'a Csr,
    store: &'a dyn FeatureStore,
    sampler: &'a dyn Sampler,
    batch_size: usize,
    depth: usize,
    kind: ModelKind,
    /// SAGMM's gate input per node; each batch gathers its seeds' rows.
    gate: Option<&'a dyn FeatureStore>,
    /// Divide each gathered row by its sum clamped at 1 (as the whole-graph features are).
    normalize: bool,
    /// The prefetch worker's own pool (sampling and feature gather), apart from the compute
    /// pool so a gather blocked on disk never holds a compute thread: sharing one pool,
    /// out-of-core page faults quadrupled the products compute time.
    pool: rayon::ThreadPool,
}

impl<'a> Sampled<'a> {
    /// Batches of `batch_size` items sampled by `sampler`, features from `store`, built for
    /// model `kind`, prefetched `depth` ahead on `io_threads` threads.
    #[allow(clippy::too_many_arguments)] // the pipeline's parts, each distinct
    pub fn new(
        graph: &'a Csr,
        store: &'a dyn FeatureStore,
        sampler: &'a dyn Sampler,
        batch_size: usize,
        depth: usize,
        io_threads: usize,
        kind: ModelKind,
        gate: Option<&'a dyn FeatureStore>,
    ) -> Result<Sampled<'a>, LoaderError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(io_threads.max(1))
            .thread_name(|i| format!("prefetch-{i}"))
            .build()
            .map_err(|e| LoaderError::Config(format!("starting the prefetch threads: {e}")))?;
        Ok(Sampled {
            graph,
            store,
            sampler,
            batch_size: batch_size.max(1),
            depth: depth.max(1),
            kind,
            gate,
            normalize: false,
            pool,
        })
    }

    /// Row-normalises every gathered feature row (PyG's NormalizeFeatures, per batch).
    pub fn normalized(mut self, yes: bool) -> Sampled<'a> {
        self.normalize = yes;
        self
    }

    /// Samples the batch of `input`, gathers its features into a recycled buffer and builds
    /// the propagation matrices the model will ask for. Its items are the seed nodes; for
    /// edge input, `Batch::edges` (returned beside) says where each endpoint is. The edges
    /// between the endpoints of `exclude` are left out of the blocks.
    pub fn prepare(
        &self,
        input: SeedInput<'_>,
        seed: u64,
        recycled: Option<Matrix>,
        exclude: &[[u32; 2]],
    ) -> Result<(Prepared<'a>, Option<EdgeSeeds>), LoaderError> {
        let t0 = Instant::now();
        let mut batch = self
            .sampler
            .sample_input(input, seed)
            .map_err(|e| LoaderError::Sample(e.to_string()))?;
        batch.remove_pairs(exclude);
        let seeds_at = batch.edges.take();
        let t1 = Instant::now();
        let (n, dim) = (batch.nodes.len(), self.store.dim());
        let mut buf = recycled.unwrap_or_else(|| Matrix::zeros(0, 0));
        buf.rows = n;
        buf.cols = dim;
        // Every element is overwritten by the gather; resizing only grows the buffer.
        buf.data.resize(n * dim, 0.0);
        self.store.gather(&batch.nodes, &mut buf.data)?;
        if self.normalize {
            normalize_rows(&mut buf);
        }
        let t2 = Instant::now();
        let (num_seeds, edges) = (batch.num_seeds, batch.num_edges());
        let items = Arc::new(batch.nodes[..num_seeds].to_vec());
        let mut graph = GraphCtx::from_batch(self.graph, batch);
        if let Some(g) = self.gate {
            let mut m = Matrix::zeros(num_seeds, g.dim());
            g.gather(&items, &mut m.data)?;
            graph = graph.with_gate_input(Arc::new(m));
        }
        graph.prepare(self.kind);
        let t3 = Instant::now();
        let p = Prepared {
            graph: GraphView::Owned(Box::new(graph)),
            x: Features::Dense(Arc::new(buf)),
            items,
            rows: None,
            targets: None,
            times: StageTimes {
                batches: 1,
                seeds: num_seeds,
                sample_ms: (t1 - t0).as_secs_f64() * 1e3,
                fetch_ms: (t2 - t1).as_secs_f64() * 1e3,
                prepare_ms: (t3 - t2).as_secs_f64() * 1e3,
                sampled_nodes: n,
                sampled_edges: edges,
                ..StageTimes::default()
            },
        };
        Ok((p, seeds_at))
    }

    /// Runs `step` on the batches `make` prepares from `items` cut into `batch` items each
    /// (`make(chunk, k, recycled buffer)`), prepared on the prefetch pool `depth` ahead.
    pub fn run_chunks(
        &self,
        items: &[u32],
        batch: usize,
        make: &MakeBatch<'_, 'a>,
        step: &mut dyn FnMut(&Prepared) -> Result<(), LoaderError>,
    ) -> Result<StageTimes, LoaderError> {
        let t_start = Instant::now();
        let bytes0 = self.store.bytes_read();
        let mut total = StageTimes::default();
        std::thread::scope(|s| -> Result<(), LoaderError> {
            let (tx, rx) = sync_channel::<Result<Prepared, LoaderError>>(self.depth);
            let (free_tx, free_rx) = channel::<Matrix>();
            s.spawn(move || {
                for (k, chunk) in items.chunks(batch.max(1)).enumerate() {
                    let recycled = free_rx.try_recv().ok();
                    let prepared = self.pool.install(|| make(chunk, k, recycled));
                    let failed = prepared.is_err();
                    if tx.send(prepared).is_err() || failed {
                        break;
                    }
                }
            });
            loop {
                let t0 = Instant::now();
                let Ok(prepared) = rx.recv() else { break };
                let wait = t0.elapsed().as_secs_f64() * 1e3;
                let mut p = prepared?;
                let t1 = Instant::now();
                let times = std::mem::take(&mut p.times);
                step(&p)?;
                total.add(&StageTimes {
                    compute_ms: t1.elapsed().as_secs_f64() * 1e3,
                    wait_ms: wait,
                    ..times
                });
                // The worker may have finished; a closed channel only means no reuse.
                let _ = free_tx.send(p.x.into_buffer());
            }
            Ok(())
        })?;
        total.wall_ms = t_start.elapsed().as_secs_f64() * 1e3;
        total.bytes_read = self.store.bytes_read() - bytes0;
        Ok(total)
    }
}

impl Loader for Sampled<'_> {
    fn run(
        &self,
        items: &[u32],
        seed: u64,
        step: &mut dyn FnMut(&Prepared) -> Result<(), LoaderError>,
    ) -> Result<StageTimes, LoaderError> {
        let make = |chunk: &[u32], k: usize, recycled: Option<Matrix>| {
            let s = chunk_seed(seed, k);
            Ok(self.prepare(SeedInput::Nodes(chunk), s, recycled, &[])?.0)
        };
        self.run_chunks(items, self.batch_size, &make, step)
    }

    fn whole_graph(&self) -> bool {
        false
    }

    fn store(&self) -> Option<&dyn FeatureStore> {
        Some(self.store)
    }
}

/// The sampling seed of a pass's `k`-th batch: every loader derives it the same way, so a
/// batch's draw depends on the pass seed and its position only.
pub(crate) fn chunk_seed(seed: u64, k: usize) -> u64 {
    seed ^ ((k as u64) << 1)
}

/// Divides each row by its sum clamped below at 1: exactly PyG's NormalizeFeatures.
pub fn normalize_rows(m: &mut Matrix) {
    use rayon::prelude::*;
    m.data.par_chunks_mut(m.cols.max(1)).for_each(|r| {
        let s = r.iter().sum::<f32>().max(1.0);
        r.iter_mut().for_each(|v| *v /= s);
    });
}

/// [`normalize_rows`] for rows stored as CSR values (`indptr` row pointers into `values`):
/// the same rule, so sparse and dense features train identically.
pub fn normalize_csr_rows(indptr: &[usize], values: &mut [f32]) {
    for r in indptr.windows(2) {
        let row = &mut values[r[0]..r[1]];
        let s = row.iter().sum::<f32>().max(1.0);
        row.iter_mut().for_each(|v| *v /= s);
    }
}
