//! Graph-level readout: the node outputs of each graph of a batch pooled into one row (sum,
//! mean or max, PyG's `global_{add,mean,max}_pool`; or gated attention, Li et al. 2016,
//! PyG's `AttentionalAggregation`: a softmax over the graph's nodes of a learned score),
//! then a two-layer MLP head to the task's outputs (PyG's `MLP([hidden, hidden, out])` of its
//! GIN example).

use std::sync::Arc;

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{EdgeIndex, Matrix, ParamStore, SparseMat, Tape, Var};

use crate::Propagation;

/// How a graph's node rows become one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    Sum,
    Mean,
    Max,
    /// Gated global attention: `Σ_i softmax_i(w·h_i + b) h_i` over each graph's nodes.
    Attention,
}

impl Pool {
    /// The names `--readout` accepts.
    pub const NAMES: &'static [&'static str] = &["sum", "mean", "max", "attention"];

    /// The pool's name.
    pub fn name(self) -> &'static str {
        match self {
            Pool::Sum => "sum",
            Pool::Mean => "mean",
            Pool::Max => "max",
            Pool::Attention => "attention",
        }
    }
}

impl std::str::FromStr for Pool {
    type Err = String;
    fn from_str(s: &str) -> Result<Pool, String> {
        match s {
            "sum" | "add" => Ok(Pool::Sum),
            "mean" => Ok(Pool::Mean),
            "max" => Ok(Pool::Max),
            "attention" => Ok(Pool::Attention),
            _ => Err(format!(
                "unknown readout `{s}` (expected {})",
                Pool::NAMES.join(", ")
            )),
        }
    }
}

/// Which output rows belong to which graph of a batch: graph g owns rows `ptr[g]..ptr[g+1]`;
/// with the pooling matrices `[graphs × rows]` built from it.
#[derive(Debug)]
pub struct Segments {
    ptr: Vec<usize>,
    sum: Propagation,
    mean: Propagation,
    /// The sum pattern as attention entries: entry k is (graph of row k ← row k), so a
    /// per-row score is already a per-entry one.
    attention: Arc<EdgeIndex>,
}

impl Segments {
    /// Segments from a pointer `ptr` (non-decreasing, starting at 0; `ptr.len() - 1` graphs).
    pub fn new(ptr: Vec<usize>) -> Segments {
        assert!(
            !ptr.is_empty() && ptr[0] == 0 && ptr.windows(2).all(|w| w[0] <= w[1]),
            "segments: a graph pointer starts at 0 and never decreases"
        );
        let g = ptr.len() - 1;
        let n = ptr[g];
        let indices: Vec<u32> = (0..n as u32).collect();
        let mut mean_w = Vec::with_capacity(n);
        for w in ptr.windows(2) {
            let k = (w[1] - w[0]).max(1) as f32;
            mean_w.extend(std::iter::repeat_n(1.0 / k, w[1] - w[0]));
        }
        let sum = SparseMat::new(g, n, ptr.clone(), indices.clone(), vec![1.0; n]);
        let mean = SparseMat::new(g, n, ptr.clone(), indices, mean_w);
        let attention = Arc::new(EdgeIndex::new(&sum));
        Segments {
            ptr,
            sum: Propagation::from_matrix(sum),
            mean: Propagation::from_matrix(mean),
            attention,
        }
    }

    /// Number of graphs.
    pub fn num_graphs(&self) -> usize {
        self.ptr.len() - 1
    }

    /// Number of node rows the graphs cover.
    pub fn num_rows(&self) -> usize {
        self.ptr[self.ptr.len() - 1]
    }

    /// The graph pointer.
    pub fn ptr(&self) -> &[usize] {
        &self.ptr
    }

    /// `h` (`[rows, d]`, `num_rows` rows) pooled per graph: `[graphs, d]`. A graph with no
    /// node pools to zeros. Attention pooling needs its scores: see [`Segments::attend`].
    pub fn pool(&self, tape: &mut Tape, h: Var, pool: Pool) -> Var {
        match pool {
            Pool::Sum | Pool::Attention => tape.spmm(&self.sum.a, &self.sum.at, h),
            Pool::Mean => tape.spmm(&self.mean.a, &self.mean.at, h),
            Pool::Max => tape.spmm_max(&self.sum.a, h),
        }
    }

    /// Per-graph rows `v` (`[graphs, d]`) spread to their graphs' node rows: `[rows, d]`.
    pub fn broadcast(&self, tape: &mut Tape, v: Var) -> Var {
        tape.spmm(&self.sum.at, &self.sum.a, v)
    }

    /// `Σ_i softmax_i(score_i) h_i` over each graph's rows, for per-row scores `[rows, 1]`.
    pub fn attend(&self, tape: &mut Tape, h: Var, score: Var) -> Var {
        let alpha = tape.edge_softmax(&self.attention, score);
        tape.edge_aggregate(&self.attention, alpha, h)
    }
}

/// The readout's parameters: the head `Linear(hidden, hidden) → ReLU → dropout →
/// Linear(hidden, out)`.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pool: Pool,
    w: [usize; 4],
    /// Attention pooling's gate `Linear(hidden, 1)`.
    gate: Option<[usize; 2]>,
    /// Readout over layers: one `Linear(width_k, out)` per level (input, then each layer).
    levels: Vec<[usize; 2]>,
}

