//! `SqliteStore`: gathers rows from `x.sqlite` through a pool of read-only connections, one
//! checked out per chunk of ids (so no lock per row and no connection shared by two threads).

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use half::f16;
use rusqlite::types::Value;
use rusqlite::{Connection, Row};

use super::direct_vfs::{register, take_bytes_read};
use super::schema::{check_file, check_schema, open_reader, read_meta, row_checksum, SQLITE_FILE};
use crate::codec::{decode_f16_bytes, decode_f32_bytes};
use crate::direct::open_direct;
use crate::gather::{check_ids, id_order, par_gather_sorted};
use crate::{Codec, FeatureStore, StoreError, U8Scale};

/// Ids per chunk: one pool checkout and (for `InArray`) one statement per chunk.
const CHUNK_ROWS: usize = 512;

/// Ids per chunk with direct reads: a chunk's sorted ids walk the file forward through one
/// connection's read window, so longer chunks mean fewer restarts (products preset, 190k
/// sorted ids per batch, 4 threads: 1,000 ms with 512-id chunks, 880 ms with 8,192).
const DIRECT_CHUNK_ROWS: usize = 8192;

/// Maximum bytes of the file SQLite maps instead of `pread`ing (1 TiB: the whole file).
const DEFAULT_MMAP_BYTES: u64 = 1 << 40;

const POINT_SQL: &str = "SELECT v, xxh3 FROM features WHERE id = ?1";
const IN_SQL: &str = "SELECT id, v, xxh3 FROM features WHERE id IN rarray(?1)";

/// How a chunk of ids is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteRead {
    /// One `SELECT … WHERE id = ?` per id on a cached prepared statement (the default:
    /// faster; a range scan over a sorted chunk's span was 2× slower on products batches).
    Point,
    /// One `SELECT … WHERE id IN rarray(?)` per chunk of up to 512 ids.
    InArray,
}

/// A feature store in an SQLite database (`x.sqlite`), opened read-only.
pub struct SqliteStore {
    path: PathBuf,
    num_nodes: usize,
    dim: usize,
    codec: Codec,
    scale: Option<U8Scale>,
    read: SqliteRead,
    mmap_bytes: u64,
    /// Set by [`SqliteStore::with_direct_io`]: whether `O_DIRECT` was accepted.
    direct: Option<bool>,
    /// Idle connections; a chunk pops one (or opens one) and pushes it back.
    pool: Mutex<Vec<Connection>>,
    bytes_read: AtomicU64,
}

impl SqliteStore {
    /// Opens `x.sqlite` in dataset directory `dir`; fails unless it holds `codec`.
    pub fn open(dir: &Path, codec: Codec) -> Result<SqliteStore, StoreError> {
        Self::open_file(&scalegnn_npy::confined(dir, SQLITE_FILE)?, Some(codec))
    }

    /// Opens the database `path`, checking its header, meta table and last row; `codec`
    /// (if given) must match the stored one.
    pub fn open_file(path: &Path, codec: Option<Codec>) -> Result<SqliteStore, StoreError> {
        check_file(path)?;
        let conn = open_reader(path, DEFAULT_MMAP_BYTES, false)?;
        check_schema(&conn, path)?;
        let meta = read_meta(&conn, path)?;
        if let Some(c) = codec.filter(|&c| c != meta.codec) {
            return Err(StoreError::CodecMismatch {
                path: path.to_path_buf(),
                expected: c.to_string(),
                found: meta.codec.to_string(),
            });
        }
        // Cheap (one b-tree descent) and catches a table cut short or padded.
        let max_id: Option<i64> = conn
            .query_row("SELECT max(id) FROM features", [], |r| r.get(0))
            .map_err(|e| StoreError::sqlite(path, e))?;
        let want = (meta.num_nodes as i64).checked_sub(1).filter(|&m| m >= 0);
        if max_id != want {
            return Err(StoreError::corrupt(
                path,
                format!(
                    "table features: largest id is {max_id:?}, but table meta says num_nodes = {}",
                    meta.num_nodes
                ),
            ));
        }
        Ok(SqliteStore {
            path: path.to_path_buf(),
            num_nodes: meta.num_nodes,
            dim: meta.dim,
            codec: meta.codec,
            scale: meta.scale,
            read: SqliteRead::Point,
            mmap_bytes: DEFAULT_MMAP_BYTES,
            direct: None,
            pool: Mutex::new(vec![conn]),
            bytes_read: AtomicU64::new(0),
        })
    }

