//! Sparse propagation matrices built once per graph: GCN's symmetric normalisation with
//! self loops, and the row-mean used by GraphSAGE; each with its transpose for backward.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use scalegnn_graph::Csr;
use scalegnn_tensor::SparseMat;

/// A propagation matrix and its transpose.
#[derive(Debug, Clone)]
pub struct Propagation {
    pub a: Arc<SparseMat>,
    pub at: Arc<SparseMat>,
}

impl Propagation {
    fn new(a: SparseMat) -> Propagation {
        let at = a.transpose();
        Propagation {
            a: Arc::new(a),
            at: Arc::new(at),
        }
    }

    /// `D^-1/2 (A + I) D^-1/2` over in-neighbours (Kipf & Welling; PyG's `gcn_norm`).
    pub fn gcn(g: &Csr) -> Propagation {
        let n = g.num_nodes();
        // Existing self loops are replaced by one of weight 1, as PyG's add_remaining_self_loops.
        let deg: Vec<f32> = (0..n)
            .map(|v| 1.0 + g.neighbors(v).iter().filter(|&u| u != v).count() as f32)
            .collect();
        let dis: Vec<f32> = deg.iter().map(|d| 1.0 / d.sqrt()).collect();
        let mut indptr = Vec::with_capacity(n + 1);
        let mut indices = Vec::with_capacity(g.num_edges() + n);
        let mut weights = Vec::with_capacity(g.num_edges() + n);
        indptr.push(0);
        for v in 0..n {
            for u in g.neighbors(v).iter().filter(|&u| u != v) {
                indices.push(u as u32);
                weights.push(dis[u] * dis[v]);
            }
            indices.push(v as u32);
            weights.push(dis[v] * dis[v]);
            indptr.push(indices.len());
        }
        Propagation::new(SparseMat::new(n, n, indptr, indices, weights))
    }

    /// Row `v` averages the in-neighbours of `v` (zero row for an isolated node).
    pub fn mean(g: &Csr) -> Propagation {
        let n = g.num_nodes();
        let mut indptr = Vec::with_capacity(n + 1);
        let mut indices = Vec::with_capacity(g.num_edges());
        let mut weights = Vec::with_capacity(g.num_edges());
        indptr.push(0);
        for v in 0..n {
            let nb = g.neighbors(v);
            let w = 1.0 / nb.len().max(1) as f32;
            for u in nb.iter() {
                indices.push(u as u32);
                weights.push(w);
            }
            indptr.push(indices.len());
        }
        Propagation::new(SparseMat::new(n, n, indptr, indices, weights))
    }
}

/// The graph as models see it: the CSR plus propagation matrices built on first use.
pub struct GraphCtx<'g> {
    pub csr: &'g Csr,
    gcn: OnceLock<Propagation>,
    mean: OnceLock<Propagation>,
    /// Structures an architecture derives from the graph once (keyed by the architecture).
    extra: Mutex<HashMap<&'static str, Arc<dyn Any + Send + Sync>>>,
}

impl<'g> GraphCtx<'g> {
    /// Wraps a graph; nothing is computed until an architecture asks.
    pub fn new(csr: &'g Csr) -> GraphCtx<'g> {
        GraphCtx {
            csr,
            gcn: OnceLock::new(),
            mean: OnceLock::new(),
            extra: Mutex::new(HashMap::new()),
        }
    }

    /// GCN's normalised adjacency with self loops.
    pub fn gcn(&self) -> &Propagation {
        self.gcn.get_or_init(|| Propagation::gcn(self.csr))
    }

    /// A structure built from the graph on first request under `key` and reused afterwards
    /// (each architecture keeps its own derived matrices here).
    pub fn cached<T: Any + Send + Sync>(
        &self,
        key: &'static str,
        build: impl FnOnce(&Csr) -> T,
    ) -> Arc<T> {
        let mut map = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map
            .entry(key)
            .or_insert_with(|| Arc::new(build(self.csr)) as Arc<dyn Any + Send + Sync>);
        match Arc::clone(entry).downcast::<T>() {
            Ok(t) => t,
            Err(_) => panic!("GraphCtx::cached: key {key:?} used with two types"),
        }
    }

    /// Row-mean over in-neighbours.
    pub fn mean(&self) -> &Propagation {
        self.mean.get_or_init(|| Propagation::mean(self.csr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scalegnn_graph::CsrBuilder;

    #[test]
    fn gcn_norm_of_a_path() {
        // 0 - 1 - 2: degrees with self loops 2, 3, 2.
        let g = CsrBuilder::new()
            .undirected(true)
            .build(&[0u32, 1], &[1u32, 2])
            .unwrap()
            .csr;
        let p = Propagation::gcn(&g);
        let a = &p.a;
        let w = |i: usize, j: u32| {
            (a.indptr[i]..a.indptr[i + 1])
                .find(|&k| a.indices[k] == j)
                .map(|k| a.weights[k])
                .unwrap()
        };
        assert!((w(0, 0) - 0.5).abs() < 1e-6);
        assert!((w(0, 1) - 1.0 / 6f32.sqrt()).abs() < 1e-6);
        assert!((w(1, 1) - 1.0 / 3.0).abs() < 1e-6);
        let m = Propagation::mean(&g);
        assert_eq!(m.a.weights, vec![1.0, 0.5, 0.5, 1.0]);
    }
}
