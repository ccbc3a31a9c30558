//! The device seam: every kernel a training step needs, over a buffer type the device owns.
//! `CpuBackend` (rayon + matrixmultiply) is the one implementation; a CUDA backend is meant
//! to come behind a cargo feature with `Buf` a device allocation, checked by the same
//! conformance test (`tests/backend.rs`). The tape calls its kernels through `CPU`.

mod cpu;

pub use cpu::{CpuBackend, CPU};

use crate::{Matrix, SparseMat};

/// Activation fused after a bias add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Identity,
    Relu,
}

/// Hyper-parameters of one Adam update, with the bias corrections of the current step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// AdamW: decay the weight directly instead of adding it to the gradient.
    pub decoupled: bool,
    /// `1 − beta1^t` and `1 − beta2^t`.
    pub bias_correction1: f32,
    pub bias_correction2: f32,
}

/// What a compute device provides. Shapes travel with the buffers (`rows`, `cols`).
pub trait Backend: Send + Sync {
    /// A `[rows, cols]` row-major f32 matrix in the device's memory.
    type Buf: Send + Sync;

    /// Short name for reports ("cpu").
    fn name(&self) -> &'static str;
    /// A zeroed `[rows, cols]` buffer.
    fn alloc(&self, rows: usize, cols: usize) -> Self::Buf;
    /// A device copy of a host matrix.
    fn upload(&self, m: &Matrix) -> Self::Buf;
    /// A host copy of a device buffer.
    fn download(&self, b: &Self::Buf) -> Matrix;
    /// Sets every element to zero.
    fn zero(&self, b: &mut Self::Buf);
    /// `dst = src` (same shape).
    fn copy(&self, src: &Self::Buf, dst: &mut Self::Buf);
    /// `c = alpha · op(a) · op(b) + beta · c`; `op` transposes when `ta`/`tb`.
    #[allow(clippy::too_many_arguments)] // BLAS's signature
    fn sgemm(
        &self,
        ta: bool,
        tb: bool,
        alpha: f32,
        a: &Self::Buf,
        b: &Self::Buf,
        beta: f32,
        c: &mut Self::Buf,
    );
    /// `out (+)= a · x` for a weighted CSR `a` (the backward pass calls it with `aᵀ`).
    fn spmm(&self, a: &SparseMat, x: &Self::Buf, out: &mut Self::Buf, accumulate: bool);
    /// `out[k] = src[idx[k]]` row by row.
    fn gather_rows(&self, src: &Self::Buf, idx: &[usize], out: &mut Self::Buf);
    /// `out[idx[k]] += src[k]` row by row.
    fn scatter_add_rows(&self, src: &Self::Buf, idx: &[usize], out: &mut Self::Buf);
    /// `x = act(x + bias)` with `bias` a `[1, cols]` row.
    fn bias_act(&self, x: &mut Self::Buf, bias: &Self::Buf, act: Act);
    /// Inverted dropout: `mask` gets 0 or `1/(1−p)` per element, `out = x ∘ mask`; the mask
    /// depends only on `seed`, never on the thread count.
    fn dropout(&self, x: &Self::Buf, p: f32, seed: u64, out: &mut Self::Buf, mask: &mut Self::Buf);
    /// Row-wise log-softmax.
    fn log_softmax(&self, x: &Self::Buf, out: &mut Self::Buf);
    /// Mean of `−logp[i, labels[i]]` over the rows `rows` (labels indexed by row).
    fn nll(&self, logp: &Self::Buf, rows: &[usize], labels: &[usize]) -> f32;
    /// One Adam/AdamW update of `w` from `g` with moment buffers `m`, `v`.
    fn adam_step(
        &self,
        w: &mut Self::Buf,
        g: &Self::Buf,
        m: &mut Self::Buf,
        v: &mut Self::Buf,
        h: &AdamStep,
    );
}
