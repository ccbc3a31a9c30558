//! Topology-only sampler throughput on a dataset directory, reported as JSON lines comparable
//! with PyG's anchor (../shared/bench/README.md §3–4): batch 1024, fanouts [15,10,5], 2 threads,
//! 5 warm-up + 50 timed batches of shuffled `train_idx` seeds.
//!
//! `SCALEGNN_BENCH_GRAPH=/work/synth/products-sg cargo bench -p scalegnn-sample --bench sampler`

use std::path::Path;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_graph::{Csr, Validation};
use scalegnn_sample::{NeighborSampler, Sampler};

const BATCH: usize = 1024;
const FANOUTS: [i64; 3] = [15, 10, 5];
const THREADS: usize = 2;
const WARMUP: usize = 5;
const BATCHES: usize = 50;

fn main() {
    let Some(dir) = std::env::var_os("SCALEGNN_BENCH_GRAPH") else {
        println!("sampler bench skipped: set SCALEGNN_BENCH_GRAPH to a dataset directory");
        return;
    };
    if let Err(e) = run(Path::new(&dir)) {
        eprintln!("sampler bench: {e}");
        std::process::exit(1);
    }
}

fn run(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let graph = Csr::open(dir, Validation::Shape)?;
    let train = scalegnn_npy::read_array::<i64>(&dir.join("train_idx.npy"))?;
    let mut order = train
        .iter()
        .map(|&v| u32::try_from(v))
        .collect::<Result<Vec<u32>, _>>()?;
    order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(0));
    let need = (WARMUP + BATCHES) * BATCH;
    while order.len() < need {
        order.extend_from_within(..);
    }
    let sampler = NeighborSampler::new(&graph, &FANOUTS)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .build()?;

    let (mut nodes, mut edges) = (0usize, 0usize);
    let mut start = Instant::now();
    for i in 0..WARMUP + BATCHES {
        if i == WARMUP {
            (nodes, edges) = (0, 0);
            start = Instant::now();
        }
        let seeds = &order[i * BATCH..(i + 1) * BATCH];
        let batch = pool.install(|| sampler.sample(seeds, i as u64))?;
        nodes += batch.nodes.len();
        edges += batch.num_edges();
    }
    let dt = start.elapsed().as_secs_f64();
    let b = BATCHES as f64;
    let report = |metric: &str, value: f64, unit: &str| {
        println!(
            "{{\"metric\": \"{metric}\", \"value\": {value:.6}, \"unit\": \"{unit}\", \"engine\": \"scalegnn\", \"dataset\": \"{name}\", \"threads\": {THREADS}, \"batch_size\": {BATCH}, \"fanouts\": [15, 10, 5]}}"
        );
    };
    report("sampler_seeds_per_s", b * BATCH as f64 / dt, "seeds/s");
    report("sampler_edges_per_s", edges as f64 / dt, "edges/s");
    report("sampler_batch_ms", dt / b * 1e3, "ms");
    report("sampled_nodes_per_batch", nodes as f64 / b, "nodes");
    report("sampled_edges_per_batch", edges as f64 / b, "edges");
    Ok(())
}
