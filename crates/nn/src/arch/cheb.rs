//! ChebNet (Defferrard et al. 2016): `h' = Σ_k T_k(L̃) h W_k + b`, Chebyshev polynomials of
//! the scaled Laplacian `L̃ = -D^-1/2 A D^-1/2` (λ_max = 2, as PyG's ChebConv assumes).

use std::sync::Arc;

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_graph::Csr;
use scalegnn_tensor::{Matrix, ParamStore, SparseMat, Tape, Var};

use crate::features::Input;
use crate::model::Architecture;
use crate::{Features, GraphCtx, ModelConfig, Propagation};

/// ChebConv layers with `hops + 1` polynomial terms each.
pub struct Cheb {
    /// Per layer: one weight per term, then the bias.
    layers: Vec<(Vec<usize>, usize)>,
    dropout: f32,
    /// Dropout on the input features (PyG's GraphSAGE has none; the GCN paper uses `dropout`).
    input_dropout: f32,
}

impl Cheb {
    /// Registers `hops + 1` weights and a bias per layer.
    pub fn new(cfg: &ModelConfig, params: &mut ParamStore, rng: &mut Xoshiro256PlusPlus) -> Cheb {
        let terms = cfg.hops.max(1) + 1;
        let layers = (0..cfg.layers)
            .map(|l| {
                let (din, dout) = cfg.dims(l);
                let ws = (0..terms)
                    .map(|k| {
                        params.add(
                            &format!("layer{l}.weight{k}"),
                            Matrix::glorot(din, dout, rng),
                        )
                    })
                    .collect();
                (
                    ws,
                    params.add(&format!("layer{l}.bias"), Matrix::zeros(1, dout)),
                )
            })
            .collect();
        Cheb {
            layers,
            dropout: cfg.dropout,
            input_dropout: cfg.input_dropout,
        }
    }
}

/// `-D^-1/2 A D^-1/2` without self loops (degrees count in-neighbours other than the node).
fn scaled_laplacian(g: &Csr) -> Propagation {
    let n = g.num_nodes();
    let deg: Vec<f32> = (0..n)
        .map(|v| g.neighbors(v).iter().filter(|&u| u != v).count() as f32)
        .collect();
    let dis: Vec<f32> = deg
        .iter()
        .map(|&d| if d > 0.0 { 1.0 / d.sqrt() } else { 0.0 })
        .collect();
    let mut indptr = vec![0];
    let (mut indices, mut weights) = (Vec::new(), Vec::new());
    for v in 0..n {
        for u in g.neighbors(v).iter().filter(|&u| u != v) {
            indices.push(u as u32);
            weights.push(-dis[u] * dis[v]);
        }
        indptr.push(indices.len());
    }
    let a = SparseMat::new(n, n, indptr, indices, weights);
    let at = a.transpose();
    Propagation {
        a: Arc::new(a),
        at: Arc::new(at),
    }
}

impl Architecture for Cheb {
    fn forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        embed: bool,
    ) -> Var {
        let lap = graph.cached("cheb", scaled_laplacian);
        let mut h = Input::from_features(tape, x, self.input_dropout, rng);
        let last = self.layers.len() - 1;
        for (l, (ws, b)) in self.layers.iter().enumerate() {
            if embed && l == last {
                return h.dense(tape);
            }
            // T_0 h W_0 uses the (possibly sparse) input directly; higher terms need it dense.
            let w0 = tape.param(params, ws[0]);
            let mut acc = h.matmul(tape, w0);
            if ws.len() > 1 {
                let t0 = h.dense(tape);
                let mut prev = t0;
                let mut cur = tape.spmm(&lap.a, &lap.at, t0);
                for (k, &wk) in ws.iter().enumerate().skip(1) {
                    if k > 1 {
                        let p = tape.spmm(&lap.a, &lap.at, cur);
                        let p2 = tape.scale(p, 2.0);
                        let neg = tape.scale(prev, -1.0);
                        let next = tape.add(p2, neg);
                        prev = cur;
                        cur = next;
                    }
                    let wv = tape.param(params, wk);
                    let term = tape.matmul(cur, wv);
                    acc = tape.add(acc, term);
                }
            }
            let bv = tape.param(params, *b);
            let z = tape.add_bias(acc, bv);
            if l == last {
                return z;
            }
            let a = tape.relu(z);
            h = Input::Dense(tape.dropout(a, self.dropout, rng));
        }
        unreachable!("a model has at least one layer")
    }
}
