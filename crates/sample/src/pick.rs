//! Drawing k distinct neighbours of one node uniformly without replacement (Floyd's
//! algorithm on row positions), and the per-chunk random streams that make draws independent
//! of the thread count.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A CSR column index as stored on disk (i32 or i64), read as a sampler node id.
pub(crate) trait RawId: Copy + Send + Sync {
    /// The id as u32; ids that cannot be node ids map to `u32::MAX`, which is never one
    /// (the sampler requires `num_nodes <= u32::MAX`), so the relabel pass rejects them.
    fn to_u32(self) -> u32;
}

impl RawId for i32 {
    #[inline]
    fn to_u32(self) -> u32 {
        // Negative ids become >= 2^31, above any node of an i32 graph (N < 2^31).
        self as u32
    }
}

impl RawId for i64 {
    #[inline]
    fn to_u32(self) -> u32 {
        u32::try_from(self).unwrap_or(u32::MAX)
    }
}

/// SplitMix64's finaliser: a bijective mix so nearby (seed, hop, chunk) give unrelated streams.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random stream of frontier chunk `chunk` at hop `hop` of the batch seeded with `seed`.
pub(crate) fn chunk_rng(seed: u64, hop: usize, chunk: usize) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(mix(mix(mix(seed) ^ hop as u64) ^ chunk as u64))
}

/// Above this many picks a node's Floyd membership test uses a hash set instead of a scan.
const SCAN_LIMIT: usize = 48;

/// Reusable scratch for drawing picks: one per frontier chunk, so no allocation per node.
#[derive(Default)]
pub(crate) struct Picker {
    positions: Vec<usize>,
    seen: HashSet<usize>,
}

impl Picker {
    /// Appends `k < n` distinct row positions in `0..n`, chosen uniformly at random.
    #[inline]
    pub(crate) fn choose(&mut self, n: usize, k: usize, rng: &mut Xoshiro256PlusPlus) {
        debug_assert!(k < n);
        let from = self.positions.len();
        // Floyd: for j in n-k..n draw t in 0..=j; take t unless already taken, else take j.
        // Each k-subset comes out with probability 1/C(n,k), with k draws and no O(n) state.
        if k <= SCAN_LIMIT {
            for j in n - k..n {
                let t = rng.random_range(0..=j);
                let p = if self.positions[from..].contains(&t) {
                    j
                } else {
                    t
                };
                self.positions.push(p);
            }
        } else {
            self.seen.clear();
            for j in n - k..n {
                let t = rng.random_range(0..=j);
                let p = if self.seen.contains(&t) { j } else { t };
                self.seen.insert(p);
                self.positions.push(p);
            }
        }
    }

    /// Positions chosen since the last `clear`, node after node.
    #[inline]
    pub(crate) fn positions(&self) -> &[usize] {
        &self.positions
    }

    /// Forgets the chosen positions (keeps the allocation).
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.positions.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_distinct_positions() {
        let mut p = Picker::default();
        let mut rng = chunk_rng(1, 0, 0);
        for k in [0, 1, 5, 47, 48, 49, 60, 99] {
            p.clear();
            p.choose(100, k, &mut rng);
            let mut s = p.positions().to_vec();
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), k, "k={k}");
            assert!(s.iter().all(|&v| v < 100));
        }
        // Appending keeps earlier nodes' positions and checks only the new node's.
        p.clear();
        p.choose(3, 2, &mut rng);
        p.choose(3, 2, &mut rng);
        assert_eq!(p.positions().len(), 4);
        assert_ne!(p.positions()[2], p.positions()[3]);
    }

    #[test]
    fn raw_ids_that_are_not_u32_map_to_max() {
        assert_eq!((-1i64).to_u32(), u32::MAX);
        assert_eq!((1i64 << 40).to_u32(), u32::MAX);
        assert_eq!(7i64.to_u32(), 7);
        assert!((-1i32).to_u32() >= 1 << 31);
    }

    #[test]
    fn streams_differ_by_seed_hop_and_chunk() {
        let first = |s, h, c| chunk_rng(s, h, c).random::<u64>();
        let a = first(0, 0, 0);
        assert_ne!(a, first(1, 0, 0));
        assert_ne!(a, first(0, 1, 0));
        assert_ne!(a, first(0, 0, 1));
        assert_eq!(a, first(0, 0, 0));
    }
}
