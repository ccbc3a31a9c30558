//! The batch driver shared by all stores: checks the output buffer, then splits large batches
//! into chunks decoded in parallel on the rayon pool (one task per chunk, never per row).

use rayon::prelude::*;

use crate::StoreError;

/// Checks that `out` holds exactly `ids.len() * dim` floats.
pub(crate) fn check_out_len(ids: &[u32], dim: usize, out: &[f32]) -> Result<(), StoreError> {
    let expected = ids.len().saturating_mul(dim);
    if out.len() != expected {
        return Err(StoreError::OutLen {
            got: out.len(),
            expected,
            rows: ids.len(),
            dim,
        });
    }
    Ok(())
}

/// The error for the first id in `ids` that is not below `num_nodes`, if any.
pub(crate) fn check_ids(ids: &[u32], num_nodes: usize) -> Result<(), StoreError> {
    match ids.iter().find(|&&id| id as usize >= num_nodes) {
        Some(&id) => Err(StoreError::IdOutOfRange { id, num_nodes }),
        None => Ok(()),
    }
}

/// Runs `chunk(ids_part, out_part)` over consecutive pieces of at most `chunk_rows` rows,
/// in parallel when there is more than one piece; returns the first error.
pub(crate) fn par_gather<F>(
    ids: &[u32],
    dim: usize,
    out: &mut [f32],
    chunk_rows: usize,
    chunk: F,
) -> Result<(), StoreError>
where
    F: Fn(&[u32], &mut [f32]) -> Result<(), StoreError> + Sync,
{
    check_out_len(ids, dim, out)?;
    let chunk_rows = chunk_rows.max(1);
    // Small batches stay on the caller's thread: a rayon hop costs more than it saves.
    if ids.len() <= chunk_rows || dim == 0 || rayon::current_num_threads() == 1 {
        return chunk(ids, out);
    }
    ids.par_chunks(chunk_rows)
        .zip(out.par_chunks_mut(chunk_rows * dim))
        .try_for_each(|(i, o)| chunk(i, o))
}

/// [`par_gather`] over the ids in ascending order: each chunk of `chunk_rows` sorted ids is
/// gathered into a per-chunk buffer and its rows copied to their batch positions. For stores
/// whose reads are cheaper in key order (a b-tree walks neighbouring leaves, the kernel's
/// read-around fetches the next pages) at the price of one more copy per row.
pub(crate) fn par_gather_sorted<F>(
    ids: &[u32],
    dim: usize,
    out: &mut [f32],
    chunk_rows: usize,
    chunk: F,
) -> Result<(), StoreError>
where
    F: Fn(&[u32], &mut [f32]) -> Result<(), StoreError> + Sync,
{
    check_out_len(ids, dim, out)?;
    let chunk_rows = chunk_rows.max(1);
    if ids.len() <= chunk_rows || dim == 0 {
        return chunk(ids, out);
    }
    let order = id_order(ids);
    let out_rows = OutRows::new(out, dim);
    order.par_chunks(chunk_rows).try_for_each_init(
        || (Vec::new(), Vec::new()),
        |(sorted, buf): &mut (Vec<u32>, Vec<f32>), part| {
            sorted.clear();
            sorted.extend(part.iter().map(|&(id, _)| id));
            buf.resize(part.len() * dim, 0.0);
            chunk(sorted, buf)?;
            for (row, &(_, pos)) in buf.chunks_exact(dim).zip(part) {
                // SAFETY: each batch position appears once in `order`, in one chunk.
                unsafe { out_rows.row(pos as usize) }.copy_from_slice(row);
            }
            Ok(())
        },
    )
}

/// `(id, batch position)` for every position of `ids`, sorted by id then position: repeats of
/// an id sit together, so each distinct id is read once.
pub(crate) fn id_order(ids: &[u32]) -> Vec<(u32, u32)> {
    let mut order: Vec<(u32, u32)> = ids
        .iter()
        .enumerate()
        .map(|(p, &id)| (id, p as u32))
        .collect();
    // Parallel only where it pays: a rayon hop costs more than sorting a few thousand pairs.
    if order.len() >= PAR_SORT_MIN {
        order.par_sort_unstable();
    } else {
        order.sort_unstable();
    }
    order
}

/// Batches with fewer ids than this are sorted on the caller's thread.
const PAR_SORT_MIN: usize = 32 * 1024;

/// Raw view of the caller's output buffer for disjoint row writes from several parallel tasks.
#[derive(Clone, Copy)]
pub(crate) struct OutRows {
    ptr: *mut f32,
    rows: usize,
    dim: usize,
}

// SAFETY: `OutRows` is only used inside one `gather` call, while the `&mut [f32]` it was made
// from is borrowed by that call, and every task writes rows no other task writes (see `row`).
unsafe impl Send for OutRows {}
unsafe impl Sync for OutRows {}

impl OutRows {
    /// A view of `out` as rows of `dim` floats.
    pub(crate) fn new(out: &mut [f32], dim: usize) -> OutRows {
        OutRows {
            ptr: out.as_mut_ptr(),
            rows: out.len().checked_div(dim).unwrap_or(0),
            dim,
        }
    }

    /// Row `pos` of the output.
    ///
    /// # Safety
    /// No other live reference to row `pos` may exist: callers write each batch position from
    /// exactly one task (the cache buckets positions into disjoint shard lists; the direct reader
    /// gives each position to the one run holding its row).
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn row(&self, pos: usize) -> &mut [f32] {
        assert!(pos < self.rows);
        std::slice::from_raw_parts_mut(self.ptr.add(pos * self.dim), self.dim)
    }
}
