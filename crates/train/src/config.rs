//! `RunConfig`: every setting of a training run in one struct — what the CLI flags, a TOML
//! file (keys = flag names, with `-` or `_`), the Python package and a checkpoint all map
//! onto. Unset keys take their defaults in one place (the accessors below); `check` refuses
//! bad values and keys that do not apply to the run, naming the key, before anything is
//! written; `resolved` fills every applicable key, which is what a run directory records
//! and what `--config` reads back unchanged.

use std::path::{Path, PathBuf};

use scalegnn_nn::moe::expert::{self, ExpertForm};
use scalegnn_nn::moe::{GateKind, MoeConfig};
use scalegnn_nn::registry::{Depth, Knob};
use scalegnn_nn::{ModelConfig, ModelKind};
use serde::{Deserialize, Serialize};

/// A setting that cannot be used, named by its key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

fn bad(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// How the trainer sees the graph each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoaderKind {
    /// The whole graph every step.
    Full,
    /// Sampled neighbourhoods of a batch of seeds (PyG's NeighborLoader).
    Neighbor,
    /// Batches of whole graphs of a graph collection (PyG's DataLoader over a dataset).
    Graphs,
    /// Subgraphs induced by partition clusters (ClusterGCN, PyG's ClusterLoader).
    Cluster,
}

/// Which rule keeps the model and drives early stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Selection {
    /// The epoch with the best validation metric; patience counts epochs since it.
    #[default]
    Best,
    /// The GAT paper's rule: patience counts epochs in which neither the validation metric
    /// nor the validation loss reached a new best; the kept model is the last at which both did.
    BestAndLoss,
}

