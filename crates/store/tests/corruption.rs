//! Damaged or invalid inputs give errors naming the file, row or column, never a panic or
//! silently wrong rows.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use scalegnn_store::conformance::random_features;
use scalegnn_store::{
    open_store, open_store_with, write_store, Codec, FeatureStore, MmapStore, NpyRows, SliceRows,
    SqliteStore, StoreError, StoreOptions,
};

const N: usize = 3000;
const DIM: usize = 16;

fn dataset() -> (tempfile::TempDir, Vec<f32>) {
    let dir = tempfile::tempdir().unwrap();
    let x = random_features(N, DIM, 9);
    scalegnn_npy::write_array(&dir.path().join("x.npy"), &[N, DIM], &x).unwrap();
    (dir, x)
}

fn write(dir: &Path, kind: &str, codec: Codec) {
    let src = NpyRows::open(&dir.join("x.npy")).unwrap();
    write_store(dir, kind, codec, &src).unwrap();
}

fn truncate(path: &Path, keep: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(keep)
        .unwrap();
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Opens and gathers every row: the error, or the rows read.
fn open_and_gather_all(dir: &Path, kind: &str, codec: Codec) -> Result<Vec<f32>, StoreError> {
    gather_all(open_store(dir, kind, codec)?)
}

/// The same through direct I/O (mmap or sqlite).
fn open_direct_and_gather_all(
    dir: &Path,
    kind: &str,
    codec: Codec,
) -> Result<Vec<f32>, StoreError> {
    let opts = StoreOptions {
        direct_io: true,
        ..StoreOptions::default()
    };
    gather_all(open_store_with(dir, kind, codec, &opts)?)
}

fn gather_all(store: Box<dyn FeatureStore>) -> Result<Vec<f32>, StoreError> {
    let ids: Vec<u32> = (0..store.num_nodes() as u32).collect();
    let mut out = vec![0f32; ids.len() * store.dim()];
    store.gather(&ids, &mut out)?;
    Ok(out)
}

#[test]
fn truncated_npy_files_fail_to_open_naming_the_file() {
    let (dir, _) = dataset();
    write(dir.path(), "mmap", Codec::F16);
    write(dir.path(), "mmap", Codec::U8);
    for (codec, file) in [
        (Codec::F32, "x.npy"),
        (Codec::F16, "x.f16.npy"),
        (Codec::U8, "x.u8.npy"),
        (Codec::U8, "x.scale.npy"),
    ] {
        let p = dir.path().join(file);
        let saved = std::fs::read(&p).unwrap();
        truncate(&p, len(&p) - 5);
        let e = MmapStore::open(dir.path(), codec).err().unwrap();
        assert!(e.to_string().contains(file), "{file}: {e}");
        std::fs::write(&p, saved).unwrap();
        assert!(MmapStore::open(dir.path(), codec).is_ok());
    }
}

#[test]
fn npy_truncated_after_a_direct_io_open_is_an_error_naming_the_file() {
    for codec in Codec::ALL {
        // A fresh directory each time: the f32 store's file is the source of the others.
        let (dir, _) = dataset();
        write(dir.path(), "mmap", codec);
        let path = dir.path().join(scalegnn_store::mmap_file(codec));
        // Direct reads never touch the map, so shrinking the file under it is safe here.
        let store = MmapStore::open(dir.path(), codec)
            .unwrap()
            .with_direct_io()
            .unwrap();
        let full = len(&path);
        truncate(&path, full - 100);
        let mut out = vec![0f32; 2 * DIM];
        let e = store.gather(&[0, (N - 1) as u32], &mut out).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
        assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
        assert!(e.to_string().contains("truncated"), "{e}");
        // Rows before the cut are still served.
        let mut one = vec![0f32; DIM];
        store.gather(&[0], &mut one).unwrap();
    }
}

#[test]
fn sqlite_truncated_after_a_direct_io_open_is_an_error_naming_the_file() {
    let (dir, _) = dataset();
    write(dir.path(), "sqlite", Codec::F32);
    let path = dir.path().join("x.sqlite");
    let store = SqliteStore::open(dir.path(), Codec::F32)
        .unwrap()
        .with_direct_io()
        .unwrap();
    let full = len(&path);
    truncate(&path, full / 2);
    let ids: Vec<u32> = (0..N as u32).collect();
    let mut out = vec![0f32; N * DIM];
    let e = store.gather(&ids, &mut out).unwrap_err();
    assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
}

#[test]
fn missing_or_bad_scale_file_is_an_error_naming_it() {
    let (dir, _) = dataset();
    write(dir.path(), "mmap", Codec::U8);
    let p = dir.path().join("x.scale.npy");
    std::fs::remove_file(&p).unwrap();
    let e = MmapStore::open(dir.path(), Codec::U8).err().unwrap();
    assert!(e.to_string().contains("x.scale.npy"), "{e}");
    // Wrong shape.
    scalegnn_npy::write_array(&p, &[3, DIM], &[0f32; 3 * DIM]).unwrap();
    let e = MmapStore::open(dir.path(), Codec::U8).err().unwrap();
    assert!(
        matches!(e, StoreError::BadShape { .. }) && e.to_string().contains("x.scale.npy"),
        "{e}"
    );
    // Negative step.
    let mut s = vec![0f32; 2 * DIM];
    s[DIM + 3] = -1.0;
    scalegnn_npy::write_array(&p, &[2, DIM], &s).unwrap();
    let e = MmapStore::open(dir.path(), Codec::U8).err().unwrap();
    assert!(e.to_string().contains("column 3"), "{e}");
}

#[test]
fn one_dimensional_x_is_a_shape_error() {
    let dir = tempfile::tempdir().unwrap();
    scalegnn_npy::write_array(&dir.path().join("x.npy"), &[10], &[0f32; 10]).unwrap();
    let e = MmapStore::open(dir.path(), Codec::F32).err().unwrap();
    assert!(
        matches!(e, StoreError::BadShape { .. }) && e.to_string().contains("x.npy"),
        "{e}"
    );
}

#[test]
fn truncated_sqlite_is_an_error_naming_the_file() {
    let (dir, _) = dataset();
    write(dir.path(), "sqlite", Codec::F32);
    let p = dir.path().join("x.sqlite");
    let full = std::fs::read(&p).unwrap();
    for keep in [
        full.len() as u64 / 2,
        full.len() as u64 - 4096,
        full.len() as u64 - 100,
        50,
        0,
    ] {
        std::fs::write(&p, &full).unwrap();
        truncate(&p, keep);
        let e = open_and_gather_all(dir.path(), "sqlite", Codec::F32)
            .err()
            .unwrap_or_else(|| panic!("truncated to {keep} bytes yet every row was read"));
        assert!(e.to_string().contains("x.sqlite"), "{keep}: {e}");
    }
}

#[test]
fn overwritten_sqlite_bytes_are_detected() {
    let (dir, _) = dataset();
    for codec in Codec::ALL {
        write(dir.path(), "sqlite", codec);
        let p = dir.path().join("x.sqlite");
        let full = std::fs::read(&p).unwrap();
        let intact = open_and_gather_all(dir.path(), "sqlite", codec).unwrap();
        let mut noticed = 0;
        // Garbage at many places: page headers, cell pointers, row payloads, the last page.
        let mut offsets: Vec<u64> = (1..60).map(|k| full.len() as u64 * k / 60).collect();
        offsets.extend([4096, 4096 + 8, full.len() as u64 - 64]);
        for &off in &offsets {
            std::fs::write(&p, &full).unwrap();
            let mut f = OpenOptions::new().write(true).open(&p).unwrap();
            f.seek(SeekFrom::Start(off)).unwrap();
            f.write_all(&[0xA5; 48]).unwrap();
            drop(f);
            // Either an error naming the file, or (garbage in free space) exactly the right
            // rows; the direct-I/O reader must notice exactly what the plain one does.
            let plain = open_and_gather_all(dir.path(), "sqlite", codec);
            let direct = open_direct_and_gather_all(dir.path(), "sqlite", codec);
            assert_eq!(plain.is_ok(), direct.is_ok(), "{codec} at {off}");
            match (plain, direct) {
                (Err(e), Err(d)) => {
                    assert!(e.to_string().contains("x.sqlite"), "{codec} at {off}: {e}");
                    assert!(d.to_string().contains("x.sqlite"), "{codec} at {off}: {d}");
                    noticed += 1;
                }
                (Ok(rows), Ok(d)) => assert!(
                    rows.iter()
                        .chain(&d)
                        .zip(intact.iter().chain(&intact))
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{codec}: 48 bytes overwritten at {off} gave wrong rows without an error"
                ),
                _ => unreachable!(),
            }
        }
        // Most of the file is row payload, so most overwrites must be caught (about 85% were
        // over 500 offsets; the rest hit free space and changed no row).
        let total = offsets.len();
        assert!(
            noticed * 10 >= total * 7,
            "{codec}: only {noticed} of {total} overwrites noticed"
        );
        std::fs::write(&p, &full).unwrap();
        assert!(open_and_gather_all(dir.path(), "sqlite", codec).is_ok());
    }
}

#[test]
fn missing_sqlite_row_names_the_id() {
    let (dir, _) = dataset();
    write(dir.path(), "sqlite", Codec::F16);
    let p = dir.path().join("x.sqlite");
    let conn = rusqlite::Connection::open(&p).unwrap();
    conn.execute("DELETE FROM features WHERE id = 1234", [])
        .unwrap();
    drop(conn);
    let store = SqliteStore::open(dir.path(), Codec::F16).unwrap();
    let mut out = vec![0f32; 3 * DIM];
    let e = store.gather(&[5, 1234, 6], &mut out).unwrap_err();
    assert!(matches!(e, StoreError::MissingRow { id: 1234, .. }), "{e}");
    assert!(
        e.to_string().contains("1234") && e.to_string().contains("x.sqlite"),
        "{e}"
    );
    // The missing row inside, last and first of an ascending batch, and in a large batch
    // gathered in sorted chunks.
    for ids in [
        (1230..1240).collect::<Vec<u32>>(),
        (1225..=1234).collect(),
        (1234..1240).collect(),
        (0..N as u32).rev().collect(),
    ] {
        let mut out = vec![0f32; ids.len() * DIM];
        let e = store.gather(&ids, &mut out).unwrap_err();
        assert!(matches!(e, StoreError::MissingRow { id: 1234, .. }), "{e}");
    }
    let in_array = store.with_read(scalegnn_store::SqliteRead::InArray);
    let e = in_array.gather(&[5, 1234, 6], &mut out).unwrap_err();
    assert!(matches!(e, StoreError::MissingRow { id: 1234, .. }), "{e}");
}

#[test]
fn sqlite_codec_mismatch_is_an_error() {
    let (dir, _) = dataset();
    write(dir.path(), "sqlite", Codec::U8);
    let e = SqliteStore::open(dir.path(), Codec::F32).err().unwrap();
    assert!(matches!(e, StoreError::CodecMismatch { .. }), "{e}");
    let p = dir.path().join("x.sqlite");
    let s = SqliteStore::open_file(&p, None).unwrap();
    assert_eq!(s.codec(), Codec::U8);
    s.check_integrity().unwrap();
    // WAL mode (header bytes 18-19), and neither the writer nor immutable readers leave
    // -wal/-shm files beside it.
    assert_eq!(&std::fs::read(&p).unwrap()[18..20], &[2, 2]);
    let mut out = vec![0f32; DIM];
    s.gather(&[7], &mut out).unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn non_finite_features_fail_at_write_naming_node_and_column() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut x = random_features(100, 8, 1);
        x[37 * 8 + 5] = bad;
        let src = SliceRows::new(&x, 8).unwrap();
        for kind in ["mmap", "sqlite"] {
            for codec in Codec::ALL {
                let dir = tempfile::tempdir().unwrap();
                let e = write_store(dir.path(), kind, codec, &src).unwrap_err();
                assert!(
                    matches!(
                        e,
                        StoreError::NonFinite {
                            row: 37,
                            col: 5,
                            ..
                        }
                    ),
                    "{kind} {codec}: {e}"
                );
                assert!(e.to_string().contains("node 37, column 5"), "{e}");
                // Nothing half-written is left behind.
                let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
                assert!(left.is_empty(), "{kind} {codec}: left {left:?}");
            }
        }
    }
    // An f32 store over its own x.npy is checked too.
    let (dir, mut x) = dataset();
    x[12 * DIM] = f32::NAN;
    scalegnn_npy::write_array(&dir.path().join("x.npy"), &[N, DIM], &x).unwrap();
    let src = NpyRows::open(&dir.path().join("x.npy")).unwrap();
    let e = write_store(dir.path(), "mmap", Codec::F32, &src).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NonFinite {
                row: 12,
                col: 0,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn f16_overflow_fails_at_write() {
    let mut x = random_features(10, 4, 1);
    x[9 * 4 + 2] = 1e6;
    let src = SliceRows::new(&x, 4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = write_store(dir.path(), "mmap", Codec::F16, &src).unwrap_err();
    assert!(
        matches!(e, StoreError::OutOfRange { row: 9, col: 2, .. }),
        "{e}"
    );
}

#[test]
fn bad_sources_are_errors() {
    assert!(SliceRows::new(&[1.0; 7], 2).is_err());
    let dir = tempfile::tempdir().unwrap();
    let short = scalegnn_store::IterRows::new(10, 2, || vec![Ok(vec![0.0f32; 8])]);
    let e = write_store(dir.path(), "sqlite", Codec::F32, &short).unwrap_err();
    assert!(matches!(e, StoreError::BadSource(_)), "{e}");
    let e = write_store(dir.path(), "hdf5", Codec::F32, &short).unwrap_err();
    assert!(matches!(e, StoreError::UnknownKind(_)), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Builds `x.sqlite` by hand with the given schema SQL and the meta rows scalegnn writes.
fn crafted_sqlite(dir: &Path, schema: &str) {
    let p = dir.join("x.sqlite");
    let _ = std::fs::remove_file(&p);
    let c = rusqlite::Connection::open(&p).unwrap();
    c.execute_batch(schema).unwrap();
}

#[test]
fn sqlite_meta_or_features_that_run_their_own_sql_are_refused() {
    let (dir, _) = dataset();
    let meta_rows = "INSERT INTO m VALUES ('format','scalegnn-sqlite-features/1'),('num_nodes',3000),('dim',16),('codec','f32');";
    // A view whose every read runs a recursive CTE that never ends; one that allocates 900 MB
    // per row; a generated column doing the same inside a table.
    let cases = [
        format!("CREATE TABLE m(key TEXT PRIMARY KEY, value NOT NULL); {meta_rows}
                 CREATE VIEW meta AS WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM r) SELECT 'format' AS key, count(*) AS value FROM r;
                 CREATE TABLE features(id INTEGER PRIMARY KEY, v BLOB NOT NULL, xxh3 INTEGER NOT NULL);"),
        format!("CREATE TABLE meta(key TEXT PRIMARY KEY, value NOT NULL); {}
                 CREATE VIEW features AS SELECT 0 AS id, zeroblob(900000000) AS v, 0 AS xxh3;",
                 meta_rows.replace("INTO m", "INTO meta")),
        format!("CREATE TABLE meta(key TEXT PRIMARY KEY, value NOT NULL); {}
                 CREATE TABLE features(id INTEGER PRIMARY KEY, w INTEGER, v BLOB GENERATED ALWAYS AS (zeroblob(900000000)), xxh3 INTEGER NOT NULL);",
                 meta_rows.replace("INTO m", "INTO meta")),
    ];
    for (k, schema) in cases.iter().enumerate() {
        crafted_sqlite(dir.path(), schema);
        let e = match open_and_gather_all(dir.path(), "sqlite", Codec::F32) {
            Ok(_) => panic!("case {k}: a crafted schema opened"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("x.sqlite") && (e.contains("not a table") || e.contains("not laid out")),
            "case {k}: {e}"
        );
    }
}

#[test]
fn damaged_sparse_files_are_errors_naming_the_file() {
    let (dir, _) = dataset();
    let d = dir.path();
    let fresh = || write(d, "sparse", Codec::F32);
    let refused = |file: &str, needle: &str| {
        let e = match open_and_gather_all(d, "sparse", Codec::F32) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{file} damaged ({needle}) but the store opened"),
        };
        assert!(e.contains(file) && e.contains(needle), "{e}");
    };
    // Truncated files.
    for file in scalegnn_store::SPARSE_FILES {
        fresh();
        let p = d.join(file);
        truncate(&p, len(&p) - 4);
        refused(file, "");
    }
    // A column past the width, a row that ends before it starts, a NaN, a wrong node count.
    let nnz = N * DIM;
    fresh();
    let mut cols: Vec<u32> = scalegnn_npy::read_array(&d.join("x.csr.indices.npy"))
        .unwrap()
        .to_vec();
    cols[nnz / 2] = DIM as u32;
    scalegnn_npy::write_array(&d.join("x.csr.indices.npy"), &[nnz], &cols).unwrap();
    refused("x.csr.indices.npy", &format!("column {DIM}"));
    fresh();
    let mut ptr: Vec<u64> = scalegnn_npy::read_array(&d.join("x.csr.indptr.npy"))
        .unwrap()
        .to_vec();
    ptr.swap(10, 11);
    scalegnn_npy::write_array(&d.join("x.csr.indptr.npy"), &[N + 1], &ptr).unwrap();
    refused("x.csr.indptr.npy", "row 10");
    fresh();
    let mut vals: Vec<f32> = scalegnn_npy::read_array(&d.join("x.csr.data.npy"))
        .unwrap()
        .to_vec();
    vals[3] = f32::NAN;
    scalegnn_npy::write_array(&d.join("x.csr.data.npy"), &[nnz], &vals).unwrap();
    refused("x.csr.data.npy", "NaN");
    fresh();
    scalegnn_npy::write_array(
        &d.join("x.csr.shape.npy"),
        &[2],
        &[N as u64 + 1, DIM as u64],
    )
    .unwrap();
    refused("x.csr.indptr.npy", "shape");
    // Writing refuses a NaN, naming node and column, and leaves no file behind.
    std::fs::remove_dir_all(d).unwrap();
    std::fs::create_dir_all(d).unwrap();
    let mut x = random_features(N, DIM, 9);
    x[5 * DIM + 2] = f32::INFINITY;
    let e = write_store(d, "sparse", Codec::F32, &SliceRows::new(&x, DIM).unwrap()).unwrap_err();
    assert!(e.to_string().contains("node 5, column 2"), "{e}");
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 0, "no file left");
}
