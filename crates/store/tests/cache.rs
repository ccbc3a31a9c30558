//! `FeatureCache`: same answers as the store it wraps (conformance suite), hub rows never read
//! from the inner store, the dynamic tier's hits and capacity, one deduplicated inner fetch per
//! batch, concurrent readers, error propagation; `hub_nodes`; the hit-rate simulators.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use scalegnn_store::conformance::{check_store, random_features, Tolerance};
use scalegnn_store::sim::{self, Policy};
use scalegnn_store::{
    hub_nodes, top_nodes, write_store, Codec, FeatureCache, FeatureStore, MmapStore, NpyRows,
    StoreError,
};

const N: usize = 5000;
const DIM: usize = 24;

/// In-memory rows that count what is read and can be told to fail.
struct CountingStore {
    x: Vec<f32>,
    dim: usize,
    calls: AtomicU64,
    rows: AtomicU64,
    seen: Mutex<Vec<u32>>,
    fail: AtomicBool,
}

impl CountingStore {
    fn new(x: Vec<f32>, dim: usize) -> CountingStore {
        CountingStore {
            x,
            dim,
            calls: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            seen: Mutex::new(Vec::new()),
            fail: AtomicBool::new(false),
        }
    }
}

impl FeatureStore for CountingStore {
    fn num_nodes(&self) -> usize {
        self.x.len() / self.dim
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn codec(&self) -> Codec {
        Codec::F32
    }
    fn kind(&self) -> &'static str {
        "counting"
    }
    fn gather(&self, ids: &[u32], out: &mut [f32]) -> Result<(), StoreError> {
        let d = self.dim;
        if out.len() != ids.len() * d {
            return Err(StoreError::OutLen {
                got: out.len(),
                expected: ids.len() * d,
                rows: ids.len(),
                dim: d,
            });
        }
        if self.fail.load(Ordering::Relaxed) {
            return Err(StoreError::BadSource("injected failure".into()));
        }
        for (&id, o) in ids.iter().zip(out.chunks_exact_mut(d)) {
            let id = id as usize;
            if id >= self.num_nodes() {
                return Err(StoreError::IdOutOfRange {
                    id: id as u32,
                    num_nodes: self.num_nodes(),
                });
            }
            o.copy_from_slice(&self.x[id * d..(id + 1) * d]);
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.rows.fetch_add(ids.len() as u64, Ordering::Relaxed);
        self.seen.lock().unwrap().extend_from_slice(ids);
        Ok(())
    }
    fn bytes_read(&self) -> u64 {
        self.rows.load(Ordering::Relaxed) * (self.dim * 4) as u64
    }
}

/// Lets a test keep a handle on the inner store the cache owns.
struct Shared(std::sync::Arc<CountingStore>);

impl FeatureStore for Shared {
    fn num_nodes(&self) -> usize {
        self.0.num_nodes()
    }
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn codec(&self) -> Codec {
        self.0.codec()
    }
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    fn gather(&self, ids: &[u32], out: &mut [f32]) -> Result<(), StoreError> {
        self.0.gather(ids, out)
    }
    fn bytes_read(&self) -> u64 {
        self.0.bytes_read()
    }
}

fn counting_cache(
    hub: &[u32],
    dynamic_rows: usize,
    shards: usize,
) -> (FeatureCache, std::sync::Arc<CountingStore>, Vec<f32>) {
    let x = random_features(N, DIM, 9);
    let inner = std::sync::Arc::new(CountingStore::new(x.clone(), DIM));
    let cache =
        FeatureCache::with_shards(Box::new(Shared(inner.clone())), hub, dynamic_rows, shards)
            .unwrap();
    (cache, inner, x)
}

fn rows_of(x: &[f32], ids: &[u32]) -> Vec<f32> {
    ids.iter()
        .flat_map(|&i| x[i as usize * DIM..(i as usize + 1) * DIM].iter().copied())
        .collect()
}

fn gather(store: &dyn FeatureStore, ids: &[u32]) -> Vec<f32> {
    let mut out = vec![f32::NAN; ids.len() * DIM];
    store.gather(ids, &mut out).unwrap();
    out
}

/// xorshift64*: ids without a rand dependency.
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

fn mmap_dataset(codec: Codec) -> (tempfile::TempDir, Vec<f32>) {
    let dir = tempfile::tempdir().unwrap();
    let x = random_features(N, DIM, 42);
    scalegnn_npy::write_array(&dir.path().join("x.npy"), &[N, DIM], &x).unwrap();
    if codec != Codec::F32 {
        let src = NpyRows::open(&dir.path().join("x.npy")).unwrap();
        write_store(dir.path(), "mmap", codec, &src).unwrap();
    }
    (dir, x)
}

#[test]
fn cache_over_mmap_passes_the_conformance_suite() {
    for codec in Codec::ALL {
        let (dir, x) = mmap_dataset(codec);
        let tol = Tolerance::for_codec(codec, &x, DIM);
        let hub: Vec<u32> = (0..N as u32).step_by(10).collect();
        // Hub + dynamic, dynamic only (multi-shard and one shard), hub only.
        for (hub, dynamic, shards) in [
            (&hub[..], 1000, 8),
            (&[][..], 700, 1),
            (&[][..], 2000, 64),
            (&hub[..], 0, 1),
        ] {
            let inner = MmapStore::open(dir.path(), codec).unwrap();
            let cache = FeatureCache::with_shards(Box::new(inner), hub, dynamic, shards).unwrap();
            assert_eq!(cache.kind(), "mmap");
            assert_eq!(cache.codec(), codec);
            check_store(&cache, &x, &tol);
            let s = cache.stats();
            assert!(s.hub_hits > 0 || hub.is_empty(), "{s:?}");
            assert!(s.dynamic_hits > 0 || dynamic == 0, "{s:?}");
            assert!(s.misses > 0 && s.inner_bytes_read > 0, "{s:?}");
            assert_eq!(s.lookups, s.hub_hits + s.dynamic_hits + s.misses, "{s:?}");
            assert!(cache.dynamic_len() <= dynamic);
        }
    }
}

#[test]
fn random_batches_with_repeats_match_the_inner_store() {
    let hub: Vec<u32> = random_ids(N, 300, 5);
    let (cache, _inner, x) = counting_cache(&hub, 500, 4);
    for b in 0..30 {
        let mut ids = random_ids(N, 400 + 37 * b, b as u64 + 11);
        // Repeats of the same id, adjacent and apart, including a hub id.
        ids.extend_from_slice(&[ids[3], ids[3], ids[0], hub[0], hub[0]]);
        assert_eq!(gather(&cache, &ids), rows_of(&x, &ids), "batch {b}");
    }
}

#[test]
fn hub_rows_never_touch_the_inner_store() {
    let hub: Vec<u32> = (0..N as u32).filter(|i| i % 7 == 3).collect();
    let (cache, inner, x) = counting_cache(&hub, 200, 4);
    assert_eq!(cache.hub_rows(), hub.len());
    // Construction read each hub row once, in one call.
    assert_eq!(inner.calls.load(Ordering::Relaxed), 1);
    assert_eq!(inner.rows.load(Ordering::Relaxed), hub.len() as u64);
    inner.seen.lock().unwrap().clear();
    let (calls0, rows0) = (
        inner.calls.load(Ordering::Relaxed),
        inner.rows.load(Ordering::Relaxed),
    );
    assert_eq!(cache.stats().inner_bytes_read, 0);

    // Hub ids only, with repeats, in big and small batches: no inner call at all.
    let mut ids: Vec<u32> = random_ids(hub.len(), 20_000, 3)
        .iter()
        .map(|&i| hub[i as usize])
        .collect();
    ids.push(ids[0]);
    assert_eq!(gather(&cache, &ids), rows_of(&x, &ids));
    assert_eq!(gather(&cache, &ids[..5]), rows_of(&x, &ids[..5]));
    assert_eq!(inner.calls.load(Ordering::Relaxed), calls0);
    assert_eq!(inner.rows.load(Ordering::Relaxed), rows0);
    let s = cache.stats();
    assert_eq!(s.hub_hits, ids.len() as u64 + 5);
    assert_eq!((s.misses, s.fetch_calls, s.inner_bytes_read), (0, 0, 0));

    // Mixed batches: the inner store sees only non-hub ids, once per distinct id per batch.
    for b in 0..5 {
        let mut ids = random_ids(N, 3000, 100 + b);
        ids.extend_from_within(..100);
        inner.seen.lock().unwrap().clear();
        let calls = inner.calls.load(Ordering::Relaxed);
        assert_eq!(gather(&cache, &ids), rows_of(&x, &ids));
        let seen = std::mem::take(&mut *inner.seen.lock().unwrap());
        assert!(seen.iter().all(|&id| !cache.is_hub(id)));
        let mut distinct = seen.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), seen.len(), "a row was fetched twice");
        assert!(inner.calls.load(Ordering::Relaxed) - calls <= 1);
    }
}

