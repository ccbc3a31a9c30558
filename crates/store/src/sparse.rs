//! `SparseStore`: features kept on disk as CSR rows (only the non-zeros), for bag-of-words
//! and one-hot data where a dense `x.npy` would be mostly zeros: `x.csr.shape.npy` (u64
//! `[2]`: nodes, features), `x.csr.indptr.npy` (u64 `[N + 1]`), `x.csr.indices.npy` (u32
//! `[nnz]`, the column of each value) and `x.csr.data.npy` (f32 `[nnz]`). Rows are decoded
//! to dense f32 by `gather`, so every consumer of `FeatureStore` reads them unchanged.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use scalegnn_npy::{open_mmap, Array, NpyWriter};

use crate::gather::{check_ids, par_gather};
use crate::write::{commit_temp, temp_path};
use crate::{Codec, FeatureStore, RowSource, StoreError};

/// The store's files, in the order they are written and listed in the manifest.
pub const SPARSE_FILES: [&str; 4] = [
    "x.csr.shape.npy",
    "x.csr.indptr.npy",
    "x.csr.indices.npy",
    "x.csr.data.npy",
];

/// Rows per parallel task: sparse rows are short, so a task needs many to be worth a hop.
const CHUNK_ROWS: usize = 4096;

/// A feature store over the CSR files of a dataset directory, memory-mapped.
pub struct SparseStore {
    indptr: Array<u64>,
    indices: Array<u32>,
    data: Array<f32>,
    dir: PathBuf,
    num_nodes: usize,
    dim: usize,
    bytes_read: AtomicU64,
}

impl SparseStore {
    /// Maps the CSR files in `dir` and checks they form a valid matrix (monotone row
    /// pointers, columns below the width, finite values), naming the file that does not.
    pub fn open(dir: &Path, codec: Codec) -> Result<SparseStore, StoreError> {
        if codec != Codec::F32 {
            return Err(StoreError::CodecUnsupported {
                kind: "sparse".into(),
                codec: codec.name().into(),
            });
        }
        let path = |i: usize| scalegnn_npy::confined(dir, SPARSE_FILES[i]);
        let corrupt = |i: usize, reason: String| StoreError::Corrupt {
            path: dir.join(SPARSE_FILES[i]),
            reason,
        };
        let shape = open_mmap::<u64>(&path(0)?)?;
        let (num_nodes, dim) = match (shape.shape(), &shape[..]) {
            ([2], &[n, d]) => (
                usize::try_from(n).map_err(|_| corrupt(0, format!("{n} nodes")))?,
                usize::try_from(d).map_err(|_| corrupt(0, format!("{d} features")))?,
            ),
            (s, _) => {
                return Err(StoreError::BadShape {
                    path: dir.join(SPARSE_FILES[0]),
                    expected: "[2] (nodes, features)".into(),
                    found: s.to_vec(),
                })
            }
        };
        if num_nodes > u32::MAX as usize + 1 || dim > u32::MAX as usize {
            return Err(corrupt(0, format!("{num_nodes} x {dim} is too large")));
        }
        let indptr = open_mmap::<u64>(&path(1)?)?;
        let indices = open_mmap::<u32>(&path(2)?)?;
        let data = open_mmap::<f32>(&path(3)?)?;
        let nnz = data.len();
        if indptr.shape() != [num_nodes + 1] {
            return Err(StoreError::BadShape {
                path: dir.join(SPARSE_FILES[1]),
                expected: format!("[{}] (nodes + 1)", num_nodes + 1),
                found: indptr.shape().to_vec(),
            });
        }
        if indices.shape() != [nnz] || data.shape() != [nnz] {
            return Err(corrupt(
                2,
                format!(
                    "{} column indices for {nnz} values in {}",
                    indices.len(),
                    SPARSE_FILES[3]
                ),
            ));
        }
        if indptr[0] != 0 || indptr[num_nodes] != nnz as u64 {
            return Err(corrupt(
                1,
                format!(
                    "row pointers run {}..{}, the values 0..{nnz}",
                    indptr[0], indptr[num_nodes]
                ),
            ));
        }
        if let Some(r) = (0..num_nodes)
            .into_par_iter()
            .find_first(|&r| indptr[r] > indptr[r + 1])
        {
            return Err(corrupt(1, format!("row {r} ends before it starts")));
        }
        if let Some(k) = indices.par_iter().position_first(|&c| c as usize >= dim) {
            return Err(corrupt(
                2,
                format!("value {k} is in column {}, of {dim}", indices[k]),
            ));
        }
        if let Some(k) = data.par_iter().position_first(|v| !v.is_finite()) {
            return Err(corrupt(3, format!("value {k} is {}", data[k])));
        }
        Ok(SparseStore {
            indptr,
            indices,
            data,
            dir: dir.to_path_buf(),
            num_nodes,
            dim,
            bytes_read: AtomicU64::new(0),
        })
    }

    /// Stored values (non-zeros).
    pub fn nnz(&self) -> usize {
        self.data.len()
    }

    /// The CSR arrays: row pointers `[N + 1]`, columns and values `[nnz]`.
    pub fn csr(&self) -> (&[u64], &[u32], &[f32]) {
        (&self.indptr, &self.indices, &self.data)
    }

