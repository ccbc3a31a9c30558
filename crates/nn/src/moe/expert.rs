//! SAGMM's expert pool, in one of two forms (`ExpertForm`).
//!
//! *Wrapped*: every expert is input Linear → LayerNorm → ReLU → dropout, then its graph
//! convolutions of width `hidden`, each followed by LayerNorm, ReLU and dropout; it returns
//! `[n, hidden]` (no classifier: the mixture has one task head).
//!
//! *Standalone*: every expert is the registry's own model of its name (the one `--model NAME`
//! trains, with the run's width, depth and dropout), returning the task's outputs itself; the
//! mixture sums them with the gate's weights and has no head of its own (graph-level tasks
//! excepted: there the experts give `hidden` per node and the pooled mixture goes through the
//! head). A mixture whose gate settles on one expert is then exactly that standalone model.
//!
//! In both forms experts whose convolution takes several hops (SGC, ChebNet, MixHop) get
//! fewer convolutions so that every expert sees the same `layers`-hop neighbourhood, and so
//! one sampled batch serves them all.

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{Matrix, ParamStore, Tape, Var};

use crate::arch::dst_rows;
use crate::model::Architecture;
use crate::registry::{ConvShape, ExpertConv, ModelKind};
use crate::{Features, GraphCtx, Input, ModelConfig};

/// How the experts of a mixture are built (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpertForm {
    /// Convolutions of the expert's kind inside a common wrapper, one shared head.
    #[default]
    Wrapped,
    /// The registry's standalone models, each giving the task's outputs.
    Standalone,
}

impl std::fmt::Display for ExpertForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExpertForm::Wrapped => "wrapped",
            ExpertForm::Standalone => "standalone",
        })
    }
}

impl std::str::FromStr for ExpertForm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "wrapped" => Ok(ExpertForm::Wrapped),
            "standalone" => Ok(ExpertForm::Standalone),
            other => Err(format!(
                "unknown expert form `{other}` (expected wrapped or standalone)"
            )),
        }
    }
}

/// The default pool, in the order experts are taken (`experts = E` takes the first E).
// The MLP expert (last) was added on validation accuracy alone: with it the pool was ahead on
// 6 of 7 graphs (mean best validation 75.32 against 73.91, bench/sagmm_defaults.sh, 3 runs);
// it is the expert heterophilous graphs (WebKB) want, and the gate can leave it on homophilous
// ones. Kept last so `--experts 8` is the pool of the paper.
pub const POOL: [&str; 9] = [
    "gcn", "gat", "sage", "sgc", "jk", "cheb", "gin", "mixhop", "mlp",
];

/// The default pool as registry models.
pub fn default_pool() -> Vec<ModelKind> {
    POOL.iter().filter_map(|n| parse(n)).collect()
}

/// The registry model named `name` when it can be an expert.
pub fn parse(name: &str) -> Option<ModelKind> {
    name.parse::<ModelKind>()
        .ok()
        .filter(|k| k.expert().is_some())
}

/// Names of every registered model that can be an expert (for messages).
pub fn expert_names() -> Vec<&'static str> {
    ModelKind::all()
        .into_iter()
        .filter(|k| k.expert().is_some())
        .map(|k| k.name())
        .collect()
}

/// Parameter indices of one convolution (layout depends on the kind) and its norm.
struct Conv {
    p: Vec<usize>,
    norm: (usize, usize),
}

/// One expert: its kind, parameters and body.
pub struct Expert {
    pub kind: ModelKind,
    body: Body,
    /// Every parameter index this expert owns (freed together when it is pruned).
    pub params: Vec<usize>,
}

/// What an expert computes with.
enum Body {
    Wrapped(Wrapped),
    /// A registry model consuming `blocks` sampled blocks.
    Standalone {
        arch: Box<dyn Architecture>,
        blocks: usize,
    },
}

/// A wrapped expert's parameters and shape.
struct Wrapped {
    ops: &'static ExpertConv,
    /// Its own input Linear; None when the mixture shares one (`MoeConfig::shared_input`).
    input: Option<(usize, usize)>,
    input_norm: (usize, usize),
    convs: Vec<Conv>,
    /// JK: the projection of the concatenated layer outputs back to `hidden`.
    proj: Option<(usize, usize)>,
    hops_per_conv: usize,
    heads: usize,
    hidden: usize,
    linear_out: bool,
    /// Graph-level mixtures with `virtual_node`: the expert's own virtual node.
    virtual_node: Option<crate::VirtualNode>,
}

/// Registers parameters under one expert's prefix; a pruned expert's are empty buffers so
/// indices and names still line up with the checkpoint.
pub struct ExpertParams<'a> {
    params: &'a mut ParamStore,
    prefix: String,
    pruned: bool,
    owned: Vec<usize>,
}

