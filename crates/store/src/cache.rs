//! `FeatureCache`: a two-tier row cache in front of any `FeatureStore`, itself a
//! `FeatureStore` (so the trainer only wraps its store).
//!
//! - **Hub tier**: the rows of a fixed node list (the highest in-degree nodes, see
//!   [`hub_nodes`], or the most-sampled nodes of a warm-up pass, see [`top_nodes`]), decoded
//!   once at construction into one contiguous f32 block and pinned for the run. Lookups take
//!   no lock.
//! - **Dynamic tier**: CLOCK over a fixed number of rows for everything else, split into
//!   `S` shards by a hash of the node id, each behind its own `Mutex`. A batch gather groups
//!   its ids by shard, so a lock is taken once per shard per batch, never per row.
//!
//! **Id map.** One dense `Vec<AtomicU32>` of `num_nodes` entries maps a global id to its slot
//! in either tier: `0..hub_rows` is a hub slot, `hub_rows + s` is slot `s` of the id's
//! dynamic shard, `u32::MAX` is absent. It costs 4 bytes per node (9.3 MiB for the 2.45M
//! nodes of ogbn-products) whatever the cache size, and a lookup is one load: measured on
//! products batches with 10% of the nodes pinned, 3-6 ns per lookup against 10-13 ns for a
//! `HashMap` with a multiplicative hash and 26-29 ns with std's SipHash (4.5 MiB each;
//! `benches/cache.rs`, `hub_lookup_ns`). Hub entries never change after construction, so
//! reading them needs no lock; dynamic entries are only read and written under their shard's
//! lock.
//!
//! **Why CLOCK, not SIEVE.** Both approximate LRU with one "referenced" bit per row. CLOCK's
//! state is a slot array, one ref bit per slot and a hand: an evicted row's slot is reused in
//! place, hits only set a bit, and the hand sweeps contiguous memory. SIEVE needs a FIFO
//! list with removal from the middle (two links per row, pointer chasing on evictions). On
//! products batches (`sim`, same total size) SIEVE alone beats CLOCK alone by 3-5 points of
//! hit rate (it resists the scan every batch is: ~300k misses, more than the tier holds, flush
//! a CLOCK or LRU tier), and by 1 point behind a 50% hub tier — but by only 0.1-0.15 points
//! behind the 90% hub tier `MemoryBudget` plans by default, which is not worth the extra
//! state. New rows enter with their bit clear, so a row read once is evicted on the hand's
//! next pass unless it is hit meanwhile.
//!
//! **Gather.** (1) ids are checked; hub hits are copied in parallel chunks, lock-free;
//! (2) the other positions are bucketed by shard; (3) per shard, under its lock, dynamic hits
//! are copied out (ref bit set) and misses collected, then deduplicated; (4) every miss of the
//! batch is fetched from the inner store in ONE `gather` call into a reused scratch buffer;
//! (5) per shard, under its lock, the fetched rows are inserted (CLOCK eviction), then copied
//! to every position that asked for them. If the inner store fails, nothing is inserted and
//! the error is returned (the output buffer is then partly written and must not be used).
//!
//! **Memory.** `capacity_bytes()` = hub rows × 4·dim + dynamic rows × (4·dim + 5: the row, its
//! node id and ref bit) + 4 × num_nodes (id map). Besides that, a miss scratch buffer holds the
//! largest batch of misses seen (≤ one batch of rows), reused across calls.
//!
//! **When to wrap.** Every miss costs one more row copy than the inner store's own gather
//! (inner → scratch → output), so over an mmap store whose file sits in the page cache the
//! cache is slower than no cache (0.45-0.68× the plain mmap gather rate on products, 2 busy
//! cores); over SQLite it was 1.3-2.8× faster at 10-20% of the rows. Wrap stores that pay per
//! row read (SQLite, PostgreSQL, files larger than the page cache), not a page-cached mmap.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use rayon::prelude::*;

use crate::gather::{check_ids, check_out_len, OutRows};
use crate::{Codec, FeatureStore, StoreError};

/// Id-map value of a node in neither tier.
const ABSENT: u32 = u32::MAX;
/// Most dynamic shards (locks); fewer when the tier is small.
const MAX_SHARDS: usize = 64;
/// Rows per shard below which a smaller shard count is used.
const MIN_SHARD_ROWS: usize = 64;
/// Rows per parallel hub-copy task.
const CHUNK_ROWS: usize = 4096;
/// Batches with fewer non-hub rows than this visit their shards on the caller's thread.
const PAR_MIN_ROWS: usize = 8192;
/// Scratch buffers kept for reuse (one per concurrent gatherer is enough).
const SCRATCH_POOL: usize = 4;
/// Per-row bookkeeping of the dynamic tier besides the row: node id (4) and ref bit (1).
pub const DYNAMIC_ROW_OVERHEAD: usize = 5;
/// Bytes per node of the dense id map.
pub const MAP_BYTES_PER_NODE: usize = 4;

