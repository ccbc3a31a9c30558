//! Graph-attention kernels (GAT): per-head node scores, edge scores `LeakyReLU(s_src[j] +
//! s_dst[i])`, the softmax over each destination's incoming entries, and the weighted
//! aggregation of source rows. Edge values are `[E, H]` (entry k of the pattern, head h);
//! attention dropout on them is `Tape::dropout`.
//!
//! Every kernel, forward and backward, writes disjoint rows in parallel and never scatters:
//! gradients that flow to the source end of an edge are gathered through `EdgeIndex`'s
//! reverse index (the transpose with each entry's position in the forward order), so there
//! are no atomics or locks, and results do not depend on the thread count.

use std::sync::Arc;

use rayon::prelude::*;

use super::activation::{exp_nonpos, leaky, leaky_grad};
use crate::tape::{Backward, Ctx};
use crate::{Matrix, SparseMat, Tape, Var};

/// Floats a task handles at least before the edge kernels split further.
const GRAIN: usize = 1 << 12;
/// Rows per partial sum in reductions over rows (fixed, so the sum order is too).
const ROW_BLOCK: usize = 256;
/// Heads the softmax handles per pass (per-head running values live in stack arrays).
const HEAD_BLOCK: usize = 16;

/// An attention pattern: entries grouped by destination (CSR, row i lists the sources j of
/// entries i ← j), plus the reverse index grouping the same entries by source.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeIndex {
    /// Destinations (rows).
    n: usize,
    /// Sources (columns); equal to `n` on a whole graph, larger on a sampled block.
    n_src: usize,
    indptr: Vec<usize>,
    src: Vec<u32>,
    /// Reverse index: entries with source j are `t_indptr[j]..t_indptr[j + 1]`.
    t_indptr: Vec<usize>,
    /// Destination of each reverse entry.
    t_dst: Vec<u32>,
    /// Forward position k of each reverse entry (where its `[E, H]` values live).
    t_entry: Vec<u32>,
}

impl EdgeIndex {
    /// The pattern of `a` (`[dst, src]`; its weights are ignored), with its reverse index.
    pub fn new(a: &SparseMat) -> EdgeIndex {
        assert!(
            a.nnz() <= u32::MAX as usize,
            "EdgeIndex: more than 2^32 entries"
        );
        let (n, n_src) = (a.rows, a.cols);
        let mut t_indptr = vec![0usize; n_src + 1];
        for &j in &a.indices {
            t_indptr[j as usize + 1] += 1;
        }
        for j in 0..n_src {
            t_indptr[j + 1] += t_indptr[j];
        }
        let mut cursor = t_indptr.clone();
        let mut t_dst = vec![0u32; a.nnz()];
        let mut t_entry = vec![0u32; a.nnz()];
        for i in 0..n {
            for k in a.indptr[i]..a.indptr[i + 1] {
                let j = a.indices[k] as usize;
                t_dst[cursor[j]] = i as u32;
                t_entry[cursor[j]] = k as u32;
                cursor[j] += 1;
            }
        }
        EdgeIndex {
            n,
            n_src,
            indptr: a.indptr.clone(),
            src: a.indices.clone(),
            t_indptr,
            t_dst,
            t_entry,
        }
    }

    /// Number of destination nodes.
    pub fn num_nodes(&self) -> usize {
        self.n
    }

    /// Number of source nodes.
    pub fn num_sources(&self) -> usize {
        self.n_src
    }

    /// Number of entries E (edges, self loops included).
    pub fn num_edges(&self) -> usize {
        self.src.len()
    }

    /// Row pointers over destinations.
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }

    /// Source of each entry.
    pub fn sources(&self) -> &[u32] {
        &self.src
    }
}

