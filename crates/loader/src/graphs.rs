//! `GraphBatches`: the loader of graph-level tasks. Its items are graph ids of a collection
//! stored as one block-diagonal CSR with a graph pointer (`graph_ptr.npy`); a batch is a
//! set of graphs: their nodes (graph by graph), every edge among them, their features
//! gathered from the store through the prefetch pipeline, and the segments that tell the
//! model's readout which output rows belong to which graph. A collection larger than
//! memory trains: only a batch's rows are ever read.

use std::sync::Arc;

use scalegnn_nn::Segments;
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
}

impl<'a> GraphBatches<'a> {
    /// Batches of `batch_size` graphs of the collection `graph_ptr` describes, prepared by
    /// `sampled` (whose sampler must take every neighbour).
    pub fn new(sampled: &'a Sampled<'a>, graph_ptr: &'a [i64], batch_size: usize) -> Self {
        GraphBatches {
            sampled,
            graph_ptr,
            batch_size: batch_size.max(1),
        }
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
