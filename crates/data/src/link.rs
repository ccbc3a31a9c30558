//! Edge splits for link prediction: which node pairs are training, validation and test
//! positives, the fixed validation and test negatives, and the message-passing graph the
//! held-out positives are removed from (both directions), so no model sees the edges it is
//! scored on.

use std::collections::HashSet;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_graph::{Csr, Indices};
use scalegnn_npy::{open_mmap, write_array_atomic};
use serde::{Deserialize, Serialize};

use crate::{xxh3_file, DataError, FileEntry, Manifest, Result};

/// The files of an edge split, in the order of [`LinkSplit::parts`].
pub const LINK_FILES: [&str; 5] = [
    "link_train_pos.npy",
    "link_val_pos.npy",
    "link_val_neg.npy",
    "link_test_pos.npy",
    "link_test_neg.npy",
];

/// The files [`LinkSplit::message_graph`] removes from the dataset's graph: the validation
/// and test positives.
pub const HELD_OUT_FILES: [&str; 2] = [LINK_FILES[1], LINK_FILES[3]];

/// How a dataset's edges were split, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkSplitInfo {
    /// Shares of the undirected node pairs: training, validation, test.
    pub fractions: [f64; 3],
    pub seed: u64,
    /// Fixed negatives per validation/test positive.
    pub negatives_per_positive: usize,
    /// Distinct undirected pairs (self-loops excluded) the fractions are shares of.
    pub pairs: u64,
    /// Where an imported split came from (`split-edges --from`); None when drawn here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// What `split_edges` is asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkSplitSpec {
    pub train: f64,
    pub val: f64,
    pub test: f64,
    pub negatives_per_positive: usize,
}

impl LinkSplitSpec {
    /// Parses `train,val,test` fractions (e.g. `0.85,0.05,0.10`).
    pub fn parse(s: &str) -> std::result::Result<LinkSplitSpec, String> {
        let v: Vec<f64> = s
            .split(',')
            .map(|p| {
                p.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("`{p}` is not a number (expected train,val,test)"))
            })
            .collect::<std::result::Result<_, _>>()?;
        let [train, val, test] = v[..] else {
            return Err(format!(
                "{} values given; expected three fractions train,val,test (e.g. 0.85,0.05,0.10)",
                v.len()
            ));
        };
        let spec = LinkSplitSpec {
            train,
            val,
            test,
            negatives_per_positive: 1,
        };
        spec.check()?;
        Ok(spec)
    }

    /// Refuses fractions outside [0, 1], summing above 1, or leaving a part empty.
    pub fn check(&self) -> std::result::Result<(), String> {
        let f = [self.train, self.val, self.test];
        if f.iter().any(|v| !v.is_finite() || *v < 0.0 || *v > 1.0) {
            return Err(format!("fractions {f:?} must each be in [0, 1]"));
        }
        let sum: f64 = f.iter().sum();
        if sum > 1.0 + 1e-9 {
            return Err(format!("fractions {f:?} sum to {sum}, more than 1"));
        }
        if self.train <= 0.0 || self.val <= 0.0 || self.test <= 0.0 {
            return Err(format!(
                "fractions {f:?}: training, validation and test each need a share above 0"
            ));
        }
        if self.negatives_per_positive == 0 {
            return Err("negatives per positive must be at least 1".into());
        }
        Ok(())
    }
}

/// An edge split: node pairs `[k, 2]` of each part.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkSplit {
    pub train_pos: Vec<[u32; 2]>,
    pub val_pos: Vec<[u32; 2]>,
    pub val_neg: Vec<[u32; 2]>,
    pub test_pos: Vec<[u32; 2]>,
    pub test_neg: Vec<[u32; 2]>,
}

/// The key of the undirected pair {a, b}: equal for (a, b) and (b, a).
pub fn pair_key(a: u32, b: u32) -> u64 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    ((lo as u64) << 32) | hi as u64
}

