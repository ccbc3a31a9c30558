//! `DirectFile`: rows of a store's `.npy` file read with `pread` past the page cache
//! (`O_DIRECT`), for features larger than the memory the run may use.
//!
//! **Why.** Through a memory map, a file larger than memory costs page faults, page-cache
//! reclaim and readahead of rows nobody asked for, all on the trainer's cores: on the products
//! preset with half the features resident (cgroup limit), the mmap store ran at 35 % of its
//! in-memory speed and the *compute* of each batch slowed 2.5×. Direct reads put the bytes
//! straight into our buffers (DMA, no reclaim), so the memory the features take is the cache's,
//! which the budget sizes, and the trainer's cores stay free.
//!
//! **How a batch is read.** The ids are sorted by file offset; each row's byte range is widened
//! to 4 KiB blocks (`O_DIRECT` needs aligned offsets, lengths and buffers); neighbouring ranges
//! are merged into one run when the gap between them is at most `merge_gap` bytes, up to
//! `max_run` bytes per run; runs are read in parallel on the caller's rayon pool (one `pread`
//! per run into a per-task aligned buffer, so as many reads are in flight as the pool has
//! threads) and their rows decoded straight into the caller's output.
//!
//! **Why merge gaps of 32 KiB.** This machine's disk serves ~74k random 4 KiB reads/s at queue
//! depth 32 (13.5 µs each) and ~2.1 GB/s sequentially with four streams (28 KB in 13.5 µs), so
//! reading through a gap shorter than ~28 KB costs less than a separate request. Measured on
//! the products preset's 934 MiB f32 file (uniform random ids, 4 threads, 1 MiB runs; per
//! batch): 171k rows took 1,577 ms unmerged (506 MiB read), 843 ms with 8 KiB gaps, 777 ms
//! with 32 KiB (921 MiB) and 767 ms with 256 KiB; 428k rows 1,286 / 874 / 829 / 774 ms. At
//! these densities almost every block is read anyway and merging wins 2×; 32 KiB keeps
//! sparse batches from reading much they do not need.
//!
//! When the file system refuses `O_DIRECT` (older tmpfs, some network file systems) the file is read
//! with ordinary `pread` the same way, through the page cache; [`DirectFile::is_direct`] says
//! which.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::gather::{id_order, OutRows};
use crate::StoreError;

/// Alignment of offsets, lengths and buffers for `O_DIRECT` (the largest logical block size
/// in common use; 512-byte devices accept it too).
pub(crate) const ALIGN: u64 = 4096;
/// Default largest gap read through instead of starting a new request (see module docs).
pub const DEFAULT_MERGE_GAP: u64 = 32 * 1024;
/// Default longest single read: long enough for full sequential speed, short enough that a
/// buffer per in-flight read stays small (16 reads in flight = 16 MiB).
pub const DEFAULT_MAX_RUN: u64 = 1 << 20;

/// One read: aligned byte range `[start, start + len)` and the slice `order[first..last]` of
/// the sorted `(id, batch position)` pairs whose rows it holds.
struct Run {
    start: u64,
    len: u64,
    first: usize,
    last: usize,
}

/// Positional reads of fixed-size rows from one file, past the page cache when it allows.
pub(crate) struct DirectFile {
    file: File,
    path: PathBuf,
    direct: bool,
    /// Byte offset of row 0 (the `.npy` header length).
    data_offset: u64,
    row_bytes: u64,
    merge_gap: u64,
    max_run: u64,
}

impl DirectFile {
    /// Opens `path` for direct reads of rows of `row_bytes` starting at `data_offset`.
    pub(crate) fn open(
        path: &Path,
        data_offset: u64,
        row_bytes: usize,
    ) -> Result<DirectFile, StoreError> {
        let (file, direct) = open_direct(path).map_err(|e| StoreError::io(path, e))?;
        Ok(DirectFile {
            file,
            path: path.to_path_buf(),
            direct,
            data_offset,
            row_bytes: row_bytes as u64,
            merge_gap: DEFAULT_MERGE_GAP,
            max_run: DEFAULT_MAX_RUN,
        })
    }

    /// True when reads bypass the page cache (`O_DIRECT` accepted).
    pub(crate) fn is_direct(&self) -> bool {
        self.direct
    }

    /// Sets the largest gap read through and the longest single read (bytes).
    pub(crate) fn set_merge(&mut self, merge_gap: u64, max_run: u64) {
        self.merge_gap = merge_gap;
        self.max_run = max_run.max(ALIGN);
    }

