//! SAGMM: a self-adaptive mixture of GNN experts. A topology-aware attention gate (TAAG)
//! scores every expert for every node from the gate input (`gate_input`), a learnable
//! threshold per expert decides which experts serve which node (so nodes use a variable
//! number), the chosen experts' outputs are summed with their gate weights, and one task head
//! maps the mixture to classes. Experts that stop contributing are pruned during training.
//! The task head is separate from the mixture (`embed` returns the mixture), so link and
//! graph tasks can put their own head on it.

pub mod expert;
pub mod gate_input;

use std::sync::{Arc, Mutex};

use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{Matrix, ParamStore, Tape, Var};

use crate::model::{Architecture, ModelOutput, SizeShape};
use crate::registry::{Depth, Knob, ModelKind, ModelSpec, Operator, Steps};
use crate::{Features, GraphCtx, Input, ModelConfig};
use expert::{Expert, ExpertForm, ExpertShape};

/// How the mixture picks experts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateKind {
    /// Topology-aware linear attention with a learnable per-expert threshold (SAGMM).
    Taag,
    /// Ablation: noisy top-k softmax gating (Shazeer et al. 2017) on the same gate input.
    NoisyTopK(usize),
}

impl std::fmt::Display for GateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GateKind::Taag => write!(f, "taag"),
            GateKind::NoisyTopK(k) => write!(f, "top{k}"),
        }
    }
}

impl std::str::FromStr for GateKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "taag" => Ok(GateKind::Taag),
            "top1" => Ok(GateKind::NoisyTopK(1)),
            "top2" => Ok(GateKind::NoisyTopK(2)),
            other => Err(format!(
                "unknown gate `{other}` (expected taag, top1 or top2)"
            )),
        }
    }
}

/// SAGMM's knobs (the `sagmm_*` keys of a run).
#[derive(Debug, Clone, PartialEq)]
pub struct MoeConfig {
    /// The expert architectures to draw from, in order (default `expert::POOL`): registry
    /// models that can be experts.
    pub pool: Vec<ModelKind>,
    /// How many experts of the pool to use (the first ones).
    pub experts: usize,
    /// Experts as convolutions in a common wrapper or as the registry's standalone models.
    pub form: ExpertForm,
    /// Ablation: every expert a GCN (different initialisations only).
    pub identical: bool,
    pub gate: GateKind,
    /// Initial threshold σ(τ) of every expert (TAAG): a node uses an expert whose gate score
    /// is above it.
    pub threshold: f32,
    /// Laplacian eigenvectors in the gate input.
    pub eig_k: usize,
    /// One input Linear shared by every expert instead of one each: on wide features
    /// (WebKB: 1,703) the experts' input projections are most of the mixture's parameters.
    pub shared_input: bool,
    /// Weight of the load-balance loss (CV² of the experts' total weights).
    pub w_imp: f32,
    /// Weight of the gate-diversity loss on W_q, W_k, W_v.
    pub w_div: f32,
    /// Weight of the expert-supervision loss: each active expert's output through the task
    /// head is scored against the labels too (mean over experts; 0 turns it off).
    pub expert_loss: f32,
    /// Adaptive pruning on or off.
    pub prune: bool,
    /// Epochs between pruning decisions.
    pub prune_interval: usize,
    /// Starting pruning factor: experts below `mean importance · factor` go.
    pub prune_factor: f32,
    /// Never prune below this many experts.
    pub min_experts: usize,
    /// Full-batch training checks each pruning candidate on the validation set first: an
    /// expert is kept when removing it would cost more than this much validation accuracy
    /// (a fraction; 1 disables the check).
    pub prune_tolerance: f32,
    /// After training, prune the kept mixture to its single best expert when that expert
    /// alone scores higher on the validation split than the mixture (done by the trainer).
    pub best_expert: bool,
    /// Experts removed so far (state: saved in checkpoints so a reload skips them).
    pub pruned: Vec<usize>,
    /// SAGMM-PE: experts pretrained (each with its own head) on a share of the training
    /// labels, then frozen; only the gate and the head train on the rest.
    pub pretrain: bool,
    /// Share of the training nodes the experts are pretrained on.
    pub pretrain_share: f32,
    /// Pretraining epochs (0: half the run's epochs).
    pub pretrain_epochs: usize,
    /// The head starts random instead of at zero: link prediction decodes pairs of outputs
    /// by a dot product, and from a zero head every pair scores 0 with zero gradient.
    pub random_head: bool,
}

