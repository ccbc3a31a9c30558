//! Gather benchmark (not a test): builds the f16/u8 mmap stores and the three SQLite stores
//! from a dataset's `x.npy` in a temp dir, then times 50 batches of 100k random ids per
//! store/codec on 2 rayon threads. Prints JSON lines as `../shared/bench/README.md` asks.
//! Set SCALEGNN_BENCH_DATASET=DIR (a dataset dir with x.npy); skipped when unset.

use std::path::{Path, PathBuf};
use std::time::Instant;

use scalegnn_store::{
    write_store, Codec, FeatureStore, MmapStore, NpyRows, SqliteRead, SqliteStore,
};

const BATCH: usize = 100_000;
const BATCHES: usize = 50;
/// Fewer batches for the SQLite read-mode comparison, which is slow.
const VARIANT_BATCHES: usize = 10;
const THREADS: usize = 2;

fn emit(metric: &str, value: f64, unit: &str, dataset: &str, extra: &str) {
    println!(
        "{{\"metric\": \"{metric}\", \"value\": {value:.3}, \"unit\": \"{unit}\", \"engine\": \"scalegnn\", \"dataset\": \"{dataset}\", \"threads\": {THREADS}{extra}}}"
    );
}

/// xorshift64*: random ids without a rand dependency.
fn random_ids(n: usize, count: usize, seed: u64) -> Vec<u32> {
    let mut s = seed | 1;
    (0..count)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as u32
        })
        .collect()
}

/// Times `batches` gathers (after one warm-up batch) and prints rows/s and MiB/s.
fn bench(store: &dyn FeatureStore, batches: usize, dataset: &str, extra: &str) {
    let n = store.num_nodes();
    let mut out = vec![0f32; BATCH * store.dim()];
    let warm = random_ids(n, BATCH, 999);
    store.gather(&warm, &mut out).expect("warm-up gather");
    let id_sets: Vec<Vec<u32>> = (0..batches)
        .map(|b| random_ids(n, BATCH, b as u64 + 1))
        .collect();
    let read0 = store.bytes_read();
    let t = Instant::now();
    for ids in &id_sets {
        store.gather(ids, &mut out).expect("gather");
    }
    let s = t.elapsed().as_secs_f64();
    let rows = (batches * BATCH) as f64;
    let stored_mib = (store.bytes_read() - read0) as f64 / (1 << 20) as f64;
    let extra = format!(
        ", \"store\": \"{}\", \"codec\": \"{}\", \"batch\": {BATCH}, \"batches\": {batches}{extra}",
        store.kind(),
        store.codec()
    );
    emit("gather_rows_per_s", rows / s, "rows/s", dataset, &extra);
    // Decoded f32 output per second; stored bytes per second differ by the codec's width.
    let out_mib = rows * store.dim() as f64 * 4.0 / (1 << 20) as f64;
    emit(
        "gather_mib_per_s",
        out_mib / s,
        "MiB/s",
        dataset,
        &format!("{extra}, \"basis\": \"f32_out\""),
    );
    emit(
        "gather_stored_mib_per_s",
        stored_mib / s,
        "MiB/s",
        dataset,
        &extra,
    );
}

fn main() {
    let Some(data) = std::env::var_os("SCALEGNN_BENCH_DATASET").map(PathBuf::from) else {
        eprintln!("gather bench skipped: set SCALEGNN_BENCH_DATASET to a dataset dir with x.npy");
        return;
    };
    let dataset = data
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .build_global()
        .expect("rayon pool");
    let tmp = tempfile::Builder::new()
        .prefix("scalegnn-gather-bench")
        .tempdir()
        .expect("temp dir");
    let src = NpyRows::open(&data.join("x.npy")).expect("x.npy");
    let build = |kind: &str, codec: Codec, dir: &Path| {
        let t = Instant::now();
        write_store(dir, kind, codec, &src).expect("write store");
        let extra = format!(", \"store\": \"{kind}\", \"codec\": \"{codec}\"");
        emit(
            "store_write_s",
            t.elapsed().as_secs_f64(),
            "s",
            &dataset,
            &extra,
        );
    };

    let f32_mmap = MmapStore::open(&data, Codec::F32).expect("open x.npy");
    bench(&f32_mmap, BATCHES, &dataset, "");
    drop(f32_mmap);
    for codec in [Codec::F16, Codec::U8] {
        build("mmap", codec, tmp.path());
        let s = MmapStore::open(tmp.path(), codec).expect("open mmap store");
        bench(&s, BATCHES, &dataset, "");
    }
    for codec in Codec::ALL {
        build("sqlite", codec, tmp.path());
        let bytes = std::fs::metadata(tmp.path().join("x.sqlite")).map_or(0, |m| m.len());
        let extra = format!(", \"store\": \"sqlite\", \"codec\": \"{codec}\"");
        emit(
            "store_file_mib",
            bytes as f64 / (1 << 20) as f64,
            "MiB",
            &dataset,
            &extra,
        );
        let s = SqliteStore::open(tmp.path(), codec).expect("open sqlite store");
        bench(
            &s,
            BATCHES,
            &dataset,
            ", \"read\": \"point\", \"sqlite_mmap\": true",
        );
        if codec == Codec::F32 {
            let s = s.with_read(SqliteRead::InArray);
            bench(
                &s,
                VARIANT_BATCHES,
                &dataset,
                ", \"read\": \"in_array\", \"sqlite_mmap\": true",
            );
            let s = s.with_read(SqliteRead::Point).with_mmap_bytes(0);
            bench(
                &s,
                VARIANT_BATCHES,
                &dataset,
                ", \"read\": \"point\", \"sqlite_mmap\": false",
            );
        }
        let _ = std::fs::remove_file(tmp.path().join("x.sqlite"));
    }
}
