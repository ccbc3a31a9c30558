//! `scalegnn split-edges DATASET`: hold validation and test edges out of a dataset for link
//! prediction (with fixed negatives) and record the split in its manifest.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use scalegnn_data::link::{split_edges, write_link_split, LINK_FILES};
use scalegnn_data::{Dataset, LinkSplitInfo, LinkSplitSpec, OpenOptions};

/// Arguments of `scalegnn split-edges`.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory.
    pub dataset: PathBuf,
    /// Shares of the undirected edges for training, validation and test (GAE's protocol:
    /// 0.85,0.05,0.10). Edges beyond the three shares stay in the message-passing graph.
    #[arg(long, default_value = "0.85,0.05,0.10", value_parser = LinkSplitSpec::parse)]
    pub link_split: LinkSplitSpec,
    /// Fixed negative pairs per validation and test positive.
    #[arg(long, default_value_t = 1)]
    pub negatives: usize,
    /// Seed of the split and of the negatives.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Replace an edge split the dataset already has.
    #[arg(long)]
    pub force: bool,
}

/// Splits the edges of the opened dataset `ds` and writes the split into it; what was done,
/// in one line.
pub fn split_into(ds: &Dataset, spec: LinkSplitSpec, seed: u64) -> Result<String> {
    let dir = &ds.dir;
    let (split, pairs) = split_edges(&ds.graph, spec, seed)
        .with_context(|| format!("splitting the edges of {}", dir.display()))?;
    let info = LinkSplitInfo {
        fractions: [spec.train, spec.val, spec.test],
        seed,
        negatives_per_positive: spec.negatives_per_positive,
        pairs,
    };
    write_link_split(dir, &ds.manifest, &split, info)
        .with_context(|| format!("writing the edge split into {}", dir.display()))?;
    let kept = pairs as usize - split.val_pos.len() - split.test_pos.len();
    Ok(format!(
        "{} undirected edges: {} training, {} validation, {} test positives ({} fixed \
         negatives per positive); message passing keeps {kept}; wrote {}",
        pairs,
        split.train_pos.len(),
        split.val_pos.len(),
        split.test_pos.len(),
        spec.negatives_per_positive,
        LINK_FILES.join(", ")
    ))
}

/// Runs `scalegnn split-edges`.
pub fn run(a: Args) -> Result<()> {
    let ds = Dataset::open(&a.dataset, OpenOptions::default())
        .with_context(|| format!("opening dataset {}", a.dataset.display()))?;
    if ds.manifest.link_split.is_some() && !a.force {
        bail!(
            "{} already has an edge split (manifest link_split); --force replaces it (runs \
             trained on it then no longer match it)",
            a.dataset.display()
        );
    }
    if !ds.dir.join("manifest.json").exists() {
        bail!(
            "{} has no manifest.json (a make_synth.py directory): convert it with \
             `scalegnn store` or re-ingest it first, so the split's checksums can be recorded",
            a.dataset.display()
        );
    }
    let spec = LinkSplitSpec {
        negatives_per_positive: a.negatives,
        ..a.link_split
    };
    spec.check()
        .map_err(|e| anyhow::anyhow!("--negatives: {e}"))?;
    println!("{}", split_into(&ds, spec, a.seed)?);
    Ok(())
}
