//! GCN (Kipf & Welling 2017): `h' = Â h W + b` with `Â = D^-1/2 (A+I) D^-1/2`.

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{ParamStore, Tape, Var};

use crate::arch::stack::{relu_if, LayerCtx, Stack, Stacked};
use crate::features::Input;
use crate::model::SizeShape;
use crate::moe::expert::ExpertParams;
use crate::registry::{ConvShape, Depth, ExpertConv, Knob, ModelSpec, Operator, Steps};
use crate::{GraphCtx, ModelConfig};

/// A stack of GCN layers with ReLU and dropout between them.
pub struct Gcn {
    layers: Vec<(usize, usize)>,
}

impl Gcn {
    /// Registers `layers` (weight, bias) pairs in `params`.
    pub fn new(cfg: &ModelConfig, params: &mut ParamStore, rng: &mut Xoshiro256PlusPlus) -> Gcn {
        let layers = (0..cfg.layers)
            .map(|l| {
                let (din, dout) = cfg.dims(l);
                super::linear(params, &format!("layer{l}"), din, dout, rng)
            })
            .collect();
        Gcn { layers }
    }
}

/// GCN layer `l` on `h`: multiplies by W first when that shrinks the width, so the SpMM
/// moves fewer columns.
pub fn gcn_layer(tape: &mut Tape, h: &Input, w: Var, b: Var, graph: &GraphCtx, l: usize) -> Var {
    let p = graph.gcn_at(l);
    let (din, dout) = (tape.value(w).rows, tape.value(w).cols);
    let z = match h {
        Input::Dense(v) if dout > din => {
            let t = tape.spmm(&p.a, &p.at, *v);
            tape.matmul(t, w)
        }
        _ => {
            let t = h.matmul(tape, w);
            tape.spmm(&p.a, &p.at, t)
        }
    };
    tape.add_bias(z, b)
}

impl Stack for Gcn {
    fn layer(&self, cx: LayerCtx, h: &Input, l: usize, activate: bool) -> Var {
        let LayerCtx {
            tape,
            params,
            graph,
        } = cx;
        let (w, b) = self.layers[l];
        let (wv, bv) = (tape.param(params, w), tape.param(params, b));
        let z = gcn_layer(tape, h, wv, bv, graph, l);
        relu_if(tape, z, activate)
    }
}

/// The registry's entry.
pub const SPEC: ModelSpec = ModelSpec {
    name: "gcn",
    aliases: &[],
    about: "Kipf & Welling GCN: Â h W + b",
    knobs: &[Knob::VirtualNode],
    depth: Depth::Layers,
    steps: Steps::One,
    operators: &[Operator::Gcn],
    blocks: true,
    layerwise: true,
    mixture: false,
    build: |cfg, params, rng| {
        let stack = Gcn::new(cfg, params, rng);
        Box::new(Stacked::new(cfg, stack).with_virtual_node(cfg, params, rng))
    },
    size,
    expert: Some(EXPERT),
};

fn size(cfg: &ModelConfig) -> SizeShape {
    SizeShape::stack(cfg, cfg.layers, 1, false, |i, o| (i * o, o))
}

/// As a SAGMM expert: `Â h W + b`.
pub(crate) const EXPERT: ExpertConv = ExpertConv {
    hops_per_conv: |_, _| 1,
    multi_head: false,
    jumping_knowledge: false,
    params: expert_params,
    conv: expert_conv,
};

/// One `[hidden, hidden]` linear.
pub(crate) fn expert_params(
    r: &mut ExpertParams<'_>,
    name: &str,
    s: &ConvShape,
    rng: &mut Xoshiro256PlusPlus,
) -> Vec<usize> {
    r.linear(name, s.hidden, s.hidden, rng).to_vec()
}

/// GCN's convolution on block `blk`.
pub(crate) fn expert_conv(
    tape: &mut Tape,
    p: &[Var],
    h: Var,
    graph: &GraphCtx,
    blk: usize,
    _: &ConvShape,
    _: &mut Xoshiro256PlusPlus,
) -> Var {
    gcn_layer(tape, &Input::Dense(h), p[0], p[1], graph, blk)
}
