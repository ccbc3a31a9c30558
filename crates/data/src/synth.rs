//! The synthetic generator: a degree-corrected stochastic block model (power-law degrees,
//! one community per class, a homophily knob) with class-centroid features, written as a
//! dataset directory. `products` matches ogbn-products' sizes.

use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use scalegnn_graph::CsrBuilder;
use scalegnn_npy::NpyWriter;

use crate::progress::Progress;
use crate::{DataError, DatasetWriter, Manifest, Result, Task};

/// Edges drawn per RNG stream: fixed, so output does not depend on the thread count.
const EDGE_CHUNK: usize = 1 << 20;
/// Feature rows per RNG stream, for the same reason.
const FEAT_CHUNK: usize = 1 << 14;

/// Named sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// 2,000 nodes, for tests.
    Tiny,
    /// 100,000 nodes, average degree 20.
    Small,
    /// ogbn-products sizes: 2,449,029 nodes, 123,718,280 directed edges.
    Products,
}

impl FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "tiny" => Ok(Preset::Tiny),
            "small" => Ok(Preset::Small),
            "products" => Ok(Preset::Products),
            _ => Err(format!("unknown preset {s:?} (tiny, small, products)")),
        }
    }
}

/// Everything that determines a synthetic graph.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    pub name: String,
    pub nodes: usize,
    /// Directed edges (twice the undirected count).
    pub edges: usize,
    pub features: usize,
    pub classes: usize,
    /// Share of edges whose endpoints are in the same class.
    pub homophily: f64,
    pub seed: u64,
    pub train: usize,
    pub val: usize,
    /// Degree exponent of the power law.
    pub gamma: f64,
    /// Largest expected degree as a fraction of N (caps the hubs).
    pub max_degree_frac: f64,
    /// Zipf exponent of class sizes.
    pub class_skew: f64,
    /// Standard deviation of class centroids (noise has standard deviation 1).
    pub centroid_scale: f32,
}

/// ogbn-products split fractions.
const TRAIN_FRAC: f64 = 196_615.0 / 2_449_029.0;
const VAL_FRAC: f64 = 39_323.0 / 2_449_029.0;