/// Every setting of a run. `None` means "the default" (see the accessors); after
/// [`RunConfig::resolved`] every key that applies to the run is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Dataset directory (a config file may name it; the command line's wins).
    #[cfg_attr(feature = "clap", arg(skip))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<PathBuf>,
    /// Model (the registry's names; `--help` lists them).
    #[cfg_attr(feature = "clap", arg(long, help = model_help()))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Hidden width (default 16).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<usize>,
    /// Number of layers (default 2; with --fanouts and no --layers, one per fan-out).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<usize>,
    /// Dropout probability, in [0, 1) (default 0.5).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f32>,
    /// Adam learning rate, > 0 (default 0.01).
    #[cfg_attr(feature = "clap", arg(long, allow_hyphen_values = true))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f32>,
    /// L2 weight decay added to the gradient, as torch.optim.Adam (default 5e-4).
    #[cfg_attr(feature = "clap", arg(long, allow_hyphen_values = true))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "weight-decay"
    )]
    pub weight_decay: Option<f32>,
    /// Training epochs (default 200).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    /// Stop after this many epochs without a better validation metric (default: never).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
    /// Model selection: best (the best validation --metric, default) or best_and_loss (the
    /// GAT paper's rule: patience counts epochs improving neither the metric nor the loss).
    /// val_acc and val_acc_loss are accepted as their old names.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<String>,
    /// Metric that selects the checkpoint: acc, macro_f1, roc_auc, ap (classification), mse,
    /// mae, rmse (regression); default acc, roc_auc for binary and multi-label sets, rmse
    /// for regression.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// What to learn: node (the node labels, default when the dataset has them) or link
    /// (link prediction on the dataset's edge split: `scalegnn split-edges`; default when it
    /// has one and no node labels).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Link prediction: the pair decoder, dot (the dot product of the two embeddings,
    /// default) or mlp (their Hadamard product through a two-layer MLP).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder: Option<String>,
    /// Link prediction on sampled batches: leave each training batch's positive edges out of
    /// its sampled blocks (default true), so a pair's own edge is not among its messages.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "exclude-targets"
    )]
    pub exclude_targets: Option<bool>,
    /// Link prediction: negatives drawn per training positive (default 1).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negatives: Option<usize>,
    /// Link prediction: how training negatives are drawn, uniform (default) or degree
    /// (destinations with probability ∝ degree^0.75).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "negative-sampling"
    )]
    pub negative_sampling: Option<String>,
    /// Graph-level tasks: how each graph's node outputs become one row, sum, mean, max or
    /// attention (gated global attention; default sum).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readout: Option<String>,
    /// Graph-level tasks: pool the input features and every layer's output, each through its
    /// own linear map, and sum them (Xu et al.'s GIN readout; default false: the last layer
    /// through a two-layer MLP head).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "jk-readout")]
    pub jk_readout: Option<bool>,
    /// Graph-level tasks: a virtual node per graph, joined to all its nodes, whose state is
    /// added to every layer's input after the first and updated by an MLP (OGB's GIN-virtual;
    /// gcn, sage, gin, gine, and each of SAGMM's experts; default false).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "virtual-node"
    )]
    pub virtual_node: Option<bool>,
    /// Graph-level tasks: K-fold stratified cross-validation (seeded by --seed); run k tests
    /// on fold k, mean ± std is reported.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv: Option<usize>,
    /// With --cv: fair (Errica et al. 2020: a stratified 10 % of the training folds selects
    /// the epoch, the test fold is untouched; default) or gin (Xu et al. 2019: the epoch of
    /// best mean accuracy over the test folds; optimistic, for comparison with that paper).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "cv-protocol"
    )]
    pub cv_protocol: Option<String>,
    /// Multiply the learning rate by lr_gamma every this many epochs (step decay; default
    /// none).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "lr-step")]
    pub lr_step: Option<usize>,
    /// Factor of the step decay (default 0.5).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "lr-gamma")]
    pub lr_gamma: Option<f32>,
    /// Random seed (initialisation, dropout, sampling; default 0).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Runs with seeds seed, seed+1, … (and, on a dataset with several official splits,
    /// splits split, split+1, …); mean ± std is reported (default 1; with cv, every fold).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<usize>,
    /// Which official split of a dataset that has several (train_idx.npy [S, *] or
    /// *_masks.npy [S, N]); default 0.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<usize>,
    /// Divide each feature row by its sum clamped at 1 (PyG's NormalizeFeatures; default true
    /// for loader full, false for neighbor).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "normalize-features"
    )]
    pub normalize_features: Option<bool>,
    /// Dropout on the input features (default: --dropout; 0 for sagmm).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "input-dropout"
    )]
    pub input_dropout: Option<f32>,
    /// Attention heads (gat, and sagmm's gat expert; default 8).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
    /// Dropout on attention coefficients (gat, sagmm; default: --dropout).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "attn-dropout"
    )]
    pub attn_dropout: Option<f32>,
    /// Propagation hops: SGC's K, ChebNet's K, MixHop's largest power (default 2).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hops: Option<usize>,
    /// Batch norm inside GIN's MLP (gin, sagmm; default false, as PyG's GIN).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "batch-norm")]
    pub batch_norm: Option<bool>,
    /// full (the whole graph every step, default) or neighbor (sampled mini-batches).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loader: Option<String>,
    /// Neighbours per hop, seeds' hop first, e.g. 15,10,5 (-1 = all); one per propagation
    /// step (default 15, 10, 5, then 5).
    #[cfg_attr(
        feature = "clap",
        arg(long, value_delimiter = ',', allow_hyphen_values = true)
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fanouts: Option<Vec<i64>>,
    /// Seed nodes per mini-batch (default 1024).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "batch-size")]
    pub batch_size: Option<usize>,
    /// Fan-outs for validation/test batches (default: --fanouts).
    #[cfg_attr(
        feature = "clap",
        arg(long, value_delimiter = ',', allow_hyphen_values = true)
    )]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "eval-fanouts"
    )]
    pub eval_fanouts: Option<Vec<i64>>,
    /// Seed nodes per evaluation batch (default 4096).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "eval-batch-size"
    )]
    pub eval_batch_size: Option<usize>,
    /// Evaluate on a fixed random subset of at most this many val/test nodes.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "eval-max")]
    pub eval_max: Option<usize>,
    /// Prepared batches queued ahead of the trainer (default 2).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefetch: Option<usize>,
    /// Training batches per epoch at most (profiling).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "max-batches"
    )]
    pub max_batches: Option<usize>,
    /// Feature store to read: mmap, sqlite, postgres (default: the one the manifest names).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Codec of the store to read: f32, f16, u8 (default: the manifest's).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    /// Heap for features (batch buffers, prefetch queue, cache), e.g. 2GiB: the cache and
    /// queue depth are derived from it; the run refuses to start when one batch cannot fit.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "mem-budget")]
    pub mem_budget: Option<String>,
    /// Feature cache rows (90 % hub tier by in-degree, 10 % CLOCK), without a budget.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "cache-rows")]
    pub cache_rows: Option<usize>,
    /// Read the mmap or sqlite store with direct I/O, past the page cache (features larger
    /// than memory: pair it with --mem-budget so the cache holds what memory allows).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "direct-io")]
    pub direct_io: Option<bool>,
    /// PostgreSQL server of a postgres store, postgres://USER[:PASSWORD]@HOST:PORT/DB
    /// (default: $SCALEGNN_PG_URL, then the server recorded at ingest). Never written to
    /// the run directory.
    #[cfg_attr(feature = "clap", arg(long, value_name = "URL"))]
    #[serde(default, skip_serializing, alias = "pg-url")]
    pub pg_url: Option<String>,
    /// Threads sampling and gathering features ahead of training (default 4).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "io-threads")]
    pub io_threads: Option<usize>,
    /// Final val/test metrics by exact layer-wise inference (full neighbourhoods, every
    /// layer for every node) instead of sampled batches (models that run layer by layer).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "exact-eval")]
    pub exact_eval: Option<bool>,
    /// ClusterGCN (`loader = cluster`): the partition to batch by, as made by
    /// `scalegnn partition DATASET --parts P`.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<usize>,
    /// ClusterGCN: partition clusters per batch (default 1, as PyG's ClusterLoader).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "clusters-per-batch"
    )]
    pub clusters_per_batch: Option<usize>,
    /// SAGMM: how many experts of the pool (the first E; default all of it).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experts: Option<usize>,
    /// SAGMM: the expert architectures, in order (default gcn,gat,sage,sgc,jk,cheb,gin,mixhop);
    /// one name trains that expert alone (the single-expert baseline).
    #[cfg_attr(feature = "clap", arg(long, value_delimiter = ','))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "expert-pool"
    )]
    pub expert_pool: Option<Vec<String>>,
    /// SAGMM gate: taag (attention gate + learnable threshold, default), top1 or top2 (noisy
    /// top-k ablation).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    /// SAGMM: experts as convolutions in a common wrapper with one head (`wrapped`, default)
    /// or as the registry's standalone models mixed at their outputs (`standalone`).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "expert-form"
    )]
    pub expert_form: Option<String>,
    /// SAGMM ablation: every expert a GCN.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "identical-experts"
    )]
    pub identical_experts: Option<bool>,
    /// SAGMM: Laplacian eigenvectors in the gate input (default 8, at most 256).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "gate-eigvecs"
    )]
    pub gate_eigvecs: Option<usize>,
    /// SAGMM: weight of the load-balance loss, CV² of the experts' total weights (default 0.01).
    #[cfg_attr(feature = "clap", arg(long, allow_hyphen_values = true))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "load-balance"
    )]
    pub load_balance: Option<f32>,
    /// SAGMM: weight of the gate-diversity loss (default 0.01).
    #[cfg_attr(feature = "clap", arg(long, allow_hyphen_values = true))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diversity: Option<f32>,
    /// SAGMM: weight of the expert-supervision loss, each expert's output through the head
    /// scored against the labels (default 0.5; 0 turns it off).
    #[cfg_attr(feature = "clap", arg(long, allow_hyphen_values = true))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "expert-loss"
    )]
    pub expert_loss: Option<f32>,
    /// SAGMM: prune experts that stop contributing (default true).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<bool>,
    /// SAGMM: epochs between pruning decisions (default 20).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "prune-interval"
    )]
    pub prune_interval: Option<usize>,
    /// SAGMM: starting pruning factor; experts below mean importance × factor go (default 0.5).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "prune-factor"
    )]
    pub prune_factor: Option<f32>,
    /// SAGMM: never prune below this many experts (default 2).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "min-experts"
    )]
    pub min_experts: Option<usize>,
    /// SAGMM: keep a pruning candidate whose removal would cost more than this much of the
    /// validation metric, a fraction (default 0.005; 1 turns the check off).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "prune-tolerance"
    )]
    pub prune_tolerance: Option<f32>,
    /// SAGMM: one input Linear shared by every expert instead of one each (default false).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "shared-input"
    )]
    pub shared_input: Option<bool>,
    /// SAGMM: initial gate threshold of every expert, in (0, 1) (default 0.5: τ = 0); a node
    /// starts out using the experts whose gate score is above it.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "gate-threshold"
    )]
    pub gate_threshold: Option<f32>,
    /// SAGMM: after training, prune the kept mixture to its single best expert when that
    /// expert alone scores higher on the validation split (default true; false is the
    /// method as described).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "best-expert"
    )]
    pub best_expert: Option<bool>,
    /// SAGMM-PE: pretrain the experts on a share of the training labels, freeze them, and
    /// train only the gate and head on the rest (default false).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "pretrain-experts"
    )]
    pub pretrain_experts: Option<bool>,
    /// SAGMM-PE: share of the training nodes the experts are pretrained on (default 0.5).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "pretrain-share"
    )]
    pub pretrain_share: Option<f32>,
    /// SAGMM-PE: pretraining epochs (default half of --epochs).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "pretrain-epochs"
    )]
    pub pretrain_epochs: Option<usize>,
}

