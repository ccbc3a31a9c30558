//! Mixture-of-experts ops (SAGMM): global linear attention for the gate, the learnable
//! threshold with its straight-through gradient, the weighted mixture of expert outputs and
//! the two auxiliary losses (load balance, gate diversity). E (experts) is small (≤ 9 by default), so
//! every `[n, E]` op is one pass over rows; reductions accumulate in f64.
// The per-row loops index several E-wide arrays (gate row, selection, threshold) by expert.
#![allow(clippy::needless_range_loop)]

use rayon::prelude::*;

use crate::tape::{Backward, Ctx};
use crate::{Matrix, Tape, Var};

/// Frobenius norm, floored so an all-zero batch does not divide by zero.
fn frobenius(m: &Matrix) -> f64 {
    m.data
        .iter()
        .map(|&v| (v as f64) * (v as f64))
        .sum::<f64>()
        .sqrt()
        .max(1e-12)
}

/// `Xᵀ Y` for `[n, a]` and `[n, b]` row-major matrices, as an `a × b` f64 vector.
fn xt_y(x: &Matrix, y: &Matrix) -> Vec<f64> {
    let (a, b) = (x.cols, y.cols);
    (0..x.rows)
        .into_par_iter()
        .with_min_len(256)
        .fold(
            || vec![0.0f64; a * b],
            |mut acc, i| {
                let (xr, yr) = (x.row(i), y.row(i));
                for (e, &xv) in xr.iter().enumerate() {
                    for (f, &yv) in yr.iter().enumerate() {
                        acc[e * b + f] += xv as f64 * yv as f64;
                    }
                }
                acc
            },
        )
        .reduce(
            || vec![0.0f64; a * b],
            |mut s, t| {
                s.iter_mut().zip(&t).for_each(|(s, t)| *s += t);
                s
            },
        )
}

/// Column sums of `x` in f64.
fn col_sums(x: &Matrix) -> Vec<f64> {
    col_dots(x, None)
}

/// Per column j, `Σ_i x_ij · y_ij` (`y` absent: `Σ_i x_ij`), in f64 without a temporary.
fn col_dots(x: &Matrix, y: Option<&Matrix>) -> Vec<f64> {
    let e = x.cols;
    (0..x.rows)
        .into_par_iter()
        .with_min_len(256)
        .fold(
            || vec![0.0f64; e],
            |mut acc, i| {
                let xr = x.row(i);
                match y {
                    Some(y) => {
                        for ((a, &xv), &yv) in acc.iter_mut().zip(xr).zip(y.row(i)) {
                            *a += xv as f64 * yv as f64;
                        }
                    }
                    None => {
                        for (a, &xv) in acc.iter_mut().zip(xr) {
                            *a += xv as f64;
                        }
                    }
                }
                acc
            },
        )
        .reduce(
            || vec![0.0f64; e],
            |mut s, t| {
                s.iter_mut().zip(&t).for_each(|(s, t)| *s += t);
                s
            },
        )
}

struct LinearAttentionBack {
    q: Var,
    k: Var,
    v: Var,
    /// Norms of the raw Q and K.
    nq: f64,
    nk: f64,
    /// `A = K̂ᵀ V` (`[E, E]`) and `s = K̂ᵀ 1` (`[E]`).
    a: Vec<f64>,
    s: Vec<f64>,
}