impl SynthConfig {
    /// The configuration of a preset.
    pub fn preset(p: Preset, seed: u64) -> SynthConfig {
        let (name, nodes, edges, features, classes) = match p {
            Preset::Tiny => ("tiny", 2_000, 20_000, 16, 5),
            Preset::Small => ("small", 100_000, 2_000_000, 100, 47),
            Preset::Products => ("products", 2_449_029, 123_718_280, 100, 47),
        };
        let (train, val) = match p {
            Preset::Products => (196_615, 39_323),
            _ => (
                (nodes as f64 * TRAIN_FRAC).round() as usize,
                (nodes as f64 * VAL_FRAC).round() as usize,
            ),
        };
        SynthConfig {
            name: name.into(),
            nodes,
            edges,
            features,
            classes,
            homophily: 0.75,
            seed,
            train,
            val,
            gamma: 2.3,
            max_degree_frac: 1.0 / 140.0,
            class_skew: 0.5,
            centroid_scale: 0.22,
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |r: String| Err(DataError::invalid("synth", r));
        if self.nodes < 2 || self.classes == 0 || self.classes > self.nodes || self.features == 0 {
            return bad(format!(
                "need nodes ≥ 2, 1 ≤ classes ≤ nodes, features ≥ 1 (got {} nodes, {} classes, {} features)",
                self.nodes, self.classes, self.features
            ));
        }
        if self.nodes >= i32::MAX as usize {
            return bad("synth supports up to 2^31 - 1 nodes".into());
        }
        if !self.edges.is_multiple_of(2) {
            return bad(format!(
                "edges = {} must be even (the graph is undirected)",
                self.edges
            ));
        }
        let max_und = self.nodes as f64 * (self.nodes as f64 - 1.0) / 2.0;
        if self.edges as f64 / 2.0 > 0.5 * max_und {
            return bad(format!(
                "{} edges are too dense for {} nodes",
                self.edges, self.nodes
            ));
        }
        if !(0.0..=1.0).contains(&self.homophily) {
            return bad(format!("homophily {} is not in [0, 1]", self.homophily));
        }
        if self.train + self.val > self.nodes {
            return bad("train + val exceeds the node count".into());
        }
        if self.gamma <= 1.0 {
            return bad("gamma must be > 1".into());
        }
        // Lower bounds of what generation holds at once: the edge list (two ids and a CSR
        // entry per directed edge) and the feature rows; refused before anything is drawn.
        let edges = self.edges as u128 * 16;
        let feats = scalegnn_limits::bytes_of("features", &[self.nodes, self.features], 4)
            .map_err(|e| DataError::invalid("synth", e.to_string()))?;
        scalegnn_limits::check_alloc("generating the graph", edges + feats)
            .map_err(|e| DataError::invalid("synth", e.to_string()))?;
        Ok(())
    }
}

/// Walker/Vose alias tables for O(1) weighted draws over disjoint index segments.
struct Alias {
    prob: Vec<f32>,
    alias: Vec<u32>,
}

impl Alias {
    /// One table per segment `[bounds[s], bounds[s+1])`, stored in place.
    fn build(w: &[f64], bounds: &[usize]) -> Alias {
        let mut prob = vec![0f32; w.len()];
        let mut alias = vec![0u32; w.len()];
        let mut small = Vec::new();
        let mut large = Vec::new();
        let mut scaled = Vec::new();
        for s in bounds.windows(2) {
            let (lo, hi) = (s[0], s[1]);
            let n = (hi - lo) as f64;
            let total: f64 = w[lo..hi].iter().sum();
            scaled.clear();
            scaled.extend(w[lo..hi].iter().map(|&x| x * n / total));
            small.clear();
            large.clear();
            for (i, &p) in scaled.iter().enumerate() {
                if p < 1.0 {
                    small.push(i);
                } else {
                    large.push(i);
                }
            }
            while let (Some(&s_), Some(&l)) = (small.last(), large.last()) {
                small.pop();
                prob[lo + s_] = scaled[s_] as f32;
                alias[lo + s_] = (lo + l) as u32;
                scaled[l] -= 1.0 - scaled[s_];
                if scaled[l] < 1.0 {
                    large.pop();
                    small.push(l);
                }
            }
            for &i in small.iter().chain(large.iter()) {
                prob[lo + i] = 1.0;
                alias[lo + i] = (lo + i) as u32;
            }
        }
        Alias { prob, alias }
    }

    #[inline]
    fn draw(&self, lo: usize, hi: usize, rng: &mut Xoshiro256PlusPlus) -> usize {
        let i = rng.random_range(lo..hi);
        if rng.random::<f32>() < self.prob[i] {
            i
        } else {
            self.alias[i] as usize
        }
    }
}

/// Community bounds (Zipf sizes, each ≥ 1) over internal ids `0..n`.
fn community_bounds(n: usize, c: usize, skew: f64) -> Vec<usize> {
    let w: Vec<f64> = (0..c).map(|k| 1.0 / ((k + 1) as f64).powf(skew)).collect();
    let total: f64 = w.iter().sum();
    let mut sizes: Vec<usize> = w
        .iter()
        .map(|x| ((n - c) as f64 * x / total) as usize + 1)
        .collect();
    let mut rest = n - sizes.iter().sum::<usize>();
    let mut k = 0;
    while rest > 0 {
        sizes[k % c] += 1;
        rest -= 1;
        k += 1;
    }
    let mut bounds = vec![0];
    for s in sizes {
        bounds.push(bounds[bounds.len() - 1] + s);
    }
    bounds
}

fn stream(seed: u64, a: u64, b: u64) -> Xoshiro256PlusPlus {
    let mut s = Xoshiro256PlusPlus::seed_from_u64(seed);
    // Distinct, reproducible streams per (purpose, chunk) without sharing state across threads.
    for _ in 0..(a % 7) {
        s.jump();
    }
    Xoshiro256PlusPlus::seed_from_u64(
        s.random::<u64>()
            ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F),
    )
}

