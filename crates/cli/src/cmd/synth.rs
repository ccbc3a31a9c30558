//! `scalegnn synth`: generate a synthetic dataset directory.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use scalegnn_data::synth::{generate, Preset, SynthConfig};

use crate::progress::Bars;

/// Arguments of `scalegnn synth`.
#[derive(clap::Args)]
pub struct Args {
    /// Size preset: tiny (2k nodes), small (100k nodes, 2M edges), products (ogbn-products sizes: 2.45M nodes, 123.7M edges).
    #[arg(long, default_value = "small")]
    pub preset: Preset,
    /// Random seed; the same flags and seed give byte-identical files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output dataset directory (must not exist unless --force).
    #[arg(long)]
    pub out: PathBuf,
    /// Share of edges inside a class: 0.75 is homophilous (default), 0.2 heterophilous.
    #[arg(long)]
    pub homophily: Option<f64>,
    /// Override the preset's node count.
    #[arg(long)]
    pub nodes: Option<usize>,
    /// Override the preset's edge count (directed, so even).
    #[arg(long)]
    pub edges: Option<usize>,
    /// Override the preset's feature count.
    #[arg(long)]
    pub features: Option<usize>,
    /// Override the preset's class count.
    #[arg(long)]
    pub classes: Option<usize>,
    /// Dataset name written to the manifest (default: the preset's).
    #[arg(long)]
    pub name: Option<String>,
    /// Replace an existing output directory.
    #[arg(long)]
    pub force: bool,
}

/// Builds the generator configuration from the flags.
pub fn config(a: &Args) -> SynthConfig {
    let mut c = SynthConfig::preset(a.preset, a.seed);
    if let Some(n) = a.nodes {
        let ratio = n as f64 / c.nodes as f64;
        c.edges = ((c.edges as f64 * ratio) as usize / 2) * 2;
        c.train = (c.train as f64 * ratio) as usize;
        c.val = (c.val as f64 * ratio) as usize;
        c.nodes = n;
    }
    if let Some(e) = a.edges {
        c.edges = e;
    }
    if let Some(f) = a.features {
        c.features = f;
    }
    if let Some(k) = a.classes {
        c.classes = k;
    }
    if let Some(h) = a.homophily {
        c.homophily = h;
    }
    if let Some(name) = &a.name {
        c.name = name.clone();
    }
    c
}

/// Runs `scalegnn synth`.
pub fn run(a: Args) -> Result<()> {
    let cfg = config(&a);
    let t0 = Instant::now();
    let bars = Bars::new();
    let m = generate(&cfg, &a.out, a.force, &bars)
        .with_context(|| format!("generating {}", a.out.display()))?;
    bars.finish();
    println!(
        "wrote {}: {} nodes, {} edges, {} features, {} classes, edge homophily {:.3} in {:.1}s",
        a.out.display(),
        m.num_nodes,
        m.num_edges,
        m.num_features,
        m.num_classes,
        m.source["edge_homophily"].as_f64().unwrap_or(f64::NAN),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
