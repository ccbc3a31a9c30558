//! A light reverse-mode tape: ops record their inputs, `backward` walks them in reverse.
//! Every value and gradient buffer comes from a pool that `reset` refills, so a training
//! loop of fixed shapes allocates nothing after its first step.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::backend::{Backend, CPU};
use crate::{sgemm, spmm, spmm_t_with, spmm_with, Matrix, ParamStore, SparseMat};

/// Elements per RNG stream in dropout masks.
const DROPOUT_CHUNK: usize = 1 << 14;

/// A value on the tape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var(pub(crate) usize);

#[derive(Debug)]
pub(crate) enum Op {
    Input,
    Param(usize),
    MatMul(Var, Var),
    // `a` is kept so the tape owns every matrix its values depend on.
    SpMM {
        _a: Arc<SparseMat>,
        at: Arc<SparseMat>,
        x: Var,
    },
    /// Sparse input (pattern + per-entry values node) times a dense matrix.
    SparseMatMul {
        x: Arc<SparseMat>,
        vals: Var,
        w: Var,
    },
    AddBias(Var, Var),
    Add(Var, Var),
    Relu(Var),
    Dropout {
        x: Var,
        mask: Matrix,
    },
    LogSoftmax(Var),
    Nll {
        logp: Var,
        idx: Arc<Vec<usize>>,
        labels: Arc<Vec<usize>>,
    },
    WeightedSum {
        x: Var,
        r: Matrix,
    },
    /// An op defined in `ops/`, carrying its own backward pass.
    Custom(Box<dyn Backward>),
}

impl std::fmt::Debug for dyn Backward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("custom op")
    }
}

/// The backward pass of an op defined outside this file (see `ops/`).
pub(crate) trait Backward: Send + Sync {
    /// Adds this op's input gradients, given `g`, the gradient of its output `out`.
    fn backward(&self, out: Var, g: &Matrix, cx: &mut Ctx<'_>);
    /// Hands buffers the op owns (masks, caches) back to the pool when the tape resets.
    fn release(self: Box<Self>, _pool: &mut Pool) {}
}

/// What a backward pass may touch: values (read), gradients and the pool (write).
pub(crate) struct Ctx<'a> {
    nodes: &'a [Node],
    grads: &'a mut [Option<Matrix>],
    pub(crate) pool: &'a mut Pool,
}

impl<'a> Ctx<'a> {
    /// Value of `v` (borrowed from the tape, not from the context, so gradients can be held too).
    pub(crate) fn value(&self, v: Var) -> &'a Matrix {
        let nodes: &'a [Node] = self.nodes;
        &nodes[v.0].value
    }

    /// True when `v` needs a gradient.
    pub(crate) fn needs(&self, v: Var) -> bool {
        self.nodes[v.0].needs_grad
    }

    /// The gradient buffer of `v`, zeroed on first use.
    pub(crate) fn grad(&mut self, v: Var) -> &mut Matrix {
        let (r, c) = (self.nodes[v.0].value.rows, self.nodes[v.0].value.cols);
        let pool = &mut *self.pool;
        self.grads[v.0].get_or_insert_with(|| pool.take(r, c, true))
    }
}

/// A node's value: a pooled buffer, or a constant shared with the caller (no copy per step).
pub(crate) enum Value {
    Owned(Matrix),
    Shared(Arc<Matrix>),
}

impl std::ops::Deref for Value {
    type Target = Matrix;
    fn deref(&self) -> &Matrix {
        match self {
            Value::Owned(m) => m,
            Value::Shared(m) => m,
        }
    }
}

pub(crate) struct Node {
    op: Op,
    pub(crate) value: Value,
    needs_grad: bool,
}

/// Reusable f32 buffers keyed by capacity. A request takes the smallest buffer that fits
/// (within 2× of the size), so mini-batches whose shapes change every step still reuse
/// memory: keyed by exact length, the SAGE products batches missed every time and spent
/// three quarters of their time in the kernel zeroing fresh pages.
#[derive(Default)]
pub(crate) struct Pool(BTreeMap<usize, Vec<Vec<f32>>>);

