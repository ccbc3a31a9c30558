//! `Model`: an architecture (one file each under `arch/`) with its parameters, built from a
//! `ModelConfig`; every architecture returns logits, or embeddings (the last layer's input).

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{Matrix, ParamStore, Tape, Var};

use crate::registry::{Knob, ModelKind};
use crate::{Features, GraphCtx};

/// Errors of model construction.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    #[error("unknown model {0:?}; available: {list}", list = ModelKind::all().iter().map(|k| k.name()).collect::<Vec<_>>().join(", "))]
    UnknownModel(String),
    #[error("bad model shape: {0}")]
    BadShape(String),
    /// The model (or its activations on the graph) cannot fit in memory.
    #[error("{0}")]
    TooLarge(#[from] scalegnn_limits::LimitError),
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
    /// Link prediction's Hadamard + MLP pair decoder (`decoder.*` parameters): a pair scores
    /// `w2ᵀ relu(W1 (a ∘ b) + b1) + b2` instead of the dot product `a · b`.
    pub mlp_decoder: bool,
    /// Graph-level tasks: the layers output `hidden` per node, each graph's rows are pooled
    /// and a two-layer MLP head (`readout.*`) gives `out_dim` per graph.
    pub readout: Option<crate::readout::Pool>,
    /// With `readout`: pool the input features and every layer's output, each through its own
    /// linear map to `out_dim`, and sum them (Xu et al.'s GIN readout) instead of the MLP head.
    pub jk_readout: bool,
    /// Width of the dataset's edge features (`edge_attr.npy`; 0: none). Read by models with
    /// `Knob::EdgeFeatures` (GINE).
    pub edge_dim: usize,
    /// Graph-level tasks: a virtual node per graph joined to all its nodes (models with
    /// `Knob::VirtualNode`).
    pub virtual_node: bool,
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
            mlp_decoder: false,
            readout: None,
            jk_readout: false,
            virtual_node: false,
            edge_dim: 0,
        }
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
            if self.kind.uses(Knob::Heads) {
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

    /// Parameter count, output width per layer and attention entries per edge (the
    /// registry's estimate of the model), for the size estimates.
    fn shape(&self) -> SizeShape {
        (self.kind.spec().size)(self)
    }
}

/// What the size estimates count.
#[derive(Debug, Default, Clone)]
pub struct SizeShape {
    /// Parameters.
    pub params: u128,
    /// Output width of each layer (summed over heads, powers, experts).
    pub widths: Vec<u128>,
    /// Attention entries per edge.
    pub per_edge: u128,
}

impl SizeShape {
    /// A stack of `depth` layers of `cfg`'s widths: layer `l` reads `in_dim` (l = 0) or
    /// `hidden × heads` and writes `hidden` (`out_dim` for the last); `heads` copies of each
    /// but the last. `layer(din, dout)` gives one head's parameters and output width;
    /// `attention`: one entry per edge and head.
    pub fn stack(
        cfg: &ModelConfig,
        depth: usize,
        heads: usize,
        attention: bool,
        layer: impl Fn(u128, u128) -> (u128, u128),
    ) -> SizeShape {
        let heads = heads.max(1) as u128;
        let mut s = SizeShape::default();
        for l in 0..depth {
            let din = if l == 0 {
                cfg.in_dim as u128
            } else {
                (cfg.hidden as u128).saturating_mul(heads)
            };
            let last = l + 1 == depth;
            let dout = if last { cfg.out_dim } else { cfg.hidden } as u128;
            let h = if last { 1 } else { heads };
            let (p, w) = layer(din, dout);
            s.params = s.params.saturating_add(p.saturating_mul(h));
            s.widths.push(w.saturating_mul(h));
            if attention {
                s.per_edge = s.per_edge.saturating_add(h);
            }
        }
        s
    }

    /// Adds `other` (another expert of a mixture): parameters and edges add up, widths add
    /// layer by layer.
    pub fn add(&mut self, other: &SizeShape) {
        self.params = self.params.saturating_add(other.params);
        self.per_edge = self.per_edge.saturating_add(other.per_edge);
        if self.widths.len() < other.widths.len() {
            self.widths.resize(other.widths.len(), 0);
        }
        for (t, w) in self.widths.iter_mut().zip(&other.widths) {
            *t = t.saturating_add(*w);
        }
    }
}

/// What a forward pass returns: the output rows and what the model adds to the training
/// objective (the trainer scores `aux_outputs` with the task's loss, each times its weight,
/// and adds `aux_losses`). Only mixtures fill the auxiliary parts, only in training.
pub struct ModelOutput {
    /// Logits (or embeddings) `[rows, out_dim]`.
    pub out: Var,
    /// Regularisers to add to the loss as they are.
    pub aux_losses: Vec<Var>,
    /// Further outputs for the task's loss, with their weights.
    pub aux_outputs: Vec<(Var, f32)>,
}

