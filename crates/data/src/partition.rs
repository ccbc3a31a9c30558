//! A dataset's node partitions: `partition-P.npy` (int32, one part per node) written atomically
//! beside the graph and recorded in the manifest, for ClusterGCN batches and sharding.

use std::path::Path;
use std::time::Instant;

use scalegnn_graph::{Partition, PartitionMethod};
use serde::{Deserialize, Serialize};

use crate::{xxh3_file, DataError, Dataset, FileEntry, Manifest};

type Result<T> = std::result::Result<T, DataError>;

/// One partition as the manifest records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionInfo {
    /// File in the dataset directory.
    pub file: String,
    pub parts: usize,
    /// `metis` or `random`.
    pub method: String,
    pub seed: u64,
    /// Directed CSR edges (self loops excluded) between parts.
    pub cut_edges: u64,
    pub cut_fraction: f64,
    /// Largest part over the mean part size.
    pub balance: f64,
}

/// File name of the partition into `parts` parts.
pub fn file_name(parts: usize) -> String {
    format!("partition-{parts}.npy")
}

/// Partitions `ds` into `parts` parts with `method`, writes the part array and the manifest
/// entry; the entry and the seconds the partitioning took.
pub fn partition_dataset(
    ds: &Dataset,
    parts: usize,
    method: PartitionMethod,
    seed: u64,
) -> Result<(PartitionInfo, f64)> {
    let t = Instant::now();
    let p = Partition::compute(&ds.graph, parts, method, seed)?;
    let secs = t.elapsed().as_secs_f64();
    let q = p.quality(&ds.graph);
    let info = PartitionInfo {
        file: file_name(parts),
        parts,
        method: method.to_string(),
        seed,
        cut_edges: q.cut_edges,
        cut_fraction: q.cut_fraction,
        balance: q.balance,
    };
    write_partition(&ds.dir, &ds.manifest, &p, &info)?;
    Ok((info, secs))
}

/// Writes `p` as `info.file` (temp file, fsync, rename) and records it in the manifest.
pub fn write_partition(
    dir: &Path,
    manifest: &Manifest,
    p: &Partition,
    info: &PartitionInfo,
) -> Result<Manifest> {
    let path = dir.join(&info.file);
    let data: Vec<i32> = p.parts.iter().map(|&v| v as i32).collect();
    scalegnn_npy::write_array_atomic(&path, &[data.len()], &data)?;
    let bytes = std::fs::metadata(&path)
        .map_err(|e| DataError::io(&path, e))?
        .len();
    let mut m = manifest.clone();
    m.files.insert(
        info.file.clone(),
        FileEntry {
            bytes,
            xxh3: xxh3_file(&path)?,
        },
    );
    m.partitions.insert(info.parts.to_string(), info.clone());
    let text = serde_json::to_string_pretty(&m).map_err(|e| DataError::Manifest {
        path: dir.join("manifest.json"),
        reason: e.to_string(),
    })? + "\n";
    scalegnn_npy::write_file_atomic(&dir.join("manifest.json"), text.as_bytes())?;
    Ok(m)
}
/// The partition of `ds` into `parts` parts, read back (checked against the node count and
/// the part count); None when the dataset has none.
pub fn load_partition(ds: &Dataset, parts: usize) -> Result<Option<Partition>> {
    let Some(info) = ds.manifest.partitions.get(&parts.to_string()) else {
        return Ok(None);
    };
    // The manifest names the file: it must stay inside the directory and be checksummed.
    scalegnn_npy::confined(&ds.dir, &info.file)?;
    let path = ds.dir.join(&info.file);
    if !ds.manifest.files.contains_key(&info.file) {
        return Err(DataError::invalid(
            &path,
            "is not listed with a checksum in manifest.json (re-run `scalegnn partition`)",
        ));
    }
    let (v, shape) = scalegnn_npy::read_any_as_i64(&path)?;
    let n = ds.graph.num_nodes();
    if shape != [n] {
        return Err(DataError::invalid(
            &path,
            format!("shape {shape:?}; expected [{n}] (one part per node)"),
        ));
    }
    if let Some((i, bad)) = v
        .iter()
        .enumerate()
        .find(|(_, &x)| x < 0 || x as usize >= parts)
    {
        return Err(DataError::invalid(
            &path,
            format!("node {i} is in part {bad}, outside 0..{parts}"),
        ));
    }
    Ok(Some(Partition {
        parts: v.into_iter().map(|x| x as u32).collect(),
        num_parts: parts,
    }))
}
