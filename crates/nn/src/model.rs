//! `Model`: an architecture (one file each under `arch/`) with its parameters, built from a
//! `ModelConfig`; every architecture returns logits, or embeddings (the last layer's input).

use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{ParamStore, Tape, Var};

use crate::{Features, GraphCtx};

/// Errors of model construction.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    #[error("unknown model {0:?}; available: {list}", list = ModelKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", "))]
    UnknownModel(String),
    #[error("bad model shape: {0}")]
    BadShape(String),
    /// The model (or its activations on the graph) cannot fit in memory.
    #[error("{0}")]
    TooLarge(#[from] scalegnn_limits::LimitError),
}

/// The architectures available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Kipf & Welling GCN: `Â h W + b`.
    Gcn,
    /// GraphSAGE with mean aggregation and a root weight: `mean(h) W_l + h W_r + b`.
    Sage,
    /// Graph-free multi-layer perceptron.
    Mlp,
    /// GIN-0: `MLP(h + Σ neighbours)`.
    Gin,
    /// SGC: a linear layer over `Â^K X` (K = `hops`).
    Sgc,
    /// GCN with jumping knowledge (concatenation of every layer's output).
    Jk,
    /// ChebNet with `hops + 1` Chebyshev terms.
    Cheb,
    /// MixHop with powers 0..=`hops` of `Â`.
    MixHop,
    /// GAT: multi-head attention over in-neighbours and self (`heads` × `hidden`, ELU).
    Gat,
    /// SAGMM: a self-adaptive mixture of GNN experts (`moe` module).
    Sagmm,
}

impl ModelKind {
    /// Every architecture, in the order `--help` lists them.
    pub const ALL: &'static [ModelKind] = &[
        ModelKind::Gcn,
        ModelKind::Sage,
        ModelKind::Mlp,
        ModelKind::Gin,
        ModelKind::Sgc,
        ModelKind::Jk,
        ModelKind::Cheb,
        ModelKind::MixHop,
        ModelKind::Gat,
        ModelKind::Sagmm,
    ];

    /// Lower-case name, as in configs.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Gcn => "gcn",
            ModelKind::Sage => "sage",
            ModelKind::Mlp => "mlp",
            ModelKind::Gin => "gin",
            ModelKind::Sgc => "sgc",
            ModelKind::Jk => "jk",
            ModelKind::Cheb => "cheb",
            ModelKind::MixHop => "mixhop",
            ModelKind::Gat => "gat",
            ModelKind::Sagmm => "sagmm",
        }
    }
}

impl FromStr for ModelKind {
    type Err = NnError;
    fn from_str(s: &str) -> Result<Self, NnError> {
        let low = s.to_ascii_lowercase();
        let low = if low == "graphsage" {
            "sage".to_string()
        } else {
            low
        };
        ModelKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == low)
            .ok_or_else(|| NnError::UnknownModel(s.to_string()))
    }
}

/// Shape and regularisation of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub kind: ModelKind,
    pub in_dim: usize,
    pub hidden: usize,
    pub out_dim: usize,
    /// Number of layers (≥ 1).
    pub layers: usize,
    pub dropout: f32,
    /// Dropout on the input features (default: `dropout`).
    pub input_dropout: f32,
    /// Attention heads (GAT).
    pub heads: usize,
    /// Dropout on attention coefficients (GAT).
    pub attn_dropout: f32,
    /// Propagation hops: SGC's K, ChebNet's K, MixHop's largest power.
    pub hops: usize,
    /// Batch norm inside GIN's MLP (PyG's `GIN(norm="batch_norm")`; off by default as in PyG).
    pub batch_norm: bool,
    /// SAGMM's knobs (ignored by the other models).
    pub moe: crate::moe::MoeConfig,
}

impl ModelConfig {
    /// A configuration with the usual defaults for the per-architecture knobs
    /// (8 heads, attention dropout = dropout, 2 hops).
    pub fn new(
        kind: ModelKind,
        in_dim: usize,
        hidden: usize,
        out_dim: usize,
        layers: usize,
        dropout: f32,
    ) -> Self {
        ModelConfig {
            kind,
            in_dim,
            hidden,
            out_dim,
            layers,
            dropout,
            input_dropout: dropout,
            heads: 8,
            attn_dropout: dropout,
            hops: 2,
            batch_norm: false,
            moe: crate::moe::MoeConfig::default(),
        }
    }
}

