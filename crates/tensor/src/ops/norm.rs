//! Normalisation: batch norm (batch statistics when training, given running statistics in
//! evaluation) and layer norm, each with a learnt per-column scale `gamma` and shift `beta`.
//!
//! Statistics are accumulated in f64 over a fixed split of the rows (see `gather::col_sums`):
//! stable for millions of rows and identical whatever the thread count. The normalised input
//! is recomputed in the backward pass from the saved mean and inverse deviation instead of
//! being stored, which saves one activation-sized buffer per norm.

use rayon::prelude::*;

use super::gather::col_sums;
use crate::tape::{Backward, Ctx, Pool};
use crate::{Matrix, Tape, Var};

/// Batch norm backward. `stats` is `[2, C]`: per-column mean, then 1 / sqrt(var + eps).
struct BatchNormBack {
    x: Var,
    gamma: Var,
    beta: Var,
    stats: Matrix,
    /// Batch statistics depend on `x` (training); running ones are constants (evaluation).
    batch_stats: bool,
}

impl Backward for BatchNormBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        let xv = cx.value(self.x);
        let (n, c) = (xv.rows, xv.cols);
        let (mean, inv) = (self.stats.row(0), self.stats.row(1));
        // Σ_i g and Σ_i g·x̂ per column: the beta and gamma gradients, and the two
        // correction terms of the input gradient under batch statistics.
        let s = col_sums(n, 2 * c, |i, acc| {
            let (sg, sgx) = acc.split_at_mut(c);
            let cols = g.row(i).iter().zip(xv.row(i)).zip(mean.iter().zip(inv));
            for ((a, b), ((&gv, &x), (&m, &iv))) in sg.iter_mut().zip(sgx).zip(cols) {
                *a += gv as f64;
                *b += (gv * (x - m) * iv) as f64;
            }
        });
        let (sg, sgx) = s.split_at(c);
        add_row(cx, self.beta, sg);
        add_row(cx, self.gamma, sgx);
        if cx.needs(self.x) {
            let gam = &cx.value(self.gamma).data;
            let nf = n.max(1) as f64;
            // dx = γ·inv·(g − mean(g) − x̂·mean(g·x̂)) in training, γ·inv·g in evaluation.
            let (mg, mgx): (Vec<f32>, Vec<f32>) = if self.batch_stats {
                (
                    sg.iter().map(|v| (v / nf) as f32).collect(),
                    sgx.iter().map(|v| (v / nf) as f32).collect(),
                )
            } else {
                (vec![0.0; c], vec![0.0; c])
            };
            let gx = cx.grad(self.x);
            gx.data
                .par_chunks_mut(c.max(1))
                .with_min_len(64)
                .zip(g.data.par_chunks(c.max(1)))
                .zip(xv.data.par_chunks(c.max(1)))
                .for_each(|((d, gr), xr)| {
                    for j in 0..c {
                        let xh = (xr[j] - mean[j]) * inv[j];
                        d[j] += gam[j] * inv[j] * (gr[j] - mg[j] - xh * mgx[j]);
                    }
                });
        }
    }

    fn release(self: Box<Self>, pool: &mut Pool) {
        pool.give(self.stats);
    }
}

/// Layer norm backward. `stats` is `[N, 2]`: per-row mean, then 1 / sqrt(var + eps).
struct LayerNormBack {
    x: Var,
    gamma: Var,
    beta: Var,
    stats: Matrix,
}

impl Backward for LayerNormBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        let xv = cx.value(self.x);
        let (n, c) = (xv.rows, xv.cols);
        let st = &self.stats.data;
        if cx.needs(self.gamma) || cx.needs(self.beta) {
            let s = col_sums(n, 2 * c, |i, acc| {
                let (sg, sgx) = acc.split_at_mut(c);
                let (m, inv) = (st[2 * i], st[2 * i + 1]);
                let cols = g.row(i).iter().zip(xv.row(i));
                for ((a, b), (&gv, &x)) in sg.iter_mut().zip(sgx).zip(cols) {
                    *a += gv as f64;
                    *b += (gv * (x - m) * inv) as f64;
                }
            });
            let (sg, sgx) = s.split_at(c);
            add_row(cx, self.beta, sg);
            add_row(cx, self.gamma, sgx);
        }
        if cx.needs(self.x) {
            let gam = &cx.value(self.gamma).data;
            let gx = cx.grad(self.x);
            let cf = c.max(1) as f32;
            // Per row, with d = g·γ: dx = inv·(d − mean(d) − x̂·mean(d·x̂)).
            gx.data
                .par_chunks_mut(c.max(1))
                .with_min_len(64)
                .zip(g.data.par_chunks(c.max(1)))
                .zip(xv.data.par_chunks(c.max(1)).zip(st.par_chunks(2)))
                .for_each(|((d, gr), (xr, s))| {
                    let (m, inv) = (s[0], s[1]);
                    let (mut a, mut b) = (0f32, 0f32);
                    for j in 0..c {
                        let dj = gr[j] * gam[j];
                        a += dj;
                        b += dj * (xr[j] - m) * inv;
                    }
                    let (a, b) = (a / cf, b / cf);
                    for j in 0..c {
                        let xh = (xr[j] - m) * inv;
                        d[j] += inv * (gr[j] * gam[j] - a - xh * b);
                    }
                });
        }
    }

    fn release(self: Box<Self>, pool: &mut Pool) {
        pool.give(self.stats);
    }
}

