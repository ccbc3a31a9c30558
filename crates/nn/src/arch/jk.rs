//! GCN with jumping knowledge (Xu et al. 2018, "cat" mode): every layer's output is kept
//! and their concatenation feeds a final linear layer.

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{Matrix, ParamStore, Tape, Var};

use crate::arch::gcn::gcn_layer;
use crate::features::Input;
use crate::model::{Architecture, SizeShape};
use crate::registry::{Depth, ExpertConv, ModelSpec, Operator, Steps};
use crate::{Features, GraphCtx, ModelConfig};

/// `layers` GCN layers of width `hidden`, then a linear layer over their concatenation.
pub struct Jk {
    layers: Vec<(usize, usize)>,
    head: (usize, usize),
    dropout: f32,
    /// Dropout on the input features (PyG's GraphSAGE has none; the GCN paper uses `dropout`).
    input_dropout: f32,
}

impl Jk {
    /// Registers the GCN layers and the `[layers·hidden, out_dim]` head.
    pub fn new(cfg: &ModelConfig, params: &mut ParamStore, rng: &mut Xoshiro256PlusPlus) -> Jk {
        let layers = (0..cfg.layers)
            .map(|l| {
                let din = if l == 0 { cfg.in_dim } else { cfg.hidden };
                let w = params.add(
                    &format!("layer{l}.weight"),
                    Matrix::glorot(din, cfg.hidden, rng),
                );
                let b = params.add(&format!("layer{l}.bias"), Matrix::zeros(1, cfg.hidden));
                (w, b)
            })
            .collect();
        let cat = cfg.layers * cfg.hidden;
        let head = (
            params.add("jk.weight", Matrix::glorot(cat, cfg.out_dim, rng)),
            params.add("jk.bias", Matrix::zeros(1, cfg.out_dim)),
        );
        Jk {
            layers,
            head,
            dropout: cfg.dropout,
            input_dropout: cfg.input_dropout,
        }
    }
}

impl Architecture for Jk {
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
        let mut outs = Vec::with_capacity(self.layers.len());
        // On a mini-batch every layer's output is cut to the seeds (the last block's dst
        // rows, a prefix of every layer's rows) before the concatenation.
        let seeds = graph.num_dst(self.layers.len() - 1);
        for (l, &(w, b)) in self.layers.iter().enumerate() {
            let (wv, bv) = (tape.param(params, w), tape.param(params, b));
            let z = gcn_layer(tape, &h, wv, bv, graph, l);
            let a = tape.relu(z);
            outs.push(a);
            h = Input::Dense(tape.dropout(a, self.dropout, rng));
        }
        let outs: Vec<Var> = outs
            .into_iter()
            .map(|o| super::dst_rows(tape, o, seeds))
            .collect();
        let cat = tape.concat_cols(&outs);
        if embed {
            return cat;
        }
        let cat = tape.dropout(cat, self.dropout, rng);
        let (w, b) = (
            tape.param(params, self.head.0),
            tape.param(params, self.head.1),
        );
        let z = tape.matmul(cat, w);
        tape.add_bias(z, b)
    }
}

/// The registry's entry.
pub const SPEC: ModelSpec = ModelSpec {
    name: "jk",
    aliases: &[],
    about: "GCN with jumping knowledge (concatenated layer outputs)",
    knobs: &[],
    depth: Depth::Layers,
    steps: Steps::One,
    operators: &[Operator::Gcn],
    blocks: true,
    layerwise: false,
    mixture: false,
    build: |cfg, params, rng| Box::new(Jk::new(cfg, params, rng)),
    size,
    expert: Some(EXPERT),
};

fn size(cfg: &ModelConfig) -> SizeShape {
    let mut s = SizeShape::stack(cfg, cfg.layers, 1, false, |i, o| (i * o, o));
    // The jumping-knowledge head reads every layer's output.
    let head = (cfg.hidden as u128 * cfg.layers as u128).saturating_mul(cfg.out_dim as u128);
    s.params = s.params.saturating_add(head);
    s
}

/// As a SAGMM expert: GCN convolutions whose outputs a jumping-knowledge projection reads.
const EXPERT: ExpertConv = ExpertConv {
    jumping_knowledge: true,
    ..crate::arch::gcn::EXPERT
};
