//! Row indexing and reductions: gather/scatter-add of rows (mini-batch slicing, pooling,
//! edge-to-node sums), column sums, the scalar mean, elementwise product and column split.
//!
//! Scatter-adds never use atomics or locks: a reverse index (which positions land on each
//! output row, built by a counting sort) turns every scatter into a gather parallel over
//! output rows, the same choice as the SpMM backward over the transpose. Sums are taken over
//! a fixed split of the rows, so results do not depend on the thread count.

use std::sync::Arc;

use rayon::prelude::*;

use crate::tape::{Backward, Ctx};
use crate::{Matrix, Tape, Var};

/// Rows per task of a reduction: a function of the row count only (at most 64 tasks, at least
/// 256 rows each), so the order of the additions, and hence the sum, is reproducible.
pub(super) fn reduce_chunk(rows: usize) -> usize {
    rows.div_ceil(64).max(256)
}

/// `Σ_i f(i)` over rows `0..rows`, where `f(i, acc)` adds row `i`'s contribution to the
/// `cols`-wide f64 accumulator: one partial per task, summed in task order.
pub(super) fn col_sums(rows: usize, cols: usize, f: impl Fn(usize, &mut [f64]) + Sync) -> Vec<f64> {
    let chunk = reduce_chunk(rows);
    let parts: Vec<Vec<f64>> = (0..rows.div_ceil(chunk))
        .into_par_iter()
        .map(|t| {
            let mut acc = vec![0f64; cols];
            for i in t * chunk..((t + 1) * chunk).min(rows) {
                f(i, &mut acc);
            }
            acc
        })
        .collect();
    let mut total = vec![0f64; cols];
    for p in parts {
        for (t, v) in total.iter_mut().zip(&p) {
            *t += v;
        }
    }
    total
}

/// For each of `n` target rows, the positions `k` with `idx[k] == row`, ascending.
pub(super) struct RevIndex {
    ptr: Vec<usize>,
    pos: Vec<u32>,
}

impl RevIndex {
    /// Counting sort of `idx` by value (O(len + n), sequential: a few ms for millions of rows).
    pub(super) fn new(idx: &[usize], n: usize) -> RevIndex {
        assert!(
            idx.len() <= u32::MAX as usize,
            "index too long for u32 positions"
        );
        let mut ptr = vec![0usize; n + 1];
        for &t in idx {
            assert!(t < n, "row index {t} out of range for {n} rows");
            ptr[t + 1] += 1;
        }
        for r in 0..n {
            ptr[r + 1] += ptr[r];
        }
        let mut cursor = ptr.clone();
        let mut pos = vec![0u32; idx.len()];
        for (k, &t) in idx.iter().enumerate() {
            pos[cursor[t]] = k as u32;
            cursor[t] += 1;
        }
        RevIndex { ptr, pos }
    }

    /// Positions landing on row `r`.
    fn of(&self, r: usize) -> &[u32] {
        &self.pos[self.ptr[r]..self.ptr[r + 1]]
    }
}

/// `out[idx[k]] += alpha · src[k]` for every `k` (`out` is overwritten first unless
/// `accumulate`). Each output row is summed by one task in ascending `k`: no atomics, and
/// repeated indices are handled.
pub(super) fn scatter_rows(
    src: &Matrix,
    idx: &[usize],
    alpha: f32,
    out: &mut Matrix,
    accumulate: bool,
) {
    assert_eq!(src.rows, idx.len(), "scatter: one index per source row");
    assert_eq!(src.cols, out.cols, "scatter: column counts differ");
    let c = out.cols;
    if c == 0 {
        return;
    }
    let rev = RevIndex::new(idx, out.rows);
    out.data
        .par_chunks_mut(c)
        .with_min_len(64)
        .enumerate()
        .for_each(|(r, o)| {
            if !accumulate {
                o.fill(0.0);
            }
            for &k in rev.of(r) {
                let s = src.row(k as usize);
                for (d, s) in o.iter_mut().zip(s) {
                    *d += alpha * s;
                }
            }
        });
}

/// `out[k] += src[idx[k]]` for every row `k` of `out`, in parallel.
fn gather_add(src: &Matrix, idx: &[usize], out: &mut Matrix) {
    let c = out.cols;
    if c == 0 {
        return;
    }
    out.data
        .par_chunks_mut(c)
        .with_min_len(64)
        .zip(idx.par_iter())
        .for_each(|(o, &i)| {
            for (d, s) in o.iter_mut().zip(src.row(i)) {
                *d += s;
            }
        });
}

struct GatherBack {
    x: Var,
    idx: Arc<Vec<usize>>,
}

