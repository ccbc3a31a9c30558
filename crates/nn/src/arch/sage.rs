//! GraphSAGE with mean aggregation (Hamilton et al. 2017): `h' = mean(h) W_l + h W_r + b`.

use std::ops::Range;

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{Matrix, ParamStore, Tape, Var};

use crate::features::Input;
use crate::model::{Architecture, SizeShape};
use crate::registry::{Depth, ModelSpec, Operator, Steps};
use crate::{Features, GraphCtx, ModelConfig};

/// A stack of SAGE layers with ReLU and dropout between them.
pub struct Sage {
    /// (neighbour weight, root weight, bias) per layer.
    layers: Vec<(usize, usize, usize)>,
    dropout: f32,
    /// Dropout on the input features (PyG's GraphSAGE has none; the GCN paper uses `dropout`).
    input_dropout: f32,
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
        Sage {
            layers,
            dropout: cfg.dropout,
            input_dropout: cfg.input_dropout,
        }
    }
}

impl Sage {
    /// Layers `layers` on `x` (features before layer 0, activations after): returns the
    /// logits after the last layer, else the activations entering layer `layers.end`.
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
            let (w, r, b) = self.layers[l];
            let (p, nd) = (graph.mean_at(l), graph.num_dst(l));
            let (wv, rv, bv) = (
                tape.param(params, w),
                tape.param(params, r),
                tape.param(params, b),
            );
            let z = match &h {
                // Dense input (hidden layers; dense features): the fused layer aggregates
                // first and runs both GEMMs on the dst rows only, in two buffers.
                Input::Dense(hv) => tape.sage_layer(&p.a, &p.at, *hv, wv, rv, bv, l != last),
                // Sparse features: mean(h)·W = mean(h·W), multiplied first so they never
                // densify.
                Input::Sparse(..) => {
                    let t = h.matmul(tape, wv);
                    let left = tape.spmm(&p.a, &p.at, t);
                    let right = h.matmul(tape, rv);
                    let right = super::dst_rows(tape, right, nd);
                    let s = tape.add(left, right);
                    let z = tape.add_bias(s, bv);
                    if l == last {
                        z
                    } else {
                        tape.relu(z)
                    }
                }
            };
            if l == last {
                return z;
            }
            h = Input::Dense(tape.dropout(z, self.dropout, rng));
        }
        h.dense(tape)
    }
}

impl Architecture for Sage {
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
    name: "sage",
    aliases: &["graphsage"],
    about: "GraphSAGE, mean aggregation with a root weight",
    knobs: &[],
    depth: Depth::Layers,
    steps: Steps::One,
    operators: &[Operator::Mean],
    blocks: true,
    layerwise: true,
    mixture: false,
    build: |cfg, params, rng| Box::new(Sage::new(cfg, params, rng)),
    size,
};

fn size(cfg: &ModelConfig) -> SizeShape {
    SizeShape::stack(cfg, cfg.layers, 1, false, |i, o| (2 * i * o, o))
}