impl ExpertParams<'_> {
    /// Registers `name` (under the expert's prefix); its index.
    pub fn add(&mut self, name: &str, m: Matrix) -> usize {
        let full = format!("{}.{name}", self.prefix);
        let i = if self.pruned {
            self.params.add_buffer(&full, Matrix::zeros(0, 0))
        } else {
            self.params.add(&full, m)
        };
        self.owned.push(i);
        i
    }

    /// Registers `{name}.weight` (Glorot `[din, dout]`) and `{name}.bias` (zeros).
    pub fn linear(
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
    /// The experts share one input Linear (the mixture owns it).
    pub shared_input: bool,
    /// The last convolution's output is returned as it is (no LayerNorm, ReLU or dropout).
    pub linear_out: bool,
    /// Graph-level tasks: each expert has a virtual node joined to every node of a graph.
    pub virtual_node: bool,
}

impl Expert {
    /// Registers expert `index` of kind `kind` (`pruned`: as empty buffers); None when the
    /// model cannot be an expert.
    pub fn new(
        index: usize,
        kind: ModelKind,
        s: &ExpertShape,
        params: &mut ParamStore,
        pruned: bool,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Option<Expert> {
        let ops = kind.expert()?;
        let h = s.hidden;
        let hpc = (ops.hops_per_conv)(s.hops, s.layers);
        let n_convs = (s.layers / hpc).max(1);
        let heads = if ops.multi_head && s.heads > 0 && h.is_multiple_of(s.heads) {
            s.heads
        } else {
            1
        };
        let mut r = ExpertParams {
            params,
            prefix: format!("expert{index}.{}", kind.name()),
            pruned,
            owned: Vec::new(),
        };
        let input = (!s.shared_input).then(|| {
            let [iw, ib] = r.linear("input", s.in_dim, h, rng);
            (iw, ib)
        });
        let input_norm = r.norm("input_norm", h);
        let shape = ConvShape {
            hidden: h,
            hops: hpc,
            heads,
            attn_dropout: 0.0,
        };
        let convs = (0..n_convs)
            .map(|l| {
                let c = format!("conv{l}");
                let p = (ops.params)(&mut r, &c, &shape, rng);
                let norm = r.norm(&format!("{c}.norm"), h);
                Conv { p, norm }
            })
            .collect();
        let proj = ops.jumping_knowledge.then(|| {
            let [w, b] = r.linear("jk", n_convs * h, h, rng);
            (w, b)
        });
        // The input projection gives `hidden`, so the node joins from the first convolution.
        let virtual_node = s
            .virtual_node
            .then(|| crate::VirtualNode::plain(h, n_convs, 0, &mut |n, m| r.add(n, m), rng));
        Some(Expert {
            kind,
            body: Body::Wrapped(Wrapped {
                ops,
                input,
                input_norm,
                convs,
                proj,
                hops_per_conv: hpc,
                heads,
                hidden: h,
                linear_out: s.linear_out,
                virtual_node,
            }),
            params: r.owned,
        })
    }

    /// Registers expert `index` as the registry's standalone model `kind` on `cfg`'s shape
    /// (`cfg` is the expert's configuration: its kind, output width and graph-level knobs
    /// already set); parameters are named `expert{index}.{kind}.…` and, when `pruned`, freed
    /// at once. The depth follows the wrapped experts' rule (one `cfg.layers`-hop
    /// neighbourhood for all). None when the model cannot be an expert.
    pub fn standalone(
        index: usize,
        cfg: &ModelConfig,
        params: &mut ParamStore,
        pruned: bool,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Option<Expert> {
        let kind = cfg.kind;
        let ops = kind.expert()?;
        let hpc = (ops.hops_per_conv)(cfg.hops, cfg.layers).max(1);
        let mut c = cfg.clone();
        if kind.blocks_per_layer(cfg.hops) > 1 || kind.depth(cfg.layers) != cfg.layers {
            // Multi-hop convolutions: `hpc` hops each, as many as fit in `layers` hops.
            c.hops = hpc;
            c.layers = (cfg.layers / hpc).max(1);
        }
        let start = params.values.len();
        let arch = (kind.spec().build)(&c, params, rng);
        let owned: Vec<usize> = (start..params.values.len()).collect();
        for &i in &owned {
            params.names[i] = format!("expert{index}.{}.{}", kind.name(), params.names[i]);
            if pruned {
                params.free(i);
            }
        }
        Some(Expert {
            kind,
            body: Body::Standalone {
                arch,
                blocks: kind.num_blocks(c.layers, c.hops),
            },
            params: owned,
        })
    }

    /// True for an expert built by [`Expert::standalone`].
    pub fn is_standalone(&self) -> bool {
        matches!(self.body, Body::Standalone { .. })
    }

    /// Sampled blocks (hops) this expert consumes.
    pub fn num_blocks(&self) -> usize {
        match &self.body {
            Body::Wrapped(w) => w.convs.len() * w.hops_per_conv,
            Body::Standalone { blocks, .. } => *blocks,
        }
    }

    /// A standalone expert's outputs for the output rows: on a mini-batch it runs on the
    /// last `num_blocks()` of the batch's `total` blocks, reading the features of that
    /// block's source rows. `frozen`: run without dropout or gradient (SAGMM-PE).
    pub fn forward_standalone(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        frozen: bool,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Var {
        let Body::Standalone { arch, blocks } = &self.body else {
            panic!("forward_standalone on a wrapped expert");
        };
        let total = graph.num_blocks();
        let skip = total.saturating_sub(*blocks);
        let shifted;
        let (g, xs) = if skip > 0 {
            shifted = graph.skip_blocks(skip);
            let rows = graph.num_dst(skip - 1).unwrap_or(0);
            (&shifted, x.prefix_rows(rows))
        } else {
            (graph, x.clone())
        };
        if frozen {
            let mut t = Tape::new(false);
            let v = arch.forward(&mut t, params, &xs, g, rng, false);
            let m = t.value(v).clone();
            tape.constant(&std::sync::Arc::new(m))
        } else {
            arch.forward(tape, params, &xs, g, rng, false)
        }
    }

    /// A wrapped expert's `[rows, hidden]` for the output rows; on a mini-batch the expert
    /// runs on the last `num_blocks()` of the batch's `total` blocks (its input rows are that
    /// block's sources). `shared`: the mixture's shared input projection of every input row,
    /// when it has one.
    #[allow(clippy::too_many_arguments)] // the pass's inputs, each distinct
    pub fn forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Input,
        shared: Option<Var>,
        graph: &GraphCtx,
        total: usize,
        dropout: f32,
        attn_dropout: f32,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Var {
        let Body::Wrapped(w) = &self.body else {
            panic!("forward on a standalone expert (use forward_standalone)");
        };
        let offset = total.saturating_sub(self.num_blocks());
        w.forward(
            tape,
            params,
            x,
            shared,
            graph,
            offset,
            dropout,
            attn_dropout,
            rng,
        )
    }
}

impl Wrapped {
    #[allow(clippy::too_many_arguments)] // the pass's inputs, each distinct
    fn forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Input,
        shared: Option<Var>,
        graph: &GraphCtx,
        offset: usize,
        dropout: f32,
        attn_dropout: f32,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Var {
        let rows_in = offset.checked_sub(1).and_then(|b| graph.num_dst(b));
        let t = match (self.input, shared) {
            (Some((w, b)), _) => {
                let (iw, ib) = (tape.param(params, w), tape.param(params, b));
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
                tape.add_bias(t, ib)
            }
            (None, Some(t)) => dst_rows(tape, t, rows_in),
            (None, None) => panic!("an expert without its own input needs the shared projection"),
        };
        let mut h = self.norm_act(tape, params, t, self.input_norm, dropout, rng);
        let mut outs = Vec::new();
        let mut blk = offset;
        let last = self.convs.len() - 1;
        // A graph batch's blocks all hold every node, so the graph segments fit every layer.
        let vn = self.virtual_node.as_ref().zip(graph.segments());
        let mut state = None;
        for (l, conv) in self.convs.iter().enumerate() {
            if let Some((v, seg)) = vn {
                let s = match state {
                    Some(s) => s,
                    None => v.start(tape, params, seg),
                };
                h = v.inject(tape, seg, h, s);
                state = Some(if v.updates_after(l) {
                    v.update(tape, params, seg, l, h, s, dropout, rng)
                } else {
                    s
                });
            }
            let p: Vec<Var> = conv.p.iter().map(|&i| tape.param(params, i)).collect();
            let shape = ConvShape {
                hidden: self.hidden,
                hops: self.hops_per_conv,
                heads: self.heads,
                attn_dropout,
            };
            let z = (self.ops.conv)(tape, &p, h, graph, blk, &shape, rng);
            blk += self.hops_per_conv;
            h = if self.linear_out && l == last && self.proj.is_none() {
                // Link scores are dot products of outputs: after a ReLU every output shares
                // a large non-negative common part and every pair scores high, as standalone
                // link encoders avoid by ending on a plain convolution. On Cora (seed 0, 40
                // epochs, 4 experts, head scaled as in Sagmm::new) validation ROC-AUC was
                // 0.938 with the plain output, 0.548 with the ReLU.
                z
            } else {
                self.norm_act(tape, params, z, conv.norm, dropout, rng)
            };
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