/// Generates the graph described by `cfg` into the dataset directory `out`.
pub fn generate(
    cfg: &SynthConfig,
    out: &Path,
    force: bool,
    progress: &dyn Progress,
) -> Result<Manifest> {
    cfg.check()?;
    let t0 = Instant::now();
    let n = cfg.nodes;
    let m_und = cfg.edges / 2;
    let bounds = community_bounds(n, cfg.classes, cfg.class_skew);
    let comm_of_internal = |i: usize| bounds.partition_point(|&b| b <= i) - 1;

    progress.stage("node weights", None);
    let mut rng = stream(cfg.seed, 1, 0);
    let mut w: Vec<f64> = (0..n)
        .map(|_| (1.0 - rng.random::<f64>()).powf(-1.0 / (cfg.gamma - 1.0)))
        .collect();
    // Cap weights so the largest expected degree is max_degree_frac·N: expected degree of i
    // is about 2·m·w_i/Σw; capping lowers Σw, so repeat until it settles.
    let dmax = (cfg.max_degree_frac * n as f64).max(2.0);
    for _ in 0..20 {
        let total: f64 = w.iter().sum();
        let cap = dmax * total / (2.0 * m_und as f64);
        let capped = w.iter().filter(|&&x| x > cap).count();
        w.iter_mut().for_each(|x| *x = x.min(cap));
        if capped == 0 {
            break;
        }
    }
    let global = Alias::build(&w, &[0, n]);
    let local = Alias::build(&w, &bounds);
    drop(w);

    // Internal ids are grouped by community; a random permutation hides that from the output.
    let mut perm: Vec<u32> = (0..n as u32).collect();
    {
        use rand::seq::SliceRandom;
        perm.shuffle(&mut stream(cfg.seed, 2, 0));
    }

    progress.stage("drawing edges", Some(m_und as u64));
    let draw_chunk = |chunk: usize, count: usize| -> Vec<u64> {
        let mut rng = stream(cfg.seed, 3, chunk as u64);
        let mut keys = Vec::with_capacity(count);
        for _ in 0..count {
            let u = global.draw(0, n, &mut rng);
            let cu = comm_of_internal(u);
            let v = if rng.random::<f64>() < cfg.homophily || cfg.classes == 1 {
                local.draw(bounds[cu], bounds[cu + 1], &mut rng)
            } else {
                // Rejection keeps the draw ∝ weight outside u's class (≤ a few tries).
                let mut v = global.draw(0, n, &mut rng);
                let mut tries = 0;
                while comm_of_internal(v) == cu && tries < 64 {
                    v = global.draw(0, n, &mut rng);
                    tries += 1;
                }
                v
            };
            if u != v {
                let (a, b) = (u.min(v) as u64, u.max(v) as u64);
                keys.push(a * n as u64 + b);
            }
        }
        keys
    };
    let mut keys: Vec<u64> = Vec::new();
    let mut next_chunk = 0usize;
    let mut need = m_und;
    for round in 0..50 {
        let draw = if round == 0 {
            need + need / 50 + 16
        } else {
            need + need / 3 + 16
        };
        let chunks = draw.div_ceil(EDGE_CHUNK);
        let fresh: Vec<Vec<u64>> = (0..chunks)
            .into_par_iter()
            .map(|c| {
                let cnt = EDGE_CHUNK.min(draw - c * EDGE_CHUNK);
                let k = draw_chunk(next_chunk + c, cnt);
                progress.advance(cnt as u64);
                k
            })
            .collect();
        next_chunk += chunks;
        keys.reserve(fresh.iter().map(Vec::len).sum());
        for f in fresh {
            keys.extend_from_slice(&f);
        }
        keys.par_sort_unstable();
        keys.dedup();
        if keys.len() >= m_und {
            break;
        }
        need = m_und - keys.len();
    }
    if keys.len() < m_und {
        return Err(DataError::invalid(
            "synth",
            "could not reach the edge target; lower the edge count",
        ));
    }
    if keys.len() > m_und {
        // Drop a seeded random surplus so the count is exact.
        let surplus = keys.len() - m_und;
        let mut drop_mark = vec![false; keys.len()];
        let mut rng = stream(cfg.seed, 4, 0);
        let mut dropped = 0;
        while dropped < surplus {
            let i = rng.random_range(0..keys.len());
            if !drop_mark[i] {
                drop_mark[i] = true;
                dropped += 1;
            }
        }
        let mut i = 0;
        keys.retain(|_| {
            i += 1;
            !drop_mark[i - 1]
        });
    }
    let same = keys
        .par_iter()
        .filter(|&&k| {
            comm_of_internal((k / n as u64) as usize) == comm_of_internal((k % n as u64) as usize)
        })
        .count();
    let edge_homophily = same as f64 / keys.len().max(1) as f64;

    progress.stage("building CSR", None);
    let src: Vec<u32> = keys
        .par_iter()
        .map(|&k| perm[(k / n as u64) as usize])
        .collect();
    let dst: Vec<u32> = keys
        .par_iter()
        .map(|&k| perm[(k % n as u64) as usize])
        .collect();
    drop(keys);
    let built = CsrBuilder::new()
        .undirected(true)
        .num_nodes(n)
        .build(&src, &dst)?;
    drop((src, dst));
    let csr = built.csr;

    let mut y = vec![0i64; n];
    for c in 0..cfg.classes {
        for i in bounds[c]..bounds[c + 1] {
            y[perm[i] as usize] = c as i64;
        }
    }
    drop(perm);

    let mut wr = DatasetWriter::create(out, force)?;
    csr.write_npy(wr.dir())?;
    wr.file_done();
    wr.file_done();
    let max_degree = (0..n)
        .into_par_iter()
        .map(|v| csr.degree(v))
        .max()
        .unwrap_or(0);
    drop(csr);
    wr.write("y.npy", &[n], &y)?;
    let mut order: Vec<i64> = (0..n as i64).collect();
    {
        use rand::seq::SliceRandom;
        order.shuffle(&mut stream(cfg.seed, 5, 0));
    }
    let mut parts = [
        order[..cfg.train].to_vec(),
        order[cfg.train..cfg.train + cfg.val].to_vec(),
        order[cfg.train + cfg.val..].to_vec(),
    ];
    drop(order);
    for (name, part) in ["train_idx.npy", "val_idx.npy", "test_idx.npy"]
        .iter()
        .zip(parts.iter_mut())
    {
        part.par_sort_unstable();
        wr.write(name, &[part.len()], part)?;
    }

    progress.stage("features", Some(n as u64));
    let f = cfg.features;
    let mut crng = stream(cfg.seed, 6, 0);
    let centroids: Vec<f32> = (0..cfg.classes * f)
        .map(|_| {
            let z: f32 = StandardNormal.sample(&mut crng);
            z * cfg.centroid_scale
        })
        .collect();
    let mut xw = NpyWriter::<f32>::create(&wr.path("x.npy"), &[n, f])?;
    // Generate a group of chunks in parallel, then write them in order.
    let group = rayon::current_num_threads().max(1) * 4;
    let nchunks = n.div_ceil(FEAT_CHUNK);
    let mut c0 = 0;
    while c0 < nchunks {
        let c1 = (c0 + group).min(nchunks);
        let blocks: Vec<Vec<f32>> = (c0..c1)
            .into_par_iter()
            .map(|c| {
                let (lo, hi) = (c * FEAT_CHUNK, ((c + 1) * FEAT_CHUNK).min(n));
                let mut rng = stream(cfg.seed, 7, c as u64);
                let mut block = Vec::with_capacity((hi - lo) * f);
                for &label in &y[lo..hi] {
                    let cen = &centroids[label as usize * f..(label as usize + 1) * f];
                    block.extend(cen.iter().map(|&m| {
                        let z: f32 = StandardNormal.sample(&mut rng);
                        m + z
                    }));
                }
                block
            })
            .collect();
        for b in &blocks {
            xw.write(b)?;
            progress.advance((b.len() / f) as u64);
        }
        c0 = c1;
    }
    xw.finish()?;
    wr.file_done();

    let mut m = Manifest::new(&cfg.name, Task::NodeClassification);
    m.num_nodes = n as u64;
    m.num_edges = cfg.edges as u64;
    m.num_features = f as u64;
    m.num_classes = cfg.classes as u64;
    m.source = serde_json::json!({
        "format": "synth",
        "generator": "scalegnn-synth/dcsbm-v1",
        "seed": cfg.seed,
        "homophily_target": cfg.homophily,
        "edge_homophily": edge_homophily,
        "max_degree": max_degree,
        "gamma": cfg.gamma,
        "max_degree_frac": cfg.max_degree_frac,
        "class_skew": cfg.class_skew,
        "centroid_scale": cfg.centroid_scale,
        "generation_seconds": t0.elapsed().as_secs_f64(),
    });
    progress.stage("checksumming and renaming", None);
    wr.commit(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dataset, NoProgress, OpenOptions};

    #[test]
    fn tiny_is_exact_symmetric_deterministic_and_homophilous() {
        let root = tempfile::tempdir().unwrap();
        let cfg = SynthConfig::preset(Preset::Tiny, 3);
        let m = generate(&cfg, &root.path().join("a"), false, &NoProgress).unwrap();
        assert_eq!(m.num_edges, 20_000);
        let d = Dataset::open(&root.path().join("a"), OpenOptions::default()).unwrap();
        assert_eq!(d.graph.num_nodes(), 2_000);
        assert_eq!(d.graph.num_edges(), 20_000);
        assert!(d.graph.is_symmetric());
        assert!((0..2000).all(|v| d.graph.neighbors(v).iter().all(|u| u != v)));
        let h = m.source["edge_homophily"].as_f64().unwrap();
        assert!((h - 0.75).abs() < 0.03, "homophily {h}");
        let m2 = generate(&cfg, &root.path().join("b"), false, &NoProgress).unwrap();
        assert_eq!(m.files, m2.files, "same seed gives byte-identical files");
        let mut het = cfg.clone();
        het.homophily = 0.2;
        het.seed = 4;
        let m3 = generate(&het, &root.path().join("c"), false, &NoProgress).unwrap();
        let h3 = m3.source["edge_homophily"].as_f64().unwrap();
        assert!((h3 - 0.2).abs() < 0.03, "homophily {h3}");
        assert_ne!(m.files["indices.npy"], m3.files["indices.npy"]);
    }

    #[test]
    fn labels_are_learnable_from_neighbourhood_features() {
        // Nearest-centroid on x alone is weak; on x averaged with neighbours it is strong.
        let root = tempfile::tempdir().unwrap();
        let mut cfg = SynthConfig::preset(Preset::Tiny, 1);
        cfg.centroid_scale = 0.5;
        generate(&cfg, &root.path().join("g"), false, &NoProgress).unwrap();
        let d = Dataset::open(&root.path().join("g"), OpenOptions::default()).unwrap();
        let x = d.x.as_ref().unwrap();
        let Some(crate::dataset::Labels::Classes(y)) = &d.y else {
            panic!("labels")
        };
        let (n, f, c) = (2000, 16, 5);
        let mut cen = vec![0f64; c * f];
        let mut cnt = vec![0f64; c];
        for i in 0..n {
            cnt[y[i] as usize] += 1.0;
            for j in 0..f {
                cen[y[i] as usize * f + j] += x[i * f + j] as f64;
            }
        }
        for k in 0..c {
            for j in 0..f {
                cen[k * f + j] /= cnt[k].max(1.0);
            }
        }
        let acc = |feat: &dyn Fn(usize, usize) -> f64| {
            (0..n)
                .filter(|&i| {
                    let best = (0..c)
                        .min_by(|&a, &b| {
                            let da: f64 =
                                (0..f).map(|j| (feat(i, j) - cen[a * f + j]).powi(2)).sum();
                            let db: f64 =
                                (0..f).map(|j| (feat(i, j) - cen[b * f + j]).powi(2)).sum();
                            da.total_cmp(&db)
                        })
                        .unwrap();
                    best as i64 == y[i]
                })
                .count() as f64
                / n as f64
        };
        let raw = acc(&|i, j| x[i * f + j] as f64);
        let smooth = acc(&|i, j| {
            let nb = d.graph.neighbors(i);
            let s: f64 = nb.iter().map(|u| x[u * f + j] as f64).sum::<f64>() + x[i * f + j] as f64;
            s / (nb.len() + 1) as f64
        });
        assert!(smooth > raw + 0.15, "raw {raw}, smoothed {smooth}");
    }
}