impl Backward for LinearAttentionBack {
    fn backward(&self, out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        let (qv, kv, vv, ov) = (
            cx.value(self.q),
            cx.value(self.k),
            cx.value(self.v),
            cx.value(out),
        );
        let (n, e) = (qv.rows, qv.cols);
        let nf = n as f64;
        let (nq, nk) = (self.nq, self.nk);
        // Per row: dnum = g / den, dden = −Σ_j g·out / den; den recomputed from Q̂ and s.
        let mut dnum = Matrix::zeros(n, e);
        let mut dden = Matrix::zeros(n, 1);
        dnum.data
            .par_chunks_mut(e)
            .zip(dden.data.par_iter_mut())
            .enumerate()
            .for_each(|(i, (dn, dd))| {
                let den: f64 = qv
                    .row(i)
                    .iter()
                    .zip(&self.s)
                    .map(|(&q, s)| q as f64 / nq * s)
                    .sum::<f64>()
                    + nf;
                let mut acc = 0.0f64;
                for j in 0..e {
                    let gij = g.row(i)[j] as f64;
                    dn[j] = (gij / den) as f32;
                    acc += gij * ov.row(i)[j] as f64;
                }
                *dd = (-acc / den) as f32;
            });
        // dA = Q̂ᵀ dnum, ds = Q̂ᵀ dden (Q̂ = Q / nq).
        let da: Vec<f64> = xt_y(qv, &dnum).iter().map(|v| v / nq).collect();
        let ds: Vec<f64> = xt_y(qv, &dden).iter().map(|v| v / nq).collect();
        if cx.needs(self.q) {
            // dQ̂ = dnum Aᵀ + dden sᵀ, then through Q̂ = Q / ‖Q‖: dQ = (dQ̂ − Q̂ ⟨Q̂, dQ̂⟩) / ‖Q‖.
            let mut dqh = Matrix::zeros(n, e);
            dqh.data.par_chunks_mut(e).enumerate().for_each(|(i, d)| {
                for (c, dc) in d.iter_mut().enumerate() {
                    let mut t = dden.data[i] as f64 * self.s[c];
                    for j in 0..e {
                        t += dnum.row(i)[j] as f64 * self.a[c * e + j];
                    }
                    *dc = t as f32;
                }
            });
            normalize_back(qv, nq, &dqh, cx.grad(self.q));
        }
        if cx.needs(self.k) {
            // dK̂ = V dAᵀ + 1 dsᵀ.
            let mut dkh = Matrix::zeros(n, e);
            dkh.data.par_chunks_mut(e).enumerate().for_each(|(i, d)| {
                for (c, dc) in d.iter_mut().enumerate() {
                    let mut t = ds[c];
                    for j in 0..e {
                        t += vv.row(i)[j] as f64 * da[c * e + j];
                    }
                    *dc = t as f32;
                }
            });
            normalize_back(kv, nk, &dkh, cx.grad(self.k));
        }
        if cx.needs(self.v) {
            // dV = n·dnum + K̂ dA.
            let gv = cx.grad(self.v);
            gv.data.par_chunks_mut(e).enumerate().for_each(|(i, d)| {
                for (j, dj) in d.iter_mut().enumerate() {
                    let mut t = nf * dnum.row(i)[j] as f64;
                    for c in 0..e {
                        t += kv.row(i)[c] as f64 / nk * da[c * e + j];
                    }
                    *dj += t as f32;
                }
            });
        }
    }
}

/// Adds the gradient through `x̂ = x / ‖x‖_F` to `gx`, given `dxh = ∂L/∂x̂`.
fn normalize_back(x: &Matrix, norm: f64, dxh: &Matrix, gx: &mut Matrix) {
    let dot: f64 = x
        .data
        .par_iter()
        .zip(&dxh.data)
        .map(|(&a, &b)| a as f64 / norm * b as f64)
        .sum();
    gx.data
        .par_iter_mut()
        .zip(x.data.par_iter().zip(&dxh.data))
        .for_each(|(g, (&xv, &d))| {
            *g += ((d as f64 - xv as f64 / norm * dot) / norm) as f32;
        });
}

struct ThresholdBack {
    p: Var,
    tau: Var,
    /// 1 where expert e serves node i (forward decision), row-major `[n, E]`.
    sel: Vec<u8>,
    active: Vec<bool>,
}

impl Backward for ThresholdBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        let (pv, tv) = (cx.value(self.p), cx.value(self.tau));
        let e = pv.cols;
        // Straight-through: the hard decision s = 1[p > σ(τ)] passes the gradient of
        // p − σ(τ) unchanged, so w = p·s has ∂w/∂p = s + p and ∂w/∂τ = −p·σ'(τ).
        if cx.needs(self.p) {
            let active = &self.active;
            let sel = &self.sel;
            cx.grad(self.p)
                .data
                .par_chunks_mut(e)
                .enumerate()
                .for_each(|(i, d)| {
                    for j in 0..e {
                        if active[j] {
                            let s = sel[i * e + j] as f32;
                            d[j] += g.row(i)[j] * (s + pv.row(i)[j]);
                        }
                    }
                });
        }
        if cx.needs(self.tau) {
            let gp = col_dots(g, Some(pv));
            let gt = cx.grad(self.tau);
            for j in 0..e {
                if self.active[j] {
                    let st = 1.0 / (1.0 + (-tv.data[j] as f64).exp());
                    gt.data[j] -= (gp[j] * st * (1.0 - st)) as f32;
                }
            }
        }
    }
}