impl Pool {
    /// A matrix whose contents are zero when `zero`, else unspecified (the op overwrites it).
    pub(crate) fn take(&mut self, rows: usize, cols: usize, zero: bool) -> Matrix {
        let len = rows * cols;
        let fit = self
            .0
            .range_mut(len..=len.saturating_mul(2).max(len + 1024))
            .find(|(_, v)| !v.is_empty())
            .and_then(|(_, v)| v.pop());
        let data = match fit {
            Some(mut d) => {
                if zero {
                    d.clear();
                }
                // Shrinking truncates; growing (after `clear`) writes zeros.
                d.resize(len, 0.0);
                d
            }
            None => {
                // A buffer just too small for this request (a slightly smaller batch earlier)
                // would otherwise sit in the pool for ever as batch shapes drift: free one.
                let stale = self
                    .0
                    .range_mut(len / 2..len)
                    .rev()
                    .find(|(_, v)| !v.is_empty())
                    .and_then(|(_, v)| v.pop());
                drop(stale);
                vec![0.0; len]
            }
        };
        let mut data = data;
        // Debug builds poison a buffer handed out unzeroed: an op that reads what it did not
        // write (a row with no neighbours, a skipped tail) then shows as NaN in the tests
        // instead of as last batch's values.
        if cfg!(debug_assertions) && !zero {
            data.fill(f32::NAN);
        }
        Matrix { rows, cols, data }
    }

    pub(crate) fn give(&mut self, m: Matrix) {
        if m.data.capacity() > 0 {
            self.0.entry(m.data.capacity()).or_default().push(m.data);
        }
    }
}

/// The tape of one forward/backward pass.
pub struct Tape {
    pub(crate) nodes: Vec<Node>,
    pub(crate) pool: Pool,
    /// Dropout is active only when training.
    pub training: bool,
    /// Batch statistics recorded during a training pass for running-average buffers
    /// (buffer index, value); the trainer folds them in with `ParamStore::apply_stats`.
    pub stats: Vec<(usize, Vec<f32>)>,
}

impl Default for Tape {
    fn default() -> Self {
        Tape::new(true)
    }
}

impl Tape {
    /// An empty tape.
    pub fn new(training: bool) -> Tape {
        Tape {
            nodes: Vec::new(),
            pool: Pool::default(),
            training,
            stats: Vec::new(),
        }
    }

    /// Clears the tape, keeping every buffer for the next pass.
    pub fn reset(&mut self, training: bool) {
        for n in self.nodes.drain(..) {
            if let Value::Owned(m) = n.value {
                self.pool.give(m);
            }
            match n.op {
                Op::Dropout { mask, .. } | Op::WeightedSum { r: mask, .. } => self.pool.give(mask),
                Op::Custom(b) => b.release(&mut self.pool),
                _ => {}
            }
        }
        self.training = training;
        self.stats.clear();
    }

    pub(crate) fn push(&mut self, op: Op, value: Matrix, needs_grad: bool) -> Var {
        self.nodes.push(Node {
            op,
            value: Value::Owned(value),
            needs_grad,
        });
        Var(self.nodes.len() - 1)
    }

    /// Records an op defined in `ops/`.
    pub(crate) fn push_custom(
        &mut self,
        op: Box<dyn Backward>,
        value: Matrix,
        needs_grad: bool,
    ) -> Var {
        self.push(Op::Custom(op), value, needs_grad)
    }

    pub(crate) fn needs(&self, v: Var) -> bool {
        self.nodes[v.0].needs_grad
    }

    /// The value of `v`.
    pub fn value(&self, v: Var) -> &Matrix {
        &self.nodes[v.0].value
    }

    /// `v`'s value, moved out of the tape it ends (a copy only when the tape shares it): for
    /// a pass's result that outlives the tape, without a second buffer.
    pub fn into_value(mut self, v: Var) -> Matrix {
        match std::mem::replace(
            &mut self.nodes[v.0].value,
            Value::Owned(Matrix::zeros(0, 0)),
        ) {
            Value::Owned(m) => m,
            Value::Shared(a) => Arc::try_unwrap(a).unwrap_or_else(|a| (*a).clone()),
        }
    }

