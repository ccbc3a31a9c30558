//! `CpuBackend`: the kernels on the host, parallel with rayon, GEMM from matrixmultiply on
//! strided views (transposes are strides, never copies). Figures in `crates/tensor/README.md`.

use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::{Act, AdamStep, Backend};
use crate::{sgemm, spmm, Matrix, SparseMat};

/// Elements per independently seeded dropout RNG stream: large enough to amortise seeding,
/// small enough to spread over threads.
const DROPOUT_CHUNK: usize = 1 << 14;

/// The host backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuBackend;

/// The instance the tape and optimizers use.
pub static CPU: CpuBackend = CpuBackend;

impl Backend for CpuBackend {
    type Buf = Matrix;

    fn name(&self) -> &'static str {
        "cpu"
    }

    fn alloc(&self, rows: usize, cols: usize) -> Matrix {
        Matrix::zeros(rows, cols)
    }

    fn upload(&self, m: &Matrix) -> Matrix {
        m.clone()
    }

    fn download(&self, b: &Matrix) -> Matrix {
        b.clone()
    }

    fn zero(&self, b: &mut Matrix) {
        b.data
            .par_iter_mut()
            .with_min_len(1 << 14)
            .for_each(|v| *v = 0.0);
    }

    fn copy(&self, src: &Matrix, dst: &mut Matrix) {
        assert_eq!(
            (src.rows, src.cols),
            (dst.rows, dst.cols),
            "copy: shapes differ"
        );
        dst.data.copy_from_slice(&src.data);
    }

    fn sgemm(
        &self,
        ta: bool,
        tb: bool,
        alpha: f32,
        a: &Matrix,
        b: &Matrix,
        beta: f32,
        c: &mut Matrix,
    ) {
        sgemm(ta, tb, alpha, a, b, beta, c);
    }

    fn spmm(&self, a: &SparseMat, x: &Matrix, out: &mut Matrix, accumulate: bool) {
        spmm(a, x, out, accumulate);
    }

    fn gather_rows(&self, src: &Matrix, idx: &[usize], out: &mut Matrix) {
        let c = src.cols;
        assert_eq!(
            (out.rows, out.cols),
            (idx.len(), c),
            "gather_rows: output shape"
        );
        assert!(
            idx.iter().all(|&i| i < src.rows),
            "gather_rows: row out of range"
        );
        out.data
            .par_chunks_mut(c.max(1))
            .zip(idx.par_iter())
            .for_each(|(o, &i)| o.copy_from_slice(&src.data[i * c..(i + 1) * c]));
    }

    fn scatter_add_rows(&self, src: &Matrix, idx: &[usize], out: &mut Matrix) {
        let c = src.cols;
        assert_eq!(
            (src.rows, out.cols),
            (idx.len(), c),
            "scatter_add_rows: shapes"
        );
        // Serial: rows may repeat, and a per-row lock would cost more than the adds.
        for (k, &i) in idx.iter().enumerate() {
            for (o, s) in out.data[i * c..(i + 1) * c].iter_mut().zip(src.row(k)) {
                *o += s;
            }
        }
    }

    fn bias_act(&self, x: &mut Matrix, bias: &Matrix, act: Act) {
        let c = x.cols;
        assert_eq!(
            (bias.rows, bias.cols),
            (1, c),
            "bias_act: bias must be [1, cols]"
        );
        x.data
            .par_chunks_mut(c.max(1))
            .with_min_len(256)
            .for_each(|row| {
                for (v, b) in row.iter_mut().zip(&bias.data) {
                    let s = *v + b;
                    *v = match act {
                        Act::Identity => s,
                        Act::Relu => s.max(0.0),
                    };
                }
            });
    }

    fn dropout(&self, x: &Matrix, p: f32, seed: u64, out: &mut Matrix, mask: &mut Matrix) {
        let keep = 1.0 / (1.0 - p);
        // Each u64 draw decides two elements by comparing its 32-bit halves with an integer
        // threshold (half the RNG calls of one f32 per element).
        let threshold = (p as f64 * 4_294_967_296.0).min(u32::MAX as f64) as u32;
        mask.data
            .par_chunks_mut(DROPOUT_CHUNK)
            .zip(
                out.data
                    .par_chunks_mut(DROPOUT_CHUNK)
                    .zip(x.data.par_chunks(DROPOUT_CHUNK)),
            )
            .enumerate()
            .for_each(|(c, (mc, (oc, xc)))| {
                let mut r = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(
                    seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                let mut k = 0;
                while k < mc.len() {
                    let bits: u64 = r.random();
                    for half in [bits as u32, (bits >> 32) as u32] {
                        if k < mc.len() {
                            let m = if half < threshold { 0.0 } else { keep };
                            mc[k] = m;
                            oc[k] = xc[k] * m;
                            k += 1;
                        }
                    }
                }
            });
    }

    fn log_softmax(&self, x: &Matrix, out: &mut Matrix) {
        let c = x.cols.max(1);
        out.data
            .par_chunks_mut(c)
            .zip(x.data.par_chunks(c))
            .for_each(|(o, r)| {
                let m = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let lse = m + r.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
                for (o, v) in o.iter_mut().zip(r) {
                    *o = v - lse;
                }
            });
    }

    fn nll(&self, logp: &Matrix, rows: &[usize], labels: &[usize]) -> f32 {
        let s: f64 = rows
            .iter()
            .map(|&i| -logp.data[i * logp.cols + labels[i]] as f64)
            .sum();
        (s / rows.len().max(1) as f64) as f32
    }

    fn adam_step(&self, w: &mut Matrix, g: &Matrix, m: &mut Matrix, v: &mut Matrix, h: &AdamStep) {
        w.data
            .par_iter_mut()
            .with_min_len(1 << 12)
            .zip(&g.data)
            .zip(m.data.par_iter_mut().zip(v.data.par_iter_mut()))
            .for_each(|((w, &g), (m, v))| {
                let mut gk = g;
                if h.weight_decay != 0.0 {
                    if h.decoupled {
                        *w *= 1.0 - h.lr * h.weight_decay;
                    } else {
                        gk += h.weight_decay * *w;
                    }
                }
                *m = h.beta1 * *m + (1.0 - h.beta1) * gk;
                *v = h.beta2 * *v + (1.0 - h.beta2) * gk * gk;
                let mh = *m / h.bias_correction1;
                let vh = *v / h.bias_correction2;
                *w -= h.lr * mh / (vh.sqrt() + h.eps);
            });
    }
}