impl Default for MoeConfig {
    fn default() -> Self {
        MoeConfig {
            pool: expert::default_pool(),
            experts: expert::POOL.len(),
            form: ExpertForm::Wrapped,
            identical: false,
            gate: GateKind::Taag,
            threshold: 0.5,
            eig_k: 8,
            shared_input: false,
            w_imp: 0.01,
            w_div: 0.01,
            expert_loss: 0.5,
            prune: true,
            prune_interval: 20,
            prune_factor: 0.5,
            min_experts: 2,
            prune_tolerance: 0.005,
            best_expert: true,
            pruned: Vec::new(),
            pretrain: false,
            pretrain_share: 0.5,
            pretrain_epochs: 0,
            random_head: false,
        }
    }
}

/// Scale of the random link head against Glorot's (see `Sagmm::new`).
const LINK_HEAD_SCALE: f32 = 0.3;

/// Bounds of the adapted pruning factor.
const FACTOR_RANGE: (f32, f32) = (0.1, 0.9);
/// Weight of the newest epoch in the importance average.
const EMA_NEW: f64 = 0.9;

/// What the forward passes of one epoch measured (interior: `forward` takes `&self`).
#[derive(Debug, Default)]
struct Stats {
    /// Per expert, the summed contribution ‖Σ_i w_ie h_ie‖₂ over training steps.
    contribution: Vec<f64>,
    steps: usize,
    /// Per node of the last pass, how many experts it used.
    counts: Vec<u32>,
    /// Per node of the last pass, which experts it used (row-major `[n, E]`, 0/1).
    selected: Vec<u8>,
    /// Evaluation passes since `reset_histogram`: nodes using k experts at index k − 1.
    histogram: Vec<u64>,
}

/// The inputs of one pass the experts share.
struct Pass<'a> {
    x: &'a Features,
    xin: &'a Input,
    shared: Option<Var>,
    graph: &'a GraphCtx<'a>,
    total: usize,
    dropout: f32,
    attn_dropout: f32,
    /// Standalone experts run off the tape (SAGMM-PE after pretraining).
    frozen: bool,
}

/// Frozen experts' outputs on the whole graph, keyed by the feature matrix they came from.
type FrozenOutputs = Option<(usize, Vec<Option<Arc<Matrix>>>)>;

/// What `end_epoch` did.
#[derive(Debug, Clone, Default)]
pub struct EpochReport {
    /// Importance (EMA of contributions) per expert; 0 for pruned ones.
    pub importance: Vec<f64>,
    /// Experts pruned at this epoch.
    pub pruned: Vec<usize>,
    /// Pruning candidates kept because removing them cost validation accuracy.
    pub kept: Vec<usize>,
    /// Parameter indices freed with them (the optimizer should drop their state).
    pub freed_params: Vec<usize>,
    /// The pruning factor after this epoch's adaptation.
    pub factor: f32,
}

/// What a mixture learns about its experts across epochs besides its parameters: saved with
/// a run's state so a resumed run prunes as the uninterrupted one would.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MoeState {
    pub importance: Vec<f64>,
    pub factor: f32,
    pub last_val: Option<f64>,
    pub epochs_seen: usize,
}

/// The mixture: experts, gate, threshold and task head.
pub struct Sagmm {
    pub experts: Vec<Expert>,
    /// The experts' shared input Linear (`MoeConfig::shared_input`).
    shared_input: Option<(usize, usize)>,
    /// `W_q, W_k, W_v` (`[gate_dim, E]`, no bias); for noisy top-k: `W_g, W_noise` and an
    /// unused third.
    gate_w: [usize; 3],
    /// Threshold logits τ (`[1, E]`).
    tau: usize,
    /// The task head on the mixture; None for standalone experts, which give the task's
    /// outputs themselves.
    head: Option<(usize, usize)>,
    /// SAGMM-PE: one head per expert for its pretraining.
    pretrain_heads: Vec<(usize, usize)>,
    /// SAGMM-PE after pretraining: experts run without dropout and receive no gradient.
    frozen: bool,
    /// Frozen experts' outputs on the whole graph, per feature matrix (they never change).
    frozen_outputs: Mutex<FrozenOutputs>,
    cfg: MoeConfig,
    dropout: f32,
    /// Dropout on the features entering the experts (shared by all of them).
    input_dropout: f32,
    attn_dropout: f32,
    gate_dim: usize,
    in_dim: usize,
    /// Graph-level tasks: each expert's node outputs are pooled per graph this way, and the
    /// gate scores experts per graph.
    readout: Option<crate::readout::Pool>,
    active: Vec<bool>,
    importance: Vec<f64>,
    factor: f32,
    /// Validation accuracy at the last pruning decision.
    last_val: Option<f64>,
    epochs_seen: usize,
    stats: Mutex<Stats>,
    /// Gate input computed from the features on the whole graph when none is attached.
    fallback_gate: Mutex<Option<(usize, Arc<Matrix>)>>,
}