/// Keys that only the neighbour loader reads.
const NEIGHBOR_KEYS: &[&str] = &[
    "fanouts",
    "batch_size",
    "eval_fanouts",
    "eval_batch_size",
    "eval_max",
    "prefetch",
    "max_batches",
    "mem_budget",
    "cache_rows",
    "direct_io",
    "io_threads",
    "exact_eval",
];

/// Keys that only SAGMM reads.
const SAGMM_KEYS: &[&str] = &[
    "experts",
    "expert_pool",
    "expert_form",
    "gate",
    "identical_experts",
    "gate_eigvecs",
    "load_balance",
    "diversity",
    "expert_loss",
    "prune",
    "prune_interval",
    "prune_factor",
    "min_experts",
    "prune_tolerance",
    "shared_input",
    "gate_threshold",
    "best_expert",
    "pretrain_experts",
    "pretrain_share",
    "pretrain_epochs",
];

impl RunConfig {
    /// Reads a TOML file; unknown keys and bad types are errors naming the key and file.
    pub fn load(path: &Path) -> Result<RunConfig, ConfigError> {
        use std::io::Read;
        let mut text = String::new();
        let f = std::fs::File::open(path)
            .map_err(|e| bad(&path.display().to_string(), e.to_string()))?;
        // A run config is a few KiB; 16 MiB is not one.
        f.take(16 << 20)
            .read_to_string(&mut text)
            .map_err(|e| bad(&path.display().to_string(), e.to_string()))?;
        RunConfig::from_toml(&text).map_err(|mut e| {
            e.key = format!("{}: {}", path.display(), e.key);
            e
        })
    }

    /// Parses TOML text (keys with `-` or `_`).
    pub fn from_toml(text: &str) -> Result<RunConfig, ConfigError> {
        toml::from_str(text).map_err(|e| bad("config", e.message().to_string()))
    }

    /// The configuration as TOML (what `config.toml` holds).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// `self` with every unset key taken from `base`.
    pub fn or(self, base: RunConfig) -> RunConfig {
        macro_rules! merge {
            ($($f:ident),* $(,)?) => { RunConfig { $($f: self.$f.or(base.$f)),* } };
        }
        merge!(
            dataset,
            model,
            hidden,
            layers,
            dropout,
            lr,
            weight_decay,
            epochs,
            patience,
            select,
            metric,
            task,
            decoder,
            exclude_targets,
            negatives,
            negative_sampling,
            readout,
            jk_readout,
            virtual_node,
            cv,
            cv_protocol,
            lr_step,
            lr_gamma,
            seed,
            runs,
            split,
            normalize_features,
            input_dropout,
            heads,
            attn_dropout,
            hops,
            batch_norm,
            loader,
            fanouts,
            batch_size,
            eval_fanouts,
            eval_batch_size,
            eval_max,
            prefetch,
            max_batches,
            store,
            codec,
            mem_budget,
            cache_rows,
            direct_io,
            pg_url,
            io_threads,
            exact_eval,
            parts,
            clusters_per_batch,
            experts,
            expert_pool,
            expert_form,
            gate,
            identical_experts,
            gate_eigvecs,
            load_balance,
            diversity,
            expert_loss,
            prune,
            prune_interval,
            prune_factor,
            min_experts,
            prune_tolerance,
            shared_input,
            gate_threshold,
            best_expert,
            pretrain_experts,
            pretrain_share,
            pretrain_epochs,
        )
    }

    // ---- resolved values (the defaults live here, once) -----------------------------------

