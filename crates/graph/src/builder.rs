//! `CsrBuilder`: edge list → in-neighbour CSR by a parallel, stable counting sort, with
//! symmetrisation, self-loop removal, deduplication and relabelling as options.

use rayon::prelude::*;
use scalegnn_npy::{Array, Element};

use crate::csr::I32_LIMIT;
use crate::sync_ptr::SyncPtr;
use crate::{Csr, GraphError, Indices, Result};

/// An integer type usable as a node id in an input edge list.
pub trait NodeId: Copy + Send + Sync {
    /// The id as i64 (u64 ids above i64::MAX become negative and are rejected).
    fn to_i64(self) -> i64;
}

macro_rules! node_id {
    ($($t:ty),*) => {$(impl NodeId for $t {
        #[inline]
        fn to_i64(self) -> i64 { self as i64 }
    })*};
}
node_id!(u32, i32, u64, i64, usize);

/// An index type of the output CSR (i32 or i64).
pub(crate) trait Idx: Element + Copy + Ord + Default {
    fn from_i64(v: i64) -> Self;
    fn wrap(v: Vec<Self>) -> Indices;
}
impl Idx for i32 {
    #[inline]
    fn from_i64(v: i64) -> Self {
        v as i32
    }
    fn wrap(v: Vec<Self>) -> Indices {
        Indices::I32(Array::from_vec1(v))
    }
}
impl Idx for i64 {
    #[inline]
    fn from_i64(v: i64) -> Self {
        v
    }
    fn wrap(v: Vec<Self>) -> Indices {
        Indices::I64(Array::from_vec1(v))
    }
}

/// Options for turning an edge list into a CSR.
#[derive(Debug, Clone, Default)]
pub struct CsrBuilder {
    undirected: bool,
    dedup: bool,
    remove_self_loops: bool,
    relabel: bool,
    num_nodes: Option<usize>,
    track_edge_ids: bool,
}

/// A built graph and the bookkeeping needed to carry edge/node data along.
#[derive(Debug)]
pub struct BuiltGraph {
    pub csr: Csr,
    /// For each CSR entry, the index of the input edge it came from (when tracked).
    pub edge_ids: Option<Vec<u64>>,
    /// For each new node id, the original id (when relabelled).
    pub node_ids: Option<Vec<i64>>,
}

impl CsrBuilder {
    /// Default options: directed, keep duplicates and self loops, ids used as given.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds the reverse of every edge.
    pub fn undirected(mut self, yes: bool) -> Self {
        self.undirected = yes;
        self
    }
    /// Keeps one copy of each (src, dst) pair.
    pub fn dedup(mut self, yes: bool) -> Self {
        self.dedup = yes;
        self
    }
    /// Drops edges v→v.
    pub fn remove_self_loops(mut self, yes: bool) -> Self {
        self.remove_self_loops = yes;
        self
    }
    /// Maps the distinct ids, sorted, to 0..N.
    pub fn relabel(mut self, yes: bool) -> Self {
        self.relabel = yes;
        self
    }
    /// Fixes N (isolated trailing nodes); ids must be below it. Ignored when relabelling.
    pub fn num_nodes(mut self, n: usize) -> Self {
        self.num_nodes = Some(n);
        self
    }
    /// Records, for each CSR entry, which input edge it came from (to reorder edge features).
    pub fn track_edge_ids(mut self, yes: bool) -> Self {
        self.track_edge_ids = yes;
        self
    }