impl Backward for GatherBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        if cx.needs(self.x) {
            scatter_rows(g, &self.idx, 1.0, cx.grad(self.x), true);
        }
    }
}

struct ScatterBack {
    x: Var,
    idx: Arc<Vec<usize>>,
}

impl Backward for ScatterBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        if cx.needs(self.x) {
            gather_add(g, &self.idx, cx.grad(self.x));
        }
    }
}

struct SumRowsBack {
    x: Var,
}

impl Backward for SumRowsBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        if cx.needs(self.x) {
            let gx = cx.grad(self.x);
            let c = gx.cols.max(1);
            gx.data.par_chunks_mut(c).with_min_len(64).for_each(|d| {
                for (d, s) in d.iter_mut().zip(&g.data) {
                    *d += s;
                }
            });
        }
    }
}

struct MeanAllBack {
    x: Var,
}

impl Backward for MeanAllBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        if cx.needs(self.x) {
            let gx = cx.grad(self.x);
            let s = g.data[0] / gx.data.len().max(1) as f32;
            gx.data.par_iter_mut().for_each(|d| *d += s);
        }
    }
}

struct MulBack {
    a: Var,
    b: Var,
}

impl Backward for MulBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        // `a` and `b` may be the same var (x ∘ x): the two terms then add into one buffer.
        for (v, other) in [(self.a, self.b), (self.b, self.a)] {
            if cx.needs(v) {
                let o = cx.value(other);
                cx.grad(v)
                    .data
                    .par_iter_mut()
                    .zip(g.data.par_iter().zip(&o.data))
                    .for_each(|(d, (s, o))| *d += s * o);
            }
        }
    }
}

struct RowDotBack {
    a: Var,
    b: Var,
}

impl Backward for RowDotBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        // d(a_i · b_i)/da_i = b_i; `a` and `b` may be one var (the terms then add).
        for (v, other) in [(self.a, self.b), (self.b, self.a)] {
            if cx.needs(v) {
                let o = cx.value(other);
                let gx = cx.grad(v);
                let c = gx.cols.max(1);
                gx.data
                    .par_chunks_mut(c)
                    .zip(o.data.par_chunks(c).zip(g.data.par_iter()))
                    .for_each(|(d, (o, s))| {
                        for (d, o) in d.iter_mut().zip(o) {
                            *d += s * o;
                        }
                    });
            }
        }
    }
}

struct SplitBack {
    x: Var,
    off: usize,
}

impl Backward for SplitBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        if cx.needs(self.x) {
            let (off, w) = (self.off, g.cols);
            let gx = cx.grad(self.x);
            let c = gx.cols.max(1);
            gx.data
                .par_chunks_mut(c)
                .with_min_len(64)
                .zip(g.data.par_chunks(w.max(1)))
                .for_each(|(d, s)| {
                    for (d, s) in d[off..off + w].iter_mut().zip(s) {
                        *d += s;
                    }
                });
        }
    }
}

impl Tape {
    /// Rows `idx` of `x` as a `[idx.len(), cols]` matrix (indices may repeat).
    pub fn gather_rows(&mut self, x: Var, idx: Arc<Vec<usize>>) -> Var {
        let xv = &self.nodes[x.0].value;
        let c = xv.cols;
        assert!(
            idx.iter().all(|&i| i < xv.rows),
            "gather_rows: index out of range"
        );
        let mut out = self.pool.take(idx.len(), c, false);
        if c > 0 {
            out.data
                .par_chunks_mut(c)
                .with_min_len(64)
                .zip(idx.par_iter())
                .for_each(|(o, &i)| o.copy_from_slice(xv.row(i)));
        }
        let ng = self.needs(x);
        self.push_custom(Box::new(GatherBack { x, idx }), out, ng)
    }

    /// `[n_out, cols]` matrix whose row `r` is the sum of the rows `k` of `x` with `idx[k] == r`
    /// (rows nobody maps to are zero).
    pub fn scatter_add_rows(&mut self, x: Var, idx: Arc<Vec<usize>>, n_out: usize) -> Var {
        let xv = &self.nodes[x.0].value;
        let mut out = self.pool.take(n_out, xv.cols, false);
        scatter_rows(xv, &idx, 1.0, &mut out, false);
        let ng = self.needs(x);
        self.push_custom(Box::new(ScatterBack { x, idx }), out, ng)
    }