    /// Reads the rows `ids` (already checked against the row count) and hands each, as raw
    /// bytes, to `decode` with its output row; returns the bytes read from the file.
    pub(crate) fn gather<D>(
        &self,
        ids: &[u32],
        out: &mut [f32],
        dim: usize,
        decode: D,
    ) -> Result<u64, StoreError>
    where
        D: Fn(&[u8], &mut [f32]) + Sync,
    {
        if ids.is_empty() || dim == 0 || self.row_bytes == 0 {
            return Ok(0);
        }
        let order = id_order(ids);
        let runs = self.plan_runs(&order);
        let buf_len = runs.iter().map(|r| r.len).max().unwrap_or(0) as usize;
        let out_rows = OutRows::new(out, dim);
        let read = runs
            .par_iter()
            .try_fold(
                || (AlignedBuf::new(buf_len), 0u64),
                |(mut buf, total), run| {
                    let last = order[run.last - 1].0 as u64;
                    let needed = self.data_offset + (last + 1) * self.row_bytes - run.start;
                    let got = self.read_run(run, needed, buf.as_mut(run.len as usize))?;
                    let bytes = &buf.as_mut(run.len as usize)[..got];
                    for &(id, pos) in &order[run.first..run.last] {
                        let at = self.data_offset + id as u64 * self.row_bytes;
                        let from = (at - run.start) as usize;
                        // SAFETY: `order` holds each batch position once and the runs
                        // partition it, so position `pos` is written by this task only.
                        let o = unsafe { out_rows.row(pos as usize) };
                        decode(&bytes[from..from + self.row_bytes as usize], o);
                    }
                    Ok::<_, StoreError>((buf, total + got as u64))
                },
            )
            .map(|r| r.map(|(_, n)| n))
            .try_reduce(|| 0, |a, b| Ok(a + b))?;
        Ok(read)
    }

    /// Groups the sorted rows into aligned runs (see the module docs).
    fn plan_runs(&self, order: &[(u32, u32)]) -> Vec<Run> {
        let span = |k: usize| {
            let s = self.data_offset + order[k].0 as u64 * self.row_bytes;
            (align_down(s), align_up(s + self.row_bytes))
        };
        let mut runs = Vec::new();
        let (mut start, mut end) = span(0);
        let mut first = 0;
        for k in 1..order.len() {
            let (a, b) = span(k);
            if a <= end.saturating_add(self.merge_gap) && b.max(end) - start <= self.max_run {
                end = end.max(b);
            } else {
                runs.push(Run {
                    start,
                    len: end - start,
                    first,
                    last: k,
                });
                (start, end, first) = (a, b, k);
            }
        }
        runs.push(Run {
            start,
            len: end - start,
            first,
            last: order.len(),
        });
        runs
    }

    /// Reads run `run` into `buf` (`run.len` bytes); returns how many bytes came, which is
    /// `run.len` except at the end of the file. A file ending before the run's rows do
    /// (`needed` bytes from the run's start) is an error naming it.
    fn read_run(&self, run: &Run, needed: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        let got = read_blocks(&self.file, self.direct, buf, run.start)
            .map_err(|e| StoreError::io(&self.path, e))?;
        if (got as u64) < needed {
            return Err(StoreError::corrupt(
                &self.path,
                format!(
                    "truncated: rows need bytes up to offset {}, the file ends at {}",
                    run.start + needed,
                    run.start + got as u64
                ),
            ));
        }
        Ok(got)
    }
}

/// Fills `buf` from file offset `start` (aligned, for `O_DIRECT`); returns how many bytes
/// came, fewer than `buf.len()` only at the end of the file.
pub(crate) fn read_blocks(
    file: &File,
    direct: bool,
    buf: &mut [u8],
    start: u64,
) -> std::io::Result<usize> {
    let mut got = 0usize;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], start + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        // A short O_DIRECT read only happens at the end of the file; the next offset would
        // be unaligned, so stop (callers check that what they need is there).
        if direct && !got.is_multiple_of(ALIGN as usize) {
            break;
        }
    }
    Ok(got)
}

/// Opens `path` read-only with `O_DIRECT`, or without it when the file system refuses it
/// (EINVAL); the flag says which.
pub(crate) fn open_direct(path: &Path) -> std::io::Result<(File, bool)> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(f) => Ok((f, true)),
        // EINVAL: the file system has no direct I/O; read through the page cache instead.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok((File::open(path)?, false)),
        Err(e) => Err(e),
    }
}

/// A heap buffer whose usable part starts on an `ALIGN` boundary (`O_DIRECT` needs it).
pub(crate) struct AlignedBuf {
    bytes: Vec<u8>,
    offset: usize,
}

impl AlignedBuf {
    pub(crate) fn new(len: usize) -> AlignedBuf {
        let bytes = vec![0u8; len + ALIGN as usize];
        // By address, not `align_offset`, which may give up (usize::MAX) and then slicing
        // would panic.
        let a = ALIGN as usize;
        let offset = (a - bytes.as_ptr() as usize % a) % a;
        AlignedBuf { bytes, offset }
    }

    /// Usable bytes.
    pub(crate) fn capacity(&self) -> usize {
        self.bytes.len() - ALIGN as usize
    }

    /// The first `len` aligned bytes, read-only.
    pub(crate) fn as_slice(&self, len: usize) -> &[u8] {
        &self.bytes[self.offset..self.offset + len]
    }

    /// The first `len` aligned bytes.
    pub(crate) fn as_mut(&mut self, len: usize) -> &mut [u8] {
        &mut self.bytes[self.offset..self.offset + len]
    }
}

pub(crate) fn align_down(x: u64) -> u64 {
    x / ALIGN * ALIGN
}

pub(crate) fn align_up(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}
