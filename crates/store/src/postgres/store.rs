//! `PostgresStore`: gathers rows with one prepared `SELECT id, v, xxh3 … WHERE id = ANY($1)`
//! per chunk of ids, chunks fetched and decoded in parallel on the rayon pool, each on a
//! connection checked out of a small bounded pool. Transient failures (server restarted or
//! stopped, connection dropped) are retried on fresh connections with exponential backoff;
//! a gather returns `Ok` only if every row arrived and passed its checksum.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use half::f16;
use postgres::types::Type;
use postgres::{Client, Row, Statement};

use super::conn::{is_transient, retry, url_for_read, Attempt, RetryPolicy, Server};
use super::schema::{quote, read_meta, row_checksum, Pointer, POSTGRES_FILE};
use crate::codec::{decode_f16_bytes, decode_f32_bytes};
use crate::gather::{check_ids, id_order, par_gather};
use crate::{Codec, FeatureStore, StoreError, StoreOptions, U8Scale};

/// Ids per chunk: one pool checkout and one query per chunk.
const CHUNK_ROWS: usize = 2048;

/// Connections open at most at once, by default.
const POOL_SIZE: usize = 4;

/// A connection with the gather statement prepared on it.
struct Conn {
    client: Client,
    select: Statement,
}

/// A bounded pool: at most `max` connections open; a checkout waits when all are busy.
struct Pool {
    state: Mutex<PoolState>,
    freed: Condvar,
    max: usize,
}

struct PoolState {
    idle: Vec<Conn>,
    /// Connections open, idle or checked out.
    open: usize,
}

/// A checked-out connection; returned to the pool on drop unless discarded.
struct Lease<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl Lease<'_> {
    fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }

    /// Closes the connection instead of returning it (it failed, or the server went away).
    fn discard(mut self) {
        if self.conn.take().is_some() {
            let mut st = self.pool.lock();
            st.open -= 1;
            self.pool.freed.notify_one();
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let mut st = self.pool.lock();
            if c.client.is_closed() {
                st.open -= 1;
            } else {
                st.idle.push(c);
            }
            self.pool.freed.notify_one();
        }
    }
}