/// Calls `f(i, seg)` for every row `i` in `lo..hi`, `seg` being row i's entries in `data`
/// (`w` floats per entry), rows in parallel. Splits at the row nearest the middle entry, so
/// tasks are balanced by entries rather than rows (skewed degrees), with no allocation.
fn par_segments<F>(indptr: &[usize], w: usize, lo: usize, hi: usize, data: &mut [f32], f: &F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let entries = indptr[hi] - indptr[lo];
    if hi - lo <= 1 || entries * w <= GRAIN {
        let base = indptr[lo];
        for i in lo..hi {
            f(
                i,
                &mut data[(indptr[i] - base) * w..(indptr[i + 1] - base) * w],
            );
        }
        return;
    }
    let target = indptr[lo] + entries / 2;
    let mid = (lo + indptr[lo..hi].partition_point(|&p| p <= target)).clamp(lo + 1, hi - 1);
    let (a, b) = data.split_at_mut((indptr[mid] - indptr[lo]) * w);
    rayon::join(
        || par_segments(indptr, w, lo, mid, a, f),
        || par_segments(indptr, w, mid, hi, b, f),
    );
}

/// Heads of a `[rows, heads·f]` value given `heads` (checked).
fn head_width(cols: usize, heads: usize, what: &str) -> usize {
    assert!(
        heads > 0 && cols.is_multiple_of(heads),
        "{what}: {cols} columns do not split into {heads} heads"
    );
    cols / heads
}

/// `⟨a, b⟩` with eight independent partial sums: a plain `sum()` is one chain of dependent
/// adds (strict f32 order), which for per-head widths of 8 costs more than the products.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut s = [0f32; 8];
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            s[l] += x[l] * y[l];
        }
    }
    tail + ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))
}

/// `out[t] = vals[t_entry[t]]` for `[E, h]` edge values: the reverse (by-source) order, so
/// the gathers over a source's entries then read consecutive rows. One pass of independent
/// random reads (which the memory system overlaps) instead of a random read inside each
/// gather's dependent accumulation.
fn to_reverse_order(ei: &EdgeIndex, vals: &[f32], h: usize, out: &mut [f32]) {
    let rows = (GRAIN / h).max(1);
    out.par_chunks_mut(rows * h).enumerate().for_each(|(c, o)| {
        let t0 = c * rows;
        for (t, ot) in (t0..).zip(o.chunks_mut(h)) {
            let k = ei.t_entry[t] as usize;
            ot.copy_from_slice(&vals[k * h..(k + 1) * h]);
        }
    });
}

struct HeadDotBack {
    x: Var,
    a: Var,
    heads: usize,
}

impl Backward for HeadDotBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        let (xv, av) = (cx.value(self.x), cx.value(self.a));
        let (h, c) = (self.heads, xv.cols);
        let f = c / h;
        if cx.needs(self.x) {
            cx.grad(self.x)
                .data
                .par_chunks_mut(c.max(1))
                .zip(g.data.par_chunks(h))
                .with_min_len(64)
                .for_each(|(d, gr)| {
                    for ((d, a), &gh) in d.chunks_mut(f).zip(av.data.chunks(f)).zip(gr) {
                        for (d, a) in d.iter_mut().zip(a) {
                            *d += gh * a;
                        }
                    }
                });
        }
        if cx.needs(self.a) {
            // Σ over rows: fixed row blocks summed in order, so the result is the same for
            // any thread count.
            let partials: Vec<Vec<f32>> = xv
                .data
                .par_chunks(ROW_BLOCK * c.max(1))
                .zip(g.data.par_chunks(ROW_BLOCK * h))
                .map(|(xb, gb)| {
                    let mut p = vec![0f32; c];
                    for (xr, gr) in xb.chunks(c.max(1)).zip(gb.chunks(h)) {
                        for ((p, x), &gh) in p.chunks_mut(f).zip(xr.chunks(f)).zip(gr) {
                            for (p, x) in p.iter_mut().zip(x) {
                                *p += gh * x;
                            }
                        }
                    }
                    p
                })
                .collect();
            let ga = cx.grad(self.a);
            for p in partials {
                for (d, s) in ga.data.iter_mut().zip(&p) {
                    *d += s;
                }
            }
        }
    }
}

struct EdgeScoresBack {
    edges: Arc<EdgeIndex>,
    s_src: Var,
    s_dst: Var,
    slope: f32,
}

