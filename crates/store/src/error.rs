//! Errors of the store crate; each names the file, table or node id it is about.

use std::path::PathBuf;

/// What can go wrong opening, writing or reading a feature store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A `.npy` file could not be read or written (the npy error names the file).
    #[error(transparent)]
    Npy(#[from] scalegnn_npy::NpyError),
    /// The operating system refused an operation on a file.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    /// SQLite reported an error on a database file (corruption is reported this way too).
    #[error("{path}: SQLite: {err}")]
    Sqlite { path: PathBuf, err: rusqlite::Error },
    /// A file's array has a shape the store cannot use.
    #[error("{path}: wrong shape: expected {expected}, found {found:?}")]
    BadShape {
        path: PathBuf,
        expected: String,
        found: Vec<usize>,
    },
    /// A file is damaged: truncated, a bad row length, a checksum mismatch, bad metadata.
    #[error("{path}: corrupted store: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// A node id below `num_nodes` has no row in the store's table (`path` is the SQLite
    /// file, or for PostgreSQL the server URL without password and the table name).
    #[error("{path}: the features table has no row for node id {id}")]
    MissingRow { path: PathBuf, id: u32 },
    /// A requested node id is not below the store's node count.
    #[error("node id {id} is out of range: the feature store holds {num_nodes} nodes")]
    IdOutOfRange { id: u32, num_nodes: usize },
    /// The caller's output buffer does not hold `ids.len() * dim` floats.
    #[error("gather output buffer holds {got} floats, expected {expected} ({rows} rows x {dim} features)")]
    OutLen {
        got: usize,
        expected: usize,
        rows: usize,
        dim: usize,
    },
    /// An input feature is NaN or infinite; stores only hold finite values.
    #[error("feature of node {row}, column {col} is {value}: features must be finite")]
    NonFinite { row: usize, col: usize, value: f32 },
    /// An input feature does not fit the codec's range (f16 holds up to 65504).
    #[error("feature of node {row}, column {col} is {value}, out of the {codec} codec's range")]
    OutOfRange {
        row: usize,
        col: usize,
        value: f32,
        codec: &'static str,
    },
    /// The rows handed to a writer disagree with the declared shape.
    #[error("feature source: {0}")]
    BadSource(String),
    /// The store kind is not one this build knows.
    #[error("unknown feature store kind {0:?} (expected mmap, sqlite, postgres or sparse)")]
    UnknownKind(String),
    /// The store kind does not keep this codec (the sparse store holds f32 values).
    #[error("the {kind} feature store holds f32 values; codec {codec} is not available for it")]
    CodecUnsupported { kind: String, codec: String },
    /// Direct I/O was asked for a store kind that does its own reads.
    #[error("direct I/O (direct_io) reads the mmap or sqlite store's local file; the {0} store does its own reads: drop direct_io or use --store mmap|sqlite")]
    DirectIoUnsupported(String),
    /// The codec name is not one of f32, f16, u8.
    #[error("unknown feature codec {0:?} (expected f32, f16 or u8)")]
    UnknownCodec(String),
    /// A store exists but was written with another codec than the one asked for.
    #[error("{path}: store holds codec {found}, but {expected} was asked for")]
    CodecMismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },
    /// PostgreSQL reported an error. `server` is the URL without its password; `what` says
    /// what was being done (and on which table).
    #[error("{server}: PostgreSQL error {what}: {}", pg_detail(.err))]
    Postgres {
        server: String,
        what: String,
        err: postgres::Error,
    },
    /// The server could not be reached, or kept dropping the connection, through every retry.
    #[error("{server}: PostgreSQL server unavailable {what}: gave up after {attempts} attempts over {waited_ms} ms; last error: {last}")]
    PgUnavailable {
        server: String,
        what: String,
        attempts: u32,
        waited_ms: u64,
        last: String,
    },
    /// The postgres store needs a server URL and none was given.
    #[error("the postgres feature store needs a server URL: pass --pg-url postgres://USER@HOST:PORT/DB or set SCALEGNN_PG_URL")]
    PgNoUrl,
    /// A PostgreSQL URL could not be parsed (the URL is not repeated: it may hold a password).
    #[error("bad PostgreSQL URL (from {origin}): {reason}")]
    PgUrl { origin: String, reason: String },
}

/// A PostgreSQL error with its server message (the crate's own Display says only "db error").
pub(crate) fn pg_detail(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!(
            "{} ({})",
            db.to_string().replace('\n', "; "),
            db.code().code()
        );
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

impl StoreError {
    /// Wraps an I/O error with the file it is about.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_path_buf(),
            err: source,
        }
    }

    /// Wraps an SQLite error with the database file it is about.
    pub(crate) fn sqlite(path: &std::path::Path, source: rusqlite::Error) -> Self {
        StoreError::Sqlite {
            path: path.to_path_buf(),
            err: source,
        }
    }

    /// A corruption report about `path`.
    pub(crate) fn corrupt(path: &std::path::Path, reason: impl Into<String>) -> Self {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}
