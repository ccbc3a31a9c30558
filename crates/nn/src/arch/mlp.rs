//! Multi-layer perceptron: the graph-free baseline (and the student of distillation later).

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{ParamStore, Tape, Var};

use crate::features::Input;
use crate::model::Architecture;
use crate::{Features, GraphCtx, ModelConfig};

/// Linear layers with ReLU and dropout between them.
pub struct Mlp {
    layers: Vec<(usize, usize)>,
    dropout: f32,
    /// Dropout on the input features (PyG's GraphSAGE has none; the GCN paper uses `dropout`).
    input_dropout: f32,
}

impl Mlp {
    /// Registers `layers` (weight, bias) pairs in `params`.
    pub fn new(cfg: &ModelConfig, params: &mut ParamStore, rng: &mut Xoshiro256PlusPlus) -> Mlp {
        let layers = (0..cfg.layers)
            .map(|l| {
                let (din, dout) = cfg.dims(l);
                super::linear(params, &format!("layer{l}"), din, dout, rng)
            })
            .collect();
        Mlp {
            layers,
            dropout: cfg.dropout,
            input_dropout: cfg.input_dropout,
        }
    }
}

impl Architecture for Mlp {
    fn supports_blocks(&self) -> bool {
        true
    }

    fn forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        embed: bool,
    ) -> Var {
        let mut h = Input::from_features(tape, x, self.input_dropout, rng);
        let last = self.layers.len() - 1;
        // On a mini-batch only the seeds' rows matter: the output layer's dst nodes.
        let seeds = graph.num_dst(last);
        for (l, &(w, b)) in self.layers.iter().enumerate() {
            if embed && l == last {
                let d = h.dense(tape);
                return super::dst_rows(tape, d, seeds);
            }
            let (wv, bv) = (tape.param(params, w), tape.param(params, b));
            let t = h.matmul(tape, wv);
            let t = if l == 0 {
                super::dst_rows(tape, t, seeds)
            } else {
                t
            };
            let z = tape.add_bias(t, bv);
            if l == last {
                return z;
            }
            let a = tape.relu(z);
            h = Input::Dense(tape.dropout(a, self.dropout, rng));
        }
        unreachable!("a model has at least one layer")
    }
}