struct MixBack {
    w: Var,
    experts: Vec<Option<Var>>,
}

impl Backward for MixBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        let wv = cx.value(self.w);
        let e = wv.cols;
        let h = g.cols;
        if cx.needs(self.w) {
            let hs: Vec<Option<&Matrix>> = self
                .experts
                .iter()
                .map(|x| x.map(|v| cx.value(v)))
                .collect();
            cx.grad(self.w)
                .data
                .par_chunks_mut(e)
                .enumerate()
                .for_each(|(i, d)| {
                    for (j, hx) in hs.iter().enumerate() {
                        if let Some(hx) = hx {
                            d[j] += g
                                .row(i)
                                .iter()
                                .zip(hx.row(i))
                                .map(|(a, b)| a * b)
                                .sum::<f32>();
                        }
                    }
                });
        }
        for (j, x) in self.experts.iter().enumerate() {
            if let Some(x) = *x {
                if cx.needs(x) {
                    cx.grad(x)
                        .data
                        .par_chunks_mut(h.max(1))
                        .enumerate()
                        .for_each(|(i, d)| {
                            let wij = wv.row(i)[j];
                            for (d, s) in d.iter_mut().zip(g.row(i)) {
                                *d += wij * s;
                            }
                        });
                }
            }
        }
    }
}

struct TopkBack {
    x: Var,
}

impl Backward for TopkBack {
    fn backward(&self, out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        if !cx.needs(self.x) {
            return;
        }
        let y = cx.value(out);
        let e = y.cols;
        // Softmax over the kept entries: dx_j = y_j (g_j − Σ_l g_l y_l); dropped entries
        // (y = 0) get nothing.
        cx.grad(self.x)
            .data
            .par_chunks_mut(e.max(1))
            .enumerate()
            .for_each(|(i, d)| {
                let (yr, gr) = (y.row(i), g.row(i));
                let s: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
                for j in 0..e {
                    d[j] += yr[j] * (gr[j] - s);
                }
            });
    }
}

struct CvBack {
    w: Var,
    /// ∂CV²/∂(column sum e), 0 for inactive columns.
    dimp: Vec<f64>,
}

impl Backward for CvBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        if cx.needs(self.w) {
            let g0 = g.data[0] as f64;
            let d: Vec<f32> = self.dimp.iter().map(|v| (v * g0) as f32).collect();
            let e = d.len();
            cx.grad(self.w)
                .data
                .par_chunks_mut(e)
                .for_each(|r| r.iter_mut().zip(&d).for_each(|(r, d)| *r += d));
        }
    }
}

struct DiversityBack {
    w: Var,
    /// ∂loss/∂W, `[d, E]`.
    dw: Matrix,
}

impl Backward for DiversityBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        if cx.needs(self.w) {
            let g0 = g.data[0];
            cx.grad(self.w)
                .data
                .iter_mut()
                .zip(&self.dw.data)
                .for_each(|(d, s)| *d += g0 * s);
        }
    }
}

