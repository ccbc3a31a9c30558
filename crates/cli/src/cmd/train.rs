//! `scalegnn train DATASET`: full-batch node classification, with a TOML config whose keys
//! are the flags (flags win; unknown keys are errors naming the key).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use scalegnn_data::{Dataset, OpenOptions};
use scalegnn_nn::moe::expert::ExpertKind;
use scalegnn_nn::moe::MoeConfig;
use scalegnn_nn::ModelKind;
use scalegnn_train::{
    train_minibatch, train_node_classification, MetricsLog, MiniBatchConfig, NodeData, NodeSplits,
    RunDir, RunSummary, TrainConfig,
};
use serde::{Deserialize, Serialize};

/// Every training knob; the same names as the flags (with `_` for `-`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Model: gcn, gat, sage, gin, sgc, jk, cheb, mixhop, mlp or sagmm.
    #[arg(long)]
    pub model: Option<String>,
    /// Hidden width.
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Number of layers.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Dropout probability.
    #[arg(long)]
    pub dropout: Option<f32>,
    /// Adam learning rate.
    #[arg(long)]
    pub lr: Option<f32>,
    /// L2 weight decay (added to the gradient, as torch.optim.Adam).
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Training epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Stop after this many epochs without a better validation accuracy.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Model selection: val_acc (best validation accuracy) or val_acc_loss (the GAT paper's
    /// rule: patience counts epochs improving neither validation accuracy nor loss).
    #[arg(long)]
    pub select: Option<String>,
    /// Random seed (initialisation, dropout).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of runs with seeds seed, seed+1, ...; mean ± std is reported.
    #[arg(long)]
    pub runs: Option<usize>,
    /// Row-normalise features (default true; PyG's NormalizeFeatures).
    #[arg(long)]
    pub normalize_features: Option<bool>,
    /// Dropout on the input features (default: --dropout).
    #[arg(long)]
    pub input_dropout: Option<f32>,
    /// Attention heads (gat; default 8).
    #[arg(long)]
    pub heads: Option<usize>,
    /// Dropout on attention coefficients (gat; default: --dropout).
    #[arg(long)]
    pub attn_dropout: Option<f32>,
    /// Propagation hops: SGC's K, ChebNet's K, MixHop's largest power (default 2).
    #[arg(long)]
    pub hops: Option<usize>,
    /// Batch norm inside GIN's MLP (default false, as PyG's GIN).
    #[arg(long)]
    pub batch_norm: Option<bool>,
    /// full (whole graph every step, default) or neighbor (sampled mini-batches).
    #[arg(long)]
    pub loader: Option<String>,
    /// Neighbours per hop, seeds' hop first, e.g. 15,10,5 (-1 = all); one per layer.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub fanouts: Option<Vec<i64>>,
    /// Seed nodes per mini-batch (default 1024).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Fan-outs for validation/test batches (default: --fanouts).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub eval_fanouts: Option<Vec<i64>>,
    /// Seed nodes per evaluation batch (default 4096).
    #[arg(long)]
    pub eval_batch_size: Option<usize>,
    /// Evaluate on a fixed random subset of at most this many val/test nodes.
    #[arg(long)]
    pub eval_max: Option<usize>,
    /// Prepared batches queued ahead of the trainer (default 2).
    #[arg(long)]
    pub prefetch: Option<usize>,
    /// Training batches per epoch at most (profiling).
    #[arg(long)]
    pub max_batches: Option<usize>,
    /// Feature store to read: mmap, sqlite (default: the one the manifest names).
    #[arg(long)]
    pub store: Option<String>,
    /// Codec of the store to read: f32, f16, u8 (default: the manifest's).
    #[arg(long)]
    pub codec: Option<String>,
    /// Heap for features (batch buffers, prefetch queue, cache), e.g. 2GiB: the cache and
    /// queue depth are derived from it; the run refuses to start when one batch cannot fit.
    #[arg(long)]
    pub mem_budget: Option<String>,
    /// Feature cache rows (90 % hub tier by in-degree, 10 % CLOCK), without a budget.
    #[arg(long)]
    pub cache_rows: Option<usize>,
    /// Read the mmap or sqlite store with direct I/O, past the page cache (features larger
    /// than memory: pair it with --mem-budget so the cache holds what memory allows).
    #[arg(long)]
    pub direct_io: Option<bool>,
    /// PostgreSQL server of a postgres store, postgres://USER[:PASSWORD]@HOST:PORT/DB
    /// (default: $SCALEGNN_PG_URL, then the server recorded at ingest). Never written to
    /// the run directory.
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing)]
    pub pg_url: Option<String>,
    /// Threads sampling and gathering features ahead of training (default 4; more when
    /// features come from disk).
    #[arg(long)]
    pub io_threads: Option<usize>,
    /// Final val/test accuracy by exact layer-wise inference (full neighbourhoods, every
    /// layer for every node) instead of sampled batches.
    #[arg(long)]
    pub exact_eval: Option<bool>,
    /// SAGMM: how many experts of the pool (the first E; default all of it).
    #[arg(long)]
    pub experts: Option<usize>,
    /// SAGMM: the expert architectures, in order (default gcn,gat,sage,sgc,jk,cheb,gin,mixhop);
    /// one name trains that expert alone (the single-expert baseline).
    #[arg(long, value_delimiter = ',')]
    pub expert_pool: Option<Vec<String>>,
    /// SAGMM gate: taag (attention gate + learnable threshold, default), top1 or top2 (noisy
    /// top-k ablation).
    #[arg(long)]
    pub gate: Option<String>,
    /// SAGMM ablation: every expert a GCN.
    #[arg(long)]
    pub identical_experts: Option<bool>,
    /// SAGMM: Laplacian eigenvectors in the gate input (default 8).
    #[arg(long)]
    pub gate_eigvecs: Option<usize>,
    /// SAGMM: weight of the load-balance loss, CV² of the experts' total weights (default 0.01).
    #[arg(long)]
    pub load_balance: Option<f32>,
    /// SAGMM: weight of the gate-diversity loss (default 0.01).
    #[arg(long)]
    pub diversity: Option<f32>,
    /// SAGMM: weight of the expert-supervision loss, each expert's output through the head
    /// scored against the labels (default 0.5; 0 turns it off).
    #[arg(long)]
    pub expert_loss: Option<f32>,
    /// SAGMM: prune experts that stop contributing (default true).
    #[arg(long)]
    pub prune: Option<bool>,
    /// SAGMM: epochs between pruning decisions (default 20).
    #[arg(long)]
    pub prune_interval: Option<usize>,
    /// SAGMM: starting pruning factor; experts below mean importance × factor go (default 0.5).
    #[arg(long)]
    pub prune_factor: Option<f32>,
    /// SAGMM: never prune below this many experts (default 2).
    #[arg(long)]
    pub min_experts: Option<usize>,
    /// SAGMM, full batch: keep a pruning candidate whose removal would cost more than this
    /// much validation accuracy, a fraction (default 0.005; 1 turns the check off).
    #[arg(long)]
    pub prune_tolerance: Option<f32>,
    /// SAGMM-PE: pretrain the experts on a share of the training labels, freeze them, and
    /// train only the gate and head on the rest (default false).
    #[arg(long)]
    pub pretrain_experts: Option<bool>,
    /// SAGMM-PE: share of the training nodes the experts are pretrained on (default 0.5).
    #[arg(long)]
    pub pretrain_share: Option<f32>,
    /// SAGMM-PE: pretraining epochs (default half of --epochs).
    #[arg(long)]
    pub pretrain_epochs: Option<usize>,
}

