//! `Block` (one message-flow layer as a CSR over its dst nodes, its CSC, and the sampler's
//! normalisation) and `Batch` (the blocks of one mini-batch plus the global ids of its nodes).

use std::sync::OnceLock;

/// One message-flow layer: dst nodes are the first `num_dst` of the src nodes.
#[derive(Debug, Clone, Default)]
pub struct Block {
    /// Number of destination (output) nodes.
    pub num_dst: usize,
    /// Number of source (input) nodes; `num_src >= num_dst`.
    pub num_src: usize,
    /// CSR over dst rows: edges of dst i are indices[indptr[i]..indptr[i+1]], local src ids (< num_src).
    pub indptr: Vec<usize>,
    /// Local src ids of every edge, row by row.
    pub indices: Vec<u32>,
    /// Factor the sampler gives each dst row's sum of messages (one per dst): neighbour
    /// sampling's `d_i / s_i` (full in-degree over sampled count) makes the sum over the
    /// sample an unbiased estimate of the sum over all in-neighbours; 1 where a row holds
    /// every in-edge. Samplers with their own estimator (ClusterGCN, GraphSAINT) set theirs.
    pub scale: Vec<f32>,
    /// The same edges by src (CSC), built on first use: the backward pass of a propagation
    /// walks it. Built lazily so a sampler benchmark or a model that never propagates
    /// backward does not pay for it.
    pub csc: OnceLock<Csc>,
}

/// A block's edges grouped by src node: the edges leaving src `j` are
/// `dst[indptr[j]..indptr[j + 1]]`, in increasing dst order, and `edge[k]` is the position
/// of edge `k` in the block's CSR (`indices`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Csc {
    pub indptr: Vec<usize>,
    pub dst: Vec<u32>,
    pub edge: Vec<usize>,
}

/// Blocks are equal when their edges and scales are: the CSC is derived from them.
impl PartialEq for Block {
    fn eq(&self, other: &Block) -> bool {
        (self.num_dst, self.num_src) == (other.num_dst, other.num_src)
            && self.indptr == other.indptr
            && self.indices == other.indices
            && self.scale == other.scale
    }
}

impl Block {
    /// Number of edges (messages) in the block.
    pub fn num_edges(&self) -> usize {
        self.indices.len()
    }

    /// Local src ids of dst node `i`'s edges.
    pub fn row(&self, i: usize) -> &[u32] {
        &self.indices[self.indptr[i]..self.indptr[i + 1]]
    }

    /// The block's CSC, built by a counting sort over src ids on the first call.
    pub fn csc(&self) -> &Csc {
        self.csc.get_or_init(|| {
            let mut indptr = vec![0usize; self.num_src + 1];
            for &j in &self.indices {
                indptr[j as usize + 1] += 1;
            }
            for j in 0..self.num_src {
                indptr[j + 1] += indptr[j];
            }
            let mut cursor = indptr[..self.num_src].to_vec();
            let mut dst = vec![0u32; self.indices.len()];
            let mut edge = vec![0usize; self.indices.len()];
            // Rows in increasing order, so each src's dst list comes out sorted.
            for i in 0..self.num_dst {
                for e in self.indptr[i]..self.indptr[i + 1] {
                    let c = &mut cursor[self.indices[e] as usize];
                    dst[*c] = i as u32;
                    edge[*c] = e;
                    *c += 1;
                }
            }
            Csc { indptr, dst, edge }
        })
    }
}

