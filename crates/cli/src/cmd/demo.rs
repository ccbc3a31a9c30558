//! `scalegnn demo`: the first thing to run — generates the small preset and describes it.

use anyhow::{Context, Result};
use scalegnn_data::synth::{generate, Preset, SynthConfig};
use scalegnn_data::{Dataset, OpenOptions};

use crate::progress::Bars;

/// Arguments of `scalegnn demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Random seed of the generated graph.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep the generated dataset in this directory instead of a temporary one.
    #[arg(long)]
    pub keep: Option<std::path::PathBuf>,
}

/// Runs `scalegnn demo`.
pub fn run(a: Args) -> Result<()> {
    let tmp = tempfile_dir()?;
    let out = a.keep.clone().unwrap_or_else(|| tmp.join("small"));
    println!(
        "generating the small synthetic preset into {} ...",
        out.display()
    );
    let bars = Bars::new();
    let t0 = std::time::Instant::now();
    generate(
        &SynthConfig::preset(Preset::Small, a.seed),
        &out,
        false,
        &bars,
    )
    .with_context(|| format!("generating {}", out.display()))?;
    bars.finish();
    println!("generated in {:.1}s\n", t0.elapsed().as_secs_f64());
    let ds = Dataset::open(&out, OpenOptions::default())
        .with_context(|| format!("opening {}", out.display()))?;
    print!("{}", super::info::render(&ds.info()?));
    drop(ds);
    std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    if a.keep.is_none() {
        println!("\n(removed the temporary dataset; pass --keep DIR to keep it)");
    }
    Ok(())
}

/// A fresh private directory under the system temp dir.
fn tempfile_dir() -> Result<std::path::PathBuf> {
    let base = std::env::temp_dir().join(format!("scalegnn-demo-{}", std::process::id()));
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    Ok(base)
}