impl Tape {
    /// SAGMM's global linear attention over a batch's n rows: with `Q̂ = Q/‖Q‖_F` and
    /// `K̂ = K/‖K‖_F`, `out = (Q̂ (K̂ᵀ V) + n V) / (Q̂ (K̂ᵀ 1) + n)` row by row (`[n, E]`).
    pub fn linear_attention(&mut self, q: Var, k: Var, v: Var) -> Var {
        let (qv, kv, vv) = (
            &self.nodes[q.0].value,
            &self.nodes[k.0].value,
            &self.nodes[v.0].value,
        );
        let (n, e) = (qv.rows, qv.cols);
        assert!(
            (kv.rows, kv.cols) == (n, e) && (vv.rows, vv.cols) == (n, e),
            "linear_attention: Q, K, V must share one [n, E] shape"
        );
        let (nq, nk) = (frobenius(qv), frobenius(kv));
        let a: Vec<f64> = xt_y(kv, vv).iter().map(|x| x / nk).collect();
        let s: Vec<f64> = col_sums(kv).iter().map(|x| x / nk).collect();
        let nf = n as f64;
        let mut out = self.pool.take(n, e, false);
        out.data
            .par_chunks_mut(e.max(1))
            .enumerate()
            .for_each(|(i, o)| {
                let qr = qv.row(i);
                let den: f64 = qr
                    .iter()
                    .zip(&s)
                    .map(|(&q, s)| q as f64 / nq * s)
                    .sum::<f64>()
                    + nf;
                for (j, oj) in o.iter_mut().enumerate() {
                    let mut num = nf * vv.row(i)[j] as f64;
                    for (c, &q) in qr.iter().enumerate() {
                        num += q as f64 / nq * a[c * e + j];
                    }
                    *oj = (num / den) as f32;
                }
            });
        let ng = self.needs(q) || self.needs(k) || self.needs(v);
        self.push_custom(
            Box::new(LinearAttentionBack {
                q,
                k,
                v,
                nq,
                nk,
                a,
                s,
            }),
            out,
            ng,
        )
    }

    /// SAGMM's learnable threshold: node i uses expert e when `p_ie > σ(τ_e)` (only `active`
    /// experts; a node choosing none uses its highest-p active expert), with weight `p_ie`
    /// where used and 0 elsewhere (`[n, E]`, not renormalised). The decision is hard; its
    /// gradient is straight-through (see the backward).
    pub fn threshold_gate(&mut self, p: Var, tau: Var, active: &[bool]) -> Var {
        let (pv, tv) = (&self.nodes[p.0].value, &self.nodes[tau.0].value);
        let (n, e) = (pv.rows, pv.cols);
        assert!(
            tv.data.len() == e && active.len() == e,
            "threshold_gate: τ and the active mask need one entry per expert"
        );
        let thr: Vec<f32> = tv.data.iter().map(|&t| 1.0 / (1.0 + (-t).exp())).collect();
        let mut sel = vec![0u8; n * e];
        let mut out = self.pool.take(n, e, true);
        out.data
            .par_chunks_mut(e.max(1))
            .zip(sel.par_chunks_mut(e.max(1)))
            .enumerate()
            .for_each(|(i, (o, s))| {
                let pr = pv.row(i);
                let mut any = false;
                let mut best: Option<usize> = None;
                for j in 0..e {
                    if !active[j] {
                        continue;
                    }
                    if best.is_none_or(|b| pr[j] > pr[b]) {
                        best = Some(j);
                    }
                    if pr[j] > thr[j] {
                        s[j] = 1;
                        any = true;
                    }
                }
                if let (false, Some(b)) = (any, best) {
                    s[b] = 1;
                }
                for j in 0..e {
                    if s[j] == 1 {
                        o[j] = pr[j];
                    }
                }
            });
        let ng = self.needs(p) || self.needs(tau);
        self.push_custom(
            Box::new(ThresholdBack {
                p,
                tau,
                sel,
                active: active.to_vec(),
            }),
            out,
            ng,
        )
    }

    /// Noisy top-k gating's weights: per row, a softmax over the `k` largest scores among the
    /// `active` columns, 0 elsewhere (`[n, E]`).
    pub fn topk_softmax(&mut self, x: Var, k: usize, active: &[bool]) -> Var {
        let xv = &self.nodes[x.0].value;
        let (n, e) = (xv.rows, xv.cols);
        assert_eq!(active.len(), e, "topk_softmax: one active flag per column");
        let mut out = self.pool.take(n, e, true);
        out.data
            .par_chunks_mut(e.max(1))
            .enumerate()
            // One index buffer per worker, not one allocation per row.
            .for_each_init(Vec::new, |idx: &mut Vec<usize>, (i, o)| {
                let r = xv.row(i);
                idx.clear();
                idx.extend((0..e).filter(|&j| active[j]));
                idx.sort_by(|&a, &b| r[b].total_cmp(&r[a]));
                idx.truncate(k.max(1));
                let m = idx.iter().map(|&j| r[j]).fold(f32::NEG_INFINITY, f32::max);
                let z: f32 = idx.iter().map(|&j| (r[j] - m).exp()).sum();
                for &j in idx.iter() {
                    o[j] = (r[j] - m).exp() / z;
                }
            });
        let ng = self.needs(x);
        self.push_custom(Box::new(TopkBack { x }), out, ng)
    }