    /// The dataset directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn gather_chunk(&self, ids: &[u32], out: &mut [f32]) -> Result<(), StoreError> {
        check_ids(ids, self.num_nodes)?;
        let d = self.dim;
        out.fill(0.0);
        let mut stored = 0u64;
        if d > 0 {
            for (o, &id) in out.chunks_exact_mut(d).zip(ids) {
                let (a, b) = (self.indptr[id as usize], self.indptr[id as usize + 1]);
                // Checked at open; `get` keeps a file changed under the map from panicking.
                let cols = self.indices.get(a as usize..b as usize);
                let vals = self.data.get(a as usize..b as usize);
                let (Some(cols), Some(vals)) = (cols, vals) else {
                    return Err(StoreError::Corrupt {
                        path: self.dir.join(SPARSE_FILES[1]),
                        reason: format!("row {id} points outside the values"),
                    });
                };
                for (&c, &v) in cols.iter().zip(vals) {
                    match o.get_mut(c as usize) {
                        Some(slot) => *slot = v,
                        None => {
                            return Err(StoreError::Corrupt {
                                path: self.dir.join(SPARSE_FILES[2]),
                                reason: format!("row {id} has column {c}, of {d}"),
                            })
                        }
                    }
                }
                stored += b - a;
            }
        }
        // Two row pointers plus a column and a value per non-zero.
        let bytes = ids.len() as u64 * 16 + stored * 8;
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }
}

impl FeatureStore for SparseStore {
    fn num_nodes(&self) -> usize {
        self.num_nodes
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn codec(&self) -> Codec {
        Codec::F32
    }
    fn kind(&self) -> &'static str {
        "sparse"
    }
    fn gather(&self, ids: &[u32], out: &mut [f32]) -> Result<(), StoreError> {
        par_gather(ids, self.dim, out, CHUNK_ROWS, |i, o| {
            self.gather_chunk(i, o)
        })
    }
    fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }
}

/// Non-zeros of `rows`, counted in one streaming pass that also refuses non-finite values.
pub(crate) fn count_nonzeros(rows: &dyn RowSource) -> Result<u64, StoreError> {
    let d = rows.dim();
    let mut nnz = 0u64;
    rows.for_each_chunk(&mut |first, chunk| {
        for (k, v) in chunk.iter().enumerate() {
            if !v.is_finite() {
                return Err(StoreError::NonFinite {
                    row: first + k / d,
                    col: k % d,
                    value: *v,
                });
            }
            nnz += u64::from(*v != 0.0);
        }
        Ok(())
    })?;
    Ok(nnz)
}

/// Writes `rows` as the CSR files of a sparse store in `dir`: one pass counts the non-zeros,
/// a second streams them into synced temp files, renamed into place once all are complete.
pub(crate) fn write_sparse(dir: &Path, rows: &dyn RowSource) -> Result<(), StoreError> {
    let (n, d) = (rows.num_nodes(), rows.dim());
    let nnz = count_nonzeros(rows)?;
    let nnz_len = usize::try_from(nnz)
        .map_err(|_| StoreError::BadSource(format!("{nnz} non-zeros do not fit in memory")))?;
    let targets: Vec<PathBuf> = SPARSE_FILES.iter().map(|f| dir.join(f)).collect();
    let temps: Vec<PathBuf> = targets.iter().map(|p| temp_path(p)).collect();
    let res = (|| {
        scalegnn_npy::write_array(&temps[0], &[2], &[n as u64, d as u64])?;
        let mut indptr = NpyWriter::<u64>::create(&temps[1], &[n + 1])?;
        let mut indices = NpyWriter::<u32>::create(&temps[2], &[nnz_len])?;
        let mut data = NpyWriter::<f32>::create(&temps[3], &[nnz_len])?;
        indptr.write(&[0])?;
        let (mut ptr, mut cols, mut vals) = (Vec::new(), Vec::new(), Vec::new());
        let mut seen = 0u64;
        rows.for_each_chunk(&mut |_, chunk| {
            ptr.clear();
            cols.clear();
            vals.clear();
            for row in chunk.chunks_exact(d) {
                for (c, &v) in row.iter().enumerate() {
                    if v != 0.0 {
                        cols.push(c as u32);
                        vals.push(v);
                    }
                }
                ptr.push(seen + cols.len() as u64);
            }
            seen += cols.len() as u64;
            if seen > nnz {
                return Err(StoreError::BadSource(
                    "the rows changed between the two passes".into(),
                ));
            }
            indptr.write(&ptr)?;
            indices.write(&cols)?;
            data.write(&vals)?;
            Ok(())
        })?;
        if seen != nnz {
            return Err(StoreError::BadSource(
                "the rows changed between the two passes".into(),
            ));
        }
        indptr.finish()?;
        indices.finish()?;
        data.finish()?;
        for (t, p) in temps.iter().zip(&targets) {
            commit_temp(t, p)?;
        }
        Ok(())
    })();
    if res.is_err() {
        for t in &temps {
            let _ = std::fs::remove_file(t);
        }
    }
    res
}
