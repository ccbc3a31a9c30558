//! Fuzz targets for the readers of untrusted files: one function per reader takes arbitrary
//! bytes, hands them to the real reader (through a scratch file or directory where the reader
//! takes a path) and ignores the result. The contract they check is "no panic, no abort, no
//! allocation above the cap": every reader must turn any input into a value or an error.
//!
//! The same functions run under libFuzzer (`fuzz/`, coverage-guided, millions of executions)
//! and in `tests/smoke.rs` (the seed corpus, the regressions and a seeded mutation loop, in
//! CI). Figures and commands: `docs/reliability.md`.

pub mod alloc;
pub mod fixtures;
pub mod mutate;

use std::path::{Path, PathBuf};
use std::sync::{Once, OnceLock};

use scalegnn_data::readers::{
    csv as csv_reader, npz as npz_reader, parquet as pq, table, tu as tu_reader,
};
use scalegnn_data::{Dataset, OpenOptions};

/// The memory cap every target runs under (`scalegnn_limits::set_memory_cap`): small, so the
/// readers refuse a size read from the file before allocating it, and quickly.
pub const MEMORY_CAP: u64 = 64 << 20;

/// Separates the files of a multi-file input (TU parts, CSV tables, checkpoint parameters).
/// 0xFF never occurs in UTF-8, so text parts split cleanly.
pub const SEP: u8 = 0xFF;

/// Outcome of one target run: `Ok` when the reader accepted the input, else its error text.
pub type Outcome = Result<(), String>;

/// A fuzz target: its name (the corpus folder and the `fuzz/fuzz_targets` file) and function.
pub struct Target {
    /// Name of the target.
    pub name: &'static str,
    /// Runs the reader on the input and reports whether it accepted it.
    pub run: fn(&[u8]) -> Outcome,
}

/// Every target, in the order the docs list them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "npy_header",
        run: try_npy_header,
    },
    Target {
        name: "npz",
        run: try_npz,
    },
    Target {
        name: "tu",
        run: try_tu,
    },
    Target {
        name: "csv",
        run: try_csv,
    },
    Target {
        name: "parquet",
        run: try_parquet,
    },
    Target {
        name: "manifest",
        run: try_manifest,
    },
    Target {
        name: "checkpoint",
        run: try_checkpoint,
    },
    Target {
        name: "config",
        run: try_config,
    },
];

/// Sets the memory cap once per process.
fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| scalegnn_limits::set_memory_cap(MEMORY_CAP));
}

/// Where scratch files go: /dev/shm when there is one (no disk I/O per execution).
fn scratch_base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() && tempfile::tempdir_in(shm).is_ok() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    })
}

/// A fresh scratch directory, removed when dropped.
pub fn scratch() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("scalegnn-fuzz-")
        .tempdir_in(scratch_base())
}

/// Splits a multi-file input on [`SEP`].
fn parts(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == SEP).collect()
}

fn text<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// `.npy` header parsing and every `.npy` reader: the header alone, a stream (as from a zip
/// member) converted to f32 and i64, and a file mapped and read with several dtypes.
pub fn npy_header(data: &[u8]) {
    let _ = try_npy_header(data);
}

/// [`npy_header`], reporting whether the header and the stream read were accepted.
pub fn try_npy_header(data: &[u8]) -> Outcome {
    init();
    let _input = alloc::CurrentInput::set(data);
    let name = Path::new("fuzz.npy");
    let header = scalegnn_npy::Header::parse(data, name).map_err(text);
    let stream = scalegnn_npy::read_from(&mut &data[..], name).map_err(text);
    if let Ok(raw) = &stream {
        let _ = raw.to_f32();
        let _ = raw.to_i64();
    }
    let dir = scratch().map_err(text)?;
    let p = dir.path().join("a.npy");
    std::fs::write(&p, data).map_err(text)?;
    let _ = scalegnn_npy::read_header(&p);
    let _ = scalegnn_npy::open_mmap::<f32>(&p);
    let _ = scalegnn_npy::open_mmap::<i64>(&p);
    let _ = scalegnn_npy::open_mmap::<u8>(&p);
    let _ = scalegnn_npy::read_array::<i32>(&p);
    let _ = scalegnn_npy::read_any_as_f32(&p);
    let _ = scalegnn_npy::read_any_as_i64(&p);
    header.and(stream.map(|_| ()))
}

/// The scipy-CSR `.npz` reader on the input as an archive.
pub fn npz(data: &[u8]) {
    let _ = try_npz(data);
}

