//! GINE (Hu et al. 2020, "Strategies for Pre-training GNNs"): GIN whose messages carry the
//! edge's features, `h' = MLP(h + Σ_{j→i} relu(h_j + W_e e_ji + b_e))`, so a molecule's
//! bond types count. PyG's `GINEConv` with `edge_dim`. Reads the batch's `EdgeFeatures`.

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{Matrix, ParamStore, Var};

use crate::arch::gin::GinMlp;
use crate::arch::stack::{relu_if, LayerCtx, Stack, Stacked};
use crate::features::Input;
use crate::model::SizeShape;
use crate::registry::{Depth, Knob, ModelSpec, Steps};
use crate::ModelConfig;

/// GINE layers: an edge encoder per layer and GIN's two-layer MLP.
pub struct Gine {
    /// Per layer: the edge encoder (weight, bias) and the MLP.
    layers: Vec<([usize; 2], GinMlp)>,
}

impl Gine {
    /// Registers each layer's edge encoder (`edge_dim → din`) and MLP.
    pub fn new(cfg: &ModelConfig, params: &mut ParamStore, rng: &mut Xoshiro256PlusPlus) -> Gine {
        let de = cfg.edge_dim.max(1);
        let layers = (0..cfg.layers)
            .map(|l| {
                let (din, _) = cfg.dims(l);
                let edge = [
                    params.add(
                        &format!("layer{l}.edge.weight"),
                        Matrix::glorot(de, din, rng),
                    ),
                    params.add(&format!("layer{l}.edge.bias"), Matrix::zeros(1, din)),
                ];
                (edge, GinMlp::new(cfg, params, l, rng))
            })
            .collect();
        Gine { layers }
    }
}

impl Stack for Gine {
    fn layer(&self, cx: LayerCtx, h: &Input, l: usize, activate: bool) -> Var {
        let LayerCtx {
            tape,
            params,
            graph,
        } = cx;
        let Some(ef) = graph.edge_features() else {
            // Setup refuses gine without edge_attr.npy; reaching here is a wiring bug.
            panic!("gine ran on a batch without edge features");
        };
        let ([we, be], mlp) = self.layers[l];
        let h = h.dense(tape);
        let e = tape.constant(&ef.attr);
        let (we, be) = (tape.param(params, we), tape.param(params, be));
        let e = tape.matmul(e, we);
        let e = tape.add_bias(e, be);
        let hs = tape.gather_rows(h, ef.src.clone());
        let m = tape.add(hs, e);
        let m = tape.relu(m);
        let agg = tape.spmm(&ef.incidence.a, &ef.incidence.at, m);
        let t = tape.add(h, agg);
        let w1 = mlp.w1(tape, params);
        let t = tape.matmul(t, w1);
        let z = mlp.finish(tape, params, t);
        relu_if(tape, z, activate)
    }
}

/// The registry's entry.
pub const SPEC: ModelSpec = ModelSpec {
    name: "gine",
    aliases: &[],
    about: "GINE: GIN with edge features in the messages (graph collections with edge_attr.npy)",
    knobs: &[Knob::BatchNorm, Knob::EdgeFeatures, Knob::VirtualNode],
    depth: Depth::Layers,
    steps: Steps::One,
    operators: &[],
    // Its messages come from the batch's edge list, not from sampled blocks.
    blocks: false,
    layerwise: false,
    mixture: false,
    build: |cfg, params, rng| {
        let stack = Gine::new(cfg, params, rng);
        Box::new(Stacked::new(cfg, stack).with_virtual_node(cfg, params, rng))
    },
    size,
    expert: None,
};

fn size(cfg: &ModelConfig) -> SizeShape {
    let de = cfg.edge_dim.max(1) as u128;
    SizeShape::stack(cfg, cfg.layers, 1, false, move |i, o| {
        (de * i + i + i * o + o * o, o)
    })
}