    /// Column sums of `x`, as a `[1, cols]` value.
    pub fn sum_rows(&mut self, x: Var) -> Var {
        let xv = &self.nodes[x.0].value;
        let s = col_sums(xv.rows, xv.cols, |i, acc| {
            for (a, v) in acc.iter_mut().zip(xv.row(i)) {
                *a += *v as f64;
            }
        });
        let mut out = self.pool.take(1, xv.cols, false);
        for (o, s) in out.data.iter_mut().zip(&s) {
            *o = *s as f32;
        }
        let ng = self.needs(x);
        self.push_custom(Box::new(SumRowsBack { x }), out, ng)
    }

    /// Mean of every entry of `x`, as a `[1, 1]` value (0 for an empty matrix).
    pub fn mean_all(&mut self, x: Var) -> Var {
        let xv = &self.nodes[x.0].value;
        let c = xv.cols;
        let s = col_sums(xv.rows, 1, |i, acc| {
            acc[0] += xv.row(i).iter().map(|&v| v as f64).sum::<f64>();
        });
        let mut out = self.pool.take(1, 1, false);
        out.data[0] = (s[0] / (xv.rows * c).max(1) as f64) as f32;
        let ng = self.needs(x);
        self.push_custom(Box::new(MeanAllBack { x }), out, ng)
    }

    /// Elementwise product `a ∘ b` (same shapes).
    pub fn mul(&mut self, a: Var, b: Var) -> Var {
        let (av, bv) = (&self.nodes[a.0].value, &self.nodes[b.0].value);
        assert_eq!((av.rows, av.cols), (bv.rows, bv.cols), "mul: shapes differ");
        let mut out = self.pool.take(av.rows, av.cols, false);
        out.data
            .par_iter_mut()
            .zip(av.data.par_iter().zip(&bv.data))
            .for_each(|(o, (x, y))| *o = x * y);
        let ng = self.needs(a) || self.needs(b);
        self.push_custom(Box::new(MulBack { a, b }), out, ng)
    }

    /// Row-wise dot products `out[i] = a_i · b_i` (same shapes), as `[rows, 1]`: the dot
    /// decoder of link prediction, without the `[rows, cols]` product `mul` would keep.
    pub fn row_dot(&mut self, a: Var, b: Var) -> Var {
        let (av, bv) = (&self.nodes[a.0].value, &self.nodes[b.0].value);
        assert_eq!(
            (av.rows, av.cols),
            (bv.rows, bv.cols),
            "row_dot: shapes differ"
        );
        let c = av.cols.max(1);
        let mut out = self.pool.take(av.rows, 1, false);
        out.data
            .par_iter_mut()
            .zip(av.data.par_chunks(c).zip(bv.data.par_chunks(c)))
            .for_each(|(o, (x, y))| *o = x.iter().zip(y).map(|(p, q)| p * q).sum());
        let ng = self.needs(a) || self.needs(b);
        self.push_custom(Box::new(RowDotBack { a, b }), out, ng)
    }