    /// A constant input (no gradient), copied into a pooled buffer.
    pub fn input(&mut self, m: &Matrix) -> Var {
        let mut buf = self.pool.take(m.rows, m.cols, false);
        buf.data.copy_from_slice(&m.data);
        self.push(Op::Input, buf, false)
    }

    /// A constant input shared with the caller: no copy, however large.
    pub fn constant(&mut self, m: &Arc<Matrix>) -> Var {
        self.nodes.push(Node {
            op: Op::Input,
            value: Value::Shared(m.clone()),
            needs_grad: false,
        });
        Var(self.nodes.len() - 1)
    }

    /// Parameter `i` of `params` (its gradient goes to `params.grads[i]`).
    pub fn param(&mut self, params: &ParamStore, i: usize) -> Var {
        let m = &params.values[i];
        let mut buf = self.pool.take(m.rows, m.cols, false);
        buf.data.copy_from_slice(&m.data);
        // A frozen or pruned parameter (not trainable) needs no gradient: backward skips it.
        self.push(Op::Param(i), buf, params.trainable[i])
    }

    /// `a · b`.
    pub fn matmul(&mut self, a: Var, b: Var) -> Var {
        let (m, n) = (self.value(a).rows, self.value(b).cols);
        let mut out = self.pool.take(m, n, false);
        CPU.sgemm(
            false,
            false,
            1.0,
            self.value(a),
            self.value(b),
            0.0,
            &mut out,
        );
        let ng = self.needs(a) || self.needs(b);
        self.push(Op::MatMul(a, b), out, ng)
    }

    /// `a · x` for a sparse `a`; `at` is its transpose, used by the backward pass.
    pub fn spmm(&mut self, a: &Arc<SparseMat>, at: &Arc<SparseMat>, x: Var) -> Var {
        let mut out = self.pool.take(a.rows, self.value(x).cols, false);
        CPU.spmm(a, self.value(x), &mut out, false);
        let ng = self.needs(x);
        self.push(
            Op::SpMM {
                _a: a.clone(),
                at: at.clone(),
                x,
            },
            out,
            ng,
        )
    }

    /// Entry values of a sparse input, after inverted dropout with probability `p` when
    /// training: a `[1, nnz]` value for `sparse_matmul` (dropping entries of a sparse matrix
    /// is distributed as dropping those of its dense form, whose zeros stay zero).
    pub fn sparse_values(&mut self, x: &SparseMat, p: f32, rng: &mut impl Rng) -> Var {
        let mut vals = self.pool.take(1, x.nnz(), false);
        if self.training && p > 0.0 {
            let keep = 1.0 / (1.0 - p);
            let base: u64 = rng.random();
            vals.data
                .par_chunks_mut(DROPOUT_CHUNK)
                .zip(x.weights.par_chunks(DROPOUT_CHUNK))
                .enumerate()
                .for_each(|(c, (v, w))| {
                    let mut r = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(
                        base ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    );
                    for (v, w) in v.iter_mut().zip(w) {
                        *v = if r.random::<f32>() < p { 0.0 } else { w * keep };
                    }
                });
        } else {
            vals.data.copy_from_slice(&x.weights);
        }
        self.push(Op::Input, vals, false)
    }

    /// `x · w` for a sparse `x` whose entry values are the node `vals` (from `sparse_values`).
    pub fn sparse_matmul(&mut self, x: &Arc<SparseMat>, vals: Var, w: Var) -> Var {
        let wv = &self.nodes[w.0].value;
        let mut out = self.pool.take(x.rows, wv.cols, false);
        spmm_with(x, &self.nodes[vals.0].value.data, wv, &mut out, false);
        let ng = self.needs(w);
        self.push(
            Op::SparseMatMul {
                x: x.clone(),
                vals,
                w,
            },
            out,
            ng,
        )
    }

