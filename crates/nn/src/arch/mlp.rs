//! Multi-layer perceptron: the graph-free baseline (and the student of distillation later).

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{ParamStore, Tape, Var};

use crate::arch::stack::{relu_if, Stack};
use crate::features::Input;
use crate::model::SizeShape;
use crate::registry::{Depth, ModelSpec, Steps};
use crate::{GraphCtx, ModelConfig};

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

impl Stack for Mlp {
    fn num_layers(&self) -> usize {
        self.layers.len()
    }

    fn input_dropout(&self) -> f32 {
        self.input_dropout
    }

    fn dropout(&self) -> f32 {
        self.dropout
    }

    /// On a mini-batch each layer keeps only its dst rows (the seeds after the last).
    fn layer(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        h: &Input,
        graph: &GraphCtx,
        l: usize,
        activate: bool,
    ) -> Var {
        let (w, b) = self.layers[l];
        let (wv, bv) = (tape.param(params, w), tape.param(params, b));
        let t = h.matmul(tape, wv);
        let t = super::dst_rows(tape, t, graph.num_dst(l));
        let z = tape.add_bias(t, bv);
        relu_if(tape, z, activate)
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
    expert: None,
};

fn size(cfg: &ModelConfig) -> SizeShape {
    SizeShape::stack(cfg, cfg.layers, 1, false, |i, o| (i * o, o))
}