/// [`npz`], reporting whether the archive was accepted.
pub fn try_npz(data: &[u8]) -> Outcome {
    init();
    let _input = alloc::CurrentInput::set(data);
    let dir = scratch().map_err(text)?;
    let p = dir.path().join("fuzz.npz");
    std::fs::write(&p, data).map_err(text)?;
    npz_reader::read(&p).map(|_| ()).map_err(text)
}

/// The TU files in input order between [`SEP`]s; the first two are required, the others
/// are written only when their part is present and not empty.
pub const TU_PARTS: &[&str] = &[
    "A",
    "graph_indicator",
    "node_labels",
    "node_attributes",
    "edge_labels",
    "edge_attributes",
    "graph_labels",
    "graph_attributes",
    "split",
];

/// The TUDataset reader on a directory whose files are the input's parts ([`TU_PARTS`]).
pub fn tu(data: &[u8]) {
    let _ = try_tu(data);
}

/// [`tu`], reporting whether the directory was accepted.
pub fn try_tu(data: &[u8]) -> Outcome {
    init();
    let _input = alloc::CurrentInput::set(data);
    let dir = scratch().map_err(text)?;
    let parts = parts(data);
    for (i, name) in TU_PARTS.iter().enumerate() {
        let part = parts.get(i).copied().unwrap_or_default();
        if i < 2 || !part.is_empty() {
            std::fs::write(dir.path().join(format!("FUZZ_{name}.txt")), part).map_err(text)?;
        }
    }
    tu_reader::read(dir.path(), Some("FUZZ"))
        .map(|_| ())
        .map_err(text)
}

/// Options of the CSV target, from the first input byte: bit 0 header; bits 1-2 delimiter
/// (from the extension, `,`, tab, space); bit 3 columns by name (`src`, `dst`); bit 4 a `.tsv`
/// edge file; bit 5 a `.tsv` feature file; bit 6 columns swapped (1, 0).
pub mod csv_flags {
    /// The first line of every file is a header (edges, features and labels).
    pub const HEADER: u8 = 1;
    /// Delimiter `,` (bits 1-2 = 1).
    pub const COMMA: u8 = 1 << 1;
    /// Delimiter tab (bits 1-2 = 2).
    pub const TAB: u8 = 2 << 1;
    /// Delimiter space (bits 1-2 = 3).
    pub const SPACE: u8 = 3 << 1;
    /// Columns `src` and `dst` by name.
    pub const NAMED: u8 = 1 << 3;
    /// The edge file is `edges.tsv`.
    pub const EDGES_TSV: u8 = 1 << 4;
    /// The feature file is `x.tsv`.
    pub const FEATURES_TSV: u8 = 1 << 5;
    /// Source column 1, destination column 0.
    pub const SWAPPED: u8 = 1 << 6;
    /// Ids may be strings (`--relabel`), node tables keyed by their column 0.
    pub const KEYED: u8 = 1 << 7;
}

/// The CSV edge-list reader with feature and label tables: first byte options
/// ([`csv_flags`]), then the edge list, features and labels between [`SEP`]s.
pub fn csv(data: &[u8]) {
    let _ = try_csv(data);
}

/// [`csv`], reporting whether the tables were accepted.
pub fn try_csv(data: &[u8]) -> Outcome {
    use scalegnn_data::readers::table::Column;
    init();
    let _input = alloc::CurrentInput::set(data);
    let (&flags, rest) = data.split_first().unwrap_or((&0, &[]));
    let parts = parts(rest);
    let dir = scratch().map_err(text)?;
    let edges = dir.path().join(if flags & csv_flags::EDGES_TSV != 0 {
        "edges.tsv"
    } else {
        "edges.csv"
    });
    std::fs::write(&edges, parts[0]).map_err(text)?;
    let mut o = csv_reader::CsvOptions::new(&edges);
    o.header = flags & csv_flags::HEADER != 0;
    o.features_header = o.header;
    o.labels_header = o.header;
    if flags & csv_flags::KEYED != 0 {
        o.string_ids = true;
        o.node_id_col = Some(Column::Index(0));
    }
    o.delimiter = match (flags >> 1) & 3 {
        0 => None,
        1 => Some(b','),
        2 => Some(b'\t'),
        _ => Some(b' '),
    };
    if flags & csv_flags::NAMED != 0 {
        o.src_col = Column::Name("src".into());
        o.dst_col = Column::Name("dst".into());
    } else if flags & csv_flags::SWAPPED != 0 {
        o.src_col = Column::Index(1);
        o.dst_col = Column::Index(0);
    }
    if let Some(x) = parts.get(1).filter(|p| !p.is_empty()) {
        let name = if flags & csv_flags::FEATURES_TSV != 0 {
            "x.tsv"
        } else {
            "x.csv"
        };
        let p = dir.path().join(name);
        std::fs::write(&p, x).map_err(text)?;
        o.features = Some(p);
    }
    if let Some(y) = parts.get(2).filter(|p| !p.is_empty()) {
        let p = dir.path().join("y.txt");
        std::fs::write(&p, y).map_err(text)?;
        o.labels = Some(p);
    }
    csv_reader::read(&o).map(|_| ()).map_err(text)
}