/// Sorted keys of every undirected pair with an edge in `graph` (self-loops excluded).
pub fn pair_keys(graph: &Csr) -> Vec<u64> {
    use rayon::prelude::*;
    let mut keys: Vec<u64> = (0..graph.num_nodes())
        .into_par_iter()
        .flat_map_iter(|d| {
            let nb = graph.neighbors(d);
            (0..nb.len()).filter_map(move |k| {
                let s = nb.get(k);
                (s != d).then(|| pair_key(s as u32, d as u32))
            })
        })
        .collect();
    keys.par_sort_unstable();
    keys.dedup();
    keys
}

impl LinkSplit {
    /// The five parts, in the order of [`LINK_FILES`].
    pub fn parts(&self) -> [&Vec<[u32; 2]>; 5] {
        [
            &self.train_pos,
            &self.val_pos,
            &self.val_neg,
            &self.test_pos,
            &self.test_neg,
        ]
    }

    /// Reads the split files of `dir`, checking shapes and that every id is below `n`.
    /// None when the dataset has no edge split.
    pub fn load(dir: &Path, n: usize) -> Result<Option<LinkSplit>> {
        if !dir.join(LINK_FILES[0]).exists() {
            return Ok(None);
        }
        let mut parts = Vec::with_capacity(5);
        for name in LINK_FILES {
            let p = dir.join(name);
            if !p.exists() {
                return Err(DataError::invalid(
                    &p,
                    "is missing: an edge split needs all of link_{train_pos,val_pos,val_neg,test_pos,test_neg}.npy",
                ));
            }
            let a = open_mmap::<i64>(&p)?;
            if a.shape().len() != 2 || a.shape()[1] != 2 {
                return Err(DataError::invalid(
                    &p,
                    format!("shape {:?}; expected [pairs, 2]", a.shape()),
                ));
            }
            if let Some(bad) = a.iter().find(|&&v| v < 0 || v >= n as i64) {
                return Err(DataError::invalid(
                    &p,
                    format!("node id {bad} is outside 0..{n}"),
                ));
            }
            parts.push(
                a.chunks(2)
                    .map(|c| [c[0] as u32, c[1] as u32])
                    .collect::<Vec<_>>(),
            );
        }
        let mut it = parts.into_iter();
        let mut next = || it.next().unwrap_or_default();
        let s = LinkSplit {
            train_pos: next(),
            val_pos: next(),
            val_neg: next(),
            test_pos: next(),
            test_neg: next(),
        };
        for (name, part) in LINK_FILES.iter().zip(s.parts()) {
            if part.is_empty() {
                return Err(DataError::invalid(dir.join(name), "holds no pairs"));
            }
        }
        Ok(Some(s))
    }

    /// The graph messages pass over: `graph` without the validation and test positives, in
    /// either direction.
    pub fn message_graph(&self, graph: &Csr) -> Result<Csr> {
        let mut held: Vec<u64> = self
            .val_pos
            .iter()
            .chain(&self.test_pos)
            .map(|p| pair_key(p[0], p[1]))
            .collect();
        held.sort_unstable();
        let n = graph.num_nodes();
        let keep = |d: usize, s: usize| held.binary_search(&pair_key(s as u32, d as u32)).is_err();
        // Rows in parallel, chunk by chunk, each chunk's kept edges and row lengths; then laid
        // end to end. Indices keep the graph's width (an i64 copy of products' 124M edges
        // cost 1 GB more at peak).
        fn build<T: Copy + Send>(
            n: usize,
            graph: &Csr,
            keep: &(dyn Fn(usize, usize) -> bool + Sync),
            cast: fn(usize) -> T,
        ) -> (Vec<i64>, Vec<T>) {
            use rayon::prelude::*;
            let runs: Vec<(Vec<T>, Vec<u32>)> = (0..n)
                .into_par_iter()
                .chunks(1 << 14)
                .map(|rows| {
                    let (mut out, mut lens) = (Vec::new(), Vec::with_capacity(rows.len()));
                    for d in rows {
                        let nb = graph.neighbors(d);
                        let before = out.len();
                        out.extend(
                            (0..nb.len())
                                .map(|k| nb.get(k))
                                .filter(|&s| keep(d, s))
                                .map(cast),
                        );
                        lens.push((out.len() - before) as u32);
                    }
                    (out, lens)
                })
                .collect();
            let mut indptr = Vec::with_capacity(n + 1);
            indptr.push(0i64);
            let mut indices = Vec::with_capacity(runs.iter().map(|r| r.0.len()).sum());
            for (run, lens) in runs {
                for l in lens {
                    let last = *indptr.last().unwrap_or(&0);
                    indptr.push(last + l as i64);
                }
                indices.extend(run);
            }
            (indptr, indices)
        }
        let indices;
        let indptr;
        match graph.indices() {
            Indices::I32(_) => {
                let (p, i) = build(n, graph, &keep, |v| v as i32);
                indptr = p;
                indices = Indices::I32(scalegnn_npy::Array::from_vec1(i));
            }
            Indices::I64(_) => {
                let (p, i) = build(n, graph, &keep, |v| v as i64);
                indptr = p;
                indices = Indices::I64(scalegnn_npy::Array::from_vec1(i));
            }
        }
        Csr::from_parts(indptr, indices).map_err(DataError::from)
    }
}

