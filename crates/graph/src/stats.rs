//! Degree statistics of a CSR (in-degrees).

use crate::Csr;

/// Summary of the in-degree distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DegreeStats {
    pub min: u32,
    pub median: f64,
    pub p99: u32,
    pub max: u32,
    pub mean: f64,
    pub isolated: usize,
}

impl DegreeStats {
    /// Computes the statistics of `g`'s in-degrees (all zero for an empty graph).
    pub fn of(g: &Csr) -> DegreeStats {
        let mut d = g.degrees();
        let n = d.len();
        if n == 0 {
            return DegreeStats {
                min: 0,
                median: 0.0,
                p99: 0,
                max: 0,
                mean: 0.0,
                isolated: 0,
            };
        }
        let isolated = d.iter().filter(|&&x| x == 0).count();
        let mean = g.num_edges() as f64 / n as f64;
        let min = *d.iter().min().unwrap_or(&0);
        let max = *d.iter().max().unwrap_or(&0);
        // Nearest-rank percentiles, like numpy's method="lower" for p99; median as numpy's.
        let p99_rank = ((n as f64) * 0.99).ceil() as usize;
        let p99 = *d.select_nth_unstable(p99_rank.clamp(1, n) - 1).1;
        let hi = *d.select_nth_unstable(n / 2).1;
        let median = if !n.is_multiple_of(2) {
            hi as f64
        } else {
            let lo = *d.select_nth_unstable(n / 2 - 1).1;
            (lo as f64 + hi as f64) / 2.0
        };
        DegreeStats {
            min,
            median,
            p99,
            max,
            mean,
            isolated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CsrBuilder;

    #[test]
    fn stats_of_a_star() {
        let src: Vec<u32> = (1..=100).collect();
        let dst = vec![0u32; 100];
        let g = CsrBuilder::new()
            .num_nodes(102)
            .build(&src, &dst)
            .unwrap()
            .csr;
        let s = DegreeStats::of(&g);
        assert_eq!((s.min, s.max, s.p99, s.isolated), (0, 100, 0, 101));
        assert_eq!(s.median, 0.0);
        let g = CsrBuilder::new()
            .undirected(true)
            .build(&src, &dst)
            .unwrap()
            .csr;
        let s = DegreeStats::of(&g);
        assert_eq!((s.min, s.max, s.median, s.isolated), (1, 100, 1.0, 0));
    }
}