    /// `Σ_e w[:, e] ∘ h_e` over the experts present (`None`: pruned), `[n, hidden]`.
    pub fn mix_experts(&mut self, w: Var, experts: &[Option<Var>]) -> Var {
        let wv = self.value(w);
        let (n, e) = (wv.rows, wv.cols);
        assert_eq!(
            experts.len(),
            e,
            "mix_experts: one expert slot per gate column"
        );
        let h = experts
            .iter()
            .flatten()
            .map(|&x| self.value(x).cols)
            .next()
            .expect("mix_experts: at least one expert");
        let mut out = self.pool.take(n, h, true);
        for (j, x) in experts.iter().enumerate() {
            if let Some(x) = *x {
                let (xv, wv) = (&self.nodes[x.0].value, &self.nodes[w.0].value);
                assert_eq!(
                    (xv.rows, xv.cols),
                    (n, h),
                    "mix_experts: expert shapes differ"
                );
                out.data
                    .par_chunks_mut(h.max(1))
                    .enumerate()
                    .for_each(|(i, o)| {
                        let wij = wv.row(i)[j];
                        if wij != 0.0 {
                            for (o, s) in o.iter_mut().zip(xv.row(i)) {
                                *o += wij * s;
                            }
                        }
                    });
            }
        }
        let ng = self.needs(w) || experts.iter().flatten().any(|&x| self.needs(x));
        self.push_custom(
            Box::new(MixBack {
                w,
                experts: experts.to_vec(),
            }),
            out,
            ng,
        )
    }

    /// Load balance: the squared coefficient of variation (unbiased variance over squared
    /// mean) of the column sums of `w` over the `active` columns, `[1, 1]`; 0 with fewer
    /// than two active columns.
    pub fn cv_squared(&mut self, w: Var, active: &[bool]) -> Var {
        let wv = self.value(w);
        let imp = col_sums(wv);
        let idx: Vec<usize> = (0..wv.cols).filter(|&j| active[j]).collect();
        let m = idx.len() as f64;
        let mut dimp = vec![0.0f64; wv.cols];
        let mut value = 0.0f64;
        if idx.len() >= 2 {
            let mean = idx.iter().map(|&j| imp[j]).sum::<f64>() / m;
            let var = idx.iter().map(|&j| (imp[j] - mean).powi(2)).sum::<f64>() / (m - 1.0);
            let eps = 1e-10;
            let den = mean * mean + eps;
            value = var / den;
            for &j in &idx {
                let dvar = 2.0 * (imp[j] - mean) / (m - 1.0);
                let dden = 2.0 * mean / m;
                dimp[j] = dvar / den - var * dden / (den * den);
            }
        }
        let mut out = self.pool.take(1, 1, false);
        out.data[0] = value as f32;
        let ng = self.needs(w);
        self.push_custom(Box::new(CvBack { w, dimp }), out, ng)
    }