impl RunConfig {
    /// `self` with every unset key taken from `base`.
    pub fn or(self, base: RunConfig) -> RunConfig {
        RunConfig {
            model: self.model.or(base.model),
            hidden: self.hidden.or(base.hidden),
            layers: self.layers.or(base.layers),
            dropout: self.dropout.or(base.dropout),
            lr: self.lr.or(base.lr),
            weight_decay: self.weight_decay.or(base.weight_decay),
            epochs: self.epochs.or(base.epochs),
            patience: self.patience.or(base.patience),
            select: self.select.or(base.select),
            seed: self.seed.or(base.seed),
            runs: self.runs.or(base.runs),
            normalize_features: self.normalize_features.or(base.normalize_features),
            input_dropout: self.input_dropout.or(base.input_dropout),
            heads: self.heads.or(base.heads),
            attn_dropout: self.attn_dropout.or(base.attn_dropout),
            hops: self.hops.or(base.hops),
            batch_norm: self.batch_norm.or(base.batch_norm),
            loader: self.loader.or(base.loader),
            fanouts: self.fanouts.or(base.fanouts),
            batch_size: self.batch_size.or(base.batch_size),
            eval_fanouts: self.eval_fanouts.or(base.eval_fanouts),
            eval_batch_size: self.eval_batch_size.or(base.eval_batch_size),
            eval_max: self.eval_max.or(base.eval_max),
            prefetch: self.prefetch.or(base.prefetch),
            max_batches: self.max_batches.or(base.max_batches),
            store: self.store.or(base.store),
            codec: self.codec.or(base.codec),
            mem_budget: self.mem_budget.or(base.mem_budget),
            cache_rows: self.cache_rows.or(base.cache_rows),
            direct_io: self.direct_io.or(base.direct_io),
            pg_url: self.pg_url.or(base.pg_url),
            io_threads: self.io_threads.or(base.io_threads),
            exact_eval: self.exact_eval.or(base.exact_eval),
            experts: self.experts.or(base.experts),
            expert_pool: self.expert_pool.or(base.expert_pool),
            gate: self.gate.or(base.gate),
            identical_experts: self.identical_experts.or(base.identical_experts),
            gate_eigvecs: self.gate_eigvecs.or(base.gate_eigvecs),
            load_balance: self.load_balance.or(base.load_balance),
            diversity: self.diversity.or(base.diversity),
            expert_loss: self.expert_loss.or(base.expert_loss),
            prune: self.prune.or(base.prune),
            prune_interval: self.prune_interval.or(base.prune_interval),
            prune_factor: self.prune_factor.or(base.prune_factor),
            min_experts: self.min_experts.or(base.min_experts),
            prune_tolerance: self.prune_tolerance.or(base.prune_tolerance),
            pretrain_experts: self.pretrain_experts.or(base.pretrain_experts),
            pretrain_share: self.pretrain_share.or(base.pretrain_share),
            pretrain_epochs: self.pretrain_epochs.or(base.pretrain_epochs),
        }
    }

