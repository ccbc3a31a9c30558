//! ChebNet (Defferrard et al. 2016): `h' = Σ_k T_k(L̃) h W_k + b`, Chebyshev polynomials of
//! the scaled Laplacian `L̃ = -D^-1/2 A D^-1/2` (λ_max = 2, as PyG's ChebConv assumes).

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{Matrix, ParamStore, Tape, Var};

use crate::arch::stack::{relu_if, LayerCtx, Stack, Stacked};
use crate::features::Input;
use crate::model::SizeShape;
use crate::registry::{Depth, ExpertConv, Knob, ModelSpec, Operator, Steps};
use crate::{GraphCtx, ModelConfig};

/// ChebConv layers with `hops + 1` polynomial terms each.
pub struct Cheb {
    /// Per layer: one weight per term, then the bias.
    layers: Vec<(Vec<usize>, usize)>,
}

impl Cheb {
    /// Registers `hops + 1` weights and a bias per layer.
    pub fn new(cfg: &ModelConfig, params: &mut ParamStore, rng: &mut Xoshiro256PlusPlus) -> Cheb {
        let terms = cfg.hops.max(1) + 1;
        let layers = (0..cfg.layers)
            .map(|l| {
                let (din, dout) = cfg.dims(l);
                let ws = (0..terms)
                    .map(|k| {
                        params.add(
                            &format!("layer{l}.weight{k}"),
                            Matrix::glorot(din, dout, rng),
                        )
                    })
                    .collect();
                (
                    ws,
                    params.add(&format!("layer{l}.bias"), Matrix::zeros(1, dout)),
                )
            })
            .collect();
        Cheb { layers }
    }
}

impl Stack for Cheb {
    fn blocks_per_layer(&self) -> usize {
        self.layers[0].0.len() - 1
    }

    fn layer(&self, cx: LayerCtx, h: &Input, l: usize, activate: bool) -> Var {
        let LayerCtx {
            tape,
            params,
            graph,
        } = cx;
        let (ws, b) = &self.layers[l];
        let wv: Vec<Var> = ws.iter().map(|&w| tape.param(params, w)).collect();
        let bv = tape.param(params, *b);
        let z = cheb_layer(tape, h, &wv, bv, graph, l * self.blocks_per_layer());
        relu_if(tape, z, activate)
    }
}

/// One ChebConv, `Σ_k T_k(L̃) h W_k + b` with `ws.len() − 1` propagation steps, step k on
/// block `first + k`; the result has the rows of the last step's dst nodes (each term keeps
/// that prefix of its rows).
pub(crate) fn cheb_layer(
    tape: &mut Tape,
    h: &Input,
    ws: &[Var],
    b: Var,
    graph: &GraphCtx,
    first: usize,
) -> Var {
    let hops = ws.len() - 1;
    let rows = graph.num_dst(first + hops - 1);
    // T_0 h W_0 uses the (possibly sparse) input directly; higher terms need it dense.
    let t = h.matmul(tape, ws[0]);
    let mut acc = super::dst_rows(tape, t, rows);
    let t0 = h.dense(tape);
    let mut prev = t0;
    let lap = graph.cheb_at(first);
    let mut cur = tape.spmm(&lap.a, &lap.at, t0);
    for (k, &wk) in ws.iter().enumerate().skip(1) {
        if k > 1 {
            let lap = graph.cheb_at(first + k - 1);
            let p = tape.spmm(&lap.a, &lap.at, cur);
            let p2 = tape.scale(p, 2.0);
            let prev_rows = super::dst_rows(tape, prev, graph.num_dst(first + k - 1));
            let neg = tape.scale(prev_rows, -1.0);
            let next = tape.add(p2, neg);
            prev = cur;
            cur = next;
        }
        let t = super::dst_rows(tape, cur, rows);
        let term = tape.matmul(t, wk);
        acc = tape.add(acc, term);
    }
    tape.add_bias(acc, b)
}

/// The registry's entry.
pub const SPEC: ModelSpec = ModelSpec {
    name: "cheb",
    aliases: &[],
    about: "ChebNet with hops + 1 Chebyshev terms",
    knobs: &[Knob::Hops],
    depth: Depth::Layers,
    steps: Steps::Hops,
    operators: &[Operator::Cheb],
    blocks: true,
    layerwise: false,
    mixture: false,
    build: |cfg, params, rng| Box::new(Stacked::new(cfg, Cheb::new(cfg, params, rng))),
    size,
    expert: Some(EXPERT),
};

fn size(cfg: &ModelConfig) -> SizeShape {
    let k = cfg.hops as u128 + 1;
    SizeShape::stack(cfg, cfg.layers, 1, false, |i, o| (k * i * o, o))
}

/// As a SAGMM expert: a ChebConv with 3 terms (2 hops, at most `layers`).
const EXPERT: ExpertConv = ExpertConv {
    hops_per_conv: |_, layers| 2.min(layers.max(1)),
    multi_head: false,
    jumping_knowledge: false,
    params: |r, name, s, rng| {
        let mut p: Vec<usize> = (0..=s.hops)
            .map(|k| {
                r.add(
                    &format!("{name}.weight{k}"),
                    Matrix::glorot(s.hidden, s.hidden, rng),
                )
            })
            .collect();
        p.push(r.add(&format!("{name}.bias"), Matrix::zeros(1, s.hidden)));
        p
    },
    conv: |tape, p, h, graph, blk, _, _| {
        let (ws, b) = p.split_at(p.len() - 1);
        cheb_layer(tape, &Input::Dense(h), ws, b[0], graph, blk)
    },
};
