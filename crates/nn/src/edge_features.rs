//! The edges of a batch of graphs (or of the whole graph) with their features, for layers
//! whose messages read edge attributes (GINE): each edge's source row, the incidence matrix
//! that sums a destination's edges, and the attribute rows in the same order.

use std::sync::Arc;

use scalegnn_tensor::{Matrix, SparseMat};

use crate::Propagation;

/// Edges grouped by destination row, with their attributes.
#[derive(Debug)]
pub struct EdgeFeatures {
    /// Source row of each edge.
    pub src: Arc<Vec<usize>>,
    /// `[rows, edges]` of ones: row v sums the messages of v's edges.
    pub incidence: Propagation,
    /// `[edges, width]`: edge k's attributes.
    pub attr: Arc<Matrix>,
}

impl EdgeFeatures {
    /// `rows` destination rows; destination v's edges are `dst_ptr[v]..dst_ptr[v+1]`, with
    /// sources `src` and attributes `attr` (one row per edge).
    pub fn new(dst_ptr: Vec<usize>, src: Vec<usize>, attr: Matrix) -> EdgeFeatures {
        let rows = dst_ptr.len().saturating_sub(1);
        let e = src.len();
        assert_eq!(dst_ptr.last().copied().unwrap_or(0), e, "edge pointer");
        assert_eq!(attr.rows, e, "one attribute row per edge");
        let ids: Vec<u32> = (0..e as u32).collect();
        let inc = SparseMat::new(rows, e, dst_ptr, ids, vec![1.0; e]);
        EdgeFeatures {
            src: Arc::new(src),
            incidence: Propagation::from_matrix(inc),
            attr: Arc::new(attr),
        }
    }
}
