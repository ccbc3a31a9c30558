//! `scalegnn demo`: the first thing to run — generates the small synthetic preset, describes
//! it, trains GCN and GraphSAGE on it full-batch, prints their test accuracy and draws curves.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use scalegnn_data::synth::{generate, Preset, SynthConfig};
use scalegnn_data::{Dataset, OpenOptions};
use scalegnn_nn::ModelKind;
use scalegnn_train::{
    plot_curves, train_node_classification, MetricsLog, NodeData, RunDir, TrainConfig,
};

use crate::progress::Bars;

/// Arguments of `scalegnn demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Random seed of the generated graph and of training.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep the dataset and the run directories here instead of a temporary directory.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// Training epochs per model.
    #[arg(long, default_value_t = 60)]
    pub epochs: usize,
    /// Hidden width of both models (small keeps the demo under a minute on 2 cores).
    #[arg(long, default_value_t = 32)]
    pub hidden: usize,
}

/// Runs `scalegnn demo`.
pub fn run(a: Args) -> Result<()> {
    let base = match &a.keep {
        Some(k) => k.clone(),
        None => std::env::temp_dir().join(format!("scalegnn-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let out = base.join("small");
    println!(
        "1. generating the small synthetic preset (100k nodes, 2M edges) into {} ...",
        out.display()
    );
    let bars = Bars::new();
    let t0 = Instant::now();
    // Never replaces anything: a --keep directory that already holds the demo is refused.
    generate(
        &SynthConfig::preset(Preset::Small, a.seed),
        &out,
        false,
        &bars,
    )
    .with_context(|| format!("generating {}", out.display()))?;
    bars.finish();
    println!("   done in {:.1}s\n", t0.elapsed().as_secs_f64());
    let ds = Dataset::open(&out, OpenOptions::default())
        .with_context(|| format!("opening {}", out.display()))?;
    print!("{}", super::info::render(&ds.info()?));
    // Gaussian features: row-sum normalisation (meant for bag-of-words) would distort them.
    let data = NodeData::from_dataset(&ds, false)?;
    println!(
        "\n2. training full-batch, {} epochs each (test accuracy at the best validation epoch):",
        a.epochs
    );
    for kind in [ModelKind::Gcn, ModelKind::Sage] {
        let cfg = TrainConfig {
            model: kind,
            hidden: a.hidden,
            epochs: a.epochs,
            seed: a.seed,
            ..TrainConfig::default()
        };
        let run = RunDir::create(&base.join(format!("run-{}", kind.name())), false)?;
        let dir = run.path().to_path_buf();
        // The run's configuration, so `scalegnn eval|predict|embed` work on a kept demo run.
        let resolved = super::train::ResolvedConfig {
            dataset: out.canonicalize().unwrap_or(out.clone()),
            run: super::train::RunConfig {
                model: Some(kind.name().into()),
                hidden: Some(a.hidden),
                epochs: Some(a.epochs),
                seed: Some(a.seed),
                normalize_features: Some(false),
                ..Default::default()
            },
        };
        run.write("config.toml", toml::to_string(&resolved)?.as_bytes())?;
        let mut log = MetricsLog::to_file(&dir.join("metrics.jsonl"))?;
        let t = Instant::now();
        let (_, s) = train_node_classification(
            &data,
            &ds.graph,
            &cfg,
            &mut log,
            Some(&dir),
            &mut |_, _, _| {},
        )?;
        let png = dir.join("curves.png");
        let drew = plot_curves(&log.lines, &png)?;
        println!(
            "   {:<5} test acc {:.3} (val {:.3}, epoch {}), {:.1} ms/epoch, {:.1}s{}",
            kind.name(),
            s.test_acc,
            s.best_val_acc,
            s.best_epoch,
            s.mean_epoch_ms,
            t.elapsed().as_secs_f64(),
            if drew {
                format!(", curves in {}", png.display())
            } else {
                String::new()
            }
        );
    }
    drop(ds);
    if a.keep.is_none() {
        std::fs::remove_dir_all(&base).with_context(|| format!("removing {}", base.display()))?;
        println!("\n(removed the temporary directory; pass --keep DIR to keep the dataset, runs and plots)");
    }
    Ok(())
}