impl ModelKind {
    /// Propagation steps one layer takes, each on its own sampled block: `hops` for SGC,
    /// ChebNet and MixHop (K-hop layers), 1 for the rest.
    pub fn blocks_per_layer(self, hops: usize) -> usize {
        match self {
            ModelKind::Sgc | ModelKind::Cheb | ModelKind::MixHop => hops.max(1),
            _ => 1,
        }
    }

    /// Sampled blocks (fan-outs) one forward pass consumes with `layers` layers: SGC is one
    /// layer whatever `layers` says.
    pub fn num_blocks(self, layers: usize, hops: usize) -> usize {
        let depth = if self == ModelKind::Sgc { 1 } else { layers };
        depth * self.blocks_per_layer(hops)
    }
}

impl ModelConfig {
    /// Sampled blocks (fan-outs) one forward pass consumes.
    pub fn num_blocks(&self) -> usize {
        self.kind.num_blocks(self.layers, self.hops)
    }

    /// Input and output width of layer `l`.
    pub fn dims(&self, l: usize) -> (usize, usize) {
        let din = if l == 0 { self.in_dim } else { self.hidden };
        let dout = if l + 1 == self.layers {
            self.out_dim
        } else {
            self.hidden
        };
        (din, dout)
    }
}

impl ModelConfig {
    /// Refuses, before allocating, a model whose [`ModelConfig::min_bytes`] on a graph of
    /// `nodes`/`edges` cannot fit (pass 0, 0 for the parameters alone).
    pub fn check_fits(&self, nodes: usize, edges: usize) -> Result<(), NnError> {
        let what = format!(
            "model {} (in {}, hidden {}, out {}, {} layers{}) on {nodes} nodes",
            self.kind.name(),
            self.in_dim,
            self.hidden,
            self.out_dim,
            self.layers,
            if self.kind == ModelKind::Gat {
                format!(", {} heads", self.heads)
            } else {
                String::new()
            }
        );
        scalegnn_limits::check_alloc(what, self.min_bytes(nodes, edges))?;
        Ok(())
    }

    /// About the bytes training this model on a graph of `nodes` nodes and `edges` edges
    /// takes at once: [`ModelConfig::param_bytes`] plus [`ModelConfig::activation_bytes`]
    /// with every layer output over every node. Calibrated on the tiny preset with hidden
    /// 20,000: GCN 1.1 GB measured / 1.0 GB estimated, GIN 14 / 13.8 GB, GAT (2 heads)
    /// 2.5 / 1.9 GB, SAGMM 24 / 23 GB. A guard against sizes no machine holds
    /// (`--hidden 1000000`, `--layers 100000`, a checkpoint claiming 10^11 units).
    pub fn min_bytes(&self, nodes: usize, edges: usize) -> u128 {
        let layers = self.shape().widths.len();
        self.param_bytes()
            .saturating_add(self.activation_bytes(&vec![nodes; layers], edges))
    }

    /// Parameters held in training: each 8 times (value, gradient, two Adam moments, the
    /// tape's copies), f32.
    pub fn param_bytes(&self) -> u128 {
        self.shape().params.saturating_mul(32)
    }

    /// Activations of one pass whose layer `l` outputs `rows[l]` rows (the whole graph: every
    /// node; a sampled batch: the dst nodes of the layer's last block) over `edges` edges:
    /// six f32 buffers per output element (output, pre-activation, dropout mask, their
    /// gradients), and GAT's attention per edge. A rows slice shorter than the layers
    /// repeats its last entry.
    pub fn activation_bytes(&self, rows: &[usize], edges: usize) -> u128 {
        let s = self.shape();
        let mut total = (edges as u128)
            .saturating_mul(s.per_edge)
            .saturating_mul(24);
        for (l, w) in s.widths.iter().enumerate() {
            let r = rows.get(l).or(rows.last()).copied().unwrap_or(0) as u128;
            total = total.saturating_add(r.saturating_mul(*w).saturating_mul(24));
        }
        total
    }

