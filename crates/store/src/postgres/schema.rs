//! Layout of a PostgreSQL store and the pointer file that records it in the dataset dir.
//!
//! ```sql
//! CREATE TABLE scalegnn_<dir>_<hash>      (id BIGINT PRIMARY KEY, v BYTEA NOT NULL, xxh3 BIGINT NOT NULL);
//! CREATE TABLE scalegnn_<dir>_<hash>_meta (format TEXT, num_nodes BIGINT, dim INTEGER, codec TEXT, u8_scale BYTEA);
//! ```
//! One table per dataset directory: `<dir>` is the directory's name (lowercase, `[a-z0-9_]`,
//! at most 20 characters) and `<hash>` 8 hex digits of the xxh3 of its canonical path, so two
//! datasets called `cora` in different places never share a table. Tables go to the
//! connection's default schema; put `?options=-c%20search_path%3DSCHEMA` in the URL to use
//! another one. Rewriting the store (any codec) replaces the table.
//! `v` holds the codec's little-endian values (as in `x.sqlite`); `xxh3` is the 64-bit xxh3 of
//! `v` seeded with the id, so a changed byte, or a row copied onto another id, is caught.
//!
//! `x.postgres.json` in the dataset dir records the server URL *without password*, the table,
//! codec and shape; at open time the URL comes from `--pg-url`, else `$SCALEGNN_PG_URL`, else
//! the recorded one. `$PGPASSWORD` is added only to a URL the user gave for this run, or to a
//! recorded one whose host the user trusts (`conn.rs`: `SCALEGNN_PG_TRUSTED_HOSTS`, PGHOST).

use std::path::Path;

use postgres::GenericClient;
use serde::{Deserialize, Serialize};

use super::conn::Server;
use crate::{Codec, StoreError, U8Scale};

/// File name of the pointer to the PostgreSQL store inside a dataset directory.
pub const POSTGRES_FILE: &str = "x.postgres.json";

/// Value of the meta table's `format` and of the pointer file's `format`.
pub(crate) const FORMAT: &str = "scalegnn-postgres-features/1";

/// Largest number of columns accepted (as for SQLite).
const MAX_DIM: usize = 1 << 24;

/// What `x.postgres.json` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pointer {
    pub format: String,
    /// Server URL without password.
    pub url: String,
    pub table: String,
    pub codec: String,
    pub num_nodes: u64,
    pub dim: u64,
}

impl Pointer {
    /// Reads and checks `dir/x.postgres.json`.
    pub fn read(dir: &Path) -> Result<Pointer, StoreError> {
        use std::io::Read;
        let path = scalegnn_npy::confined(dir, POSTGRES_FILE)?;
        let mut text = String::new();
        // A pointer is a few hundred bytes; 64 KiB more is not one.
        scalegnn_npy::open_regular(&path)?
            .take(64 << 10)
            .read_to_string(&mut text)
            .map_err(|e| StoreError::io(&path, e))?;
        let p: Pointer = serde_json::from_str(&text)
            .map_err(|e| StoreError::corrupt(&path, format!("not a store pointer: {e}")))?;
        if p.format != FORMAT {
            return Err(StoreError::corrupt(
                &path,
                format!("format {:?}, expected {FORMAT:?}", p.format),
            ));
        }
        if !valid_ident(&p.table) {
            return Err(StoreError::corrupt(
                &path,
                format!("table name {:?} is not [a-z0-9_]{{1,50}}", p.table),
            ));
        }
        Ok(p)
    }