impl Backward for EdgeScoresBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        let (sv, dv) = (cx.value(self.s_src), cx.value(self.s_dst));
        let (h, slope, ei) = (sv.cols, self.slope, &*self.edges);
        // LeakyReLU's slope at the pre-activation, recomputed from the inputs.
        let d = |pre: f32| leaky_grad(pre, slope);
        if cx.needs(self.s_dst) {
            cx.grad(self.s_dst)
                .data
                .par_chunks_mut(h.max(1))
                .with_min_len(64)
                .enumerate()
                .for_each(|(i, gd)| {
                    let di = &dv.data[i * h..(i + 1) * h];
                    for k in ei.indptr[i]..ei.indptr[i + 1] {
                        let j = ei.src[k] as usize;
                        let sj = &sv.data[j * h..(j + 1) * h];
                        let gk = &g.data[k * h..(k + 1) * h];
                        for hh in 0..h {
                            gd[hh] += gk[hh] * d(sj[hh] + di[hh]);
                        }
                    }
                });
        }
        if cx.needs(self.s_src) && h > 0 {
            let mut gt = cx.pool.take(g.rows, h, false);
            to_reverse_order(ei, &g.data, h, &mut gt.data);
            cx.grad(self.s_src)
                .data
                .par_chunks_mut(h)
                .with_min_len(64)
                .enumerate()
                .for_each(|(j, gs)| {
                    let sj = &sv.data[j * h..(j + 1) * h];
                    for t in ei.t_indptr[j]..ei.t_indptr[j + 1] {
                        let i = ei.t_dst[t] as usize;
                        let di = &dv.data[i * h..(i + 1) * h];
                        let gk = &gt.data[t * h..(t + 1) * h];
                        for hh in 0..h {
                            gs[hh] += gk[hh] * d(sj[hh] + di[hh]);
                        }
                    }
                });
            cx.pool.give(gt);
        }
    }
}

struct EdgeSoftmaxBack {
    edges: Arc<EdgeIndex>,
    e: Var,
}

impl Backward for EdgeSoftmaxBack {
    fn backward(&self, out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        if !cx.needs(self.e) {
            return;
        }
        let y = cx.value(out);
        let h = y.cols;
        let ei = &*self.edges;
        let ge = cx.grad(self.e);
        // de = α ∘ (g − Σ_row α g), per head over the destination's entries.
        par_segments(&ei.indptr, h, 0, ei.n, &mut ge.data, &|i, d| {
            let lo = ei.indptr[i] * h;
            let (ys, gs) = (&y.data[lo..lo + d.len()], &g.data[lo..lo + d.len()]);
            for hb in (0..h).step_by(HEAD_BLOCK) {
                let r = hb..(hb + HEAD_BLOCK).min(h);
                let mut s = [0f32; HEAD_BLOCK];
                for (yr, gr) in ys.chunks(h).zip(gs.chunks(h)) {
                    for ((s, y), g) in s.iter_mut().zip(&yr[r.clone()]).zip(&gr[r.clone()]) {
                        *s += y * g;
                    }
                }
                for ((dr, yr), gr) in d.chunks_mut(h).zip(ys.chunks(h)).zip(gs.chunks(h)) {
                    let dr = &mut dr[r.clone()];
                    for (((d, y), g), s) in dr
                        .iter_mut()
                        .zip(&yr[r.clone()])
                        .zip(&gr[r.clone()])
                        .zip(&s)
                    {
                        *d += y * (g - s);
                    }
                }
            }
        });
    }
}

struct EdgeAggregateBack {
    edges: Arc<EdgeIndex>,
    alpha: Var,
    x: Var,
}

