//! `ClusterSampler`: ClusterGCN's batches. Given the nodes of a few partition clusters, the
//! batch is the subgraph they induce: every edge between two of its nodes, and nothing
//! from outside, in every layer (each block maps all the batch's nodes to all of them).

use std::collections::HashMap;

use scalegnn_graph::Csr;

use crate::{Batch, Block, Result, SampleError, Sampler, SeedInput};

/// Induced-subgraph batches over a node set (ClusterGCN, Chiang et al. 2019).
pub struct ClusterSampler<'g> {
    graph: &'g Csr,
    layers: usize,
}

impl<'g> ClusterSampler<'g> {
    /// A sampler whose batches have `layers` blocks (one per propagation step).
    pub fn new(graph: &'g Csr, layers: usize) -> Result<Self> {
        if graph.num_nodes() > u32::MAX as usize {
            return Err(SampleError::TooManyNodes {
                num_nodes: graph.num_nodes(),
            });
        }
        Ok(ClusterSampler {
            graph,
            layers: layers.max(1),
        })
    }

    /// The subgraph induced by `nodes` (their order is the batch's row order).
    pub fn induced(&self, nodes: &[u32]) -> Result<Batch> {
        let n = self.graph.num_nodes();
        let mut local: HashMap<u32, u32> = HashMap::with_capacity(nodes.len());
        for (i, &v) in nodes.iter().enumerate() {
            if v as usize >= n {
                return Err(SampleError::SeedOutOfRange {
                    position: i,
                    id: v,
                    num_nodes: n,
                });
            }
            if let Some(first) = local.insert(v, i as u32) {
                return Err(SampleError::DuplicateSeed {
                    id: v,
                    first: first as usize,
                    second: i,
                });
            }
        }
        let mut indptr = Vec::with_capacity(nodes.len() + 1);
        let mut indices = Vec::new();
        let mut degree = Vec::with_capacity(nodes.len());
        let mut scale = Vec::with_capacity(nodes.len());
        indptr.push(0);
        for &v in nodes {
            let row = self.graph.neighbors(v as usize);
            let before = indices.len();
            indices.extend(row.iter().filter_map(|u| local.get(&(u as u32)).copied()));
            let (d, s) = (row.len(), indices.len() - before);
            degree.push(d.min(u32::MAX as usize) as u32);
            // The in-batch neighbours stand for all of them, as under neighbour sampling
            // (d_i / s_i), so a model trained on clusters meets the same scale in full-graph
            // inference; ClusterGCN's paper renormalises within the cluster instead.
            scale.push(if s == 0 { 1.0 } else { d as f32 / s as f32 });
            indptr.push(indices.len());
        }
        let block = Block {
            num_dst: nodes.len(),
            num_src: nodes.len(),
            indptr,
            indices,
            scale,
            csc: Default::default(),
        };
        Ok(Batch {
            num_seeds: nodes.len(),
            nodes: nodes.to_vec(),
            blocks: vec![block; self.layers],
            degree,
            edges: None,
        })
    }
}

impl Sampler for ClusterSampler<'_> {
    fn sample_input(&self, input: SeedInput<'_>, _seed: u64) -> Result<Batch> {
        match input {
            SeedInput::Nodes(nodes) => self.induced(nodes),
            other => Err(SampleError::Unsupported {
                sampler: "cluster",
                input: other.kind(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scalegnn_graph::CsrBuilder;

    #[test]
    fn a_batch_is_the_induced_subgraph_in_every_layer() {
        // Ring 0-1-2-3-4-5-0 (undirected) plus chord 0-3.
        let src = [0i64, 1, 2, 3, 4, 5, 0];
        let dst = [1i64, 2, 3, 4, 5, 0, 3];
        let g = CsrBuilder::new()
            .undirected(true)
            .build(&src, &dst)
            .unwrap()
            .csr;
        let s = ClusterSampler::new(&g, 2).unwrap();
        let b = s.sample(&[3, 0, 1], 0).unwrap();
        assert_eq!(b.blocks.len(), 2);
        for blk in &b.blocks {
            assert_eq!((blk.num_dst, blk.num_src), (3, 3));
            let rows: Vec<Vec<u32>> = (0..3)
                .map(|i| {
                    let mut r = blk.row(i).to_vec();
                    r.sort();
                    r
                })
                .collect();
            // 3 <- 0 (chord); 0 <- 3, 1; 1 <- 0. Edges to 2, 4, 5 are outside the batch.
            assert_eq!(rows, vec![vec![1], vec![0, 2], vec![1]]);
            // Node 3 has 3 in-edges, 1 inside: its messages count 3 times.
            assert_eq!(blk.scale, vec![3.0, 1.5, 2.0]);
        }
        assert_eq!(b.degree, vec![3, 3, 2]);
        assert_eq!(b.nodes, vec![3, 0, 1]);
        assert_eq!(
            s.sample(&[1, 1], 0).unwrap_err(),
            SampleError::DuplicateSeed {
                id: 1,
                first: 0,
                second: 1
            }
        );
        assert!(matches!(
            s.sample(&[9], 0),
            Err(SampleError::SeedOutOfRange { id: 9, .. })
        ));
    }
}
