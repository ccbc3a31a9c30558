//! GAT (Veličković et al. 2018), as PyG's `GATConv`: per head, `α_ij = softmax_j
//! LeakyReLU(a_srcᵀ W h_j + a_dstᵀ W h_i)` over the in-neighbours of i and i itself, then
//! `h'_i = ‖_heads Σ_j α_ij W h_j + b`. Hidden layers concatenate `heads` heads of width
//! `hidden` and apply ELU; the output layer has one head of width `out_dim`.

use std::sync::Arc;

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{EdgeIndex, Matrix, ParamStore, Tape, Var};

use crate::features::Input;
use crate::model::{Architecture, SizeShape};
use crate::registry::{Depth, ExpertConv, Knob, ModelSpec, Operator, Steps};
use crate::{Features, GraphCtx, ModelConfig};

/// Negative slope of the edge-score LeakyReLU (the paper's and PyG's 0.2).
const SCORE_SLOPE: f32 = 0.2;

/// Parameter indices of one attention layer.
struct Layer {
    w: usize,
    a_src: usize,
    a_dst: usize,
    b: usize,
    heads: usize,
}

/// A stack of graph-attention layers with ELU and dropout between them.
pub struct Gat {
    layers: Vec<Layer>,
    dropout: f32,
    /// Dropout on the input features (PyG's GraphSAGE has none; the GCN paper uses `dropout`).
    input_dropout: f32,
    attn_dropout: f32,
}

impl Gat {
    /// Registers each layer's weight `[din, heads·dout]`, attention vectors `[1, heads·dout]`
    /// and bias `[1, heads·dout]` in `params`.
    pub fn new(cfg: &ModelConfig, params: &mut ParamStore, rng: &mut Xoshiro256PlusPlus) -> Gat {
        let heads = cfg.heads.max(1);
        let last = cfg.layers - 1;
        let layers = (0..cfg.layers)
            .map(|l| {
                let din = if l == 0 {
                    cfg.in_dim
                } else {
                    heads * cfg.hidden
                };
                let (h, dout) = if l == last {
                    (1, cfg.out_dim)
                } else {
                    (heads, cfg.hidden)
                };
                let w = params.add(
                    &format!("layer{l}.weight"),
                    Matrix::glorot(din, h * dout, rng),
                );
                // PyG initialises att [1, H, F] with Glorot over (H, F); same values, stored flat.
                let att = |rng: &mut Xoshiro256PlusPlus| {
                    let m = Matrix::glorot(h, dout, rng);
                    Matrix::from_vec(1, h * dout, m.data)
                };
                let a_src = params.add(&format!("layer{l}.att_src"), att(rng));
                let a_dst = params.add(&format!("layer{l}.att_dst"), att(rng));
                let b = params.add(&format!("layer{l}.bias"), Matrix::zeros(1, h * dout));
                Layer {
                    w,
                    a_src,
                    a_dst,
                    b,
                    heads: h,
                }
            })
            .collect();
        Gat {
            layers,
            dropout: cfg.dropout,
            input_dropout: cfg.input_dropout,
            attn_dropout: cfg.attn_dropout,
        }
    }
}

/// One GAT layer: `‖_h Σ_j α_ij^h (h W)_j^h + b`, attention dropout `attn_dropout` on α.
#[allow(clippy::too_many_arguments)] // the layer's parameters, graph and randomness
pub(crate) fn gat_layer(
    tape: &mut Tape,
    input: &Input,
    (w, a_src, a_dst, b): (Var, Var, Var, Var),
    heads: usize,
    edges: &Arc<EdgeIndex>,
    attn_dropout: f32,
    rng: &mut Xoshiro256PlusPlus,
) -> Var {
    let z = input.matmul(tape, w);
    let s_src = tape.head_dot(z, a_src, heads);
    let s_dst = tape.head_dot(z, a_dst, heads);
    // On a block only the dst nodes (a prefix of the sources) receive messages.
    let s_dst = super::dst_rows(tape, s_dst, Some(edges.num_nodes()));
    let e = tape.edge_scores(edges, s_src, s_dst, SCORE_SLOPE);
    let alpha = tape.edge_softmax(edges, e);
    let alpha = tape.dropout(alpha, attn_dropout, rng);
    let out = tape.edge_aggregate(edges, alpha, z);
    tape.add_bias(out, b)
}

impl Architecture for Gat {
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
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            if embed && l == last {
                let d = h.dense(tape);
                return super::dst_rows(tape, d, graph.num_dst(l));
            }
            let edges = graph.attention_at(l);
            let vars = (
                tape.param(params, layer.w),
                tape.param(params, layer.a_src),
                tape.param(params, layer.a_dst),
                tape.param(params, layer.b),
            );
            let z = gat_layer(tape, &h, vars, layer.heads, &edges, self.attn_dropout, rng);
            if l == last {
                return z;
            }
            let a = tape.elu(z, 1.0);
            h = Input::Dense(tape.dropout(a, self.dropout, rng));
        }
        unreachable!("a model has at least one layer")
    }
}

/// The registry's entry.
pub const SPEC: ModelSpec = ModelSpec {
    name: "gat",
    aliases: &[],
    about: "GAT: multi-head attention over in-neighbours and self",
    knobs: &[Knob::Heads],
    depth: Depth::Layers,
    steps: Steps::One,
    operators: &[Operator::Attention],
    blocks: true,
    layerwise: false,
    mixture: false,
    build: |cfg, params, rng| Box::new(Gat::new(cfg, params, rng)),
    size,
    expert: Some(EXPERT),
};

fn size(cfg: &ModelConfig) -> SizeShape {
    SizeShape::stack(cfg, cfg.layers, cfg.heads, true, |i, o| (i * o, o))
}

/// As a SAGMM expert: multi-head attention, the heads concatenated to `hidden`.
const EXPERT: ExpertConv = ExpertConv {
    hops_per_conv: |_, _| 1,
    multi_head: true,
    jumping_knowledge: false,
    params: |r, name, s, rng| {
        let (h, heads) = (s.hidden, s.heads);
        let w = r.add(&format!("{name}.weight"), Matrix::glorot(h, h, rng));
        let att = |rng: &mut Xoshiro256PlusPlus| {
            let m = Matrix::glorot(heads, h / heads, rng);
            Matrix::from_vec(1, h, m.data)
        };
        let a_src = r.add(&format!("{name}.att_src"), att(rng));
        let a_dst = r.add(&format!("{name}.att_dst"), att(rng));
        let b = r.add(&format!("{name}.bias"), Matrix::zeros(1, h));
        vec![w, a_src, a_dst, b]
    },
    conv: |tape, p, h, graph, blk, s, rng| {
        let edges = graph.attention_at(blk);
        let vars = (p[0], p[1], p[2], p[3]);
        gat_layer(
            tape,
            &Input::Dense(h),
            vars,
            s.heads,
            &edges,
            s.attn_dropout,
            rng,
        )
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use scalegnn_graph::CsrBuilder;

    #[test]
    fn pattern_replaces_self_loops() {
        // 0 → 1, 1 → 0, 1 → 1 (an existing self loop), 2 isolated.
        let g = CsrBuilder::new()
            .num_nodes(3)
            .build(&[0u32, 1, 1], &[1u32, 0, 1])
            .unwrap()
            .csr;
        let p = GraphCtx::new(&g).attention_at(0);
        assert_eq!(p.indptr(), &[0, 2, 4, 5]);
        assert_eq!(p.sources(), &[1, 0, 0, 1, 2]);
    }
}
