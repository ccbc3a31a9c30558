//! Multi-layer perceptron: the graph-free baseline (and the student of distillation later).

use std::ops::Range;

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{ParamStore, Tape, Var};

use crate::features::Input;
use crate::model::{Architecture, SizeShape};
use crate::registry::{Depth, ModelSpec, Steps};
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

impl Mlp {
    /// Layers `layers` on `x` (features before layer 0, activations after): returns the
    /// logits after the last layer, else the activations entering layer `layers.end`.
    /// On a mini-batch each layer keeps only its dst rows (the seeds after the last).
    fn run(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        layers: Range<usize>,
    ) -> Var {
        let p_in = if layers.start == 0 {
            self.input_dropout
        } else {
            0.0
        };
        let mut h = Input::from_features(tape, x, p_in, rng);
        let last = self.layers.len() - 1;
        for l in layers {
            let (w, b) = self.layers[l];
            let (wv, bv) = (tape.param(params, w), tape.param(params, b));
            let t = h.matmul(tape, wv);
            let t = super::dst_rows(tape, t, graph.num_dst(l));
            let z = tape.add_bias(t, bv);
            if l == last {
                return z;
            }
            let a = tape.relu(z);
            h = Input::Dense(tape.dropout(a, self.dropout, rng));
        }
        h.dense(tape)
    }
}

impl Architecture for Mlp {
    fn forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        embed: bool,
    ) -> Var {
        let last = self.layers.len() - 1;
        if embed {
            let h = self.run(tape, params, x, graph, rng, 0..last);
            return super::dst_rows(tape, h, graph.num_dst(last));
        }
        self.run(tape, params, x, graph, rng, 0..last + 1)
    }

    fn forward_range(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        layers: Range<usize>,
    ) -> Option<Var> {
        Some(self.run(tape, params, x, graph, rng, layers))
    }
}

/// The registry's entry.
pub const SPEC: ModelSpec = ModelSpec {
    name: "mlp",
    aliases: &[],
    about: "graph-free multi-layer perceptron",
    knobs: &[],
    depth: Depth::Layers,
    steps: Steps::One,
    operators: &[],
    blocks: true,
    layerwise: true,
    mixture: false,
    build: |cfg, params, rng| Box::new(Mlp::new(cfg, params, rng)),
    size,
};

fn size(cfg: &ModelConfig) -> SizeShape {
    SizeShape::stack(cfg, cfg.layers, 1, false, |i, o| (i * o, o))
}