    /// Splits `x` into consecutive column blocks of the given widths (summing to `cols`).
    pub fn split_cols(&mut self, x: Var, widths: &[usize]) -> Vec<Var> {
        let (rows, cols) = (self.value(x).rows, self.value(x).cols);
        assert_eq!(
            widths.iter().sum::<usize>(),
            cols,
            "split_cols: widths must sum to the column count"
        );
        let ng = self.needs(x);
        let mut parts = Vec::with_capacity(widths.len());
        let mut off = 0;
        for &w in widths {
            let mut out = self.pool.take(rows, w, false);
            let xv = &self.nodes[x.0].value;
            out.data
                .par_chunks_mut(w.max(1))
                .with_min_len(64)
                .zip(xv.data.par_chunks(cols.max(1)))
                .for_each(|(o, s)| o.copy_from_slice(&s[off..off + w]));
            parts.push(self.push_custom(Box::new(SplitBack { x, off }), out, ng));
            off += w;
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    use crate::tape::gradcheck::{check, rand_mat};
    use crate::{Matrix, ParamStore, Tape};

    #[test]
    fn forward_values() {
        let mut t = Tape::new(true);
        let x = t.input(&Matrix::from_vec(3, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        let g = t.gather_rows(x, Arc::new(vec![2, 0, 2]));
        assert_eq!(t.value(g).data, vec![5.0, 6.0, 1.0, 2.0, 5.0, 6.0]);
        let s = t.scatter_add_rows(x, Arc::new(vec![1, 3, 1]), 4);
        assert_eq!(
            t.value(s).data,
            vec![0.0, 0.0, 6.0, 8.0, 0.0, 0.0, 3.0, 4.0]
        );
        let r = t.sum_rows(x);
        assert_eq!(t.value(r).data, vec![9.0, 12.0]);
        let m = t.mean_all(x);
        assert_eq!(t.value(m).data, vec![3.5]);
        let p = t.mul(x, x);
        assert_eq!(t.value(p).data, vec![1.0, 4.0, 9.0, 16.0, 25.0, 36.0]);
        let parts = t.split_cols(x, &[1, 0, 1]);
        assert_eq!(t.value(parts[0]).data, vec![1.0, 3.0, 5.0]);
        assert_eq!((t.value(parts[1]).rows, t.value(parts[1]).cols), (3, 0));
        assert_eq!(t.value(parts[2]).data, vec![2.0, 4.0, 6.0]);
    }

    #[test]
    fn large_scatter_matches_serial() {
        // Enough rows for several tasks, with repeated targets.
        let n = 5000;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let src = rand_mat(n, 3, &mut rng);
        let idx: Vec<usize> = (0..n).map(|k| (k * 7919) % 1300).collect();
        let mut out = Matrix::zeros(1300, 3);
        super::scatter_rows(&src, &idx, 2.0, &mut out, false);
        let mut want = vec![0f32; 1300 * 3];
        for (k, &r) in idx.iter().enumerate() {
            for c in 0..3 {
                want[r * 3 + c] += 2.0 * src.data[k * 3 + c];
            }
        }
        for (a, b) in out.data.iter().zip(&want) {
            assert!((a - b).abs() < 1e-4);
        }
    }

    #[test]
    fn reductions_do_not_depend_on_thread_count() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(21);
        let x = rand_mat(20_000, 5, &mut rng);
        let tg = rand_mat(20_000, 5, &mut rng);
        let run = || {
            let mut t = Tape::new(true);
            let xv = t.input(&x);
            let s = t.sum_rows(xv);
            let m = t.mean_all(xv);
            let l = t.mse(xv, &tg, None);
            let g = t.input(&Matrix::from_vec(1, 5, vec![1.0; 5]));
            let b = t.input(&Matrix::zeros(1, 5));
            let (_, mean, var) = t.batch_norm(xv, g, b, 1e-5);
            let mut out = t.value(s).data.clone();
            out.extend([t.value(m).data[0], t.value(l).data[0]]);
            out.extend(mean.iter().chain(&var));
            out
        };
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        assert_eq!(pool(1).install(run), pool(3).install(run));
    }

    #[test]
    fn gradients() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        let mut p = ParamStore::default();
        let x = p.add("x", rand_mat(4, 5, &mut rng));
        let y = p.add("y", rand_mat(4, 5, &mut rng));
        let gidx = Arc::new(vec![3usize, 1, 3, 0, 3]);
        let sidx = Arc::new(vec![2usize, 0, 2, 5]);
        let r_g = rand_mat(5, 5, &mut rng);
        let r_s = rand_mat(6, 5, &mut rng);
        let r_1 = rand_mat(1, 5, &mut rng);
        let r_m = rand_mat(4, 5, &mut rng);
        let r_a = rand_mat(4, 2, &mut rng);
        let r_b = rand_mat(4, 3, &mut rng);
        // gather_rows (repeated indices) and scatter_add_rows (repeated and unused targets)
        check(&mut p, &|t, ps| {
            let xv = t.param(ps, x);
            let h = t.gather_rows(xv, gidx.clone());
            t.weighted_sum(h, &r_g)
        });
        check(&mut p, &|t, ps| {
            let xv = t.param(ps, x);
            let h = t.scatter_add_rows(xv, sidx.clone(), 6);
            t.weighted_sum(h, &r_s)
        });
        // sum_rows, mean_all
        check(&mut p, &|t, ps| {
            let xv = t.param(ps, x);
            let h = t.sum_rows(xv);
            t.weighted_sum(h, &r_1)
        });
        check(&mut p, &|t, ps| {
            let (xv, yv) = (t.param(ps, x), t.param(ps, y));
            let h = t.mul(xv, yv);
            t.mean_all(h)
        });
        // mul, including a var with itself
        check(&mut p, &|t, ps| {
            let (xv, yv) = (t.param(ps, x), t.param(ps, y));
            let h = t.mul(xv, yv);
            let h = t.mul(h, xv);
            t.weighted_sum(h, &r_m)
        });
        check(&mut p, &|t, ps| {
            let xv = t.param(ps, x);
            let h = t.mul(xv, xv);
            t.weighted_sum(h, &r_m)
        });
        // split_cols, using two of the three parts
        check(&mut p, &|t, ps| {
            let xv = t.param(ps, x);
            let parts = t.split_cols(xv, &[2, 0, 3]);
            let a = t.weighted_sum(parts[0], &r_a);
            let b = t.weighted_sum(parts[2], &r_b);
            let s = t.add(a, b);
            t.mean_all(s)
        });
    }
}
