//! Parameters with their gradients, and the Adam/AdamW optimizer.

use crate::Matrix;

/// Model parameters and their gradients (same shapes), addressed by index.
#[derive(Debug, Clone, Default)]
pub struct ParamStore {
    pub values: Vec<Matrix>,
    pub grads: Vec<Matrix>,
    pub names: Vec<String>,
}

impl ParamStore {
    /// Adds a parameter; returns its index.
    pub fn add(&mut self, name: &str, value: Matrix) -> usize {
        self.grads.push(Matrix::zeros(value.rows, value.cols));
        self.values.push(value);
        self.names.push(name.to_string());
        self.values.len() - 1
    }

    /// Sets every gradient to zero (buffers kept).
    pub fn zero_grad(&mut self) {
        for g in &mut self.grads {
            g.data.fill(0.0);
        }
    }

    /// Total number of scalars.
    pub fn count(&self) -> usize {
        self.values.iter().map(|v| v.data.len()).sum()
    }
}

/// Adam (`decoupled = false`: L2 added to the gradient, as `torch.optim.Adam`) or AdamW.
#[derive(Debug, Clone)]
pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub decoupled: bool,
    step: i32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Adam {
    /// Adam with PyTorch's defaults for betas and eps.
    pub fn new(lr: f32, weight_decay: f32) -> Adam {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            decoupled: false,
            step: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// One update of every parameter from its gradient.
    pub fn step(&mut self, p: &mut ParamStore) {
        if self.m.len() != p.values.len() {
            self.m = p.values.iter().map(|v| vec![0.0; v.data.len()]).collect();
            self.v = self.m.clone();
        }
        self.step += 1;
        let bc1 = 1.0 - self.beta1.powi(self.step);
        let bc2 = 1.0 - self.beta2.powi(self.step);
        for (i, (w, g)) in p.values.iter_mut().zip(&p.grads).enumerate() {
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            for k in 0..w.data.len() {
                let mut gk = g.data[k];
                if self.weight_decay != 0.0 {
                    if self.decoupled {
                        w.data[k] *= 1.0 - self.lr * self.weight_decay;
                    } else {
                        gk += self.weight_decay * w.data[k];
                    }
                }
                m[k] = self.beta1 * m[k] + (1.0 - self.beta1) * gk;
                v[k] = self.beta2 * v[k] + (1.0 - self.beta2) * gk * gk;
                let mh = m[k] / bc1;
                let vh = v[k] / bc2;
                w.data[k] -= self.lr * mh / (vh.sqrt() + self.eps);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_minimises_a_quadratic() {
        let mut p = ParamStore::default();
        p.add("w", Matrix::from_vec(1, 2, vec![3.0, -2.0]));
        let mut opt = Adam::new(0.1, 0.0);
        for _ in 0..500 {
            // f = (w0 - 1)^2 + (w1 + 1)^2
            let w = p.values[0].data.clone();
            p.grads[0].data = vec![2.0 * (w[0] - 1.0), 2.0 * (w[1] + 1.0)];
            opt.step(&mut p);
        }
        assert!(
            (p.values[0].data[0] - 1.0).abs() < 1e-2 && (p.values[0].data[1] + 1.0).abs() < 1e-2
        );
    }
}