impl Backward for EdgeAggregateBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        let (av, xv) = (cx.value(self.alpha), cx.value(self.x));
        let (h, c) = (av.cols, xv.cols);
        let f = c / h;
        let ei = &*self.edges;
        if cx.needs(self.alpha) {
            // dα[k, h] = ⟨g[i, head h], x[j, head h]⟩, gathered per destination row.
            let ga = cx.grad(self.alpha);
            par_segments(&ei.indptr, h, 0, ei.n, &mut ga.data, &|i, d| {
                let gi = &g.data[i * c..(i + 1) * c];
                for (kk, dk) in d.chunks_mut(h).enumerate() {
                    let j = ei.src[ei.indptr[i] + kk] as usize;
                    let xj = &xv.data[j * c..(j + 1) * c];
                    for ((dk, gh), xh) in dk.iter_mut().zip(gi.chunks(f)).zip(xj.chunks(f)) {
                        *dk += dot(gh, xh);
                    }
                }
            });
        }
        if cx.needs(self.x) && c > 0 {
            // dx[j] = Σ over entries with source j of α[k] · g[i]: a gather through the
            // reverse index, α first laid out in that order.
            let mut at = cx.pool.take(av.rows, h, false);
            to_reverse_order(ei, &av.data, h, &mut at.data);
            cx.grad(self.x)
                .data
                .par_chunks_mut(c)
                .with_min_len(16)
                .enumerate()
                .for_each(|(j, dj)| {
                    for t in ei.t_indptr[j]..ei.t_indptr[j + 1] {
                        let i = ei.t_dst[t] as usize;
                        let gi = &g.data[i * c..(i + 1) * c];
                        let ak = &at.data[t * h..(t + 1) * h];
                        for ((dh, gh), &a) in dj.chunks_mut(f).zip(gi.chunks(f)).zip(ak) {
                            for (d, s) in dh.iter_mut().zip(gh) {
                                *d += a * s;
                            }
                        }
                    }
                });
            cx.pool.give(at);
        }
    }
}

struct SddmmBack {
    edges: Arc<EdgeIndex>,
    dst: Var,
    src: Var,
}

impl Backward for SddmmBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        let ei = &*self.edges;
        let (dv, sv) = (cx.value(self.dst), cx.value(self.src));
        let c = dv.cols;
        if cx.needs(self.dst) && c > 0 {
            // d dst[i] = Σ_k g[k] · src[j_k] over i's entries (parallel over destinations).
            cx.grad(self.dst)
                .data
                .par_chunks_mut(c)
                .enumerate()
                .for_each(|(i, d)| {
                    for k in ei.indptr[i]..ei.indptr[i + 1] {
                        let j = ei.src[k] as usize;
                        let gk = g.data[k];
                        for (dd, s) in d.iter_mut().zip(&sv.data[j * c..(j + 1) * c]) {
                            *dd += gk * s;
                        }
                    }
                });
        }
        if cx.needs(self.src) && c > 0 {
            // d src[j] = Σ g[k] · dst[i_k] over the entries with source j, through the
            // reverse index (parallel over sources, no atomics).
            cx.grad(self.src)
                .data
                .par_chunks_mut(c)
                .enumerate()
                .for_each(|(j, d)| {
                    for t in ei.t_indptr[j]..ei.t_indptr[j + 1] {
                        let i = ei.t_dst[t] as usize;
                        let gk = g.data[ei.t_entry[t] as usize];
                        for (dd, x) in d.iter_mut().zip(&dv.data[i * c..(i + 1) * c]) {
                            *dd += gk * x;
                        }
                    }
                });
        }
    }
}

impl Tape {
    /// Per-head dot products: `out[i, h] = ⟨x[i, h·F..(h+1)·F], a[0, h·F..(h+1)·F]⟩` for
    /// `x` `[n, heads·F]` and `a` `[1, heads·F]` (GAT's `a_srcᵀ Wh` and `a_dstᵀ Wh`).
    pub fn head_dot(&mut self, x: Var, a: Var, heads: usize) -> Var {
        let (xv, av) = (&self.nodes[x.0].value, &self.nodes[a.0].value);
        let c = xv.cols;
        let f = head_width(c, heads, "head_dot");
        assert_eq!(
            (av.rows, av.cols),
            (1, c),
            "head_dot: a must be [1, x.cols]"
        );
        let mut out = self.pool.take(xv.rows, heads, false);
        out.data
            .par_chunks_mut(heads)
            .zip(xv.data.par_chunks(c.max(1)))
            .with_min_len(64)
            .for_each(|(o, xr)| {
                for ((o, x), a) in o.iter_mut().zip(xr.chunks(f)).zip(av.data.chunks(f)) {
                    *o = dot(x, a);
                }
            });
        let ng = self.needs(x) || self.needs(a);
        self.push_custom(Box::new(HeadDotBack { x, a, heads }), out, ng)
    }