    /// The model's kind (after [`RunConfig::check`], never an error).
    pub fn model_kind(&self) -> Result<ModelKind, ConfigError> {
        self.model
            .as_deref()
            .unwrap_or("gcn")
            .parse()
            .map_err(|e: scalegnn_nn::NnError| bad("model", e.to_string()))
    }
    fn kind(&self) -> ModelKind {
        self.model_kind().unwrap_or(ModelKind::DEFAULT)
    }
    /// Link prediction: sampled training batches leave their target edges out.
    pub fn exclude_targets(&self) -> bool {
        self.exclude_targets.unwrap_or(true)
    }
    /// Link prediction: training negatives per positive.
    pub fn negatives(&self) -> usize {
        self.negatives.unwrap_or(1)
    }
    /// Link prediction: how training negatives are drawn.
    pub fn negative_kind(&self) -> scalegnn_sample::NegativeKind {
        self.negative_sampling
            .as_deref()
            .and_then(|n| n.parse().ok())
            .unwrap_or(scalegnn_sample::NegativeKind::Uniform)
    }
    /// Hidden width.
    pub fn hidden(&self) -> usize {
        self.hidden.unwrap_or(16)
    }
    /// Layers: given, else one per fan-out where each layer takes one hop, else 2.
    pub fn layers(&self) -> usize {
        self.layers
            .or_else(|| {
                let f = self.fanouts.as_ref()?;
                (self.kind().blocks_per_layer(self.hops()) == 1
                    && self.kind().spec().depth == Depth::Layers)
                    .then_some(f.len())
            })
            .unwrap_or(2)
    }
    /// Dropout.
    pub fn dropout(&self) -> f32 {
        self.dropout.unwrap_or(0.5)
    }
    /// Learning rate.
    pub fn lr(&self) -> f32 {
        self.lr.unwrap_or(0.01)
    }
    /// Weight decay.
    pub fn weight_decay(&self) -> f32 {
        self.weight_decay.unwrap_or(5e-4)
    }
    /// Epochs.
    pub fn epochs(&self) -> usize {
        self.epochs.unwrap_or(200)
    }
    /// Selection rule.
    pub fn selection(&self) -> Selection {
        match self.select.as_deref() {
            Some("best_and_loss" | "val_acc_loss") => Selection::BestAndLoss,
            _ => Selection::Best,
        }
    }
    /// Seed of the first run.
    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or(0)
    }
    /// Runs.
    pub fn runs(&self) -> usize {
        self.runs.or(self.cv).unwrap_or(1)
    }
    /// First official split.
    pub fn split(&self) -> usize {
        self.split.unwrap_or(0)
    }
    /// Row-normalised features: by default on the whole graph (the GCN paper's recipe, PyG's
    /// NormalizeFeatures), off for sampled batches (PyG's products recipe).
    pub fn normalize_features(&self) -> bool {
        self.normalize_features
            .unwrap_or(self.loader_kind() == LoaderKind::Full)
    }
    /// Input dropout: SAGMM's experts take the features undropped unless asked (with dropout
    /// 0.5 on the input, Cora fell from 80.2 to 73.8 %, 3 seeds).
    pub fn input_dropout(&self) -> f32 {
        // Graph-level inputs are mostly one-hot node labels (atom types): GIN and PyG's GIN
        // example drop none of them. With 0.5 on MUTAG's 7 atom labels GIN's training loss
        // stayed at 0.5 for 350 epochs (0.18 at epoch 30 without it, fold 0).
        self.input_dropout
            .unwrap_or(if self.kind().is_mixture() || self.graph_level() {
                0.0
            } else {
                self.dropout()
            })
    }
    /// Attention heads.
    pub fn heads(&self) -> usize {
        self.heads.unwrap_or(8)
    }
    /// Attention dropout.
    pub fn attn_dropout(&self) -> f32 {
        self.attn_dropout.unwrap_or(self.dropout())
    }
    /// Hops.
    pub fn hops(&self) -> usize {
        self.hops.unwrap_or(2)
    }
    /// GIN's batch norm.
    pub fn batch_norm(&self) -> bool {
        self.batch_norm.unwrap_or(false)
    }
    /// The loader.
    pub fn loader_kind(&self) -> LoaderKind {
        match self.loader.as_deref() {
            Some("neighbor") => LoaderKind::Neighbor,
            Some("graphs") => LoaderKind::Graphs,
            Some("cluster") => LoaderKind::Cluster,
            _ => LoaderKind::Full,
        }
    }
    /// Sampled propagation steps one forward pass takes.
    pub fn num_blocks(&self) -> usize {
        self.kind().num_blocks(self.layers(), self.hops())
    }
    /// Fan-outs: given, else PyG's 15, 10, 5 (then 5) cut to one per step.
    pub fn fanouts(&self) -> Vec<i64> {
        self.fanouts.clone().unwrap_or_else(|| {
            (0..self.num_blocks())
                .map(|l| [15, 10, 5].get(l).copied().unwrap_or(5))
                .collect()
        })
    }
    /// Seeds per batch.
    pub fn batch_size(&self) -> usize {
        let default = if self.loader_kind() == LoaderKind::Graphs {
            32
        } else {
            1024
        };
        self.batch_size.unwrap_or(default)
    }
    /// Evaluation fan-outs.
    pub fn eval_fanouts(&self) -> Vec<i64> {
        self.eval_fanouts.clone().unwrap_or_else(|| self.fanouts())
    }
    /// Seeds per evaluation batch.
    pub fn eval_batch_size(&self) -> usize {
        let default = if self.loader_kind() == LoaderKind::Graphs {
            512
        } else {
            4096
        };
        self.eval_batch_size.unwrap_or(default)
    }
    /// Prefetch depth.
    pub fn prefetch(&self) -> usize {
        self.prefetch.unwrap_or(2)
    }
    /// Prefetch threads.
    pub fn io_threads(&self) -> usize {
        self.io_threads.unwrap_or(4)
    }
    /// Whether the run learns one output per graph.
    pub fn graph_level(&self) -> bool {
        self.task.as_deref() == Some("graph") || self.loader_kind() == LoaderKind::Graphs
    }
    /// The graph readout (graph-level tasks).
    pub fn readout(&self) -> scalegnn_nn::Pool {
        self.readout
            .as_deref()
            .and_then(|r| r.parse().ok())
            .unwrap_or(scalegnn_nn::Pool::Sum)
    }
    /// Cross-validation protocol: true for the GIN paper's (selection on the test folds).
    pub fn cv_gin(&self) -> bool {
        self.cv_protocol.as_deref() == Some("gin")
    }
    /// The learning rate of `epoch` (1-based) under the step decay.
    pub fn lr_at(&self, epoch: usize) -> f32 {
        match self.lr_step {
            Some(step) if step > 0 => {
                let k = (epoch.saturating_sub(1) / step).min(i32::MAX as usize) as i32;
                self.lr() * self.lr_gamma.unwrap_or(0.5).powi(k)
            }
            _ => self.lr(),
        }
    }
    /// Exact layer-wise final evaluation.
    pub fn exact_eval(&self) -> bool {
        self.exact_eval.unwrap_or(false)
    }
    /// ClusterGCN's clusters per batch.
    pub fn clusters_per_batch(&self) -> usize {
        self.clusters_per_batch.unwrap_or(1)
    }
    /// True for the loaders that gather batches from the feature store through the cache
    /// and prefetcher (neighbour sampling and ClusterGCN).
    pub fn is_sampled(&self) -> bool {
        matches!(
            self.loader_kind(),
            LoaderKind::Neighbor | LoaderKind::Cluster
        )
    }
    /// Direct I/O.
    pub fn direct_io(&self) -> bool {
        self.direct_io.unwrap_or(false)
    }

    /// SAGMM's knobs (defaults for unset keys; [`RunConfig::check`] has refused bad ones).
    pub fn moe(&self) -> MoeConfig {
        let d = MoeConfig::default();
        let pool: Vec<ModelKind> = match &self.expert_pool {
            Some(names) => names.iter().filter_map(|n| expert::parse(n)).collect(),
            None => d.pool.clone(),
        };
        MoeConfig {
            experts: self.experts.unwrap_or(pool.len()),
            pool,
            form: self
                .expert_form
                .as_deref()
                .and_then(|f| f.parse::<ExpertForm>().ok())
                .unwrap_or(d.form),
            identical: self.identical_experts.unwrap_or(d.identical),
            gate: self
                .gate
                .as_deref()
                .and_then(|g| g.parse::<GateKind>().ok())
                .unwrap_or(d.gate),
            threshold: self.gate_threshold.unwrap_or(d.threshold),
            eig_k: self.gate_eigvecs.unwrap_or(d.eig_k),
            shared_input: self.shared_input.unwrap_or(d.shared_input),
            w_imp: self.load_balance.unwrap_or(d.w_imp),
            w_div: self.diversity.unwrap_or(d.w_div),
            expert_loss: self.expert_loss.unwrap_or(d.expert_loss),
            prune: self.prune.unwrap_or(d.prune),
            prune_interval: self.prune_interval.unwrap_or(d.prune_interval),
            prune_factor: self.prune_factor.unwrap_or(d.prune_factor),
            min_experts: self.min_experts.unwrap_or(d.min_experts),
            prune_tolerance: self.prune_tolerance.unwrap_or(d.prune_tolerance),
            best_expert: self.best_expert.unwrap_or(d.best_expert),
            pruned: Vec::new(),
            pretrain: self.pretrain_experts.unwrap_or(d.pretrain),
            pretrain_share: self.pretrain_share.unwrap_or(d.pretrain_share),
            pretrain_epochs: self.pretrain_epochs.unwrap_or((self.epochs() / 2).max(1)),
            // Recorded by the task, so a reloaded checkpoint rebuilds the model it trained:
            // link prediction scores embeddings (plain last convolutions, a random head);
            // graph-level tasks pool them.
            random_head: self.task.as_deref() == Some("link") || self.graph_level(),
        }
    }

    /// The model this run trains for `in_dim` inputs and `out_dim` outputs.
    pub fn model_config(&self, in_dim: usize, out_dim: usize) -> ModelConfig {
        ModelConfig {
            input_dropout: self.input_dropout(),
            heads: self.heads(),
            attn_dropout: self.attn_dropout(),
            hops: self.hops(),
            batch_norm: self.batch_norm(),
            moe: self.moe(),
            mlp_decoder: self.decoder.as_deref() == Some("mlp"),
            readout: self.graph_level().then(|| self.readout()),
            jk_readout: self.graph_level() && self.jk_readout.unwrap_or(false),
            virtual_node: self.graph_level() && self.virtual_node.unwrap_or(false),
            ..ModelConfig::new(
                self.kind(),
                in_dim,
                self.hidden(),
                out_dim,
                self.layers(),
                self.dropout(),
            )
        }
    }

    // ---- checks ---------------------------------------------------------------------------

    /// Refuses bad values and keys that do not apply to this run, naming the key. Needs no
    /// dataset: everything here is known from the configuration alone.
    pub fn check(&self) -> Result<(), ConfigError> {
        let kind = self.model_kind()?;
        let positive = |key: &str, v: Option<usize>| match v {
            Some(0) => Err(bad(
                key,
                "must be at least 1 (leave it out for the default)",
            )),
            _ => Ok(()),
        };
        for (key, v) in [
            ("hidden", self.hidden),
            ("layers", self.layers),
            ("epochs", self.epochs),
            ("patience", self.patience),
            ("runs", self.runs),
            ("heads", self.heads),
            ("hops", self.hops),
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
            ("eval_max", self.eval_max),
            ("prefetch", self.prefetch),
            ("max_batches", self.max_batches),
            ("io_threads", self.io_threads),
            ("cache_rows", self.cache_rows),
            ("experts", self.experts),
            ("min_experts", self.min_experts),
            ("prune_interval", self.prune_interval),
            ("pretrain_epochs", self.pretrain_epochs),
            ("negatives", self.negatives),
            ("lr_step", self.lr_step),
        ] {
            positive(key, v)?;
        }
        if let Some(k) = self.cv.filter(|&k| k < 2) {
            return Err(bad(
                "cv",
                format!("{k} folds: cross-validation needs at least 2"),
            ));
        }
        if let Some(g) = self
            .lr_gamma
            .filter(|g| !(g.is_finite() && *g > 0.0 && *g <= 1.0))
        {
            return Err(bad("lr_gamma", format!("{g} is not in (0, 1]")));
        }
        if self.lr_gamma.is_some() && self.lr_step.is_none() {
            return Err(bad("lr_gamma", "needs lr_step (the epochs between decays)"));
        }
        if let Some(r) = &self.readout {
            r.parse::<scalegnn_nn::Pool>()
                .map_err(|e| bad("readout", e))?;
        }
        if self.jk_readout == Some(true) && self.readout() == scalegnn_nn::Pool::Attention {
            return Err(bad(
                "jk_readout",
                "reads every layer through sum, mean or max pooling; attention is for the last layer",
            ));
        }
        if let Some(p) = &self.cv_protocol {
            if !matches!(p.as_str(), "fair" | "gin") {
                return Err(bad(
                    "cv_protocol",
                    format!("unknown protocol `{p}` (fair, gin)"),
                ));
            }
            if self.cv.is_none() {
                return Err(bad("cv_protocol", "needs cv (the number of folds)"));
            }
        }
        if let Some(k) = self.cv {
            // Folds are splits: run r tests on fold split + r.
            if let Some(r) = self.runs.filter(|&r| r > k) {
                return Err(bad("runs", format!("{r} runs but cv has {k} folds")));
            }
            if let Some(f) = self.split.filter(|&f| f >= k) {
                return Err(bad(
                    "split",
                    format!("fold {f} is outside the {k} folds of cv"),
                ));
            }
        }
        if !self.graph_level() {
            for (key, given) in [
                ("readout", self.readout.is_some()),
                ("jk_readout", self.jk_readout.is_some()),
                ("virtual_node", self.virtual_node.is_some()),
                ("cv", self.cv.is_some()),
                ("cv_protocol", self.cv_protocol.is_some()),
            ] {
                if given {
                    return Err(bad(
                        key,
                        "applies to graph-level tasks (a graph collection)",
                    ));
                }
            }
        }
        if let Some(t) = &self.task {
            if !matches!(t.as_str(), "node" | "link" | "graph") {
                return Err(bad(
                    "task",
                    format!("unknown task `{t}` (node, link, graph)"),
                ));
            }
        }
        if let Some(d) = &self.decoder {
            if !matches!(d.as_str(), "dot" | "mlp") {
                return Err(bad("decoder", format!("unknown decoder `{d}` (dot, mlp)")));
            }
        }
        if let Some(n) = &self.negative_sampling {
            n.parse::<scalegnn_sample::NegativeKind>()
                .map_err(|e| bad("negative_sampling", e))?;
        }
        // Depth sizes per-layer lists (fan-outs, blocks) before any model is built: bounded
        // here so `layers × hops` cannot overflow or allocate from a config value. Deep GNNs
        // in the literature stay well below (DeeperGCN: 112 layers).
        for (key, v, max) in [("layers", self.layers, 1024), ("hops", self.hops, 64)] {
            if let Some(v) = v.filter(|&v| v > max) {
                return Err(bad(key, format!("{v} is more than {max}")));
            }
        }
        for (key, v) in [
            ("dropout", self.dropout),
            ("input_dropout", self.input_dropout),
            ("attn_dropout", self.attn_dropout),
        ] {
            if let Some(p) = v.filter(|p| !(0.0..1.0).contains(p)) {
                return Err(bad(key, format!("{p} is not a probability in [0, 1)")));
            }
        }
        if let Some(lr) = self.lr.filter(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(bad(
                "lr",
                format!("{lr} must be a finite number > 0 (a negative rate ascends the loss)"),
            ));
        }
        for (key, v) in [
            ("weight_decay", self.weight_decay),
            ("load_balance", self.load_balance),
            ("diversity", self.diversity),
            ("expert_loss", self.expert_loss),
        ] {
            if let Some(v) = v.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(bad(key, format!("{v} must be a finite weight ≥ 0")));
            }
        }
        match self.select.as_deref() {
            None | Some("best" | "best_and_loss" | "val_acc" | "val_acc_loss") => {}
            Some(s) => {
                return Err(bad(
                    "select",
                    format!("unknown rule `{s}` (expected best or best_and_loss)"),
                ))
            }
        }
        if let Some(m) = &self.metric {
            if !crate::scores::METRICS.contains(&m.as_str()) {
                return Err(bad(
                    "metric",
                    format!(
                        "unknown metric `{m}` (expected one of {})",
                        crate::scores::METRICS.join(", ")
                    ),
                ));
            }
        }
        if let Some(t) = self.io_threads {
            scalegnn_limits::check_threads("io_threads", t)
                .map_err(|e| bad("io_threads", e.to_string()))?;
        }
        if let Some(k) = self.gate_eigvecs.filter(|&k| k > 256) {
            // Lanczos keeps max(4k + 40, 64) vectors of n floats: bounded, so a typo cannot
            // ask for gigabytes.
            return Err(bad("gate_eigvecs", format!("{k} is more than 256")));
        }
        // Keys the run does not read are refused, not ignored.
        let given = self.given_keys();
        let loader = match self.loader.as_deref() {
            None | Some("full") => LoaderKind::Full,
            Some("neighbor") => LoaderKind::Neighbor,
            Some("graphs") => LoaderKind::Graphs,
            Some("cluster") => LoaderKind::Cluster,
            Some(other) => {
                return Err(bad(
                    "loader",
                    format!(
                        "unknown loader `{other}` (expected full, neighbor, graphs or cluster)"
                    ),
                ))
            }
        };
        const CLUSTER_KEYS: &[&str] = &["parts", "clusters_per_batch"];
        if loader != LoaderKind::Cluster {
            if let Some(k) = given.iter().find(|k| CLUSTER_KEYS.contains(k)) {
                return Err(bad(k, "is a ClusterGCN setting: it needs loader = cluster"));
            }
        } else {
            // Batches are whole clusters: the seed and fan-out settings do not apply.
            const SEED_KEYS: &[&str] =
                &["fanouts", "batch_size", "eval_fanouts", "eval_batch_size"];
            if let Some(k) = given.iter().find(|k| SEED_KEYS.contains(k)) {
                return Err(bad(
                    k,
                    "is a neighbour-sampling setting; loader cluster batches whole partition \
                     clusters (clusters_per_batch)",
                ));
            }
            match self.parts {
                None => {
                    return Err(bad(
                        "parts",
                        "loader cluster needs the partition to batch by: parts = P, after \
                         `scalegnn partition DATASET --parts P`",
                    ))
                }
                Some(0) => return Err(bad("parts", "must be at least 1")),
                Some(_) => {}
            }
            if self.clusters_per_batch == Some(0) {
                return Err(bad("clusters_per_batch", "must be at least 1"));
            }
            if self.task.as_deref() == Some("link") || self.task.as_deref() == Some("graph") {
                return Err(bad(
                    "loader",
                    "cluster batches train node tasks (link and graph tasks: not yet)",
                ));
            }
        }
        if loader == LoaderKind::Graphs {
            const GRAPH_KEYS: &[&str] =
                &["batch_size", "eval_batch_size", "prefetch", "io_threads"];
            if let Some(k) = given
                .iter()
                .find(|k| NEIGHBOR_KEYS.contains(k) && !GRAPH_KEYS.contains(k))
            {
                return Err(bad(
                    k,
                    "is a neighbour-sampling setting; graph batches hold whole graphs",
                ));
            }
            if kind.is_mixture() {
                // The mixture pools each expert with sum, mean or max and gates per graph.
                if self.readout() == scalegnn_nn::Pool::Attention || self.jk_readout == Some(true) {
                    return Err(bad(
                        if self.jk_readout == Some(true) {
                            "jk_readout"
                        } else {
                            "readout"
                        },
                        "SAGMM pools each expert's last layer with sum, mean or max",
                    ));
                }
                if self.pretrain_experts == Some(true) {
                    return Err(bad(
                        "pretrain_experts",
                        "pretrained experts (SAGMM-PE) are built for node tasks only",
                    ));
                }
            }
        }
        if loader == LoaderKind::Full {
            if let Some(k) = given.iter().find(|k| NEIGHBOR_KEYS.contains(k)) {
                return Err(bad(
                    k,
                    "is a mini-batch setting: it needs loader = neighbor (--loader neighbor)",
                ));
            }
        }
        if !kind.is_mixture() {
            if let Some(k) = given.iter().find(|k| SAGMM_KEYS.contains(k)) {
                return Err(bad(
                    k,
                    format!("is a SAGMM setting; model is {}", kind.name()),
                ));
            }
        }
        let uses = |k: &str| -> bool {
            match k {
                "heads" | "attn_dropout" => kind.uses(Knob::Heads),
                "hops" => kind.uses(Knob::Hops),
                "batch_norm" => kind.uses(Knob::BatchNorm),
                "virtual_node" => kind.uses(Knob::VirtualNode),
                _ => true,
            }
        };
        if let Some(k) = given.iter().find(|k| !uses(k)) {
            return Err(bad(k, format!("model {} does not use it", kind.name())));
        }
        if kind.spec().depth == Depth::One && self.layers.is_some_and(|l| l != 1) {
            return Err(bad(
                "layers",
                format!(
                    "{} is one layer (after --hops propagations); set hops instead",
                    kind.name()
                ),
            ));
        }
        if loader == LoaderKind::Neighbor {
            let steps = self.num_blocks();
            for (key, f) in [
                ("fanouts", &self.fanouts),
                ("eval_fanouts", &self.eval_fanouts),
            ] {
                let Some(f) = f else { continue };
                if let Some(b) = f.iter().find(|&&v| v == 0 || v < -1) {
                    return Err(bad(key, format!("fan-out {b} must be ≥ 1 or -1 (all)")));
                }
                if f.len() != steps {
                    let per = kind.blocks_per_layer(self.hops());
                    return Err(bad(
                        key,
                        if per == 1 {
                            format!(
                                "{key} has {} hops but the model has {} layers; give one fan-out per layer",
                                f.len(),
                                self.layers()
                            )
                        } else {
                            format!(
                                "{key} has {} hops but {} takes {steps} propagation steps ({per} per layer, hops = {}); give one fan-out per step",
                                f.len(),
                                kind.name(),
                                self.hops()
                            )
                        },
                    ));
                }
            }
            if let Some(b) = &self.mem_budget {
                b.parse::<scalegnn_store::MemoryBudget>()
                    .map_err(|e| bad("mem_budget", e.to_string()))?;
            }
        }
        if kind.is_mixture() {
            self.check_moe()?;
        }
        Ok(())
    }

    fn check_moe(&self) -> Result<(), ConfigError> {
        if let Some(names) = &self.expert_pool {
            if names.is_empty() {
                return Err(bad("expert_pool", "needs at least one expert"));
            }
            if let Some(n) = names.iter().find(|n| expert::parse(n).is_none()) {
                return Err(bad(
                    "expert_pool",
                    format!(
                        "unknown expert `{n}` (expected one of {})",
                        expert::expert_names().join(", ")
                    ),
                ));
            }
        }
        let pool = self
            .expert_pool
            .as_ref()
            .map_or(expert::POOL.len(), Vec::len);
        if let Some(e) = self.experts.filter(|e| !(1..=pool).contains(e)) {
            return Err(bad(
                "experts",
                format!("{e} is not in 1..={pool} (the expert pool has {pool} architectures)"),
            ));
        }
        if let Some(g) = &self.gate {
            g.parse::<GateKind>().map_err(|e| bad("gate", e))?;
        }
        if let Some(f) = &self.expert_form {
            let f = f.parse::<ExpertForm>().map_err(|e| bad("expert_form", e))?;
            if f == ExpertForm::Standalone && self.shared_input == Some(true) {
                return Err(bad(
                    "shared_input",
                    "applies to wrapped experts only (a standalone model owns its input layer)",
                ));
            }
        }
        let open = |key: &str, v: Option<f32>| match v {
            Some(v) if !(v > 0.0 && v < 1.0) => Err(bad(key, format!("{v} is not in (0, 1)"))),
            _ => Ok(()),
        };
        open("prune_factor", self.prune_factor)?;
        open("pretrain_share", self.pretrain_share)?;
        if let Some(t) = self.gate_threshold.filter(|t| !(*t > 0.0 && *t < 1.0)) {
            return Err(bad(
                "gate_threshold",
                format!("{t} is not strictly between 0 and 1"),
            ));
        }
        if self.gate_threshold.is_some() && self.moe().gate != GateKind::Taag {
            return Err(bad(
                "gate_threshold",
                "applies to the taag gate only (top-k gates have no threshold)",
            ));
        }
        if let Some(t) = self.prune_tolerance.filter(|t| !(0.0..=1.0).contains(t)) {
            return Err(bad("prune_tolerance", format!("{t} is not in [0, 1]")));
        }
        let pretrain_keys = ["pretrain_share", "pretrain_epochs"];
        if !self.pretrain_experts.unwrap_or(false) {
            if let Some(k) = self
                .given_keys()
                .into_iter()
                .find(|k| pretrain_keys.contains(k))
            {
                return Err(bad(k, "needs pretrain_experts = true"));
            }
        }
        Ok(())
    }

    /// Names of the keys that are set.
    pub fn given_keys(&self) -> Vec<&'static str> {
        let v = toml::Value::try_from(self).unwrap_or(toml::Value::Table(Default::default()));
        let mut keys = Vec::new();
        if let toml::Value::Table(t) = v {
            for k in t.keys() {
                if let Some(s) = ALL_KEYS.iter().find(|s| *s == k) {
                    keys.push(*s);
                }
            }
        }
        if self.pg_url.is_some() {
            keys.push("pg_url");
        }
        keys
    }

    /// Every key that applies to this run, set to the value the run uses: what `config.toml`
    /// records. `store`/`codec` and `metric` are filled by the caller, which knows the dataset.
    pub fn resolved(&self) -> RunConfig {
        let kind = self.kind();
        let mut r = RunConfig {
            dataset: self.dataset.clone(),
            model: Some(kind.name().to_string()),
            hidden: Some(self.hidden()),
            layers: Some(kind.depth(self.layers())),
            dropout: Some(self.dropout()),
            lr: Some(self.lr()),
            weight_decay: Some(self.weight_decay()),
            epochs: Some(self.epochs()),
            patience: self.patience,
            select: Some(
                match self.selection() {
                    Selection::Best => "best",
                    Selection::BestAndLoss => "best_and_loss",
                }
                .into(),
            ),
            metric: self.metric.clone(),
            task: self.task.clone(),
            seed: Some(self.seed()),
            runs: Some(self.runs()),
            split: Some(self.split()),
            normalize_features: Some(self.normalize_features()),
            input_dropout: Some(self.input_dropout()),
            loader: Some(
                match self.loader_kind() {
                    LoaderKind::Full => "full",
                    LoaderKind::Neighbor => "neighbor",
                    LoaderKind::Graphs => "graphs",
                    LoaderKind::Cluster => "cluster",
                }
                .into(),
            ),
            store: self.store.clone(),
            codec: self.codec.clone(),
            pg_url: self.pg_url.clone(),
            ..Default::default()
        };
        if kind.uses(Knob::Heads) {
            r.heads = Some(self.heads());
            r.attn_dropout = Some(self.attn_dropout());
        }
        if kind.uses(Knob::Hops) {
            r.hops = Some(self.hops());
        }
        if kind.uses(Knob::BatchNorm) {
            r.batch_norm = Some(self.batch_norm());
        }
        if self.loader_kind() == LoaderKind::Neighbor {
            r.fanouts = Some(self.fanouts());
            r.batch_size = Some(self.batch_size());
            r.eval_fanouts = Some(self.eval_fanouts());
            r.eval_batch_size = Some(self.eval_batch_size());
            r.eval_max = self.eval_max;
            r.prefetch = Some(self.prefetch());
            r.max_batches = self.max_batches;
            r.mem_budget = self.mem_budget.clone();
            r.cache_rows = self.cache_rows;
            r.direct_io = Some(self.direct_io());
            r.io_threads = Some(self.io_threads());
            r.exact_eval = Some(self.exact_eval());
        }
        if self.loader_kind() == LoaderKind::Cluster {
            r.parts = self.parts;
            r.clusters_per_batch = Some(self.clusters_per_batch());
            r.eval_max = self.eval_max;
            r.prefetch = Some(self.prefetch());
            r.max_batches = self.max_batches;
            r.mem_budget = self.mem_budget.clone();
            r.cache_rows = self.cache_rows;
            r.direct_io = Some(self.direct_io());
            r.io_threads = Some(self.io_threads());
            r.exact_eval = Some(self.exact_eval());
        }
        if self.loader_kind() == LoaderKind::Graphs {
            r.batch_size = Some(self.batch_size());
            r.eval_batch_size = Some(self.eval_batch_size());
            r.prefetch = Some(self.prefetch());
            r.io_threads = Some(self.io_threads());
        }
        if self.graph_level() {
            r.readout = Some(self.readout().name().into());
            r.jk_readout = Some(self.jk_readout.unwrap_or(false));
            if kind.uses(Knob::VirtualNode) {
                r.virtual_node = Some(self.virtual_node.unwrap_or(false));
            }
            r.cv = self.cv;
            if self.cv.is_some() {
                r.cv_protocol = Some(if self.cv_gin() { "gin" } else { "fair" }.into());
            }
        }
        if self.lr_step.is_some() {
            r.lr_step = self.lr_step;
            r.lr_gamma = Some(self.lr_gamma.unwrap_or(0.5));
        }
        if kind.is_mixture() {
            let m = self.moe();
            r.experts = Some(m.experts);
            r.expert_pool = Some(m.pool.iter().map(|k| k.name().to_string()).collect());
            r.gate = Some(m.gate.to_string());
            r.expert_form = Some(m.form.to_string());
            r.identical_experts = Some(m.identical);
            r.gate_eigvecs = Some(m.eig_k);
            r.load_balance = Some(m.w_imp);
            r.diversity = Some(m.w_div);
            r.expert_loss = Some(m.expert_loss);
            r.prune = Some(m.prune);
            r.prune_interval = Some(m.prune_interval);
            r.prune_factor = Some(m.prune_factor);
            r.min_experts = Some(m.min_experts);
            r.prune_tolerance = Some(m.prune_tolerance);
            r.shared_input = Some(m.shared_input);
            if m.gate == GateKind::Taag {
                r.gate_threshold = Some(m.threshold);
            }
            r.best_expert = Some(m.best_expert);
            r.pretrain_experts = Some(m.pretrain);
            if m.pretrain {
                r.pretrain_share = Some(m.pretrain_share);
                r.pretrain_epochs = Some(m.pretrain_epochs);
            }
        }
        r
    }
}