/// Counters since construction or the last [`FeatureCache::reset_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CacheStats {
    /// Ids asked for (batch positions, repeats included).
    pub lookups: u64,
    /// Positions served from the hub tier.
    pub hub_hits: u64,
    /// Positions served from the dynamic tier.
    pub dynamic_hits: u64,
    /// Positions served from the inner store (repeats of a missed id within a batch included).
    pub misses: u64,
    /// Distinct rows fetched from the inner store (misses after deduplication).
    pub rows_fetched: u64,
    /// Bytes the inner store reports having read (its `bytes_read` delta).
    pub inner_bytes_read: u64,
    /// Inner-store `gather` calls (at most one per cache gather).
    pub fetch_calls: u64,
    /// Wall time spent in inner-store `gather` calls, nanoseconds.
    pub fetch_ns: u64,
    /// Rows evicted from the dynamic tier.
    pub evictions: u64,
}

impl CacheStats {
    /// Share of lookups served by either tier (0 when nothing was looked up).
    pub fn hit_rate(&self) -> f64 {
        ratio(self.hub_hits + self.dynamic_hits, self.lookups)
    }
    /// Share of lookups served by the hub tier.
    pub fn hub_hit_rate(&self) -> f64 {
        ratio(self.hub_hits, self.lookups)
    }
    /// Share of lookups served by the dynamic tier.
    pub fn dynamic_hit_rate(&self) -> f64 {
        ratio(self.dynamic_hits, self.lookups)
    }
    /// Mean wall time of one inner-store fetch, milliseconds (0 without fetches).
    pub fn mean_fetch_ms(&self) -> f64 {
        ratio(self.fetch_ns, self.fetch_calls) / 1e6
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[derive(Default)]
struct Counters {
    lookups: AtomicU64,
    hub_hits: AtomicU64,
    dynamic_hits: AtomicU64,
    misses: AtomicU64,
    rows_fetched: AtomicU64,
    fetch_calls: AtomicU64,
    fetch_ns: AtomicU64,
    evictions: AtomicU64,
}

/// One CLOCK shard of the dynamic tier.
struct Shard {
    /// Row capacity of this shard.
    cap: usize,
    /// Node id in each filled slot (`len() <= cap`; slots fill in order, then are reused).
    ids: Vec<u32>,
    /// Referenced bit per filled slot: set on a hit, cleared by the passing hand.
    refs: Vec<bool>,
    /// `cap * dim` decoded values, slot-major.
    rows: Vec<f32>,
    /// Next slot the hand inspects.
    hand: usize,
}

impl Shard {
    /// Picks a slot for a new row: a free one, else the first unreferenced slot under the
    /// hand (clearing ref bits on the way). Returns the slot and the id evicted from it.
    fn victim(&mut self) -> (usize, Option<u32>) {
        if self.ids.len() < self.cap {
            self.ids.push(ABSENT);
            self.refs.push(false);
            return (self.ids.len() - 1, None);
        }
        while self.refs[self.hand] {
            self.refs[self.hand] = false;
            self.hand = (self.hand + 1) % self.cap;
        }
        let slot = self.hand;
        self.hand = (self.hand + 1) % self.cap;
        (slot, Some(self.ids[slot]))
    }
}

/// Misses of one shard in one batch.
#[derive(Default)]
struct ShardMisses {
    /// `(id << 32) | position`, sorted: positions of each missed id are adjacent.
    keys: Vec<u64>,
}

/// A hub tier plus a sharded CLOCK tier in front of another `FeatureStore`.
pub struct FeatureCache {
    inner: Box<dyn FeatureStore>,
    num_nodes: usize,
    dim: usize,
    /// Id → slot code (see the module docs).
    map: Vec<AtomicU32>,
    hub_rows: usize,
    /// `hub_rows * dim` decoded values.
    hub: Vec<f32>,
    shards: Vec<Mutex<Shard>>,
    /// `log2(shards.len())`.
    shard_bits: u32,
    dynamic_rows: usize,
    scratch: Mutex<Vec<Vec<f32>>>,
    counters: Counters,
    /// `inner.bytes_read()` at the last reset.
    bytes_base: AtomicU64,
}

impl FeatureCache {
    /// Wraps `inner`: loads the rows of `hub` (out-of-range ids are an error, repeats are
    /// ignored) with one inner gather, and sets up a CLOCK tier of `dynamic_rows` rows.
    /// Statistics start at zero after the hub load.
    pub fn new(
        inner: Box<dyn FeatureStore>,
        hub: &[u32],
        dynamic_rows: usize,
    ) -> Result<FeatureCache, StoreError> {
        let shards = default_shards(dynamic_rows);
        Self::with_shards(inner, hub, dynamic_rows, shards)
    }

    /// As [`FeatureCache::new`] with an explicit shard count (rounded down to a power of two,
    /// at least 1). More shards: less lock contention, a coarser approximation of one CLOCK.
    pub fn with_shards(
        inner: Box<dyn FeatureStore>,
        hub: &[u32],
        dynamic_rows: usize,
        shards: usize,
    ) -> Result<FeatureCache, StoreError> {
        let num_nodes = inner.num_nodes();
        let dim = inner.dim();
        check_ids(hub, num_nodes)?;
        let mut hub_ids = hub.to_vec();
        // Sorted: the inner store reads the hub rows in file order.
        hub_ids.sort_unstable();
        hub_ids.dedup();
        let hub_rows = hub_ids.len();
        let mut hub_data = vec![0f32; hub_rows * dim];
        inner.gather(&hub_ids, &mut hub_data)?;

        let map: Vec<AtomicU32> = (0..num_nodes).map(|_| AtomicU32::new(ABSENT)).collect();
        for (slot, &id) in hub_ids.iter().enumerate() {
            map[id as usize].store(slot as u32, Ordering::Relaxed);
        }

        let shard_count = prev_power_of_two(shards.clamp(1, 1 << 16));
        // Slot codes `hub_rows + slot` must stay below ABSENT.
        let max_shard_cap = (ABSENT as usize - 1).saturating_sub(hub_rows);
        let shards: Vec<Mutex<Shard>> = (0..shard_count)
            .map(|s| {
                let cap = (dynamic_rows / shard_count
                    + usize::from(s < dynamic_rows % shard_count))
                .min(max_shard_cap);
                Mutex::new(Shard {
                    cap,
                    ids: Vec::with_capacity(cap),
                    refs: Vec::with_capacity(cap),
                    rows: vec![0f32; cap * dim],
                    hand: 0,
                })
            })
            .collect();
        let dynamic_rows = shards.iter().map(|s| lock(s).cap).sum();
        let cache = FeatureCache {
            bytes_base: AtomicU64::new(inner.bytes_read()),
            inner,
            num_nodes,
            dim,
            map,
            hub_rows,
            hub: hub_data,
            shards,
            shard_bits: shard_count.trailing_zeros(),
            dynamic_rows,
            scratch: Mutex::new(Vec::new()),
            counters: Counters::default(),
        };
        Ok(cache)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &dyn FeatureStore {
        &*self.inner
    }

    /// Rows pinned in the hub tier (distinct hub ids).
    pub fn hub_rows(&self) -> usize {
        self.hub_rows
    }

    /// Row capacity of the dynamic tier.
    pub fn dynamic_capacity(&self) -> usize {
        self.dynamic_rows
    }

    /// Rows currently held by the dynamic tier.
    pub fn dynamic_len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).ids.len()).sum()
    }

