//! Layout of `x.sqlite` and the checks made before trusting it.
//!
//! ```sql
//! CREATE TABLE meta(key TEXT PRIMARY KEY, value NOT NULL);   -- format, num_nodes, dim, codec, u8_scale
//! CREATE TABLE features(id INTEGER PRIMARY KEY, v BLOB NOT NULL, xxh3 INTEGER NOT NULL);
//! ```
//! `v` holds the codec's little-endian values, so `np.frombuffer(v, '<f4')` reads a row.
//! `xxh3` is the 64-bit xxh3 of `v` seeded with the id: SQLite has no page checksums, and
//! without it a flipped byte inside a row would decode to wrong features without any error.

use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::{Codec, StoreError, U8Scale};

/// File name of the SQLite store inside a dataset directory.
pub const SQLITE_FILE: &str = "x.sqlite";

/// Value of `meta.format`; bumped when the layout changes.
pub(crate) const FORMAT: &str = "scalegnn-sqlite-features/1";

/// Largest number of columns accepted (a row of f32 then stays far below SQLite's blob limit).
const MAX_DIM: usize = 1 << 24;

pub(crate) const CREATE_SQL: &str = "
    CREATE TABLE meta(key TEXT PRIMARY KEY, value NOT NULL);
    CREATE TABLE features(id INTEGER PRIMARY KEY, v BLOB NOT NULL, xxh3 INTEGER NOT NULL);";

/// What the meta table says about the store.
pub(crate) struct Meta {
    pub num_nodes: usize,
    pub dim: usize,
    pub codec: Codec,
    pub scale: Option<U8Scale>,
}

/// The per-row checksum stored in `features.xxh3`.
pub(crate) fn row_checksum(id: u32, v: &[u8]) -> i64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(v, id as u64) as i64
}

/// Checks the SQLite file header against the file size, so a truncated copy fails at open
/// with a clear message instead of at some later read.
pub(crate) fn check_file(path: &Path) -> Result<(), StoreError> {
    let mut f = std::fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
    let len = f.metadata().map_err(|e| StoreError::io(path, e))?.len();
    let mut h = [0u8; 100];
    if len < 100 || f.read_exact(&mut h).is_err() {
        return Err(StoreError::corrupt(
            path,
            format!("only {len} bytes, shorter than an SQLite header"),
        ));
    }
    if &h[..16] != b"SQLite format 3\0" {
        return Err(StoreError::corrupt(
            path,
            "not an SQLite 3 database (bad magic)",
        ));
    }
    let page_size = match u16::from_be_bytes([h[16], h[17]]) {
        1 => 65536u64,
        p => p as u64,
    };
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(StoreError::corrupt(
            path,
            format!("bad page size {page_size} in the header"),
        ));
    }
    let pages = u32::from_be_bytes([h[28], h[29], h[30], h[31]]) as u64;
    let change = &h[24..28];
    let valid_for = &h[92..96];
    // The in-header page count is only authoritative when these two counters agree.
    if change == valid_for && pages > 0 && len < pages * page_size {
        return Err(StoreError::corrupt(
            path,
            format!(
                "truncated: the header promises {pages} pages of {page_size} bytes ({} bytes), the file holds {len}",
                pages * page_size
            ),
        ));
    }
    if len % page_size != 0 {
        return Err(StoreError::corrupt(
            path,
            format!("file size {len} is not a multiple of the page size {page_size} (truncated?)"),
        ));
    }
    Ok(())
}

/// Opens a read-only connection. `immutable=1` because dataset files never change in place:
/// SQLite then skips locking and needs no `-wal`/`-shm` beside the file, so a WAL-mode store
/// also opens from a read-only directory.
/// With `direct`, the file is read through the `O_DIRECT` VFS (see `direct_vfs`), which
/// never memory-maps, and the connection keeps a page cache of `DIRECT_CACHE_KIB`.
pub(crate) fn open_reader(
    path: &Path,
    mmap_bytes: u64,
    direct: bool,
) -> Result<Connection, StoreError> {
    let uri = format!("file:{}?mode=ro&immutable=1", uri_path(path));
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = if direct {
        Connection::open_with_flags_and_vfs(uri, flags, super::direct_vfs::VFS_NAME)
    } else {
        Connection::open_with_flags(uri, flags)
    }
    .map_err(|e| StoreError::sqlite(path, e))?;
    rusqlite::vtab::array::load_module(&conn).map_err(|e| StoreError::sqlite(path, e))?;
    let (mmap, cache_kib) = if direct {
        (0, DIRECT_CACHE_KIB)
    } else {
        (mmap_bytes as i64, DEFAULT_CACHE_KIB)
    };
    conn.pragma_update(None, "mmap_size", mmap)
        .map_err(|e| StoreError::sqlite(path, e))?;
    conn.pragma_update(None, "cache_size", -cache_kib)
        .map_err(|e| StoreError::sqlite(path, e))?;
    Ok(conn)
}