    /// `x + b` with `b` a `[1, cols]` row broadcast over rows.
    pub fn add_bias(&mut self, x: Var, b: Var) -> Var {
        let xv = &self.nodes[x.0].value;
        let mut out = self.pool.take(xv.rows, xv.cols, false);
        let bv = &self.nodes[b.0].value.data;
        out.data
            .par_chunks_mut(xv.cols.max(1))
            .zip(xv.data.par_chunks(xv.cols.max(1)))
            .for_each(|(o, r)| {
                for ((o, &r), &b) in o.iter_mut().zip(r).zip(bv) {
                    *o = r + b;
                }
            });
        let ng = self.needs(x) || self.needs(b);
        self.push(Op::AddBias(x, b), out, ng)
    }

    /// `a + b` (same shapes).
    pub fn add(&mut self, a: Var, b: Var) -> Var {
        let (av, bv) = (&self.nodes[a.0].value, &self.nodes[b.0].value);
        let mut out = self.pool.take(av.rows, av.cols, false);
        out.data
            .par_iter_mut()
            .zip(av.data.par_iter().zip(&bv.data))
            .for_each(|(o, (x, y))| *o = x + y);
        let ng = self.needs(a) || self.needs(b);
        self.push(Op::Add(a, b), out, ng)
    }

    /// `max(x, 0)`.
    pub fn relu(&mut self, x: Var) -> Var {
        let xv = &self.nodes[x.0].value;
        let mut out = self.pool.take(xv.rows, xv.cols, false);
        out.data
            .par_iter_mut()
            .zip(&xv.data)
            .for_each(|(o, &v)| *o = v.max(0.0));
        let ng = self.needs(x);
        self.push(Op::Relu(x), out, ng)
    }

    /// Inverted dropout with drop probability `p` (identity when not training or `p == 0`).
    pub fn dropout(&mut self, x: Var, p: f32, rng: &mut impl Rng) -> Var {
        if !self.training || p <= 0.0 {
            return x;
        }
        let (rows, cols) = (self.nodes[x.0].value.rows, self.nodes[x.0].value.cols);
        let mut mask = self.pool.take(rows, cols, false);
        // One RNG stream per fixed-size chunk, seeded from `rng`: parallel, yet the mask
        // depends only on the seed, never on the thread count.
        let base: u64 = rng.random();
        let mut out = self.pool.take(rows, cols, false);
        let xv = &self.nodes[x.0].value;
        CPU.dropout(xv, p, base, &mut out, &mut mask);
        let ng = self.needs(x);
        self.push(Op::Dropout { x, mask }, out, ng)
    }

    /// Row-wise log-softmax.
    pub fn log_softmax(&mut self, x: Var) -> Var {
        let xv = &self.nodes[x.0].value;
        let mut out = self.pool.take(xv.rows, xv.cols, false);
        CPU.log_softmax(xv, &mut out);
        let ng = self.needs(x);
        self.push(Op::LogSoftmax(x), out, ng)
    }

    /// Mean negative log-likelihood over the rows `idx` of `logp`, row `i` having class
    /// `labels[i]` (`labels` is indexed by row, one entry per row of `logp`), as a `[1, 1]` value.
    pub fn nll(&mut self, logp: Var, idx: Arc<Vec<usize>>, labels: Arc<Vec<usize>>) -> Var {
        let lv = self.value(logp);
        assert_eq!(labels.len(), lv.rows, "nll: one label per row");
        let loss = CPU.nll(lv, &idx, &labels);
        let mut out = self.pool.take(1, 1, false);
        out.data[0] = loss;
        let ng = self.needs(logp);
        self.push(Op::Nll { logp, idx, labels }, out, ng)
    }

    /// `Σ x ∘ r` as a `[1, 1]` value (a scalar probe, used by gradient checks).
    pub fn weighted_sum(&mut self, x: Var, r: &Matrix) -> Var {
        let xv = &self.nodes[x.0].value;
        let s: f64 = xv
            .data
            .iter()
            .zip(&r.data)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum();
        let mut out = self.pool.take(1, 1, false);
        out.data[0] = s as f32;
        let mut rr = self.pool.take(r.rows, r.cols, false);
        rr.data.copy_from_slice(&r.data);
        let ng = self.needs(x);
        self.push(Op::WeightedSum { x, r: rr }, out, ng)
    }

    /// Back-propagates from the scalar `loss`, adding parameter gradients into `params.grads`.
    pub fn backward(&mut self, loss: Var, params: &mut ParamStore) {
        self.backward_impl(loss, params, false);
    }