    /// Edge scores `e[k, h] = LeakyReLU(s_src[j, h] + s_dst[i, h], slope)` for every entry
    /// k = (i ← j) of `edges`, from node scores `[n, H]`; the value is `[E, H]`.
    pub fn edge_scores(
        &mut self,
        edges: &Arc<EdgeIndex>,
        s_src: Var,
        s_dst: Var,
        slope: f32,
    ) -> Var {
        let (sv, dv) = (&self.nodes[s_src.0].value, &self.nodes[s_dst.0].value);
        let h = sv.cols;
        assert_eq!(
            (sv.rows, dv.rows),
            (edges.n_src, edges.n),
            "edge_scores: one source score per source, one destination score per destination"
        );
        assert_eq!(dv.cols, h, "edge_scores: head counts differ");
        let mut out = self.pool.take(edges.num_edges(), h, false);
        let ei = &**edges;
        par_segments(&ei.indptr, h, 0, ei.n, &mut out.data, &|i, o| {
            let di = &dv.data[i * h..(i + 1) * h];
            for (kk, ok) in o.chunks_mut(h.max(1)).enumerate() {
                let j = ei.src[ei.indptr[i] + kk] as usize;
                let sj = &sv.data[j * h..(j + 1) * h];
                for ((o, s), d) in ok.iter_mut().zip(sj).zip(di) {
                    *o = leaky(s + d, slope);
                }
            }
        });
        let ng = self.needs(s_src) || self.needs(s_dst);
        self.push_custom(
            Box::new(EdgeScoresBack {
                edges: edges.clone(),
                s_src,
                s_dst,
                slope,
            }),
            out,
            ng,
        )
    }

    /// Softmax of `[E, H]` edge scores over each destination's incoming entries, per head
    /// (max-subtracted, so large scores do not overflow).
    pub fn edge_softmax(&mut self, edges: &Arc<EdgeIndex>, e: Var) -> Var {
        let ev = &self.nodes[e.0].value;
        let h = ev.cols;
        assert_eq!(
            ev.rows,
            edges.num_edges(),
            "edge_softmax: one row per entry"
        );
        let mut out = self.pool.take(ev.rows, h, false);
        let ei = &**edges;
        // Per block of heads: the max, the exps and their sum, the scaling; each pass walks
        // the entries with the heads contiguous.
        par_segments(&ei.indptr, h, 0, ei.n, &mut out.data, &|i, o| {
            let lo = ei.indptr[i] * h;
            let es = &ev.data[lo..lo + o.len()];
            for hb in (0..h).step_by(HEAD_BLOCK) {
                let r = hb..(hb + HEAD_BLOCK).min(h);
                let mut m = [f32::NEG_INFINITY; HEAD_BLOCK];
                for er in es.chunks(h) {
                    for (m, &e) in m.iter_mut().zip(&er[r.clone()]) {
                        *m = m.max(e);
                    }
                }
                let mut s = [0f32; HEAD_BLOCK];
                for (or, er) in o.chunks_mut(h).zip(es.chunks(h)) {
                    let or = &mut or[r.clone()];
                    for ((o, &e), (s, &m)) in
                        or.iter_mut().zip(&er[r.clone()]).zip(s.iter_mut().zip(&m))
                    {
                        *o = exp_nonpos(e - m);
                        *s += *o;
                    }
                }
                // The max entry contributes e⁰ = 1, so every sum is ≥ 1.
                let inv = s.map(|s| 1.0 / s);
                for or in o.chunks_mut(h) {
                    for (o, v) in or[r.clone()].iter_mut().zip(&inv) {
                        *o *= v;
                    }
                }
            }
        });
        let ng = self.needs(e);
        self.push_custom(
            Box::new(EdgeSoftmaxBack {
                edges: edges.clone(),
                e,
            }),
            out,
            ng,
        )
    }

