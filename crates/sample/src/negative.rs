//! Negative sampling for link prediction: node pairs drawn as non-edges, uniformly or with
//! the destination biased by degree^0.75 (word2vec's and PinSage's choice), seeded, and
//! redrawn (a few times) when a draw hits a known positive.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// How negative pairs are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegativeKind {
    /// Both endpoints uniform over the nodes.
    Uniform,
    /// Source uniform, destination with probability ∝ degree^0.75.
    Degree,
}

impl std::str::FromStr for NegativeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "uniform" => Ok(NegativeKind::Uniform),
            "degree" => Ok(NegativeKind::Degree),
            o => Err(format!("unknown negative sampling `{o}` (uniform, degree)")),
        }
    }
}

/// Draws negative pairs for a graph of `n` nodes.
pub struct NegativeSampler {
    n: usize,
    kind: NegativeKind,
    /// Cumulative degree^0.75 weights (Degree only), for a binary-search draw.
    cumulative: Vec<f64>,
    /// Sorted keys of the known positives (`(lo << 32) | hi`), avoided where a redraw can.
    positives: Vec<u64>,
}

/// Redraws of a pair that hit a positive before it is kept anyway: on sparse graphs a hit is
/// rare (edges / n² per draw), and a bounded loop keeps dense graphs from spinning.
const REDRAWS: usize = 4;

impl NegativeSampler {
    /// A sampler over `n` nodes; `degrees` (length `n`) for `Degree`; `positives` the sorted
    /// undirected pair keys to avoid.
    pub fn new(n: usize, kind: NegativeKind, degrees: &[u32], positives: Vec<u64>) -> Self {
        let cumulative = match kind {
            NegativeKind::Uniform => Vec::new(),
            NegativeKind::Degree => {
                let mut acc = 0.0;
                degrees
                    .iter()
                    .map(|&d| {
                        // Isolated nodes keep a small weight so every node can be drawn.
                        acc += (d.max(1) as f64).powf(0.75);
                        acc
                    })
                    .collect()
            }
        };
        NegativeSampler {
            n,
            kind,
            cumulative,
            positives,
        }
    }

    fn dst(&self, rng: &mut Xoshiro256PlusPlus) -> u32 {
        match self.kind {
            NegativeKind::Uniform => rng.random_range(0..self.n) as u32,
            NegativeKind::Degree => {
                let total = self.cumulative.last().copied().unwrap_or(0.0);
                let r = rng.random::<f64>() * total;
                self.cumulative.partition_point(|&c| c <= r).min(self.n - 1) as u32
            }
        }
    }

    fn is_positive(&self, a: u32, b: u32) -> bool {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        self.positives
            .binary_search(&(((lo as u64) << 32) | hi as u64))
            .is_ok()
    }

    /// `count` negative pairs (sources and destinations), deterministic in `seed`.
    pub fn draw(&self, count: usize, seed: u64) -> (Vec<u32>, Vec<u32>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x4E6_A71E);
        let (mut src, mut dst) = (Vec::with_capacity(count), Vec::with_capacity(count));
        if self.n < 2 {
            return (src, dst);
        }
        for _ in 0..count {
            let mut pair = (0, 0);
            for _ in 0..=REDRAWS {
                let a = rng.random_range(0..self.n) as u32;
                let b = self.dst(&mut rng);
                pair = (a, b);
                if a != b && !self.is_positive(a, b) {
                    break;
                }
            }
            src.push(pair.0);
            dst.push(pair.1);
        }
        (src, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_avoid_positives_and_follow_degree() {
        // Node 0 is linked to everyone: with every pair (0, v) positive, no draw is one.
        let n = 50;
        let positives: Vec<u64> = (1..n as u64).collect();
        let mut deg = vec![1u32; n];
        deg[7] = 10_000;
        let u = NegativeSampler::new(n, NegativeKind::Uniform, &deg, positives.clone());
        let (s, d) = u.draw(2000, 1);
        assert_eq!(s.len(), 2000);
        assert!(s.iter().zip(&d).all(|(&a, &b)| a != b && a.min(b) != 0));
        assert_eq!(u.draw(2000, 1), (s.clone(), d.clone()));
        let g = NegativeSampler::new(n, NegativeKind::Degree, &deg, positives);
        let (_, dd) = g.draw(2000, 1);
        let hits7 = dd.iter().filter(|&&v| v == 7).count();
        let uni7 = d.iter().filter(|&&v| v == 7).count();
        // 10000^0.75 = 1000 against 48 others of weight 1: most draws land on node 7.
        assert!(hits7 > 1500, "{hits7}");
        assert!(uni7 < 150, "{uni7}");
    }
}
