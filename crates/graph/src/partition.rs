//! Node partitions of a graph: METIS k-way (minimum edge cut, balanced parts) or seeded random,
//! with the edge cut and balance that say how good a partition is. ClusterGCN batches and
//! sharding read them.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::{Csr, GraphError, Result};

/// How nodes are assigned to parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionMethod {
    /// METIS multilevel k-way partitioning of the undirected graph (minimum edge cut).
    Metis,
    /// Nodes shuffled with the seed and dealt out in turn (equal sizes, no locality).
    Random,
}

impl std::fmt::Display for PartitionMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PartitionMethod::Metis => "metis",
            PartitionMethod::Random => "random",
        })
    }
}

impl std::str::FromStr for PartitionMethod {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "metis" => Ok(PartitionMethod::Metis),
            "random" => Ok(PartitionMethod::Random),
            other => Err(format!(
                "unknown partition method `{other}` (expected metis or random)"
            )),
        }
    }
}

/// The part of every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// `parts[v]` is node v's part, in `0..num_parts`.
    pub parts: Vec<u32>,
    pub num_parts: usize,
}

/// How good a partition is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartitionQuality {
    /// Edges of the CSR (self loops excluded) whose endpoints lie in different parts.
    pub cut_edges: u64,
    /// `cut_edges` over the edges that are not self loops.
    pub cut_fraction: f64,
    /// Largest part over the mean part size (1 is perfectly balanced).
    pub balance: f64,
}

impl Partition {
    /// Partitions `g` into `num_parts` parts with `method`, seeded.
    pub fn compute(
        g: &Csr,
        num_parts: usize,
        method: PartitionMethod,
        seed: u64,
    ) -> Result<Partition> {
        let n = g.num_nodes();
        if num_parts == 0 || num_parts > n {
            return Err(GraphError::BadPartition(format!(
                "{num_parts} parts for {n} nodes (need 1 ≤ parts ≤ nodes)"
            )));
        }
        let parts = match method {
            PartitionMethod::Random => random_parts(n, num_parts, seed),
            PartitionMethod::Metis => metis_parts(g, num_parts, seed)?,
        };
        Ok(Partition { parts, num_parts })
    }

    /// Edge cut and balance of this partition on `g`.
    pub fn quality(&self, g: &Csr) -> PartitionQuality {
        let (cut, total) = (0..g.num_nodes())
            .into_par_iter()
            .map(|v| {
                let pv = self.parts[v];
                let mut cut = 0u64;
                let mut total = 0u64;
                for u in g.neighbors(v).iter() {
                    if u != v {
                        total += 1;
                        cut += u64::from(self.parts[u] != pv);
                    }
                }
                (cut, total)
            })
            .reduce(|| (0, 0), |x, y| (x.0 + y.0, x.1 + y.1));
        let mut sizes = vec![0u64; self.num_parts];
        for &p in &self.parts {
            sizes[p as usize] += 1;
        }
        let mean = self.parts.len() as f64 / self.num_parts.max(1) as f64;
        let max = sizes.iter().copied().max().unwrap_or(0) as f64;
        PartitionQuality {
            cut_edges: cut,
            cut_fraction: if total == 0 {
                0.0
            } else {
                cut as f64 / total as f64
            },
            balance: if mean > 0.0 { max / mean } else { 1.0 },
        }
    }

    /// Nodes of each part, ascending (the clusters ClusterGCN draws from).
    pub fn members(&self) -> Vec<Vec<u32>> {
        let mut out = vec![Vec::new(); self.num_parts];
        for (v, &p) in self.parts.iter().enumerate() {
            out[p as usize].push(v as u32);
        }
        out
    }
}

fn random_parts(n: usize, k: usize, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
    let mut parts = vec![0u32; n];
    for (i, &v) in order.iter().enumerate() {
        parts[v as usize] = (i % k) as u32;
    }
    parts
}

/// The undirected simple graph METIS needs (both directions of every edge once, no self
/// loops), as 32-bit `xadj`/`adjncy`.
fn symmetric_adjacency(g: &Csr) -> Result<(Vec<metis::Idx>, Vec<metis::Idx>)> {
    let n = g.num_nodes();
    let too_large = |what: &str| {
        GraphError::BadPartition(format!(
            "{what} exceeds METIS's 32-bit indices (the vendored build); use --method random"
        ))
    };
    if n >= metis::Idx::MAX as usize {
        return Err(too_large("the node count"));
    }
    // Every edge as (min, max) once, then sorted and deduplicated: one 8-byte key per edge
    // (1 GB for the products preset's 124M edges) instead of per-node hash sets.
    let mut keys: Vec<u64> = (0..n)
        .into_par_iter()
        .flat_map_iter(|v| {
            let row = g.neighbors(v);
            (0..row.len()).filter_map(move |k| {
                let u = row.get(k);
                (u != v).then(|| {
                    let (lo, hi) = if u < v { (u, v) } else { (v, u) };
                    ((lo as u64) << 32) | hi as u64
                })
            })
        })
        .collect();
    keys.par_sort_unstable();
    keys.dedup();
    if keys.len().saturating_mul(2) >= metis::Idx::MAX as usize {
        return Err(too_large("the number of undirected edges"));
    }
    let mut deg = vec![0 as metis::Idx; n + 1];
    for &k in &keys {
        deg[(k >> 32) as usize + 1] += 1;
        deg[(k & 0xffff_ffff) as usize + 1] += 1;
    }
    for v in 0..n {
        deg[v + 1] += deg[v];
    }
    let xadj = deg;
    let mut fill: Vec<metis::Idx> = xadj[..n].to_vec();
    let mut adjncy = vec![0 as metis::Idx; keys.len() * 2];
    for &k in &keys {
        let (a, b) = ((k >> 32) as usize, (k & 0xffff_ffff) as usize);
        adjncy[fill[a] as usize] = b as metis::Idx;
        fill[a] += 1;
        adjncy[fill[b] as usize] = a as metis::Idx;
        fill[b] += 1;
    }
    Ok((xadj, adjncy))
}

