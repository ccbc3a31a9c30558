//! MixHop (Abu-El-Haija et al. 2019): each layer concatenates `Â^p h W_p` for p = 0..P
//! (P = `hops`), mixing neighbourhoods of several radii; a linear layer maps to classes.

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{Matrix, ParamStore, Tape, Var};

use crate::features::Input;
use crate::model::{Architecture, SizeShape};
use crate::registry::{Depth, ExpertConv, Knob, ModelSpec, Operator, Steps};
use crate::{Features, GraphCtx, ModelConfig};

/// `layers` MixHop layers (each `(P+1)·hidden` wide) and a linear head.
pub struct MixHop {
    /// Per layer: one (weight, bias) per power.
    layers: Vec<Vec<(usize, usize)>>,
    head: (usize, usize),
    dropout: f32,
    /// Dropout on the input features (PyG's GraphSAGE has none; the GCN paper uses `dropout`).
    input_dropout: f32,
}

impl MixHop {
    /// Registers `hops + 1` weight/bias pairs per layer and the head.
    pub fn new(cfg: &ModelConfig, params: &mut ParamStore, rng: &mut Xoshiro256PlusPlus) -> MixHop {
        let powers = cfg.hops.max(1) + 1;
        let layers = (0..cfg.layers)
            .map(|l| {
                let din = if l == 0 {
                    cfg.in_dim
                } else {
                    powers * cfg.hidden
                };
                (0..powers)
                    .map(|p| {
                        let w = params.add(
                            &format!("layer{l}.power{p}.weight"),
                            Matrix::glorot(din, cfg.hidden, rng),
                        );
                        let b = params.add(
                            &format!("layer{l}.power{p}.bias"),
                            Matrix::zeros(1, cfg.hidden),
                        );
                        (w, b)
                    })
                    .collect()
            })
            .collect();
        let cat = powers * cfg.hidden;
        let head = (
            params.add("head.weight", Matrix::glorot(cat, cfg.out_dim, rng)),
            params.add("head.bias", Matrix::zeros(1, cfg.out_dim)),
        );
        MixHop {
            layers,
            head,
            dropout: cfg.dropout,
            input_dropout: cfg.input_dropout,
        }
    }
}

impl Architecture for MixHop {
    fn forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        embed: bool,
    ) -> Var {
        let powers = self.layers[0].len();
        let hops = powers - 1;
        let mut h = Input::from_features(tape, x, self.input_dropout, rng);
        let mut rows = None;
        for (l, layer) in self.layers.iter().enumerate() {
            // Layer l takes `hops` propagation steps, step s on block l·hops + s; every power
            // keeps the rows of the last step's dst nodes (a prefix of each earlier set).
            let first = l * hops;
            rows = graph.num_dst(first + hops - 1);
            let wb: Vec<(Var, Var)> = layer
                .iter()
                .map(|&(w, b)| (tape.param(params, w), tape.param(params, b)))
                .collect();
            let cat = mixhop_layer(tape, &h, &wb, graph, first);
            let a = tape.relu(cat);
            h = Input::Dense(tape.dropout(a, self.dropout, rng));
        }
        let hv = h.dense(tape);
        let hv = super::dst_rows(tape, hv, rows);
        if embed {
            return hv;
        }
        let (w, b) = (
            tape.param(params, self.head.0),
            tape.param(params, self.head.1),
        );
        let z = tape.matmul(hv, w);
        tape.add_bias(z, b)
    }
}

/// One MixHop layer: `‖_p (Â^p h W_p + b_p)` for p = 0..`wb.len()`, propagation step s on
/// block `first + s`; every power keeps the rows of the last step's dst nodes.
pub(crate) fn mixhop_layer(
    tape: &mut Tape,
    h: &Input,
    wb: &[(Var, Var)],
    graph: &GraphCtx,
    first: usize,
) -> Var {
    let hops = wb.len() - 1;
    let rows = graph.num_dst(first + hops.max(1) - 1);
    let mut parts = Vec::with_capacity(wb.len());
    for (p, &(wv, bv)) in wb.iter().enumerate() {
        // Â^p (h W) = (Â^p h) W: multiply first so the SpMMs move `hidden` columns.
        let mut t = h.matmul(tape, wv);
        for s in 0..p {
            let prop = graph.gcn_at(first + s);
            t = tape.spmm(&prop.a, &prop.at, t);
        }
        let t = super::dst_rows(tape, t, rows);
        parts.push(tape.add_bias(t, bv));
    }
    tape.concat_cols(&parts)
}

/// The registry's entry.
pub const SPEC: ModelSpec = ModelSpec {
    name: "mixhop",
    aliases: &[],
    about: "MixHop with powers 0..=hops of Â",
    knobs: &[Knob::Hops],
    depth: Depth::Layers,
    steps: Steps::Hops,
    operators: &[Operator::Gcn],
    blocks: true,
    layerwise: false,
    mixture: false,
    build: |cfg, params, rng| Box::new(MixHop::new(cfg, params, rng)),
    size,
    expert: Some(EXPERT),
};

fn size(cfg: &ModelConfig) -> SizeShape {
    // MixHop concatenates one output per power.
    let k = cfg.hops as u128 + 1;
    SizeShape::stack(cfg, cfg.layers, 1, false, |i, o| (k * i * o, k * o))
}

/// As a SAGMM expert: powers 0..=2 (at most `layers`) concatenated, then projected back.
const EXPERT: ExpertConv = ExpertConv {
    hops_per_conv: |_, layers| 2.min(layers.max(1)),
    multi_head: false,
    jumping_knowledge: false,
    params: |r, name, s, rng| {
        let h = s.hidden;
        let mut p = Vec::new();
        for q in 0..=s.hops {
            p.extend(r.linear(&format!("{name}.power{q}"), h, h, rng));
        }
        p.extend(r.linear(&format!("{name}.proj"), (s.hops + 1) * h, h, rng));
        p
    },
    conv: |tape, p, h, graph, blk, _, _| {
        let n = p.len();
        let wb: Vec<(Var, Var)> = p[..n - 2].chunks(2).map(|c| (c[0], c[1])).collect();
        let cat = mixhop_layer(tape, &Input::Dense(h), &wb, graph, blk);
        let t = tape.matmul(cat, p[n - 2]);
        tape.add_bias(t, p[n - 1])
    },
};