    /// `backward`, handing each node's value back to the pool once its own backward has
    /// run (all its consumers came later and are done), so the gradients still to come
    /// reuse the forward's memory: on the SAGE products batch the step's peak fell by
    /// 1.6 GiB (5.2 → 3.6 GiB RSS). Afterwards only the loss value is readable.
    pub fn backward_freeing(&mut self, loss: Var, params: &mut ParamStore) {
        self.backward_impl(loss, params, true);
    }

    fn backward_impl(&mut self, loss: Var, params: &mut ParamStore, free: bool) {
        let mut grads: Vec<Option<Matrix>> = (0..self.nodes.len()).map(|_| None).collect();
        let mut seed = self.pool.take(1, 1, false);
        seed.data[0] = 1.0;
        grads[loss.0] = Some(seed);
        for i in (0..=loss.0).rev() {
            let Some(g) = grads[i].take() else { continue };
            if !self.nodes[i].needs_grad {
                self.pool.give(g);
                continue;
            }
            self.backward_op(i, &g, &mut grads, params);
            self.pool.give(g);
            if free && i != loss.0 {
                if let Value::Owned(m) = &mut self.nodes[i].value {
                    let m = std::mem::replace(m, Matrix::zeros(0, 0));
                    self.pool.give(m);
                }
            }
        }
        for g in grads.into_iter().flatten() {
            self.pool.give(g);
        }
    }

    /// Gradient buffer of `v`, zeroed on first use.
    fn grad_of<'g>(&mut self, grads: &'g mut [Option<Matrix>], v: Var) -> &'g mut Matrix {
        let (r, c) = (self.nodes[v.0].value.rows, self.nodes[v.0].value.cols);
        grads[v.0].get_or_insert_with(|| self.pool.take(r, c, true))
    }

    fn backward_op(
        &mut self,
        i: usize,
        g: &Matrix,
        grads: &mut [Option<Matrix>],
        params: &mut ParamStore,
    ) {
        // Each arm reads the node's inputs and accumulates into their gradient buffers.
        let op = std::mem::replace(&mut self.nodes[i].op, Op::Input);
        match &op {
            Op::Input => {}
            Op::Custom(b) => {
                let mut cx = Ctx {
                    nodes: &self.nodes,
                    grads,
                    pool: &mut self.pool,
                };
                b.backward(Var(i), g, &mut cx);
            }
            Op::Param(p) => {
                for (d, s) in params.grads[*p].data.iter_mut().zip(&g.data) {
                    *d += s;
                }
            }
            Op::MatMul(a, b) => {
                if self.needs(*a) {
                    let ga = self.grad_of(grads, *a);
                    sgemm(false, true, 1.0, g, &self.nodes[b.0].value, 1.0, ga);
                }
                if self.needs(*b) {
                    let gb = self.grad_of(grads, *b);
                    sgemm(true, false, 1.0, &self.nodes[a.0].value, g, 1.0, gb);
                }
            }
            Op::SpMM { at, x, .. } => {
                if self.needs(*x) {
                    let gx = self.grad_of(grads, *x);
                    spmm(at, g, gx, true);
                }
            }
            Op::SparseMatMul { x, vals, w } => {
                if self.needs(*w) {
                    let gw = self.grad_of(grads, *w);
                    spmm_t_with(x, &self.nodes[vals.0].value.data, g, gw);
                }
            }
            Op::AddBias(x, b) => {
                if self.needs(*x) {
                    let gx = self.grad_of(grads, *x);
                    gx.data
                        .par_iter_mut()
                        .zip(&g.data)
                        .for_each(|(d, s)| *d += s);
                }
                if self.needs(*b) {
                    let gb = self.grad_of(grads, *b);
                    let c = g.cols.max(1);
                    for r in g.data.chunks(c) {
                        for (d, s) in gb.data.iter_mut().zip(r) {
                            *d += s;
                        }
                    }
                }
            }
            Op::Add(a, b) => {
                for v in [*a, *b] {
                    if self.needs(v) {
                        let gv = self.grad_of(grads, v);
                        gv.data
                            .par_iter_mut()
                            .zip(&g.data)
                            .for_each(|(d, s)| *d += s);
                    }
                }
            }
            Op::Relu(x) => {
                if self.needs(*x) {
                    let gx = self.grad_of(grads, *x);
                    let y = &self.nodes[i].value.data;
                    gx.data
                        .par_iter_mut()
                        .zip(g.data.par_iter().zip(y))
                        .for_each(|(d, (s, y))| {
                            if *y > 0.0 {
                                *d += s;
                            }
                        });
                }
            }
            Op::Dropout { x, mask } => {
                if self.needs(*x) {
                    let gx = self.grad_of(grads, *x);
                    gx.data
                        .par_iter_mut()
                        .zip(g.data.par_iter().zip(&mask.data))
                        .for_each(|(d, (s, m))| *d += s * m);
                }
            }
            Op::LogSoftmax(x) => {
                if self.needs(*x) {
                    let gx = self.grad_of(grads, *x);
                    let y = &self.nodes[i].value;
                    let c = y.cols.max(1);
                    gx.data
                        .par_chunks_mut(c)
                        .zip(g.data.par_chunks(c).zip(y.data.par_chunks(c)))
                        .for_each(|(d, (gr, yr))| {
                            let s: f32 = gr.iter().sum();
                            for ((d, gv), yv) in d.iter_mut().zip(gr).zip(yr) {
                                *d += gv - yv.exp() * s;
                            }
                        });
                }
            }
            Op::Nll { logp, idx, labels } => {
                if self.needs(*logp) {
                    let scale = g.data[0] / idx.len().max(1) as f32;
                    let gl = self.grad_of(grads, *logp);
                    let c = gl.cols;
                    for &r in idx.iter() {
                        gl.data[r * c + labels[r]] -= scale;
                    }
                }
            }
            Op::WeightedSum { x, r } => {
                if self.needs(*x) {
                    let s = g.data[0];
                    let gx = self.grad_of(grads, *x);
                    for (d, w) in gx.data.iter_mut().zip(&r.data) {
                        *d += s * w;
                    }
                }
            }
        }
        self.nodes[i].op = op;
    }
}

