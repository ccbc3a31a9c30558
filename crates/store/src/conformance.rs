//! The conformance suite every `FeatureStore` must pass (same inputs, same answers). Hidden
//! from docs; called by this crate's tests and by other stores' tests (e.g. PostgresStore).
//! Failures panic, as test assertions do.

use crate::{Codec, FeatureStore, StoreError};

/// How far a gathered value may be from the source value.
#[derive(Debug, Clone)]
pub enum Tolerance {
    /// Bit-identical (f32).
    Exact,
    /// `|got - want| <= rel * |want|` plus a tiny absolute floor for values near 0 (f16).
    Relative(f32),
    /// `|got - want| <= tol[c]` for column `c` (u8: half a step plus rounding slack).
    PerColumn(Vec<f32>),
}

impl Tolerance {
    /// The tolerance `codec` promises for the source matrix `expected` (`[n, dim]`).
    pub fn for_codec(codec: Codec, expected: &[f32], dim: usize) -> Tolerance {
        match codec {
            Codec::F32 => Tolerance::Exact,
            Codec::F16 => Tolerance::Relative(1e-3),
            Codec::U8 => {
                let mut lo = vec![f32::INFINITY; dim];
                let mut hi = vec![f32::NEG_INFINITY; dim];
                for row in expected.chunks_exact(dim.max(1)) {
                    for c in 0..dim {
                        lo[c] = lo[c].min(row[c]);
                        hi[c] = hi[c].max(row[c]);
                    }
                }
                Tolerance::PerColumn(
                    (0..dim)
                        .map(|c| {
                            let step = (hi[c] - lo[c]) / 255.0;
                            step / 2.0 + 1e-5 * (lo[c].abs() + hi[c].abs()) + 1e-6
                        })
                        .collect(),
                )
            }
        }
    }

    fn ok(&self, col: usize, want: f32, got: f32) -> bool {
        match self {
            Tolerance::Exact => want.to_bits() == got.to_bits(),
            Tolerance::Relative(r) => (got - want).abs() <= r * want.abs() + 1e-6,
            Tolerance::PerColumn(t) => (got - want).abs() <= t[col],
        }
    }
}

/// Deterministic test features `[n, dim]`: columns of very different ranges, negatives, and
/// a constant column 1 (a u8 step of 0).
pub fn random_features(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix(seed);
    let mut x = Vec::with_capacity(n * dim);
    for _ in 0..n {
        for c in 0..dim {
            let v = if c == 1 {
                0.25
            } else {
                let scale = 10f32.powi((c % 5) as i32 - 2);
                (rng.unit() - 0.3) * scale + (c % 3) as f32
            };
            x.push(v);
        }
    }
    x
}

/// Runs every check against `store`, whose rows must equal `expected` (`[n, dim]`) within `tol`.
pub fn check_store(store: &dyn FeatureStore, expected: &[f32], tol: &Tolerance) {
    let n = store.num_nodes();
    let d = store.dim();
    let name = format!("{} store, codec {}", store.kind(), store.codec());
    assert!(d > 0 && n > 1, "{name}: the suite needs n > 1 and dim > 0");
    assert_eq!(n * d, expected.len(), "{name}: num_nodes x dim");
    let before = store.bytes_read();

    // Every row, in order.
    let all: Vec<u32> = (0..n as u32).collect();
    check_gather(store, &all, expected, tol, &name);

    // Random ids, unsorted, with repeats (including the same id twice in a row).
    let mut rng = SplitMix(7);
    let mut ids: Vec<u32> = (0..3000).map(|_| rng.below(n) as u32).collect();
    ids.extend_from_slice(&[ids[5], ids[5], 0, ids[17]]);
    check_gather(store, &ids, expected, tol, &name);

    // Empty batch.
    store
        .gather(&[], &mut [])
        .unwrap_or_else(|e| panic!("{name}: empty gather failed: {e}"));

    // The last id, alone and mixed with the first.
    let last = (n - 1) as u32;
    check_gather(store, &[last], expected, tol, &name);
    check_gather(store, &[last, 0, last], expected, tol, &name);

    // A large batch, split over the rayon pool.
    let big: Vec<u32> = (0..20_000).map(|_| rng.below(n) as u32).collect();
    check_gather(store, &big, expected, tol, &name);

    // Ids out of range: alone, u32::MAX, and deep inside a large (parallel) batch.
    for bad in [n as u32, u32::MAX] {
        let mut out = vec![0f32; d];
        expect_id_error(store.gather(&[bad], &mut out), bad, &name);
    }
    let mut bad_big = big.clone();
    bad_big[15_000] = n as u32 + 3;
    let mut out = vec![0f32; bad_big.len() * d];
    expect_id_error(store.gather(&bad_big, &mut out), n as u32 + 3, &name);

    // Output buffers of the wrong length.
    for len in [d - 1, d + 1, 0] {
        let mut out = vec![0f32; 2 * d + len - d];
        let r = store.gather(&[0, 1], &mut out);
        assert!(
            matches!(r, Err(StoreError::OutLen { .. })),
            "{name}: out buffer of {} floats for 2 rows of {d} gave {r:?}",
            out.len()
        );
    }

    // Several threads at once, each on its own ids.
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let name = &name;
            s.spawn(move || {
                let mut rng = SplitMix(100 + t);
                let ids: Vec<u32> = (0..10_000).map(|_| rng.below(n) as u32).collect();
                for _ in 0..3 {
                    check_gather(store, &ids, expected, tol, name);
                }
            });
        }
    });

    assert!(
        store.bytes_read() > before,
        "{name}: bytes_read did not grow"
    );
}

fn check_gather(
    store: &dyn FeatureStore,
    ids: &[u32],
    expected: &[f32],
    tol: &Tolerance,
    name: &str,
) {
    let d = store.dim();
    // NaN-filled so a row the store forgot to write cannot pass.
    let mut out = vec![f32::NAN; ids.len() * d];
    store
        .gather(ids, &mut out)
        .unwrap_or_else(|e| panic!("{name}: gather of {} ids failed: {e}", ids.len()));
    for (i, &id) in ids.iter().enumerate() {
        for c in 0..d {
            let want = expected[id as usize * d + c];
            let got = out[i * d + c];
            assert!(
                tol.ok(c, want, got),
                "{name}: node {id} column {c} (batch position {i}): got {got}, want {want} ({tol:?})"
            );
        }
    }
}

fn expect_id_error(r: Result<(), StoreError>, id: u32, name: &str) {
    match r {
        Err(e) => assert!(
            e.to_string().contains(&id.to_string()),
            "{name}: error for id {id} does not name it: {e}"
        ),
        Ok(()) => panic!("{name}: gather of out-of-range id {id} succeeded"),
    }
}

/// SplitMix64: a few lines of deterministic randomness, so the suite needs no rand crate.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}