    /// The mini-batch settings for a model taking `layers` sampled hops, or `None` for
    /// full-batch training. Without `fanouts`, PyG's 15, 10, 5 (then 5 per further hop) is
    /// cut to one per hop.
    pub fn minibatch(&self, layers: usize) -> Result<Option<MiniBatchConfig>> {
        match self.loader.as_deref().unwrap_or("full") {
            "full" => Ok(None),
            "neighbor" => {
                let d = MiniBatchConfig::default();
                // Zero would be clamped or evaluate nothing: refuse it, naming the key.
                for (key, v) in [
                    ("batch_size", self.batch_size),
                    ("eval_batch_size", self.eval_batch_size),
                    ("eval_max", self.eval_max),
                    ("prefetch", self.prefetch),
                    ("io_threads", self.io_threads),
                    ("cache_rows", self.cache_rows),
                ] {
                    if v == Some(0) {
                        bail!("{key}: must be at least 1 (leave it out for the default)");
                    }
                }
                if let Some(t) = self.io_threads {
                    scalegnn_limits::check_threads("io_threads", t)?;
                }
                Ok(Some(MiniBatchConfig {
                    fanouts: self.fanouts.clone().unwrap_or_else(|| {
                        (0..layers)
                            .map(|l| d.fanouts.get(l).copied().unwrap_or(5))
                            .collect()
                    }),
                    batch_size: self.batch_size.unwrap_or(d.batch_size),
                    eval_fanouts: self.eval_fanouts.clone(),
                    eval_batch_size: self.eval_batch_size.unwrap_or(d.eval_batch_size),
                    eval_max: self.eval_max,
                    prefetch: self.prefetch.unwrap_or(d.prefetch),
                    max_batches: self.max_batches,
                    io_threads: self.io_threads.unwrap_or(d.io_threads),
                    exact_eval: self.exact_eval.unwrap_or(d.exact_eval),
                    gate_dir: None,
                }))
            }
            other => bail!("loader: unknown loader `{other}` (expected full or neighbor)"),
        }
    }