/// Splits the undirected node pairs of `graph` (self-loops excluded) into training,
/// validation and test positives, and draws `negatives_per_positive` fixed negatives per
/// validation and test positive (pairs with no edge either way, distinct, no self-loops).
/// Shares beyond `train + val + test` stay in the message-passing graph, unsupervised.
pub fn split_edges(graph: &Csr, spec: LinkSplitSpec, seed: u64) -> Result<(LinkSplit, u64)> {
    spec.check()
        .map_err(|r| DataError::invalid("--link-split", r))?;
    let keys = pair_keys(graph);
    let total = keys.len();
    let count = |f: f64| (f * total as f64).round() as usize;
    let (nv, nt) = (count(spec.val), count(spec.test));
    let ntr = count(spec.train).min(total.saturating_sub(nv + nt));
    if nv == 0 || nt == 0 || ntr == 0 {
        return Err(DataError::invalid(
            "--link-split",
            format!(
                "the graph has {total} undirected edges: too few to split {:?} \
                 (each part needs at least one)",
                [spec.train, spec.val, spec.test]
            ),
        ));
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x11_4B5E);
    let mut order = keys.clone();
    order.shuffle(&mut rng);
    let pair = |k: u64| [(k >> 32) as u32, k as u32];
    let val_pos: Vec<[u32; 2]> = order[..nv].iter().map(|&k| pair(k)).collect();
    let test_pos: Vec<[u32; 2]> = order[nv..nv + nt].iter().map(|&k| pair(k)).collect();
    let mut train_pos: Vec<[u32; 2]> = order[nv + nt..nv + nt + ntr]
        .iter()
        .map(|&k| pair(k))
        .collect();
    train_pos.sort_unstable();
    let n = graph.num_nodes() as u64;
    let want = (nv + nt) * spec.negatives_per_positive;
    // Possible non-edges: n(n-1)/2 minus the edges; refuse a graph too dense to draw from.
    let free = (n * n.saturating_sub(1) / 2).saturating_sub(total as u64);
    if (want as u64) > free / 2 {
        return Err(DataError::invalid(
            "--link-split",
            format!(
                "the graph has {n} nodes and {total} undirected edges: too dense to draw {want} \
                 distinct negative pairs"
            ),
        ));
    }
    let mut drawn: HashSet<u64> = HashSet::with_capacity(want);
    let mut negs = Vec::with_capacity(want);
    while negs.len() < want {
        let (a, b) = (rng.random_range(0..n) as u32, rng.random_range(0..n) as u32);
        let k = pair_key(a, b);
        if a == b || keys.binary_search(&k).is_ok() || !drawn.insert(k) {
            continue;
        }
        negs.push([a, b]);
    }
    let test_neg = negs.split_off(nv * spec.negatives_per_positive);
    Ok((
        LinkSplit {
            train_pos,
            val_pos,
            val_neg: negs,
            test_pos,
            test_neg,
        },
        total as u64,
    ))
}