#[test]
fn dynamic_tier_hits_on_rereads_and_respects_capacity() {
    let (cache, inner, x) = counting_cache(&[], 1000, 8);
    assert_eq!(cache.dynamic_capacity(), 1000);
    assert_eq!(cache.shard_count(), 8);
    // 600 distinct ids fit easily (shards hold 125 each; hashing spreads ids well).
    let ids: Vec<u32> = (0..600).map(|i| i * 7 % N as u32).collect();
    assert_eq!(gather(&cache, &ids), rows_of(&x, &ids));
    let s = cache.stats();
    assert_eq!((s.misses, s.rows_fetched, s.fetch_calls), (600, 600, 1));
    assert_eq!(s.inner_bytes_read, 600 * DIM as u64 * 4);
    let calls = inner.calls.load(Ordering::Relaxed);

    cache.reset_stats();
    assert_eq!(gather(&cache, &ids), rows_of(&x, &ids));
    let s = cache.stats();
    assert_eq!(
        inner.calls.load(Ordering::Relaxed),
        calls,
        "re-read went to the inner store"
    );
    assert!(s.dynamic_hits >= 590, "{s:?}");
    assert_eq!(s.lookups, 600);
    assert!((s.hit_rate() - s.dynamic_hit_rate()).abs() < 1e-12);

    // A missed id repeated within a batch is fetched once.
    cache.reset_stats();
    let fresh = 4999u32;
    assert!(!ids.contains(&fresh));
    let rep = [fresh, 1, fresh, fresh, 2, fresh];
    assert_eq!(gather(&cache, &rep), rows_of(&x, &rep));
    let s = cache.stats();
    assert_eq!(
        s.rows_fetched,
        1 + u64::from(!ids.contains(&1)) + u64::from(!ids.contains(&2))
    );
    assert_eq!(s.fetch_calls, 1);

    // Many more distinct ids than slots: the tier never exceeds its capacity, evicts, and
    // still answers correctly.
    cache.reset_stats();
    for b in 0..10 {
        let ids = random_ids(N, 2500, 50 + b);
        assert_eq!(gather(&cache, &ids), rows_of(&x, &ids));
        assert!(cache.dynamic_len() <= 1000);
    }
    assert_eq!(cache.dynamic_len(), 1000);
    assert!(cache.stats().evictions > 0);
    assert_eq!(
        cache.capacity_bytes(),
        1000 * (DIM * 4 + 5) + N * 4,
        "rows + bookkeeping + id map"
    );
}

