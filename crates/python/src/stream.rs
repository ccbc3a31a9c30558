//! Neighbour-sampled mini-batches in PyG's layout, made on a worker thread from scalegnn's
//! sampler and feature store (out of core: rows are gathered per batch), for
//! `scalegnn.pyg.NeighborLoader`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use scalegnn_data::{Dataset, Labels, OpenOptions};
use scalegnn_sample::{Batch, NegativeKind, NegativeSampler, NeighborSampler, Sampler};
use scalegnn_store::{open_store_with, Codec, FeatureStore, StoreOptions};

use crate::{err, node_rows};

/// The dataset at `path`, opened with the interpreter released (`verify`: checksums and
/// ranges checked).
fn open_dataset(py: Python<'_>, path: &std::path::Path, verify: bool) -> PyResult<Dataset> {
    py.detach(|| Dataset::open(path, OpenOptions { verify }).map_err(|e| e.to_string()))
        .map_err(err)
}

/// The feature store the manifest of `ds` names, with its codec.
fn dataset_store(ds: &Dataset) -> Result<Box<dyn FeatureStore>, String> {
    let info = &ds.manifest.feature_store;
    let codec = info.codec.parse::<Codec>().map_err(|e| e.to_string())?;
    open_store_with(&ds.dir, &info.kind, codec, &StoreOptions::default())
        .map_err(|e| format!("{}: {e}", ds.dir.display()))
}

/// One batch as PyG's `NeighborLoader` gives it: nodes seeds first then each hop's new
/// nodes, edges (neighbour → node) in batch-local ids, hop 1 first.
struct PygBatch {
    n_id: Vec<i64>,
    /// Row 0 (sources) then row 1 (destinations), `2 × edges`.
    edge_index: Vec<i64>,
    num_sampled_nodes: Vec<i64>,
    num_sampled_edges: Vec<i64>,
    batch_size: usize,
    /// `[nodes, dim]` rows of the feature store, when asked for.
    x: Option<(Vec<f32>, usize)>,
    y: Option<LabelRows>,
    /// The layer-wise form: per block, input layer first, its edges (`2 × e`, local source
    /// then local destination ids) and `(sources, destinations)`.
    blocks: Option<Vec<(Vec<i64>, usize, usize)>>,
    /// Link batches: the scored pairs in batch-local ids (`2 × pairs`) and their labels
    /// (1 for the given pairs, 0 for the negatives drawn for the batch).
    link: Option<(Vec<i64>, Vec<f32>)>,
}

/// Each block of `b` (input layer first) as PyG's layer-wise `NeighborSampler` gives it.
fn to_blocks(b: &Batch) -> Vec<(Vec<i64>, usize, usize)> {
    b.blocks
        .iter()
        .map(|k| {
            let e = k.indices.len();
            let mut ei = Vec::with_capacity(2 * e);
            ei.extend(k.indices.iter().map(|&s| s as i64));
            for d in 0..k.num_dst {
                ei.extend(std::iter::repeat_n(d as i64, k.indptr[d + 1] - k.indptr[d]));
            }
            (ei, k.num_src, k.num_dst)
        })
        .collect()
}

/// The batch's nodes' labels.
enum LabelRows {
    Classes(Vec<i64>),
    Targets(Vec<f32>, usize),
}

/// The blocks of `b` (input layer first) as PyG's flat edge list and per-hop counts. The
/// prefix property of `Batch::nodes` makes every block's local ids positions in `nodes`.
/// (Converting here costs one pass over the edges; a sampler emitting PyG's layout directly
/// would save it.)
fn to_pyg(b: &Batch) -> (Vec<i64>, Vec<i64>, Vec<i64>, Vec<i64>) {
    let edges: usize = b.blocks.iter().map(|k| k.indices.len()).sum();
    let (mut src, mut dst) = (Vec::with_capacity(edges), Vec::with_capacity(edges));
    let mut nodes_per_hop = vec![b.num_seeds as i64];
    let mut edges_per_hop = Vec::with_capacity(b.blocks.len());
    let mut seen = b.num_seeds;
    // A block's dst rows are every node of the hops before it (message-flow graphs): the
    // rows already given their in-edges by an earlier hop are skipped, so each node's
    // sampled in-edges appear once, as in PyG's subgraph.
    let mut done = 0;
    for block in b.blocks.iter().rev() {
        let before = src.len();
        for d in done..block.num_dst {
            for &s in &block.indices[block.indptr[d]..block.indptr[d + 1]] {
                src.push(s as i64);
                dst.push(d as i64);
            }
        }
        done = block.num_dst;
        edges_per_hop.push((src.len() - before) as i64);
        nodes_per_hop.push((block.num_src - seen) as i64);
        seen = block.num_src;
    }
    src.extend_from_slice(&dst);
    let n_id = b.nodes.iter().map(|&v| v as i64).collect();
    (n_id, src, nodes_per_hop, edges_per_hop)
}

