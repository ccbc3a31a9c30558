//! `MmapStore`: features read straight from the dataset's memory-mapped `.npy` files
//! (`x.npy`, `x.f16.npy`, or `x.u8.npy` + `x.scale.npy`); pages cost page cache, not heap.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use half::f16;
use half::slice::HalfFloatSliceExt;
use scalegnn_npy::{open_mmap, Array};

use crate::codec::{decode_f16_bytes, decode_f32_bytes};
use crate::direct::DirectFile;
use crate::gather::{check_ids, check_out_len, par_gather};
use crate::{Codec, FeatureStore, StoreError, U8Scale};

/// File name of the u8 codec's per-column scale (f32 `[2, dim]`: min row, then step row).
pub const SCALE_FILE: &str = "x.scale.npy";

/// Rows per parallel task: about 0.8 MB of f32 output at 100 features, enough to amortise
/// a rayon task, small enough that 400k-row batches spread over every core.
const CHUNK_ROWS: usize = 2048;

/// The `.npy` file holding the rows of `codec` in an mmap store.
pub fn mmap_file(codec: Codec) -> &'static str {
    match codec {
        Codec::F32 => "x.npy",
        Codec::F16 => "x.f16.npy",
        Codec::U8 => "x.u8.npy",
    }
}

enum Rows {
    F32(Array<f32>),
    F16(Array<f16>),
    U8(Array<u8>, U8Scale),
}

/// A feature store over memory-mapped `.npy` files in a dataset directory.
pub struct MmapStore {
    rows: Rows,
    path: PathBuf,
    num_nodes: usize,
    dim: usize,
    codec: Codec,
    bytes_read: AtomicU64,
    /// Set by [`MmapStore::with_direct_io`]: rows are read with `pread`, not through the map.
    direct: Option<DirectFile>,
}

impl MmapStore {
    /// Maps the file of `codec` in dataset directory `dir`, checking dtype and shape.
    pub fn open(dir: &Path, codec: Codec) -> Result<MmapStore, StoreError> {
        let path = scalegnn_npy::confined(dir, mmap_file(codec))?;
        let (rows, shape) = match codec {
            Codec::F32 => {
                let a = open_mmap::<f32>(&path)?;
                let s = a.shape().to_vec();
                (Rows::F32(a), s)
            }
            Codec::F16 => {
                let a = open_mmap::<f16>(&path)?;
                let s = a.shape().to_vec();
                (Rows::F16(a), s)
            }
            Codec::U8 => {
                let a = open_mmap::<u8>(&path)?;
                let s = a.shape().to_vec();
                let dim = matrix_shape(&path, &s)?.1;
                let scale = read_scale(&scalegnn_npy::confined(dir, SCALE_FILE)?, dim)?;
                (Rows::U8(a, scale), s)
            }
        };
        let (num_nodes, dim) = matrix_shape(&path, &shape)?;
        Ok(MmapStore {
            rows,
            path,
            num_nodes,
            dim,
            codec,
            bytes_read: AtomicU64::new(0),
            direct: None,
        })
    }

    /// Reads rows with direct I/O (`O_DIRECT` `pread`, merged into long aligned reads) instead
    /// of through the memory map, so features larger than memory cost no page cache; meant to
    /// sit behind a [`crate::FeatureCache`] sized by the memory budget. See `direct.rs`.
    pub fn with_direct_io(mut self) -> Result<MmapStore, StoreError> {
        let header = scalegnn_npy::read_header(&self.path)?;
        let row_bytes = self.dim * self.codec.value_bytes();
        self.direct = Some(DirectFile::open(
            &self.path,
            header.data_offset as u64,
            row_bytes,
        )?);
        Ok(self)
    }

    /// Tunes direct reads: gaps of at most `merge_gap` bytes between wanted rows are read
    /// through, and no single read exceeds `max_run` bytes (no effect without direct I/O).
    pub fn with_read_merge(mut self, merge_gap: u64, max_run: u64) -> MmapStore {
        if let Some(d) = &mut self.direct {
            d.set_merge(merge_gap, max_run);
        }
        self
    }