impl Pool {
    fn new(max: usize) -> Pool {
        Pool {
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
            max: max.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection, else a new one from `open` if below the cap, else waits.
    fn checkout(
        &self,
        open: impl FnOnce() -> Result<Conn, postgres::Error>,
    ) -> Result<Lease<'_>, postgres::Error> {
        let mut st = self.lock();
        loop {
            if let Some(c) = st.idle.pop() {
                return Ok(Lease {
                    pool: self,
                    conn: Some(c),
                });
            }
            if st.open < self.max {
                st.open += 1;
                break;
            }
            st = self.freed.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        drop(st);
        match open() {
            Ok(c) => Ok(Lease {
                pool: self,
                conn: Some(c),
            }),
            Err(e) => {
                self.lock().open -= 1;
                self.freed.notify_one();
                Err(e)
            }
        }
    }

    /// Adds an already open connection.
    fn add(&self, c: Conn) {
        let mut st = self.lock();
        st.open += 1;
        st.idle.push(c);
    }

    /// Closes every idle connection (after a transient failure they are likely dead too).
    fn clear_idle(&self) {
        let mut st = self.lock();
        let n = st.idle.len();
        st.idle.clear();
        st.open -= n;
        self.freed.notify_all();
    }
}

/// A feature store in a PostgreSQL table, found through `x.postgres.json` in the dataset dir.
pub struct PostgresStore {
    server: Server,
    table: String,
    select_sql: String,
    /// "URL table NAME", the location named in errors.
    loc: PathBuf,
    num_nodes: usize,
    dim: usize,
    codec: Codec,
    scale: Option<U8Scale>,
    retry: RetryPolicy,
    chunk_rows: usize,
    pool: Pool,
    bytes_read: AtomicU64,
}

impl PostgresStore {
    /// Opens the store recorded in `dir/x.postgres.json`; fails unless it holds `codec` (if
    /// given). The server is `opts.pg_url`, else `$SCALEGNN_PG_URL`, else the recorded URL.
    pub fn open(
        dir: &Path,
        codec: Option<Codec>,
        opts: &StoreOptions,
    ) -> Result<PostgresStore, StoreError> {
        let pointer = Pointer::read(dir)?;
        let server = url_for_read(opts.pg_url.as_deref(), &pointer.url)?;
        let table = pointer.table;
        let loc = PathBuf::from(format!("{} table {table}", server.public));
        let select_sql = format!(
            "SELECT id, v, xxh3 FROM {} WHERE id = ANY($1)",
            quote(&table)
        );
        let what = format!("opening table {table}");
        let mut client = retry(&server, opts.pg_retry, &what, |_| match server.connect() {
            Ok(c) => Attempt::Done(c),
            Err(e) if is_transient(&e) => Attempt::Transient(e),
            Err(e) => Attempt::Fatal(server.error("connecting", e)),
        })?;
        let meta = read_meta(&mut client, &server, &table, &loc)?;
        if let Some(c) = codec.filter(|&c| c != meta.codec) {
            return Err(StoreError::CodecMismatch {
                path: dir.join(POSTGRES_FILE),
                expected: c.to_string(),
                found: meta.codec.to_string(),
            });
        }
        // Cheap (one index descent) and catches a table cut short or padded.
        let max_id: Option<i64> = client
            .query_one(&format!("SELECT max(id) FROM {}", quote(&table)), &[])
            .and_then(|r| r.try_get(0))
            .map_err(|e| server.error(&what, e))?;
        let want = (meta.num_nodes as i64).checked_sub(1).filter(|&m| m >= 0);
        if max_id != want {
            return Err(StoreError::corrupt(
                &loc,
                format!(
                    "largest id is {max_id:?}, but the meta table says num_nodes = {}",
                    meta.num_nodes
                ),
            ));
        }
        let select = client
            .prepare_typed(&select_sql, &[Type::INT8_ARRAY])
            .map_err(|e| server.error(&what, e))?;
        let pool = Pool::new(POOL_SIZE);
        pool.add(Conn { client, select });
        Ok(PostgresStore {
            server,
            table,
            select_sql,
            loc,
            num_nodes: meta.num_nodes,
            dim: meta.dim,
            codec: meta.codec,
            scale: meta.scale,
            retry: opts.pg_retry,
            chunk_rows: CHUNK_ROWS,
            pool,
            bytes_read: AtomicU64::new(0),
        })
    }

    /// Sets how transient failures are retried.
    pub fn with_retry(mut self, retry: RetryPolicy) -> PostgresStore {
        self.retry = retry;
        self
    }

    /// Sets the most connections open at once (at least 1; default 4).
    pub fn with_pool_size(mut self, n: usize) -> PostgresStore {
        self.pool.max = n.max(1);
        self
    }

    /// Sets the ids fetched per query (default 2048).
    pub fn with_chunk_rows(mut self, n: usize) -> PostgresStore {
        self.chunk_rows = n.max(1);
        self
    }

    /// The server URL, without password.
    pub fn server(&self) -> &str {
        &self.server.public
    }

    /// The features table (its meta table is `<table>_meta`).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The u8 codec's scale (None for f32 and f16).
    pub fn scale(&self) -> Option<&U8Scale> {
        self.scale.as_ref()
    }

    fn connect(&self) -> Result<Conn, postgres::Error> {
        let mut client = self.server.connect()?;
        let select = client.prepare_typed(&self.select_sql, &[Type::INT8_ARRAY])?;
        Ok(Conn { client, select })
    }

    fn gather_chunk(&self, ids: &[u32], out: &mut [f32]) -> Result<(), StoreError> {
        check_ids(ids, self.num_nodes)?;
        // (id, position) sorted by id: each distinct id is fetched once and copied to the
        // other positions that ask for it.
        let order = id_order(ids);
        let mut distinct: Vec<i64> = Vec::with_capacity(order.len());
        let mut starts: Vec<usize> = Vec::with_capacity(order.len());
        for (k, &(id, _)) in order.iter().enumerate() {
            if k == 0 || order[k - 1].0 != id {
                distinct.push(id as i64);
                starts.push(k);
            }
        }
        let what = format!("reading table {}", self.table);
        let bytes = retry(&self.server, self.retry, &what, |_| {
            let mut lease = match self.pool.checkout(|| self.connect()) {
                Ok(l) => l,
                Err(e) if is_transient(&e) => {
                    self.pool.clear_idle();
                    return Attempt::Transient(e);
                }
                Err(e) => return Attempt::Fatal(self.server.error(&what, e)),
            };
            let c = lease.conn();
            match c.client.query(&c.select, &[&distinct]) {
                Ok(rows) => {
                    drop(lease);
                    match self.decode_rows(&rows, &order, &distinct, &starts, out) {
                        Ok(b) => Attempt::Done(b),
                        Err(e) => Attempt::Fatal(e),
                    }
                }
                Err(e) => {
                    lease.discard();
                    if is_transient(&e) {
                        self.pool.clear_idle();
                        Attempt::Transient(e)
                    } else {
                        Attempt::Fatal(self.server.error(&what, e))
                    }
                }
            }
        })?;
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Decodes every returned row into its positions; fails unless each distinct id came
    /// back exactly once with a valid checksum. Returns the row bytes received.
    fn decode_rows(
        &self,
        rows: &[Row],
        order: &[(u32, u32)],
        distinct: &[i64],
        starts: &[usize],
        out: &mut [f32],
    ) -> Result<u64, StoreError> {
        let d = self.dim;
        let mut seen = vec![false; distinct.len()];
        let mut scratch: Vec<f16> = Vec::new();
        let mut bytes = 0u64;
        for row in rows {
            let raw: i64 = row.try_get(0).map_err(|e| self.bad_row(None, e))?;
            let k = match distinct.binary_search(&raw) {
                Ok(k) if !seen[k] => k,
                Ok(_) => {
                    return Err(StoreError::corrupt(
                        &self.loc,
                        format!("id {raw} was returned twice"),
                    ))
                }
                Err(_) => {
                    return Err(StoreError::corrupt(
                        &self.loc,
                        format!("the server returned id {raw}, which was not asked for"),
                    ))
                }
            };
            seen[k] = true;
            let id = raw as u32;
            let v: &[u8] = row.try_get(1).map_err(|e| self.bad_row(Some(id), e))?;
            let sum: i64 = row.try_get(2).map_err(|e| self.bad_row(Some(id), e))?;
            let p0 = order[starts[k]].1 as usize;
            self.decode_row(id, v, sum, &mut scratch, &mut out[p0 * d..(p0 + 1) * d])?;
            bytes += v.len() as u64;
            for &(_, p) in order[starts[k] + 1..].iter().take_while(|&&(i, _)| i == id) {
                out.copy_within(p0 * d..(p0 + 1) * d, p as usize * d);
            }
        }
        if let Some(k) = seen.iter().position(|&s| !s) {
            return Err(StoreError::MissingRow {
                path: self.loc.clone(),
                id: distinct[k] as u32,
            });
        }
        Ok(bytes)
    }

    fn bad_row(&self, id: Option<u32>, e: postgres::Error) -> StoreError {
        let which = id
            .map(|i| format!("row for node id {i}"))
            .unwrap_or("a row".into());
        StoreError::corrupt(
            &self.loc,
            format!("{which}: {}", crate::error::pg_detail(&e)),
        )
    }

    /// Checks the length and checksum of row `id`'s bytes `v`, then decodes them into `out`.
    fn decode_row(
        &self,
        id: u32,
        v: &[u8],
        sum: i64,
        scratch: &mut Vec<f16>,
        out: &mut [f32],
    ) -> Result<(), StoreError> {
        let want = self.dim * self.codec.value_bytes();
        if v.len() != want {
            return Err(StoreError::corrupt(
                &self.loc,
                format!(
                    "row for node id {id} holds {} bytes, expected {want}",
                    v.len()
                ),
            ));
        }
        if row_checksum(id, v) != sum {
            return Err(StoreError::corrupt(
                &self.loc,
                format!("row for node id {id} fails its checksum"),
            ));
        }
        match (self.codec, &self.scale) {
            (Codec::F32, _) => decode_f32_bytes(v, out),
            (Codec::F16, _) => decode_f16_bytes(v, scratch, out),
            (Codec::U8, Some(s)) => s.dequantize_row(v, out),
            // read_meta always loads a scale for u8.
            (Codec::U8, None) => return Err(StoreError::corrupt(&self.loc, "no u8_scale")),
        }
        Ok(())
    }
}

impl FeatureStore for PostgresStore {
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
        "postgres"
    }
    fn gather(&self, ids: &[u32], out: &mut [f32]) -> Result<(), StoreError> {
        par_gather(ids, self.dim, out, self.chunk_rows, |i, o| {
            self.gather_chunk(i, o)
        })
    }
    fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }
}
