//! GIN-0 (Xu et al. 2019): `h' = MLP(h + Σ_{j→i} h_j)`, a two-layer MLP per layer; the sum
//! aggregator makes it as expressive as the 1-WL test. The MLP is `Linear → [BatchNorm] → ReLU
//! → Linear`; the norm is optional as in PyG's `GIN(norm=…)`: without it GIN diverged on
//! Amazon Photo (11 %), with it Cora fell from 75.9 to 62.1 (140 labels, 2,708 nodes).

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{Matrix, ParamStore, Tape, Var};

use crate::arch::norm::BatchNorm;
use crate::arch::stack::{relu_if, LayerCtx, Stack, Stacked};
use crate::features::Input;
use crate::model::SizeShape;
use crate::registry::{Depth, ExpertConv, Knob, ModelSpec, Operator, Steps};
use crate::ModelConfig;

/// GIN's per-layer MLP, `Linear → [BatchNorm] → ReLU → Linear` (GINE runs the same one).
#[derive(Clone, Copy)]
pub(crate) struct GinMlp {
    /// (w1, b1, w2, b2).
    w: [usize; 4],
    norm: Option<BatchNorm>,
}

impl GinMlp {
    /// Registers layer `l`'s MLP (`din → dout → dout`, `layer{l}.mlp*`).
    pub(crate) fn new(
        cfg: &ModelConfig,
        params: &mut ParamStore,
        l: usize,
        rng: &mut Xoshiro256PlusPlus,
    ) -> GinMlp {
        let (din, dout) = cfg.dims(l);
        let w = [
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
        ];
        let norm = cfg
            .batch_norm
            .then(|| BatchNorm::new(params, &format!("layer{l}.mlp_norm"), dout));
        GinMlp { w, norm }
    }

    /// The first linear map's weight, for callers that multiply before aggregating.
    pub(crate) fn w1(&self, tape: &mut Tape, params: &ParamStore) -> Var {
        tape.param(params, self.w[0])
    }

    /// The MLP after `t = (aggregated input) · W1`: bias, norm, ReLU, second linear map.
    pub(crate) fn finish(&self, tape: &mut Tape, params: &ParamStore, t: Var) -> Var {
        let [_, b1, w2, b2] = self.w;
        let b1 = tape.param(params, b1);
        let t = tape.add_bias(t, b1);
        let t = match self.norm {
            Some(n) => n.forward(tape, params, t),
            None => t,
        };
        let t = tape.relu(t);
        let (w2, b2) = (tape.param(params, w2), tape.param(params, b2));
        let t = tape.matmul(t, w2);
        tape.add_bias(t, b2)
    }
}

/// GIN layers, each `Linear → BatchNorm → ReLU → Linear` after the sum aggregation.
pub struct Gin {
    layers: Vec<GinMlp>,
}

impl Gin {
    /// Registers two linear layers per GIN layer.
    pub fn new(cfg: &ModelConfig, params: &mut ParamStore, rng: &mut Xoshiro256PlusPlus) -> Gin {
        let layers = (0..cfg.layers)
            .map(|l| GinMlp::new(cfg, params, l, rng))
            .collect();
        Gin { layers }
    }
}

impl Stack for Gin {
    fn layer(&self, cx: LayerCtx, h: &Input, l: usize, activate: bool) -> Var {
        let LayerCtx {
            tape,
            params,
            graph,
        } = cx;
        let mlp = self.layers[l];
        // (A + I) h W1 = (A + I)(h W1): multiply first (sparse inputs stay sparse).
        let prop = graph.sum_at(l);
        let w1 = mlp.w1(tape, params);
        let t = h.matmul(tape, w1);
        let t = tape.spmm(&prop.a, &prop.at, t);
        let z = mlp.finish(tape, params, t);
        relu_if(tape, z, activate)
    }
}

/// The registry's entry.
pub const SPEC: ModelSpec = ModelSpec {
    name: "gin",
    aliases: &[],
    about: "GIN-0: MLP(h + sum of neighbours)",
    knobs: &[Knob::BatchNorm, Knob::VirtualNode],
    depth: Depth::Layers,
    steps: Steps::One,
    operators: &[Operator::Sum],
    blocks: true,
    layerwise: true,
    mixture: false,
    build: |cfg, params, rng| {
        let stack = Gin::new(cfg, params, rng);
        Box::new(Stacked::new(cfg, stack).with_virtual_node(cfg, params, rng))
    },
    size,
    expert: Some(EXPERT),
};

fn size(cfg: &ModelConfig) -> SizeShape {
    // GIN's MLP: a second dout × dout linear.
    SizeShape::stack(cfg, cfg.layers, 1, false, |i, o| (i * o + o * o, o))
}

/// As a SAGMM expert: GIN-0's sum and two-layer MLP.
const EXPERT: ExpertConv = ExpertConv {
    hops_per_conv: |_, _| 1,
    multi_head: false,
    jumping_knowledge: false,
    params: |r, name, s, rng| {
        let mut p = r
            .linear(&format!("{name}.mlp0"), s.hidden, s.hidden, rng)
            .to_vec();
        p.extend(r.linear(&format!("{name}.mlp1"), s.hidden, s.hidden, rng));
        p
    },
    conv: |tape, p, h, graph, blk, _, _| {
        let a = graph.sum_at(blk);
        let t = tape.spmm(&a.a, &a.at, h);
        let t = tape.matmul(t, p[0]);
        let t = tape.add_bias(t, p[1]);
        let t = tape.relu(t);
        let t = tape.matmul(t, p[2]);
        tape.add_bias(t, p[3])
    },
};
