//! `DegreeCap`: keeps a uniform random subset of in-edges of every node above a cap, so a
//! power-law hub cannot blow up one mini-batch.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::builder::Idx;
use crate::sync_ptr::SyncPtr;
use crate::{Csr, Indices};

/// Cap on in-degree with the seed that makes the choice of kept edges reproducible.
#[derive(Debug, Clone, Copy)]
pub struct DegreeCap {
    pub max_in_degree: usize,
    pub seed: u64,
}

impl DegreeCap {
    /// Returns the capped graph and, for each kept entry, its position in the input CSR.
    pub fn apply(&self, g: &Csr) -> (Csr, Vec<u64>) {
        let n = g.num_nodes();
        let cap = self.max_in_degree;
        let mut indptr = vec![0i64; n + 1];
        for v in 0..n {
            indptr[v + 1] = indptr[v] + g.degree(v).min(cap) as i64;
        }
        let e = indptr[n] as usize;
        let mut kept = vec![0u64; e];
        let kp = SyncPtr(kept.as_mut_ptr());
        (0..n).into_par_iter().with_min_len(1024).for_each_init(
            Vec::new,
            |scratch: &mut Vec<u64>, v| {
                let (a, b) = (g.indptr()[v] as u64, g.indptr()[v + 1] as u64);
                let o = indptr[v] as usize;
                let k = ((b - a) as usize).min(cap);
                // SAFETY: output rows are disjoint.
                let out = unsafe { kp.slice_mut(o, k) };
                if (b - a) as usize <= cap {
                    for (j, slot) in out.iter_mut().enumerate() {
                        *slot = a + j as u64;
                    }
                    return;
                }
                // Partial Fisher–Yates on positions; a per-node RNG keeps the result
                // independent of thread scheduling.
                let mut rng = Xoshiro256PlusPlus::seed_from_u64(
                    self.seed ^ (v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                scratch.clear();
                scratch.extend(a..b);
                for j in 0..k {
                    let r = rng.random_range(j..scratch.len());
                    scratch.swap(j, r);
                }
                out.copy_from_slice(&scratch[..k]);
                out.sort_unstable();
            },
        );
        let indices = match g.indices() {
            Indices::I32(ix) => gather::<i32>(ix, &kept),
            Indices::I64(ix) => gather::<i64>(ix, &kept),
        };
        (Csr::from_trusted(indptr, indices), kept)
    }
}

fn gather<I: Idx + Send + Sync>(ix: &[I], pos: &[u64]) -> Indices {
    I::wrap(pos.par_iter().map(|&p| ix[p as usize]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CsrBuilder;

    #[test]
    fn caps_hubs_only_and_is_deterministic() {
        // Star: node 0 has 100 in-edges, others 1.
        let src: Vec<u32> = (1..=100).collect();
        let dst = vec![0u32; 100];
        let g = CsrBuilder::new()
            .undirected(true)
            .build(&src, &dst)
            .unwrap()
            .csr;
        let cap = DegreeCap {
            max_in_degree: 10,
            seed: 7,
        };
        let (c, kept) = cap.apply(&g);
        assert_eq!(c.degree(0), 10);
        assert!((1..=100).all(|v| c.degree(v) == 1));
        assert_eq!(kept.len(), c.num_edges());
        let row: Vec<usize> = c.neighbors(0).iter().collect();
        assert!(
            row.windows(2).all(|w| w[0] < w[1]),
            "kept neighbours stay sorted and distinct"
        );
        assert!(row.iter().all(|&u| (1..=100).contains(&u)));
        let (c2, _) = cap.apply(&g);
        assert_eq!(row, c2.neighbors(0).iter().collect::<Vec<_>>());
        let (c3, _) = DegreeCap {
            max_in_degree: 10,
            seed: 8,
        }
        .apply(&g);
        assert_ne!(row, c3.neighbors(0).iter().collect::<Vec<_>>());
    }
}
