//! Sparse propagation matrices built once per graph (or per sampled block): GCN's symmetric
//! normalisation with self loops, the row-mean used by GraphSAGE and GIN's sum; each with
//! its transpose for backward.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use scalegnn_graph::Csr;
use scalegnn_sample::{Batch, Block};
use scalegnn_tensor::{EdgeIndex, Matrix, SparseMat};

/// A propagation matrix and its transpose.
#[derive(Debug, Clone)]
pub struct Propagation {
    pub a: Arc<SparseMat>,
    pub at: Arc<SparseMat>,
}

impl Propagation {
    /// `a` with its transpose.
    pub fn from_matrix(a: SparseMat) -> Propagation {
        Propagation::new(a)
    }

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

    /// ChebNet's scaled Laplacian `-D^-1/2 A D^-1/2` (λ_max = 2, as PyG's ChebConv assumes),
    /// without self loops; degrees count in-neighbours other than the node.
    pub fn cheb(g: &Csr) -> Propagation {
        let n = g.num_nodes();
        let dis: Vec<f32> = (0..n)
            .map(|v| {
                let d = g.neighbors(v).iter().filter(|&u| u != v).count();
                if d > 0 {
                    1.0 / (d as f32).sqrt()
                } else {
                    0.0
                }
            })
            .collect();
        let mut indptr = Vec::with_capacity(n + 1);
        let (mut indices, mut weights) = (Vec::new(), Vec::new());
        indptr.push(0);
        for v in 0..n {
            for u in g.neighbors(v).iter().filter(|&u| u != v) {
                indices.push(u as u32);
                weights.push(-dis[u] * dis[v]);
            }
            indptr.push(indices.len());
        }
        Propagation::new(SparseMat::new(n, n, indptr, indices, weights))
    }

