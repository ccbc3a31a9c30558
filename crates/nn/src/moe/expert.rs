//! SAGMM's expert pool. Every expert is input Linear → LayerNorm → ReLU → dropout, then its
//! graph convolutions of width `hidden`, each followed by LayerNorm, ReLU and dropout; it
//! returns `[n, hidden]` (no classifier: the mixture has one task head). Experts whose
//! convolution takes several hops (SGC, ChebNet, MixHop) get fewer convolutions so that every
//! expert sees the same `layers`-hop neighbourhood, and so one sampled batch serves them all.

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{Matrix, ParamStore, Tape, Var};

use crate::arch::{
    cheb::cheb_layer, dst_rows, gat::gat_layer, gcn::gcn_layer, mixhop::mixhop_layer,
};
use crate::{GraphCtx, Input};

/// The architectures an expert can have, in pool order (`experts = E` takes the first E).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpertKind {
    Gcn,
    Gat,
    Sage,
    Sgc,
    Jk,
    Cheb,
    Gin,
    MixHop,
}

impl ExpertKind {
    /// The pool, in the order experts are taken.
    pub const POOL: [ExpertKind; 8] = [
        ExpertKind::Gcn,
        ExpertKind::Gat,
        ExpertKind::Sage,
        ExpertKind::Sgc,
        ExpertKind::Jk,
        ExpertKind::Cheb,
        ExpertKind::Gin,
        ExpertKind::MixHop,
    ];

    /// The kind named `name` (as `name()` prints it).
    pub fn parse(name: &str) -> Option<ExpertKind> {
        ExpertKind::POOL.into_iter().find(|k| k.name() == name)
    }

    /// Lower-case name (plots, logs).
    pub fn name(self) -> &'static str {
        match self {
            ExpertKind::Gcn => "gcn",
            ExpertKind::Gat => "gat",
            ExpertKind::Sage => "sage",
            ExpertKind::Sgc => "sgc",
            ExpertKind::Jk => "jk",
            ExpertKind::Cheb => "cheb",
            ExpertKind::Gin => "gin",
            ExpertKind::MixHop => "mixhop",
        }
    }

    /// Hops one convolution takes: SGC's K (`hops`, at most `layers`), ChebNet with K = 3
    /// Chebyshev terms (2 hops), MixHop with powers 0..=2 (2 hops), 1 for the rest.
    fn hops_per_conv(self, hops: usize, layers: usize) -> usize {
        match self {
            ExpertKind::Sgc => hops.clamp(1, layers.max(1)),
            ExpertKind::Cheb | ExpertKind::MixHop => 2.min(layers.max(1)),
            _ => 1,
        }
    }
}

/// Parameter indices of one convolution (layout depends on the kind) and its norm.
struct Conv {
    p: Vec<usize>,
    norm: (usize, usize),
}

/// One expert: its kind, parameters and shape.
pub struct Expert {
    pub kind: ExpertKind,
    input: (usize, usize),
    input_norm: (usize, usize),
    convs: Vec<Conv>,
    /// JK: the projection of the concatenated layer outputs back to `hidden`.
    proj: Option<(usize, usize)>,
    hops_per_conv: usize,
    heads: usize,
    /// Every parameter index this expert owns (freed together when it is pruned).
    pub params: Vec<usize>,
}

/// Registers parameters under one expert's prefix; a pruned expert's are empty buffers so
/// indices and names still line up with the checkpoint.
struct Reg<'a> {
    params: &'a mut ParamStore,
    prefix: String,
    pruned: bool,
    owned: Vec<usize>,
}

impl Reg<'_> {
    fn add(&mut self, name: &str, m: Matrix) -> usize {
        let full = format!("{}.{name}", self.prefix);
        let i = if self.pruned {
            self.params.add_buffer(&full, Matrix::zeros(0, 0))
        } else {
            self.params.add(&full, m)
        };
        self.owned.push(i);
        i
    }

    fn linear(
        &mut self,
        name: &str,
        din: usize,
        dout: usize,
        rng: &mut Xoshiro256PlusPlus,
    ) -> [usize; 2] {
        [
            self.add(&format!("{name}.weight"), Matrix::glorot(din, dout, rng)),
            self.add(&format!("{name}.bias"), Matrix::zeros(1, dout)),
        ]
    }

    fn norm(&mut self, name: &str, dim: usize) -> (usize, usize) {
        (
            self.add(
                &format!("{name}.weight"),
                Matrix::from_vec(1, dim, vec![1.0; dim]),
            ),
            self.add(&format!("{name}.bias"), Matrix::zeros(1, dim)),
        )
    }
}

