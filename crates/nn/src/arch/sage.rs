//! GraphSAGE with mean aggregation (Hamilton et al. 2017): `h' = mean(h) W_l + h W_r + b`.

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{Matrix, ParamStore, Var};

use crate::arch::stack::{relu_if, LayerCtx, Stack, Stacked};
use crate::features::Input;
use crate::model::SizeShape;
use crate::registry::{Depth, ExpertConv, Knob, ModelSpec, Operator, Steps};
use crate::ModelConfig;

/// A stack of SAGE layers with ReLU and dropout between them.
pub struct Sage {
    /// (neighbour weight, root weight, bias) per layer.
    layers: Vec<(usize, usize, usize)>,
}

impl Sage {
    /// Registers each layer's parameters in `params`.
    pub fn new(cfg: &ModelConfig, params: &mut ParamStore, rng: &mut Xoshiro256PlusPlus) -> Sage {
        let layers = (0..cfg.layers)
            .map(|l| {
                let (din, dout) = cfg.dims(l);
                let w = params.add(&format!("layer{l}.weight"), Matrix::glorot(din, dout, rng));
                let r = params.add(
                    &format!("layer{l}.root_weight"),
                    Matrix::glorot(din, dout, rng),
                );
                let b = params.add(&format!("layer{l}.bias"), Matrix::zeros(1, dout));
                (w, r, b)
            })
            .collect();
        Sage { layers }
    }
}

impl Stack for Sage {
    fn layer(&self, cx: LayerCtx, h: &Input, l: usize, activate: bool) -> Var {
        let LayerCtx {
            tape,
            params,
            graph,
        } = cx;
        let (w, r, b) = self.layers[l];
        let (p, nd) = (graph.mean_at(l), graph.num_dst(l));
        let (wv, rv, bv) = (
            tape.param(params, w),
            tape.param(params, r),
            tape.param(params, b),
        );
        match h {
            // Dense input (hidden layers; dense features): the fused layer aggregates first
            // and runs both GEMMs on the dst rows only, in two buffers.
            Input::Dense(hv) => tape.sage_layer(&p.a, &p.at, *hv, wv, rv, bv, activate),
            // Sparse features: mean(h)·W = mean(h·W), multiplied first so they never densify.
            Input::Sparse(..) => {
                let t = h.matmul(tape, wv);
                let left = tape.spmm(&p.a, &p.at, t);
                let right = h.matmul(tape, rv);
                let right = super::dst_rows(tape, right, nd);
                let s = tape.add(left, right);
                let z = tape.add_bias(s, bv);
                relu_if(tape, z, activate)
            }
        }
    }
}

/// The registry's entry.
pub const SPEC: ModelSpec = ModelSpec {
    name: "sage",
    aliases: &["graphsage"],
    about: "GraphSAGE, mean aggregation with a root weight",
    knobs: &[Knob::VirtualNode],
    depth: Depth::Layers,
    steps: Steps::One,
    operators: &[Operator::Mean],
    blocks: true,
    layerwise: true,
    mixture: false,
    build: |cfg, params, rng| {
        let stack = Sage::new(cfg, params, rng);
        Box::new(Stacked::new(cfg, stack).with_virtual_node(cfg, params, rng))
    },
    size,
    expert: Some(EXPERT),
};

fn size(cfg: &ModelConfig) -> SizeShape {
    SizeShape::stack(cfg, cfg.layers, 1, false, |i, o| (2 * i * o, o))
}

/// As a SAGMM expert: mean aggregation with a root weight.
const EXPERT: ExpertConv = ExpertConv {
    hops_per_conv: |_, _| 1,
    multi_head: false,
    jumping_knowledge: false,
    params: |r, name, s, rng| {
        let [w, b] = r.linear(name, s.hidden, s.hidden, rng);
        let root = r.add(
            &format!("{name}.root"),
            Matrix::glorot(s.hidden, s.hidden, rng),
        );
        vec![w, root, b]
    },
    conv: |tape, p, h, graph, blk, _, _| {
        let a = graph.mean_at(blk);
        tape.sage_layer(&a.a, &a.at, h, p[0], p[1], p[2], false)
    },
};