/// Adds the column sums `s` into the `[1, C]` gradient of `v`, when it needs one.
fn add_row(cx: &mut Ctx<'_>, v: Var, s: &[f64]) {
    if cx.needs(v) {
        for (d, s) in cx.grad(v).data.iter_mut().zip(s) {
            *d += *s as f32;
        }
    }
}

impl Tape {
    /// Batch norm with the batch's statistics over rows (training): returns the output and
    /// the batch mean and biased variance per column (the variance it normalises with; PyTorch
    /// updates its running variance with the unbiased `var · n / (n − 1)`, left to the caller).
    pub fn batch_norm(
        &mut self,
        x: Var,
        gamma: Var,
        beta: Var,
        eps: f32,
    ) -> (Var, Vec<f32>, Vec<f32>) {
        let xv = &self.nodes[x.0].value;
        let (n, c) = (xv.rows, xv.cols);
        assert!(n > 0, "batch_norm: empty batch");
        // Two passes (mean, then squared deviations) rather than E[x²] − E[x]², which
        // cancels catastrophically for columns with a large mean.
        let s = col_sums(n, c, |i, acc| {
            for (a, v) in acc.iter_mut().zip(xv.row(i)) {
                *a += *v as f64;
            }
        });
        let mean: Vec<f64> = s.iter().map(|v| v / n as f64).collect();
        let s2 = col_sums(n, c, |i, acc| {
            for ((a, v), m) in acc.iter_mut().zip(xv.row(i)).zip(&mean) {
                let d = *v as f64 - m;
                *a += d * d;
            }
        });
        let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
        let var: Vec<f32> = s2.iter().map(|v| (v / n as f64) as f32).collect();
        let v = self.norm_cols(x, gamma, beta, &mean, &var, eps, true);
        (v, mean, var)
    }

    /// Batch norm with given (running) statistics, for evaluation: `mean` and `var` per column.
    pub fn batch_norm_eval(
        &mut self,
        x: Var,
        gamma: Var,
        beta: Var,
        mean: &[f32],
        var: &[f32],
        eps: f32,
    ) -> Var {
        self.norm_cols(x, gamma, beta, mean, var, eps, false)
    }

    /// `γ · (x − mean) / sqrt(var + eps) + β` per column, recorded with its backward.
    #[allow(clippy::too_many_arguments)] // the shared body of the two public batch norms
    fn norm_cols(
        &mut self,
        x: Var,
        gamma: Var,
        beta: Var,
        mean: &[f32],
        var: &[f32],
        eps: f32,
        batch_stats: bool,
    ) -> Var {
        let xv = &self.nodes[x.0].value;
        let (n, c) = (xv.rows, xv.cols);
        let (gv, bv) = (&self.nodes[gamma.0].value, &self.nodes[beta.0].value);
        assert_eq!(
            (gv.rows, gv.cols),
            (1, c),
            "batch_norm: gamma must be [1, C]"
        );
        assert_eq!(
            (bv.rows, bv.cols),
            (1, c),
            "batch_norm: beta must be [1, C]"
        );
        assert!(
            mean.len() == c && var.len() == c,
            "batch_norm: one statistic per column"
        );
        let mut stats = self.pool.take(2, c, false);
        stats.data[..c].copy_from_slice(mean);
        for (s, v) in stats.data[c..].iter_mut().zip(var) {
            *s = 1.0 / (v + eps).sqrt();
        }
        let mut out = self.pool.take(n, c, false);
        let (m, inv) = (stats.row(0), stats.row(1));
        out.data
            .par_chunks_mut(c.max(1))
            .with_min_len(64)
            .zip(xv.data.par_chunks(c.max(1)))
            .for_each(|(o, xr)| {
                for j in 0..c {
                    o[j] = gv.data[j] * (xr[j] - m[j]) * inv[j] + bv.data[j];
                }
            });
        let ng = self.needs(x) || self.needs(gamma) || self.needs(beta);
        self.push_custom(
            Box::new(BatchNormBack {
                x,
                gamma,
                beta,
                stats,
                batch_stats,
            }),
            out,
            ng,
        )
    }