/// Shape of the experts of one mixture.
pub struct ExpertShape {
    pub in_dim: usize,
    pub hidden: usize,
    pub layers: usize,
    pub hops: usize,
    pub heads: usize,
}

impl Expert {
    /// Registers expert `index` of kind `kind` (`pruned`: as empty buffers).
    pub fn new(
        index: usize,
        kind: ExpertKind,
        s: &ExpertShape,
        params: &mut ParamStore,
        pruned: bool,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Expert {
        let h = s.hidden;
        let hpc = kind.hops_per_conv(s.hops, s.layers);
        let n_convs = (s.layers / hpc).max(1);
        let heads = if kind == ExpertKind::Gat && s.heads > 0 && h.is_multiple_of(s.heads) {
            s.heads
        } else {
            1
        };
        let mut r = Reg {
            params,
            prefix: format!("expert{index}.{}", kind.name()),
            pruned,
            owned: Vec::new(),
        };
        let [iw, ib] = r.linear("input", s.in_dim, h, rng);
        let input_norm = r.norm("input_norm", h);
        let convs = (0..n_convs)
            .map(|l| {
                let c = format!("conv{l}");
                let p = match kind {
                    ExpertKind::Gcn | ExpertKind::Jk | ExpertKind::Sgc => {
                        r.linear(&c, h, h, rng).to_vec()
                    }
                    ExpertKind::Sage => {
                        let [w, b] = r.linear(&c, h, h, rng);
                        let root = r.add(&format!("{c}.root"), Matrix::glorot(h, h, rng));
                        vec![w, root, b]
                    }
                    ExpertKind::Gat => {
                        let w = r.add(&format!("{c}.weight"), Matrix::glorot(h, h, rng));
                        let att = |rng: &mut Xoshiro256PlusPlus| {
                            let m = Matrix::glorot(heads, h / heads, rng);
                            Matrix::from_vec(1, h, m.data)
                        };
                        let a_src = r.add(&format!("{c}.att_src"), att(rng));
                        let a_dst = r.add(&format!("{c}.att_dst"), att(rng));
                        let b = r.add(&format!("{c}.bias"), Matrix::zeros(1, h));
                        vec![w, a_src, a_dst, b]
                    }
                    ExpertKind::Cheb => {
                        let mut p: Vec<usize> = (0..=hpc)
                            .map(|k| r.add(&format!("{c}.weight{k}"), Matrix::glorot(h, h, rng)))
                            .collect();
                        p.push(r.add(&format!("{c}.bias"), Matrix::zeros(1, h)));
                        p
                    }
                    ExpertKind::Gin => {
                        let mut p = r.linear(&format!("{c}.mlp0"), h, h, rng).to_vec();
                        p.extend(r.linear(&format!("{c}.mlp1"), h, h, rng));
                        p
                    }
                    ExpertKind::MixHop => {
                        let mut p = Vec::new();
                        for q in 0..=hpc {
                            p.extend(r.linear(&format!("{c}.power{q}"), h, h, rng));
                        }
                        p.extend(r.linear(&format!("{c}.proj"), (hpc + 1) * h, h, rng));
                        p
                    }
                };
                let norm = r.norm(&format!("{c}.norm"), h);
                Conv { p, norm }
            })
            .collect();
        let proj = (kind == ExpertKind::Jk).then(|| {
            let [w, b] = r.linear("jk", n_convs * h, h, rng);
            (w, b)
        });
        Expert {
            kind,
            input: (iw, ib),
            input_norm,
            convs,
            proj,
            hops_per_conv: hpc,
            heads,
            params: r.owned,
        }
    }

    /// Sampled blocks (hops) this expert consumes.
    pub fn num_blocks(&self) -> usize {
        self.convs.len() * self.hops_per_conv
    }

    /// `[rows, hidden]` for the output rows; on a mini-batch the expert runs on the last
    /// `num_blocks()` of the batch's `total` blocks (its input rows are that block's sources).
    #[allow(clippy::too_many_arguments)] // the pass's inputs, each distinct
    pub fn forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Input,
        graph: &GraphCtx,
        total: usize,
        dropout: f32,
        attn_dropout: f32,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Var {
        let offset = total.saturating_sub(self.num_blocks());
        let rows_in = offset.checked_sub(1).and_then(|b| graph.num_dst(b));
        let (iw, ib) = (
            tape.param(params, self.input.0),
            tape.param(params, self.input.1),
        );
        let t = match x {
            Input::Dense(v) => {
                let v = dst_rows(tape, *v, rows_in);
                tape.matmul(v, iw)
            }
            Input::Sparse(..) => {
                let t = x.matmul(tape, iw);
                dst_rows(tape, t, rows_in)
            }
        };
        let t = tape.add_bias(t, ib);
        let mut h = self.norm_act(tape, params, t, self.input_norm, dropout, rng);
        let mut outs = Vec::new();
        let mut blk = offset;
        for conv in &self.convs {
            let p: Vec<Var> = conv.p.iter().map(|&i| tape.param(params, i)).collect();
            let z = match self.kind {
                ExpertKind::Gcn | ExpertKind::Jk => {
                    gcn_layer(tape, &Input::Dense(h), p[0], p[1], graph, blk)
                }
                ExpertKind::Sage => {
                    let a = graph.mean_at(blk);
                    tape.sage_layer(&a.a, &a.at, h, p[0], p[1], p[2], false)
                }
                ExpertKind::Gat => {
                    let edges = graph.attention_at(blk);
                    let vars = (p[0], p[1], p[2], p[3]);
                    gat_layer(
                        tape,
                        &Input::Dense(h),
                        vars,
                        self.heads,
                        &edges,
                        attn_dropout,
                        rng,
                    )
                }
                ExpertKind::Sgc => {
                    let mut t = h;
                    for s in 0..self.hops_per_conv {
                        let a = graph.gcn_at(blk + s);
                        t = tape.spmm(&a.a, &a.at, t);
                    }
                    let t = tape.matmul(t, p[0]);
                    tape.add_bias(t, p[1])
                }
                ExpertKind::Cheb => {
                    let (ws, b) = p.split_at(p.len() - 1);
                    cheb_layer(tape, &Input::Dense(h), ws, b[0], graph, blk)
                }
                ExpertKind::Gin => {
                    let a = graph.sum_at(blk);
                    let t = tape.spmm(&a.a, &a.at, h);
                    let t = tape.matmul(t, p[0]);
                    let t = tape.add_bias(t, p[1]);
                    let t = tape.relu(t);
                    let t = tape.matmul(t, p[2]);
                    tape.add_bias(t, p[3])
                }
                ExpertKind::MixHop => {
                    let n = p.len();
                    let wb: Vec<(Var, Var)> = p[..n - 2].chunks(2).map(|c| (c[0], c[1])).collect();
                    let cat = mixhop_layer(tape, &Input::Dense(h), &wb, graph, blk);
                    let t = tape.matmul(cat, p[n - 2]);
                    tape.add_bias(t, p[n - 1])
                }
            };
            blk += self.hops_per_conv;
            h = self.norm_act(tape, params, z, conv.norm, dropout, rng);
            if self.proj.is_some() {
                outs.push(h);
            }
        }
        match self.proj {
            Some((w, b)) => {
                // Jumping knowledge: every layer's output on the final rows, concatenated.
                let rows = graph.num_dst(blk.saturating_sub(1));
                let parts: Vec<Var> = outs.iter().map(|&o| dst_rows(tape, o, rows)).collect();
                let cat = tape.concat_cols(&parts);
                let (wv, bv) = (tape.param(params, w), tape.param(params, b));
                let t = tape.matmul(cat, wv);
                tape.add_bias(t, bv)
            }
            None => h,
        }
    }

    fn norm_act(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        z: Var,
        (g, b): (usize, usize),
        dropout: f32,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Var {
        let (gv, bv) = (tape.param(params, g), tape.param(params, b));
        let n = tape.layer_norm(z, gv, bv, 1e-5);
        let a = tape.relu(n);
        tape.dropout(a, dropout, rng)
    }
}

/// The output rows of a pass (every node on the whole graph, the seeds on a batch).
pub(crate) fn output_rows(graph: &GraphCtx, total: usize) -> Option<usize> {
    total.checked_sub(1).and_then(|b| graph.num_dst(b))
}