impl From<Var> for ModelOutput {
    fn from(out: Var) -> ModelOutput {
        ModelOutput {
            out,
            aux_losses: Vec::new(),
            aux_outputs: Vec::new(),
        }
    }
}

/// What every architecture implements.
pub trait Architecture: Send + Sync {
    /// The mixture of experts, for the trainer's per-epoch pruning (SAGMM only).
    fn moe(&self) -> Option<&crate::moe::Sagmm> {
        None
    }

    /// Mutable access to the mixture of experts (SAGMM only).
    fn moe_mut(&mut self) -> Option<&mut crate::moe::Sagmm> {
        None
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

    /// Every layer's output on the output rows (the last one raw), for readouts over layers
    /// (jumping knowledge); `None` when the architecture cannot give them. Only meaningful
    /// where every layer outputs the same rows (the whole graph, or batches of whole graphs).
    fn forward_layers(
        &self,
        _tape: &mut Tape,
        _params: &ParamStore,
        _x: &Features,
        _graph: &GraphCtx,
        _rng: &mut Xoshiro256PlusPlus,
    ) -> Option<Vec<Var>> {
        None
    }

    /// The training pass: logits and any auxiliary terms (by default, none).
    fn forward_output(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
    ) -> ModelOutput {
        self.forward(tape, params, x, graph, rng, false).into()
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
    /// The pair decoder's parameters (W1, b1, w2, b2), with `mlp_decoder`.
    decoder: Option<[usize; 4]>,
    /// Graph-level readout: pooling and head, with `config.readout`.
    head: Option<crate::readout::Head>,
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
        if config.kind.uses(Knob::Heads)
            && (config.heads == 0 || !(0.0..1.0).contains(&config.attn_dropout))
        {
            return Err(NnError::BadShape(format!(
                "{}: heads {} (need ≥ 1), attention dropout {} (need [0, 1))",
                config.kind.name(),
                config.heads,
                config.attn_dropout
            )));
        }
        if config.kind.is_mixture() {
            if let Some(k) = config.moe.pool.iter().find(|k| k.expert().is_none()) {
                return Err(NnError::BadShape(format!(
                    "{}: `{}` cannot be an expert (experts: {})",
                    config.kind.name(),
                    k.name(),
                    crate::moe::expert::expert_names().join(", ")
                )));
            }
        }
        if config.kind.uses(Knob::EdgeFeatures) && config.edge_dim == 0 {
            return Err(NnError::BadShape(format!(
                "{} reads edge features and the dataset has none (edge_attr.npy)",
                config.kind.name()
            )));
        }
        config.check_fits(0, 0)?;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut params = ParamStore::default();
        // With a readout the layers end at `hidden` per node; the head maps to `out_dim`.
        // The mixture pools each expert and gates per graph itself (its own head).
        let mixture = config.kind.is_mixture();
        let arch = match config.readout {
            Some(_) if !mixture => {
                let enc = ModelConfig {
                    out_dim: config.hidden.max(1),
                    ..config.clone()
                };
                (config.kind.spec().build)(&enc, &mut params, &mut rng)
            }
            _ => (config.kind.spec().build)(&config, &mut params, &mut rng),
        };
        let head = config.readout.filter(|_| !mixture).map(|pool| {
            let jk = config.jk_readout.then(|| {
                let mut widths = vec![config.in_dim];
                widths.extend(std::iter::repeat_n(config.hidden.max(1), config.layers));
                widths
            });
            crate::readout::Head::new(
                pool,
                config.hidden.max(1),
                config.out_dim,
                jk.as_deref(),
                &mut params,
                &mut rng,
            )
        });
        if config.jk_readout && config.readout.is_some() && !config.kind.spec().layerwise {
            return Err(NnError::BadShape(format!(
                "{}: the readout over layers needs a model of stacked layers (gin, gcn, sage, …)",
                config.kind.name()
            )));
        }
        // Added after the architecture, so a model without it draws the same weights.
        let decoder = config.mlp_decoder.then(|| {
            let d = config.out_dim;
            [
                params.add("decoder.w1", Matrix::glorot(d, d, &mut rng)),
                params.add("decoder.b1", Matrix::zeros(1, d)),
                params.add("decoder.w2", Matrix::glorot(d, 1, &mut rng)),
                params.add("decoder.b2", Matrix::zeros(1, 1)),
            ]
        });
        Ok(Model {
            config,
            params,
            arch,
            decoder,
            head,
        })
    }

    /// Scores of node pairs from their output rows `a` and `b` (`[m, out_dim]` each), as
    /// logits `[m, 1]`: the dot product, or the Hadamard + MLP decoder.
    pub fn score_pairs(&self, tape: &mut Tape, a: Var, b: Var) -> Var {
        match self.decoder {
            None => tape.row_dot(a, b),
            Some([w1, b1, w2, b2]) => {
                let h = tape.mul(a, b);
                let (w1, b1) = (tape.param(&self.params, w1), tape.param(&self.params, b1));
                let h = tape.matmul(h, w1);
                let h = tape.add_bias(h, b1);
                let h = tape.relu(h);
                let (w2, b2) = (tape.param(&self.params, w2), tape.param(&self.params, b2));
                let s = tape.matmul(h, w2);
                tape.add_bias(s, b2)
            }
        }
    }

    /// The training pass: logits `[n, out_dim]` and the model's auxiliary terms.
    pub fn forward_output(
        &self,
        tape: &mut Tape,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut impl Rng,
    ) -> ModelOutput {
        let mut r = Xoshiro256PlusPlus::seed_from_u64(rng.random());
        if let Some(v) = self.read_out_layers(tape, x, graph, &mut r, false) {
            return v.into();
        }
        let mut out = self
            .arch
            .forward_output(tape, &self.params, x, graph, &mut r);
        out.out = self.read_out(tape, out.out, graph, &mut r, false);
        out
    }

    /// The readout over layers (`jk_readout`): the input and every layer's output pooled per
    /// graph; the head's sum, or with `embed` the pooled rows side by side. `None` for other
    /// models.
    fn read_out_layers(
        &self,
        tape: &mut Tape,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        embed: bool,
    ) -> Option<Var> {
        let head = self.head.as_ref().filter(|h| h.over_layers())?;
        let Some(seg) = graph.segments() else {
            panic!("a graph-level model ran on a batch without graph segments");
        };
        let mut levels = vec![crate::Input::from_features(tape, x, 0.0, rng).dense(tape)];
        levels.extend(
            self.arch
                .forward_layers(tape, &self.params, x, graph, rng)
                .expect("checked in Model::new: a stacked model"),
        );
        let pooled: Vec<Var> = levels
            .into_iter()
            .map(|h| head.pooled(tape, &self.params, seg, h))
            .collect();
        Some(if embed {
            tape.concat_cols(&pooled)
        } else {
            head.forward_levels(tape, &self.params, &pooled, self.config.dropout, rng)
        })
    }

    /// Graph-level models: node outputs `h` pooled per graph of `graph`'s segments, then
    /// the head (or, with `embed`, the pooled rows). Other models: `h`.
    fn read_out(
        &self,
        tape: &mut Tape,
        h: Var,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        embed: bool,
    ) -> Var {
        let Some(head) = &self.head else { return h };
        let Some(seg) = graph.segments() else {
            panic!("a graph-level model ran on a batch without graph segments");
        };
        let g = head.pooled(tape, &self.params, seg, h);
        if embed {
            return g;
        }
        head.forward(tape, &self.params, g, self.config.dropout, rng)
    }

    /// Records the forward pass on `tape` and returns the logits `[n, out_dim]` alone (for
    /// inference: auxiliary terms are training objectives, see [`Model::forward_output`]).
    pub fn forward(
        &self,
        tape: &mut Tape,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut impl Rng,
    ) -> Var {
        let mut r = Xoshiro256PlusPlus::seed_from_u64(rng.random());
        if let Some(v) = self.read_out_layers(tape, x, graph, &mut r, false) {
            return v;
        }
        let h = self
            .arch
            .forward(tape, &self.params, x, graph, &mut r, false);
        self.read_out(tape, h, graph, &mut r, false)
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

    /// SAGMM: the figure `val_of` gives each active expert alone (the others masked, so its
    /// output goes straight to the head), in expert order; empty for other models and for a
    /// mixture down to one expert.
    pub fn score_experts_alone(
        &mut self,
        mut val_of: impl FnMut(&Model) -> f64,
    ) -> Vec<(usize, f64)> {
        let Some(moe) = self.arch.moe() else {
            return Vec::new();
        };
        let live: Vec<usize> = (0..moe.active().len())
            .filter(|&e| moe.active()[e])
            .collect();
        if live.len() < 2 {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(live.len());
        for &e in &live {
            let others: Vec<usize> = live.iter().copied().filter(|&o| o != e).collect();
            if let Some(m) = self.arch.moe_mut() {
                m.set_masked(&others, true);
            }
            out.push((e, val_of(self)));
            if let Some(m) = self.arch.moe_mut() {
                m.set_masked(&others, false);
            }
        }
        out
    }

    /// SAGMM: prunes every expert but `keep` (freeing their parameters; recorded in the
    /// configuration so checkpoints reload with `keep` alone). `None` for other models.
    pub fn prune_all_but(&mut self, keep: usize) -> Option<crate::moe::EpochReport> {
        let moe = self.arch.moe_mut()?;
        let others: Vec<usize> = (0..moe.active().len())
            .filter(|&e| e != keep && moe.active()[e])
            .collect();
        let report = moe.prune_experts(&mut self.params, &others);
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
        self.head.is_none() && self.config.kind.spec().layerwise
    }

    /// Whether this model trains on sampled blocks (mini-batch).
    pub fn supports_blocks(&self) -> bool {
        self.config.kind.spec().blocks
    }

    /// Folds the batch statistics a training pass recorded on `tape` into the running
    /// averages (batch norm); call once per training step.
    pub fn update_stats(&mut self, tape: &Tape) {
        self.params
            .apply_stats(&tape.stats, crate::arch::norm::MOMENTUM);
    }

    /// Node embeddings: the input of the last layer; for a graph-level model, one row per
    /// graph: the pooled node outputs (the head's input).
    pub fn embed(
        &self,
        tape: &mut Tape,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut impl Rng,
    ) -> Var {
        let mut r = Xoshiro256PlusPlus::seed_from_u64(rng.random());
        if let Some(v) = self.read_out_layers(tape, x, graph, &mut r, true) {
            return v;
        }
        if self.head.is_some() {
            let h = self
                .arch
                .forward(tape, &self.params, x, graph, &mut r, false);
            return self.read_out(tape, h, graph, &mut r, true);
        }
        self.arch
            .forward(tape, &self.params, x, graph, &mut r, true)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use scalegnn_graph::CsrBuilder;

    #[test]
    fn unknown_model_and_bad_shapes_are_errors() {
        let e = "gat2".parse::<ModelKind>().unwrap_err().to_string();
        assert!(e.contains("gat2") && e.contains("gcn"), "{e}");
        let cfg = ModelConfig::new(ModelKind::DEFAULT, 0, 4, 2, 2, 0.5);
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
        // Models that read edge features get one constant column per edge.
        let mut ectx = GraphCtx::new(&g);
        let ptr: Vec<usize> = g.indptr().iter().map(|&v| v as usize).collect();
        let src: Vec<usize> = (0..6)
            .flat_map(|v| g.neighbors(v).iter().collect::<Vec<_>>())
            .collect();
        let ones = Matrix::from_vec(src.len(), 1, vec![1.0; src.len()]);
        ectx.set_edge_features(Arc::new(crate::EdgeFeatures::new(ptr, src, ones)));
        for kind in ModelKind::all() {
            let edges = kind.uses(Knob::EdgeFeatures);
            let ctx = if edges { &ectx } else { &ctx };
            for x in [
                Features::from_dense(xm.clone(), 0.0),
                Features::from_dense(xm.clone(), 1.0),
            ] {
                let cfg = ModelConfig {
                    heads: 2,
                    edge_dim: edges as usize,
                    ..ModelConfig::new(kind, 2, 8, 2, 2, 0.1)
                };
                let mut m = Model::new(cfg, 1).unwrap();
                let mut opt = scalegnn_tensor::Adam::new(0.05, 0.0);
                let mut tape = Tape::new(true);
                let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
                for _ in 0..150 {
                    tape.reset(true);
                    m.params.zero_grad();
                    let logits = m.forward(&mut tape, &x, ctx, &mut rng);
                    let lp = tape.log_softmax(logits);
                    let loss = tape.nll(lp, idx.clone(), y.clone());
                    tape.backward(loss, &mut m.params);
                    opt.step(&mut m.params);
                }
                // Judged without dropout noise: every node right, and a small loss.
                tape.reset(false);
                let logits = m.forward(&mut tape, &x, ctx, &mut rng);
                let pred = tape.value(logits).argmax_rows();
                let lp = tape.log_softmax(logits);
                let loss = tape.nll(lp, idx.clone(), y.clone());
                let last = tape.value(loss).data[0];
                let sparse = matches!(x, Features::Sparse(_));
                assert_eq!(pred, *y, "{kind:?} sparse={sparse}");
                assert!(last < 0.1, "{kind:?} sparse={sparse} loss {last}");
                tape.reset(false);
                let e = m.embed(&mut tape, &x, ctx, &mut rng);
                assert_eq!(tape.value(e).rows, 6);
            }
        }
    }
}
