//! `scalegnn demo`: the first thing to run — generates the small synthetic preset, describes
//! it, trains GCN and GraphSAGE on it full-batch, prints their test accuracy and draws curves.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use scalegnn_data::synth::{generate, Preset, SynthConfig};
use scalegnn_data::{Dataset, OpenOptions};
use scalegnn_train::{train, RunConfig, RunOptions, Silent, TrainOutcome};

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
    // A temporary directory is not named: it is gone when the demo ends.
    match &a.keep {
        Some(_) => println!(
            "1. generating the small synthetic preset (100k nodes, 2M edges) into {} ...",
            out.display()
        ),
        None => println!("1. generating the small synthetic preset (100k nodes, 2M edges) ..."),
    }
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
    drop(ds);
    println!(
        "\n2. training full-batch, {} epochs each (test accuracy at the best validation epoch):",
        a.epochs
    );
    for kind in ["gcn", "sage"] {
        let cfg = RunConfig {
            dataset: Some(out.clone()),
            model: Some(kind.into()),
            hidden: Some(a.hidden),
            epochs: Some(a.epochs),
            seed: Some(a.seed),
            // Gaussian features: row-sum normalisation (meant for bag-of-words) would distort them.
            normalize_features: Some(false),
            ..Default::default()
        };
        let dir = base.join(format!("run-{kind}"));
        let opts = RunOptions {
            out: dir.clone(),
            force: false,
            resume: false,
            verify: false,
            interrupt: None,
        };
        let t = Instant::now();
        let TrainOutcome::Done(res) = train(&cfg, &opts, &mut Silent)? else {
            bail!("training was interrupted");
        };
        let Some((_, s)) = res.first() else {
            bail!("no run finished");
        };
        println!(
            "   {kind:<5} test acc {:.3} (val {:.3}, epoch {}), {:.1} ms/epoch, {:.1}s{}",
            s.test,
            s.best_val,
            s.best_epoch,
            s.mean_epoch_ms,
            t.elapsed().as_secs_f64(),
            if a.keep.is_some() {
                format!(", run in {}", dir.display())
            } else {
                String::new()
            }
        );
    }
    if a.keep.is_none() {
        std::fs::remove_dir_all(&base).with_context(|| format!("removing {}", base.display()))?;
        println!("\n(pass --keep DIR to keep the dataset, the runs and their plots)");
    }
    Ok(())
}