/// A mini-batch: global ids of every input node (seeds first, in the order given), and the blocks from the input layer (blocks[0], largest) to the output layer (last; its num_dst == number of seeds).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// Number of seed (output) nodes; `nodes[..num_seeds]` are the seeds.
    pub num_seeds: usize,
    /// Global node ids of blocks[0]'s src nodes; nodes[..blocks[l].num_src] are block l's src nodes, and nodes[..blocks[l].num_dst] its dst nodes (prefix property, for every l).
    pub nodes: Vec<u32>,
    /// Message-flow layers, input layer first.
    pub blocks: Vec<Block>,
    /// Full-graph in-degree of the first `degree.len()` nodes: at least every dst node of
    /// every block (the rows the sampler drew from, whose `scale` it comes with). Nodes that
    /// are only sources are left to the consumers that need their degree (GCN's symmetric
    /// normalisation, not SAGE's mean): looking them up made the products sampler benchmark
    /// 20.3 -> 22.9 ms per batch.
    pub degree: Vec<u32>,
    /// For a batch of edge seeds (`SeedInput::Edges`): where each edge's endpoints are among
    /// the seeds (`nodes[src[i]] → nodes[dst[i]]`), in the order the edges were given.
    pub edges: Option<EdgeSeeds>,
}

/// Positions of a batch's seed edges' endpoints among its seed nodes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EdgeSeeds {
    pub src: Vec<u32>,
    pub dst: Vec<u32>,
}

impl Batch {
    /// Removes the edges between the endpoints of `pairs` (global ids, either direction)
    /// from every block, as if the graph did not have them: link prediction's training
    /// batches leave out the edges they are scored on, so a model cannot read a target edge
    /// off its own neighbourhood (DGL's `exclude="reverse_id"`). Rows keep an unbiased
    /// scale: `d'/s'` with the in-degree and the sampled count both without those edges.
    pub fn remove_pairs(&mut self, pairs: &[[u32; 2]]) {
        use std::collections::{HashMap, HashSet};
        if pairs.is_empty() {
            return;
        }
        let key = |a: u32, b: u32| ((a.min(b) as u64) << 32) | a.max(b) as u64;
        let set: HashSet<u64> = pairs.iter().map(|p| key(p[0], p[1])).collect();
        // Target edges at each endpoint: what its in-degree loses.
        let mut lost: HashMap<u32, u32> = HashMap::new();
        for &k in &set {
            let (a, b) = ((k >> 32) as u32, k as u32);
            if a != b {
                *lost.entry(a).or_default() += 1;
                *lost.entry(b).or_default() += 1;
            }
        }
        let nodes = &self.nodes;
        for block in &mut self.blocks {
            let mut indptr = Vec::with_capacity(block.indptr.len());
            let mut indices = Vec::with_capacity(block.indices.len());
            indptr.push(0);
            for i in 0..block.num_dst {
                let gi = nodes[i];
                let row = &block.indices[block.indptr[i]..block.indptr[i + 1]];
                let s = row.len();
                // Only a pair's endpoints have a pair's edge in their row: one lookup per row
                // for the others instead of one per edge.
                let Some(&l) = lost.get(&gi) else {
                    indices.extend_from_slice(row);
                    indptr.push(indices.len());
                    continue;
                };
                indices.extend(
                    row.iter()
                        .copied()
                        .filter(|&j| !set.contains(&key(gi, nodes[j as usize]))),
                );
                indptr.push(indices.len());
                let kept = indices.len() - indptr[i];
                {
                    let d = self.degree.get(i).copied().unwrap_or(s as u32);
                    let d2 = d.saturating_sub(l);
                    block.scale[i] = if kept == 0 || kept as u32 >= d2 {
                        1.0
                    } else {
                        d2 as f32 / kept as f32
                    };
                }
            }
            block.indptr = indptr;
            block.indices = indices;
            block.csc = std::sync::OnceLock::new();
        }
        for (i, d) in self.degree.iter_mut().enumerate() {
            if let Some(l) = lost.get(&nodes[i]) {
                *d = d.saturating_sub(*l);
            }
        }
    }

    /// Number of sampled edges: PyG's `edge_index.size(1)` for the same mini-batch (the input
    /// block holds every sampled edge, since each node's draw is reused by every layer).
    pub fn num_edges(&self) -> usize {
        self.blocks.first().map_or(0, Block::num_edges)
    }
}