    /// `Some(true)` when rows are read past the page cache, `Some(false)` when direct I/O was
    /// asked for but the file system refused it (plain `pread`), `None` when read by the map.
    pub fn direct_io(&self) -> Option<bool> {
        self.direct.as_ref().map(DirectFile::is_direct)
    }

    /// Decodes one stored row, as raw bytes, into f32 (the decoders SQLite rows use).
    fn decode_bytes(&self, bytes: &[u8], out: &mut [f32]) {
        match &self.rows {
            Rows::F32(_) => decode_f32_bytes(bytes, out),
            // Rows read into the 4 KiB-aligned buffer are always 2-byte aligned (the npy
            // header is 64-byte padded), so the scratch path stays unused.
            Rows::F16(_) => decode_f16_bytes(bytes, &mut Vec::new(), out),
            Rows::U8(_, scale) => scale.dequantize_row(bytes, out),
        }
    }

    /// The mapped file holding the rows.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The u8 codec's scale (None for f32 and f16).
    pub fn scale(&self) -> Option<&U8Scale> {
        match &self.rows {
            Rows::U8(_, s) => Some(s),
            _ => None,
        }
    }

    /// Decodes one chunk; ids are checked here because slicing the map must not panic.
    fn gather_chunk(&self, ids: &[u32], out: &mut [f32]) -> Result<(), StoreError> {
        check_ids(ids, self.num_nodes)?;
        let d = self.dim;
        if d > 0 {
            let rows = out.chunks_exact_mut(d).zip(ids);
            match &self.rows {
                Rows::F32(a) => {
                    for (o, &id) in rows {
                        let s = id as usize * d;
                        o.copy_from_slice(&a[s..s + d]);
                    }
                }
                Rows::F16(a) => {
                    for (o, &id) in rows {
                        let s = id as usize * d;
                        a[s..s + d].convert_to_f32_slice(o);
                    }
                }
                Rows::U8(a, scale) => {
                    for (o, &id) in rows {
                        let s = id as usize * d;
                        scale.dequantize_row(&a[s..s + d], o);
                    }
                }
            }
        }
        let bytes = (ids.len() * d * self.codec.value_bytes()) as u64;
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }
}

impl FeatureStore for MmapStore {
    fn num_nodes(&self) -> usize {
        self.num_nodes
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn codec(&self) -> Codec {
        self.codec
    }
    fn kind(&self) -> &'static str {
        "mmap"
    }
    fn gather(&self, ids: &[u32], out: &mut [f32]) -> Result<(), StoreError> {
        if let Some(direct) = &self.direct {
            check_out_len(ids, self.dim, out)?;
            check_ids(ids, self.num_nodes)?;
            let read = direct.gather(ids, out, self.dim, |b, o| self.decode_bytes(b, o))?;
            self.bytes_read.fetch_add(read, Ordering::Relaxed);
            return Ok(());
        }
        par_gather(ids, self.dim, out, CHUNK_ROWS, |i, o| {
            self.gather_chunk(i, o)
        })
    }
    fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }
}

/// `[num_nodes, dim]` of a 2-D feature array, or an error naming the file.
fn matrix_shape(path: &Path, shape: &[usize]) -> Result<(usize, usize), StoreError> {
    match *shape {
        [n, d] => Ok((n, d)),
        _ => Err(StoreError::BadShape {
            path: path.to_path_buf(),
            expected: "a 2-D array [num_nodes, num_features]".into(),
            found: shape.to_vec(),
        }),
    }
}

/// Reads and validates `x.scale.npy` for `dim` columns.
fn read_scale(path: &Path, dim: usize) -> Result<U8Scale, StoreError> {
    let a = open_mmap::<f32>(path)?;
    if a.shape() != [2, dim] {
        return Err(StoreError::BadShape {
            path: path.to_path_buf(),
            expected: format!("[2, {dim}] (min row, step row)"),
            found: a.shape().to_vec(),
        });
    }
    U8Scale::from_parts(&a[..dim], &a[dim..], path)
}