    /// Number of dynamic-tier shards (locks).
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Whether `id` is pinned in the hub tier.
    pub fn is_hub(&self, id: u32) -> bool {
        self.map
            .get(id as usize)
            .is_some_and(|c| (c.load(Ordering::Relaxed) as usize) < self.hub_rows)
    }

    /// Heap the cache holds at full occupancy: both tiers' rows, the dynamic tier's per-row
    /// bookkeeping and the id map (not the transient miss scratch buffer).
    pub fn capacity_bytes(&self) -> usize {
        Self::bytes_for(self.num_nodes, self.dim, self.hub_rows, self.dynamic_rows)
    }

    /// What [`capacity_bytes`](Self::capacity_bytes) would be for these sizes.
    pub fn bytes_for(num_nodes: usize, dim: usize, hub_rows: usize, dynamic_rows: usize) -> usize {
        hub_rows * 4 * dim
            + dynamic_rows * (4 * dim + DYNAMIC_ROW_OVERHEAD)
            + num_nodes * MAP_BYTES_PER_NODE
    }

    /// Counters since construction or the last reset.
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CacheStats {
            lookups: get(&c.lookups),
            hub_hits: get(&c.hub_hits),
            dynamic_hits: get(&c.dynamic_hits),
            misses: get(&c.misses),
            rows_fetched: get(&c.rows_fetched),
            inner_bytes_read: self
                .inner
                .bytes_read()
                .saturating_sub(get(&self.bytes_base)),
            fetch_calls: get(&c.fetch_calls),
            fetch_ns: get(&c.fetch_ns),
            evictions: get(&c.evictions),
        }
    }

    /// Zeroes the counters (e.g. at the start of an epoch). The cache contents are kept.
    pub fn reset_stats(&self) {
        let c = &self.counters;
        for a in [
            &c.lookups,
            &c.hub_hits,
            &c.dynamic_hits,
            &c.misses,
            &c.rows_fetched,
            &c.fetch_calls,
            &c.fetch_ns,
            &c.evictions,
        ] {
            a.store(0, Ordering::Relaxed);
        }
        self.bytes_base
            .store(self.inner.bytes_read(), Ordering::Relaxed);
    }

    fn shard_of(&self, id: u32) -> usize {
        if self.shard_bits == 0 {
            0
        } else {
            // Fibonacci hashing: consecutive ids spread over all shards.
            (id.wrapping_mul(0x9E37_79B9) >> (32 - self.shard_bits)) as usize
        }
    }

    fn take_scratch(&self, len: usize) -> Vec<f32> {
        let mut v = lock(&self.scratch).pop().unwrap_or_default();
        if v.len() < len {
            // A fresh zeroed allocation (lazily mapped pages) instead of `resize`'s memset.
            v = vec![0f32; len];
        }
        v
    }

    fn give_scratch(&self, v: Vec<f32>) {
        let mut pool = lock(&self.scratch);
        if pool.len() < SCRATCH_POOL {
            pool.push(v);
        }
    }

    /// Gathers a batch whose positions fit in u32 (see `gather`).
    fn gather_batch(&self, ids: &[u32], out: &mut [f32]) -> Result<(), StoreError> {
        let d = self.dim;
        let h = self.hub_rows;

        // 1. Hub hits, lock-free, in parallel chunks; other positions are kept in order.
        let scan = |base: usize, ids: &[u32], out: &mut [f32]| {
            let mut hits = 0u64;
            let mut rest = Vec::new();
            for (i, (&id, o)) in ids.iter().zip(out.chunks_exact_mut(d)).enumerate() {
                let code = self.map[id as usize].load(Ordering::Relaxed) as usize;
                if code < h {
                    o.copy_from_slice(&self.hub[code * d..(code + 1) * d]);
                    hits += 1;
                } else {
                    rest.push((base + i) as u32);
                }
            }
            (hits, rest)
        };
        let (hub_hits, rest): (u64, Vec<Vec<u32>>) = if ids.len() <= CHUNK_ROWS {
            let (hits, rest) = scan(0, ids, out);
            (hits, vec![rest])
        } else {
            let parts: Vec<(u64, Vec<u32>)> = ids
                .par_chunks(CHUNK_ROWS)
                .zip(out.par_chunks_mut(CHUNK_ROWS * d))
                .enumerate()
                .map(|(c, (i, o))| scan(c * CHUNK_ROWS, i, o))
                .collect();
            let hits = parts.iter().map(|p| p.0).sum();
            (hits, parts.into_iter().map(|p| p.1).collect())
        };
        let lookups = ids.len() as u64;
        let c = &self.counters;
        let rest_len: usize = rest.iter().map(Vec::len).sum();
        if rest_len == 0 {
            c.lookups.fetch_add(lookups, Ordering::Relaxed);
            c.hub_hits.fetch_add(hub_hits, Ordering::Relaxed);
            return Ok(());
        }

        // 2. Bucket the other positions by shard (counting sort).
        let s_count = self.shards.len();
        let mut start = vec![0usize; s_count + 1];
        for &p in rest.iter().flatten() {
            start[self.shard_of(ids[p as usize]) + 1] += 1;
        }
        for s in 0..s_count {
            start[s + 1] += start[s];
        }
        let mut fill = start.clone();
        let mut by_shard = vec![0u32; rest_len];
        for &p in rest.iter().flatten() {
            let s = self.shard_of(ids[p as usize]);
            by_shard[fill[s]] = p;
            fill[s] += 1;
        }
        drop(rest);
        let positions = |s: usize| &by_shard[start[s]..start[s + 1]];
        let parallel = rest_len >= PAR_MIN_ROWS && rayon::current_num_threads() > 1;
        let out_rows = OutRows::new(out, d);

        // 3. Dynamic hits under each shard's lock; misses collected and sorted per shard.
        let probe = |s: usize| -> (u64, ShardMisses) {
            let pos = positions(s);
            if pos.is_empty() {
                return (0, ShardMisses::default());
            }
            let mut hits = 0u64;
            let mut keys = Vec::new();
            {
                let mut sh = lock(&self.shards[s]);
                for &p in pos {
                    let id = ids[p as usize];
                    let code = self.map[id as usize].load(Ordering::Relaxed);
                    if code == ABSENT {
                        keys.push((u64::from(id) << 32) | u64::from(p));
                    } else {
                        let slot = code as usize - h;
                        // SAFETY: position p is in shard s's list only (see `OutRows::row`).
                        let o = unsafe { out_rows.row(p as usize) };
                        o.copy_from_slice(&sh.rows[slot * d..(slot + 1) * d]);
                        sh.refs[slot] = true;
                        hits += 1;
                    }
                }
            }
            keys.sort_unstable();
            (hits, ShardMisses { keys })
        };
        let probed: Vec<(u64, ShardMisses)> = if parallel {
            (0..s_count).into_par_iter().map(probe).collect()
        } else {
            (0..s_count).map(probe).collect()
        };
        let dynamic_hits: u64 = probed.iter().map(|p| p.0).sum();
        let misses: Vec<ShardMisses> = probed.into_iter().map(|p| p.1).collect();
        let miss_positions: usize = misses.iter().map(|m| m.keys.len()).sum();
        if miss_positions == 0 {
            c.lookups.fetch_add(lookups, Ordering::Relaxed);
            c.hub_hits.fetch_add(hub_hits, Ordering::Relaxed);
            c.dynamic_hits.fetch_add(dynamic_hits, Ordering::Relaxed);
            return Ok(());
        }

        // 4. Distinct missed ids, shard by shard, fetched in one inner gather.
        let mut miss_ids = Vec::with_capacity(miss_positions);
        let mut miss_start = Vec::with_capacity(s_count + 1);
        for m in &misses {
            miss_start.push(miss_ids.len());
            let mut last = None;
            for &k in &m.keys {
                let id = (k >> 32) as u32;
                if last != Some(id) {
                    miss_ids.push(id);
                    last = Some(id);
                }
            }
        }
        miss_start.push(miss_ids.len());
        let mut scratch = self.take_scratch(miss_ids.len() * d);
        let fetched = &mut scratch[..miss_ids.len() * d];
        let t = Instant::now();
        let r = self.inner.gather(&miss_ids, fetched);
        let ns = t.elapsed().as_nanos() as u64;
        c.fetch_calls.fetch_add(1, Ordering::Relaxed);
        c.fetch_ns.fetch_add(ns, Ordering::Relaxed);
        if let Err(e) = r {
            self.give_scratch(scratch);
            return Err(e);
        }
        let fetched = &scratch[..miss_ids.len() * d];

        // 5. Insert the fetched rows (CLOCK), then copy them to every position asking.
        let fill_shard = |s: usize| -> u64 {
            let keys = &misses[s].keys;
            if keys.is_empty() {
                return 0;
            }
            let (a, b) = (miss_start[s], miss_start[s + 1]);
            let uniq = &miss_ids[a..b];
            let rows = &fetched[a * d..b * d];
            let mut evicted = 0u64;
            {
                let mut sh = lock(&self.shards[s]);
                // More misses than slots: the earlier ones would only be evicted by the later.
                let skip = uniq.len().saturating_sub(sh.cap);
                for (j, &id) in uniq.iter().enumerate().skip(skip) {
                    let entry = &self.map[id as usize];
                    if entry.load(Ordering::Relaxed) != ABSENT {
                        continue; // another gather inserted it meanwhile
                    }
                    let (slot, old) = sh.victim();
                    if let Some(old) = old {
                        self.map[old as usize].store(ABSENT, Ordering::Relaxed);
                        evicted += 1;
                    }
                    sh.ids[slot] = id;
                    sh.refs[slot] = false;
                    sh.rows[slot * d..(slot + 1) * d].copy_from_slice(&rows[j * d..(j + 1) * d]);
                    entry.store((h + slot) as u32, Ordering::Relaxed);
                }
            }
            let mut j = 0;
            for &k in keys {
                let id = (k >> 32) as u32;
                while uniq[j] != id {
                    j += 1;
                }
                // SAFETY: position k's low half is in shard s's list only.
                let o = unsafe { out_rows.row((k & 0xFFFF_FFFF) as usize) };
                o.copy_from_slice(&rows[j * d..(j + 1) * d]);
            }
            evicted
        };
        let evictions: u64 = if parallel {
            (0..s_count).into_par_iter().map(fill_shard).sum()
        } else {
            (0..s_count).map(fill_shard).sum()
        };
        let fetched_rows = miss_ids.len() as u64;
        self.give_scratch(scratch);

        c.lookups.fetch_add(lookups, Ordering::Relaxed);
        c.hub_hits.fetch_add(hub_hits, Ordering::Relaxed);
        c.dynamic_hits.fetch_add(dynamic_hits, Ordering::Relaxed);
        c.misses.fetch_add(miss_positions as u64, Ordering::Relaxed);
        c.rows_fetched.fetch_add(fetched_rows, Ordering::Relaxed);
        c.evictions.fetch_add(evictions, Ordering::Relaxed);
        Ok(())
    }
}