    /// Chooses how chunks of ids are fetched (for measurements; `Point` is the default).
    pub fn with_read(mut self, read: SqliteRead) -> SqliteStore {
        self.read = read;
        self
    }

    /// Sets how many bytes of the file each connection memory-maps (0: plain reads).
    pub fn with_mmap_bytes(mut self, bytes: u64) -> SqliteStore {
        self.mmap_bytes = bytes;
        // Connections opened with the old setting are dropped; new ones open lazily.
        self.pool
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self
    }

    /// Reads the database file past the page cache (`O_DIRECT`, through the `scalegnn-direct`
    /// VFS) with a 1 MiB SQLite page cache and a 1 MiB read window per connection, for stores
    /// larger than memory.
    pub fn with_direct_io(mut self) -> Result<SqliteStore, StoreError> {
        register().map_err(|rc| {
            let e = rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rc),
                Some("registering the direct-I/O VFS scalegnn-direct".to_string()),
            );
            StoreError::sqlite(&self.path, e)
        })?;
        let (_, direct) = open_direct(&self.path).map_err(|e| StoreError::io(&self.path, e))?;
        self.direct = Some(direct);
        let pool = self.pool.get_mut().unwrap_or_else(PoisonError::into_inner);
        pool.clear();
        // Opened now so that a failure shows at open, not in the first batch; what opening
        // read is not a batch's.
        let conn = open_reader(&self.path, 0, true)?;
        take_bytes_read(&conn);
        pool.push(conn);
        Ok(self)
    }

    /// None without direct I/O; else whether reads really bypass the page cache (false when
    /// the file system refused `O_DIRECT` and plain reads are used).
    pub fn direct_io(&self) -> Option<bool> {
        self.direct
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The u8 codec's scale (None for f32 and f16).
    pub fn scale(&self) -> Option<&U8Scale> {
        self.scale.as_ref()
    }

    /// Runs `PRAGMA quick_check` over the whole file (reads every page: slow on big stores).
    pub fn check_integrity(&self) -> Result<(), StoreError> {
        let conn = self.checkout()?;
        let res: Result<String, _> = conn.query_row("PRAGMA quick_check", [], |r| r.get(0));
        // Its reads are not a batch's.
        take_bytes_read(&conn);
        self.checkin(conn);
        match res.map_err(|e| self.sql(e))? {
            ok if ok == "ok" => Ok(()),
            report => Err(StoreError::corrupt(
                &self.path,
                format!("quick_check: {report}"),
            )),
        }
    }

    fn sql(&self, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, e)
    }

    fn checkout(&self) -> Result<Connection, StoreError> {
        let idle = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(c) => Ok(c),
            None => open_reader(&self.path, self.mmap_bytes, self.direct.is_some()),
        }
    }

    fn checkin(&self, conn: Connection) {
        self.pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
    }

    fn gather_chunk(&self, ids: &[u32], out: &mut [f32]) -> Result<(), StoreError> {
        check_ids(ids, self.num_nodes)?;
        let conn = self.checkout()?;
        let mut scratch = Vec::new();
        let res = match self.read {
            SqliteRead::Point => self.read_point(&conn, ids, out, &mut scratch),
            SqliteRead::InArray => self.read_in_array(&conn, ids, out, &mut scratch),
        };
        // Direct reads count what came from disk (whole windows); plain reads count rows, as
        // the kernel's reads are not ours to see.
        let bytes = match self.direct {
            Some(_) => take_bytes_read(&conn),
            None => (ids.len() * self.dim * self.codec.value_bytes()) as u64,
        };
        self.checkin(conn);
        res?;
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    fn read_point(
        &self,
        conn: &Connection,
        ids: &[u32],
        out: &mut [f32],
        scratch: &mut Vec<f16>,
    ) -> Result<(), StoreError> {
        let mut st = conn.prepare_cached(POINT_SQL).map_err(|e| self.sql(e))?;
        for (o, &id) in out.chunks_exact_mut(self.dim).zip(ids) {
            let mut rows = st.query([id as i64]).map_err(|e| self.sql(e))?;
            let row =
                rows.next()
                    .map_err(|e| self.sql(e))?
                    .ok_or_else(|| StoreError::MissingRow {
                        path: self.path.clone(),
                        id,
                    })?;
            self.decode_row(id, row, 0, scratch, o)?;
        }
        Ok(())
    }

    fn read_in_array(
        &self,
        conn: &Connection,
        ids: &[u32],
        out: &mut [f32],
        scratch: &mut Vec<f16>,
    ) -> Result<(), StoreError> {
        let d = self.dim;
        // (id, position) sorted by id: duplicates become one lookup and many copies.
        let order = id_order(ids);
        let mut distinct: Vec<Value> = Vec::with_capacity(order.len());
        for (k, &(id, _)) in order.iter().enumerate() {
            if k == 0 || order[k - 1].0 != id {
                distinct.push(Value::Integer(id as i64));
            }
        }
        let wanted = distinct.len();
        let mut st = conn.prepare_cached(IN_SQL).map_err(|e| self.sql(e))?;
        let mut rows = st.query([Rc::new(distinct)]).map_err(|e| self.sql(e))?;
        let mut found = 0usize;
        while let Some(row) = rows.next().map_err(|e| self.sql(e))? {
            let raw: i64 = row.get(0).map_err(|e| self.sql(e))?;
            let start = order.partition_point(|&(i, _)| (i as i64) < raw);
            let Some(&(id, p0)) = order.get(start).filter(|&&(i, _)| i as i64 == raw) else {
                return Err(StoreError::corrupt(
                    &self.path,
                    format!("table features returned id {raw}, which was not asked for"),
                ));
            };
            let p0 = p0 as usize;
            self.decode_row(id, row, 1, scratch, &mut out[p0 * d..(p0 + 1) * d])?;
            for &(_, p) in order[start + 1..].iter().take_while(|&&(i, _)| i == id) {
                out.copy_within(p0 * d..(p0 + 1) * d, p as usize * d);
            }
            found += 1;
        }
        if found != wanted {
            drop(rows);
            // Slow path, only on error: find which id is missing.
            let mut st = conn.prepare_cached(POINT_SQL).map_err(|e| self.sql(e))?;
            for &(id, _) in &order {
                if !st.exists([id as i64]).map_err(|e| self.sql(e))? {
                    return Err(StoreError::MissingRow {
                        path: self.path.clone(),
                        id,
                    });
                }
            }
            return Err(StoreError::corrupt(
                &self.path,
                format!("table features returned {found} of {wanted} rows"),
            ));
        }
        Ok(())
    }

    /// Decodes columns `col` (v) and `col + 1` (xxh3) of `row` after checking length and checksum.
    fn decode_row(
        &self,
        id: u32,
        row: &Row<'_>,
        col: usize,
        scratch: &mut Vec<f16>,
        out: &mut [f32],
    ) -> Result<(), StoreError> {
        let v = row
            .get_ref(col)
            .map_err(|e| self.sql(e))?
            .as_blob()
            .map_err(|_| {
                StoreError::corrupt(&self.path, format!("row for node id {id} is not a blob"))
            })?;
        let sum: i64 = row.get(col + 1).map_err(|e| self.sql(e))?;
        let want = self.dim * self.codec.value_bytes();
        if v.len() != want {
            return Err(StoreError::corrupt(
                &self.path,
                format!(
                    "row for node id {id} holds {} bytes, expected {want}",
                    v.len()
                ),
            ));
        }
        if row_checksum(id, v) != sum {
            return Err(StoreError::corrupt(
                &self.path,
                format!("row for node id {id} fails its checksum"),
            ));
        }
        match (self.codec, &self.scale) {
            (Codec::F32, _) => decode_f32_bytes(v, out),
            (Codec::F16, _) => decode_f16_bytes(v, scratch, out),
            (Codec::U8, Some(s)) => s.dequantize_row(v, out),
            // read_meta always loads a scale for u8.
            (Codec::U8, None) => {
                return Err(StoreError::corrupt(&self.path, "table meta: no u8_scale"))
            }
        }
        Ok(())
    }
}

impl FeatureStore for SqliteStore {
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
        "sqlite"
    }
    fn gather(&self, ids: &[u32], out: &mut [f32]) -> Result<(), StoreError> {
        // In id order: a chunk's rows then sit on neighbouring b-tree leaves, so a chunk
        // touches a few pages instead of one per row (and on disk they are read together).
        let chunk = if self.direct.is_some() {
            DIRECT_CHUNK_ROWS
        } else {
            CHUNK_ROWS
        };
        par_gather_sorted(ids, self.dim, out, chunk, |i, o| self.gather_chunk(i, o))
    }
    fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }
}