    /// Reads a TOML file; unknown keys are errors that name the key.
    pub fn load(path: &Path) -> Result<RunConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}: invalid config", path.display()))
    }

    /// The training configuration, with GCN-paper defaults for unset keys.
    pub fn resolve(&self) -> Result<TrainConfig> {
        let d = TrainConfig::default();
        let model: ModelKind = self.model.as_deref().unwrap_or("gcn").parse()?;
        Ok(TrainConfig {
            model,
            hidden: self.hidden.unwrap_or(d.hidden),
            // Fan-outs give the depth only where each layer takes one hop.
            layers: self
                .layers
                .or(self
                    .fanouts
                    .as_ref()
                    .filter(|_| model.blocks_per_layer(self.hops.unwrap_or(d.hops)) == 1)
                    .map(Vec::len))
                .unwrap_or(d.layers),
            dropout: self.dropout.unwrap_or(d.dropout),
            lr: self.lr.unwrap_or(d.lr),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            epochs: self.epochs.unwrap_or(d.epochs),
            patience: self.patience.or(d.patience),
            selection: match &self.select {
                Some(s) => s.parse().map_err(|e| anyhow::anyhow!("select: {e}"))?,
                None => d.selection,
            },
            seed: self.seed.unwrap_or(d.seed),
            normalize_features: self.normalize_features.unwrap_or(d.normalize_features),
            input_dropout: self.input_dropout.or(d.input_dropout),
            heads: self.heads.unwrap_or(d.heads),
            attn_dropout: self.attn_dropout.or(d.attn_dropout),
            hops: self.hops.unwrap_or(d.hops),
            batch_norm: self.batch_norm.unwrap_or(d.batch_norm),
            moe: self.moe()?,
        })
    }

    /// SAGMM's knobs, with defaults for unset keys; bad values are errors naming the key.
    fn moe(&self) -> Result<MoeConfig> {
        let d = MoeConfig::default();
        let pool = match &self.expert_pool {
            None => d.pool.clone(),
            Some(names) => names
                .iter()
                .map(|n| {
                    ExpertKind::parse(n).ok_or_else(|| {
                        anyhow::anyhow!(
                            "expert_pool: unknown expert `{n}` (expected gcn, gat, sage, sgc, jk, cheb, gin or mixhop)"
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        };
        if pool.is_empty() {
            bail!("expert_pool: needs at least one expert");
        }
        let experts = self.experts.unwrap_or(pool.len());
        if !(1..=pool.len()).contains(&experts) {
            bail!(
                "experts: {experts} is not in 1..={} (the expert pool has {} architectures)",
                pool.len(),
                pool.len()
            );
        }
        let min_experts = self.min_experts.unwrap_or(d.min_experts);
        if min_experts == 0 {
            bail!("min_experts: must be at least 1");
        }
        let prune_factor = self.prune_factor.unwrap_or(d.prune_factor);
        if !(prune_factor > 0.0 && prune_factor < 1.0) {
            bail!("prune_factor: {prune_factor} is not in (0, 1)");
        }
        let prune_tolerance = self.prune_tolerance.unwrap_or(d.prune_tolerance);
        if !(0.0..=1.0).contains(&prune_tolerance) {
            bail!("prune_tolerance: {prune_tolerance} is not in [0, 1]");
        }
        let pretrain_share = self.pretrain_share.unwrap_or(d.pretrain_share);
        if !(pretrain_share > 0.0 && pretrain_share < 1.0) {
            bail!("pretrain_share: {pretrain_share} is not in (0, 1)");
        }
        if let Some(k) = self.gate_eigvecs.filter(|&k| k > 256) {
            // Lanczos keeps max(4k + 40, 64) vectors of n floats: bounded, so a typo cannot ask
            // for gigabytes.
            bail!("gate_eigvecs: {k} is more than 256");
        }
        if self.pretrain_epochs == Some(0) {
            bail!("pretrain_epochs: must be at least 1 (leave it out for half of epochs)");
        }
        if self.prune_interval == Some(0) {
            bail!("prune_interval: must be at least 1");
        }
        for (key, v) in [
            ("load_balance", self.load_balance),
            ("diversity", self.diversity),
            ("expert_loss", self.expert_loss),
        ] {
            if let Some(v) = v.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                bail!("{key}: {v} must be a finite weight ≥ 0");
            }
        }
        Ok(MoeConfig {
            pool,
            experts,
            identical: self.identical_experts.unwrap_or(d.identical),
            gate: match &self.gate {
                Some(g) => g.parse().map_err(|e| anyhow::anyhow!("gate: {e}"))?,
                None => d.gate,
            },
            eig_k: self.gate_eigvecs.unwrap_or(d.eig_k),
            w_imp: self.load_balance.unwrap_or(d.w_imp),
            w_div: self.diversity.unwrap_or(d.w_div),
            expert_loss: self.expert_loss.unwrap_or(d.expert_loss),
            prune: self.prune.unwrap_or(d.prune),
            prune_interval: self.prune_interval.unwrap_or(d.prune_interval),
            prune_factor,
            min_experts,
            prune_tolerance,
            pruned: Vec::new(),
            pretrain: self.pretrain_experts.unwrap_or(d.pretrain),
            pretrain_share,
            pretrain_epochs: self.pretrain_epochs.unwrap_or(d.pretrain_epochs),
        })
    }
}

/// What `config.toml` in a run directory holds: the dataset and the resolved knobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedConfig {
    pub dataset: PathBuf,
    #[serde(flatten)]
    pub run: RunConfig,
}

/// Arguments of `scalegnn train`.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory (from `scalegnn ingest` or `synth`).
    pub dataset: PathBuf,
    /// TOML file with any of the flags below as keys (flags override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run directory (default runs/<timestamp>): config.toml, metrics.jsonl, checkpoint/.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Skip checksum verification of the dataset.
    #[arg(long)]
    pub no_verify: bool,
    /// Replace --out when it holds an earlier run (only a directory scalegnn wrote for a run).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub run: RunConfig,
}

fn default_run_dir() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from("runs").join(format!("{secs}"))
}