/// 20 batches of 50 hot ids (the same every batch) and 40 cold ids (new every batch).
fn hot_and_cold() -> Vec<Vec<u32>> {
    (0..20u32)
        .map(|b| (0..50).chain((0..40).map(|i| 1000 + b * 40 + i)).collect())
        .collect()
}

#[test]
fn clock_keeps_referenced_rows_over_one_shot_rows() {
    // One shard of 100 rows: the 50 hot ids, re-read every batch, survive the cold stream.
    let (cache, _inner, x) = counting_cache(&[], 100, 1);
    for ids in hot_and_cold() {
        assert_eq!(gather(&cache, &ids), rows_of(&x, &ids));
    }
    assert!(cache.stats().evictions > 0);
    cache.reset_stats();
    let hot: Vec<u32> = (0..50).collect();
    assert_eq!(gather(&cache, &hot), rows_of(&x, &hot));
    assert_eq!(cache.stats().dynamic_hits, 50, "{:?}", cache.stats());
}

#[test]
fn concurrent_gathers_from_four_threads_are_correct() {
    let hub: Vec<u32> = (0..N as u32).step_by(13).collect();
    // A small, many-shard tier: constant eviction races between threads.
    let (cache, _inner, x) = counting_cache(&hub, 640, 16);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (cache, x) = (&cache, &x);
            s.spawn(move || {
                for b in 0..40 {
                    // Large batches take the parallel shard path, small ones the serial one.
                    let len = if b % 2 == 0 { 12_000 } else { 300 };
                    let ids = random_ids(N, len, t * 1000 + b + 1);
                    assert_eq!(
                        gather(cache, &ids),
                        rows_of(x, &ids),
                        "thread {t} batch {b}"
                    );
                }
            });
        }
    });
    let s = cache.stats();
    assert_eq!(s.lookups, s.hub_hits + s.dynamic_hits + s.misses);
    assert!(cache.dynamic_len() <= 640);
}

#[test]
fn inner_errors_propagate_and_nothing_is_cached() {
    let (cache, inner, x) = counting_cache(&[1, 2, 3], 100, 2);
    let ids = [1u32, 10, 11, 10, 2];
    inner.fail.store(true, Ordering::Relaxed);
    let mut out = vec![0f32; ids.len() * DIM];
    let e = cache.gather(&ids, &mut out).unwrap_err();
    assert!(e.to_string().contains("injected failure"), "{e}");
    assert_eq!(cache.dynamic_len(), 0, "failed rows were cached");
    // Hub-only batches still work while the inner store fails.
    assert_eq!(gather(&cache, &[3, 1]), rows_of(&x, &[3, 1]));
    inner.fail.store(false, Ordering::Relaxed);
    assert_eq!(gather(&cache, &ids), rows_of(&x, &ids));
    assert_eq!(cache.dynamic_len(), 2);

    // Bad ids and buffers are refused before anything is read, naming the id.
    let e = cache
        .gather(&[0, N as u32], &mut [0f32; 2 * DIM])
        .unwrap_err();
    assert!(matches!(e, StoreError::IdOutOfRange { id, .. } if id == N as u32));
    let e = cache.gather(&[0, 1], &mut [0f32; DIM]).unwrap_err();
    assert!(matches!(e, StoreError::OutLen { .. }));
    // A hub id out of range is refused at construction.
    let inner = CountingStore::new(random_features(N, DIM, 1), DIM);
    let Err(e) = FeatureCache::new(Box::new(inner), &[5, N as u32 + 1], 10) else {
        panic!("hub id out of range was accepted");
    };
    assert!(e.to_string().contains(&(N + 1).to_string()), "{e}");
}

