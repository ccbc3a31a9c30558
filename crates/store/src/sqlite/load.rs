//! Bulk load of `x.sqlite`: one transaction, one prepared insert, rows in id order (so
//! SQLite appends to the table b-tree), into a temp file renamed into place when complete.

use std::path::Path;

use rusqlite::Connection;

use super::schema::{row_checksum, write_meta, Meta, CREATE_SQL};
use crate::codec::Encoder;
use crate::write::{commit_temp, temp_path};
use crate::{Codec, RowSource, StoreError, U8Scale};

/// Writes every row of `rows` encoded with `codec` to the database at `path`, atomically.
pub(crate) fn write_sqlite(
    path: &Path,
    codec: Codec,
    scale: Option<&U8Scale>,
    rows: &dyn RowSource,
) -> Result<(), StoreError> {
    let tmp = temp_path(path);
    remove_db_files(&tmp);
    let res = load(&tmp, codec, scale, rows).and_then(|_| commit_temp(&tmp, path));
    if res.is_err() {
        remove_db_files(&tmp);
    }
    res
}

fn load(
    tmp: &Path,
    codec: Codec,
    scale: Option<&U8Scale>,
    rows: &dyn RowSource,
) -> Result<(), StoreError> {
    let sql = |e| StoreError::sqlite(tmp, e);
    let mut conn = Connection::open(tmp).map_err(sql)?;
    // No journal while loading: the file is a private temp file, deleted if anything fails.
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -65536;",
    )
    .map_err(sql)?;
    conn.execute_batch(CREATE_SQL).map_err(sql)?;
    let dim = rows.dim();
    let tx = conn.transaction().map_err(sql)?;
    write_meta(
        &tx,
        &Meta {
            num_nodes: rows.num_nodes(),
            dim,
            codec,
            scale: scale.cloned(),
        },
    )
    .map_err(sql)?;
    {
        let mut insert = tx
            .prepare("INSERT INTO features(id, v, xxh3) VALUES (?1, ?2, ?3)")
            .map_err(sql)?;
        let row_bytes = dim * codec.value_bytes();
        let mut enc = Encoder::new(codec, dim, scale);
        rows.for_each_chunk(&mut |first, chunk| {
            let encoded = enc.encode(first, chunk)?;
            for (k, v) in encoded.bytes().chunks_exact(row_bytes).enumerate() {
                let id = u32::try_from(first + k).map_err(|_| {
                    StoreError::BadSource(format!("node {} does not fit a u32 id", first + k))
                })?;
                insert
                    .execute(rusqlite::params![id as i64, v, row_checksum(id, v)])
                    .map_err(sql)?;
            }
            Ok(())
        })?;
    }
    tx.commit().map_err(sql)?;
    // WAL from here on (the lead's choice): a later writer would not block readers. Readers
    // open the file immutable, so they need no -wal/-shm files beside it.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sql)?;
    conn.close().map_err(|(_, e)| sql(e))?;
    // SQLite did not sync (synchronous=OFF); make the bytes durable before the rename.
    let f = std::fs::File::open(tmp).map_err(|e| StoreError::io(tmp, e))?;
    f.sync_all().map_err(|e| StoreError::io(tmp, e))
}

/// Removes a database file and the side files SQLite may leave beside it.
fn remove_db_files(path: &Path) {
    let _ = std::fs::remove_file(path);
    for ext in ["-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(ext);
        let _ = std::fs::remove_file(p);
    }
}