    /// Writes `dir/x.postgres.json` atomically (temp file, fsync, rename).
    pub fn write(&self, dir: &Path) -> Result<(), StoreError> {
        use std::io::Write;
        let path = dir.join(POSTGRES_FILE);
        let tmp = crate::write::temp_path(&path);
        let res = (|| {
            let text = serde_json::to_string_pretty(self)
                .map_err(|e| StoreError::BadSource(format!("encoding {POSTGRES_FILE}: {e}")))?;
            let mut f = std::fs::File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
            f.write_all(text.as_bytes())
                .and_then(|_| f.write_all(b"\n"))
                .and_then(|_| f.sync_all())
                .map_err(|e| StoreError::io(&tmp, e))?;
            crate::write::commit_temp(&tmp, &path)
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res
    }
}

/// True for the table names this crate makes (so they need no escaping, though they are
/// quoted anyway).
pub(crate) fn valid_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 50
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

/// The table of the dataset in `dir`: `scalegnn_<name>_<hash8>` (see the module docs).
pub(crate) fn table_name(dir: &Path) -> Result<String, StoreError> {
    let canon = std::fs::canonicalize(dir).map_err(|e| StoreError::io(dir, e))?;
    let raw = canon
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .take(20)
        .collect();
    name = name.trim_matches('_').to_string();
    if name.is_empty() {
        name = "data".into();
    }
    let hash = xxhash_rust::xxh3::xxh3_64(canon.as_os_str().as_encoded_bytes());
    Ok(format!("scalegnn_{name}_{:08x}", hash as u32))
}

/// Quotes an identifier for SQL.
pub(crate) fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The meta table of features table `t`.
pub(crate) fn meta_table(t: &str) -> String {
    format!("{t}_meta")
}

/// The per-row checksum stored in `xxh3` (the same as SQLite's).
pub(crate) fn row_checksum(id: u32, v: &[u8]) -> i64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(v, id as u64) as i64
}

/// What the meta table says about the store.
pub(crate) struct Meta {
    pub num_nodes: usize,
    pub dim: usize,
    pub codec: Codec,
    pub scale: Option<U8Scale>,
}

/// SQL creating the features and meta tables under the names `t` and `t_meta` (no primary
/// key yet: it is built after the bulk load, which is faster than maintaining it row by row).
pub(crate) fn create_sql(t: &str) -> String {
    format!(
        "CREATE TABLE {} (id BIGINT NOT NULL, v BYTEA NOT NULL, xxh3 BIGINT NOT NULL);
         CREATE TABLE {} (format TEXT NOT NULL, num_nodes BIGINT NOT NULL, dim INTEGER NOT NULL,
                          codec TEXT NOT NULL, u8_scale BYTEA);",
        quote(t),
        quote(&meta_table(t))
    )
}

/// Inserts the meta row into `t_meta`.
pub(crate) fn write_meta(
    c: &mut impl GenericClient,
    t: &str,
    meta: &Meta,
) -> Result<u64, postgres::Error> {
    let scale: Option<Vec<u8>> = meta
        .scale
        .as_ref()
        .map(|s| bytemuck::cast_slice(&s.to_rows()).to_vec());
    c.execute(
        &format!(
            "INSERT INTO {} (format, num_nodes, dim, codec, u8_scale) VALUES ($1, $2, $3, $4, $5)",
            quote(&meta_table(t))
        ),
        &[
            &FORMAT,
            &(meta.num_nodes as i64),
            &(meta.dim as i32),
            &meta.codec.name(),
            &scale,
        ],
    )
}

/// Reads and validates the meta row of table `t`; `loc` names server and table in errors.
pub(crate) fn read_meta(
    c: &mut impl GenericClient,
    server: &Server,
    t: &str,
    loc: &Path,
) -> Result<Meta, StoreError> {
    let bad = |what: String| StoreError::corrupt(loc, format!("table {t}_meta: {what}"));
    let rows = c
        .query(
            &format!(
                "SELECT format, num_nodes, dim, codec, u8_scale FROM {}",
                quote(&meta_table(t))
            ),
            &[],
        )
        .map_err(|e| server.error(&format!("reading table {}", meta_table(t)), e))?;
    let [row] = rows.as_slice() else {
        return Err(bad(format!("{} rows, expected 1", rows.len())));
    };
    let get_err = |e: postgres::Error| bad(crate::error::pg_detail(&e));
    let format: String = row.try_get(0).map_err(get_err)?;
    if format != FORMAT {
        return Err(bad(format!("format {format:?}, expected {FORMAT:?}")));
    }
    let num_nodes: i64 = row.try_get(1).map_err(get_err)?;
    let dim: i32 = row.try_get(2).map_err(get_err)?;
    if !(0..=u32::MAX as i64 + 1).contains(&num_nodes) {
        return Err(bad(format!(
            "num_nodes = {num_nodes} is outside u32 node ids"
        )));
    }
    if dim <= 0 || dim as usize > MAX_DIM {
        return Err(bad(format!("dim = {dim} is outside 1..={MAX_DIM}")));
    }
    let codec: Codec = row
        .try_get::<_, String>(3)
        .map_err(get_err)?
        .parse()
        .map_err(|e: StoreError| bad(e.to_string()))?;
    let scale_bytes: Option<Vec<u8>> = row.try_get(4).map_err(get_err)?;
    let scale = match (codec, scale_bytes) {
        (Codec::U8, Some(b)) => Some(U8Scale::from_bytes(&b, dim as usize, loc)?),
        (Codec::U8, None) => return Err(bad("codec u8 without u8_scale".into())),
        _ => None,
    };
    Ok(Meta {
        num_nodes: num_nodes as usize,
        dim: dim as usize,
        codec,
        scale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_plain_identifiers_unique_per_dir() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("My Data-Set.v2 with a very long name");
        let b = root
            .path()
            .join("other")
            .join("My Data-Set.v2 with a very long name");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let ta = table_name(&a).unwrap();
        let tb = table_name(&b).unwrap();
        assert!(ta.starts_with("scalegnn_my_data_set_v2_with_"), "{ta}");
        assert!(valid_ident(&ta) && valid_ident(&tb), "{ta} {tb}");
        assert_ne!(ta, tb);
        assert!(ta.len() + "_load4194304_9999_meta".len() <= 63);
        assert!(!valid_ident("x; DROP TABLE y"));
    }
}