/// What the worker thread needs besides the dataset.
struct Plan {
    seeds: Vec<u32>,
    fanouts: Vec<i64>,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    features: bool,
    labels: bool,
    /// Give per-block edges (the layer-wise form) instead of one edge list.
    blocks: bool,
    /// Link batches: the positive pairs (`seeds` then holds their indices) and the negatives
    /// drawn per positive.
    link: Option<LinkPlan>,
}

/// What a link pass needs besides the node plan.
struct LinkPlan {
    src: Vec<u32>,
    dst: Vec<u32>,
    /// Each pair's label when the caller gives them (fixed evaluation pairs: no negatives
    /// are drawn); else every pair is a positive.
    labels: Option<Vec<f32>>,
    negatives: NegativeSampler,
    ratio: f64,
    /// The dataset's graph without its validation and test edges, when it has an edge
    /// split: messages never pass over a held-out edge.
    graph: Option<scalegnn_graph::Csr>,
}

/// Samples and gathers every batch of `plan` in order, sending each (or the first error);
/// stops when `stop` is set or the receiver is gone.
fn produce(ds: &Dataset, plan: Plan, tx: SyncSender<Result<PygBatch, String>>, stop: &AtomicBool) {
    let run = || -> Result<(), String> {
        let graph = plan
            .link
            .as_ref()
            .and_then(|l| l.graph.as_ref())
            .unwrap_or(&ds.graph);
        let sampler = NeighborSampler::new(graph, &plan.fanouts).map_err(|e| e.to_string())?;
        let store = (plan.features && ds.manifest.num_features > 0)
            .then(|| dataset_store(ds))
            .transpose()?;
        let mut order = plan.seeds.clone();
        if plan.shuffle {
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(plan.seed);
            order.shuffle(&mut rng);
        }
        for (k, seeds) in order.chunks(plan.batch_size.max(1)).enumerate() {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            // One sampling seed per batch, from the stream's seed: same seed, same batches.
            let batch_seed = plan.seed.wrapping_mul(0x9E37_79B9).wrapping_add(k as u64);
            let (b, link) = match &plan.link {
                None => (
                    sampler
                        .sample(seeds, batch_seed)
                        .map_err(|e| e.to_string())?,
                    None,
                ),
                Some(l) => {
                    // `seeds` are indices of the positive pairs; negatives are drawn per batch.
                    let mut src: Vec<u32> = seeds.iter().map(|&i| l.src[i as usize]).collect();
                    let mut dst: Vec<u32> = seeds.iter().map(|&i| l.dst[i as usize]).collect();
                    let mut label: Vec<f32> = match &l.labels {
                        Some(given) => seeds.iter().map(|&i| given[i as usize]).collect(),
                        None => vec![1.0; src.len()],
                    };
                    if l.labels.is_none() {
                        let neg = (seeds.len() as f64 * l.ratio).round() as usize;
                        let (ns, nd) = l.negatives.draw(neg, batch_seed);
                        label.resize(src.len() + ns.len(), 0.0);
                        src.extend(ns);
                        dst.extend(nd);
                    }
                    let b = sampler
                        .sample_input(
                            scalegnn_sample::SeedInput::Edges {
                                src: &src,
                                dst: &dst,
                            },
                            batch_seed,
                        )
                        .map_err(|e| e.to_string())?;
                    let pos = b
                        .edges
                        .clone()
                        .ok_or("the sampler gave no edge positions")?;
                    let mut eli: Vec<i64> = pos.src.iter().map(|&v| v as i64).collect();
                    eli.extend(pos.dst.iter().map(|&v| v as i64));
                    (b, Some((eli, label)))
                }
            };
            let (n_id, edge_index, num_sampled_nodes, num_sampled_edges) = if plan.blocks {
                let n_id = b.nodes.iter().map(|&v| v as i64).collect();
                (n_id, Vec::new(), Vec::new(), Vec::new())
            } else {
                to_pyg(&b)
            };
            let blocks = plan.blocks.then(|| to_blocks(&b));
            let x = match &store {
                Some(s) => {
                    let dim = s.dim();
                    let mut out = vec![0f32; b.nodes.len() * dim];
                    s.gather(&b.nodes, &mut out)
                        .map_err(|e| format!("{}: {e}", ds.dir.display()))?;
                    Some((out, dim))
                }
                None => None,
            };
            let y = match (&ds.y, plan.labels) {
                (Some(Labels::Classes(c)), true) => Some(LabelRows::Classes(
                    b.nodes.iter().map(|&v| c[v as usize]).collect(),
                )),
                (Some(Labels::Targets(t)), true) => {
                    let w = t.len() / ds.graph.num_nodes().max(1);
                    let mut v = Vec::with_capacity(b.nodes.len() * w);
                    for &n in &b.nodes {
                        v.extend_from_slice(&t[n as usize * w..(n as usize + 1) * w]);
                    }
                    Some(LabelRows::Targets(v, w))
                }
                _ => None,
            };
            let batch = PygBatch {
                n_id,
                edge_index,
                num_sampled_nodes,
                num_sampled_edges,
                batch_size: b.num_seeds,
                x,
                y,
                blocks,
                link,
            };
            if tx.send(Ok(batch)).is_err() {
                return Ok(()); // the iterator was dropped
            }
        }
        Ok(())
    };
    if let Err(e) = run() {
        let _ = tx.send(Err(e));
    }
}

