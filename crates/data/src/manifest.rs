//! `manifest.json`: what a dataset directory holds, with sizes and checksums of its files.
//! Also reads the `meta.json` of `make_synth.py` directories (same keys, no checksums).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{DataError, Result};

/// Version tag written into every manifest.
pub const FORMAT_VERSION: &str = "scalegnn-dataset/1";

/// Every file name of the dataset contract that scalegnn reads: arrays, feature stores (their
/// names in the store crate must be among these) and split files. Under a checksummed
/// manifest each one present must be listed.
pub const KNOWN_FILES: &[&str] = &[
    "indptr.npy",
    "indices.npy",
    "x.npy",
    "y.npy",
    "train_idx.npy",
    "val_idx.npy",
    "test_idx.npy",
    "graph_ptr.npy",
    "graph_y.npy",
    "edge_attr.npy",
    "x.f16.npy",
    "x.u8.npy",
    "x.scale.npy",
    "x.sqlite",
    "x.postgres.json",
    "x.csr.shape.npy",
    "x.csr.indptr.npy",
    "x.csr.indices.npy",
    "x.csr.data.npy",
    "node_ids.npy",
    "node_ids.csv",
    "link_train_pos.npy",
    "link_val_pos.npy",
    "link_val_neg.npy",
    "link_test_pos.npy",
    "link_test_neg.npy",
];

/// Largest manifest read (a real one is a few KiB): a bigger file is not a manifest.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// The learning task the labels support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    NodeClassification,
    NodeRegression,
    GraphClassification,
    GraphRegression,
    /// Topology (and maybe features) only.
    None,
}

/// Where the features live and how they are encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureStoreInfo {
    /// `mmap` (the `x.npy` beside the manifest).
    pub kind: String,
    /// `f32`.
    pub codec: String,
}

impl Default for FeatureStoreInfo {
    fn default() -> Self {
        FeatureStoreInfo {
            kind: "mmap".into(),
            codec: "f32".into(),
        }
    }
}

/// Size and checksum of one file of the dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub bytes: u64,
    pub xxh3: String,
}

/// The manifest of a dataset directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub name: String,
    pub task: Task,
    pub num_nodes: u64,
    /// Directed edges, i.e. entries of `indices.npy`.
    pub num_edges: u64,
    pub num_features: u64,
    pub num_classes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_graphs: Option<u64>,
    #[serde(default)]
    pub feature_store: FeatureStoreInfo,
    /// Every file of the directory but the manifest, with size and checksum.
    #[serde(default)]
    pub files: BTreeMap<String, FileEntry>,
    /// Where the data came from and how it was transformed (free-form).
    #[serde(default)]
    pub source: serde_json::Value,
    /// What `ingest` counted and changed on the way in (absent for generated datasets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest: Option<IngestStats>,
    /// The edge split for link prediction (`link_*.npy`), when one was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_split: Option<crate::link::LinkSplitInfo>,
    /// Node partitions (`partition-P.npy`) by part count, as `scalegnn partition` made them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partitions: BTreeMap<String, crate::partition::PartitionInfo>,
}

/// What `ingest` counted, removed or could not use: nothing the user gave changes or goes
/// without a count here and a line on the terminal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestStats {
    /// Edge lines read from the input.
    pub input_edges: u64,
    /// Input edges from a node to itself (kept unless `self_loops_removed` says otherwise).
    pub self_loops: u64,
    pub self_loops_removed: u64,
    /// Edges dropped as repeats of an earlier (src, dst) pair, reverses added included.
    pub duplicates_removed: u64,
    /// In-edges dropped by the degree cap.
    pub capped_edges: u64,
    /// Nodes with no edge in or out.
    pub isolated_nodes: u64,
    /// Distinct ids mapped to 0..N by `--relabel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relabelled_ids: Option<u64>,
    /// Nodes (or graphs) without a label (`-1` in `y.npy`).
    #[serde(default)]
    pub unlabelled: u64,
    /// Nodes without a row in a feature table keyed by id (their features are zero).
    #[serde(default)]
    pub featureless_nodes: u64,
    /// Non-zero feature values (with the shape, their density, which decides the default
    /// store and the `--store sparse` hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_nonzeros: Option<u64>,
    /// The input gave only the non-zeros (a CSR triple, `.npz` `attr_*`, feature pairs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sparse_input: bool,
    /// Everything the input held that the dataset does not, or that looked wrong.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Reads a regular file of at most [`MAX_MANIFEST_BYTES`] as text.
