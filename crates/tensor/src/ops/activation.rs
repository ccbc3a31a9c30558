//! Element-wise activations beyond ReLU: ELU (GAT's hidden activation), LeakyReLU (GAT's
//! edge scores), sigmoid and tanh, each with its backward pass; and `exp_nonpos`, a
//! branch-free `eˣ` for `x ≤ 0` shared with the attention softmax.
//!
//! The loops are branch-free (selects, not jumps) and one monomorphised loop per kind: on
//! activations whose sign is random, a data-dependent branch mispredicts half the time,
//! and libm's `expm1f` is an opaque call per element; both cost several times the arithmetic.

use rayon::prelude::*;

use crate::tape::{Backward, Ctx};
use crate::{Matrix, Tape, Var};

/// Elements per parallel task in the element-wise loops.
const MIN_LEN: usize = 1 << 12;

/// `eˣ` for `x ≤ 0` (inputs below −87 are taken as −87: e⁻⁸⁷ ≈ 1.6e-38), within 2 ulp, with
/// no branch or call, so loops over it vectorise. Cephes' `expf`: `x = k·ln2 + r`, `|r| ≤ ln2/2`, a degree-6
/// polynomial in r, then the exponent bits set to k.
#[inline]
pub(crate) fn exp_nonpos(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding then subtracting 1.5·2²³ rounds to the nearest integer without a libm call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 0.0);
    let t = x * LOG2E + ROUND;
    let k = t - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // t = 1.5·2²³ + k exactly, so k sits in t's low mantissa bits: integer ops give the
    // bits of 2^k (a normal float, k ∈ [−126, 0]) without a float-to-int conversion.
    let k_int = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    e * f32::from_bits(((k_int + 127) as u32) << 23)
}

/// `eˣ − 1` for `x ≤ 0` without cancellation: a Taylor polynomial where `|x| < 1/4` (where
/// `eˣ − 1` would lose digits), `exp_nonpos(x) − 1` elsewhere; both computed, one selected.
#[inline]
fn exp_m1_nonpos(x: f32) -> f32 {
    let t = x * (1.0 / 5040.0) + 1.0 / 720.0;
    let t = t * x + 1.0 / 120.0;
    let t = t * x + 1.0 / 24.0;
    let t = t * x + 1.0 / 6.0;
    let t = t * x + 0.5;
    let small = (t * x) * x + x;
    let big = exp_nonpos(x) - 1.0;
    if x > -0.25 {
        small
    } else {
        big
    }
}

/// Which activation a node applied, with its parameter.
#[derive(Clone, Copy)]
enum Kind {
    Elu(f32),
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
    Softplus,
}

/// `out[i] = f(x[i])` in parallel.
fn map(out: &mut [f32], x: &[f32], f: impl Fn(f32) -> f32 + Sync + Send) {
    out.par_chunks_mut(MIN_LEN)
        .zip(x.par_chunks(MIN_LEN))
        .for_each(|(o, x)| {
            for (o, &x) in o.iter_mut().zip(x) {
                *o = f(x);
            }
        });
}

/// `d[i] += g[i] · f'(x[i], y[i])` in parallel, `f'` given from the input and the output.
fn accumulate(
    d: &mut [f32],
    g: &[f32],
    x: &[f32],
    y: &[f32],
    df: impl Fn(f32, f32) -> f32 + Sync + Send,
) {
    d.par_chunks_mut(MIN_LEN)
        .zip(g.par_chunks(MIN_LEN))
        .zip(x.par_chunks(MIN_LEN).zip(y.par_chunks(MIN_LEN)))
        .for_each(|((d, g), (x, y))| {
            for (((d, &g), &x), &y) in d.iter_mut().zip(g).zip(x).zip(y) {
                *d += g * df(x, y);
            }
        });
}

/// LeakyReLU, branch-free: `max(x, 0) + slope · min(x, 0)`.
#[inline]
pub(crate) fn leaky(x: f32, slope: f32) -> f32 {
    x.max(0.0) + slope * x.min(0.0)
}

/// LeakyReLU's derivative at `x` (1 or `slope`), in arithmetic rather than a branch.
#[inline]
pub(crate) fn leaky_grad(x: f32, slope: f32) -> f32 {
    let pos = f32::from(u8::from(x > 0.0));
    slope + (1.0 - slope) * pos
}

struct ActivationBack {
    x: Var,
    kind: Kind,
}

impl Backward for ActivationBack {
    fn backward(&self, out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        if !cx.needs(self.x) {
            return;
        }
        let (x, y) = (&cx.value(self.x).data, &cx.value(out).data);
        let d = &mut cx.grad(self.x).data;
        match self.kind {
            // a·eˣ = y + a for x ≤ 0: no second exp.
            Kind::Elu(a) => accumulate(d, &g.data, x, y, move |x, y| {
                let pos = f32::from(u8::from(x > 0.0));
                pos + (1.0 - pos) * (y + a)
            }),
            Kind::LeakyRelu(s) => accumulate(d, &g.data, x, y, move |x, _| leaky_grad(x, s)),
            Kind::Sigmoid => accumulate(d, &g.data, x, y, |_, y| y * (1.0 - y)),
            Kind::Tanh => accumulate(d, &g.data, x, y, |_, y| 1.0 - y * y),
            Kind::Softplus => accumulate(d, &g.data, x, y, |x, _| 1.0 / (1.0 + (-x).exp())),
        }
    }
}

