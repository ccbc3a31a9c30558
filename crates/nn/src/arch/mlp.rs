//! Multi-layer perceptron: the graph-free baseline (and the student of distillation later).

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{ParamStore, Var};

use crate::arch::stack::{relu_if, LayerCtx, Stack, Stacked};
use crate::features::Input;
use crate::model::SizeShape;
use crate::registry::{Depth, ExpertConv, ModelSpec, Steps};
use crate::ModelConfig;

/// Linear layers with ReLU and dropout between them.
pub struct Mlp {
    layers: Vec<(usize, usize)>,
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
        Mlp { layers }
    }
}

impl Stack for Mlp {
    /// On a mini-batch each layer keeps only its dst rows (the seeds after the last).
    fn layer(&self, cx: LayerCtx, h: &Input, l: usize, activate: bool) -> Var {
        let LayerCtx {
            tape,
            params,
            graph,
        } = cx;
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
    build: |cfg, params, rng| Box::new(Stacked::new(cfg, Mlp::new(cfg, params, rng))),
    size,
    expert: Some(EXPERT),
};

/// As a SAGMM expert: a Linear layer that ignores the graph (on a sampled block it keeps the
/// block's destination rows), so heterophilous nodes have an expert that does not mix in
/// their neighbours.
const EXPERT: ExpertConv = ExpertConv {
    hops_per_conv: |_, _| 1,
    multi_head: false,
    jumping_knowledge: false,
    params: |r, name, s, rng| r.linear(name, s.hidden, s.hidden, rng).to_vec(),
    conv: |tape, p, h, graph, blk, _, _| {
        let t = tape.matmul(h, p[0]);
        let t = super::dst_rows(tape, t, graph.num_dst(blk));
        tape.add_bias(t, p[1])
    },
};

fn size(cfg: &ModelConfig) -> SizeShape {
    SizeShape::stack(cfg, cfg.layers, 1, false, |i, o| (i * o, o))
}