impl FeatureStore for FeatureCache {
    fn num_nodes(&self) -> usize {
        self.num_nodes
    }
    fn dim(&self) -> usize {
        self.dim
    }
    /// The inner store's codec (rows are cached decoded, so values are the inner store's).
    fn codec(&self) -> Codec {
        self.inner.codec()
    }
    /// The inner store's kind: reports name the backing storage.
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn gather(&self, ids: &[u32], out: &mut [f32]) -> Result<(), StoreError> {
        check_out_len(ids, self.dim, out)?;
        check_ids(ids, self.num_nodes)?;
        if ids.is_empty() || self.dim == 0 {
            self.counters
                .lookups
                .fetch_add(ids.len() as u64, Ordering::Relaxed);
            return Ok(());
        }
        // Positions are kept as u32; larger batches (never seen in practice) go in pieces.
        let max = u32::MAX as usize;
        for (i, o) in ids.chunks(max).zip(out.chunks_mut(max * self.dim)) {
            self.gather_batch(i, o)?;
        }
        Ok(())
    }
    /// The inner store's bytes read: what the backing storage actually served.
    fn bytes_read(&self) -> u64 {
        self.inner.bytes_read()
    }

    fn cache_stats(&self) -> Option<CacheStats> {
        Some(self.stats())
    }