    /// `A + I` with unit weights (GIN with ε = 0); an existing self loop counts once.
    pub fn sum_with_self(g: &Csr) -> Propagation {
        let n = g.num_nodes();
        let mut indptr = vec![0];
        let mut indices = Vec::with_capacity(g.num_edges() + n);
        for v in 0..n {
            indices.extend(g.neighbors(v).iter().filter(|&u| u != v).map(|u| u as u32));
            indices.push(v as u32);
            indptr.push(indices.len());
        }
        let weights = vec![1.0; indices.len()];
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

    /// A block's matrix `[num_dst, num_src]` whose row i weighs sampled edge (i ← j) by
    /// `edge(i, j, scale_i)` and adds the self entry `self_w(i)` when given; sampled self loops
    /// are dropped when `drop_self` or `self_w` is given. `scale_i` is the sampler's factor
    /// for row i (`Block::scale`: `d_i / s_i` under neighbour sampling, which makes a sum over
    /// the sample an unbiased estimate of the sum over all neighbours, so mini-batch training
    /// and full-neighbourhood inference see the same operator in expectation). The transpose
    /// is read off the block's CSC instead of sorted again.
    fn block(
        b: &Block,
        edge: impl Fn(usize, usize, f32) -> f32,
        drop_self: bool,
        self_w: Option<&dyn Fn(usize) -> f32>,
    ) -> Propagation {
        let drop_self = drop_self || self_w.is_some();
        let extra = if self_w.is_some() { b.num_dst } else { 0 };
        let mut indptr = Vec::with_capacity(b.num_dst + 1);
        let mut indices = Vec::with_capacity(b.num_edges() + extra);
        let mut weights = Vec::with_capacity(b.num_edges() + extra);
        // Weight of each block edge by CSR position (NaN: dropped), for the transpose.
        let mut by_edge = vec![f32::NAN; b.num_edges()];
        indptr.push(0);
        for i in 0..b.num_dst {
            let scale = b.scale[i];
            let (lo, hi) = (b.indptr[i], b.indptr[i + 1]);
            for (&j, slot) in b.indices[lo..hi].iter().zip(&mut by_edge[lo..hi]) {
                let j = j as usize;
                // A self loop in the graph is replaced by the explicit self entry.
                if drop_self && j == i {
                    continue;
                }
                let w = edge(i, j, scale);
                *slot = w;
                indices.push(j as u32);
                weights.push(w);
            }
            if let Some(f) = self_w {
                indices.push(i as u32);
                weights.push(f(i));
            }
            indptr.push(indices.len());
        }
        let a = SparseMat::new(b.num_dst, b.num_src, indptr, indices, weights);
        // Row j of the transpose: the dst nodes j sends to, in increasing order, with the self
        // entry at its place (the order a counting-sort transpose gives, so sums are the same
        // to the bit).
        let csc = b.csc();
        let mut t_indptr = Vec::with_capacity(b.num_src + 1);
        let mut t_indices = Vec::with_capacity(a.nnz());
        let mut t_weights = Vec::with_capacity(a.nnz());
        t_indptr.push(0);
        for j in 0..b.num_src {
            let mut self_entry = self_w.filter(|_| j < b.num_dst);
            for k in csc.indptr[j]..csc.indptr[j + 1] {
                let (i, e) = (csc.dst[k] as usize, csc.edge[k]);
                if drop_self && i == j {
                    continue;
                }
                if i > j {
                    if let Some(f) = self_entry.take() {
                        t_indices.push(j as u32);
                        t_weights.push(f(j));
                    }
                }
                t_indices.push(i as u32);
                t_weights.push(by_edge[e]);
            }
            if let Some(f) = self_entry {
                t_indices.push(j as u32);
                t_weights.push(f(j));
            }
            t_indptr.push(t_indices.len());
        }
        let at = SparseMat::new(b.num_src, b.num_dst, t_indptr, t_indices, t_weights);
        Propagation {
            a: Arc::new(a),
            at: Arc::new(at),
        }
    }
}

/// One sampled layer: the block and its propagation matrices built on first use.
struct LayerBlock {
    block: Block,
    gcn: OnceLock<Propagation>,
    mean: OnceLock<Propagation>,
    sum: OnceLock<Propagation>,
    cheb: OnceLock<Propagation>,
    attention: OnceLock<Arc<EdgeIndex>>,
}

/// The graph as models see it: the CSR plus propagation matrices built on first use.
pub struct GraphCtx<'g> {
    pub csr: &'g Csr,
    /// Mini-batch: one block per layer, input layer first. Empty: the whole graph.
    blocks: Vec<Arc<LayerBlock>>,
    /// Mini-batch: global ids of the batch's nodes; block l's src nodes are the first
    /// `num_src`.
    nodes: Vec<u32>,
    /// Mini-batch: full-graph in-degrees the sampler gave (a prefix of `nodes`).
    sampled_degree: Vec<u32>,
    /// Mini-batch: the full-graph in-degree of every node, completed from the graph on first
    /// use (only GCN-style normalisations need the degrees of source-only nodes).
    degree: OnceLock<Vec<u32>>,
    /// Model layer that `blocks[0]` serves (layer-wise inference runs one layer at a time).
    first_layer: usize,
    gcn: OnceLock<Propagation>,
    sum: OnceLock<Propagation>,
    mean: OnceLock<Propagation>,
    cheb: OnceLock<Propagation>,
    attention: OnceLock<Arc<EdgeIndex>>,
    /// Per-node gate features of the output rows (SAGMM), set by the trainer.
    gate: Option<Arc<Matrix>>,
    /// Graph-level batches: which output rows belong to which graph.
    segments: Option<Arc<crate::readout::Segments>>,
    /// The output rows' edges with their features (GINE), when the dataset has them.
    edge_features: Option<Arc<crate::EdgeFeatures>>,
    /// Structures an architecture derives from the graph once (keyed by the architecture).
    extra: Mutex<HashMap<&'static str, Arc<dyn Any + Send + Sync>>>,
}

