//! Builds SAGMM's gate input of a dataset under a memory budget and prints one JSON line:
//! the plan, wall time and the process's peak resident memory (VmHWM).
//!
//! ```text
//! cargo run --release -p scalegnn-loader --example build_gate -- DATASET BUDGET [K] [FALLBACK]
//! ```
//! BUDGET: bytes, or with a unit (`2GiB`, `1536MiB`); `available` for the memory available.
//! An existing table of the same inputs is reused (remove `DATASET/derived/sagmm-gate-*` to
//! measure a build).

use std::path::{Path, PathBuf};
use std::time::Instant;

use scalegnn_graph::{Csr, Validation};
use scalegnn_loader::derived::{gate_input, BuildOptions, GateParams};

/// "2GiB", "1536MiB", "3G", "1000000" → bytes.
fn parse_bytes(s: &str) -> Option<u64> {
    if s == "available" {
        return Some(scalegnn_limits::available_memory());
    }
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.trim().parse().ok()?;
    let mul = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1u64,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return None,
    };
    Some((v * mul as f64) as u64)
}

/// A field of /proc/self/status, in bytes (e.g. `VmHWM`, the peak resident set).
fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .map_or(0, |kb: u64| kb << 10)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: build_gate DATASET BUDGET [K] [FALLBACK_DIR]");
        std::process::exit(2);
    }
    let dir = PathBuf::from(&args[0]);
    let Some(budget) = parse_bytes(&args[1]) else {
        eprintln!("bad budget {:?} (e.g. 2GiB)", args[1]);
        std::process::exit(2);
    };
    let k: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(8);
    let fallback = args.get(3).map(PathBuf::from);
    let run = || -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        let m = scalegnn_data::Manifest::load(&dir)?;
        let graph = Csr::open(&dir, Validation::Shape)?;
        let codec = m.feature_store.codec.parse()?;
        let store = scalegnn_store::open_store(&dir, &m.feature_store.kind, codec)?;
        let rss_open = status_bytes("VmRSS");
        let t0 = Instant::now();
        let t = gate_input(
            &dir,
            &graph,
            store.as_ref(),
            &GateParams::new(k),
            &BuildOptions {
                budget_bytes: budget,
                fallback_dir: fallback.as_deref().map(Path::new),
            },
        )?;
        let secs = t0.elapsed().as_secs_f64();
        let peak = status_bytes("VmHWM");
        Ok(serde_json::json!({
            "bench": "sagmm_gate_build",
            "dataset": dir.display().to_string(),
            "k": k,
            "budget_bytes": budget,
            "seconds": secs,
            "built": t.built.is_some(),
            "plan": t.built.as_ref().map(|b| serde_json::to_value(&b.plan).unwrap_or_default()),
            "planned_peak_bytes": t.built.as_ref().map(|b| b.plan.peak_bytes()),
            "residual_max": t.built.as_ref().and_then(|b| b.residual_max),
            "phases": t.built.as_ref().map(|b| b.phases.iter().map(|(n, s)| (n.to_string(), *s)).collect::<std::collections::BTreeMap<_, _>>()),
            "rss_after_open_bytes": rss_open,
            "peak_rss_bytes": peak,
            "peak_over_budget": peak as f64 / budget as f64,
            "rss_anon_end_bytes": status_bytes("RssAnon"),
            "rss_file_end_bytes": status_bytes("RssFile"),
            "table": t.dir.display().to_string(),
            "location": format!("{:?}", t.location),
        }))
    };
    match run() {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