/// SQLite's default page cache per connection (KiB).
const DEFAULT_CACHE_KIB: i64 = 2000;
/// Page cache per connection with direct reads (KiB). A sorted batch walks the leaves once,
/// so a leaf is never read twice and caching it buys nothing; what repeats is the root and the
/// interior page of the stretch being walked, a handful of pages. 1 MiB holds them with room
/// to spare and leaves the memory to the feature cache.
pub(crate) const DIRECT_CACHE_KIB: i64 = 1024;

/// Percent-encodes every byte of `path` that could be read as URI syntax.
fn uri_path(path: &Path) -> String {
    let mut s = String::new();
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// Checks that `meta` and `features` are plain tables created exactly as [`CREATE_SQL`] does.
/// A database is data: a view, a generated column or a default there would run the file's
/// own SQL on every read (a recursive CTE hangs, `zeroblob(9e8)` takes gigabytes).
pub(crate) fn check_schema(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let want: Vec<String> = CREATE_SQL
        .split(';')
        .map(norm)
        .filter(|s| !s.is_empty())
        .collect();
    for (name, want) in ["meta", "features"].iter().zip(&want) {
        let found: Option<(String, Option<String>)> = conn
            .query_row(
                "SELECT type, sql FROM sqlite_master WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| StoreError::sqlite(path, e))?;
        match found {
            None => return Err(StoreError::corrupt(path, format!("no table {name}"))),
            Some((kind, _)) if kind != "table" => {
                return Err(StoreError::corrupt(
                    path,
                    format!("{name} is a {kind}, not a table: refusing to run the file's own SQL"),
                ))
            }
            Some((_, sql)) if sql.as_deref().map(norm).as_deref() != Some(want.as_str()) => {
                return Err(StoreError::corrupt(
                    path,
                    format!("table {name} is not laid out as scalegnn writes it ({want})"),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Reads and validates the meta table.
pub(crate) fn read_meta(conn: &Connection, path: &Path) -> Result<Meta, StoreError> {
    let bad = |what: String| StoreError::corrupt(path, format!("table meta: {what}"));
    let get = |key: &str| -> Result<rusqlite::types::Value, StoreError> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| StoreError::sqlite(path, e))?
            .ok_or_else(|| bad(format!("no {key:?} row")))
    };
    let text = |key: &str| -> Result<String, StoreError> {
        match get(key)? {
            rusqlite::types::Value::Text(s) => Ok(s),
            v => Err(bad(format!("{key} is {v:?}, expected text"))),
        }
    };
    let count = |key: &str| -> Result<usize, StoreError> {
        match get(key)? {
            rusqlite::types::Value::Integer(i) if i >= 0 => {
                usize::try_from(i).map_err(|_| bad(format!("{key} = {i} is too large")))
            }
            v => Err(bad(format!("{key} is {v:?}, expected a count"))),
        }
    };
    let format = text("format")?;
    if format != FORMAT {
        return Err(bad(format!("format {format:?}, expected {FORMAT:?}")));
    }
    let num_nodes = count("num_nodes")?;
    let dim = count("dim")?;
    // Bounds keep size arithmetic far from overflow even if the meta table is damaged.
    if num_nodes > u32::MAX as usize + 1 {
        return Err(bad(format!("num_nodes = {num_nodes} exceeds u32 node ids")));
    }
    if dim == 0 || dim > MAX_DIM {
        return Err(bad(format!("dim = {dim} is outside 1..={MAX_DIM}")));
    }
    let codec: Codec = text("codec")?
        .parse()
        .map_err(|e: StoreError| bad(e.to_string()))?;
    let scale = if codec == Codec::U8 {
        match get("u8_scale")? {
            rusqlite::types::Value::Blob(b) => Some(U8Scale::from_bytes(&b, dim, path)?),
            v => return Err(bad(format!("u8_scale is {v:?}, expected a blob"))),
        }
    } else {
        None
    };
    Ok(Meta {
        num_nodes,
        dim,
        codec,
        scale,
    })
}

/// Writes the meta rows.
pub(crate) fn write_meta(conn: &Connection, meta: &Meta) -> rusqlite::Result<()> {
    let mut st = conn.prepare("INSERT INTO meta(key, value) VALUES (?1, ?2)")?;
    st.execute(rusqlite::params!["format", FORMAT])?;
    st.execute(rusqlite::params!["num_nodes", meta.num_nodes as i64])?;
    st.execute(rusqlite::params!["dim", meta.dim as i64])?;
    st.execute(rusqlite::params!["codec", meta.codec.name()])?;
    if let Some(s) = &meta.scale {
        let blob: Vec<u8> = bytemuck::cast_slice(&s.to_rows()).to_vec();
        st.execute(rusqlite::params!["u8_scale", blob])?;
    }
    Ok(())
}