impl<'g> GraphCtx<'g> {
    /// Wraps a graph; nothing is computed until an architecture asks.
    pub fn new(csr: &'g Csr) -> GraphCtx<'g> {
        GraphCtx {
            csr,
            blocks: Vec::new(),
            nodes: Vec::new(),
            sampled_degree: Vec::new(),
            degree: OnceLock::new(),
            first_layer: 0,
            gcn: OnceLock::new(),
            sum: OnceLock::new(),
            mean: OnceLock::new(),
            cheb: OnceLock::new(),
            attention: OnceLock::new(),
            gate: None,
            segments: None,
            edge_features: None,
            extra: Mutex::new(HashMap::new()),
        }
    }

    /// A sampled mini-batch of `csr`: layer l runs on `batch.blocks[l]`.
    pub fn from_batch(csr: &'g Csr, batch: Batch) -> GraphCtx<'g> {
        GraphCtx::from_batch_at(csr, batch, 0)
    }

    /// As `from_batch`, with `batch.blocks[0]` serving model layer `first_layer` (layer-wise
    /// inference: one block, one layer).
    pub fn from_batch_at(csr: &'g Csr, batch: Batch, first_layer: usize) -> GraphCtx<'g> {
        let blocks = batch
            .blocks
            .into_iter()
            .map(|block| {
                Arc::new(LayerBlock {
                    block,
                    gcn: OnceLock::new(),
                    mean: OnceLock::new(),
                    sum: OnceLock::new(),
                    cheb: OnceLock::new(),
                    attention: OnceLock::new(),
                })
            })
            .collect();
        GraphCtx {
            blocks,
            nodes: batch.nodes,
            sampled_degree: batch.degree,
            first_layer,
            ..GraphCtx::new(csr)
        }
    }

    /// Builds, for every sampled layer, the operator `kind` will ask for, so a prefetch
    /// worker can pay for it instead of the trainer.
    pub fn prepare(&mut self, kind: crate::ModelKind) {
        use crate::registry::Operator;
        for l in self.first_layer..self.first_layer + self.blocks.len() {
            for op in kind.spec().operators {
                match op {
                    Operator::Gcn => drop(self.gcn_at(l)),
                    Operator::Cheb => drop(self.cheb_at(l)),
                    Operator::Mean => drop(self.mean_at(l)),
                    Operator::Sum => drop(self.sum_at(l)),
                    Operator::Attention => drop(self.attention_at(l)),
                }
            }
        }
        // The CSCs served the transposes just built; a batch waiting in the prefetch queue
        // holding them raised the products SAGE profile's peak RSS by 5 % (3,102 -> 3,257 MiB).
        for lb in &mut self.blocks {
            // Shared only by `skip_blocks` views, which exist during a pass, not here.
            if let Some(lb) = Arc::get_mut(lb) {
                lb.block.csc.take();
            }
        }
    }

    /// The same mini-batch without its first `skip` blocks: layer 0 of the view runs on
    /// block `skip` (a SAGMM expert shallower than the mixture). The blocks and the
    /// operators already built are shared, not copied.
    pub fn skip_blocks(&self, skip: usize) -> GraphCtx<'g> {
        let degree = OnceLock::new();
        if let Some(d) = self.degree.get() {
            let _ = degree.set(d.clone());
        }
        GraphCtx {
            blocks: self.blocks.iter().skip(skip).cloned().collect(),
            nodes: self.nodes.clone(),
            sampled_degree: self.sampled_degree.clone(),
            degree,
            gate: self.gate.clone(),
            segments: self.segments.clone(),
            edge_features: self.edge_features.clone(),
            ..GraphCtx::new(self.csr)
        }
    }

    /// Full-graph in-degree of each node of the batch.
    fn degree(&self) -> &[u32] {
        self.degree.get_or_init(|| {
            let known = self.sampled_degree.len().min(self.nodes.len());
            let mut d = self.sampled_degree[..known].to_vec();
            d.extend(
                self.nodes[known..]
                    .iter()
                    .map(|&v| self.csr.degree(v as usize).min(u32::MAX as usize) as u32),
            );
            d
        })
    }

    /// Full-graph in-degree of the first `rows` rows (the batch's nodes, or the graph's).
    pub fn row_degrees(&self, rows: usize) -> Vec<u32> {
        if self.nodes.is_empty() {
            (0..rows.min(self.csr.num_nodes()))
                .map(|v| self.csr.degree(v).min(u32::MAX as usize) as u32)
                .collect()
        } else {
            self.degree()[..rows.min(self.nodes.len())].to_vec()
        }
    }

    /// The block serving model layer `l` (`None` on the whole graph).
    fn block(&self, l: usize) -> Option<&LayerBlock> {
        l.checked_sub(self.first_layer)
            .and_then(|i| self.blocks.get(i))
            .map(|b| &**b)
    }

    /// Attaches the gate features of the output rows (every node on the whole graph, the
    /// seeds on a mini-batch), which SAGMM's gate reads.
    pub fn with_gate_input(mut self, g: Arc<Matrix>) -> Self {
        self.gate = Some(g);
        self
    }

    /// Attaches the graphs of a graph-level batch: graph g owns output rows
    /// `segments.ptr()[g]..[g+1]`, and a model with a readout pools them.
    pub fn set_segments(&mut self, segments: Arc<crate::readout::Segments>) {
        self.segments = Some(segments);
    }

    /// Attaches the edges among the output rows with their features (GINE's messages).
    pub fn set_edge_features(&mut self, e: Arc<crate::EdgeFeatures>) {
        self.edge_features = Some(e);
    }

    /// The edge features attached with `set_edge_features`.
    pub fn edge_features(&self) -> Option<&Arc<crate::EdgeFeatures>> {
        self.edge_features.as_ref()
    }

    /// The graphs attached with `set_segments`.
    pub fn segments(&self) -> Option<&Arc<crate::readout::Segments>> {
        self.segments.as_ref()
    }

    /// The gate features attached with `with_gate_input`.
    pub fn gate_input(&self) -> Option<&Arc<Matrix>> {
        self.gate.as_ref()
    }

    /// Number of sampled layers (0 for the whole graph).
    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Rows layer `l` outputs: its block's dst nodes, or `None` on the whole graph (all rows).
    pub fn num_dst(&self, l: usize) -> Option<usize> {
        self.block(l).map(|b| b.block.num_dst)
    }

    /// GCN's operator for layer `l`; on a block, `Â_ij = (d_i/s_i) / sqrt((d_i+1)(d_j+1))`
    /// plus `1/(d_i+1)` on the diagonal, with full-graph degrees d.
    pub fn gcn_at(&self, l: usize) -> &Propagation {
        match self.block(l) {
            None => self.gcn(),
            Some(lb) => lb.gcn.get_or_init(|| {
                let dis: Vec<f32> = self.degree()[..lb.block.num_src]
                    .iter()
                    .map(|&d| 1.0 / (d as f32 + 1.0).sqrt())
                    .collect();
                let self_w = |i: usize| dis[i] * dis[i];
                Propagation::block(
                    &lb.block,
                    |i, j, s| s * dis[i] * dis[j],
                    false,
                    Some(&self_w),
                )
            }),
        }
    }

    /// Row-mean over the (sampled) in-neighbours for layer `l`.
    pub fn mean_at(&self, l: usize) -> &Propagation {
        match self.block(l) {
            None => self.mean(),
            Some(lb) => lb.mean.get_or_init(|| {
                let inv: Vec<f32> = (0..lb.block.num_dst)
                    .map(|i| 1.0 / lb.block.row(i).len().max(1) as f32)
                    .collect();
                Propagation::block(&lb.block, |i, _, _| inv[i], false, None)
            }),
        }
    }

    /// GAT's attention pattern for layer `l`: the (sampled) in-neighbours plus exactly one
    /// self loop per destination (existing self loops replaced, as PyG's GATConv).
    pub fn attention_at(&self, l: usize) -> Arc<EdgeIndex> {
        let cell = match self.block(l) {
            None => &self.attention,
            Some(lb) => &lb.attention,
        };
        cell.get_or_init(|| Arc::new(EdgeIndex::new(&self.sum_at(l).a)))
            .clone()
    }

    /// ChebNet's scaled Laplacian for block `l`; on a block, `-(d_i/s_i) / sqrt(d_i d_j)`
    /// over sampled edges other than self loops, with full-graph degrees d.
    pub fn cheb_at(&self, l: usize) -> &Propagation {
        match self.block(l) {
            None => self.cheb.get_or_init(|| Propagation::cheb(self.csr)),
            Some(lb) => lb.cheb.get_or_init(|| {
                // As in `gcn_at`, d is the CSR degree: a self loop in the graph counts in it
                // on a block, not on the whole graph (ingest can drop self loops).
                let dis: Vec<f32> = self.degree()[..lb.block.num_src]
                    .iter()
                    .map(|&d| if d > 0 { 1.0 / (d as f32).sqrt() } else { 0.0 })
                    .collect();
                Propagation::block(&lb.block, |i, j, s| -s * dis[i] * dis[j], true, None)
            }),
        }
    }

    /// `A + I` with unit weights (GIN, ε = 0) for layer `l`; on a block, sampled edges
    /// weigh `d_i / s_i`.
    pub fn sum_at(&self, l: usize) -> &Propagation {
        match self.block(l) {
            None => self
                .sum
                .get_or_init(|| Propagation::sum_with_self(self.csr)),
            Some(lb) => lb
                .sum
                .get_or_init(|| Propagation::block(&lb.block, |_, _, s| s, false, Some(&|_| 1.0))),
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
