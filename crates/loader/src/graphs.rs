//! `GraphBatches`: the loader of graph-level tasks. Its items are graph ids of a collection
//! stored as one block-diagonal CSR with a graph pointer (`graph_ptr.npy`); a batch is a
//! set of graphs: their nodes (graph by graph), every edge among them, their features
//! gathered from the store through the prefetch pipeline, and the segments that tell the
//! model's readout which output rows belong to which graph. A collection larger than
//! memory trains: only a batch's rows are ever read.

use std::sync::Arc;

use scalegnn_graph::Csr;
use scalegnn_nn::{EdgeFeatures, Segments};
use scalegnn_sample::SeedInput;
use scalegnn_tensor::Matrix;

use crate::sampled::chunk_seed;
use crate::{GraphView, Loader, LoaderError, Prepared, Sampled, StageTimes};

/// Batches of whole graphs.
pub struct GraphBatches<'a> {
    /// Samples with full neighbourhoods (`NeighborSampler::full`): a graph's nodes reach
    /// only each other, so the batch is exactly its graphs.
    sampled: &'a Sampled<'a>,
    /// Node range of graph g: `graph_ptr[g]..graph_ptr[g+1]`.
    graph_ptr: &'a [i64],
    batch_size: usize,
    /// Edge features `[edges, width]` by CSR position (`edge_attr.npy`), for models that read
    /// them.
    edge_attr: Option<(&'a Csr, &'a [f32], usize)>,
}

/// The edges of the nodes `ranges` (each a node range `start..end` of `csr`, rows numbered
/// range after range) with their rows of `attr` (`width` columns, one row per CSR entry).
/// An edge from outside its range is an error: the ranges must be closed graphs.
pub fn edge_features_of(
    csr: &Csr,
    attr: &[f32],
    width: usize,
    ranges: &[(usize, usize)],
) -> Result<EdgeFeatures, LoaderError> {
    let indptr = csr.indptr();
    let rows: usize = ranges.iter().map(|r| r.1 - r.0).sum();
    let edges: usize = ranges
        .iter()
        .map(|&(a, b)| (indptr[b] - indptr[a]) as usize)
        .sum();
    let (mut ptr, mut src) = (Vec::with_capacity(rows + 1), Vec::with_capacity(edges));
    let mut data = Vec::with_capacity(edges * width);
    ptr.push(0);
    let mut offset = 0;
    for &(a, b) in ranges {
        for (v, &first) in indptr[a..b].iter().enumerate() {
            let (v, first) = (a + v, first as usize);
            for (k, u) in csr.neighbors(v).iter().enumerate() {
                if !(a..b).contains(&u) {
                    return Err(LoaderError::Config(format!(
                        "edge {u} -> {v} joins two graphs of graph_ptr.npy (re-ingest the collection)"
                    )));
                }
                src.push(offset + u - a);
                let e = first + k;
                let row = attr.get(e * width..(e + 1) * width).ok_or_else(|| {
                    LoaderError::Config(format!(
                        "edge_attr.npy has no row for edge {e} (the CSR has {})",
                        csr.num_edges()
                    ))
                })?;
                data.extend_from_slice(row);
            }
            ptr.push(src.len());
        }
        offset += b - a;
    }
    let n = src.len();
    Ok(EdgeFeatures::new(
        ptr,
        src,
        Matrix::from_vec(n, width, data),
    ))
}

impl<'a> GraphBatches<'a> {
    /// Batches of `batch_size` graphs of the collection `graph_ptr` describes, prepared by
    /// `sampled` (whose sampler must take every neighbour).
    pub fn new(sampled: &'a Sampled<'a>, graph_ptr: &'a [i64], batch_size: usize) -> Self {
        GraphBatches {
            sampled,
            graph_ptr,
            batch_size: batch_size.max(1),
            edge_attr: None,
        }
    }

    /// Each batch also carries its edges' rows of `attr` (`width` columns per CSR entry of
    /// `csr`), for models that read edge features.
    pub fn with_edge_attr(mut self, csr: &'a Csr, attr: &'a [f32], width: usize) -> Self {
        self.edge_attr = Some((csr, attr, width));
        self
    }

    /// The nodes of graphs `chunk` (graph by graph) and their segment pointer.
    fn nodes_of(&self, chunk: &[u32]) -> Result<(Vec<u32>, Vec<usize>), LoaderError> {
        let gp = self.graph_ptr;
        let graphs = gp.len().saturating_sub(1);
        let mut ptr = Vec::with_capacity(chunk.len() + 1);
        ptr.push(0);
        let mut total = 0usize;
        for &g in chunk {
            let g = g as usize;
            if g >= graphs {
                return Err(LoaderError::Config(format!(
                    "graph {g} is outside the {graphs} graphs of graph_ptr.npy"
                )));
            }
            total += (gp[g + 1] - gp[g]).max(0) as usize;
            ptr.push(total);
        }
        let mut nodes = Vec::with_capacity(total);
        for &g in chunk {
            let g = g as usize;
            nodes.extend(gp[g] as u32..gp[g + 1] as u32);
        }
        Ok((nodes, ptr))
    }
}

impl Loader for GraphBatches<'_> {
    fn run(
        &self,
        items: &[u32],
        seed: u64,
        step: &mut dyn FnMut(&Prepared) -> Result<(), LoaderError>,
    ) -> Result<StageTimes, LoaderError> {
        let make = |chunk: &[u32], k: usize, recycled: Option<Matrix>| {
            let (nodes, ptr) = self.nodes_of(chunk)?;
            let (mut p, _) = self.sampled.prepare(
                SeedInput::Nodes(&nodes),
                chunk_seed(seed, k),
                recycled,
                &[],
            )?;
            let GraphView::Owned(g) = &mut p.graph else {
                return Err(LoaderError::Sample(
                    "a sampled batch borrowed its graph".into(),
                ));
            };
            if p.times.sampled_nodes != nodes.len() {
                // An edge leaves its graph: the batch pulled in another graph's nodes.
                return Err(LoaderError::Config(format!(
                    "the graphs of a batch reach {} nodes outside themselves: an edge joins two \
                     graphs of graph_ptr.npy (re-ingest the collection)",
                    p.times.sampled_nodes.saturating_sub(nodes.len())
                )));
            }
            if let Some((csr, attr, width)) = self.edge_attr {
                let gp = self.graph_ptr;
                let ranges: Vec<(usize, usize)> = chunk
                    .iter()
                    .map(|&c| (gp[c as usize] as usize, gp[c as usize + 1] as usize))
                    .collect();
                g.set_edge_features(Arc::new(edge_features_of(csr, attr, width, &ranges)?));
            }
            g.set_segments(Arc::new(Segments::new(ptr)));
            p.items = Arc::new(chunk.to_vec());
            p.times.seeds = chunk.len();
            Ok(p)
        };
        self.sampled.run_chunks(items, self.batch_size, &make, step)
    }

    fn whole_graph(&self) -> bool {
        false
    }

    fn store(&self) -> Option<&dyn scalegnn_store::FeatureStore> {
        self.sampled.store()
    }
}
