//! Element-wise activations beyond ReLU: ELU (GAT's hidden activation), LeakyReLU (GAT's
//! edge scores), sigmoid and tanh, each with its backward pass.

use rayon::prelude::*;

use crate::tape::{Backward, Ctx};
use crate::{Matrix, Tape, Var};

/// Which activation a node applied, with its parameter.
#[derive(Clone, Copy)]
enum Kind {
    Elu(f32),
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
}

impl Kind {
    #[inline]
    fn apply(self, x: f32) -> f32 {
        match self {
            Kind::Elu(a) => {
                if x > 0.0 {
                    x
                } else {
                    a * x.exp_m1()
                }
            }
            Kind::LeakyRelu(s) => {
                if x > 0.0 {
                    x
                } else {
                    s * x
                }
            }
            Kind::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Kind::Tanh => x.tanh(),
        }
    }

    /// dy/dx from the input `x` and the output `y` (whichever is cheaper to use).
    #[inline]
    fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            Kind::Elu(a) => {
                if x > 0.0 {
                    1.0
                } else {
                    // a·eˣ = y + a, without a second exp.
                    y + a
                }
            }
            Kind::LeakyRelu(s) => {
                if x > 0.0 {
                    1.0
                } else {
                    s
                }
            }
            Kind::Sigmoid => y * (1.0 - y),
            Kind::Tanh => 1.0 - y * y,
        }
    }
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
        let (xv, yv) = (cx.value(self.x), cx.value(out));
        let kind = self.kind;
        cx.grad(self.x)
            .data
            .par_iter_mut()
            .zip(g.data.par_iter().zip(xv.data.par_iter().zip(&yv.data)))
            .for_each(|(d, (s, (&x, &y)))| *d += s * kind.derivative(x, y));
    }
}

impl Tape {
    fn activation(&mut self, x: Var, kind: Kind) -> Var {
        let xv = &self.nodes[x.0].value;
        let mut out = self.pool.take(xv.rows, xv.cols, false);
        out.data
            .par_iter_mut()
            .zip(&xv.data)
            .for_each(|(o, &v)| *o = kind.apply(v));
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

    /// Hyperbolic tangent.
    pub fn tanh(&mut self, x: Var) -> Var {
        self.activation(x, Kind::Tanh)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

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
}