/// Runs `scalegnn train`.
pub fn run(a: Args) -> Result<()> {
    let file = match &a.config {
        Some(p) => RunConfig::load(p)?,
        None => RunConfig::default(),
    };
    let mut run = a.run.clone().or(file);
    let cfg = run.resolve()?;
    if cfg.model == ModelKind::Sagmm {
        // Recorded even when defaulted: a default that changes later (0 before expert
        // supervision existed) must not silently change what this config.toml reruns.
        run.expert_loss = Some(cfg.moe.expert_loss);
    }
    let runs = run.runs.unwrap_or(1).max(1);
    let ds = Dataset::open(
        &a.dataset,
        OpenOptions {
            verify: !a.no_verify,
        },
    )
    .with_context(|| format!("opening dataset {}", a.dataset.display()))?;
    let mut mb = run.minibatch(cfg.model.num_blocks(cfg.layers, cfg.hops))?;
    if let Some(m) = &mut mb {
        // SAGMM's gate input is kept beside the features, built by the first run that needs it.
        m.gate_dir = Some(scalegnn_loader::derived::gate_dir(
            &a.dataset,
            cfg.moe.eig_k,
        ));
    }
    let data = match &mb {
        // Through the store the manifest names (or --store/--codec), so codecs apply here too.
        None => {
            if store_choice(&ds, &run) == ("mmap", "f32") {
                // x.npy is that store: read it directly (and say so when it is missing).
                Some(NodeData::from_dataset(&ds, cfg.normalize_features)?)
            } else {
                let store = open_store(&ds, &run)?;
                Some(NodeData::from_store(
                    &ds,
                    store.as_ref(),
                    cfg.normalize_features,
                )?)
            }
        }
        Some(_) => None,
    };
    // The model must fit before a run directory is made: full batch holds every node's
    // activations, mini-batch at least the parameters.
    let m = &ds.manifest;
    let mcfg = cfg.model_config(m.num_features as usize, m.num_classes as usize);
    let (nodes, edges) = match &mb {
        None => (ds.graph.num_nodes(), ds.graph.num_edges()),
        Some(_) => (0, 0),
    };
    mcfg.check_fits(nodes, edges)?;
    let out = a.out.clone().unwrap_or_else(default_run_dir);
    // Only a directory scalegnn made for a run is replaced (--force); it stays locked while
    // this process writes there, so a second train into it is refused.
    let top = RunDir::create(&out, a.force)?;
    let resolved = ResolvedConfig {
        dataset: a.dataset.canonicalize().unwrap_or(a.dataset.clone()),
        run: run.clone(),
    };
    top.write("config.toml", toml::to_string(&resolved)?.as_bytes())?;

    let mut results = Vec::new();
    for r in 0..runs {
        let mut c = cfg.clone();
        c.seed = cfg.seed + r as u64;
        let sub;
        let dir = if runs == 1 {
            &top
        } else {
            sub = top.sub(&format!("run-{r}"))?;
            // Each run-N holds the configuration of its own seed, so eval/predict/embed work
            // on it as on a single run.
            let one = ResolvedConfig {
                dataset: resolved.dataset.clone(),
                run: RunConfig {
                    seed: Some(c.seed),
                    runs: Some(1),
                    ..run.clone()
                },
            };
            sub.write("config.toml", toml::to_string(&one)?.as_bytes())?;
            &sub
        };
        let dir = dir.path().to_path_buf();
        let mut log = MetricsLog::to_file(&dir.join("metrics.jsonl"))?;
        let bar = epoch_bar(
            c.epochs as u64,
            &format!("{} seed {}", c.model.name(), c.seed),
        );
        let s = match (&data, &mb) {
            (Some(data), _) => {
                train_node_classification(
                    data,
                    &ds.graph,
                    &c,
                    &mut log,
                    Some(&dir),
                    &mut |_, loss, val| {
                        bar.set_message(format!("loss {loss:.4} val {val:.4}"));
                        bar.inc(1);
                    },
                )
                .with_context(|| format!("training on {}", a.dataset.display()))?
                .1
            }
            (None, Some(mb)) => minibatch_run(&ds, &run, &c, mb, &mut log, &dir, &bar)?,
            (None, None) => unreachable!("full-batch data is loaded when there is no loader"),
        };
        bar.finish_and_clear();
        if !scalegnn_train::plot_curves(&log.lines, &dir.join("curves.png"))? {
            eprintln!("note: no TrueType font found (DejaVu or Liberation); curves.png not drawn");
        }
        println!(
            "seed {}: test acc {:.4} at best val {:.4} (epoch {}); {} params; {:.2} ms/epoch",
            c.seed, s.test_acc, s.best_val_acc, s.best_epoch, s.num_params, s.mean_epoch_ms
        );
        results.push((c.seed, s));
    }
    let accs: Vec<f64> = results.iter().map(|(_, s)| s.test_acc).collect();
    let mean = accs.iter().sum::<f64>() / runs as f64;
    let std = (accs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / runs as f64).sqrt();
    let epoch_ms = results.iter().map(|(_, s)| s.mean_epoch_ms).sum::<f64>() / runs as f64;
    if runs > 1 {
        println!(
            "test acc over {runs} seeds: {:.2} ± {:.2}",
            100.0 * mean,
            100.0 * std
        );
    }
    let per_run: Vec<serde_json::Value> = results
        .iter()
        .map(|(seed, s)| {
            serde_json::json!({"seed": seed, "test_acc": s.test_acc, "best_val_acc": s.best_val_acc,
                "best_epoch": s.best_epoch, "final_test_acc": s.final_test_acc, "epoch_ms": s.mean_epoch_ms})
        })
        .collect();
    let summary = serde_json::json!({
        "model": cfg.model.name(), "dataset": a.dataset.display().to_string(), "runs": runs,
        "test_acc_mean": mean, "test_acc_std": std, "epoch_ms_mean": epoch_ms,
        "num_params": results[0].1.num_params, "threads": rayon::current_num_threads(), "per_run": per_run,
    });
    top.write("summary.json", summary.to_string().as_bytes())?;
    println!("run directory: {}", out.display());
    Ok(())
}

