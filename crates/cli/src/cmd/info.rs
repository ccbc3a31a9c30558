//! `scalegnn info DIR`: describe a dataset directory.

use std::path::PathBuf;

use anyhow::{Context, Result};
use scalegnn_data::{Dataset, DatasetInfo, OpenOptions};

/// Arguments of `scalegnn info`.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset directory (from `scalegnn ingest`/`synth`, or a make_synth.py directory).
    pub dir: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Skip checksum verification and range scans (opens in milliseconds; trusts the files).
    #[arg(long)]
    pub no_verify: bool,
}

/// Runs `scalegnn info`.
pub fn run(a: Args) -> Result<()> {
    let ds = Dataset::open(
        &a.dir,
        OpenOptions {
            verify: !a.no_verify,
        },
    )
    .with_context(|| format!("opening dataset {}", a.dir.display()))?;
    let info = ds
        .info()
        .with_context(|| format!("describing {}", a.dir.display()))?;
    if a.json {
        println!("{}", serde_json::to_string(&info)?);
    } else {
        print!("{}", render(&info));
    }
    Ok(())
}

fn opt(v: Option<usize>) -> String {
    v.map_or_else(|| "-".into(), |x| x.to_string())
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The human-readable table printed by `info` (and `demo`).
pub fn render(i: &DatasetInfo) -> String {
    let mut s = String::new();
    let task = serde_json::to_value(i.task)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    s += &format!("dataset     {} ({})\n", i.name, i.path);
    s += &format!("task        {task}\n");
    s += &format!("nodes       {}\n", i.nodes);
    s += &format!(
        "edges       {} directed{}\n",
        i.edges,
        match i.symmetric {
            Some(true) => " (symmetric)",
            Some(false) => " (not symmetric)",
            None => "",
        }
    );
    if let Some(g) = i.graphs {
        s += &format!("graphs      {g}\n");
    }
    s += &format!("features    {}\n", i.features);
    s += &format!("classes     {}\n", i.classes);
    s += &format!(
        "split       train {} / val {} / test {}{}\n",
        opt(i.train),
        opt(i.val),
        opt(i.test),
        if i.splits > 1 {
            format!(" (split 0 of {}; train --split K)", i.splits)
        } else {
            String::new()
        }
    );
    if let Some(l) = &i.link_split {
        let [tr, va, te] = l.fractions;
        let how = match &l.source {
            Some(src) => format!("imported from {src}"),
            None => format!("seed {}", l.seed),
        };
        let neg = match l.negatives_per_positive {
            0 => "negatives shared by the positives".to_string(),
            k => format!("{k} fixed negatives per positive"),
        };
        s += &format!(
            "edge split  {tr:.4}/{va:.4}/{te:.4} of {} undirected edges ({how}, {neg}; train --task link)\n",
            l.pairs
        );
    }
    s += &format!(
        "in-degree   min {} / median {} / p99 {} / max {} (mean {:.2}, {} isolated)\n",
        i.degree_min, i.degree_median, i.degree_p99, i.degree_max, i.degree_mean, i.isolated_nodes
    );
    s += &format!("features in {}\n", i.feature_store);
    s += &format!(
        "checksums   {}\n",
        if i.checksums_verified {
            "verified"
        } else {
            "not verified"
        }
    );
    s += &format!(
        "files       {} in {} files\n",
        human(i.total_bytes),
        i.files.len()
    );
    for f in &i.files {
        s += &format!("  {:<20} {:>12}\n", f.name, human(f.bytes));
    }
    s
}
