//! `scalegnn train DATASET`: full-batch node classification, with a TOML config whose keys
//! are the flags (flags win; unknown keys are errors naming the key).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use scalegnn_data::{Dataset, OpenOptions};
use scalegnn_nn::ModelKind;
use scalegnn_train::{train_node_classification, MetricsLog, NodeData, TrainConfig};
use serde::{Deserialize, Serialize};

/// Every training knob; the same names as the flags (with `_` for `-`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Model: gcn, gat, sage, gin, sgc, jk, cheb, mixhop or mlp.
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
    /// Random seed (initialisation, dropout).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of runs with seeds seed, seed+1, ...; mean ± std is reported.
    #[arg(long)]
    pub runs: Option<usize>,
    /// Row-normalise features (default true; PyG's NormalizeFeatures).
    #[arg(long)]
    pub normalize_features: Option<bool>,
    /// Attention heads (gat; default 8).
    #[arg(long)]
    pub heads: Option<usize>,
    /// Dropout on attention coefficients (gat; default: --dropout).
    #[arg(long)]
    pub attn_dropout: Option<f32>,
    /// Propagation hops: SGC's K, ChebNet's K, MixHop's largest power (default 2).
    #[arg(long)]
    pub hops: Option<usize>,
}

impl RunConfig {
    /// `self` with every unset key taken from `base`.
    fn or(self, base: RunConfig) -> RunConfig {
        RunConfig {
            model: self.model.or(base.model),
            hidden: self.hidden.or(base.hidden),
            layers: self.layers.or(base.layers),
            dropout: self.dropout.or(base.dropout),
            lr: self.lr.or(base.lr),
            weight_decay: self.weight_decay.or(base.weight_decay),
            epochs: self.epochs.or(base.epochs),
            patience: self.patience.or(base.patience),
            seed: self.seed.or(base.seed),
            runs: self.runs.or(base.runs),
            normalize_features: self.normalize_features.or(base.normalize_features),
            heads: self.heads.or(base.heads),
            attn_dropout: self.attn_dropout.or(base.attn_dropout),
            hops: self.hops.or(base.hops),
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
            layers: self.layers.unwrap_or(d.layers),
            dropout: self.dropout.unwrap_or(d.dropout),
            lr: self.lr.unwrap_or(d.lr),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            epochs: self.epochs.unwrap_or(d.epochs),
            patience: self.patience.or(d.patience),
            seed: self.seed.unwrap_or(d.seed),
            normalize_features: self.normalize_features.unwrap_or(d.normalize_features),
            heads: self.heads.unwrap_or(d.heads),
            attn_dropout: self.attn_dropout.or(d.attn_dropout),
            hops: self.hops.unwrap_or(d.hops),
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
    let run = a.run.clone().or(file);
    let cfg = run.resolve()?;
    let runs = run.runs.unwrap_or(1).max(1);
    let ds = Dataset::open(
        &a.dataset,
        OpenOptions {
            verify: !a.no_verify,
        },
    )
    .with_context(|| format!("opening dataset {}", a.dataset.display()))?;
    let data = NodeData::from_dataset(&ds, cfg.normalize_features)?;
    let out = a.out.clone().unwrap_or_else(default_run_dir);
    if out.join("metrics.jsonl").exists() {
        bail!(
            "{} already holds a run (metrics.jsonl); choose another --out",
            out.display()
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let resolved = ResolvedConfig {
        dataset: a.dataset.canonicalize().unwrap_or(a.dataset.clone()),
        run: run.clone(),
    };
    write_atomic(
        &out.join("config.toml"),
        toml::to_string(&resolved)?.as_bytes(),
    )?;

    let mut results = Vec::new();
    for r in 0..runs {
        let mut c = cfg.clone();
        c.seed = cfg.seed + r as u64;
        let dir = if runs == 1 {
            out.clone()
        } else {
            out.join(format!("run-{r}"))
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut log = MetricsLog::to_file(&dir.join("metrics.jsonl"))?;
        let bar = epoch_bar(
            c.epochs as u64,
            &format!("{} seed {}", c.model.name(), c.seed),
        );
        let (_, s) = train_node_classification(
            &data,
            &ds.graph,
            &c,
            &mut log,
            Some(&dir),
            &mut |_, loss, val| {
                bar.set_message(format!("loss {loss:.4} val {val:.4}"));
                bar.inc(1);
            },
        )
        .with_context(|| format!("training on {}", a.dataset.display()))?;
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
    write_atomic(&out.join("summary.json"), summary.to_string().as_bytes())?;
    println!("run directory: {}", out.display());
    Ok(())
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

/// Writes a small file atomically (temp file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}