    /// Builds the CSR of in-neighbours: edge `src[k] → dst[k]` puts `src[k]` in row `dst[k]`.
    pub fn build<T: NodeId>(&self, src: &[T], dst: &[T]) -> Result<BuiltGraph> {
        if src.len() != dst.len() {
            return Err(GraphError::LengthMismatch {
                src: src.len(),
                dst: dst.len(),
            });
        }
        if let Some(k) = (0..src.len())
            .into_par_iter()
            .with_min_len(1 << 14)
            .find_first(|&k| src[k].to_i64() < 0 || dst[k].to_i64() < 0)
        {
            let id = src[k].to_i64().min(dst[k].to_i64());
            return Err(GraphError::IdOutOfRange {
                edge: k,
                id,
                num_nodes: self.num_nodes.unwrap_or(0),
            });
        }
        if self.relabel {
            let mut ids: Vec<i64> = src
                .par_iter()
                .chain(dst.par_iter())
                .map(|v| v.to_i64())
                .collect();
            ids.par_sort_unstable();
            ids.dedup();
            let map = |v: i64| ids.binary_search(&v).expect("id was collected") as i64;
            let s: Vec<i64> = src.par_iter().map(|v| map(v.to_i64())).collect();
            let d: Vec<i64> = dst.par_iter().map(|v| map(v.to_i64())).collect();
            let n = ids.len();
            let mut g = self.build_mapped(n, s.len(), |k| (s[k], d[k]));
            g.node_ids = Some(ids);
            return Ok(g);
        }
        let max_id = src
            .par_iter()
            .chain(dst.par_iter())
            .map(|v| v.to_i64())
            .max()
            .unwrap_or(-1);
        let n = match self.num_nodes {
            Some(n) => {
                if max_id >= n as i64 {
                    let k = (0..src.len())
                        .into_par_iter()
                        .find_first(|&k| src[k].to_i64() >= n as i64 || dst[k].to_i64() >= n as i64)
                        .unwrap_or(0);
                    return Err(GraphError::IdOutOfRange {
                        edge: k,
                        id: src[k].to_i64().max(dst[k].to_i64()),
                        num_nodes: n,
                    });
                }
                n
            }
            None => (max_id as u64 + 1) as usize,
        };
        self.check_size(n, max_id, src.len())?;
        Ok(self.build_mapped(n, src.len(), |k| (src[k].to_i64(), dst[k].to_i64())))
    }

    /// Refuses, before allocating, a node count whose arrays cannot fit: the row pointer and
    /// one count array per chunk are `n` long whatever the edge count (an id of 10^12 in a
    /// three-line CSV would ask for terabytes), plus the output indices.
    fn check_size(&self, n: usize, max_id: i64, m: usize) -> Result<()> {
        let chunks = rayon::current_num_threads().clamp(1, 64) as u128;
        let per_edge =
            if self.undirected { 2 } else { 1 } * if self.track_edge_ids { 16 } else { 8 };
        let bytes = (chunks + 1) * (n as u128 + 1) * 8 + m as u128 * per_edge;
        scalegnn_limits::check_alloc("building the CSR", bytes).map_err(|err| {
            GraphError::TooManyNodes {
                nodes: n as u128,
                max_id,
                err,
            }
        })
    }

    fn build_mapped<F>(&self, n: usize, m: usize, edge: F) -> BuiltGraph
    where
        F: Fn(usize) -> (i64, i64) + Sync,
    {
        if n >= I32_LIMIT {
            self.assemble::<i64, F>(n, m, edge)
        } else {
            self.assemble::<i32, F>(n, m, edge)
        }
    }

    fn assemble<I: Idx, F>(&self, n: usize, m: usize, edge: F) -> BuiltGraph
    where
        F: Fn(usize) -> (i64, i64) + Sync,
    {
        // One count array per chunk (not per edge, not atomics): the prefix over chunks gives
        // each chunk private write cursors, so the scatter is lock-free and stable.
        let nchunks = rayon::current_num_threads().clamp(1, 64).min(m.max(1));
        let bounds: Vec<(usize, usize)> = (0..nchunks)
            .map(|c| (m * c / nchunks, m * (c + 1) / nchunks))
            .collect();
        let emit = |k: usize, f: &mut dyn FnMut(i64, i64)| {
            let (s, d) = edge(k);
            if s == d {
                if !self.remove_self_loops {
                    f(s, d);
                }
                return;
            }
            f(s, d);
            if self.undirected {
                f(d, s);
            }
        };
        let mut cursors: Vec<Vec<usize>> = bounds
            .par_iter()
            .map(|&(lo, hi)| {
                let mut cnt = vec![0usize; n];
                for k in lo..hi {
                    emit(k, &mut |_, d| cnt[d as usize] += 1);
                }
                cnt
            })
            .collect();
        let mut indptr = vec![0i64; n + 1];
        for v in 0..n {
            let mut acc = indptr[v] as usize;
            for c in cursors.iter_mut() {
                let t = c[v];
                c[v] = acc;
                acc += t;
            }
            indptr[v + 1] = acc as i64;
        }
        let e = indptr[n] as usize;
        let mut indices: Vec<I> = vec![I::default(); e];
        let mut eids: Vec<u64> = if self.track_edge_ids {
            vec![0; e]
        } else {
            Vec::new()
        };
        {
            let ip = SyncPtr(indices.as_mut_ptr());
            let ep = SyncPtr(eids.as_mut_ptr());
            let track = self.track_edge_ids;
            bounds
                .par_iter()
                .zip(cursors.par_iter_mut())
                .for_each(|(&(lo, hi), cur)| {
                    for k in lo..hi {
                        emit(k, &mut |s, d| {
                            let slot = &mut cur[d as usize];
                            // SAFETY: cursors of different chunks cover disjoint slot ranges.
                            unsafe {
                                ip.write(*slot, I::from_i64(s));
                                if track {
                                    ep.write(*slot, k as u64);
                                }
                            }
                            *slot += 1;
                        });
                    }
                });
        }
        drop(cursors);
        let (indptr, indices, eids) = sort_rows(indptr, indices, eids, self.dedup);
        BuiltGraph {
            csr: Csr::from_trusted(indptr, I::wrap(indices)),
            edge_ids: self.track_edge_ids.then_some(eids),
            node_ids: None,
        }
    }
}

