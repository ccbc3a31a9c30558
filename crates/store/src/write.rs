//! `write_store`: streams f32 rows into a new store of a given kind and codec inside a dataset
//! directory; each file is written to a temp name, fsynced, then renamed into place.

use std::path::{Path, PathBuf};

use scalegnn_npy::{write_array, Element, NpyWriter};

use crate::codec::{check_finite, Encoder};
use crate::mmap::{mmap_file, SCALE_FILE};
use crate::postgres::write_postgres;
use crate::scale::ColumnRange;
use crate::sqlite::{write_sqlite, SQLITE_FILE};
use crate::{Codec, RowSource, StoreError, StoreOptions, U8Scale, KINDS};

/// Writes the rows of `rows` into a new `kind` ("mmap", "sqlite" or "postgres") store with
/// `codec` in dataset directory `dir`, replacing any previous one. Rows are streamed chunk by
/// chunk (twice for u8: min/max, then encode); NaN/Inf or f16 overflow fails naming node and
/// column. A postgres store goes to the server in `$SCALEGNN_PG_URL`; see [`write_store_with`].
pub fn write_store(
    dir: &Path,
    kind: &str,
    codec: Codec,
    rows: &dyn RowSource,
) -> Result<(), StoreError> {
    write_store_with(dir, kind, codec, rows, &StoreOptions::default())
}

/// [`write_store`] with explicit options (e.g. the `--pg-url` of the command line).
pub fn write_store_with(
    dir: &Path,
    kind: &str,
    codec: Codec,
    rows: &dyn RowSource,
    opts: &StoreOptions,
) -> Result<(), StoreError> {
    if !KINDS.contains(&kind) {
        return Err(StoreError::UnknownKind(kind.to_string()));
    }
    if kind == "postgres" {
        // Before the u8 codec's full pass over the rows: a missing or bad URL fails at once.
        crate::postgres::url_for_write(opts.pg_url.as_deref())?;
    }
    if rows.dim() == 0 {
        return Err(StoreError::BadSource(
            "features need at least one column".into(),
        ));
    }
    if rows.num_nodes() > u32::MAX as usize + 1 {
        return Err(StoreError::BadSource(format!(
            "{} nodes do not fit u32 node ids",
            rows.num_nodes()
        )));
    }
    if kind == "sparse" {
        if codec != Codec::F32 {
            return Err(StoreError::CodecUnsupported {
                kind: kind.into(),
                codec: codec.name().into(),
            });
        }
        return crate::sparse::write_sparse(dir, rows);
    }
    let scale = match codec {
        Codec::U8 => Some(column_scale(rows)?),
        _ => None,
    };
    if kind == "sqlite" {
        return write_sqlite(&dir.join(SQLITE_FILE), codec, scale.as_ref(), rows);
    }
    if kind == "postgres" {
        return write_postgres(dir, codec, scale.as_ref(), rows, opts);
    }
    let target = dir.join(mmap_file(codec));
    if codec == Codec::F32 && is_same_file(rows.npy_path(), &target) {
        // The source already is the store: only check it holds finite values.
        return rows.for_each_chunk(&mut |first, chunk| check_finite(first, rows.dim(), chunk));
    }
    let rows_tmp = match codec {
        Codec::F32 => write_npy::<f32>(&target, codec, scale.as_ref(), rows)?,
        Codec::F16 => write_npy::<half::f16>(&target, codec, scale.as_ref(), rows)?,
        Codec::U8 => write_npy::<u8>(&target, codec, scale.as_ref(), rows)?,
    };
    // The rows file is complete before the scale is replaced: a failed write keeps the old pair.
    if let Some(s) = &scale {
        let scale_path = dir.join(SCALE_FILE);
        let tmp = temp_path(&scale_path);
        let res = write_array(&tmp, &[2, s.dim()], &s.to_rows())
            .map_err(StoreError::from)
            .and_then(|_| commit_temp(&tmp, &scale_path));
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            let _ = std::fs::remove_file(&rows_tmp);
            return Err(e);
        }
    }
    commit_temp(&rows_tmp, &target).inspect_err(|_| {
        let _ = std::fs::remove_file(&rows_tmp);
    })
}

/// The u8 codec's first pass: per-column min and max (and the finiteness check).
fn column_scale(rows: &dyn RowSource) -> Result<U8Scale, StoreError> {
    let mut range = ColumnRange::new(rows.dim());
    rows.for_each_chunk(&mut |first, chunk| {
        check_finite(first, rows.dim(), chunk)?;
        range.update(chunk);
        Ok(())
    })?;
    Ok(range.scale())
}

/// Encodes every row into a synced temp file beside `path` with element type `T` (the
/// codec's dtype) and returns the temp file's path; the caller renames it into place.
fn write_npy<T: Element>(
    path: &Path,
    codec: Codec,
    scale: Option<&U8Scale>,
    rows: &dyn RowSource,
) -> Result<PathBuf, StoreError> {
    let tmp = temp_path(path);
    let res = (|| {
        let mut w = NpyWriter::<T>::create(&tmp, &[rows.num_nodes(), rows.dim()])?;
        let mut enc = Encoder::new(codec, rows.dim(), scale);
        rows.for_each_chunk(&mut |first, chunk| {
            let encoded = enc.encode(first, chunk)?;
            // The encoder's buffers are typed, so this cast never fails in practice.
            let typed = bytemuck::try_cast_slice::<u8, T>(encoded.bytes()).map_err(|e| {
                StoreError::BadSource(format!("encoded chunk does not cast to the dtype: {e}"))
            })?;
            w.write(typed).map_err(StoreError::from)
        })?;
        Ok(w.finish()?)
    })();
    match res {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// True when `src` names the same existing file as `target`.
fn is_same_file(src: Option<&Path>, target: &Path) -> bool {
    match (
        src.map(std::fs::canonicalize),
        std::fs::canonicalize(target),
    ) {
        (Some(Ok(a)), Ok(b)) => a == b,
        _ => false,
    }
}

/// A hidden temp name beside `path`, unique per process.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Renames a complete, synced temp file onto `path` and syncs the directory entry.
pub(crate) fn commit_temp(tmp: &Path, path: &Path) -> Result<(), StoreError> {
    std::fs::rename(tmp, path).map_err(|e| StoreError::io(path, e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