/// One mini-batch run: opens the feature store and trains on sampled blocks.
fn minibatch_run(
    ds: &Dataset,
    run: &RunConfig,
    cfg: &TrainConfig,
    mb: &MiniBatchConfig,
    log: &mut MetricsLog,
    dir: &Path,
    bar: &ProgressBar,
) -> Result<RunSummary> {
    let (store, mb) = budgeted_store(ds, run, cfg, mb)?;
    let mb = &mb;
    let splits = NodeSplits::from_dataset(ds)?;
    let (_, s) = train_minibatch(
        &ds.graph,
        store.as_ref(),
        &splits,
        cfg,
        mb,
        log,
        Some(dir),
        &mut |epoch, loss, val, t| {
            bar.set_message(format!(
                "loss {loss:.4} val {val:.4} | {:.0} seeds/s",
                t.seeds_per_s()
            ));
            bar.inc(1);
            if !bar.is_hidden() {
                return;
            }
            eprintln!(
                "epoch {epoch}: loss {loss:.4} val {val:.4}; {:.1} s, {:.0} seeds/s; sample {:.0} ms, fetch {:.0} ms, compute {:.0} ms, waiting {:.0} ms",
                t.wall_ms / 1e3,
                t.seeds_per_s(),
                t.sample_ms,
                t.fetch_ms,
                t.compute_ms,
                t.wait_ms
            );
        },
    )
    .with_context(|| format!("training on {}", ds.dir.display()))?;
    Ok(s)
}