/// Every key, as TOML names it.
const ALL_KEYS: &[&str] = &[
    "dataset",
    "model",
    "hidden",
    "layers",
    "dropout",
    "lr",
    "weight_decay",
    "epochs",
    "patience",
    "select",
    "metric",
    "task",
    "decoder",
    "exclude_targets",
    "negatives",
    "negative_sampling",
    "readout",
    "jk_readout",
    "virtual_node",
    "cv",
    "cv_protocol",
    "lr_step",
    "lr_gamma",
    "seed",
    "runs",
    "split",
    "normalize_features",
    "input_dropout",
    "heads",
    "attn_dropout",
    "hops",
    "batch_norm",
    "loader",
    "fanouts",
    "batch_size",
    "eval_fanouts",
    "eval_batch_size",
    "eval_max",
    "prefetch",
    "max_batches",
    "store",
    "codec",
    "mem_budget",
    "cache_rows",
    "direct_io",
    "pg_url",
    "io_threads",
    "exact_eval",
    "parts",
    "clusters_per_batch",
    "experts",
    "expert_pool",
    "expert_form",
    "gate",
    "identical_experts",
    "gate_eigvecs",
    "load_balance",
    "diversity",
    "expert_loss",
    "prune",
    "prune_interval",
    "prune_factor",
    "min_experts",
    "prune_tolerance",
    "shared_input",
    "gate_threshold",
    "best_expert",
    "pretrain_experts",
    "pretrain_share",
    "pretrain_epochs",
];

