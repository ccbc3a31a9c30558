//! `scalegnn split-edges DATASET`: hold validation and test edges out of a dataset for link
//! prediction (with fixed negatives), or import the split it came with, and record the split
//! in its manifest.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use scalegnn_data::link::{
    pair_key, pair_keys, split_dataset, write_link_split, LinkSplit, LINK_FILES,
};
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
    /// Import the split the dataset came with instead (OGB's link sets, converted to .npy):
    /// DIR holds link_train_pos.npy, link_val_pos.npy, link_val_neg.npy, link_test_pos.npy
    /// and link_test_neg.npy, int64 `[pairs, 2]` node rows; checked, then copied in.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["link_split", "negatives", "seed"])]
    pub from: Option<PathBuf>,
}

/// Imports the split in `src` into the opened dataset `ds`; what was done, in one line.
pub fn import_into(ds: &Dataset, src: &std::path::Path) -> Result<String> {
    let n = ds.graph.num_nodes();
    let split = LinkSplit::load(src, n)
        .with_context(|| format!("--from {}", src.display()))?
        .with_context(|| format!("--from {}: no {} there", src.display(), LINK_FILES[0]))?;
    let edges = pair_keys(&ds.graph);
    let is_edge = |q: &[u32; 2]| edges.binary_search(&pair_key(q[0], q[1])).is_ok();
    // Negatives that are edges score as non-edges: a split drawn elsewhere may hold a few
    // (OGB draws its negatives from the full graph), so they are counted, not refused.
    let bad_neg = split
        .val_neg
        .iter()
        .chain(&split.test_neg)
        .filter(|q| is_edge(q))
        .count();
    if bad_neg > 0 {
        eprintln!(
            "warning: {bad_neg} of the {} validation/test negatives in {} are edges of the graph",
            split.val_neg.len() + split.test_neg.len(),
            src.display()
        );
    }
    let held_in_graph = split
        .val_pos
        .iter()
        .chain(&split.test_pos)
        .filter(|q| is_edge(q))
        .count();
    let total = (split.train_pos.len() + split.val_pos.len() + split.test_pos.len()) as f64;
    // K negatives per positive when both parts have exactly K each (MRR ranks each positive
    // against its own K); otherwise the negatives are shared (0). `load` refused empty parts.
    let per = |neg: usize, pos: usize| neg.is_multiple_of(pos).then_some(neg / pos);
    let k = match (
        per(split.val_neg.len(), split.val_pos.len()),
        per(split.test_neg.len(), split.test_pos.len()),
    ) {
        (Some(a), Some(b)) if a == b => a,
        _ => 0,
    };
    let info = LinkSplitInfo {
        fractions: [
            split.train_pos.len() as f64 / total,
            split.val_pos.len() as f64 / total,
            split.test_pos.len() as f64 / total,
        ],
        seed: 0,
        negatives_per_positive: k,
        pairs: total as u64,
        source: Some(src.display().to_string()),
    };
    write_link_split(&ds.dir, &ds.manifest, &split, info)
        .with_context(|| format!("writing the edge split into {}", ds.dir.display()))?;
    Ok(format!(
        "imported {} training, {} validation, {} test positives and {} + {} negatives from {}; \
         {held_in_graph} of the validation/test positives are edges of the graph and leave \
         message passing; wrote {}",
        split.train_pos.len(),
        split.val_pos.len(),
        split.test_pos.len(),
        split.val_neg.len(),
        split.test_neg.len(),
        src.display(),
        LINK_FILES.join(", ")
    ))
}

/// Draws a new edge split of `ds` and writes it into the dataset; the summary line.
pub fn split_into(ds: &Dataset, spec: LinkSplitSpec, seed: u64) -> Result<String> {
    split_dataset(ds, spec, seed)
        .with_context(|| format!("splitting the edges of {}", ds.dir.display()))
}

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
    if let Some(src) = &a.from {
        let same = src.canonicalize().ok() == ds.dir.canonicalize().ok();
        if same {
            bail!("--from {}: that is the dataset itself", src.display());
        }
        println!("{}", import_into(&ds, src)?);
        return Ok(());
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