/// Writes `split` into the dataset directory `dir` (each file atomically) and records it,
/// with the files' checksums, in its manifest (replaced atomically, last).
pub fn write_link_split(
    dir: &Path,
    manifest: &Manifest,
    split: &LinkSplit,
    info: LinkSplitInfo,
) -> Result<Manifest> {
    let mut m = manifest.clone();
    for (name, part) in LINK_FILES.iter().zip(split.parts()) {
        let p = dir.join(name);
        let flat: Vec<i64> = part
            .iter()
            .flat_map(|q| [q[0] as i64, q[1] as i64])
            .collect();
        write_array_atomic(&p, &[part.len(), 2], &flat)?;
        let bytes = std::fs::metadata(&p)
            .map_err(|e| DataError::io(&p, e))?
            .len();
        m.files.insert(
            (*name).to_string(),
            FileEntry {
                bytes,
                xxh3: xxh3_file(&p)?,
            },
        );
    }
    m.link_split = Some(info);
    let text = serde_json::to_string_pretty(&m).map_err(|e| DataError::Manifest {
        path: dir.join("manifest.json"),
        reason: e.to_string(),
    })? + "\n";
    scalegnn_npy::write_file_atomic(&dir.join("manifest.json"), text.as_bytes())?;
    Ok(m)
}

/// Whether the first line of a pairs CSV, split into `cols`, is a header: a field that
/// cannot be an id (not an integer, where ids are integers).
fn is_header(cols: &[&str], keys: &crate::export::NodeKeys) -> bool {
    use crate::export::NodeKeys;
    match keys {
        NodeKeys::Strings(_) => true,
        NodeKeys::Index(_) | NodeKeys::Ints(_) => cols
            .iter()
            .any(|c| c.trim_matches('"').parse::<i64>().is_err()),
    }
}