/// An iterator over one pass of neighbour-sampled batches (dicts of NumPy arrays), made
/// `prefetch` batches ahead on a worker thread.
#[pyclass(module = "scalegnn._native")]
pub struct BatchStream {
    rx: Mutex<Option<Receiver<Result<PygBatch, String>>>>,
    stop: Arc<AtomicBool>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for BatchStream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping the receiver unblocks a worker waiting to send.
        if let Ok(mut rx) = self.rx.lock() {
            rx.take();
        }
        if let Some(h) = self.worker.lock().ok().and_then(|mut w| w.take()) {
            let _ = h.join();
        }
    }
}

#[pymethods]
impl BatchStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        // One consumer at a time: a second thread waiting here would hold the interpreter
        // while the first needs it back.
        let mut guard = self
            .rx
            .try_lock()
            .map_err(|_| err("a batch stream is read by one thread at a time"))?;
        let Some(mut rx) = guard.take() else {
            return Err(PyStopIteration::new_err(()));
        };
        let got = loop {
            // Wait with the interpreter released (the worker never needs it), waking every
            // 100 ms so Ctrl-C is seen; the receiver moves into the wait and back.
            let (got, back) =
                py.detach(move || (rx.recv_timeout(std::time::Duration::from_millis(100)), rx));
            rx = back;
            match got {
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(e) = py.check_signals() {
                        *guard = Some(rx);
                        return Err(e);
                    }
                }
                Ok(b) => break Some(b),
                Err(mpsc::RecvTimeoutError::Disconnected) => break None,
            }
        };
        let b = match got {
            Some(Ok(b)) => {
                *guard = Some(rx);
                b
            }
            Some(Err(e)) => return Err(err(e)),
            None => {
                // The worker ended: a finished pass, or a panic that must not pass for one.
                let worker = self.worker.lock().ok().and_then(|mut w| w.take());
                if let Some(h) = worker {
                    if h.join().is_err() {
                        return Err(err(
                            "the batch worker failed (a panic); the pass is incomplete",
                        ));
                    }
                }
                return Err(PyStopIteration::new_err(()));
            }
        };
        let d = PyDict::new(py);
        d.set_item("n_id", PyArray1::from_vec(py, b.n_id))?;
        match b.blocks {
            Some(blocks) => {
                let adjs = pyo3::types::PyList::empty(py);
                for (ei, src, dst) in blocks {
                    let e = ei.len() / 2;
                    let ei = PyArray1::from_vec(py, ei).reshape([2, e])?;
                    adjs.append((ei, (src, dst)))?;
                }
                d.set_item("adjs", adjs)?;
            }
            None => {
                let e = b.edge_index.len() / 2;
                d.set_item(
                    "edge_index",
                    PyArray1::from_vec(py, b.edge_index).reshape([2, e])?,
                )?;
                d.set_item(
                    "num_sampled_nodes",
                    PyArray1::from_vec(py, b.num_sampled_nodes),
                )?;
                d.set_item(
                    "num_sampled_edges",
                    PyArray1::from_vec(py, b.num_sampled_edges),
                )?;
            }
        }
        d.set_item("batch_size", b.batch_size)?;
        if let Some((x, dim)) = b.x {
            let rows = x.len() / dim.max(1);
            d.set_item("x", PyArray1::from_vec(py, x).reshape([rows, dim])?)?;
        }
        if let Some((eli, label)) = b.link {
            let m = label.len();
            d.set_item(
                "edge_label_index",
                PyArray1::from_vec(py, eli).reshape([2, m])?,
            )?;
            d.set_item("edge_label", PyArray1::from_vec(py, label))?;
        }
        match b.y {
            Some(LabelRows::Classes(v)) => d.set_item("y", PyArray1::from_vec(py, v))?,
            Some(LabelRows::Targets(v, w)) => {
                let rows = v.len() / w.max(1);
                d.set_item("y", PyArray1::from_vec(py, v).reshape([rows, w])?)?
            }
            None => {}
        }
        Ok(d)
    }
}

