//! Bulk load of a PostgreSQL store: one transaction that creates a fresh table under a private
//! name, streams every row into it with `COPY … FROM STDIN (FORMAT BINARY)` (the binary COPY
//! format written here, chunk by chunk, never the whole matrix in memory), builds the primary
//! key, then drops the previous table and renames the new one into place. A failure at any
//! point (bad value, lost connection, killed process) rolls it all back: no half table is
//! ever visible under the final name, and the previous store stays as it was.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use super::conn::{is_transient, retry, url_for_write, Attempt, Server};
use super::schema::{
    create_sql, meta_table, quote, row_checksum, table_name, write_meta, Meta, Pointer, FORMAT,
};
use crate::codec::Encoder;
use crate::{Codec, RowSource, StoreError, StoreOptions, U8Scale};

/// The 19-byte header of the binary COPY format: signature, flags (no OIDs), no extension.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Makes load table names unique within the process.
static LOADS: AtomicU32 = AtomicU32::new(0);

/// Writes every row of `rows` encoded with `codec` into the dataset's table on the server
/// `opts.pg_url` (else `$SCALEGNN_PG_URL`), atomically, then records it in `x.postgres.json`.
pub(crate) fn write_postgres(
    dir: &Path,
    codec: Codec,
    scale: Option<&U8Scale>,
    rows: &dyn RowSource,
    opts: &StoreOptions,
) -> Result<(), StoreError> {
    let server = url_for_write(opts.pg_url.as_deref())?;
    let table = table_name(dir)?;
    let mut client = retry(&server, opts.pg_retry, "connecting", |_| {
        match server.connect() {
            Ok(c) => Attempt::Done(c),
            Err(e) if is_transient(&e) => Attempt::Transient(e),
            Err(e) => Attempt::Fatal(server.error("connecting", e)),
        }
    })?;
    let tmp = format!(
        "{table}_load{}_{}",
        std::process::id(),
        LOADS.fetch_add(1, Ordering::Relaxed) % 10_000
    );
    let what = format!("loading table {table}");
    let err = |e| server.error(&what, e);
    let mut tx = client.transaction().map_err(err)?;
    tx.batch_execute(&create_sql(&tmp)).map_err(err)?;
    let meta = Meta {
        num_nodes: rows.num_nodes(),
        dim: rows.dim(),
        codec,
        scale: scale.cloned(),
    };
    write_meta(&mut tx, &tmp, &meta).map_err(err)?;
    let copied = copy_rows(&mut tx, &server, &what, &tmp, codec, scale, rows)?;
    if copied != rows.num_nodes() as u64 {
        return Err(StoreError::BadSource(format!(
            "COPY stored {copied} rows, the source holds {}",
            rows.num_nodes()
        )));
    }
    let (t, tm) = (quote(&table), quote(&meta_table(&table)));
    let (n, nm) = (quote(&tmp), quote(&meta_table(&tmp)));
    let (pk_tmp, pk) = (
        quote(&format!("{tmp}_pkey")),
        quote(&format!("{table}_pkey")),
    );
    tx.batch_execute(&format!(
        "ALTER TABLE {n} ADD CONSTRAINT {pk_tmp} PRIMARY KEY (id);
         ANALYZE {n};
         DROP TABLE IF EXISTS {t}, {tm};
         ALTER TABLE {n} RENAME TO {t};
         ALTER TABLE {nm} RENAME TO {tm};
         ALTER INDEX {pk_tmp} RENAME TO {pk};"
    ))
    .map_err(err)?;
    tx.commit().map_err(err)?;
    Pointer {
        format: FORMAT.into(),
        url: server.public.clone(),
        table,
        codec: codec.name().into(),
        num_nodes: rows.num_nodes() as u64,
        dim: rows.dim() as u64,
    }
    .write(dir)
}

/// Streams the rows through `COPY table FROM STDIN (FORMAT BINARY)`; returns the rows stored.
fn copy_rows(
    tx: &mut postgres::Transaction<'_>,
    server: &Server,
    what: &str,
    table: &str,
    codec: Codec,
    scale: Option<&U8Scale>,
    rows: &dyn RowSource,
) -> Result<u64, StoreError> {
    let err = |e| server.error(what, e);
    // An io::Error from the writer wraps the postgres::Error that caused it.
    let io_err = |e: std::io::Error| match e
        .into_inner()
        .map(|inner| inner.downcast::<postgres::Error>())
    {
        Some(Ok(pg)) => server.error(what, *pg),
        Some(Err(other)) => StoreError::BadSource(format!("COPY into {table}: {other}")),
        None => StoreError::BadSource(format!("COPY into {table} failed")),
    };
    let mut w = tx
        .copy_in(&format!(
            "COPY {} (id, v, xxh3) FROM STDIN (FORMAT BINARY)",
            quote(table)
        ))
        .map_err(err)?;
    w.write_all(COPY_HEADER).map_err(io_err)?;
    let dim = rows.dim();
    let row_bytes = dim * codec.value_bytes();
    let field_len = i32::try_from(row_bytes)
        .map_err(|_| StoreError::BadSource(format!("a row of {row_bytes} bytes is too long")))?;
    let mut enc = Encoder::new(codec, dim, scale);
    let mut buf: Vec<u8> = Vec::new();
    rows.for_each_chunk(&mut |first, chunk| {
        let encoded = enc.encode(first, chunk)?;
        buf.clear();
        for (k, v) in encoded.bytes().chunks_exact(row_bytes).enumerate() {
            let id = u32::try_from(first + k).map_err(|_| {
                StoreError::BadSource(format!("node {} does not fit a u32 id", first + k))
            })?;
            // A tuple: field count, then (length, bytes) per field, all big-endian.
            buf.extend_from_slice(&3i16.to_be_bytes());
            buf.extend_from_slice(&8i32.to_be_bytes());
            buf.extend_from_slice(&(id as i64).to_be_bytes());
            buf.extend_from_slice(&field_len.to_be_bytes());
            buf.extend_from_slice(v);
            buf.extend_from_slice(&8i32.to_be_bytes());
            buf.extend_from_slice(&row_checksum(id, v).to_be_bytes());
        }
        w.write_all(&buf).map_err(io_err)
    })?;
    // The trailer: a field count of -1.
    w.write_all(&(-1i16).to_be_bytes()).map_err(io_err)?;
    w.finish().map_err(err)
}

/// Drops the dataset's table (and meta table) named in `dir/x.postgres.json`, then removes
/// that file. For cleaning up after tests or a `--store` change.
pub fn drop_postgres_store(dir: &Path, opts: &StoreOptions) -> Result<(), StoreError> {
    let pointer = Pointer::read(dir)?;
    let server = super::conn::url_for_read(opts.pg_url.as_deref(), &pointer.url)?;
    let what = format!("dropping table {}", pointer.table);
    let mut client = retry(&server, opts.pg_retry, &what, |_| match server.connect() {
        Ok(c) => Attempt::Done(c),
        Err(e) if is_transient(&e) => Attempt::Transient(e),
        Err(e) => Attempt::Fatal(server.error("connecting", e)),
    })?;
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {}, {}",
            quote(&pointer.table),
            quote(&meta_table(&pointer.table))
        ))
        .map_err(|e| server.error(&what, e))?;
    let path = dir.join(super::POSTGRES_FILE);
    std::fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))
}