    fn reset_cache_stats(&self) {
        self.reset_stats();
    }
}

/// Locks a shard or pool, ignoring poisoning: state is only mutated by code that cannot
/// panic midway through an update (slices are bounds-checked before any write).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn prev_power_of_two(x: usize) -> usize {
    1 << (usize::BITS - 1 - x.max(1).leading_zeros())
}

/// `MAX_SHARDS` shards, fewer when that would leave under `MIN_SHARD_ROWS` rows per shard.
fn default_shards(dynamic_rows: usize) -> usize {
    prev_power_of_two((dynamic_rows / MIN_SHARD_ROWS).clamp(1, MAX_SHARDS))
}

/// The `count` rows with the most entries in an in-neighbour CSR (`indptr` has N+1 entries):
/// the highest in-degree nodes, ties broken by the lower id. O(N) selection
/// (`select_nth_unstable`), result sorted by id. On a directed graph the nodes *sampled* most
/// are those with the most out-edges (appearances in `indices`); use [`top_nodes`] on such
/// counts, or on counts from a warm-up sampling pass, when they differ.
pub fn hub_nodes(indptr: &[i64], count: usize) -> Vec<u32> {
    let n = indptr.len().saturating_sub(1);
    top_by(n, count, |v| (indptr[v + 1] - indptr[v]).max(0) as u64)
}