/// The Parquet readers on the input as a file: as an edge table (`src`, `dst`), as a feature
/// table (every numeric column), and as a node table placed by `id` with labels `label`.
pub fn parquet(data: &[u8]) {
    let _ = try_parquet(data);
}

/// [`parquet`], reporting whether the edge table was accepted.
pub fn try_parquet(data: &[u8]) -> Outcome {
    init();
    let _input = alloc::CurrentInput::set(data);
    let dir = scratch().map_err(text)?;
    let p = dir.path().join("t.parquet");
    std::fs::write(&p, data).map_err(text)?;
    let edges = pq::read(&pq::ParquetOptions::new(&p))
        .map(|_| ())
        .map_err(text);
    let _ = table::read_features(&p, false);
    let mut o = pq::ParquetOptions::new(&p);
    o.features = Some(p.clone());
    o.id_col = Some("id".into());
    o.label_col = Some("label".into());
    let _ = pq::read(&o);
    edges
}

/// Whether a panic was raised in the parquet crate's own code (its registry sources). The
/// Parquet reader runs the decoder under `catch_unwind` and turns such a panic into an error
/// naming the file: the decoder asserts things about the file it does not check first (e.g.
/// parquet 60.1 `decoder.rs:374`, "Decoder for dict should have been set", on a dictionary-
/// encoded page of a chunk without a dictionary page). The harnesses count these as contained
/// rather than as findings; a panic anywhere else, or an abort, still is one.
pub fn raised_in_parquet(location: Option<&std::panic::Location<'_>>) -> bool {
    location.is_some_and(|l| {
        let f = l.file();
        f.contains("/registry/src/") && f.contains("/parquet-")
    })
}

/// Parquet decoder panics contained so far ([`contain_parquet_panics`]).
pub static PARQUET_PANICS_CONTAINED: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0);

/// Wraps the current panic hook (libFuzzer's aborts) so panics [`raised_in_parquet`] are
/// only counted, and left to the reader's `catch_unwind`; every other panic goes to the
/// wrapped hook. Call it from the fuzz target, after libFuzzer has installed its hook.
pub fn contain_parquet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let inner = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if raised_in_parquet(info.location()) {
                PARQUET_PANICS_CONTAINED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            } else {
                inner(info);
            }
        }));
    });
}

/// `Dataset::open` on a directory of small valid arrays ([`fixtures`]) whose `manifest.json`
/// is the input: a node-level and a graph-level dataset, each with and without verification.
pub fn manifest(data: &[u8]) {
    let _ = try_manifest(data);
}

/// [`manifest`], reporting whether some dataset opened with verification (else the node
/// dataset's error).
pub fn try_manifest(data: &[u8]) -> Outcome {
    init();
    let _input = alloc::CurrentInput::set(data);
    let mut verified = Vec::new();
    fixtures::with_datasets(|dirs| {
        for dir in dirs {
            std::fs::write(dir.join("manifest.json"), data).map_err(text)?;
            for verify in [true, false] {
                let r = Dataset::open(dir, OpenOptions { verify });
                if let Ok(d) = &r {
                    let _ = d.info();
                }
                if verify {
                    verified.push(r.map(|_| ()).map_err(text));
                }
            }
        }
        Ok(())
    })?;
    match verified.iter().find(|r| r.is_ok()) {
        Some(_) => Ok(()),
        None => verified.into_iter().next().unwrap_or(Ok(())),
    }
}

/// Most elements of a parameter file the checkpoint target writes for a shape model.json
/// declares (larger shapes get a header alone, which the loader must refuse).
const MAX_PARAM_ELEMS: usize = 1 << 16;

