//! `Dataset`: an opened dataset directory — memory-mapped topology, features, labels and
//! splits, checked against the manifest (checksums verified unless told not to).

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use scalegnn_graph::{Csr, DegreeStats, Validation};
use scalegnn_npy::{open_mmap, read_header, Array, DType};
use serde::Serialize;

use crate::manifest::KNOWN_FILES;
use crate::{xxh3_file, DataError, Manifest, Result, Task};

/// How to open a dataset.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// Verify file checksums and scan every array for range errors (on by default).
    pub verify: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { verify: true }
    }
}

/// Labels as stored: class ids or real-valued targets.
#[derive(Debug)]
pub enum Labels {
    Classes(Array<i64>),
    Targets(Array<f32>),
}

/// An opened dataset directory.
#[derive(Debug)]
pub struct Dataset {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub graph: Csr,
    /// Node features `[N, F]`, memory-mapped.
    pub x: Option<Array<f32>>,
    /// Node labels.
    pub y: Option<Labels>,
    pub train_idx: Option<Array<i64>>,
    pub val_idx: Option<Array<i64>>,
    pub test_idx: Option<Array<i64>>,
    /// Graph-level datasets: node range per graph and graph labels.
    pub graph_ptr: Option<Array<i64>>,
    pub graph_y: Option<Labels>,
    /// True when file checksums were checked on open.
    pub verified: bool,
}

/// One file of the dataset as `info` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct FileInfo {
    pub name: String,
    pub bytes: u64,
}

/// Items in the first split of an index file: all of `[len]`, row 0 of `[S, len]` without its
/// -1 padding.
fn first_split_len(a: &Array<i64>) -> usize {
    match a.shape() {
        // `get`: a [0, w] file has no row 0.
        [_, w] => a
            .get(..*w)
            .map_or(0, |r| r.iter().filter(|&&i| i >= 0).count()),
        _ => a.len(),
    }
}

/// Summary printed by `scalegnn info`.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetInfo {
    pub name: String,
    pub path: String,
    pub task: Task,
    pub nodes: u64,
    pub edges: u64,
    pub features: u64,
    pub classes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graphs: Option<u64>,
    /// Items of each part in split 0 (the first official split).
    pub train: Option<usize>,
    pub val: Option<usize>,
    pub test: Option<usize>,
    /// Official splits the dataset holds (index files `[S, len]`).
    pub splits: usize,
    pub degree_min: u32,
    pub degree_median: f64,
    pub degree_p99: u32,
    pub degree_max: u32,
    pub degree_mean: f64,
    pub isolated_nodes: usize,
    pub symmetric: Option<bool>,
    pub feature_store: String,
    pub checksums_verified: bool,
    /// The edge split for link prediction, when the dataset has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_split: Option<crate::LinkSplitInfo>,
    pub files: Vec<FileInfo>,
    pub total_bytes: u64,
}

fn opt_map<T: scalegnn_npy::Element>(p: &Path) -> Result<Option<Array<T>>> {
    if p.exists() {
        Ok(Some(open_mmap::<T>(p)?))
    } else {
        Ok(None)
    }
}

fn opt_labels(p: &Path) -> Result<Option<Labels>> {
    if !p.exists() {
        return Ok(None);
    }
    Ok(Some(match read_header(p)?.dtype {
        DType::F32 => Labels::Targets(open_mmap::<f32>(p)?),
        _ => Labels::Classes(open_mmap::<i64>(p)?),
    }))
}