/// The `count` nodes with the highest `counts[v]` (e.g. how often a warm-up pass sampled
/// each node), ties broken by the lower id; O(N), sorted by id.
pub fn top_nodes(counts: &[u32], count: usize) -> Vec<u32> {
    top_by(counts.len(), count, |v| u64::from(counts[v]))
}

fn top_by(n: usize, count: usize, score: impl Fn(usize) -> u64) -> Vec<u32> {
    let n = n.min(u32::MAX as usize);
    let count = count.min(n);
    if count == 0 {
        return Vec::new();
    }
    let mut ids: Vec<u32> = (0..n as u32).collect();
    if count < n {
        ids.select_nth_unstable_by(count - 1, |&a, &b| {
            score(b as usize).cmp(&score(a as usize)).then(a.cmp(&b))
        });
        ids.truncate(count);
    }
    ids.sort_unstable();
    ids
}

/// Hit-rate simulators over node ids only (no row data), for comparing the hub + CLOCK cache
/// with plain LRU, CLOCK and SIEVE of the same size. Hidden from docs; used by the benchmark.
///
/// Every policy sees a batch as the real cache does: all of the batch's ids are looked up
/// first (a hit marks the entry), then its distinct misses are inserted.
#[doc(hidden)]
pub mod sim {
    /// "No slot" / "no node".
    const NIL: u32 = u32::MAX;