impl Head {
    /// Registers the head's parameters (`readout.*`).
    pub(crate) fn new(
        pool: Pool,
        hidden: usize,
        out: usize,
        levels: Option<&[usize]>,
        params: &mut ParamStore,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Head {
        if let Some(widths) = levels {
            // Xu et al.: a linear map per level, no MLP head. The gate (attention) is shared
            // by every level, so it reads the widest one.
            let levels = widths
                .iter()
                .enumerate()
                .map(|(k, &w)| {
                    [
                        params.add(
                            &format!("readout.level{k}.weight"),
                            Matrix::glorot(w, out, rng),
                        ),
                        params.add(&format!("readout.level{k}.bias"), Matrix::zeros(1, out)),
                    ]
                })
                .collect();
            return Head {
                pool: if pool == Pool::Attention {
                    Pool::Sum
                } else {
                    pool
                },
                w: [0; 4],
                gate: None,
                levels,
            };
        }
        let w = [
            params.add("readout.w1", Matrix::glorot(hidden, hidden, rng)),
            params.add("readout.b1", Matrix::zeros(1, hidden)),
            params.add("readout.w2", Matrix::glorot(hidden, out, rng)),
            params.add("readout.b2", Matrix::zeros(1, out)),
        ];
        let gate = (pool == Pool::Attention).then(|| {
            [
                params.add("readout.gate.weight", Matrix::glorot(hidden, 1, rng)),
                params.add("readout.gate.bias", Matrix::zeros(1, 1)),
            ]
        });
        Head {
            pool,
            w,
            gate,
            levels: Vec::new(),
        }
    }

    /// Node outputs `h` pooled per graph of `segments`: the graph embeddings.
    pub(crate) fn pooled(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        segments: &Arc<Segments>,
        h: Var,
    ) -> Var {
        match self.gate {
            Some([w, b]) => {
                let (w, b) = (tape.param(params, w), tape.param(params, b));
                let s = tape.matmul(h, w);
                let s = tape.add_bias(s, b);
                segments.attend(tape, h, s)
            }
            None => segments.pool(tape, h, self.pool),
        }
    }

    /// Whether this is a readout over layers.
    pub(crate) fn over_layers(&self) -> bool {
        !self.levels.is_empty()
    }

    /// Readout over layers: `Σ_k Linear_k(dropout(pooled_k))`.
    pub(crate) fn forward_levels(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        pooled: &[Var],
        dropout: f32,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Var {
        let mut sum: Option<Var> = None;
        for (&g, &[w, b]) in pooled.iter().zip(&self.levels) {
            let g = tape.dropout(g, dropout, rng);
            let (w, b) = (tape.param(params, w), tape.param(params, b));
            let t = tape.matmul(g, w);
            let t = tape.add_bias(t, b);
            sum = Some(match sum {
                Some(s) => tape.add(s, t),
                None => t,
            });
        }
        sum.expect("a readout over layers has at least the input level")
    }

    /// The head on pooled rows `g`: the task's outputs per graph.
    pub(crate) fn forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        g: Var,
        dropout: f32,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Var {
        let [w1, b1, w2, b2] = self.w;
        let (w1, b1) = (tape.param(params, w1), tape.param(params, b1));
        let t = tape.matmul(g, w1);
        let t = tape.add_bias(t, b1);
        let t = tape.relu(t);
        let t = tape.dropout(t, dropout, rng);
        let (w2, b2) = (tape.param(params, w2), tape.param(params, b2));
        let t = tape.matmul(t, w2);
        tape.add_bias(t, b2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_sum_mean_and_max_per_graph() {
        // Three graphs: rows 0..2, none, 2..5.
        let s = Segments::new(vec![0, 2, 2, 5]);
        let h = Matrix::from_vec(5, 2, vec![1., -1., 3., 5., 2., 0., -4., 7., 6., 1.]);
        let mut tape = Tape::new(false);
        let x = tape.input(&h);
        let sum = s.pool(&mut tape, x, Pool::Sum);
        let mean = s.pool(&mut tape, x, Pool::Mean);
        let max = s.pool(&mut tape, x, Pool::Max);
        assert_eq!(tape.value(sum).data, vec![4., 4., 0., 0., 4., 8.]);
        let m = &tape.value(mean).data;
        let want = [2., 2., 0., 0., 4. / 3., 8. / 3.];
        assert!(
            m.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{m:?}"
        );
        assert_eq!(tape.value(max).data, vec![3., 5., 0., 0., 6., 7.]);
        // Equal scores: attention is the mean; a much larger score picks its row.
        let even = tape.input(&Matrix::zeros(5, 1));
        let att = s.attend(&mut tape, x, even);
        let a = &tape.value(att).data;
        assert!(
            a.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{a:?}"
        );
        let peaked = tape.input(&Matrix::from_vec(5, 1, vec![0., 0., 0., 50., 0.]));
        let att = s.attend(&mut tape, x, peaked);
        let a = &tape.value(att).data;
        assert!(
            (a[4] - -4.0).abs() < 1e-4 && (a[5] - 7.0).abs() < 1e-4,
            "{a:?}"
        );
    }

    #[test]
    fn pooling_gradients_reach_the_right_rows() {
        let s = Segments::new(vec![0, 2, 5]);
        let h = Matrix::from_vec(5, 1, vec![1., 3., 2., 9., 6.]);
        for (pool, want) in [
            (Pool::Sum, vec![1., 1., 1., 1., 1.]),
            (Pool::Mean, vec![0.5, 0.5, 1. / 3., 1. / 3., 1. / 3.]),
            (Pool::Max, vec![0., 1., 0., 1., 0.]),
        ] {
            let mut params = ParamStore::default();
            let i = params.add("h", h.clone());
            let mut tape = Tape::new(true);
            let x = tape.param(&params, i);
            let p = s.pool(&mut tape, x, pool);
            // mean_all over [2, 1] halves every gradient.
            let loss = tape.mean_all(p);
            tape.backward(loss, &mut params);
            let g: Vec<f32> = params.grads[i].data.iter().map(|v| v * 2.0).collect();
            assert!(
                g.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6),
                "{pool:?}: {g:?}"
            );
        }
    }
}
