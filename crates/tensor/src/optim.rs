//! Parameters with their gradients, and the optimizers: SGD (with momentum) and Adam/AdamW.

use crate::backend::{AdamStep, Backend, CPU};
use crate::Matrix;

/// Model parameters and their gradients (same shapes), addressed by index.
#[derive(Debug, Clone, Default)]
pub struct ParamStore {
    pub values: Vec<Matrix>,
    pub grads: Vec<Matrix>,
    pub names: Vec<String>,
    /// False for buffers (batch-norm running statistics): saved with the model, never
    /// updated by an optimizer.
    pub trainable: Vec<bool>,
}

impl ParamStore {
    /// Adds a parameter; returns its index.
    pub fn add(&mut self, name: &str, value: Matrix) -> usize {
        self.grads.push(Matrix::zeros(value.rows, value.cols));
        self.values.push(value);
        self.names.push(name.to_string());
        self.trainable.push(true);
        self.values.len() - 1
    }

    /// Adds a buffer: a value kept and checkpointed with the parameters but not trained.
    pub fn add_buffer(&mut self, name: &str, value: Matrix) -> usize {
        let i = self.add(name, value);
        self.trainable[i] = false;
        i
    }

    /// Moves each buffer named in `updates` towards its new statistic:
    /// `b ← (1 − momentum)·b + momentum·s` (PyTorch's batch-norm running average).
    pub fn apply_stats(&mut self, updates: &[(usize, Vec<f32>)], momentum: f32) {
        for (i, s) in updates {
            for (b, v) in self.values[*i].data.iter_mut().zip(s) {
                *b = (1.0 - momentum) * *b + momentum * v;
            }
        }
    }

    /// Releases parameter `i` (a pruned expert): its value and gradient become empty and it
    /// is no longer trained; its index stays valid so the others keep theirs.
    pub fn free(&mut self, i: usize) {
        self.values[i] = Matrix::zeros(0, 0);
        self.grads[i] = Matrix::zeros(0, 0);
        self.trainable[i] = false;
    }

    /// Sets every gradient to zero (buffers kept).
    pub fn zero_grad(&mut self) {
        for g in &mut self.grads {
            g.data.fill(0.0);
        }
    }

    /// Number of trainable scalars.
    pub fn count(&self) -> usize {
        self.values
            .iter()
            .zip(&self.trainable)
            .filter(|(_, &t)| t)
            .map(|(v, _)| v.data.len())
            .sum()
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
    m: Vec<Matrix>,
    v: Vec<Matrix>,
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

    /// AdamW: Adam with decoupled weight decay (`w ← w·(1 − lr·wd)` before the Adam step),
    /// as `torch.optim.AdamW`.
    pub fn adamw(lr: f32, weight_decay: f32) -> Adam {
        Adam {
            decoupled: true,
            ..Adam::new(lr, weight_decay)
        }
    }

    /// Steps taken and the moment estimates (first, second) per parameter, to save with a
    /// run's state.
    pub fn moments(&self) -> (i32, &[Matrix], &[Matrix]) {
        (self.step, &self.m, &self.v)
    }

    /// Puts back what [`Adam::moments`] returned.
    pub fn restore(&mut self, step: i32, m: Vec<Matrix>, v: Vec<Matrix>) {
        self.step = step;
        self.m = m;
        self.v = v;
    }

    /// Drops the moment estimates of parameter `i` (freed with `ParamStore::free`).
    pub fn free(&mut self, i: usize) {
        if i < self.m.len() {
            self.m[i] = Matrix::zeros(0, 0);
            self.v[i] = Matrix::zeros(0, 0);
        }
    }

    /// One update of every trainable parameter from its gradient (through the backend).
    pub fn step(&mut self, p: &mut ParamStore) {
        if self.m.len() != p.values.len() {
            self.m = p
                .values
                .iter()
                .map(|v| Matrix::zeros(v.rows, v.cols))
                .collect();
            self.v = self.m.clone();
        }
        self.step += 1;
        let h = AdamStep {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            decoupled: self.decoupled,
            bias_correction1: 1.0 - self.beta1.powi(self.step),
            bias_correction2: 1.0 - self.beta2.powi(self.step),
        };
        for (i, (w, g)) in p.values.iter_mut().zip(&p.grads).enumerate() {
            if p.trainable[i] {
                CPU.adam_step(w, g, &mut self.m[i], &mut self.v[i], &h);
            }
        }
    }
}

/// Stochastic gradient descent with momentum and L2 weight decay, as `torch.optim.SGD`
/// (no dampening): `v ← momentum·v + g + wd·w`, `w ← w − lr·v`.
#[derive(Debug, Clone)]
pub struct Sgd {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    velocity: Vec<Vec<f32>>,
}

impl Sgd {
    /// SGD; `momentum = 0` is plain gradient descent.
    pub fn new(lr: f32, momentum: f32, weight_decay: f32) -> Sgd {
        Sgd {
            lr,
            momentum,
            weight_decay,
            velocity: Vec::new(),
        }
    }

    /// One update of every parameter from its gradient.
    pub fn step(&mut self, p: &mut ParamStore) {
        if self.velocity.len() != p.values.len() {
            self.velocity = p.values.iter().map(|v| vec![0.0; v.data.len()]).collect();
        }
        let params = p.values.iter_mut().zip(&p.grads).zip(&mut self.velocity);
        for (((w, g), v), _) in params.zip(&p.trainable).filter(|(_, &t)| t) {
            for ((w, g), v) in w.data.iter_mut().zip(&g.data).zip(v.iter_mut()) {
                // A zero initial velocity makes the first step `g`, as PyTorch's first buffer.
                *v = self.momentum * *v + g + self.weight_decay * *w;
                *w -= self.lr * *v;
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

    /// Runs `step` on f = (w0 − 1)² + (w1 + 1)² from (3, −2) and returns the final w.
    fn minimise(steps: usize, mut step: impl FnMut(&mut ParamStore)) -> Vec<f32> {
        let mut p = ParamStore::default();
        p.add("w", Matrix::from_vec(1, 2, vec![3.0, -2.0]));
        for _ in 0..steps {
            let w = p.values[0].data.clone();
            p.grads[0].data = vec![2.0 * (w[0] - 1.0), 2.0 * (w[1] + 1.0)];
            step(&mut p);
        }
        p.values[0].data.clone()
    }

    #[test]
    fn sgd_minimises_a_quadratic() {
        for momentum in [0.0, 0.9] {
            let mut opt = Sgd::new(0.05, momentum, 0.0);
            let w = minimise(300, |p| opt.step(p));
            assert!(
                (w[0] - 1.0).abs() < 1e-3 && (w[1] + 1.0).abs() < 1e-3,
                "{w:?}"
            );
        }
        // With L2 decay the minimum of f + wd/2·|w|² is w = ±2 / (2 + wd).
        let mut opt = Sgd::new(0.05, 0.9, 0.5);
        let w = minimise(300, |p| opt.step(p));
        let m = 2.0 / 2.5;
        assert!((w[0] - m).abs() < 1e-3 && (w[1] + m).abs() < 1e-3, "{w:?}");
    }

    #[test]
    fn adamw_minimises_a_quadratic() {
        let mut opt = Adam::adamw(0.05, 1e-3);
        assert!(opt.decoupled);
        let w = minimise(1000, |p| opt.step(p));
        assert!(
            (w[0] - 1.0).abs() < 1e-2 && (w[1] + 1.0).abs() < 1e-2,
            "{w:?}"
        );
    }
}