    /// Gate diversity for a `[d, E]` projection: with unit columns `Ŵ` and M the active
    /// pairs, `‖(ŴᵀŴ − I) ∘ M‖_F + mean_e ‖W_e‖` over active columns, `[1, 1]`.
    pub fn column_diversity(&mut self, w: Var, active: &[bool]) -> Var {
        let wv = self.value(w);
        let (d, e) = (wv.rows, wv.cols);
        let norms: Vec<f64> = (0..e)
            .map(|j| {
                (0..d)
                    .map(|r| (wv.data[r * e + j] as f64).powi(2))
                    .sum::<f64>()
                    .sqrt()
                    .max(1e-12)
            })
            .collect();
        let unit = |r: usize, j: usize| wv.data[r * e + j] as f64 / norms[j];
        let idx: Vec<usize> = (0..e).filter(|&j| active[j]).collect();
        // Gram matrix of the active unit columns, minus the identity.
        let mut gm = vec![0.0f64; e * e];
        for &a in &idx {
            for &b in &idx {
                let dot: f64 = (0..d).map(|r| unit(r, a) * unit(r, b)).sum();
                gm[a * e + b] = dot - if a == b { 1.0 } else { 0.0 };
            }
        }
        let fro = gm.iter().map(|v| v * v).sum::<f64>().sqrt();
        let m = idx.len().max(1) as f64;
        let value = fro + idx.iter().map(|&j| norms[j]).sum::<f64>() / m;
        // ∂‖G‖/∂Ŵ = 2 Ŵ G / ‖G‖ (G symmetric); through Ŵ_e = W_e/‖W_e‖:
        // ∂/∂W_e = (dŴ_e − Ŵ_e ⟨Ŵ_e, dŴ_e⟩)/‖W_e‖; the norm term adds Ŵ_e / m.
        let mut dw = Matrix::zeros(d, e);
        for &a in &idx {
            let dh: Vec<f64> = (0..d)
                .map(|r| {
                    if fro > 1e-12 {
                        2.0 * idx.iter().map(|&b| unit(r, b) * gm[b * e + a]).sum::<f64>() / fro
                    } else {
                        0.0
                    }
                })
                .collect();
            let dot: f64 = (0..d).map(|r| unit(r, a) * dh[r]).sum();
            for (r, dhr) in dh.iter().enumerate() {
                let u = unit(r, a);
                dw.data[r * e + a] = ((dhr - u * dot) / norms[a] + u / m) as f32;
            }
        }
        let mut out = self.pool.take(1, 1, false);
        out.data[0] = value as f32;
        let ng = self.needs(w);
        self.push_custom(Box::new(DiversityBack { w, dw }), out, ng)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    use crate::tape::gradcheck::{check, rand_mat};
    use crate::{Matrix, ParamStore, Tape};

    #[test]
    fn linear_attention_matches_its_formula_and_finite_differences() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let (q, k, v) = (
            rand_mat(6, 3, &mut rng),
            rand_mat(6, 3, &mut rng),
            rand_mat(6, 3, &mut rng),
        );
        // The formula, written out densely.
        let nq = q.data.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nk = k.data.iter().map(|x| x * x).sum::<f32>().sqrt();
        let mut t = Tape::new(true);
        let (qv, kv, vv) = (t.input(&q), t.input(&k), t.input(&v));
        let o = t.linear_attention(qv, kv, vv);
        let out = t.value(o).clone();
        for i in 0..6 {
            let den: f32 = (0..3)
                .map(|c| q.row(i)[c] / nq * (0..6).map(|r| k.row(r)[c] / nk).sum::<f32>())
                .sum::<f32>()
                + 6.0;
            for j in 0..3 {
                let num: f32 = (0..3)
                    .map(|c| {
                        q.row(i)[c] / nq
                            * (0..6).map(|r| k.row(r)[c] / nk * v.row(r)[j]).sum::<f32>()
                    })
                    .sum::<f32>()
                    + 6.0 * v.row(i)[j];
                assert!((out.row(i)[j] - num / den).abs() < 1e-5);
            }
        }
        let mut p = ParamStore::default();
        let (qi, ki, vi) = (p.add("q", q), p.add("k", k), p.add("v", v));
        let r = rand_mat(6, 3, &mut rng);
        check(&mut p, &|t, ps| {
            let (a, b, c) = (t.param(ps, qi), t.param(ps, ki), t.param(ps, vi));
            let o = t.linear_attention(a, b, c);
            t.weighted_sum(o, &r)
        });
    }

