//! Exact layer-wise inference: each layer runs for every node on its full neighbourhood, a
//! chunk of nodes at a time, and its output feeds the next layer. Evaluation on a large
//! graph then has no sampling noise, and costs L passes over the graph instead of the
//! L-hop neighbourhoods of every target. Hidden activations (`[N, hidden]`, 2.5 GB on the
//! products preset) live in a memory-mapped scratch file, so the kernel can page them out
//! rather than the run holding them on the heap.

use std::path::Path;
use std::sync::Arc;

use memmap2::MmapMut;
use scalegnn_graph::Csr;
use scalegnn_nn::{Features, GraphCtx, Model};
use scalegnn_sample::{NeighborSampler, Sampler};
use scalegnn_store::FeatureStore;
use scalegnn_tensor::{Matrix, Tape};

use crate::LoaderError;

/// An `[rows, cols]` f32 matrix in an unnamed scratch file (O_TMPFILE where the file system
/// has it): nothing is left behind, even when the process is killed, and no name in the
/// directory can be planted in advance.
struct ScratchMatrix {
    map: MmapMut,
    cols: usize,
}

impl ScratchMatrix {
    fn new(dir: &Path, rows: usize, cols: usize) -> Result<ScratchMatrix, LoaderError> {
        let io = |err| LoaderError::Io {
            path: dir.to_path_buf(),
            err,
        };
        let file = tempfile::tempfile_in(dir).map_err(io)?;
        file.set_len((rows * cols * 4) as u64).map_err(io)?;
        // SAFETY: the file is unnamed, so only this map reaches it.
        let map = unsafe { MmapMut::map_mut(&file) }.map_err(io)?;
        Ok(ScratchMatrix { map, cols })
    }

    fn data(&self) -> &[f32] {
        bytemuck::cast_slice(&self.map[..])
    }

    fn data_mut(&mut self) -> &mut [f32] {
        bytemuck::cast_slice_mut(&mut self.map[..])
    }
}

/// Logits `[targets.len(), classes]` of `model` for `targets`, computed layer by layer over
/// full neighbourhoods (`chunk` nodes per step); scratch files go to `scratch_dir`.
pub fn layerwise_logits(
    model: &Model,
    graph: &Csr,
    store: &dyn FeatureStore,
    targets: &[u32],
    chunk: usize,
    scratch_dir: &Path,
) -> Result<Matrix, LoaderError> {
    let layers = model.config.layers;
    let n = graph.num_nodes();
    let sampler =
        NeighborSampler::new(graph, &[-1]).map_err(|e| LoaderError::Sample(e.to_string()))?;
    let all: Vec<u32> = (0..n as u32).collect();
    let mut tape = Tape::new(false);
    let mut prev: Option<ScratchMatrix> = None;
    let mut input = Matrix::zeros(0, 0);
    for l in 0..layers {
        let last = l + 1 == layers;
        let dsts: &[u32] = if last { targets } else { &all };
        let mut out = if last {
            None
        } else {
            Some(ScratchMatrix::new(scratch_dir, n, model.config.hidden)?)
        };
        let mut logits = Matrix::zeros(if last { targets.len() } else { 0 }, model.config.out_dim);
        for (ci, ids) in dsts.chunks(chunk.max(1)).enumerate() {
            let batch = sampler
                .sample(ids, 0)
                .map_err(|e| LoaderError::Sample(e.to_string()))?;
            // The layer's input rows: features from the store, or the previous layer's output.
            let cols = prev.as_ref().map_or(store.dim(), |p| p.cols);
            input.rows = batch.nodes.len();
            input.cols = cols;
            input.data.resize(input.rows * cols, 0.0);
            match &prev {
                None => store.gather(&batch.nodes, &mut input.data)?,
                Some(p) => {
                    let src = p.data();
                    for (row, &v) in input.data.chunks_mut(cols).zip(&batch.nodes) {
                        let v = v as usize;
                        row.copy_from_slice(&src[v * cols..(v + 1) * cols]);
                    }
                }
            }
            let g = GraphCtx::from_batch_at(graph, batch, l);
            tape.reset(false);
            let x = Features::Dense(Arc::new(std::mem::take(&mut input)));
            let y = model.forward_layer(&mut tape, &x, &g, l).ok_or_else(|| {
                LoaderError::Config(format!(
                    "model {} cannot run layer by layer; evaluate with sampled batches",
                    model.config.kind.name()
                ))
            })?;
            let yv = tape.value(y);
            match &mut out {
                Some(o) => {
                    let w = o.cols;
                    let dst = o.data_mut();
                    for (r, &v) in ids.iter().enumerate() {
                        let v = v as usize;
                        dst[v * w..(v + 1) * w].copy_from_slice(yv.row(r));
                    }
                }
                None => {
                    let w = logits.cols;
                    let at = ci * chunk.max(1) * w;
                    logits.data[at..at + ids.len() * w].copy_from_slice(&yv.data[..ids.len() * w]);
                }
            }
            tape.reset(false);
            input = x.into_buffer();
        }
        if last {
            return Ok(logits);
        }
        prev = out;
    }
    unreachable!("a model has at least one layer")
}

/// Share of `targets` whose arg-max logit is their label.
pub fn accuracy_of(logits: &Matrix, targets: &[u32], labels: &[u32]) -> f64 {
    let pred = logits.argmax_rows();
    let hit = pred
        .iter()
        .zip(targets)
        .filter(|(p, &t)| **p == labels[t as usize] as usize)
        .count();
    hit as f64 / targets.len().max(1) as f64
}
