//! GIN-0 (Xu et al. 2019): `h' = MLP(h + Σ_{j→i} h_j)`, a two-layer MLP per layer; the sum
//! aggregator makes it as expressive as the 1-WL test.

use std::sync::Arc;

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_graph::Csr;
use scalegnn_tensor::{Matrix, ParamStore, SparseMat, Tape, Var};

use crate::features::Input;
use crate::model::Architecture;
use crate::{Features, GraphCtx, ModelConfig, Propagation};

/// GIN layers, each `Linear → ReLU → Linear` after the sum aggregation.
pub struct Gin {
    /// Per layer: (w1, b1, w2, b2).
    layers: Vec<[usize; 4]>,
    dropout: f32,
}

impl Gin {
    /// Registers two linear layers per GIN layer.
    pub fn new(cfg: &ModelConfig, params: &mut ParamStore, rng: &mut Xoshiro256PlusPlus) -> Gin {
        let layers = (0..cfg.layers)
            .map(|l| {
                let (din, dout) = cfg.dims(l);
                [
                    params.add(
                        &format!("layer{l}.mlp0.weight"),
                        Matrix::glorot(din, dout, rng),
                    ),
                    params.add(&format!("layer{l}.mlp0.bias"), Matrix::zeros(1, dout)),
                    params.add(
                        &format!("layer{l}.mlp1.weight"),
                        Matrix::glorot(dout, dout, rng),
                    ),
                    params.add(&format!("layer{l}.mlp1.bias"), Matrix::zeros(1, dout)),
                ]
            })
            .collect();
        Gin {
            layers,
            dropout: cfg.dropout,
        }
    }
}

/// `A + I` with unit weights (ε = 0).
fn sum_with_self(g: &Csr) -> Propagation {
    let n = g.num_nodes();
    let mut indptr = vec![0];
    let mut indices = Vec::with_capacity(g.num_edges() + n);
    for v in 0..n {
        indices.extend(g.neighbors(v).iter().filter(|&u| u != v).map(|u| u as u32));
        indices.push(v as u32);
        indptr.push(indices.len());
    }
    let weights = vec![1.0; indices.len()];
    let a = SparseMat::new(n, n, indptr, indices, weights);
    let at = a.transpose();
    Propagation {
        a: Arc::new(a),
        at: Arc::new(at),
    }
}

impl Architecture for Gin {
    fn forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        embed: bool,
    ) -> Var {
        let prop = graph.cached("gin", sum_with_self);
        let mut h = Input::from_features(tape, x, self.dropout, rng);
        let last = self.layers.len() - 1;
        for (l, &[w1, b1, w2, b2]) in self.layers.iter().enumerate() {
            if embed && l == last {
                return h.dense(tape);
            }
            let (w1v, b1v, w2v, b2v) = (
                tape.param(params, w1),
                tape.param(params, b1),
                tape.param(params, w2),
                tape.param(params, b2),
            );
            // (A + I) h W1 = (A + I)(h W1): multiply first (sparse inputs stay sparse).
            let t = h.matmul(tape, w1v);
            let t = tape.spmm(&prop.a, &prop.at, t);
            let t = tape.add_bias(t, b1v);
            let t = tape.relu(t);
            let t = tape.matmul(t, w2v);
            let z = tape.add_bias(t, b2v);
            if l == last {
                return z;
            }
            let a = tape.relu(z);
            h = Input::Dense(tape.dropout(a, self.dropout, rng));
        }
        unreachable!("a model has at least one layer")
    }
}
