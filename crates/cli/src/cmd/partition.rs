//! `scalegnn partition DATASET --parts P`: split the nodes into P parts (METIS or random),
//! write `partition-P.npy` into the dataset and record it in the manifest.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use scalegnn_data::partition::partition_dataset;
use scalegnn_data::{Dataset, OpenOptions};
use scalegnn_graph::PartitionMethod;

/// Arguments of `scalegnn partition`.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory.
    pub dataset: PathBuf,
    /// Number of parts (1 ≤ P ≤ nodes).
    #[arg(long)]
    pub parts: usize,
    /// metis (minimum edge cut, through the METIS library) or random (seeded, equal sizes).
    #[arg(long, default_value = "metis", value_parser = |s: &str| s.parse::<PartitionMethod>())]
    pub method: PartitionMethod,
    /// Seed of METIS's randomised coarsening, or of the random assignment.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Replace a partition into the same number of parts the dataset already has.
    #[arg(long)]
    pub force: bool,
}

/// Runs `scalegnn partition`.
pub fn run(a: Args) -> Result<()> {
    let ds = Dataset::open(&a.dataset, OpenOptions::default())
        .with_context(|| format!("opening dataset {}", a.dataset.display()))?;
    if !ds.dir.join("manifest.json").exists() {
        bail!(
            "{} has no manifest.json: re-ingest it or convert it with `scalegnn store` first, \
             so the partition's checksum can be recorded",
            a.dataset.display()
        );
    }
    let n = ds.graph.num_nodes();
    if a.parts == 0 || a.parts > n {
        bail!(
            "--parts {}: need 1 ≤ parts ≤ {n} (the dataset's nodes)",
            a.parts
        );
    }
    if let Some(old) = ds.manifest.partitions.get(&a.parts.to_string()) {
        if !a.force {
            bail!(
                "{} already has a partition into {} parts ({}, {}); --force replaces it",
                a.dataset.display(),
                a.parts,
                old.method,
                old.file
            );
        }
    }
    let (info, secs) = partition_dataset(&ds, a.parts, a.method, a.seed)
        .with_context(|| format!("partitioning {}", a.dataset.display()))?;
    println!(
        "{} parts ({}, seed {}): edge cut {} of {} edges ({:.2} %), balance {:.3} (largest \
         part / mean); {:.1} s, peak RSS {:.0} MiB; wrote {}",
        info.parts,
        info.method,
        info.seed,
        info.cut_edges,
        ds.graph.num_edges(),
        100.0 * info.cut_fraction,
        info.balance,
        secs,
        super::profile::peak_rss_mib(),
        ds.dir.join(&info.file).display()
    );
    Ok(())
}