fn metis_parts(g: &Csr, k: usize, seed: u64) -> Result<Vec<u32>> {
    let n = g.num_nodes();
    if k == 1 {
        return Ok(vec![0; n]);
    }
    let (xadj, adjncy) = symmetric_adjacency(g)?;
    let fail = |e: String| GraphError::BadPartition(format!("METIS: {e}"));
    let mut part = vec![0 as metis::Idx; n];
    let nparts = metis::Idx::try_from(k).map_err(|_| fail(format!("{k} parts")))?;
    metis::Graph::new(1, nparts, &xadj, &adjncy)
        .map_err(|e| fail(e.to_string()))?
        // METIS's seed is an int; the low bits of ours keep runs reproducible.
        .set_option(metis::option::Seed((seed & 0x7fff_ffff) as metis::Idx))
        .part_kway(&mut part)
        .map_err(|e| fail(e.to_string()))?;
    Ok(part.into_iter().map(|p| p as u32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CsrBuilder;

    /// `c` cliques of `s` nodes, clique i joined to clique i+1 by one edge (undirected).
    fn cliques(c: u32, s: u32) -> Csr {
        let (mut src, mut dst) = (Vec::new(), Vec::new());
        for q in 0..c {
            for a in 0..s {
                for b in a + 1..s {
                    src.push((q * s + a) as i64);
                    dst.push((q * s + b) as i64);
                }
            }
            if q + 1 < c {
                src.push((q * s) as i64);
                dst.push(((q + 1) * s) as i64);
            }
        }
        CsrBuilder::new()
            .undirected(true)
            .dedup(true)
            .build(&src, &dst)
            .unwrap()
            .csr
    }

    #[test]
    fn metis_finds_the_cliques_and_random_does_not() {
        let g = cliques(4, 12);
        let p = Partition::compute(&g, 4, PartitionMethod::Metis, 0).unwrap();
        let q = p.quality(&g);
        // The three joining edges, each stored in both directions.
        assert_eq!(q.cut_edges, 6, "{:?}", p.parts);
        assert!((q.balance - 1.0).abs() < 1e-9, "{q:?}");
        for m in p.members() {
            assert_eq!(m.len(), 12);
            assert!(m.iter().all(|&v| v / 12 == m[0] / 12), "{m:?}");
        }
        let r = Partition::compute(&g, 4, PartitionMethod::Random, 0).unwrap();
        let rq = r.quality(&g);
        assert_eq!(rq.balance, 1.0);
        assert!(rq.cut_edges > 10 * q.cut_edges, "{rq:?}");
        // Seeded.
        assert_eq!(
            Partition::compute(&g, 4, PartitionMethod::Random, 0).unwrap(),
            r
        );
        assert_ne!(
            Partition::compute(&g, 4, PartitionMethod::Random, 1).unwrap(),
            r
        );
    }

    #[test]
    fn directed_input_and_self_loops_are_partitioned_as_undirected() {
        // A directed ring with self loops: METIS sees the undirected simple ring.
        let n = 40i64;
        let mut src: Vec<i64> = (0..n).collect();
        let mut dst: Vec<i64> = (0..n).map(|v| (v + 1) % n).collect();
        src.extend(0..n);
        dst.extend(0..n);
        let g = CsrBuilder::new().build(&src, &dst).unwrap().csr;
        let (xadj, adjncy) = symmetric_adjacency(&g).unwrap();
        assert_eq!(xadj.len(), 41);
        assert_eq!(adjncy.len(), 80);
        assert!(xadj.windows(2).all(|w| w[1] - w[0] == 2));
        let p = Partition::compute(&g, 2, PartitionMethod::Metis, 0).unwrap();
        // Two arcs of a ring: two undirected edges cut, each stored once (directed input).
        assert_eq!(p.quality(&g).cut_edges, 2, "{:?}", p.parts);
    }

    #[test]
    fn bad_part_counts_are_refused() {
        let g = cliques(2, 3);
        for k in [0, 7] {
            for m in [PartitionMethod::Metis, PartitionMethod::Random] {
                let e = Partition::compute(&g, k, m, 0).unwrap_err().to_string();
                assert!(e.contains(&format!("{k} parts for 6 nodes")), "{e}");
            }
        }
        assert_eq!(
            Partition::compute(&g, 1, PartitionMethod::Metis, 0)
                .unwrap()
                .parts,
            vec![0; 6]
        );
        assert!("kahip".parse::<PartitionMethod>().is_err());
    }
}
