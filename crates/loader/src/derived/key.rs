//! What a derived table depends on, and the key hashed from it: checksums of the dataset's
//! topology and feature files (from its manifest, or hashed from the files' contents when
//! the manifest has none or is out of date), the store kind and codec the features are read
//! through, the graph's counts, the table's parameters and the algorithm's version.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use rayon::prelude::*;
use scalegnn_graph::Csr;
use scalegnn_store::{store_files, FeatureStore};
use serde::{Deserialize, Serialize};

use super::scratch::io;
use super::DerivedError;

/// The files of a dataset's topology, as the CSR reads them.
pub(crate) const TOPOLOGY_FILES: [&str; 2] = ["indptr.npy", "indices.npy"];

/// Size and xxh3-64 checksum (16 hex digits, as in `manifest.json`) of one input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    /// Length in bytes.
    pub bytes: u64,
    /// xxh3-64 of the whole file.
    pub xxh3: String,
}

/// The features a table was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureInputs {
    /// Store kind the rows were read through (`mmap`, `sqlite`, `postgres`).
    pub kind: String,
    /// Codec they were decoded from (`f32`, `f16`, `u8`): f16 and u8 rows differ from f32.
    pub codec: String,
    /// Rows and columns.
    pub num_nodes: usize,
    /// Columns per row.
    pub dim: usize,
    /// The store's files in the dataset directory. A postgres store's file only points at
    /// its table: rows changed on the server are not seen here.
    pub files: BTreeMap<String, FileSum>,
}

/// Everything a table depends on; its JSON is hashed into the table's key and recorded in
/// the table's `derived.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInputs {
    /// The table's name (`sagmm-gate`).
    pub table: String,
    /// Version of the algorithm and layout: a new one never reuses an old table.
    pub version: u32,
    /// `indptr.npy` and `indices.npy`, and the files of a graph derived from them (a link
    /// split's held-out edges).
    pub topology: BTreeMap<String, FileSum>,
    /// Nodes and directed edges of the CSR the table was computed on.
    pub graph: (usize, usize),
    /// The features read.
    pub features: FeatureInputs,
    /// The table's own parameters (e.g. `{"k": 8, "steps": 72, "seed": 0}`).
    pub params: serde_json::Value,
}

impl KeyInputs {
    /// The key: xxh3-64 of the inputs' JSON (field order fixed, maps sorted), 16 hex digits.
    pub fn key(&self) -> String {
        // Serialising plain structs, strings, integers and BTreeMaps cannot fail.
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes))
    }
}

/// Checksums of `names` in `dir`: the manifest's when it lists the file at its current size,
/// else the file's contents hashed here. Also says whether any file had to be hashed.
fn file_sums(
    dir: &Path,
    names: &[&str],
    manifest: &BTreeMap<String, scalegnn_data::FileEntry>,
) -> Result<(BTreeMap<String, FileSum>, bool), DerivedError> {
    let sums: Vec<(String, FileSum, bool)> = names
        .par_iter()
        .map(|&name| {
            let path = scalegnn_npy::confined(dir, name)?;
            let bytes = std::fs::metadata(&path).map_err(|e| io(&path, e))?.len();
            match manifest.get(name) {
                // A size that disagrees means the manifest is stale: trust the file.
                Some(e) if e.bytes == bytes => Ok((
                    name.to_string(),
                    FileSum {
                        bytes,
                        xxh3: e.xxh3.clone(),
                    },
                    false,
                )),
                _ => Ok((
                    name.to_string(),
                    FileSum {
                        bytes,
                        xxh3: hash_contents(&path)?,
                    },
                    true,
                )),
            }
        })
        .collect::<Result<_, DerivedError>>()?;
    let hashed = sums.iter().any(|s| s.2);
    Ok((sums.into_iter().map(|(n, s, _)| (n, s)).collect(), hashed))
}

/// xxh3-64 of a file's bytes, read in 1 MiB pieces (not mapped: a map of a 1 GB feature file
/// would count in the process's resident memory while it is hashed).
pub(crate) fn hash_contents(path: &Path) -> Result<String, DerivedError> {
    let mut f = scalegnn_npy::open_regular(path)?;
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let got = f.read(&mut buf).map_err(|e| io(path, e))?;
        if got == 0 {
            break;
        }
        h.update(&buf[..got]);
    }
    Ok(format!("{:016x}", h.digest()))
}

/// The dataset-side inputs of a table over `graph` and `store` read from `dataset_dir`, and
/// where their checksums came from (`manifest` or `contents`).
pub(crate) fn dataset_inputs(
    dataset_dir: &Path,
    graph: &Csr,
    graph_files: &[&str],
    store: &dyn FeatureStore,
    table: &str,
    version: u32,
    params: serde_json::Value,
) -> Result<(KeyInputs, &'static str), DerivedError> {
    // A make_synth.py directory (meta.json) has no checksums: every file is hashed.
    let listed = scalegnn_data::Manifest::load(dataset_dir)?.files;
    let topo_names: Vec<&str> = TOPOLOGY_FILES.iter().chain(graph_files).copied().collect();
    let (topology, hashed_topo) = file_sums(dataset_dir, &topo_names, &listed)?;
    let names = store_files(store.kind(), store.codec())?;
    let (files, hashed_feat) = file_sums(dataset_dir, &names, &listed)?;
    let from = if hashed_topo || hashed_feat {
        "contents"
    } else {
        "manifest"
    };
    Ok((
        KeyInputs {
            table: table.to_string(),
            version,
            topology,
            graph: (graph.num_nodes(), graph.num_edges()),
            features: FeatureInputs {
                kind: store.kind().to_string(),
                codec: store.codec().name().to_string(),
                num_nodes: store.num_nodes(),
                dim: store.dim(),
                files,
            },
            params,
        },
        from,
    ))
}