    /// A cache replacement policy over node ids.
    pub trait Policy {
        /// Short name for reports.
        fn name(&self) -> &'static str;
        /// Looks `id` up; a hit marks it as used.
        fn lookup(&mut self, id: u32) -> bool;
        /// Inserts a missed `id` (no-op when present or the capacity is 0).
        fn insert(&mut self, id: u32);

        /// Runs one batch (lookups, then inserts of the misses); returns its hits.
        fn batch(&mut self, ids: &[u32]) -> usize {
            let mut missed = Vec::new();
            let mut hits = 0;
            for &id in ids {
                if self.lookup(id) {
                    hits += 1;
                } else {
                    missed.push(id);
                }
            }
            for id in missed {
                self.insert(id);
            }
            hits
        }
    }

    /// Hits / lookups of `policy` over `batches`, in order.
    pub fn hit_rate(policy: &mut dyn Policy, batches: &[Vec<u32>]) -> f64 {
        let (mut hits, mut total) = (0usize, 0usize);
        for b in batches {
            hits += policy.batch(b);
            total += b.len();
        }
        if total == 0 {
            0.0
        } else {
            hits as f64 / total as f64
        }
    }

    /// Slot of each node id, or NIL.
    fn dense_map(num_nodes: usize) -> Vec<u32> {
        vec![NIL; num_nodes]
    }

    /// Least recently used: a doubly linked list over slots, most recent at the head.
    pub struct Lru {
        cap: usize,
        map: Vec<u32>,
        ids: Vec<u32>,
        prev: Vec<u32>,
        next: Vec<u32>,
        head: u32,
        tail: u32,
    }

    impl Lru {
        /// An empty LRU of `cap` rows over ids `0..num_nodes`.
        pub fn new(num_nodes: usize, cap: usize) -> Lru {
            Lru {
                cap,
                map: dense_map(num_nodes),
                ids: Vec::with_capacity(cap),
                prev: Vec::with_capacity(cap),
                next: Vec::with_capacity(cap),
                head: NIL,
                tail: NIL,
            }
        }
        fn unlink(&mut self, s: u32) {
            let (p, n) = (self.prev[s as usize], self.next[s as usize]);
            if p == NIL {
                self.head = n;
            } else {
                self.next[p as usize] = n;
            }
            if n == NIL {
                self.tail = p;
            } else {
                self.prev[n as usize] = p;
            }
        }
        fn push_front(&mut self, s: u32) {
            self.prev[s as usize] = NIL;
            self.next[s as usize] = self.head;
            if self.head != NIL {
                self.prev[self.head as usize] = s;
            }
            self.head = s;
            if self.tail == NIL {
                self.tail = s;
            }
        }
    }