/// Sorts each row by source id (ties by input order), optionally dropping repeated sources,
/// and compacts the arrays when anything was dropped.
fn sort_rows<I: Idx>(
    indptr: Vec<i64>,
    mut indices: Vec<I>,
    mut eids: Vec<u64>,
    dedup: bool,
) -> (Vec<i64>, Vec<I>, Vec<u64>) {
    let n = indptr.len() - 1;
    let track = !eids.is_empty();
    let ip = SyncPtr(indices.as_mut_ptr());
    let ep = SyncPtr(eids.as_mut_ptr());
    // New row lengths after dedup.
    let kept: Vec<usize> = (0..n)
        .into_par_iter()
        .with_min_len(256)
        .map_init(Vec::new, |scratch: &mut Vec<(I, u64)>, v| {
            let (a, b) = (indptr[v] as usize, indptr[v + 1] as usize);
            // SAFETY: rows are disjoint ranges of the arrays.
            let row = unsafe { ip.slice_mut(a, b - a) };
            if track {
                let er = unsafe { ep.slice_mut(a, b - a) };
                scratch.clear();
                scratch.extend(row.iter().copied().zip(er.iter().copied()));
                scratch.sort_unstable();
                for (k, &(s, id)) in scratch.iter().enumerate() {
                    row[k] = s;
                    er[k] = id;
                }
            } else {
                row.sort_unstable();
            }
            if !dedup || row.len() < 2 {
                return row.len();
            }
            // Compact in place; the first (lowest input index) copy of each source is kept.
            let mut w = 1;
            for r in 1..row.len() {
                if row[r] != row[w - 1] {
                    row[w] = row[r];
                    if track {
                        let er = unsafe { ep.slice_mut(a, b - a) };
                        er[w] = er[r];
                    }
                    w += 1;
                }
            }
            w
        })
        .collect();
    let total: usize = kept.iter().sum();
    if total == indptr[n] as usize {
        return (indptr, indices, eids);
    }
    let mut new_ptr = vec![0i64; n + 1];
    for v in 0..n {
        new_ptr[v + 1] = new_ptr[v] + kept[v] as i64;
    }
    let mut out: Vec<I> = vec![I::default(); total];
    let mut out_e: Vec<u64> = if track { vec![0; total] } else { Vec::new() };
    let op = SyncPtr(out.as_mut_ptr());
    let oe = SyncPtr(out_e.as_mut_ptr());
    (0..n).into_par_iter().with_min_len(1024).for_each(|v| {
        let (a, k, o) = (indptr[v] as usize, kept[v], new_ptr[v] as usize);
        // SAFETY: output rows are disjoint.
        unsafe {
            op.slice_mut(o, k).copy_from_slice(&indices[a..a + k]);
            if track {
                oe.slice_mut(o, k).copy_from_slice(&eids[a..a + k]);
            }
        }
    });
    (new_ptr, out, out_e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(g: &Csr) -> Vec<Vec<usize>> {
        (0..g.num_nodes())
            .map(|v| g.neighbors(v).iter().collect())
            .collect()
    }

    #[test]
    fn directed_keeps_everything() {
        let g = CsrBuilder::new()
            .build(&[0u32, 1, 2, 1, 2], &[1u32, 2, 0, 2, 2])
            .unwrap()
            .csr;
        assert_eq!(rows(&g), vec![vec![2], vec![0], vec![1, 1, 2]]);
    }

    #[test]
    fn undirected_dedup_no_loops() {
        let b = CsrBuilder::new()
            .undirected(true)
            .dedup(true)
            .remove_self_loops(true);
        let g = b
            .build(&[0i64, 1, 2, 1, 2, 3], &[1i64, 2, 0, 2, 2, 3])
            .unwrap()
            .csr;
        assert_eq!(rows(&g), vec![vec![1, 2], vec![0, 2], vec![0, 1], vec![]]);
        assert!(g.is_symmetric());
    }

    #[test]
    fn relabel_and_edge_ids() {
        let b = CsrBuilder::new()
            .relabel(true)
            .track_edge_ids(true)
            .dedup(true);
        let out = b.build(&[100i64, 7, 100, 100], &[7i64, 55, 7, 55]).unwrap();
        assert_eq!(out.node_ids.as_deref(), Some(&[7i64, 55, 100][..]));
        // row 0 (id 7) <- 100 (edges 0 and 2: first kept); row 1 (55) <- 7 (edge 1), 100 (edge 3)
        assert_eq!(rows(&out.csr), vec![vec![2], vec![0, 2], vec![]]);
        assert_eq!(out.edge_ids.unwrap(), vec![0, 1, 3]);
    }

    #[test]
    fn out_of_range_and_negative_ids() {
        let e = CsrBuilder::new()
            .num_nodes(3)
            .build(&[0i64, 5], &[1i64, 1])
            .unwrap_err();
        assert!(
            matches!(e, GraphError::IdOutOfRange { edge: 1, id: 5, .. }),
            "{e}"
        );
        let e = CsrBuilder::new()
            .build(&[0i64, -1], &[1i64, 1])
            .unwrap_err();
        assert!(
            matches!(
                e,
                GraphError::IdOutOfRange {
                    edge: 1,
                    id: -1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(CsrBuilder::new().build(&[0i64], &[1i64, 1]).is_err());
        // Sizes come from ids: 10^12, i64::MAX or a given 10^14 nodes are refused before any
        // allocation, with a hint to relabel.
        for (ids, given) in [
            (vec![0i64, 1_000_000_000_000], None),
            (vec![0i64, i64::MAX], None),
            (vec![0i64, 1], Some(100_000_000_000_000usize)),
        ] {
            let mut b = CsrBuilder::new();
            if let Some(n) = given {
                b = b.num_nodes(n);
            }
            let e = b.build(&ids, &[1i64, 0]).unwrap_err();
            assert!(
                matches!(e, GraphError::TooManyNodes { .. }) && e.to_string().contains("--relabel"),
                "{e}"
            );
        }
        // Relabelled, the same sparse ids are a two-node graph.
        let g = CsrBuilder::new()
            .relabel(true)
            .build(&[0i64, 1_000_000_000_000], &[1_000_000_000_000i64, 0])
            .unwrap();
        assert_eq!(g.csr.num_nodes(), 2);
    }

    #[test]
    fn matches_a_naive_build_on_random_edges() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        let n = 500u32;
        let src: Vec<u32> = (0..20_000).map(|_| rng.random_range(0..n)).collect();
        let dst: Vec<u32> = (0..20_000).map(|_| rng.random_range(0..n)).collect();
        let g = CsrBuilder::new()
            .undirected(true)
            .dedup(true)
            .remove_self_loops(true)
            .build(&src, &dst)
            .unwrap()
            .csr;
        let mut want = vec![std::collections::BTreeSet::new(); n as usize];
        for (&s, &d) in src.iter().zip(&dst) {
            if s != d {
                want[d as usize].insert(s as usize);
                want[s as usize].insert(d as usize);
            }
        }
        let want: Vec<Vec<usize>> = want.into_iter().map(|s| s.into_iter().collect()).collect();
        assert_eq!(rows(&g), want);
    }
}