impl Tape {
    fn activation(&mut self, x: Var, kind: Kind) -> Var {
        let xv = &self.nodes[x.0].value;
        let mut out = self.pool.take(xv.rows, xv.cols, false);
        let (o, xs) = (&mut out.data, &xv.data);
        match kind {
            Kind::Elu(a) => map(o, xs, move |x| x.max(0.0) + a * exp_m1_nonpos(x.min(0.0))),
            Kind::LeakyRelu(s) => map(o, xs, move |x| leaky(x, s)),
            // 1/(1 + e⁻ˣ) overflows nowhere: e⁻ˣ → ∞ gives 0.
            Kind::Sigmoid => map(o, xs, |x| 1.0 / (1.0 + (-x).exp())),
            Kind::Tanh => map(o, xs, f32::tanh),
            // max(x, 0) + ln(1 + e^-|x|): no overflow for large |x|.
            Kind::Softplus => map(o, xs, |x| x.max(0.0) + (-x.abs()).exp().ln_1p()),
        }
        let ng = self.needs(x);
        self.push_custom(Box::new(ActivationBack { x, kind }), out, ng)
    }

    /// ELU: `x` for `x > 0`, else `alpha · (eˣ − 1)`.
    pub fn elu(&mut self, x: Var, alpha: f32) -> Var {
        self.activation(x, Kind::Elu(alpha))
    }

    /// LeakyReLU: `x` for `x > 0`, else `slope · x`.
    pub fn leaky_relu(&mut self, x: Var, slope: f32) -> Var {
        self.activation(x, Kind::LeakyRelu(slope))
    }

    /// Logistic sigmoid `1 / (1 + e⁻ˣ)`.
    pub fn sigmoid(&mut self, x: Var) -> Var {
        self.activation(x, Kind::Sigmoid)
    }

    /// Softplus `ln(1 + eˣ)` (noisy top-k gating's noise scale).
    pub fn softplus(&mut self, x: Var) -> Var {
        self.activation(x, Kind::Softplus)
    }

    /// Hyperbolic tangent.
    pub fn tanh(&mut self, x: Var) -> Var {
        self.activation(x, Kind::Tanh)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    use super::{exp_m1_nonpos, exp_nonpos};
    use crate::tape::gradcheck::{check, rand_mat};
    use crate::{Matrix, ParamStore};

    /// Inputs in [-2, 2) kept at least 0.05 away from 0, so the ±1e-3 probe never crosses the
    /// kink of ELU or LeakyReLU.
    fn away_from_zero(r: usize, c: usize, rng: &mut Xoshiro256PlusPlus) -> Matrix {
        let mut m = rand_mat(r, c, rng);
        for v in &mut m.data {
            *v = 2.0 * *v + 0.05f32.copysign(*v);
        }
        m
    }

    #[test]
    fn activation_gradients() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let mut p = ParamStore::default();
        let x = p.add("x", away_from_zero(5, 4, &mut rng));
        let r = rand_mat(5, 4, &mut rng);
        check(&mut p, &|t, ps| {
            let v = t.param(ps, x);
            let h = t.elu(v, 1.3);
            t.weighted_sum(h, &r)
        });
        check(&mut p, &|t, ps| {
            let v = t.param(ps, x);
            let h = t.leaky_relu(v, 0.2);
            t.weighted_sum(h, &r)
        });
        check(&mut p, &|t, ps| {
            let v = t.param(ps, x);
            let h = t.sigmoid(v);
            t.weighted_sum(h, &r)
        });
        check(&mut p, &|t, ps| {
            let v = t.param(ps, x);
            let h = t.tanh(v);
            t.weighted_sum(h, &r)
        });
    }

    #[test]
    fn activation_values() {
        let mut t = crate::Tape::new(false);
        let x = t.input(&Matrix::from_vec(1, 3, vec![-1.0, 0.0, 2.0]));
        let e = t.elu(x, 1.0);
        assert!((t.value(e).data[0] - (-1f32).exp_m1()).abs() < 1e-6);
        assert_eq!(&t.value(e).data[1..], &[0.0, 2.0]);
        let l = t.leaky_relu(x, 0.2);
        assert_eq!(t.value(l).data, vec![-0.2, 0.0, 2.0]);
        let s = t.sigmoid(x);
        assert!((t.value(s).data[1] - 0.5).abs() < 1e-7);
        let th = t.tanh(x);
        assert!((t.value(th).data[2] - 2f32.tanh()).abs() < 1e-7);
    }

    /// The branch-free exp and expm1 against f64 references, densely over their range.
    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = (0.0f64, 0.0f64);
        for i in 0..=200_000 {
            let x = -87.0 * (i as f32 / 200_000.0).powi(3);
            let e = exp_nonpos(x) as f64;
            let want = (x as f64).exp();
            worst.0 = worst.0.max((e - want).abs() / want);
            let m = exp_m1_nonpos(x) as f64;
            let want = (x as f64).exp_m1();
            if x != 0.0 {
                worst.1 = worst.1.max((m - want).abs() / want.abs());
            } else {
                assert_eq!(m, 0.0);
            }
        }
        assert!(worst.0 < 2.5e-7, "exp rel err {}", worst.0);
        assert!(worst.1 < 4e-7, "expm1 rel err {}", worst.1);
        assert_eq!(exp_nonpos(0.0), 1.0);
        assert_eq!(exp_nonpos(-1000.0), exp_nonpos(-87.0));
    }
}