/// Whether `name` is one plain file name the harness may create inside its scratch dir.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 200
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
}

/// Splits the checkpoint input: `model.json`, then after one [`SEP`] the parameter files,
/// each as a little-endian u32 length and that many bytes (binary, so no separator), the
/// last one cut short when the input ends first.
pub fn checkpoint_parts(data: &[u8]) -> (&[u8], Vec<&[u8]>) {
    let Some(at) = data.iter().position(|&b| b == SEP) else {
        return (data, Vec::new());
    };
    let (json, mut rest) = (&data[..at], &data[at + 1..]);
    let mut files = Vec::new();
    while rest.len() >= 4 {
        let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let body = &rest[4..];
        let n = n.min(body.len());
        files.push(&body[..n]);
        rest = &body[n..];
    }
    (json, files)
}

/// `Checkpoint::load` on a directory: the input holds `model.json` and parameter files
/// ([`checkpoint_parts`]); each parameter model.json lists gets the next file, or when they
/// run out a valid file of the declared shape (zeros), so mutations of model.json reach the
/// parameter loading too.
pub fn checkpoint(data: &[u8]) {
    let _ = try_checkpoint(data);
}

/// [`checkpoint`], reporting whether the checkpoint loaded.
pub fn try_checkpoint(data: &[u8]) -> Outcome {
    init();
    let _input = alloc::CurrentInput::set(data);
    let dir = scratch().map_err(text)?;
    let (json, files) = checkpoint_parts(data);
    std::fs::write(dir.path().join("model.json"), json).map_err(text)?;
    if let Ok(meta) = serde_json::from_slice::<scalegnn_train::Checkpoint>(json) {
        for (i, (name, rows, cols)) in meta.params.iter().enumerate() {
            if !plain_name(name) {
                continue;
            }
            let p = dir.path().join(format!("{name}.npy"));
            let bytes = match files.get(i) {
                Some(b) => b.to_vec(),
                None => fixtures::zeros_npy(*rows, *cols, MAX_PARAM_ELEMS),
            };
            std::fs::write(&p, bytes).map_err(text)?;
        }
    }
    scalegnn_train::Checkpoint::load(dir.path(), None)
        .map(|_| ())
        .map_err(text)
}

/// The run-config parser (`RunConfig::from_toml`, what `--config` and a run directory's
/// `config.toml` go through) and `check` on the input as TOML text; a configuration that
/// passes is resolved, written as TOML and read back, as a run directory records it and a
/// resumed run reads it.
pub fn config(data: &[u8]) {
    let _ = try_config(data);
}

/// [`config`], reporting whether the configuration was accepted (parsed, checked, and its
/// resolved form read back and checked again).
pub fn try_config(data: &[u8]) -> Outcome {
    init();
    let _input = alloc::CurrentInput::set(data);
    // Invalid UTF-8 becomes U+FFFD rather than an early refusal, so byte-level mutations
    // still reach the TOML parser (`RunConfig::load` itself refuses such a file).
    let toml = String::from_utf8_lossy(data);
    let c = scalegnn_train::RunConfig::from_toml(&toml).map_err(text)?;
    c.check().map_err(text)?;
    let written = c.resolved().to_toml();
    let back = scalegnn_train::RunConfig::from_toml(&written)
        .map_err(|e| format!("the resolved config.toml does not parse: {e}\n{written}"))?;
    back.check()
        .map_err(|e| format!("the resolved config.toml is refused: {e}\n{written}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_parts_split_on_lengths_and_cut_the_last() {
        assert_eq!(checkpoint_parts(b"{}"), (&b"{}"[..], vec![]));
        let mut d = b"{}\xff".to_vec();
        d.extend_from_slice(&2u32.to_le_bytes());
        d.extend_from_slice(b"\xff\xff");
        d.extend_from_slice(&9u32.to_le_bytes());
        d.extend_from_slice(b"abc");
        let (json, files) = checkpoint_parts(&d);
        assert_eq!(json, b"{}");
        assert_eq!(files, vec![&b"\xff\xff"[..], &b"abc"[..]]);
    }

    #[test]
    fn only_plain_names_are_written() {
        assert!(plain_name("layer0.weight"));
        for bad in ["", ".", "..", "a/b", "../x", "a\\b", "a\0b"] {
            assert!(!plain_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn parquet_panics_are_told_by_their_location() {
        assert!(!raised_in_parquet(Some(std::panic::Location::caller())));
        assert!(!raised_in_parquet(None));
    }
}