/// Finite-difference gradient checks shared by the op tests of every module.
#[cfg(test)]
pub(crate) mod gradcheck {
    use super::*;

    /// Checks d(loss)/d(param) of `f` against central finite differences (f64 accumulation
    /// in the probe keeps the f32 noise below the tolerance).
    #[allow(clippy::needless_range_loop)] // perturbs params[p] while reading analytic[p]
    pub(crate) fn check(params: &mut ParamStore, f: &dyn Fn(&mut Tape, &ParamStore) -> Var) {
        let mut tape = Tape::new(true);
        params.zero_grad();
        let loss = f(&mut tape, params);
        tape.backward(loss, params);
        let analytic = params.grads.clone();
        // Small enough that no kink (ReLU, max) is crossed at the test seeds, large enough for f32.
        let eps = 1e-3f32;
        for p in 0..params.values.len() {
            for k in 0..params.values[p].data.len() {
                let orig = params.values[p].data[k];
                params.values[p].data[k] = orig + eps;
                tape.reset(true);
                let v = f(&mut tape, params);
                let up = tape.value(v).data[0] as f64;
                params.values[p].data[k] = orig - eps;
                tape.reset(true);
                let v = f(&mut tape, params);
                let down = tape.value(v).data[0] as f64;
                params.values[p].data[k] = orig;
                let num = (up - down) / (2.0 * eps as f64);
                let ana = analytic[p].data[k] as f64;
                assert!(
                    (num - ana).abs() <= 2e-2 * (1.0 + num.abs()),
                    "param {} [{k}]: numeric {num}, analytic {ana}",
                    params.names[p]
                );
            }
        }
    }

