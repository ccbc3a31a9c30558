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
