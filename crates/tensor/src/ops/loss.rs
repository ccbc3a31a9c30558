//! Elementwise losses reduced to a `[1, 1]` mean: binary cross-entropy on logits (multi-label
//! node classification) and mean squared error (regression), optionally over a row subset.
//!
//! The forward pass also writes d(loss)/d(input) into a pooled buffer, so the backward pass
//! only scales it (and scatters it back to the selected rows): the targets need not be kept.

use std::sync::Arc;

use rayon::prelude::*;

use super::gather::{reduce_chunk, scatter_rows};
use crate::tape::{Backward, Ctx, Pool};
use crate::{Matrix, Tape, Var};

struct LossBack {
    x: Var,
    /// d(mean loss)/d(input) for the selected rows, `[idx.len() or rows, C]`.
    dl: Matrix,
    idx: Option<Arc<Vec<usize>>>,
}

impl Backward for LossBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        if !cx.needs(self.x) {
            return;
        }
        let s = g.data[0];
        let gx = cx.grad(self.x);
        match &self.idx {
            None => gx
                .data
                .par_iter_mut()
                .zip(&self.dl.data)
                .for_each(|(d, l)| *d += s * l),
            // Repeated rows are summed, as the mean counted them twice.
            Some(idx) => scatter_rows(&self.dl, idx, s, gx, true),
        }
    }

    fn release(self: Box<Self>, pool: &mut Pool) {
        pool.give(self.dl);
    }
}

/// `σ(x)` without overflow for large |x|.
fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl Tape {
    /// Mean binary cross-entropy between `sigmoid(logits)` and `targets` in [0, 1], over every
    /// column of the rows `idx` (all rows when `None`). `targets` has the shape of `logits`
    /// and is indexed by row, like `nll`'s labels. Computed as
    /// `max(x, 0) − x·t + ln(1 + e^−|x|)`, finite for any logit.
    pub fn bce_with_logits(
        &mut self,
        logits: Var,
        targets: &Matrix,
        idx: Option<Arc<Vec<usize>>>,
    ) -> Var {
        self.elementwise_loss(logits, targets, idx, |x, t| {
            let l = x.max(0.0) - x * t + (-x.abs()).exp().ln_1p();
            (l, sigmoid(x) - t)
        })
    }

    /// Mean squared error between `pred` and `targets` (same shape, indexed by row) over every
    /// column of the rows `idx` (all rows when `None`).
    pub fn mse(&mut self, pred: Var, targets: &Matrix, idx: Option<Arc<Vec<usize>>>) -> Var {
        self.elementwise_loss(pred, targets, idx, |p, t| {
            let d = p - t;
            (d * d, 2.0 * d)
        })
    }

    /// Mean of `f(x, t).0` over the selected entries; `f(x, t).1` is its derivative in `x`.
    fn elementwise_loss(
        &mut self,
        x: Var,
        targets: &Matrix,
        idx: Option<Arc<Vec<usize>>>,
        f: impl Fn(f32, f32) -> (f32, f32) + Sync,
    ) -> Var {
        let xv = &self.nodes[x.0].value;
        let (n, c) = (xv.rows, xv.cols);
        assert_eq!(
            (targets.rows, targets.cols),
            (n, c),
            "loss: targets must have the shape of the input"
        );
        let m = idx.as_ref().map_or(n, |i| i.len());
        if let Some(i) = &idx {
            assert!(i.iter().all(|&r| r < n), "loss: row index out of range");
        }
        let count = (m * c).max(1);
        let inv = 1.0 / count as f32;
        let mut dl = self.pool.take(m, c, false);
        // Partial sums over a fixed split of the rows, added in order: reproducible.
        let chunk = reduce_chunk(m);
        let parts: Vec<f64> = dl
            .data
            .par_chunks_mut((chunk * c).max(1))
            .enumerate()
            .map(|(t, d)| {
                let mut s = 0f64;
                for (r, d) in d.chunks_mut(c.max(1)).enumerate() {
                    let k = t * chunk + r;
                    let i = idx.as_ref().map_or(k, |ix| ix[k]);
                    for ((d, &xv), &tv) in d.iter_mut().zip(xv.row(i)).zip(targets.row(i)) {
                        let (l, dv) = f(xv, tv);
                        s += l as f64;
                        *d = dv * inv;
                    }
                }
                s
            })
            .collect();
        let mut out = self.pool.take(1, 1, false);
        out.data[0] = (parts.iter().sum::<f64>() / count as f64) as f32;
        let ng = self.needs(x);
        self.push_custom(Box::new(LossBack { x, dl, idx }), out, ng)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    use crate::tape::gradcheck::{check, rand_mat};
    use crate::{Matrix, ParamStore, Tape};

    #[test]
    fn values_match_the_naive_formulas() {
        let mut t = Tape::new(true);
        let xm = Matrix::from_vec(2, 2, vec![0.5, -1.0, 2.0, 0.0]);
        let tm = Matrix::from_vec(2, 2, vec![1.0, 0.0, 0.0, 1.0]);
        let x = t.input(&xm);
        let naive = |x: f32, t: f32| {
            let s = 1.0 / (1.0 + (-x).exp());
            -(t * s.ln() + (1.0 - t) * (1.0 - s).ln())
        };
        let l = t.bce_with_logits(x, &tm, None);
        let want: f32 = (0..4).map(|k| naive(xm.data[k], tm.data[k])).sum::<f32>() / 4.0;
        assert!((t.value(l).data[0] - want).abs() < 1e-6);
        // Row 1 only, counted twice.
        let l = t.bce_with_logits(x, &tm, Some(Arc::new(vec![1, 1])));
        let want = (naive(2.0, 0.0) + naive(0.0, 1.0)) / 2.0;
        assert!((t.value(l).data[0] - want).abs() < 1e-6);
        let l = t.mse(x, &tm, Some(Arc::new(vec![0])));
        assert!((t.value(l).data[0] - (0.25 + 1.0) / 2.0).abs() < 1e-6);
        // Extreme logits stay finite: loss ≈ |x| when wrong, ≈ 0 when right.
        let big = t.input(&Matrix::from_vec(1, 2, vec![100.0, -100.0]));
        let l = t.bce_with_logits(big, &Matrix::from_vec(1, 2, vec![0.0, 0.0]), None);
        assert!((t.value(l).data[0] - 50.0).abs() < 1e-3);
    }

    #[test]
    fn gradients() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        let mut p = ParamStore::default();
        let x = p.add("x", rand_mat(5, 3, &mut rng));
        let soft = Matrix::from_vec(5, 3, (0..15).map(|_| rng.random_range(0.0..1.0)).collect());
        let hard = Matrix::from_vec(5, 3, (0..15).map(|k| (k % 2) as f32).collect());
        let idx = Arc::new(vec![4usize, 0, 2, 4]);
        for tg in [&soft, &hard] {
            check(&mut p, &|t, ps| {
                let xv = t.param(ps, x);
                let h = t.scale(xv, 3.0);
                t.bce_with_logits(h, tg, None)
            });
            check(&mut p, &|t, ps| {
                let xv = t.param(ps, x);
                t.bce_with_logits(xv, tg, Some(idx.clone()))
            });
            check(&mut p, &|t, ps| {
                let xv = t.param(ps, x);
                t.mse(xv, tg, None)
            });
            check(&mut p, &|t, ps| {
                let xv = t.param(ps, x);
                t.mse(xv, tg, Some(idx.clone()))
            });
        }
    }
}
