//! `open_store`: the store a dataset manifest names (kind + codec), and the files each uses.

use std::path::Path;

use crate::mmap::{mmap_file, SCALE_FILE};
use crate::postgres::POSTGRES_FILE;
use crate::sqlite::SQLITE_FILE;
use crate::{
    Codec, FeatureStore, MmapStore, PostgresStore, RetryPolicy, SparseStore, SqliteStore,
    StoreError, SPARSE_FILES,
};

/// Store kinds this build can open and write.
pub const KINDS: [&str; 4] = ["mmap", "sqlite", "postgres", "sparse"];

/// Settings only some store kinds use. `Default` reads nothing from the environment itself:
/// without `pg_url` the postgres store falls back to `$SCALEGNN_PG_URL`, then (when
/// opening) to the URL recorded in `x.postgres.json`.
#[derive(Clone, Default)]
pub struct StoreOptions {
    /// PostgreSQL server, `postgres://USER[:PASSWORD]@HOST:PORT/DB` (the password is never
    /// written to disk nor shown in messages).
    pub pg_url: Option<String>,
    /// How transient PostgreSQL failures are retried.
    pub pg_retry: RetryPolicy,
    /// Read the mmap or SQLite store's file with direct I/O past the page cache
    /// ([`MmapStore::with_direct_io`], [`SqliteStore::with_direct_io`]); postgres refuses it.
    pub direct_io: bool,
}

impl StoreOptions {
    /// The server a postgres store would be written to, as shown in messages (no password):
    /// `pg_url`, else `$SCALEGNN_PG_URL`. Fails at once when neither is set or the URL is bad,
    /// so a command can refuse before doing any work.
    pub fn pg_write_server(&self) -> Result<String, StoreError> {
        crate::postgres::url_for_write(self.pg_url.as_deref()).map(|s| s.public)
    }
}

impl std::fmt::Debug for StoreOptions {
    // By hand, so that a password in the URL is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("pg_url", &self.pg_url.as_ref().map(|_| "<set>"))
            .field("pg_retry", &self.pg_retry)
            .field("direct_io", &self.direct_io)
            .finish()
    }
}

/// Opens the store a dataset directory's manifest points at (kind + codec), e.g. from the
/// `feature_store` field {"kind":"mmap","codec":"f32"}. A postgres store takes its server
/// from `$SCALEGNN_PG_URL` or else from `x.postgres.json`; see [`open_store_with`].
pub fn open_store(
    dir: &Path,
    kind: &str,
    codec: Codec,
) -> Result<Box<dyn FeatureStore>, StoreError> {
    open_store_with(dir, kind, codec, &StoreOptions::default())
}

/// [`open_store`] with explicit options (e.g. the `--pg-url` of the command line).
pub fn open_store_with(
    dir: &Path,
    kind: &str,
    codec: Codec,
    opts: &StoreOptions,
) -> Result<Box<dyn FeatureStore>, StoreError> {
    if opts.direct_io && (kind == "postgres" || kind == "sparse") {
        return Err(StoreError::DirectIoUnsupported(kind.to_string()));
    }
    match kind {
        "mmap" if opts.direct_io => Ok(Box::new(MmapStore::open(dir, codec)?.with_direct_io()?)),
        "mmap" => Ok(Box::new(MmapStore::open(dir, codec)?)),
        "sqlite" if opts.direct_io => {
            Ok(Box::new(SqliteStore::open(dir, codec)?.with_direct_io()?))
        }
        "sqlite" => Ok(Box::new(SqliteStore::open(dir, codec)?)),
        "postgres" => Ok(Box::new(PostgresStore::open(dir, Some(codec), opts)?)),
        "sparse" => Ok(Box::new(SparseStore::open(dir, codec)?)),
        other => Err(StoreError::UnknownKind(other.to_string())),
    }
}

/// Names of the files (relative to the dataset dir) a store of `kind` and `codec` consists of.
pub fn store_files(kind: &str, codec: Codec) -> Result<Vec<&'static str>, StoreError> {
    match (kind, codec) {
        ("mmap", Codec::U8) => Ok(vec![mmap_file(codec), SCALE_FILE]),
        ("mmap", _) => Ok(vec![mmap_file(codec)]),
        ("sqlite", _) => Ok(vec![SQLITE_FILE]),
        // The rows live on the server; the file only points at them.
        ("postgres", _) => Ok(vec![POSTGRES_FILE]),
        ("sparse", Codec::F32) => Ok(SPARSE_FILES.to_vec()),
        ("sparse", c) => Err(StoreError::CodecUnsupported {
            kind: "sparse".into(),
            codec: c.name().into(),
        }),
        (other, _) => Err(StoreError::UnknownKind(other.to_string())),
    }
}
