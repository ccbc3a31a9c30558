//! Foundation benchmark (not a test): synth products generation, CSR build throughput,
//! dataset open time, and the real-data ingest counts. Prints JSON lines as
//! `../shared/bench/README.md` asks. Set SCALEGNN_BENCH_PRODUCTS=DIR to reuse a generated
//! products directory (otherwise one is generated into a temp dir, ~20 s, 1.5 GB of disk).

use std::path::{Path, PathBuf};
use std::time::Instant;

use scalegnn_data::synth::{generate, Preset, SynthConfig};
use scalegnn_data::{ingest, readers, Dataset, IngestOptions, NoProgress, OpenOptions};
use scalegnn_graph::{Csr, CsrBuilder, Validation};

fn emit(metric: &str, value: f64, unit: &str, dataset: &str, extra: &str) {
    println!(
        "{{\"metric\": \"{metric}\", \"value\": {value}, \"unit\": \"{unit}\", \"engine\": \"scalegnn\", \"dataset\": \"{dataset}\", \"threads\": {}{extra}}}",
        rayon::current_num_threads()
    );
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let tmp = std::env::temp_dir().join(format!("scalegnn-bench-{}", std::process::id()));
    let products = match std::env::var_os("SCALEGNN_BENCH_PRODUCTS") {
        Some(p) => PathBuf::from(p),
        None => {
            let out = tmp.join("products");
            let t = Instant::now();
            generate(
                &SynthConfig::preset(Preset::Products, 0),
                &out,
                false,
                &NoProgress,
            )
            .expect("synth products");
            emit("synth_s", t.elapsed().as_secs_f64(), "s", "products", "");
            emit("synth_peak_rss_mib", peak_rss_mib(), "MiB", "products", "");
            out
        }
    };

    // Opening: mmap + O(1) checks vs full checksum verification.
    let mut fast = Vec::new();
    let mut csr_only = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let ds = Dataset::open(&products, OpenOptions { verify: false }).expect("open products");
        fast.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(ds.graph.is_mapped());
        let t = Instant::now();
        let g = Csr::open(&products, Validation::Shape).expect("open csr");
        csr_only.push(t.elapsed().as_secs_f64() * 1e3);
        drop(g);
    }
    emit(
        "open_ms",
        median(fast),
        "ms",
        "products",
        ", \"verify\": false",
    );
    emit(
        "csr_open_ms",
        median(csr_only),
        "ms",
        "products",
        ", \"validation\": \"shape\"",
    );
    let t = Instant::now();
    Csr::open(&products, Validation::Full).expect("open csr full");
    emit(
        "csr_open_full_validation_ms",
        t.elapsed().as_secs_f64() * 1e3,
        "ms",
        "products",
        "",
    );
    let t = Instant::now();
    Dataset::open(&products, OpenOptions { verify: true }).expect("open verified");
    emit(
        "open_verified_ms",
        t.elapsed().as_secs_f64() * 1e3,
        "ms",
        "products",
        ", \"verify\": true",
    );

    // CSR build: the products edge list (one direction per undirected edge) → undirected CSR.
    let g = Csr::open(&products, Validation::Shape).expect("open csr");
    let (mut src, mut dst) = (Vec::new(), Vec::new());
    for v in 0..g.num_nodes() {
        for u in g.neighbors(v).iter().filter(|&u| u < v) {
            src.push(u as u32);
            dst.push(v as u32);
        }
    }
    let n = g.num_nodes();
    drop(g);
    let input_edges = src.len();
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let built = CsrBuilder::new()
            .undirected(true)
            .dedup(true)
            .remove_self_loops(true)
            .num_nodes(n)
            .build(&src, &dst)
            .expect("build");
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(built.csr.num_edges(), 2 * input_edges);
    }
    let s = median(times);
    let extra = format!(
        ", \"input_edges\": {input_edges}, \"output_edges\": {}, \"seconds\": {s:.3}",
        2 * input_edges
    );
    emit(
        "csr_build_edges_per_s",
        (2 * input_edges) as f64 / s,
        "edges/s",
        "products",
        &extra,
    );
    drop((src, dst));

    // Real data: ingest counts (skipped without ../shared).
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    let cases: [(&str, &str); 3] = [
        ("cora", "planetoid-npy/cora"),
        ("pubmed", "planetoid-npy/pubmed"),
        ("MUTAG", "tu/MUTAG"),
    ];
    for (name, rel) in cases {
        let p = shared.join(rel);
        if !p.exists() {
            eprintln!("skipping {name}: {} not found", p.display());
            continue;
        }
        let raw = if rel.starts_with("tu/") {
            readers::tu::read(&p, None)
        } else {
            readers::npy_dir::read(&p)
        }
        .expect("read");
        let out = tmp.join(name);
        let t = Instant::now();
        let m = ingest(raw, &IngestOptions::default(), &out, &NoProgress).expect("ingest");
        let extra = format!(
            ", \"nodes\": {}, \"edges\": {}, \"graphs\": {}, \"seconds\": {:.3}",
            m.num_nodes,
            m.num_edges,
            m.num_graphs.unwrap_or(0),
            t.elapsed().as_secs_f64()
        );
        emit("ingest_edges", m.num_edges as f64, "edges", name, &extra);
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
