//! Induced subgraph on a node set, with the mapping back to the parent graph.

use rayon::prelude::*;

use crate::builder::Idx;
use crate::{Csr, GraphError, Indices, Result};

/// A subgraph: its CSR over local ids `0..k` and the parent id of each local node.
#[derive(Debug)]
pub struct Subgraph {
    pub csr: Csr,
    pub nodes: Vec<i64>,
}

impl Csr {
    /// The subgraph induced by `nodes` (local id = position in `nodes`; rows keep parent order).
    pub fn induced_subgraph(&self, nodes: &[i64]) -> Result<Subgraph> {
        let n = self.num_nodes();
        let mut local = vec![-1i64; n];
        for (k, &v) in nodes.iter().enumerate() {
            if v < 0 || v as usize >= n {
                return Err(GraphError::BadNodeSet(format!("node {v} is not in 0..{n}")));
            }
            if local[v as usize] >= 0 {
                return Err(GraphError::BadNodeSet(format!("node {v} is listed twice")));
            }
            local[v as usize] = k as i64;
        }
        let rows: Vec<Vec<i64>> = nodes
            .par_iter()
            .map(|&v| {
                self.neighbors(v as usize)
                    .iter()
                    .filter_map(|u| (local[u] >= 0).then_some(local[u]))
                    .collect()
            })
            .collect();
        let mut indptr = Vec::with_capacity(nodes.len() + 1);
        indptr.push(0i64);
        for r in &rows {
            indptr.push(indptr[indptr.len() - 1] + r.len() as i64);
        }
        let flat = rows.into_iter().flatten();
        let indices = if nodes.len() < crate::csr::I32_LIMIT {
            i32::wrap(flat.map(|u| u as i32).collect())
        } else {
            Indices::I64(scalegnn_npy::Array::from_vec1(flat.collect()))
        };
        Ok(Subgraph {
            csr: Csr::from_trusted(indptr, indices),
            nodes: nodes.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::CsrBuilder;

    #[test]
    fn induced_keeps_inner_edges() {
        // Path 0-1-2-3, undirected.
        let g = CsrBuilder::new()
            .undirected(true)
            .build(&[0u32, 1, 2], &[1u32, 2, 3])
            .unwrap()
            .csr;
        let s = g.induced_subgraph(&[2, 1, 3]).unwrap();
        let rows: Vec<Vec<usize>> = (0..3)
            .map(|v| s.csr.neighbors(v).iter().collect())
            .collect();
        // local 0 = node 2 (nbrs 1,3 → local 1,2); local 1 = node 1 (nbrs 0,2 → local 0);
        // local 2 = node 3 (nbr 2 → local 0).
        assert_eq!(rows, vec![vec![1, 2], vec![0], vec![0]]);
        assert!(g.induced_subgraph(&[1, 1]).is_err());
        assert!(g.induced_subgraph(&[9]).is_err());
    }
}