    /// SDDMM: `out[k] = ⟨dst[i], src[j]⟩` for every entry k = (i ← j) of `edges`, as `[E, 1]`
    /// (edge scores for link prediction, attention logits). `dst` has one row per
    /// destination, `src` one per source, both of the same width.
    pub fn sddmm(&mut self, edges: &Arc<EdgeIndex>, dst: Var, src: Var) -> Var {
        let (dv, sv) = (&self.nodes[dst.0].value, &self.nodes[src.0].value);
        assert_eq!(
            (dv.rows, sv.rows),
            (edges.n, edges.n_src),
            "sddmm: one dst row per destination, one src row per source"
        );
        assert_eq!(dv.cols, sv.cols, "sddmm: widths differ");
        let c = dv.cols;
        let mut out = self.pool.take(edges.num_edges(), 1, false);
        let ei = &**edges;
        par_segments(&ei.indptr, 1, 0, ei.n, &mut out.data, &|i, o| {
            let di = &dv.data[i * c..(i + 1) * c];
            for (kk, ok) in o.iter_mut().enumerate() {
                let j = ei.src[ei.indptr[i] + kk] as usize;
                *ok = dot(di, &sv.data[j * c..(j + 1) * c]);
            }
        });
        let ng = self.needs(dst) || self.needs(src);
        self.push_custom(
            Box::new(SddmmBack {
                edges: edges.clone(),
                dst,
                src,
            }),
            out,
            ng,
        )
    }

