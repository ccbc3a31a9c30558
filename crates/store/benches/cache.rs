//! Feature cache benchmark (not a test) on a dataset directory: samples 20 mini-batches of
//! 1024 shuffled `train_idx` seeds with fan-outs [15, 10, 5], then prints JSON lines:
//!
//! - `cache_hit_rate`: hub (degree-ranked) + CLOCK of the same total size vs LRU, CLOCK and
//!   SIEVE alone and hub + SIEVE, at cache sizes of 5%, 10% and 20% of the nodes, for several
//!   hub shares (id-only simulators, `scalegnn_store::sim`); `warm` = the last 10 batches;
//! - the real `FeatureCache` (hub 50% + CLOCK 50%) over the mmap `x.npy`: hit rate, rows
//!   fetched, inner bytes, mean miss-fetch latency, and `gather_rows_per_s` through the cache
//!   vs the plain `MmapStore` on the same batches;
//! - `hub_lookup_ns`: the dense id map vs `HashMap`s (std SipHash and a multiplicative hash).
//!
//! `SCALEGNN_BENCH_DATASET=/work/synth/products-sg cargo bench -p scalegnn-store --bench cache`

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::time::Instant;

use scalegnn_graph::{Csr, Validation};
use scalegnn_sample::{NeighborSampler, Sampler};
use scalegnn_store::sim::{self, Policy};
use scalegnn_store::{
    hub_nodes, top_nodes, write_store, Codec, FeatureCache, FeatureStore, MmapStore, NpyRows,
    SqliteStore,
};

const BATCH: usize = 1024;
const BATCHES: usize = 20;
const FANOUTS: [i64; 3] = [15, 10, 5];
const THREADS: usize = 2;
const SIZES: [f64; 3] = [0.05, 0.10, 0.20];
const HUB_SHARES: [f64; 5] = [0.25, 0.5, 0.75, 0.9, 1.0];
/// Batches of a warm-up pass (other seeds) whose sampling counts rank the `warmup` hubs.
const WARMUP_BATCHES: usize = 10;

fn main() {
    let Some(dir) = std::env::var_os("SCALEGNN_BENCH_DATASET") else {
        eprintln!("cache bench skipped: set SCALEGNN_BENCH_DATASET to a dataset directory");
        return;
    };
    if let Err(e) = run(Path::new(&dir)) {
        eprintln!("cache bench: {e}");
        std::process::exit(1);
    }
}

struct Out {
    dataset: String,
}

impl Out {
    fn emit(&self, metric: &str, value: f64, unit: &str, extra: &str) {
        println!(
            "{{\"metric\": \"{metric}\", \"value\": {value:.6}, \"unit\": \"{unit}\", \"engine\": \"scalegnn\", \"dataset\": \"{}\", \"threads\": {THREADS}, \"batch_size\": {BATCH}, \"batches\": {BATCHES}, \"fanouts\": [15, 10, 5]{extra}}}",
            self.dataset
        );
    }
}

/// SplitMix64 for the seed shuffle.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Hit rate over all batches and over the second half (warm).
fn rates(policy: &mut dyn Policy, batches: &[Vec<u32>]) -> (f64, f64) {
    let half = batches.len() / 2;
    let (mut hits, mut total, mut warm_hits, mut warm_total) = (0usize, 0usize, 0usize, 0usize);
    for (i, b) in batches.iter().enumerate() {
        let h = policy.batch(b);
        hits += h;
        total += b.len();
        if i >= half {
            warm_hits += h;
            warm_total += b.len();
        }
    }
    (
        hits as f64 / total.max(1) as f64,
        warm_hits as f64 / warm_total.max(1) as f64,
    )
}

/// FxHash-style multiplicative hasher for u32 keys.
#[derive(Default)]
struct MulHasher(u64);

impl Hasher for MulHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