/// One pass over `seeds` (node rows) of the dataset at `path` in batches of `batch_size`,
/// neighbours sampled with `fanouts` (hop 1 first, -1 = all), shuffled with `seed`;
/// `features`/`labels` add each batch's rows `x` and `y`; `verify` checks the dataset's files
/// first (a loader does it on its first pass only); `blocks` gives each batch's per-block
/// edges (`adjs`, the layer-wise form) instead of one edge list.
#[pyfunction]
#[pyo3(signature = (path, seeds, fanouts, batch_size, *, shuffle=true, seed=0, prefetch=2, features=true, labels=true, verify=true, blocks=false))]
#[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
pub fn neighbor_stream(
    py: Python<'_>,
    path: PathBuf,
    seeds: PyReadonlyArray1<'_, i64>,
    fanouts: Vec<i64>,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    prefetch: usize,
    features: bool,
    labels: bool,
    verify: bool,
    blocks: bool,
) -> PyResult<BatchStream> {
    let ds = open_dataset(py, &path, verify)?;
    let ids = node_rows(&seeds, ds.graph.num_nodes(), "seeds", &path)?;
    if batch_size == 0 {
        return Err(err("batch_size must be at least 1"));
    }
    // Fan-outs are checked here, so a bad one is said at once rather than on first next().
    NeighborSampler::new(&ds.graph, &fanouts).map_err(|e| err(format!("fanouts: {e}")))?;
    let plan = Plan {
        seeds: ids,
        fanouts,
        batch_size,
        shuffle,
        seed,
        features,
        labels,
        blocks,
        link: None,
    };
    start(ds, plan, prefetch)
}

/// Starts the worker of `plan` on `ds`.
fn start(ds: Dataset, plan: Plan, prefetch: usize) -> PyResult<BatchStream> {
    let (tx, rx) = mpsc::sync_channel(prefetch.max(1));
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let worker = std::thread::Builder::new()
        .name("scalegnn-stream".into())
        .spawn(move || produce(&ds, plan, tx, &flag))
        .map_err(err)?;
    Ok(BatchStream {
        rx: Mutex::new(Some(rx)),
        stop,
        worker: Mutex::new(Some(worker)),
    })
}

/// A dataset's feature store opened for random row reads (PyG's `FeatureStore` bridge).
#[pyclass(module = "scalegnn._native", frozen)]
pub struct FeatureRows {
    store: Box<dyn FeatureStore>,
    path: PathBuf,
}

#[pymethods]
impl FeatureRows {
    /// Opens the feature store the manifest of the dataset at `path` names.
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<FeatureRows> {
        let ds = open_dataset(py, &path, true)?;
        let store = py.detach(|| dataset_store(&ds)).map_err(err)?;
        Ok(FeatureRows { store, path })
    }

    /// `(rows, columns)` of the store.
    #[getter]
    fn shape(&self) -> (usize, usize) {
        (self.store.num_nodes(), self.store.dim())
    }

    /// Rows `ids` decoded to float32 `[len(ids), dim]`, read with the interpreter released.
    fn gather<'py>(
        &self,
        py: Python<'py>,
        ids: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let rows = node_rows(&ids, self.store.num_nodes(), "ids", &self.path)?;
        let dim = self.store.dim();
        let out = py
            .detach(|| {
                let mut out = vec![0f32; rows.len() * dim];
                self.store
                    .gather(&rows, &mut out)
                    .map(|_| out)
                    .map_err(|e| e.to_string())
            })
            .map_err(err)?;
        Ok(PyArray1::from_vec(py, out)
            .reshape([rows.len(), dim])?
            .into_any())
    }
}