    /// Parameter count, output width per layer and attention entries per edge (summed over
    /// SAGMM's experts), for the size estimates.
    fn shape(&self) -> SizeShape {
        let one = |kind: ModelKind| -> SizeShape {
            let heads = if kind == ModelKind::Gat {
                self.heads.max(1) as u128
            } else {
                1
            };
            let hops = self.hops as u128 + 1;
            let layers = if kind == ModelKind::Sgc {
                1
            } else {
                self.layers
            };
            let mut s = SizeShape::default();
            for l in 0..layers {
                let din = if l == 0 {
                    self.in_dim as u128
                } else {
                    self.hidden as u128 * heads
                };
                let last = l + 1 == layers;
                let dout = if last { self.out_dim } else { self.hidden } as u128;
                let h = if last { 1 } else { heads };
                let (mult, wide) = match kind {
                    ModelKind::Sage => (2, 1),
                    ModelKind::Cheb => (hops, 1),
                    // MixHop concatenates one output per power.
                    ModelKind::MixHop => (hops, hops),
                    _ => (1, 1),
                };
                let mut p = din.saturating_mul(dout).saturating_mul(h * mult);
                if kind == ModelKind::Gin {
                    // GIN's MLP: a second dout × dout linear.
                    p = p.saturating_add(dout.saturating_mul(dout));
                }
                s.params = s.params.saturating_add(p);
                s.widths.push(dout.saturating_mul(h * wide));
                if kind == ModelKind::Gat {
                    s.per_edge = s.per_edge.saturating_add(h);
                }
            }
            if kind == ModelKind::Jk {
                // The jumping-knowledge head reads every layer's output.
                s.params = s.params.saturating_add(
                    (self.hidden as u128 * self.layers as u128)
                        .saturating_mul(self.out_dim as u128),
                );
            }
            s
        };
        if self.kind != ModelKind::Sagmm {
            return one(self.kind);
        }
        let kinds: Vec<ModelKind> = if self.moe.identical {
            vec![ModelKind::Gcn; self.moe.experts]
        } else {
            self.moe
                .pool
                .iter()
                .take(self.moe.experts.max(1))
                .filter_map(|k| k.name().parse().ok())
                .collect()
        };
        let mut total = SizeShape::default();
        for s in kinds.into_iter().map(one) {
            total.params = total.params.saturating_add(s.params);
            total.per_edge = total.per_edge.saturating_add(s.per_edge);
            if total.widths.len() < s.widths.len() {
                total.widths.resize(s.widths.len(), 0);
            }
            for (t, w) in total.widths.iter_mut().zip(&s.widths) {
                *t = t.saturating_add(*w);
            }
        }
        total
    }
}

/// What the size estimates count.
#[derive(Default)]
struct SizeShape {
    params: u128,
    widths: Vec<u128>,
    per_edge: u128,
}

/// What every architecture implements.
pub trait Architecture: Send + Sync {
    /// Whether `forward` accepts a sampled mini-batch (`GraphCtx::from_batch`).
    fn supports_blocks(&self) -> bool {
        false
    }

    /// The mixture of experts, for the trainer's per-epoch pruning (SAGMM only).
    fn moe(&self) -> Option<&crate::moe::Sagmm> {
        None
    }

    /// Mutable access to the mixture of experts (SAGMM only).
    fn moe_mut(&mut self) -> Option<&mut crate::moe::Sagmm> {
        None
    }

    /// Whether `forward_range` runs single layers (exact layer-wise inference).
    fn supports_layerwise(&self) -> bool {
        false
    }

    /// Runs only the layers `layers` (layer-wise inference): `x` is the input of layer
    /// `layers.start` (features for 0, the previous layer's activations after), the result
    /// the input of layer `layers.end`, or the logits when the range ends at the last
    /// layer. `None` when the architecture cannot run a sub-range.
    fn forward_range(
        &self,
        _tape: &mut Tape,
        _params: &ParamStore,
        _x: &Features,
        _graph: &GraphCtx,
        _rng: &mut Xoshiro256PlusPlus,
        _layers: std::ops::Range<usize>,
    ) -> Option<Var> {
        None
    }

    /// Records the forward pass; returns logits `[n, out_dim]`, or with `embed` the input of
    /// the last layer.
    fn forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        embed: bool,
    ) -> Var;
}

/// A model: its configuration, parameters and architecture.
pub struct Model {
    pub config: ModelConfig,
    pub params: ParamStore,
    arch: Box<dyn Architecture>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .field("params", &self.params.count())
            .finish()
    }
}

