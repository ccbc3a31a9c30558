//! `RowSource`: f32 feature rows streamed in chunks to a store writer, from an existing
//! `x.npy` (memory-mapped, so never on the heap), a slice, or a user iterator.

use std::path::{Path, PathBuf};

use scalegnn_npy::{open_mmap, Array};

use crate::StoreError;

/// Rows per chunk handed out by the built-in sources (about 6 MB at 100 features).
const CHUNK_ROWS: usize = 16 * 1024;

/// The callback a [`RowSource`] feeds: `(first_row, rows)`, rows row-major and whole.
pub type ChunkFn<'a> = dyn FnMut(usize, &[f32]) -> Result<(), StoreError> + 'a;

/// A feature matrix `[num_nodes, dim]` that can be streamed in row order, more than once
/// (the u8 codec reads it twice: min/max, then encode).
pub trait RowSource {
    /// Number of rows.
    fn num_nodes(&self) -> usize;
    /// Values per row.
    fn dim(&self) -> usize;
    /// Calls `f(first_row, rows)` on consecutive chunks of whole rows covering every row once.
    fn for_each_chunk(&self, f: &mut ChunkFn<'_>) -> Result<(), StoreError>;
    /// The `.npy` file the rows come from, if any (lets a writer skip copying a file onto itself).
    fn npy_path(&self) -> Option<&Path> {
        None
    }
}

/// Rows of an f32 `[n, dim]` `.npy` file, read through a memory map in chunks.
pub struct NpyRows {
    array: Array<f32>,
    path: PathBuf,
    num_nodes: usize,
    dim: usize,
}

impl NpyRows {
    /// Maps `path` (an f32 `[n, dim]` array).
    pub fn open(path: &Path) -> Result<NpyRows, StoreError> {
        let array = open_mmap::<f32>(path)?;
        let (num_nodes, dim) = match *array.shape() {
            [n, d] => (n, d),
            _ => {
                return Err(StoreError::BadShape {
                    path: path.to_path_buf(),
                    expected: "a 2-D f32 array [num_nodes, num_features]".into(),
                    found: array.shape().to_vec(),
                })
            }
        };
        Ok(NpyRows {
            array,
            path: path.to_path_buf(),
            num_nodes,
            dim,
        })
    }
}

impl RowSource for NpyRows {
    fn num_nodes(&self) -> usize {
        self.num_nodes
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn for_each_chunk(&self, f: &mut ChunkFn<'_>) -> Result<(), StoreError> {
        slice_chunks(&self.array, self.dim, f)
    }
    fn npy_path(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

/// Rows of an open feature store, gathered in chunks: the source when a dataset's features
/// live only in a store (a sparse dataset has no dense `x.npy`).
pub struct StoreRows<'a> {
    store: &'a dyn crate::FeatureStore,
}

impl<'a> StoreRows<'a> {
    /// Streams every row of `store`, in node order.
    pub fn new(store: &'a dyn crate::FeatureStore) -> StoreRows<'a> {
        StoreRows { store }
    }
}

impl RowSource for StoreRows<'_> {
    fn num_nodes(&self) -> usize {
        self.store.num_nodes()
    }
    fn dim(&self) -> usize {
        self.store.dim()
    }
    fn for_each_chunk(&self, f: &mut ChunkFn<'_>) -> Result<(), StoreError> {
        let (n, d) = (self.store.num_nodes(), self.store.dim());
        let mut buf = Vec::new();
        let mut ids = Vec::with_capacity(CHUNK_ROWS);
        for first in (0..n).step_by(CHUNK_ROWS) {
            let end = (first + CHUNK_ROWS).min(n);
            ids.clear();
            ids.extend(first as u32..=(end - 1) as u32);
            buf.resize(ids.len() * d, 0.0);
            self.store.gather(&ids, &mut buf)?;
            f(first, &buf)?;
        }
        Ok(())
    }
}

/// Rows already in memory, row-major.
pub struct SliceRows<'a> {
    data: &'a [f32],
    dim: usize,
}

impl<'a> SliceRows<'a> {
    /// Wraps `data` as rows of `dim` values; fails unless `data` holds whole rows.
    pub fn new(data: &'a [f32], dim: usize) -> Result<SliceRows<'a>, StoreError> {
        let whole = if dim == 0 {
            data.is_empty()
        } else {
            data.len().is_multiple_of(dim)
        };
        if !whole {
            return Err(StoreError::BadSource(format!(
                "{} values do not form whole rows of {dim}",
                data.len()
            )));
        }
        Ok(SliceRows { data, dim })
    }
}

impl RowSource for SliceRows<'_> {
    fn num_nodes(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn for_each_chunk(&self, f: &mut ChunkFn<'_>) -> Result<(), StoreError> {
        slice_chunks(self.data, self.dim, f)
    }
}

/// Rows produced by an iterator of chunks; `make` is called once per pass, so it must yield
/// the same rows each time. Each chunk holds whole rows; all chunks together `num_nodes` rows.
pub struct IterRows<F> {
    num_nodes: usize,
    dim: usize,
    make: F,
}

impl<F, I> IterRows<F>
where
    F: Fn() -> I,
    I: IntoIterator<Item = Result<Vec<f32>, StoreError>>,
{
    /// A source of `num_nodes` rows of `dim` values produced by `make()`.
    pub fn new(num_nodes: usize, dim: usize, make: F) -> IterRows<F> {
        IterRows {
            num_nodes,
            dim,
            make,
        }
    }
}

impl<F, I> RowSource for IterRows<F>
where
    F: Fn() -> I,
    I: IntoIterator<Item = Result<Vec<f32>, StoreError>>,
{
    fn num_nodes(&self) -> usize {
        self.num_nodes
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn for_each_chunk(&self, f: &mut ChunkFn<'_>) -> Result<(), StoreError> {
        let mut row = 0usize;
        for chunk in (self.make)() {
            let chunk = chunk?;
            let rows = if self.dim == 0 {
                0
            } else if chunk.len().is_multiple_of(self.dim) {
                chunk.len() / self.dim
            } else {
                return Err(StoreError::BadSource(format!(
                    "chunk starting at row {row} holds {} values, not whole rows of {}",
                    chunk.len(),
                    self.dim
                )));
            };
            if row + rows > self.num_nodes {
                return Err(StoreError::BadSource(format!(
                    "iterator yields more than the {} rows declared",
                    self.num_nodes
                )));
            }
            f(row, &chunk)?;
            row += rows;
        }
        if row != self.num_nodes && self.dim != 0 {
            return Err(StoreError::BadSource(format!(
                "iterator yields {row} rows, {} declared",
                self.num_nodes
            )));
        }
        Ok(())
    }
}

/// Hands out `data` in chunks of `CHUNK_ROWS` rows.
fn slice_chunks(data: &[f32], dim: usize, f: &mut ChunkFn<'_>) -> Result<(), StoreError> {
    if dim == 0 {
        return Ok(());
    }
    for (k, chunk) in data.chunks(CHUNK_ROWS * dim).enumerate() {
        f(k * CHUNK_ROWS, chunk)?;
    }
    Ok(())
}