/// One pass over the node pairs `pairs` (`[m, 2]` node rows) of the dataset at `path`, in
/// batches of `batch_size` pairs each with `round(batch_size × neg_ratio)` negatives drawn
/// (`neg_kind` uniform or degree) — or, with `pair_labels`, the pairs as given with their
/// labels — their endpoints' neighbourhoods sampled with `fanouts` over the graph without
/// the dataset's held-out edges: PyG's `LinkNeighborLoader` layout (`edge_label_index`,
/// `edge_label` besides the batch).
#[pyfunction]
#[pyo3(signature = (path, pairs, fanouts, batch_size, *, pair_labels=None, neg_ratio=1.0, neg_kind="uniform", shuffle=true, seed=0, prefetch=2, features=true, labels=true, verify=true))]
#[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
pub fn link_stream(
    py: Python<'_>,
    path: PathBuf,
    pairs: numpy::PyReadonlyArray2<'_, i64>,
    fanouts: Vec<i64>,
    batch_size: usize,
    pair_labels: Option<PyReadonlyArray1<'_, f32>>,
    neg_ratio: f64,
    neg_kind: &str,
    shuffle: bool,
    seed: u64,
    prefetch: usize,
    features: bool,
    labels: bool,
    verify: bool,
) -> PyResult<BatchStream> {
    use numpy::PyUntypedArrayMethods;
    let ds = open_dataset(py, &path, verify)?;
    let n = ds.graph.num_nodes();
    if pairs.shape()[1] != 2 {
        return Err(err(format!(
            "pairs: shape {:?}, expected [m, 2]",
            pairs.shape()
        )));
    }
    let flat = pairs
        .as_slice()
        .map_err(|_| err("pairs: the array is not C-contiguous"))?;
    let mut src = Vec::with_capacity(flat.len() / 2);
    let mut dst = Vec::with_capacity(flat.len() / 2);
    for (k, p) in flat.chunks_exact(2).enumerate() {
        let node = |v: i64| match u32::try_from(v) {
            Ok(u) if (u as usize) < n => Ok(u),
            _ => Err(err(format!(
                "pairs row {k}: {v} is not a node of {} ({n} nodes)",
                path.display()
            ))),
        };
        src.push(node(p[0])?);
        dst.push(node(p[1])?);
    }
    if !(neg_ratio.is_finite() && neg_ratio >= 0.0) {
        return Err(err(format!("neg_ratio {neg_ratio}: must be a number >= 0")));
    }
    if batch_size == 0 {
        return Err(err("batch_size must be at least 1"));
    }
    let kind: NegativeKind = neg_kind.parse().map_err(err)?;
    NeighborSampler::new(&ds.graph, &fanouts).map_err(|e| err(format!("fanouts: {e}")))?;
    // The negatives avoid the given pairs (a sorted key per undirected pair); avoiding every
    // graph edge would cost 8 bytes per edge, and PyG's loader does not either.
    let mut keys: Vec<u64> = src
        .iter()
        .zip(&dst)
        .map(|(&a, &b)| scalegnn_data::link::pair_key(a, b))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let degrees: Vec<u32> = match kind {
        NegativeKind::Degree => ds.graph.degrees(),
        NegativeKind::Uniform => Vec::new(),
    };
    let negatives = NegativeSampler::new(n, kind, &degrees, keys);
    let pair_labels = match &pair_labels {
        Some(a) => {
            let v = a
                .as_slice()
                .map_err(|_| err("pair_labels: the array is not contiguous"))?
                .to_vec();
            if v.len() != src.len() {
                return Err(err(format!(
                    "pair_labels: {} labels for {} pairs",
                    v.len(),
                    src.len()
                )));
            }
            Some(v)
        }
        None => None,
    };
    // Messages pass over the graph without the held-out edges, as link training does.
    let graph = py
        .detach(|| -> Result<Option<scalegnn_graph::Csr>, String> {
            match scalegnn_data::LinkSplit::load(&ds.dir, n).map_err(|e| e.to_string())? {
                Some(split) => split
                    .message_graph(&ds.graph)
                    .map(Some)
                    .map_err(|e| e.to_string()),
                None => Ok(None),
            }
        })
        .map_err(err)?;
    let m = src.len() as u32;
    let plan = Plan {
        seeds: (0..m).collect(),
        fanouts,
        batch_size,
        shuffle,
        seed,
        features,
        labels,
        blocks: false,
        link: Some(LinkPlan {
            src,
            dst,
            labels: pair_labels,
            negatives,
            ratio: neg_ratio,
            graph,
        }),
    };
    start(ds, plan, prefetch)
}