/// The feature store of a mini-batch run, behind a cache when a memory budget or
/// `cache_rows` asks for one, and the pipeline settings the budget allows.
pub fn budgeted_store(
    ds: &Dataset,
    run: &RunConfig,
    cfg: &TrainConfig,
    mb: &MiniBatchConfig,
) -> Result<(Box<dyn scalegnn_store::FeatureStore>, MiniBatchConfig)> {
    use scalegnn_store::{hub_nodes, FeatureCache, MemoryBudget};
    let store = open_store(ds, run)?;
    let mut mb = mb.clone();
    let (hub_rows, dynamic_rows) = if let Some(text) = &run.mem_budget {
        let budget: MemoryBudget = text.parse().context("mem_budget")?;
        let inputs = budget_inputs(ds, cfg, &mb, store.dim())?;
        let plan = budget
            .plan(inputs)
            .map_err(|e| anyhow::anyhow!("mem_budget: {e}"))?;
        eprintln!("{}", plan.summary());
        mb.prefetch = plan.prefetch_depth;
        (plan.hub_rows, plan.dynamic_rows)
    } else if let Some(rows) = run.cache_rows {
        let hub = rows * 9 / 10;
        (hub, rows - hub)
    } else {
        (0, 0)
    };
    if hub_rows + dynamic_rows == 0 {
        return Ok((store, mb));
    }
    let hub = hub_nodes(ds.graph.indptr(), hub_rows);
    let cache =
        FeatureCache::new(store, &hub, dynamic_rows).context("filling the feature cache")?;
    Ok((Box::new(cache), mb))
}