impl Dataset {
    /// Opens `dir`, checking shapes against the manifest (and checksums and ranges if `verify`).
    pub fn open(dir: &Path, opts: OpenOptions) -> Result<Dataset> {
        let manifest = Manifest::load(dir)?;
        let mut verified = false;
        // Every file this dataset may read must stay inside the directory, listed or not.
        for name in manifest
            .files
            .keys()
            .map(String::as_str)
            .chain(KNOWN_FILES.iter().copied())
        {
            scalegnn_npy::confined(dir, name)?;
        }
        if opts.verify && !manifest.files.is_empty() {
            // All or nothing: a file scalegnn reads that the manifest does not list was added
            // or replaced after the dataset was written, and would go unchecked.
            if let Some(extra) = KNOWN_FILES
                .iter()
                .find(|&&f| !manifest.files.contains_key(f) && dir.join(f).exists())
            {
                return Err(DataError::invalid(
                    dir.join(extra),
                    "is not listed in manifest.json, whose checksums cover every other file: \
                     it was added after the dataset was written (remove it, or re-ingest)",
                ));
            }
            manifest
                .files
                .par_iter()
                .map(|(name, entry)| {
                    let p = dir.join(name);
                    let len = scalegnn_npy::open_regular(&p)?
                        .metadata()
                        .map_err(|e| DataError::io(&p, e))?
                        .len();
                    if len != entry.bytes {
                        return Err(DataError::invalid(
                            &p,
                            format!(
                                "size {len} bytes, manifest says {} (truncated or replaced)",
                                entry.bytes
                            ),
                        ));
                    }
                    let got = xxh3_file(&p)?;
                    if got != entry.xxh3 {
                        return Err(DataError::Checksum {
                            path: p,
                            expected: entry.xxh3.clone(),
                            actual: got,
                        });
                    }
                    Ok(())
                })
                .collect::<Result<()>>()?;
            verified = true;
        }
        // Checksums say the files are the ones written, not that what was written is sound (a
        // crafted dataset carries matching checksums): ranges are scanned whenever verifying.
        let validation = if opts.verify {
            Validation::Full
        } else {
            Validation::Shape
        };
        let graph = Csr::open(dir, validation)?;
        let n = graph.num_nodes();
        let mpath = if dir.join("manifest.json").exists() {
            dir.join("manifest.json")
        } else {
            dir.join("meta.json")
        };
        if manifest.num_nodes as usize != n || manifest.num_edges as usize != graph.num_edges() {
            return Err(DataError::invalid(
                &mpath,
                format!(
                    "says {} nodes / {} edges but indptr.npy/indices.npy hold {} / {}",
                    manifest.num_nodes,
                    manifest.num_edges,
                    n,
                    graph.num_edges()
                ),
            ));
        }
        let xp = dir.join("x.npy");
        let x = opt_map::<f32>(&xp)?;
        if let Some(x) = &x {
            let want = [n, manifest.num_features as usize];
            if x.shape() != want {
                return Err(DataError::invalid(
                    &xp,
                    format!("shape {:?}, manifest says {want:?}", x.shape()),
                ));
            }
        }
        let yp = dir.join("y.npy");
        let y = opt_labels(&yp)?;
        let graph_ptr = opt_map::<i64>(&dir.join("graph_ptr.npy"))?;
        let graph_y = opt_labels(&dir.join("graph_y.npy"))?;
        let items = match &graph_ptr {
            Some(gp) => gp.len().saturating_sub(1),
            None => n,
        };
        if let Some(Labels::Classes(c)) = &y {
            if c.rows() != n {
                return Err(DataError::invalid(
                    &yp,
                    format!("{} labels for {n} nodes", c.rows()),
                ));
            }
            if opts.verify && graph_ptr.is_none() {
                let k = manifest.num_classes as i64;
                // -1 marks an unlabelled node (kept out of every split).
                if let Some(bad) = c.par_iter().find_any(|&&v| v < -1 || v >= k) {
                    return Err(DataError::invalid(
                        &yp,
                        format!("label {bad} is outside 0..{k} (or -1: unlabelled)"),
                    ));
                }
            }
        }
        let mut splits = Vec::new();
        for part in ["train", "val", "test"] {
            let p = dir.join(format!("{part}_idx.npy"));
            let s = opt_map::<i64>(&p)?;
            if let (Some(s), true) = (&s, opts.verify) {
                // A 2-D file holds one official split per row, the shorter rows padded with -1.
                let pad = if s.shape().len() == 2 { -1 } else { 0 };
                if let Some(bad) = s.par_iter().find_any(|&&v| v < pad || v >= items as i64) {
                    return Err(DataError::invalid(
                        &p,
                        format!("index {bad} is outside 0..{items}"),
                    ));
                }
            }
            splits.push(s);
        }
        let test_idx = splits.pop().flatten();
        let val_idx = splits.pop().flatten();
        let train_idx = splits.pop().flatten();
        Ok(Dataset {
            dir: dir.to_path_buf(),
            manifest,
            graph,
            x,
            y,
            train_idx,
            val_idx,
            test_idx,
            graph_ptr,
            graph_y,
            verified,
        })
    }

    /// Counts, split sizes, degree statistics and files, for `scalegnn info`.
    pub fn info(&self) -> Result<DatasetInfo> {
        let stats = DegreeStats::of(&self.graph);
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| DataError::io(&self.dir, e))? {
            let entry = entry.map_err(|e| DataError::io(&self.dir, e))?;
            let md = entry
                .metadata()
                .map_err(|e| DataError::io(entry.path(), e))?;
            if md.is_file() {
                files.push(FileInfo {
                    name: entry.file_name().to_string_lossy().into_owned(),
                    bytes: md.len(),
                });
            }
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let m = &self.manifest;
        // The symmetry check walks every edge twice; skip it for graphs over 10M edges.
        let symmetric = (self.graph.num_edges() <= 10_000_000).then(|| self.graph.is_symmetric());
        Ok(DatasetInfo {
            name: m.name.clone(),
            path: self.dir.display().to_string(),
            task: m.task,
            nodes: m.num_nodes,
            edges: m.num_edges,
            features: m.num_features,
            classes: m.num_classes,
            graphs: m.num_graphs,
            train: self.train_idx.as_ref().map(first_split_len),
            val: self.val_idx.as_ref().map(first_split_len),
            test: self.test_idx.as_ref().map(first_split_len),
            splits: [&self.train_idx, &self.val_idx, &self.test_idx]
                .iter()
                .filter_map(|a| a.as_ref())
                .map(|a| {
                    if a.shape().len() == 2 {
                        a.shape()[0]
                    } else {
                        1
                    }
                })
                .max()
                .unwrap_or(0),
            degree_min: stats.min,
            degree_median: stats.median,
            degree_p99: stats.p99,
            degree_max: stats.max,
            degree_mean: stats.mean,
            isolated_nodes: stats.isolated,
            symmetric,
            feature_store: format!("{} ({})", m.feature_store.kind, m.feature_store.codec),
            checksums_verified: self.verified,
            link_split: self.manifest.link_split.clone(),
            total_bytes: files.iter().map(|f| f.bytes).sum(),
            files,
        })
    }
}