fn run(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let out = Out {
        dataset: dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .build_global()?;
    let csr = Csr::open(dir, Validation::Shape)?;
    let n = csr.num_nodes();
    let train = scalegnn_npy::read_array::<i64>(&dir.join("train_idx.npy"))?;
    let mut order = train
        .iter()
        .map(|&v| u32::try_from(v))
        .collect::<Result<Vec<u32>, _>>()?;
    let mut rng = SplitMix(0);
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    while order.len() < BATCH * (BATCHES + WARMUP_BATCHES) {
        order.extend_from_within(..);
    }
    let sampler = NeighborSampler::new(&csr, &FANOUTS)?;
    let t = Instant::now();
    let batches: Vec<Vec<u32>> = (0..BATCHES)
        .map(|i| {
            sampler
                .sample(&order[i * BATCH..(i + 1) * BATCH], i as u64)
                .map(|b| b.nodes)
        })
        .collect::<Result<_, _>>()?;
    let lookups: usize = batches.iter().map(Vec::len).sum();
    // A warm-up pass on the next seeds of the shuffled order: how often each node is sampled.
    let mut counts = vec![0u32; n];
    for i in BATCHES..BATCHES + WARMUP_BATCHES {
        let b = sampler.sample(&order[i * BATCH..(i + 1) * BATCH], i as u64)?;
        for id in b.nodes {
            counts[id as usize] += 1;
        }
    }
    eprintln!(
        "sampled {BATCHES} batches ({lookups} node ids) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    out.emit(
        "sampled_nodes_per_batch",
        lookups as f64 / BATCHES as f64,
        "nodes",
        "",
    );

    // Distinct nodes over all batches: the best any cache of unbounded size could do.
    let mut seen = vec![false; n];
    let distinct = batches
        .iter()
        .flatten()
        .filter(|&&id| !std::mem::replace(&mut seen[id as usize], true))
        .count();
    drop(seen);
    out.emit(
        "cache_hit_rate_upper_bound",
        1.0 - distinct as f64 / lookups as f64,
        "ratio",
        ", \"policy\": \"infinite\"",
    );

    let indptr = csr.indptr();
    // Hit rates, id-only simulators.
    for &frac in &SIZES {
        let total = (frac * n as f64) as usize;
        let size = format!(", \"cache_rows\": {total}, \"cache_frac\": {frac}");
        let report = |policy: &mut dyn Policy, hub_share: Option<f64>| {
            let (all, warm) = rates(policy, &batches);
            let share = hub_share.map_or(String::new(), |s| format!(", \"hub_share\": {s}"));
            let extra = format!(", \"policy\": \"{}\"{size}{share}", policy.name());
            out.emit("cache_hit_rate", all, "ratio", &extra);
            out.emit("cache_hit_rate_warm", warm, "ratio", &extra);
        };
        report(&mut sim::Lru::new(n, total), None);
        report(&mut sim::Clock::new(n, total), None);
        report(&mut sim::Sieve::new(n, total), None);
        for &share in &HUB_SHARES {
            let hub_rows = (share * total as f64) as usize;
            let hub = hub_nodes(indptr, hub_rows);
            let clock = sim::Clock::new(n, total - hub_rows);
            report(
                &mut sim::Tiered::new(n, &hub, clock, "hub+clock"),
                Some(share),
            );
            if share == 1.0 {
                let hub = top_nodes(&counts, total);
                let none = sim::Clock::new(n, 0);
                report(
                    &mut sim::Tiered::new(n, &hub, none, "warmup_hub"),
                    Some(share),
                );
            }
            if share == 0.5 || share == 0.9 {
                let sieve = sim::Sieve::new(n, total - hub_rows);
                report(
                    &mut sim::Tiered::new(n, &hub, sieve, "hub+sieve"),
                    Some(share),
                );
                let lru = sim::Lru::new(n, total - hub_rows);
                report(&mut sim::Tiered::new(n, &hub, lru, "hub+lru"), Some(share));
            }
        }
    }

    // Dense map vs hash maps for hub lookups (10% of nodes pinned).
    {
        let hub = hub_nodes(indptr, n / 10);
        let mut dense = vec![u32::MAX; n];
        let mut sip: HashMap<u32, u32> = HashMap::with_capacity(hub.len());
        let mut mul: HashMap<u32, u32, BuildHasherDefault<MulHasher>> =
            HashMap::with_capacity_and_hasher(hub.len(), Default::default());
        for (slot, &id) in hub.iter().enumerate() {
            dense[id as usize] = slot as u32;
            sip.insert(id, slot as u32);
            mul.insert(id, slot as u32);
        }
        let time = |f: &dyn Fn(u32) -> bool| {
            let t = Instant::now();
            let mut hits = 0usize;
            for b in &batches {
                for &id in b {
                    hits += usize::from(f(id));
                }
            }
            (t.elapsed().as_nanos() as f64 / lookups as f64, hits)
        };
        let (d_ns, d_hits) = time(&|id| dense[id as usize] != u32::MAX);
        let (s_ns, s_hits) = time(&|id| sip.contains_key(&id));
        let (m_ns, m_hits) = time(&|id| mul.contains_key(&id));
        assert!(d_hits == s_hits && s_hits == m_hits);
        // hashbrown: (key + value + 1 control byte) per bucket, buckets = capacity * 8 / 7.
        let map_mib = |cap: usize| (cap * 8 / 7 * 9) as f64 / (1 << 20) as f64;
        for (name, ns, mib) in [
            ("dense_vec", d_ns, (n * 4) as f64 / (1 << 20) as f64),
            ("hashmap_sip", s_ns, map_mib(sip.capacity())),
            ("hashmap_mul", m_ns, map_mib(mul.capacity())),
        ] {
            let extra = format!(
                ", \"map\": \"{name}\", \"hub_rows\": {}, \"map_mib\": {mib:.1}",
                hub.len()
            );
            out.emit("hub_lookup_ns", ns, "ns", &extra);
        }
    }

    // Real gathers: plain mmap vs the cache over it, on the same batches.
    let plain = MmapStore::open(dir, Codec::F32)?;
    let dim = plain.dim();
    let max_rows = batches.iter().map(Vec::len).max().unwrap_or(0);
    let mut buf = vec![0f32; max_rows * dim];
    // Warm the page cache so neither side pays for disk reads.
    for b in &batches {
        plain.gather(b, &mut buf[..b.len() * dim])?;
    }
    let t = Instant::now();
    for b in &batches {
        plain.gather(b, &mut buf[..b.len() * dim])?;
    }
    let plain_rate = lookups as f64 / t.elapsed().as_secs_f64();
    out.emit(
        "gather_rows_per_s",
        plain_rate,
        "rows/s",
        ", \"store\": \"mmap\", \"cache\": false",
    );
    drop(plain);
    for (frac, share) in SIZES.iter().flat_map(|&f| [(f, 0.5), (f, 1.0)]) {
        let total = (frac * n as f64) as usize;
        let hub = hub_nodes(indptr, (total as f64 * share) as usize);
        let t = Instant::now();
        let cache = FeatureCache::new(
            Box::new(MmapStore::open(dir, Codec::F32)?),
            &hub,
            total - hub.len(),
        )?;
        let build_s = t.elapsed().as_secs_f64();
        for pass in 0..2 {
            cache.reset_stats();
            let t = Instant::now();
            for b in &batches {
                cache.gather(b, &mut buf[..b.len() * dim])?;
            }
            let rate = lookups as f64 / t.elapsed().as_secs_f64();
            let s = cache.stats();
            let extra = format!(
                ", \"store\": \"mmap\", \"cache\": true, \"policy\": \"hub+clock\", \"hub_share\": {share}, \"cache_rows\": {total}, \"cache_frac\": {frac}, \"cache_mib\": {:.1}, \"shards\": {}, \"pass\": {pass}",
                cache.capacity_bytes() as f64 / (1 << 20) as f64,
                cache.shard_count()
            );
            out.emit("gather_rows_per_s", rate, "rows/s", &extra);
            out.emit("gather_speedup_vs_mmap", rate / plain_rate, "x", &extra);
            out.emit("cache_hit_rate", s.hit_rate(), "ratio", &extra);
            out.emit("cache_hub_hit_rate", s.hub_hit_rate(), "ratio", &extra);
            out.emit(
                "cache_rows_fetched_per_batch",
                s.rows_fetched as f64 / BATCHES as f64,
                "rows",
                &extra,
            );
            out.emit(
                "cache_inner_mib_per_batch",
                s.inner_bytes_read as f64 / BATCHES as f64 / (1 << 20) as f64,
                "MiB",
                &extra,
            );
            out.emit("cache_miss_fetch_ms", s.mean_fetch_ms(), "ms", &extra);
            if pass == 0 {
                out.emit("cache_build_s", build_s, "s", &extra);
            }
        }
    }
    if std::env::var_os("SCALEGNN_BENCH_CACHE_SQLITE").is_some() {
        sqlite_pass(dir, &out, &batches, indptr)?;
    }
    Ok(())
}

/// Plain SQLite store vs the cache over it (first 5 batches; SQLite is slow).
fn sqlite_pass(
    dir: &Path,
    out: &Out,
    batches: &[Vec<u32>],
    indptr: &[i64],
) -> Result<(), Box<dyn std::error::Error>> {
    let batches = &batches[..5];
    let tmp = tempfile::Builder::new()
        .prefix("scalegnn-cache-bench")
        .tempdir()?;
    let t = Instant::now();
    write_store(
        tmp.path(),
        "sqlite",
        Codec::F32,
        &NpyRows::open(&dir.join("x.npy"))?,
    )?;
    eprintln!("wrote x.sqlite in {:.1} s", t.elapsed().as_secs_f64());
    let plain = SqliteStore::open(tmp.path(), Codec::F32)?;
    let (n, dim) = (plain.num_nodes(), plain.dim());
    let lookups: usize = batches.iter().map(Vec::len).sum();
    let max_rows = batches.iter().map(Vec::len).max().unwrap_or(0);
    let mut buf = vec![0f32; max_rows * dim];
    plain.gather(&batches[0], &mut buf[..batches[0].len() * dim])?;
    let t = Instant::now();
    for b in batches {
        plain.gather(b, &mut buf[..b.len() * dim])?;
    }
    let plain_rate = lookups as f64 / t.elapsed().as_secs_f64();
    let extra = ", \"store\": \"sqlite\", \"cache\": false, \"sql_batches\": 5";
    out.emit("gather_rows_per_s", plain_rate, "rows/s", extra);
    drop(plain);
    for (frac, share) in [(0.1, 0.5), (0.1, 1.0), (0.2, 1.0)] {
        let total = (frac * n as f64) as usize;
        let hub = hub_nodes(indptr, (total as f64 * share) as usize);
        let cache = FeatureCache::new(
            Box::new(SqliteStore::open(tmp.path(), Codec::F32)?),
            &hub,
            total - hub.len(),
        )?;
        let t = Instant::now();
        for b in batches {
            cache.gather(b, &mut buf[..b.len() * dim])?;
        }
        let rate = lookups as f64 / t.elapsed().as_secs_f64();
        let s = cache.stats();
        let extra = format!(
            ", \"store\": \"sqlite\", \"cache\": true, \"sql_batches\": 5, \"hub_share\": {share}, \"cache_frac\": {frac}"
        );
        out.emit("gather_rows_per_s", rate, "rows/s", &extra);
        out.emit("gather_speedup_vs_sqlite", rate / plain_rate, "x", &extra);
        out.emit("cache_hit_rate", s.hit_rate(), "ratio", &extra);
        out.emit("cache_miss_fetch_ms", s.mean_fetch_ms(), "ms", &extra);
    }
    Ok(())
}