    /// Attention-weighted aggregation: `out[i, h·F..(h+1)·F] = Σ_k α[k, h] · x[j, h·F..(h+1)·F]`
    /// over the entries k = (i ← j) of `edges`, for `alpha` `[E, H]` and `x` `[n, H·F]`.
    pub fn edge_aggregate(&mut self, edges: &Arc<EdgeIndex>, alpha: Var, x: Var) -> Var {
        let (av, xv) = (&self.nodes[alpha.0].value, &self.nodes[x.0].value);
        let (h, c) = (av.cols, xv.cols);
        let f = head_width(c, h, "edge_aggregate");
        assert_eq!(
            av.rows,
            edges.num_edges(),
            "edge_aggregate: one α row per entry"
        );
        assert_eq!(xv.rows, edges.n_src, "edge_aggregate: one x row per source");
        let mut out = self.pool.take(edges.n, c, false);
        let ei = &**edges;
        out.data
            .par_chunks_mut(c.max(1))
            .with_min_len(16)
            .enumerate()
            .for_each(|(i, o)| {
                o.fill(0.0);
                for k in ei.indptr[i]..ei.indptr[i + 1] {
                    let j = ei.src[k] as usize;
                    let xj = &xv.data[j * c..(j + 1) * c];
                    let ak = &av.data[k * h..(k + 1) * h];
                    for ((oh, xh), &a) in o.chunks_mut(f).zip(xj.chunks(f)).zip(ak) {
                        for (o, x) in oh.iter_mut().zip(xh) {
                            *o += a * x;
                        }
                    }
                }
            });
        let ng = self.needs(alpha) || self.needs(x);
        self.push_custom(
            Box::new(EdgeAggregateBack {
                edges: edges.clone(),
                alpha,
                x,
            }),
            out,
            ng,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    use super::*;
    use crate::tape::gradcheck::{check, rand_mat};
    use crate::ParamStore;

    /// Five nodes; node 3 has no incoming entry (a source only), node 4 no outgoing one
    /// besides its self loop.
    fn pattern() -> Arc<EdgeIndex> {
        let rows: [&[u32]; 5] = [&[0, 1, 3], &[1, 0], &[2, 0, 1, 3], &[], &[4, 2]];
        let mut indptr = vec![0];
        let mut indices = Vec::new();
        for r in rows {
            indices.extend_from_slice(r);
            indptr.push(indices.len());
        }
        let w = vec![1.0; indices.len()];
        Arc::new(EdgeIndex::new(&SparseMat::new(5, 5, indptr, indices, w)))
    }

    #[test]
    fn reverse_index_lists_every_entry_once_by_source() {
        let ei = pattern();
        assert_eq!((ei.num_nodes(), ei.num_edges()), (5, 11));
        let mut seen = vec![false; ei.num_edges()];
        for j in 0..5 {
            for t in ei.t_indptr[j]..ei.t_indptr[j + 1] {
                let (i, k) = (ei.t_dst[t] as usize, ei.t_entry[t] as usize);
                assert_eq!(ei.src[k] as usize, j);
                assert!((ei.indptr[i]..ei.indptr[i + 1]).contains(&k));
                assert!(!std::mem::replace(&mut seen[k], true));
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn head_dot_gradients() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(21);
        let mut p = ParamStore::default();
        let x = p.add("x", rand_mat(5, 6, &mut rng));
        let a = p.add("a", rand_mat(1, 6, &mut rng));
        let r = rand_mat(5, 2, &mut rng);
        check(&mut p, &|t, ps| {
            let (xv, av) = (t.param(ps, x), t.param(ps, a));
            let s = t.head_dot(xv, av, 2);
            t.weighted_sum(s, &r)
        });
    }

    #[test]
    fn sddmm_values_and_gradients_on_a_rectangular_pattern() {
        // 3 destinations, 5 sources; destination 1 has no entries.
        let a = SparseMat::new(3, 5, vec![0, 2, 2, 5], vec![4, 0, 1, 4, 2], vec![1.0; 5]);
        let ei = Arc::new(EdgeIndex::new(&a));
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(31);
        let mut p = ParamStore::default();
        let d = p.add("dst", rand_mat(3, 4, &mut rng));
        let s = p.add("src", rand_mat(5, 4, &mut rng));
        let r = rand_mat(5, 1, &mut rng);
        check(&mut p, &|t, ps| {
            let (dv, sv) = (t.param(ps, d), t.param(ps, s));
            let e = t.sddmm(&ei, dv, sv);
            t.weighted_sum(e, &r)
        });
        let mut t = Tape::new(false);
        let (dv, sv) = (t.input(&p.values[d]), t.input(&p.values[s]));
        let e = t.sddmm(&ei, dv, sv);
        let dot = |i: usize, j: usize| -> f32 {
            p.values[d]
                .row(i)
                .iter()
                .zip(p.values[s].row(j))
                .map(|(x, y)| x * y)
                .sum()
        };
        let want = [dot(0, 4), dot(0, 0), dot(2, 1), dot(2, 4), dot(2, 2)];
        for (x, y) in t.value(e).data.iter().zip(want) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
    }

    #[test]
    fn edge_scores_gradients() {
        let ei = pattern();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(22);
        let mut p = ParamStore::default();
        let s = p.add("s_src", rand_mat(5, 2, &mut rng));
        let d = p.add("s_dst", rand_mat(5, 2, &mut rng));
        let r = rand_mat(ei.num_edges(), 2, &mut rng);
        check(&mut p, &|t, ps| {
            let (sv, dv) = (t.param(ps, s), t.param(ps, d));
            let e = t.edge_scores(&ei, sv, dv, 0.2);
            t.weighted_sum(e, &r)
        });
    }

    #[test]
    fn edge_softmax_gradients_and_values() {
        let ei = pattern();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(23);
        let mut p = ParamStore::default();
        let e = p.add("e", rand_mat(ei.num_edges(), 3, &mut rng));
        let r = rand_mat(ei.num_edges(), 3, &mut rng);
        check(&mut p, &|t, ps| {
            let ev = t.param(ps, e);
            let a = t.edge_softmax(&ei, ev);
            t.weighted_sum(a, &r)
        });
        // Scores of 1000 would overflow exp without the max subtraction.
        let mut big = rand_mat(ei.num_edges(), 3, &mut rng);
        big.data[0] = 1000.0;
        let mut t = Tape::new(false);
        let ev = t.input(&big);
        let a = t.edge_softmax(&ei, ev);
        let av = t.value(a);
        for i in 0..5 {
            for h in 0..3 {
                let s: f32 = (ei.indptr[i]..ei.indptr[i + 1])
                    .map(|k| av.data[k * 3 + h])
                    .sum();
                let want = if i == 3 { 0.0 } else { 1.0 };
                assert!((s - want).abs() < 1e-5, "row {i} head {h}: {s}");
            }
        }
        assert!((av.data[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn edge_aggregate_gradients_and_values() {
        let ei = pattern();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(24);
        let mut p = ParamStore::default();
        let al = p.add("alpha", rand_mat(ei.num_edges(), 2, &mut rng));
        let x = p.add("x", rand_mat(5, 6, &mut rng));
        let r = rand_mat(5, 6, &mut rng);
        check(&mut p, &|t, ps| {
            let (av, xv) = (t.param(ps, al), t.param(ps, x));
            let o = t.edge_aggregate(&ei, av, xv);
            t.weighted_sum(o, &r)
        });
        // Against a per-head dense reference.
        let mut t = Tape::new(false);
        let (av, xv) = (t.input(&p.values[al]), t.input(&p.values[x]));
        let o = t.edge_aggregate(&ei, av, xv);
        let (alpha, xm) = (&p.values[al], &p.values[x]);
        for i in 0..5 {
            for col in 0..6 {
                let h = col / 3;
                let want: f32 = (ei.indptr[i]..ei.indptr[i + 1])
                    .map(|k| alpha.data[k * 2 + h] * xm.data[ei.src[k] as usize * 6 + col])
                    .sum();
                assert!((t.value(o).data[i * 6 + col] - want).abs() < 1e-5);
            }
        }
    }

    /// The whole GAT attention path, attention dropout included, end to end.
    #[test]
    fn attention_pipeline_gradients() {
        let ei = pattern();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(25);
        let mut p = ParamStore::default();
        let z = p.add("z", rand_mat(5, 4, &mut rng));
        let a_src = p.add("a_src", rand_mat(1, 4, &mut rng));
        let a_dst = p.add("a_dst", rand_mat(1, 4, &mut rng));
        let r = rand_mat(5, 4, &mut rng);
        check(&mut p, &|t, ps| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
            let (zv, sv, dv) = (t.param(ps, z), t.param(ps, a_src), t.param(ps, a_dst));
            let s = t.head_dot(zv, sv, 2);
            let d = t.head_dot(zv, dv, 2);
            let e = t.edge_scores(&ei, s, d, 0.2);
            let a = t.edge_softmax(&ei, e);
            let a = t.dropout(a, 0.3, &mut rng);
            let o = t.edge_aggregate(&ei, a, zv);
            t.weighted_sum(o, &r)
        });
    }

    /// Forward values and gradients are bitwise the same on 1 and 3 threads, on a pattern
    /// large enough for the kernels to split.
    #[test]
    fn results_do_not_depend_on_thread_count() {
        let n = 3000;
        let mut indptr = vec![0];
        let mut indices = Vec::new();
        for i in 0..n {
            // A hub (node 0 receives from everyone) and a ring with self loops.
            if i == 0 {
                indices.extend(0..n as u32);
            } else {
                indices.extend([i as u32, (i as u32 + 1) % n as u32]);
            }
            indptr.push(indices.len());
        }
        let w = vec![1.0; indices.len()];
        let ei = Arc::new(EdgeIndex::new(&SparseMat::new(n, n, indptr, indices, w)));
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(26);
        let mut p = ParamStore::default();
        let z = p.add("z", rand_mat(n, 8, &mut rng));
        let a_src = p.add("a_src", rand_mat(1, 8, &mut rng));
        let a_dst = p.add("a_dst", rand_mat(1, 8, &mut rng));
        let r = rand_mat(n, 8, &mut rng);
        let run = |threads: usize, p: &mut ParamStore| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                p.zero_grad();
                let mut t = Tape::new(true);
                let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
                let (zv, sv, dv) = (t.param(p, z), t.param(p, a_src), t.param(p, a_dst));
                let s = t.head_dot(zv, sv, 4);
                let d = t.head_dot(zv, dv, 4);
                let e = t.edge_scores(&ei, s, d, 0.2);
                let a = t.edge_softmax(&ei, e);
                let a = t.dropout(a, 0.5, &mut rng);
                let o = t.edge_aggregate(&ei, a, zv);
                let out = t.value(o).clone();
                let l = t.weighted_sum(o, &r);
                t.backward(l, p);
                (out, p.grads.clone())
            })
        };
        assert_eq!(run(1, &mut p), run(3, &mut p));
    }
}
