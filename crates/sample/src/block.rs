//! `Block` (one message-flow layer as a CSR over its dst nodes) and `Batch` (the blocks of one
//! mini-batch plus the global ids of its nodes).

/// One message-flow layer: dst nodes are the first `num_dst` of the src nodes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Block {
    /// Number of destination (output) nodes.
    pub num_dst: usize,
    /// Number of source (input) nodes; `num_src >= num_dst`.
    pub num_src: usize,
    /// CSR over dst rows: edges of dst i are indices[indptr[i]..indptr[i+1]], local src ids (< num_src).
    pub indptr: Vec<usize>,
    /// Local src ids of every edge, row by row.
    pub indices: Vec<u32>,
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
}

/// A mini-batch: global ids of every input node (seeds first, in the order given), and the blocks from the input layer (blocks[0], largest) to the output layer (last; its num_dst == number of seeds).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    /// Number of seed (output) nodes; `nodes[..num_seeds]` are the seeds.
    pub num_seeds: usize,
    /// Global node ids of blocks[0]'s src nodes; nodes[..blocks[l].num_src] are block l's src nodes, and nodes[..blocks[l].num_dst] its dst nodes (prefix property, for every l).
    pub nodes: Vec<u32>,
    /// Message-flow layers, input layer first.
    pub blocks: Vec<Block>,
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
    /// Number of sampled edges: PyG's `edge_index.size(1)` for the same mini-batch (the input
    /// block holds every sampled edge, since each node's draw is reused by every layer).
    pub fn num_edges(&self) -> usize {
        self.blocks.first().map_or(0, Block::num_edges)
    }
}