/// What the memory budget needs to know: batch size measured on a few sampled batches,
/// activation memory estimated from the model's widths and the blocks' sizes.
fn budget_inputs(
    ds: &Dataset,
    cfg: &TrainConfig,
    mb: &MiniBatchConfig,
    dim: usize,
) -> Result<scalegnn_store::BudgetInputs> {
    use scalegnn_sample::Sampler;
    let sampler =
        scalegnn_sample::NeighborSampler::new(&ds.graph, &mb.fanouts).context("fanouts")?;
    let splits = NodeSplits::from_dataset(ds)?;
    let (mut rows, mut act) = (0usize, 0usize);
    for (k, seeds) in splits
        .train
        .chunks(mb.batch_size.max(1))
        .take(3)
        .enumerate()
    {
        let b = sampler.sample(seeds, k as u64).context("sampling")?;
        rows = rows.max(b.nodes.len());
        // Per layer: the aggregate (din wide) and about three dout-wide buffers (output,
        // dropout output and mask), doubled for their gradients.
        let a: usize = b
            .blocks
            .iter()
            .enumerate()
            .map(|(l, bl)| {
                let din = if l == 0 { dim } else { cfg.hidden };
                bl.num_dst * (din + 3 * cfg.hidden) * 4 * 2
            })
            .sum();
        act = act.max(a);
    }
    // A batch drawn later may be larger than the three measured: 10 % headroom.
    let params = cfg.hidden * (2 * dim + 4 * cfg.hidden) + cfg.hidden * 64;
    Ok(scalegnn_store::BudgetInputs {
        dim,
        bytes_per_row_decoded: 4 * dim,
        expected_batch_rows: rows + rows / 10,
        model_bytes_per_batch: act + act / 10,
        prefetch_depth: mb.prefetch,
        // Parameters with gradients and two Adam moments; labels and splits.
        fixed_bytes: params * 4 * 4 + ds.graph.num_nodes() * 8,
        num_nodes: ds.graph.num_nodes(),
    })
}

/// Store kind and codec to read: the config's when given, else the manifest's.
fn store_choice<'a>(ds: &'a Dataset, run: &'a RunConfig) -> (&'a str, &'a str) {
    let info = &ds.manifest.feature_store;
    (
        run.store.as_deref().unwrap_or(&info.kind),
        run.codec.as_deref().unwrap_or(&info.codec),
    )
}

/// The feature store of `ds`: the manifest's kind and codec unless the config overrides them.
pub fn open_store(ds: &Dataset, run: &RunConfig) -> Result<Box<dyn scalegnn_store::FeatureStore>> {
    let (kind, codec) = store_choice(ds, run);
    let codec: scalegnn_store::Codec = codec.parse().context("codec")?;
    let opts = scalegnn_store::StoreOptions {
        pg_url: run.pg_url.clone(),
        direct_io: run.direct_io.unwrap_or(false),
        ..Default::default()
    };
    let store = scalegnn_store::open_store_with(&ds.dir, kind, codec, &opts)
        .with_context(|| format!("opening the {kind} feature store of {}", ds.dir.display()))?;
    // The store's own dimensions (an SQLite meta table, a server's table) are data: they must
    // be the manifest's before anything is sized from them.
    let m = &ds.manifest;
    if (store.num_nodes() as u64, store.dim() as u64) != (m.num_nodes, m.num_features) {
        let files = scalegnn_store::store_files(kind, codec)
            .map(|f| f.join(", "))
            .unwrap_or_default();
        bail!(
            "the {kind} feature store of {} ({files}) holds {} nodes x {} features, but manifest.json says {} x {}",
            ds.dir.display(),
            store.num_nodes(),
            store.dim(),
            m.num_nodes,
            m.num_features
        );
    }
    Ok(store)
}

fn epoch_bar(total: u64, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}