fn read_small(path: &Path) -> Result<String> {
    use std::io::Read;
    let f = scalegnn_npy::open_regular(path)?;
    let mut text = String::new();
    f.take(MAX_MANIFEST_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| DataError::io(path, e))?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(DataError::Manifest {
            path: path.to_path_buf(),
            reason: format!(
                "larger than {} MiB: not a manifest",
                MAX_MANIFEST_BYTES >> 20
            ),
        });
    }
    Ok(text)
}

impl Manifest {
    /// A manifest with counts set and no files yet.
    pub fn new(name: &str, task: Task) -> Manifest {
        Manifest {
            format: FORMAT_VERSION.into(),
            name: name.into(),
            task,
            num_nodes: 0,
            num_edges: 0,
            num_features: 0,
            num_classes: 0,
            num_graphs: None,
            feature_store: FeatureStoreInfo::default(),
            files: BTreeMap::new(),
            source: serde_json::Value::Null,
            ingest: None,
            link_split: None,
            partitions: BTreeMap::new(),
        }
    }

    /// Loads `dir/manifest.json`, or else `dir/meta.json` as written by `make_synth.py`.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let mpath = dir.join("manifest.json");
        if mpath.exists() {
            let text = read_small(&mpath)?;
            let m: Manifest = serde_json::from_str(&text).map_err(|e| DataError::Manifest {
                path: mpath.clone(),
                reason: e.to_string(),
            })?;
            if m.format != FORMAT_VERSION {
                return Err(DataError::Manifest {
                    path: mpath,
                    reason: format!("unknown format {:?} (expected {FORMAT_VERSION})", m.format),
                });
            }
            return Ok(m);
        }
        let meta = dir.join("meta.json");
        if !meta.exists() {
            if !dir.is_dir() {
                return Err(DataError::invalid(dir, "no such dataset directory"));
            }
            return Err(DataError::invalid(
                dir,
                "not a dataset directory: no manifest.json (or meta.json); create one with `scalegnn ingest` or `scalegnn synth`",
            ));
        }
        let text = read_small(&meta)?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| DataError::Manifest {
                path: meta.clone(),
                reason: e.to_string(),
            })?;
        let key = |k: &str| -> Result<u64> {
            v.get(k)
                .and_then(|x| x.as_u64())
                .ok_or_else(|| DataError::Manifest {
                    path: meta.clone(),
                    reason: format!("missing key `{k}` (a non-negative integer)"),
                })
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "dataset".into());
        let mut m = Manifest::new(&name, Task::NodeClassification);
        m.num_nodes = key("num_nodes")?;
        m.num_edges = key("num_edges")?;
        m.num_features = key("num_features")?;
        m.num_classes = key("num_classes")?;
        m.source = v;
        Ok(m)
    }

    /// Writes the manifest as pretty JSON to `path` and fsyncs it.
    pub fn write(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let text = serde_json::to_string_pretty(self).map_err(|e| DataError::Manifest {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut f = std::fs::File::create(path).map_err(|e| DataError::io(path, e))?;
        f.write_all(text.as_bytes())
            .map_err(|e| DataError::io(path, e))?;
        f.write_all(b"\n").map_err(|e| DataError::io(path, e))?;
        f.sync_all().map_err(|e| DataError::io(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::new("t", Task::NodeClassification);
        m.num_nodes = 5;
        m.write(&dir.path().join("manifest.json")).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), m);
        let text = std::fs::read_to_string(dir.path().join("manifest.json")).unwrap();
        let broken = text.replace("\"num_edges\"", "\"num_edgez\"");
        std::fs::write(dir.path().join("manifest.json"), broken).unwrap();
        let e = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("manifest.json") && e.contains("num_edges"),
            "{e}"
        );
    }

    #[test]
    fn reads_make_synth_meta() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("meta.json"),
            r#"{"num_nodes": 10, "num_edges": 20, "num_features": 3, "num_classes": 2, "seed": 0}"#,
        )
        .unwrap();
        let m = Manifest::load(dir.path()).unwrap();
        assert_eq!((m.num_nodes, m.num_edges, m.num_classes), (10, 20, 2));
        assert!(m.files.is_empty());
        std::fs::write(dir.path().join("meta.json"), r#"{"num_nodes": 10}"#).unwrap();
        let e = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("meta.json") && e.contains("num_edges"), "{e}");
    }
}