#[test]
fn hub_nodes_picks_the_highest_degrees() {
    // Degrees: node 0:3, 1:0, 2:5, 3:5, 4:1, 5:2.
    let indptr = [0i64, 3, 3, 8, 13, 14, 16];
    assert_eq!(hub_nodes(&indptr, 1), vec![2]); // tie 2/3 broken by the lower id
    assert_eq!(hub_nodes(&indptr, 2), vec![2, 3]);
    assert_eq!(hub_nodes(&indptr, 3), vec![0, 2, 3]);
    assert_eq!(hub_nodes(&indptr, 4), vec![0, 2, 3, 5]);
    assert_eq!(hub_nodes(&indptr, 100), vec![0, 1, 2, 3, 4, 5]);
    assert!(hub_nodes(&indptr, 0).is_empty());
    assert!(hub_nodes(&[], 3).is_empty());
    assert_eq!(top_nodes(&[5, 9, 9, 1, 7], 3), vec![1, 2, 4]);
}

#[test]
fn simulated_policies_behave_as_specified() {
    // LRU of 2: a b a c → c evicts b (a was used more recently).
    let mut lru = sim::Lru::new(10, 2);
    assert_eq!(lru.batch(&[0, 1]), 0);
    assert_eq!(lru.batch(&[0]), 1);
    assert_eq!(lru.batch(&[2]), 0);
    assert_eq!(lru.batch(&[0, 1]), 1, "0 stays, 1 was evicted");
    // Capacity 0 never hits.
    let mut none = sim::Lru::new(10, 0);
    assert_eq!(sim::hit_rate(&mut none, &[vec![1, 1], vec![1]]), 0.0);

    // Every policy: a working set within capacity hits fully after the first batch.
    let ws: Vec<u32> = (0..50).collect();
    let batches = vec![ws.clone(); 4];
    let mut policies: Vec<Box<dyn Policy>> = vec![
        Box::new(sim::Lru::new(100, 50)),
        Box::new(sim::Clock::new(100, 50)),
        Box::new(sim::Sieve::new(100, 50)),
        Box::new(sim::Tiered::new(
            100,
            &[0, 1, 2],
            sim::Clock::new(100, 47),
            "hub+clock",
        )),
    ];
    for p in &mut policies {
        let expect = if p.name() == "hub+clock" {
            0.25 * 3.0 / 50.0 + 0.75
        } else {
            0.75
        };
        let r = sim::hit_rate(&mut **p, &batches);
        assert!((r - expect).abs() < 1e-12, "{}: {r}", p.name());
    }

    // On the hot/cold stream every policy keeps the hot set: 19 batches × 50 hits of 1800
    // lookups; the sim CLOCK matches the cache's one-shard CLOCK hit for hit.
    let batches = hot_and_cold();
    let want = 19.0 * 50.0 / 1800.0;
    let mut policies: Vec<Box<dyn Policy>> = vec![
        Box::new(sim::Lru::new(3000, 100)),
        Box::new(sim::Clock::new(3000, 100)),
        Box::new(sim::Sieve::new(3000, 100)),
    ];
    for p in &mut policies {
        let r = sim::hit_rate(&mut **p, &batches);
        assert!((r - want).abs() < 1e-12, "{}: {r}", p.name());
    }
    let (cache, _inner, _x) = counting_cache(&[], 100, 1);
    for ids in &batches {
        let mut out = vec![0f32; ids.len() * DIM];
        cache.gather(ids, &mut out).unwrap();
    }
    assert!((cache.stats().hit_rate() - want).abs() < 1e-12);

    // SIEVE: a, b, c inserted; a hit; d evicts b (the hand, from the tail, spares visited a).
    let mut sieve = sim::Sieve::new(10, 3);
    assert_eq!(sieve.batch(&[0, 1, 2]), 0);
    assert_eq!(sieve.batch(&[0]), 1);
    assert_eq!(sieve.batch(&[3]), 0);
    assert!(sieve.lookup(0) && sieve.lookup(2) && sieve.lookup(3) && !sieve.lookup(1));
}