/// Node pairs to score, read from `path`: a `.npy` of integer node rows `[k, 2]` (row ids
/// 0..N, as `predict` and `embed` write rows), or a CSV of two columns of node ids as the
/// input to `ingest` named them (`keys`; a first line that is not two ids is a header).
pub fn read_pairs(path: &Path, keys: &crate::export::NodeKeys) -> Result<Vec<[u32; 2]>> {
    use crate::export::NodeKeys;
    let n = keys.num_nodes();
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if is_npy {
        let (v, shape) = scalegnn_npy::read_any_as_i64(path)?;
        if shape.len() != 2 || shape[1] != 2 {
            return Err(DataError::invalid(
                path,
                format!("shape {shape:?}; expected [pairs, 2] of node ids"),
            ));
        }
        return v
            .chunks(2)
            .enumerate()
            .map(|(r, c)| {
                let ok = |x: i64| (0..n as i64).contains(&x);
                if ok(c[0]) && ok(c[1]) {
                    Ok([c[0] as u32, c[1] as u32])
                } else {
                    Err(DataError::invalid(
                        path,
                        format!("row {r}: node ({}, {}) is outside 0..{n}", c[0], c[1]),
                    ))
                }
            })
            .collect();
    }
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    // Original id -> row, for ids that were relabelled at ingest.
    let index: Option<std::collections::HashMap<String, u32>> = match keys {
        NodeKeys::Index(_) => None,
        NodeKeys::Ints(v) => Some(
            v.iter()
                .enumerate()
                .map(|(i, k)| (k.to_string(), i as u32))
                .collect(),
        ),
        NodeKeys::Strings(v) => Some(
            v.iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), i as u32))
                .collect(),
        ),
    };
    let find = |id: &str| -> Option<u32> {
        match &index {
            Some(m) => m.get(id).copied(),
            None => id.parse::<u32>().ok().filter(|&v| (v as usize) < n),
        }
    };
    let mut out = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line
            .split([',', '\t', ' '])
            .filter(|c| !c.is_empty())
            .collect();
        let pair = match cols[..] {
            [a, b] => find(a.trim_matches('"')).zip(find(b.trim_matches('"'))),
            _ => None,
        };
        match pair {
            Some((a, b)) => out.push([a, b]),
            // A header: the first line, when a field is not a number (for integer ids) or
            // names no node (string ids). A first line of integers that are not nodes is
            // an error like any other line, not a header to skip.
            None if ln == 0 && is_header(&cols, keys) => {}
            None => {
                return Err(DataError::invalid(
                    path,
                    format!(
                        "line {}: `{line}` is not two node ids of the dataset ({n} nodes)",
                        ln + 1
                    ),
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(DataError::invalid(path, "holds no node pairs"));
    }
    Ok(out)
}

/// Draws a new edge split of `ds` ([`split_edges`]) and writes it into the dataset
/// ([`write_link_split`]); returns the one-line summary the CLI and Python print.
pub fn split_dataset(ds: &crate::Dataset, spec: LinkSplitSpec, seed: u64) -> Result<String> {
    let (split, pairs) = split_edges(&ds.graph, spec, seed)?;
    let info = crate::LinkSplitInfo {
        fractions: [spec.train, spec.val, spec.test],
        seed,
        negatives_per_positive: spec.negatives_per_positive,
        pairs,
        source: None,
    };
    write_link_split(&ds.dir, &ds.manifest, &split, info)?;
    let kept = pairs as usize - split.val_pos.len() - split.test_pos.len();
    Ok(format!(
        "{} undirected edges: {} training, {} validation, {} test positives ({} fixed \
         negatives per positive); message passing keeps {kept}; wrote {}",
        pairs,
        split.train_pos.len(),
        split.val_pos.len(),
        split.test_pos.len(),
        spec.negatives_per_positive,
        LINK_FILES.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use scalegnn_graph::CsrBuilder;

    fn ring(n: u32) -> Csr {
        let src: Vec<i64> = (0..n as i64).collect();
        let dst: Vec<i64> = (0..n as i64).map(|v| (v + 1) % n as i64).collect();
        CsrBuilder::new()
            .undirected(true)
            .dedup(true)
            .num_nodes(n as usize)
            .build(&src, &dst)
            .unwrap()
            .csr
    }

    #[test]
    fn held_out_pairs_leave_the_message_graph_and_negatives_are_non_edges() {
        let g = ring(200);
        let spec = LinkSplitSpec::parse("0.8,0.1,0.1").unwrap();
        let (s, total) = split_edges(&g, spec, 3).unwrap();
        assert_eq!(total, 200);
        assert_eq!((s.val_pos.len(), s.test_pos.len()), (20, 20));
        assert_eq!(s.train_pos.len(), 160);
        assert_eq!((s.val_neg.len(), s.test_neg.len()), (20, 20));
        let keys = pair_keys(&g);
        for q in s.val_neg.iter().chain(&s.test_neg) {
            assert_ne!(q[0], q[1]);
            assert!(keys.binary_search(&pair_key(q[0], q[1])).is_err());
        }
        let mg = s.message_graph(&g).unwrap();
        assert_eq!(mg.num_edges(), 2 * 160);
        let mk = pair_keys(&mg);
        for q in s.val_pos.iter().chain(&s.test_pos) {
            assert!(mk.binary_search(&pair_key(q[0], q[1])).is_err());
        }
        for q in &s.train_pos {
            assert!(mk.binary_search(&pair_key(q[0], q[1])).is_ok());
        }
        // Seeded: the same split again, another with another seed.
        assert_eq!(split_edges(&g, spec, 3).unwrap().0, s);
        assert_ne!(split_edges(&g, spec, 4).unwrap().0, s);
    }

    #[test]
    fn bad_fractions_and_tiny_graphs_are_refused() {
        for bad in [
            "0.9,0.1,0.1",
            "0.8,0.2",
            "0.8,x,0.1",
            "1,0,0",
            "-0.1,0.5,0.5",
        ] {
            assert!(LinkSplitSpec::parse(bad).is_err(), "{bad}");
        }
        let spec = LinkSplitSpec::parse("0.85,0.05,0.10").unwrap();
        let err = split_edges(&ring(4), spec, 0).unwrap_err().to_string();
        assert!(err.contains("too few"), "{err}");
    }
}