/// `--model`'s help: every registered model with its one-line description.
#[cfg(feature = "clap")]
pub fn model_help() -> String {
    let mut h = String::from("Model:");
    for k in ModelKind::all() {
        h.push_str(&format!("\n  {:<8} {}", k.name(), k.spec().about));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_round_trips_and_hyphen_keys_read() {
        let c = RunConfig::from_toml(
            "model = \"sagmm\"\nweight-decay = 0.001\nloader = \"neighbor\"\nbatch_size = 64\n",
        )
        .unwrap();
        c.check().unwrap();
        assert_eq!(c.weight_decay, Some(0.001));
        let r = c.resolved();
        r.check().unwrap();
        let back = RunConfig::from_toml(&r.to_toml()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.resolved(), r);
        assert_eq!(r.expert_loss, Some(0.5));
        assert_eq!(r.fanouts, Some(vec![15, 10]));
    }

    #[test]
    fn bad_values_and_unused_keys_name_the_key() {
        for (text, key) in [
            ("dropout = 1.5", "dropout"),
            ("lr = -0.01", "lr"),
            ("epochs = 0", "epochs"),
            ("runs = 0", "runs"),
            ("fanouts = [10, 10]", "fanouts"),
            ("mem_budget = \"1GiB\"", "mem_budget"),
            ("heads = 4", "heads"),
            ("expert_loss = 0.1", "expert_loss"),
            (
                "loader = \"neighbor\"\nfanouts = [10, 10, 10]\nlayers = 2",
                "fanouts",
            ),
            ("loader = \"neighbor\"\nbatch_size = 0", "batch_size"),
            ("loader = \"walk\"", "loader"),
            ("metric = \"f2\"", "metric"),
            ("model = \"sagmm\"\nexperts = 10", "experts"),
            ("task = \"edges\"", "task"),
            ("negatives = 0", "negatives"),
            ("negative_sampling = \"zipf\"", "negative_sampling"),
            ("decoder = \"bilinear\"", "decoder"),
            ("model = \"sagmm\"\npretrain_share = 0.3", "pretrain_share"),
            ("select = \"val_f1\"", "select"),
            ("virtual_node = true", "virtual_node"),
            (
                "task = \"graph\"\nmodel = \"gat\"\nvirtual_node = true",
                "virtual_node",
            ),
        ] {
            let c = RunConfig::from_toml(text).unwrap();
            let e = c.check().unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
        }
        let e = RunConfig::from_toml("hiden = 3").unwrap_err().to_string();
        assert!(e.contains("hiden"), "{e}");
    }
}