    /// A matrix of uniform values in [-1, 1).
    pub(crate) fn rand_mat(r: usize, c: usize, rng: &mut impl Rng) -> Matrix {
        Matrix::from_vec(
            r,
            c,
            (0..r * c).map(|_| rng.random_range(-1.0..1.0)).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::gradcheck::{check, rand_mat};
    use super::*;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn gradients_of_every_op_match_finite_differences() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut p = ParamStore::default();
        let x = p.add("x", rand_mat(4, 3, &mut rng));
        let w = p.add("w", rand_mat(3, 5, &mut rng));
        let b = p.add("b", rand_mat(1, 5, &mut rng));
        let y = p.add("y", rand_mat(4, 5, &mut rng));
        let a = Arc::new(SparseMat::new(
            4,
            4,
            vec![0, 2, 3, 5, 6],
            vec![0, 1, 2, 0, 3, 1],
            vec![0.5, 1.0, -2.0, 0.3, 1.5, 0.7],
        ));
        let at = Arc::new(a.transpose());
        let r = rand_mat(4, 5, &mut rng);
        let idx = Arc::new(vec![0usize, 2, 3]);
        // Row-indexed labels; row 1 is not in idx, so its label must not matter.
        let labels = Arc::new(vec![1usize, 3, 4, 0]);
        // matmul, spmm, add_bias, add, relu, weighted_sum
        check(&mut p, &|t, ps| {
            let (xv, wv, bv, yv) = (
                t.param(ps, x),
                t.param(ps, w),
                t.param(ps, b),
                t.param(ps, y),
            );
            let h = t.matmul(xv, wv);
            let h = t.spmm(&a, &at, h);
            let h = t.add_bias(h, bv);
            let h = t.add(h, yv);
            let h = t.relu(h);
            t.weighted_sum(h, &r)
        });
        // sparse input with dropout on its entries, times a weight
        let xs = Arc::new(SparseMat::new(
            4,
            3,
            vec![0, 1, 3, 3, 5],
            vec![2, 0, 1, 0, 2],
            vec![1.0, 0.5, -1.0, 2.0, 0.3],
        ));
        let r45 = rand_mat(4, 5, &mut rng);
        check(&mut p, &|t, ps| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
            let vals = t.sparse_values(&xs, 0.3, &mut rng);
            let wv = t.param(ps, w);
            let h = t.sparse_matmul(&xs, vals, wv);
            t.weighted_sum(h, &r45)
        });
        // log_softmax + nll
        check(&mut p, &|t, ps| {
            let (xv, wv, bv) = (t.param(ps, x), t.param(ps, w), t.param(ps, b));
            let h = t.matmul(xv, wv);
            let h = t.add_bias(h, bv);
            let l = t.log_softmax(h);
            t.nll(l, idx.clone(), labels.clone())
        });
        // row_dot (link prediction's dot decoder), on two vars and on one var with itself
        let r1 = rand_mat(4, 1, &mut rng);
        check(&mut p, &|t, ps| {
            let (xv, wv, yv) = (t.param(ps, x), t.param(ps, w), t.param(ps, y));
            let h = t.matmul(xv, wv);
            let d = t.row_dot(h, yv);
            let e = t.row_dot(yv, yv);
            let s = t.add(d, e);
            t.weighted_sum(s, &r1)
        });
        // dropout: with a fixed-seed mask the function is deterministic, so FD applies.
        check(&mut p, &|t, ps| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
            let yv = t.param(ps, y);
            let h = t.dropout(yv, 0.5, &mut rng);
            t.weighted_sum(h, &r)
        });
    }

    #[test]
    fn steady_state_reuses_buffers() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let mut p = ParamStore::default();
        let w = p.add("w", rand_mat(8, 4, &mut rng));
        let x = rand_mat(16, 8, &mut rng);
        let r = rand_mat(16, 4, &mut rng);
        let mut tape = Tape::new(true);
        let mut pooled = Vec::new();
        for _ in 0..3 {
            tape.reset(true);
            let xv = tape.input(&x);
            let wv = tape.param(&p, w);
            let h = tape.matmul(xv, wv);
            let h = tape.relu(h);
            let l = tape.weighted_sum(h, &r);
            tape.backward(l, &mut p);
            pooled.push(tape.pool.0.values().map(Vec::len).sum::<usize>());
        }
        // After the first step the pool holds the same number of buffers: nothing new allocated.
        assert_eq!(pooled[1], pooled[2]);
    }
}