    /// Layer norm: each row normalised over its columns (biased variance, as PyTorch), then
    /// scaled by `gamma` and shifted by `beta` (`[1, C]`).
    pub fn layer_norm(&mut self, x: Var, gamma: Var, beta: Var, eps: f32) -> Var {
        let xv = &self.nodes[x.0].value;
        let (n, c) = (xv.rows, xv.cols);
        let (gv, bv) = (&self.nodes[gamma.0].value, &self.nodes[beta.0].value);
        assert_eq!(
            (gv.rows, gv.cols),
            (1, c),
            "layer_norm: gamma must be [1, C]"
        );
        assert_eq!(
            (bv.rows, bv.cols),
            (1, c),
            "layer_norm: beta must be [1, C]"
        );
        let mut stats = self.pool.take(n, 2, false);
        let mut out = self.pool.take(n, c, false);
        let cf = c.max(1) as f64;
        out.data
            .par_chunks_mut(c.max(1))
            .with_min_len(64)
            .zip(
                xv.data
                    .par_chunks(c.max(1))
                    .zip(stats.data.par_chunks_mut(2)),
            )
            .for_each(|(o, (xr, s))| {
                let m = xr.iter().map(|&v| v as f64).sum::<f64>() / cf;
                let var = xr.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / cf;
                let (m, inv) = (m as f32, 1.0 / (var as f32 + eps).sqrt());
                s[0] = m;
                s[1] = inv;
                for j in 0..c {
                    o[j] = gv.data[j] * (xr[j] - m) * inv + bv.data[j];
                }
            });
        let ng = self.needs(x) || self.needs(gamma) || self.needs(beta);
        self.push_custom(
            Box::new(LayerNormBack {
                x,
                gamma,
                beta,
                stats,
            }),
            out,
            ng,
        )
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    use crate::tape::gradcheck::{check, rand_mat};
    use crate::{Matrix, ParamStore, Tape};

    #[test]
    fn batch_norm_normalises_columns_and_reports_biased_stats() {
        let mut t = Tape::new(true);
        // Column 1 has a large mean: the two-pass variance keeps it exact.
        let x = t.input(&Matrix::from_vec(
            4,
            2,
            vec![1.0, 1000.0, 2.0, 1001.0, 3.0, 1002.0, 6.0, 1005.0],
        ));
        let g = t.input(&Matrix::from_vec(1, 2, vec![1.0, 2.0]));
        let b = t.input(&Matrix::from_vec(1, 2, vec![0.0, -1.0]));
        let (y, mean, var) = t.batch_norm(x, g, b, 1e-5);
        assert_eq!(mean, vec![3.0, 1002.0]);
        assert_eq!(var, vec![3.5, 3.5]);
        let y = t.value(y).clone();
        for j in 0..2 {
            let col: Vec<f32> = (0..4).map(|i| y.data[i * 2 + j]).collect();
            let m = col.iter().sum::<f32>() / 4.0;
            let v = col.iter().map(|c| (c - m).powi(2)).sum::<f32>() / 4.0;
            let (gj, bj) = ([1.0f32, 2.0][j], [0.0f32, -1.0][j]);
            assert!((m - bj).abs() < 1e-4 && (v - gj * gj).abs() < 1e-3);
        }
        // Evaluation with the batch's own statistics gives the same output.
        let e = t.batch_norm_eval(x, g, b, &mean, &var, 1e-5);
        for (a, b) in t.value(e).data.iter().zip(&y.data) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn layer_norm_normalises_rows() {
        let mut t = Tape::new(true);
        let x = t.input(&Matrix::from_vec(2, 3, vec![1.0, 2.0, 3.0, -5.0, 0.0, 5.0]));
        let g = t.input(&Matrix::from_vec(1, 3, vec![1.0, 1.0, 1.0]));
        let b = t.input(&Matrix::from_vec(1, 3, vec![0.0, 0.0, 0.0]));
        let y = t.layer_norm(x, g, b, 0.0);
        let s = (1.5f32).sqrt();
        let want = [-s, 0.0, s, -s, 0.0, s];
        for (a, b) in t.value(y).data.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn gradients() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(6);
        let mut p = ParamStore::default();
        let x = p.add("x", rand_mat(5, 4, &mut rng));
        let g = p.add("gamma", rand_mat(1, 4, &mut rng));
        let b = p.add("beta", rand_mat(1, 4, &mut rng));
        let r = rand_mat(5, 4, &mut rng);
        let (rm, rv) = (vec![0.1, -0.2, 0.3, 0.0], vec![0.5, 1.0, 2.0, 0.25]);
        check(&mut p, &|t, ps| {
            let (xv, gv, bv) = (t.param(ps, x), t.param(ps, g), t.param(ps, b));
            let (y, _, _) = t.batch_norm(xv, gv, bv, 1e-5);
            t.weighted_sum(y, &r)
        });
        check(&mut p, &|t, ps| {
            let (xv, gv, bv) = (t.param(ps, x), t.param(ps, g), t.param(ps, b));
            let y = t.batch_norm_eval(xv, gv, bv, &rm, &rv, 1e-5);
            t.weighted_sum(y, &r)
        });
        check(&mut p, &|t, ps| {
            let (xv, gv, bv) = (t.param(ps, x), t.param(ps, g), t.param(ps, b));
            let y = t.layer_norm(xv, gv, bv, 1e-5);
            t.weighted_sum(y, &r)
        });
    }
}