    impl Policy for Lru {
        fn name(&self) -> &'static str {
            "lru"
        }
        fn lookup(&mut self, id: u32) -> bool {
            let s = self.map[id as usize];
            if s == NIL {
                return false;
            }
            self.unlink(s);
            self.push_front(s);
            true
        }
        fn insert(&mut self, id: u32) {
            if self.cap == 0 || self.map[id as usize] != NIL {
                return;
            }
            let s = if self.ids.len() < self.cap {
                self.ids.push(id);
                self.prev.push(NIL);
                self.next.push(NIL);
                (self.ids.len() - 1) as u32
            } else {
                let s = self.tail;
                self.unlink(s);
                self.map[self.ids[s as usize] as usize] = NIL;
                self.ids[s as usize] = id;
                s
            };
            self.map[id as usize] = s;
            self.push_front(s);
        }
    }

    /// CLOCK exactly as one shard of `FeatureCache`'s dynamic tier (new rows unreferenced).
    pub struct Clock {
        cap: usize,
        map: Vec<u32>,
        ids: Vec<u32>,
        refs: Vec<bool>,
        hand: usize,
    }

    impl Clock {
        /// An empty CLOCK of `cap` rows over ids `0..num_nodes`.
        pub fn new(num_nodes: usize, cap: usize) -> Clock {
            Clock {
                cap,
                map: dense_map(num_nodes),
                ids: Vec::with_capacity(cap),
                refs: Vec::with_capacity(cap),
                hand: 0,
            }
        }
    }

    impl Policy for Clock {
        fn name(&self) -> &'static str {
            "clock"
        }
        fn lookup(&mut self, id: u32) -> bool {
            let s = self.map[id as usize];
            if s == NIL {
                return false;
            }
            self.refs[s as usize] = true;
            true
        }
        fn insert(&mut self, id: u32) {
            if self.cap == 0 || self.map[id as usize] != NIL {
                return;
            }
            let s = if self.ids.len() < self.cap {
                self.ids.push(id);
                self.refs.push(false);
                self.ids.len() - 1
            } else {
                while self.refs[self.hand] {
                    self.refs[self.hand] = false;
                    self.hand = (self.hand + 1) % self.cap;
                }
                let s = self.hand;
                self.hand = (self.hand + 1) % self.cap;
                self.map[self.ids[s] as usize] = NIL;
                self.ids[s] = id;
                self.refs[s] = false;
                s
            };
            self.map[id as usize] = s as u32;
        }
    }

    /// SIEVE (Zhang et al., NSDI 2024): a FIFO list, new rows at the head, a hand moving from
    /// the tail towards the head that keeps visited rows (clearing the bit) and evicts the
    /// first unvisited one.
    pub struct Sieve {
        cap: usize,
        map: Vec<u32>,
        ids: Vec<u32>,
        visited: Vec<bool>,
        /// Towards the head (newer).
        newer: Vec<u32>,
        /// Towards the tail (older).
        older: Vec<u32>,
        head: u32,
        tail: u32,
        hand: u32,
    }

    impl Sieve {
        /// An empty SIEVE of `cap` rows over ids `0..num_nodes`.
        pub fn new(num_nodes: usize, cap: usize) -> Sieve {
            Sieve {
                cap,
                map: dense_map(num_nodes),
                ids: Vec::with_capacity(cap),
                visited: Vec::with_capacity(cap),
                newer: Vec::with_capacity(cap),
                older: Vec::with_capacity(cap),
                head: NIL,
                tail: NIL,
                hand: NIL,
            }
        }
        fn unlink(&mut self, s: u32) {
            let (n, o) = (self.newer[s as usize], self.older[s as usize]);
            if n == NIL {
                self.head = o;
            } else {
                self.older[n as usize] = o;
            }
            if o == NIL {
                self.tail = n;
            } else {
                self.newer[o as usize] = n;
            }
        }
        fn evict(&mut self) -> u32 {
            let mut s = if self.hand == NIL {
                self.tail
            } else {
                self.hand
            };
            while self.visited[s as usize] {
                self.visited[s as usize] = false;
                s = self.newer[s as usize];
                if s == NIL {
                    s = self.tail;
                }
            }
            self.hand = self.newer[s as usize];
            self.unlink(s);
            self.map[self.ids[s as usize] as usize] = NIL;
            s
        }
    }

    impl Policy for Sieve {
        fn name(&self) -> &'static str {
            "sieve"
        }
        fn lookup(&mut self, id: u32) -> bool {
            let s = self.map[id as usize];
            if s == NIL {
                return false;
            }
            self.visited[s as usize] = true;
            true
        }
        fn insert(&mut self, id: u32) {
            if self.cap == 0 || self.map[id as usize] != NIL {
                return;
            }
            let s = if self.ids.len() < self.cap {
                self.ids.push(NIL);
                self.visited.push(false);
                self.newer.push(NIL);
                self.older.push(NIL);
                (self.ids.len() - 1) as u32
            } else {
                self.evict()
            };
            let i = s as usize;
            self.ids[i] = id;
            self.visited[i] = false;
            self.newer[i] = NIL;
            self.older[i] = self.head;
            if self.head != NIL {
                self.newer[self.head as usize] = s;
            }
            self.head = s;
            if self.tail == NIL {
                self.tail = s;
            }
            self.map[id as usize] = s;
        }
    }

    /// A static hub set (always hits) in front of a dynamic policy for everything else.
    pub struct Tiered<P> {
        hub: Vec<bool>,
        dynamic: P,
        name: &'static str,
    }

    impl<P: Policy> Tiered<P> {
        /// `hub` pinned over ids `0..num_nodes`, misses going to `dynamic`.
        pub fn new(num_nodes: usize, hub: &[u32], dynamic: P, name: &'static str) -> Self {
            let mut h = vec![false; num_nodes];
            for &id in hub {
                h[id as usize] = true;
            }
            Tiered {
                hub: h,
                dynamic,
                name,
            }
        }
    }

    impl<P: Policy> Policy for Tiered<P> {
        fn name(&self) -> &'static str {
            self.name
        }
        fn lookup(&mut self, id: u32) -> bool {
            self.hub[id as usize] || self.dynamic.lookup(id)
        }
        fn insert(&mut self, id: u32) {
            if !self.hub[id as usize] {
                self.dynamic.insert(id);
            }
        }
    }
}