impl Model {
    /// A model with Glorot-initialised weights and zero biases, seeded.
    pub fn new(config: ModelConfig, seed: u64) -> Result<Model, NnError> {
        if config.layers == 0
            || config.in_dim == 0
            || config.out_dim == 0
            || (config.layers > 1 && config.hidden == 0)
        {
            return Err(NnError::BadShape(format!(
                "layers {}, in {}, hidden {}, out {}",
                config.layers, config.in_dim, config.hidden, config.out_dim
            )));
        }
        if !(0.0..1.0).contains(&config.dropout) {
            return Err(NnError::BadShape(format!(
                "dropout {} is not in [0, 1)",
                config.dropout
            )));
        }
        if config.kind == ModelKind::Gat
            && (config.heads == 0 || !(0.0..1.0).contains(&config.attn_dropout))
        {
            return Err(NnError::BadShape(format!(
                "gat: heads {} (need ≥ 1), attention dropout {} (need [0, 1))",
                config.heads, config.attn_dropout
            )));
        }
        config.check_fits(0, 0)?;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut params = ParamStore::default();
        let arch: Box<dyn Architecture> = match config.kind {
            ModelKind::Gcn => Box::new(crate::arch::gcn::Gcn::new(&config, &mut params, &mut rng)),
            ModelKind::Sage => {
                Box::new(crate::arch::sage::Sage::new(&config, &mut params, &mut rng))
            }
            ModelKind::Mlp => Box::new(crate::arch::mlp::Mlp::new(&config, &mut params, &mut rng)),
            ModelKind::Gin => Box::new(crate::arch::gin::Gin::new(&config, &mut params, &mut rng)),
            ModelKind::Sgc => Box::new(crate::arch::sgc::Sgc::new(&config, &mut params, &mut rng)),
            ModelKind::Jk => Box::new(crate::arch::jk::Jk::new(&config, &mut params, &mut rng)),
            ModelKind::Cheb => {
                Box::new(crate::arch::cheb::Cheb::new(&config, &mut params, &mut rng))
            }
            ModelKind::MixHop => Box::new(crate::arch::mixhop::MixHop::new(
                &config,
                &mut params,
                &mut rng,
            )),
            ModelKind::Gat => Box::new(crate::arch::gat::Gat::new(&config, &mut params, &mut rng)),
            ModelKind::Sagmm => Box::new(crate::moe::Sagmm::new(&config, &mut params, &mut rng)),
        };
        Ok(Model {
            config,
            params,
            arch,
        })
    }

    /// Records the forward pass on `tape` and returns the logits `[n, out_dim]`.
    pub fn forward(
        &self,
        tape: &mut Tape,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut impl Rng,
    ) -> Var {
        let mut r = Xoshiro256PlusPlus::seed_from_u64(rng.random());
        self.arch
            .forward(tape, &self.params, x, graph, &mut r, false)
    }

    /// Layer `l` alone on its input `x` (evaluation: no dropout); `None` when the
    /// architecture cannot run layer by layer.
    pub fn forward_layer(
        &self,
        tape: &mut Tape,
        x: &Features,
        graph: &GraphCtx,
        l: usize,
    ) -> Option<Var> {
        let mut r = Xoshiro256PlusPlus::seed_from_u64(0);
        self.arch
            .forward_range(tape, &self.params, x, graph, &mut r, l..l + 1)
    }

    /// The mixture of experts (SAGMM only).
    pub fn moe(&self) -> Option<&crate::moe::Sagmm> {
        self.arch.moe()
    }

    /// Ends a training epoch for models that adapt during training (SAGMM: importance
    /// average and pruning, which frees parameters and is recorded in the configuration so
    /// checkpoints reload without the pruned experts; `may_prune` false holds pruning off).
    /// `None` for the other models.
    pub fn end_epoch(&mut self, val_acc: f64, may_prune: bool) -> Option<crate::moe::EpochReport> {
        // Every candidate passes a check that reports no loss.
        self.end_epoch_checked(val_acc, may_prune, |_| f64::INFINITY)
    }

    /// [`Model::end_epoch`] with each pruning candidate checked first: `val_of(model)` gives
    /// the validation accuracy of the model as it stands; a candidate whose removal lowers it
    /// by more than the tolerance (`MoeConfig::prune_tolerance`) below `val_acc` is kept
    /// (listed in `EpochReport::kept`). Candidates are tried weakest first, each on top of
    /// those already accepted. `None` for the other models.
    pub fn end_epoch_checked(
        &mut self,
        val_acc: f64,
        may_prune: bool,
        mut val_of: impl FnMut(&Model) -> f64,
    ) -> Option<crate::moe::EpochReport> {
        let moe = self.arch.moe_mut()?;
        let candidates = moe.prune_candidates(val_acc, may_prune);
        let tolerance = moe.prune_tolerance();
        let (mut accepted, mut kept) = (Vec::new(), Vec::new());
        for e in candidates {
            self.arch.moe_mut()?.set_masked(&[e], true);
            if val_of(self) + tolerance >= val_acc {
                accepted.push(e);
            } else {
                self.arch.moe_mut()?.set_masked(&[e], false);
                kept.push(e);
            }
        }
        // The accepted experts are still masked; pruning takes them out for good.
        let moe = self.arch.moe_mut()?;
        let mut report = moe.prune_experts(&mut self.params, &accepted);
        report.kept = kept;
        self.config.moe.pruned = moe.pruned().to_vec();
        Some(report)
    }