impl Sagmm {
    /// Registers the experts, the gate and the head.
    pub fn new(cfg: &ModelConfig, params: &mut ParamStore, rng: &mut Xoshiro256PlusPlus) -> Sagmm {
        let m = cfg.moe.clone();
        let pool = if m.pool.is_empty() {
            expert::default_pool()
        } else {
            m.pool.clone()
        };
        let e = m.experts.clamp(1, pool.len());
        let shape = ExpertShape {
            in_dim: cfg.in_dim,
            hidden: cfg.hidden,
            layers: cfg.layers,
            hops: cfg.hops,
            heads: cfg.heads,
            shared_input: m.shared_input,
            linear_out: m.random_head,
            virtual_node: cfg.virtual_node && cfg.readout.is_some(),
        };
        let standalone = m.form == ExpertForm::Standalone;
        let graph_level = cfg.readout.is_some();
        let shared_input = (m.shared_input && !standalone)
            .then(|| crate::arch::linear(params, "shared_input", cfg.in_dim, cfg.hidden, rng));
        let experts: Vec<Expert> = (0..e)
            .map(|i| {
                let kind = if m.identical {
                    ModelKind::DEFAULT
                } else {
                    pool[i]
                };
                let pruned = m.pruned.contains(&i);
                // Model::new refused a pool holding a model that cannot be an expert.
                if standalone {
                    let ecfg = ModelConfig {
                        kind,
                        // Graph level: node embeddings, pooled and put through the head.
                        out_dim: if graph_level { cfg.hidden } else { cfg.out_dim },
                        moe: MoeConfig::default(),
                        mlp_decoder: false,
                        readout: None,
                        jk_readout: false,
                        virtual_node: cfg.virtual_node && graph_level,
                        ..cfg.clone()
                    };
                    Expert::standalone(i, &ecfg, params, pruned, rng)
                } else {
                    Expert::new(i, kind, &shape, params, pruned, rng)
                }
                .expect("the expert pool was checked by Model::new")
            })
            .collect();
        // Per graph, the gate reads the graph's mean input features and its structural
        // descriptor (GRAPH_DESCRIPTORS columns) instead of per-node eigenvectors.
        let gate_dim = if cfg.readout.is_some() {
            cfg.in_dim + GRAPH_DESCRIPTORS
        } else {
            cfg.in_dim + m.eig_k
        };
        let gate_w = ["q", "k", "v"]
            .map(|n| params.add(&format!("gate.w_{n}"), Matrix::glorot(gate_dim, e, rng)));
        // τ = logit(threshold); 0.5 gives τ = 0, the method's start.
        let t = m.threshold.clamp(1e-4, 1.0 - 1e-4);
        let tau0 = (t / (1.0 - t)).ln();
        let tau = params.add("gate.tau", Matrix::from_vec(1, e, vec![tau0; e]));
        // The head starts at zero. With a random one the initial logits are confidently wrong
        // and the quickest way down is to shrink every gate weight: on Amazon Photo p fell to
        // 0.01 within two epochs, the mixture output vanished and the loss sat at ln 8 for 60
        // epochs (val 15 %); from zero the gate first sees useful gradients (val 89 % at 22).
        let head = (!standalone || graph_level).then(|| {
            (
                params.add(
                    "head.weight",
                    if m.random_head {
                        // Scaled down so the first scores are near unit size: from Glorot's scale
                        // the first loss on Cora was 6.5, the quickest way down was to shrink every
                        // gate weight, and the mixture then sat near ln 2 for tens of epochs.
                        // Chosen on Cora's validation pairs (seed 0, 120 epochs): best validation
                        // ROC-AUC 0.9396 at 0.15, 0.9454 at 0.3, 0.9419 at 0.5, 0.9372 at 1.
                        let mut w = Matrix::glorot(cfg.hidden, cfg.out_dim, rng);
                        w.data.iter_mut().for_each(|v| *v *= LINK_HEAD_SCALE);
                        w
                    } else {
                        Matrix::zeros(cfg.hidden, cfg.out_dim)
                    },
                ),
                params.add("head.bias", Matrix::zeros(1, cfg.out_dim)),
            )
        });
        let active = (0..e).map(|i| !m.pruned.contains(&i)).collect();
        // Standalone experts pretrain through their own outputs.
        let pretrain_heads = if m.pretrain && head.is_some() {
            (0..e)
                .map(|i| {
                    (
                        params.add(
                            &format!("expert{i}.pretrain_head.weight"),
                            Matrix::glorot(cfg.hidden, cfg.out_dim, rng),
                        ),
                        params.add(
                            &format!("expert{i}.pretrain_head.bias"),
                            Matrix::zeros(1, cfg.out_dim),
                        ),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        Sagmm {
            shared_input,
            pretrain_heads,
            frozen: false,
            frozen_outputs: Mutex::new(None),
            experts,
            gate_w,
            tau,
            head,
            factor: m.prune_factor,
            cfg: m,
            dropout: cfg.dropout,
            input_dropout: cfg.input_dropout,
            attn_dropout: cfg.attn_dropout,
            gate_dim,
            in_dim: cfg.in_dim,
            readout: cfg.readout,
            active,
            importance: vec![0.0; e],
            last_val: None,
            epochs_seen: 0,
            stats: Mutex::new(Stats::default()),
            fallback_gate: Mutex::new(None),
        }
    }

    /// The state [`MoeState`] holds.
    pub fn state(&self) -> MoeState {
        MoeState {
            importance: self.importance.clone(),
            factor: self.factor,
            last_val: self.last_val,
            epochs_seen: self.epochs_seen,
        }
    }

    /// SAGMM-PE after pretraining: the experts no longer train.
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Puts back a state taken with [`Sagmm::state`] (same expert count).
    pub fn restore(&mut self, s: &MoeState) {
        if s.importance.len() == self.importance.len() {
            self.importance.clone_from(&s.importance);
        }
        self.factor = s.factor;
        self.last_val = s.last_val;
        self.epochs_seen = s.epochs_seen;
    }

    /// SAGMM-PE's pretraining pass: each active expert's own logits (`None` for pruned
    /// experts), from its pretraining head.
    pub fn pretrain_forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Vec<Option<Var>> {
        assert!(
            self.cfg.pretrain,
            "pretrain_forward needs a model built with pretrain = true"
        );
        let total = graph.num_blocks();
        let xin = Input::from_features(tape, x, self.input_dropout, rng);
        let shared = self.project(tape, params, &xin);
        let pass = Pass {
            x,
            xin: &xin,
            shared,
            graph,
            total,
            dropout: self.dropout,
            attn_dropout: self.attn_dropout,
            frozen: false,
        };
        (0..self.experts.len())
            .map(|i| {
                self.active[i].then(|| {
                    let h = self.expert_out(tape, params, i, &pass, rng);
                    match self.pretrain_heads.get(i) {
                        Some(&(w, b)) => {
                            let (wv, bv) = (tape.param(params, w), tape.param(params, b));
                            let z = tape.matmul(h, wv);
                            tape.add_bias(z, bv)
                        }
                        // Standalone experts give the task's outputs themselves.
                        None => h,
                    }
                })
            })
            .collect()
    }

    /// Ends SAGMM-PE's pretraining: experts and their heads stop training; later passes run
    /// them without dropout (and, on the whole graph, once).
    pub fn freeze_experts(&mut self, params: &mut ParamStore) {
        for e in &self.experts {
            for &p in &e.params {
                params.trainable[p] = false;
            }
        }
        // The shared input is part of every expert: frozen with them (their outputs are
        // cached once frozen).
        for &(w, b) in self.pretrain_heads.iter().chain(&self.shared_input) {
            params.trainable[w] = false;
            params.trainable[b] = false;
        }
        self.frozen = true;
    }

    /// Expert outputs for this pass (`None` for pruned experts).
    fn expert_outputs(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Vec<Option<Var>> {
        let total = graph.num_blocks();
        let dropout = if self.frozen { 0.0 } else { self.dropout };
        let attn = if self.frozen { 0.0 } else { self.attn_dropout };
        if self.frozen && total == 0 {
            let id = features_id(x);
            let mut slot = self
                .frozen_outputs
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if slot.as_ref().is_none_or(|(sid, _)| *sid != id) {
                let mut t = Tape::new(false);
                let xin = Input::from_features(&mut t, x, 0.0, rng);
                let shared = self.project(&mut t, params, &xin);
                let pass = Pass {
                    x,
                    xin: &xin,
                    shared,
                    graph,
                    total: 0,
                    dropout: 0.0,
                    attn_dropout: 0.0,
                    frozen: false,
                };
                let outs = (0..self.experts.len())
                    .map(|i| {
                        self.active[i].then(|| {
                            let v = self.expert_out(&mut t, params, i, &pass, rng);
                            Arc::new(t.value(v).clone())
                        })
                    })
                    .collect();
                *slot = Some((id, outs));
            }
            let outs = &slot.as_ref().expect("filled above").1;
            return outs
                .iter()
                .zip(&self.active)
                .map(|(o, &a)| match (o, a) {
                    (Some(m), true) => Some(tape.constant(m)),
                    _ => None,
                })
                .collect();
        }
        let p_in = if self.frozen { 0.0 } else { self.input_dropout };
        let xin = Input::from_features(tape, x, p_in, rng);
        let shared = self.project(tape, params, &xin);
        let pass = Pass {
            x,
            xin: &xin,
            shared,
            graph,
            total,
            dropout,
            attn_dropout: attn,
            frozen: self.frozen,
        };
        (0..self.experts.len())
            .map(|i| self.active[i].then(|| self.expert_out(tape, params, i, &pass, rng)))
            .collect()
    }

    /// Expert `i`'s output in `pass`, whichever its form.
    fn expert_out(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        i: usize,
        p: &Pass<'_>,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Var {
        let e = &self.experts[i];
        if e.is_standalone() {
            // The model applies its own input dropout to the raw features.
            e.forward_standalone(tape, params, p.x, p.graph, p.frozen, rng)
        } else {
            e.forward(
                tape,
                params,
                p.xin,
                p.shared,
                p.graph,
                p.total,
                p.dropout,
                p.attn_dropout,
                rng,
            )
        }
    }

    /// The shared input projection of every input row, when the experts share one.
    fn project(&self, tape: &mut Tape, params: &ParamStore, xin: &Input) -> Option<Var> {
        let (w, b) = self.shared_input?;
        let (wv, bv) = (tape.param(params, w), tape.param(params, b));
        let t = xin.matmul(tape, wv);
        Some(tape.add_bias(t, bv))
    }

    /// Which experts are still in the mixture.
    pub fn active(&self) -> &[bool] {
        &self.active
    }

    /// Width of the gate input (features + eigenvectors).
    pub fn gate_dim(&self) -> usize {
        self.gate_dim
    }

    /// Sampled blocks one pass consumes: the deepest active expert's.
    pub fn num_blocks(&self) -> usize {
        self.experts
            .iter()
            .zip(&self.active)
            .filter(|(_, &a)| a)
            .map(|(e, _)| e.num_blocks())
            .max()
            .unwrap_or(1)
    }

    /// How many experts each node of the last forward pass used.
    pub fn last_counts(&self) -> Vec<u32> {
        self.stats
            .lock()
            .map(|s| s.counts.clone())
            .unwrap_or_default()
    }

    /// Nodes using 1, 2, … E experts (index k − 1) over the evaluation passes since the last
    /// `reset_histogram` (a mini-batch evaluation is many passes).
    pub fn histogram(&self) -> Vec<u64> {
        let e = self.experts.len();
        let h = self
            .stats
            .lock()
            .map(|s| s.histogram.clone())
            .unwrap_or_default();
        if h.len() == e {
            h
        } else {
            vec![0; e]
        }
    }

    /// Starts a new expert-count histogram.
    pub fn reset_histogram(&self) {
        if let Ok(mut s) = self.stats.lock() {
            s.histogram.clear();
        }
    }

    /// Which experts each node of the last forward pass used (row-major `[n, E]`, 0/1).
    pub fn last_selection(&self) -> Vec<u8> {
        self.stats
            .lock()
            .map(|s| s.selected.clone())
            .unwrap_or_default()
    }

    /// The gate input for this pass: the attached one, else (whole graph only) computed
    /// from the features once per feature matrix.
    fn gate_input(&self, x: &Features, graph: &GraphCtx) -> Arc<Matrix> {
        if let (Some(seg), Some(_)) = (graph.segments(), self.readout) {
            return Arc::new(graph_gate_input(x, graph, seg));
        }
        if let Some(g) = graph.gate_input() {
            assert_eq!(
                g.cols, self.gate_dim,
                "SAGMM gate input has {} columns, the model was built for {}",
                g.cols, self.gate_dim
            );
            return g.clone();
        }
        assert!(
            graph.num_blocks() == 0,
            "SAGMM on a sampled batch needs the seeds' gate input (GraphCtx::with_gate_input)"
        );
        let id = features_id(x);
        let mut slot = self.fallback_gate.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((sid, g)) = slot.as_ref() {
            if *sid == id {
                return g.clone();
            }
        }
        let dense = match x {
            Features::Dense(m) => (**m).clone(),
            Features::Sparse(s) => s.to_dense(),
        };
        let k = self.cfg.eig_k;
        let g =
            gate_input::gate_features(graph.csr, &dense, k, gate_input::default_eig_steps(k), 0)
                .map(|(m, _)| Arc::new(m))
                .unwrap_or_else(|e| panic!("SAGMM gate input: {e}"));
        *slot = Some((id, g.clone()));
        g
    }

    /// Ends an epoch, first half: folds the epoch into the importance average and, every
    /// `prune_interval` epochs, adapts the factor to `val_acc` (lowered after a regression,
    /// raised after an improvement) and returns the experts below `mean · factor`,
    /// weakest first (at most as many as `min_experts` allows); empty otherwise, and when
    /// `may_prune` is false (the run's last epoch: a pruned model would have no epoch left
    /// to recover in).
    pub fn prune_candidates(&mut self, val_acc: f64, may_prune: bool) -> Vec<usize> {
        self.epochs_seen += 1;
        let (contrib, steps) = {
            let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            let c = std::mem::take(&mut s.contribution);
            let n = std::mem::take(&mut s.steps);
            (c, n)
        };
        if steps > 0 {
            for (e, imp) in self.importance.iter_mut().enumerate() {
                let new = contrib.get(e).copied().unwrap_or(0.0) / steps as f64;
                *imp = if self.epochs_seen == 1 {
                    new
                } else {
                    (1.0 - EMA_NEW) * *imp + EMA_NEW * new
                };
            }
        }
        let interval = self.cfg.prune_interval.max(1);
        if !may_prune || !self.cfg.prune || !self.epochs_seen.is_multiple_of(interval) {
            return Vec::new();
        }
        if let Some(last) = self.last_val {
            let (lo, hi) = FACTOR_RANGE;
            self.factor = if val_acc < last {
                (self.factor * 0.8).max(lo)
            } else if val_acc > last {
                (self.factor * 1.1).min(hi)
            } else {
                self.factor
            };
        }
        self.last_val = Some(val_acc);
        let live: Vec<usize> = (0..self.active.len()).filter(|&e| self.active[e]).collect();
        let mean = live.iter().map(|&e| self.importance[e]).sum::<f64>() / live.len().max(1) as f64;
        let cut = mean * self.factor as f64;
        let mut weakest: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&e| self.importance[e] < cut)
            .collect();
        weakest.sort_by(|&a, &b| self.importance[a].total_cmp(&self.importance[b]));
        let room = live.len().saturating_sub(self.cfg.min_experts.max(1));
        weakest.truncate(room);
        weakest
    }

    /// Takes experts out of (or back into) the forward passes without freeing anything, to
    /// measure the mixture without them; pruned experts stay out.
    pub fn set_masked(&mut self, experts: &[usize], masked: bool) {
        for &e in experts {
            if e < self.active.len() && !self.cfg.pruned.contains(&e) {
                self.active[e] = !masked;
            }
        }
    }

    /// Ends an epoch, second half: removes `experts` for good, freeing their
    /// parameters in `params`, and reports the epoch.
    pub fn prune_experts(&mut self, params: &mut ParamStore, experts: &[usize]) -> EpochReport {
        let mut report = EpochReport {
            factor: self.factor,
            ..EpochReport::default()
        };
        for &e in experts {
            if e >= self.active.len() || self.cfg.pruned.contains(&e) {
                continue;
            }
            self.active[e] = false;
            self.cfg.pruned.push(e);
            for &p in &self.experts[e].params {
                params.free(p);
                report.freed_params.push(p);
            }
            report.pruned.push(e);
        }
        report.importance = self
            .importance
            .iter()
            .zip(&self.active)
            .map(|(&v, &a)| if a { v } else { 0.0 })
            .collect();
        report
    }

    /// Largest validation-accuracy loss a pruning may cost (see `MoeConfig::prune_tolerance`).
    pub fn prune_tolerance(&self) -> f64 {
        self.cfg.prune_tolerance as f64
    }

    /// The experts pruned so far, in order.
    pub fn pruned(&self) -> &[usize] {
        &self.cfg.pruned
    }

    /// The gate's auxiliary losses (training only).
    fn aux_losses(&self, tape: &mut Tape, params: &ParamStore, w: Var) -> Vec<Var> {
        let mut terms = Vec::new();
        if !tape.training {
            return terms;
        }
        if self.cfg.w_imp > 0.0 {
            let cv = tape.cv_squared(w, &self.active);
            terms.push(tape.scale(cv, self.cfg.w_imp));
        }
        if self.cfg.w_div > 0.0 && self.cfg.gate == GateKind::Taag {
            for &gw in &self.gate_w {
                let wv = tape.param(params, gw);
                let d = tape.column_diversity(wv, &self.active);
                terms.push(tape.scale(d, self.cfg.w_div));
            }
        }
        terms
    }

    /// Per-node weights `[n, E]` from the gate.
    fn gate(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        g: Var,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Var {
        let [a, b, c] = self.gate_w.map(|i| tape.param(params, i));
        match self.cfg.gate {
            GateKind::Taag => {
                let q = tape.matmul(g, a);
                let k = tape.matmul(g, b);
                let v = tape.matmul(g, c);
                let out = tape.linear_attention(q, k, v);
                let p = tape.sigmoid(out);
                let tau = tape.param(params, self.tau);
                tape.threshold_gate(p, tau, &self.active)
            }
            GateKind::NoisyTopK(k) => {
                let clean = tape.matmul(g, a);
                let scores = if tape.training {
                    let raw = tape.matmul(g, b);
                    let std = tape.softplus(raw);
                    let (n, e) = (tape.value(std).rows, tape.value(std).cols);
                    let eps = Matrix::from_vec(
                        n,
                        e,
                        (0..n * e).map(|_| StandardNormal.sample(rng)).collect(),
                    );
                    let eps = tape.input(&eps);
                    let noise = tape.mul(std, eps);
                    tape.add(clean, noise)
                } else {
                    clean
                };
                let _ = c;
                tape.topk_softmax(scores, k, &self.active)
            }
        }
    }

    /// Records a pass served by expert `e` alone: every node uses one expert.
    fn record_lone(&self, tape: &Tape, out: Var, e: usize) {
        let n = tape.value(out).rows;
        let k = self.experts.len();
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.counts = vec![1; n];
        s.selected = (0..n * k).map(|j| u8::from(j % k == e)).collect();
        if !tape.training {
            if s.histogram.len() != k {
                s.histogram = vec![0; k];
            }
            s.histogram[0] += n as u64;
        }
    }

    fn record(&self, tape: &Tape, w: Var, outs: &[Option<Var>]) {
        let wv = tape.value(w);
        let counts: Vec<u32> = (0..wv.rows)
            .map(|i| wv.row(i).iter().filter(|&&v| v > 0.0).count() as u32)
            .collect();
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.counts = counts;
        s.selected = wv.data.iter().map(|&v| u8::from(v > 0.0)).collect();
        if !tape.training {
            let st = &mut *s;
            if st.histogram.len() != outs.len() {
                st.histogram = vec![0; outs.len()];
            }
            for &c in &st.counts {
                if c >= 1 {
                    st.histogram[c as usize - 1] += 1;
                }
            }
            return;
        }
        if s.contribution.len() != outs.len() {
            s.contribution = vec![0.0; outs.len()];
        }
        for (e, o) in outs.iter().enumerate() {
            if let Some(o) = o {
                let h = tape.value(*o);
                let mut acc = vec![0.0f64; h.cols];
                for i in 0..h.rows {
                    let wie = wv.row(i)[e] as f64;
                    if wie != 0.0 {
                        for (a, &x) in acc.iter_mut().zip(h.row(i)) {
                            *a += wie * x as f64;
                        }
                    }
                }
                s.contribution[e] += acc.iter().map(|a| a * a).sum::<f64>().sqrt();
            }
        }
        s.steps += 1;
    }
}

/// Identifies a feature matrix by its allocation (new features, new cache entries).
fn features_id(x: &Features) -> usize {
    match x {
        Features::Dense(m) => Arc::as_ptr(m) as usize,
        Features::Sparse(s) => Arc::as_ptr(s) as usize,
    }
}

impl Architecture for Sagmm {
    fn moe(&self) -> Option<&Sagmm> {
        Some(self)
    }

    fn moe_mut(&mut self) -> Option<&mut Sagmm> {
        Some(self)
    }

    fn forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        embed: bool,
    ) -> Var {
        self.run(tape, params, x, graph, rng, embed).out
    }

    fn forward_output(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
    ) -> ModelOutput {
        self.run(tape, params, x, graph, rng, false)
    }
}

impl Sagmm {
    /// The pass: logits (or with `embed` the mixture entering the head), the gate's
    /// regularisers, and in training each expert's logits through the shared head.
    fn run(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        embed: bool,
    ) -> ModelOutput {
        debug_assert_eq!(x.cols(), self.in_dim);
        let total = graph.num_blocks();
        let mut outs = self.expert_outputs(tape, params, x, graph, rng);
        // Graph level: every expert is pooled per graph, and all that follows (gate, mixture,
        // head, expert supervision) works on one row per graph.
        let graph_level = match (self.readout, graph.segments()) {
            (Some(pool), Some(seg)) => {
                for o in outs.iter_mut().flatten() {
                    *o = seg.pool(tape, *o, pool);
                }
                true
            }
            _ => false,
        };
        let mut aux_losses = Vec::new();
        let live = self.active.iter().filter(|&&a| a).count();
        let mix = if self.experts.len() == 1 || live == 1 {
            // A single expert trained alone (the baseline the mixture is compared with), or a
            // mixture pruned to one: no gate, the expert's output goes straight to the head
            // (a gate of one would only scale it).
            let (e, o) = outs
                .iter()
                .enumerate()
                .find_map(|(e, o)| o.map(|o| (e, o)))
                .expect("a mixture keeps at least one expert");
            self.record_lone(tape, o, e);
            o
        } else {
            let gi = self.gate_input(x, graph);
            let rows = if graph_level {
                gi.rows
            } else {
                expert::output_rows(graph, total).unwrap_or(gi.rows)
            };
            assert_eq!(
                gi.rows, rows,
                "SAGMM gate input has {} rows, the pass outputs {rows}",
                gi.rows
            );
            let g = tape.constant(&gi);
            let w = self.gate(tape, params, g, rng);
            aux_losses = self.aux_losses(tape, params, w);
            self.record(tape, w, &outs);
            tape.mix_experts(w, &outs)
        };
        if embed {
            return ModelOutput {
                out: mix,
                aux_losses,
                aux_outputs: Vec::new(),
            };
        }
        let head = self
            .head
            .map(|(w, b)| (tape.param(params, w), tape.param(params, b)));
        let apply = |tape: &mut Tape, o: Var| match head {
            Some((hw, hb)) => {
                let z = tape.matmul(o, hw);
                tape.add_bias(z, hb)
            }
            None => o,
        };
        let mut aux_outputs = Vec::new();
        if tape.training && self.cfg.expert_loss > 0.0 && live > 1 && !self.frozen {
            // Each expert alone through the shared head, scored by the trainer: every expert
            // must classify on its own, so the mixture weighs classifiers, not features that
            // only work together (see docs/sagmm.md, expert supervision).
            let active: Vec<Var> = outs.iter().flatten().copied().collect();
            let w = self.cfg.expert_loss / active.len() as f32;
            for o in active {
                aux_outputs.push((apply(tape, o), w));
            }
        }
        ModelOutput {
            out: apply(tape, mix),
            aux_losses,
            aux_outputs,
        }
    }
}

/// The registry's entry.
pub const SPEC: ModelSpec = ModelSpec {
    name: "sagmm",
    aliases: &[],
    about: "SAGMM: a self-adaptive mixture of GNN experts",
    knobs: &[Knob::Heads, Knob::Hops, Knob::BatchNorm, Knob::VirtualNode],
    depth: Depth::Layers,
    steps: Steps::One,
    // The expert pool uses every operator.
    operators: &[
        Operator::Gcn,
        Operator::Cheb,
        Operator::Mean,
        Operator::Sum,
        Operator::Attention,
    ],
    blocks: true,
    layerwise: false,
    mixture: true,
    build: |cfg, params, rng| Box::new(Sagmm::new(cfg, params, rng)),
    size,
    expert: None,
};

/// The sum of the experts' estimates, each as the standalone model of its name.
fn size(cfg: &ModelConfig) -> SizeShape {
    let kinds: Vec<ModelKind> = if cfg.moe.identical {
        vec![ModelKind::DEFAULT; cfg.moe.experts]
    } else {
        cfg.moe
            .pool
            .iter()
            .take(cfg.moe.experts.max(1))
            .filter_map(|k| k.name().parse().ok())
            .collect()
    };
    let mut total = SizeShape::default();
    for k in kinds {
        total.add(&(k.spec().size)(cfg));
    }
    total
}

/// Columns of the per-graph structural descriptor the graph-level gate reads.
const GRAPH_DESCRIPTORS: usize = 2;

/// The graph-level gate input: per graph of `seg`, the mean of its rows' input features, then
/// `ln(1 + nodes)` and `ln(1 + mean in-degree)`.
fn graph_gate_input(x: &Features, graph: &GraphCtx, seg: &crate::Segments) -> Matrix {
    let f = x.cols();
    let g = seg.num_graphs();
    let ptr = seg.ptr();
    let mut m = Matrix::zeros(g, f + GRAPH_DESCRIPTORS);
    let deg = graph.row_degrees(seg.num_rows());
    for k in 0..g {
        let (a, b) = (ptr[k], ptr[k + 1]);
        let n = (b - a).max(1) as f32;
        let row = m.row_mut(k);
        match x {
            Features::Dense(d) => {
                for r in a..b {
                    for (o, &v) in row[..f].iter_mut().zip(d.row(r)) {
                        *o += v / n;
                    }
                }
            }
            Features::Sparse(s) => {
                for r in a..b {
                    for i in s.indptr[r]..s.indptr[r + 1] {
                        row[s.indices[i] as usize] += s.weights[i] / n;
                    }
                }
            }
        }
        let d: f32 = deg[a..b].iter().map(|&v| v as f32).sum::<f32>() / n;
        row[f] = (1.0 + (b - a) as f32).ln();
        row[f + 1] = (1.0 + d).ln();
    }
    m
}