    #[test]
    fn mix_cv_and_diversity_match_finite_differences() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(6);
        let mut p = ParamStore::default();
        let w = p.add("w", rand_mat(5, 3, &mut rng));
        let h0 = p.add("h0", rand_mat(5, 4, &mut rng));
        let h2 = p.add("h2", rand_mat(5, 4, &mut rng));
        let r = rand_mat(5, 4, &mut rng);
        check(&mut p, &|t, ps| {
            let (wv, a, b) = (t.param(ps, w), t.param(ps, h0), t.param(ps, h2));
            let m = t.mix_experts(wv, &[Some(a), None, Some(b)]);
            t.weighted_sum(m, &r)
        });
        let mut p = ParamStore::default();
        let mut pos = rand_mat(7, 4, &mut rng);
        pos.data.iter_mut().for_each(|v| *v = v.abs() + 0.1);
        let w = p.add("w", pos);
        check(&mut p, &|t, ps| {
            let wv = t.param(ps, w);
            t.cv_squared(wv, &[true, true, false, true])
        });
        let mut p = ParamStore::default();
        let w = p.add("w", rand_mat(6, 4, &mut rng));
        check(&mut p, &|t, ps| {
            let wv = t.param(ps, w);
            t.column_diversity(wv, &[true, false, true, true])
        });
    }

    #[test]
    fn topk_softmax_keeps_k_and_matches_finite_differences() {
        let mut t = Tape::new(false);
        let x = t.input(&Matrix::from_vec(1, 4, vec![3.0, 1.0, 2.0, 5.0]));
        // Column 3 inactive: the top two of the rest are 0 and 2.
        let y = t.topk_softmax(x, 2, &[true, true, true, false]);
        let v = &t.value(y).data;
        let z = 1.0 + (-1f32).exp();
        assert!((v[0] - 1.0 / z).abs() < 1e-6 && v[1] == 0.0 && v[3] == 0.0);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let mut p = ParamStore::default();
        let xi = p.add("x", rand_mat(5, 4, &mut rng));
        let r = rand_mat(5, 4, &mut rng);
        check(&mut p, &|t, ps| {
            let xv = t.param(ps, xi);
            let s = t.softplus(xv);
            let y = t.topk_softmax(s, 2, &[true, true, true, true]);
            t.weighted_sum(y, &r)
        });
    }

    #[test]
    fn orthonormal_columns_have_zero_gram_penalty() {
        let mut t = Tape::new(false);
        let w = t.input(&Matrix::from_vec(3, 2, vec![1., 0., 0., 1., 0., 0.]));
        let d = t.column_diversity(w, &[true, true]);
        // Only the mean column norm (1) remains.
        assert!((t.value(d).data[0] - 1.0).abs() < 1e-6);
        let w = t.input(&Matrix::from_vec(2, 2, vec![1., 1., 0., 0.]));
        let d = t.column_diversity(w, &[true, true]);
        // Two identical unit columns: off-diagonal 1 twice → ‖·‖_F = √2, plus norm 1.
        assert!((t.value(d).data[0] - (2f32.sqrt() + 1.0)).abs() < 1e-5);
    }

    #[test]
    fn threshold_selects_above_sigmoid_tau_falls_back_to_the_best_and_passes_gradients_straight_through(
    ) {
        let mut t = Tape::new(true);
        let mut ps = ParamStore::default();
        let pi = ps.add(
            "p",
            Matrix::from_vec(3, 3, vec![0.9, 0.7, 0.2, 0.1, 0.3, 0.4, 0.6, 0.8, 0.9]),
        );
        let ti = ps.add("tau", Matrix::zeros(1, 3));
        let (p, tau) = (t.param(&ps, pi), t.param(&ps, ti));
        // Expert 2 pruned: never used, no gradient.
        let w = t.threshold_gate(p, tau, &[true, true, false]);
        let wv = t.value(w).clone();
        // σ(0) = 0.5: row 0 uses experts 0 and 1; row 1 none above → its best active (1);
        // row 2 uses 0 and 1 but not the pruned 2.
        assert_eq!(wv.data, vec![0.9, 0.7, 0.0, 0.0, 0.3, 0.0, 0.6, 0.8, 0.0]);
        let r = Matrix::from_vec(3, 3, vec![1.0; 9]);
        let loss = t.weighted_sum(w, &r);
        ps.zero_grad();
        t.backward(loss, &mut ps);
        // ∂w/∂p = s + p on active columns.
        let gp = &ps.grads[pi].data;
        assert!((gp[0] - 1.9).abs() < 1e-6 && (gp[2]).abs() < 1e-9);
        assert!((gp[3] - 0.1).abs() < 1e-6 && (gp[4] - 1.3).abs() < 1e-6);
        // ∂w/∂τ_e = −σ'(τ_e) Σ_i p_ie = −0.25 Σ_i p_ie.
        let gt = &ps.grads[ti].data;
        assert!((gt[0] + 0.25 * 1.6).abs() < 1e-6);
        assert!((gt[1] + 0.25 * 1.8).abs() < 1e-6);
        assert_eq!(gt[2], 0.0);
    }
}