    /// The mixture, mutably (SAGMM only).
    pub fn moe_mut(&mut self) -> Option<&mut crate::moe::Sagmm> {
        self.arch.moe_mut()
    }

    /// SAGMM-PE: stops training the experts (after their pretraining).
    pub fn freeze_experts(&mut self) {
        if let Some(moe) = self.arch.moe_mut() {
            moe.freeze_experts(&mut self.params);
        }
    }

    /// Whether this model runs one layer at a time (exact layer-wise inference).
    pub fn supports_layerwise(&self) -> bool {
        self.arch.supports_layerwise()
    }

    /// Whether this model trains on sampled blocks (mini-batch).
    pub fn supports_blocks(&self) -> bool {
        self.arch.supports_blocks()
    }

    /// Folds the batch statistics a training pass recorded on `tape` into the running
    /// averages (batch norm); call once per training step.
    pub fn update_stats(&mut self, tape: &Tape) {
        self.params
            .apply_stats(&tape.stats, crate::arch::norm::MOMENTUM);
    }

    /// Node embeddings: the input of the last layer.
    pub fn embed(
        &self,
        tape: &mut Tape,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut impl Rng,
    ) -> Var {
        let mut r = Xoshiro256PlusPlus::seed_from_u64(rng.random());
        self.arch
            .forward(tape, &self.params, x, graph, &mut r, true)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use scalegnn_graph::CsrBuilder;
    use scalegnn_tensor::Matrix;

    #[test]
    fn unknown_model_and_bad_shapes_are_errors() {
        let e = "gat2".parse::<ModelKind>().unwrap_err().to_string();
        assert!(e.contains("gat2") && e.contains("gcn"), "{e}");
        let cfg = ModelConfig::new(ModelKind::Gcn, 0, 4, 2, 2, 0.5);
        assert!(Model::new(cfg, 0).is_err());
    }

    /// Every architecture reaches near-zero training loss on two separable triangles, with
    /// dense and with sparse features.
    #[test]
    fn each_model_fits_a_tiny_graph() {
        let g = CsrBuilder::new()
            .undirected(true)
            .build(&[0u32, 1, 2, 3, 4, 5], &[1u32, 2, 0, 4, 5, 3])
            .unwrap()
            .csr;
        let ctx = GraphCtx::new(&g);
        let xm = Matrix::from_vec(
            6,
            2,
            vec![1., 0., 1., 0.1, 0.9, 0., 0., 1., 0.1, 1., 0., 0.8],
        );
        let idx = Arc::new((0..6).collect::<Vec<usize>>());
        let y = Arc::new(vec![0usize, 0, 0, 1, 1, 1]);
        for &kind in ModelKind::ALL {
            for x in [
                Features::from_dense(xm.clone(), 0.0),
                Features::from_dense(xm.clone(), 1.0),
            ] {
                let cfg = ModelConfig {
                    heads: 2,
                    ..ModelConfig::new(kind, 2, 8, 2, 2, 0.1)
                };
                let mut m = Model::new(cfg, 1).unwrap();
                let mut opt = scalegnn_tensor::Adam::new(0.05, 0.0);
                let mut tape = Tape::new(true);
                let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
                for _ in 0..150 {
                    tape.reset(true);
                    m.params.zero_grad();
                    let logits = m.forward(&mut tape, &x, &ctx, &mut rng);
                    let lp = tape.log_softmax(logits);
                    let loss = tape.nll(lp, idx.clone(), y.clone());
                    tape.backward(loss, &mut m.params);
                    opt.step(&mut m.params);
                }
                // Judged without dropout noise: every node right, and a small loss.
                tape.reset(false);
                let logits = m.forward(&mut tape, &x, &ctx, &mut rng);
                let pred = tape.value(logits).argmax_rows();
                let lp = tape.log_softmax(logits);
                let loss = tape.nll(lp, idx.clone(), y.clone());
                let last = tape.value(loss).data[0];
                let sparse = matches!(x, Features::Sparse(_));
                assert_eq!(pred, *y, "{kind:?} sparse={sparse}");
                assert!(last < 0.1, "{kind:?} sparse={sparse} loss {last}");
                tape.reset(false);
                let e = m.embed(&mut tape, &x, &ctx, &mut rng);
                assert_eq!(tape.value(e).rows, 6);
            }
        }
    }
}
