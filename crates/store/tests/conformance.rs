//! Runs the shared conformance suite against every store kind, codec and read mode.

use std::path::Path;

use scalegnn_store::conformance::{check_store, random_features, Tolerance};
use scalegnn_store::{
    open_store, open_store_with, write_store, Codec, FeatureStore, IterRows, MmapStore, NpyRows,
    SqliteRead, SqliteStore, StoreError, StoreOptions,
};

const N: usize = 5000;
const DIM: usize = 24;

/// A dataset dir holding `x.npy` with the suite's features.
fn dataset() -> (tempfile::TempDir, Vec<f32>) {
    let dir = tempfile::tempdir().unwrap();
    let x = random_features(N, DIM, 42);
    scalegnn_npy::write_array(&dir.path().join("x.npy"), &[N, DIM], &x).unwrap();
    (dir, x)
}

fn build(dir: &Path, kind: &str, codec: Codec) -> Box<dyn FeatureStore> {
    let src = NpyRows::open(&dir.join("x.npy")).unwrap();
    write_store(dir, kind, codec, &src).unwrap();
    open_store(dir, kind, codec).unwrap()
}

#[test]
fn mmap_store_conforms_for_every_codec() {
    let (dir, x) = dataset();
    for codec in Codec::ALL {
        let store = build(dir.path(), "mmap", codec);
        assert_eq!(store.kind(), "mmap");
        check_store(&*store, &x, &Tolerance::for_codec(codec, &x, DIM));
    }
}

#[test]
fn direct_io_mmap_store_conforms_for_every_codec_and_merge_setting() {
    let (dir, x) = dataset();
    let direct = StoreOptions {
        direct_io: true,
        ..StoreOptions::default()
    };
    for codec in Codec::ALL {
        build(dir.path(), "mmap", codec);
        let tol = Tolerance::for_codec(codec, &x, DIM);
        // The default merge, through open_store_with as the CLI opens it.
        let store = open_store_with(dir.path(), "mmap", codec, &direct).unwrap();
        assert_eq!(store.kind(), "mmap");
        check_store(&*store, &x, &tol);
        // One 4 KiB block per read (no gap read through), and everything merged into a few
        // long reads: both must give the same rows.
        for (gap, max_run) in [(0, 4096), (1 << 20, 1 << 16), (8192, 3 * 4096)] {
            let s = MmapStore::open(dir.path(), codec)
                .unwrap()
                .with_direct_io()
                .unwrap()
                .with_read_merge(gap, max_run);
            assert!(s.direct_io().is_some());
            check_store(&s, &x, &tol);
        }
    }
}

#[test]
fn direct_io_reads_whole_blocks_and_merges_neighbours() {
    let (dir, _) = dataset();
    build(dir.path(), "mmap", Codec::F32);
    let row = (DIM * 4) as u64;
    let open = |gap: u64| {
        MmapStore::open(dir.path(), Codec::F32)
            .unwrap()
            .with_direct_io()
            .unwrap()
            .with_read_merge(gap, 1 << 20)
    };
    // Rows 0 and 1000 are 96 kB apart: without merging, two 4 KiB reads (or one more block
    // when a row straddles a boundary); merging a 128 KiB gap reads everything between.
    let ids = [0u32, 1000];
    let mut out = vec![0f32; 2 * DIM];
    let apart = open(0);
    apart.gather(&ids, &mut out).unwrap();
    assert!(apart.bytes_read() <= 4 * 4096, "{}", apart.bytes_read());
    let merged = open(128 * 1024);
    merged.gather(&ids, &mut out).unwrap();
    assert!(merged.bytes_read() >= 1000 * row, "{}", merged.bytes_read());
}

#[test]
fn direct_io_is_refused_for_the_postgres_store() {
    let (dir, _) = dataset();
    let opts = StoreOptions {
        direct_io: true,
        ..StoreOptions::default()
    };
    // Refused before any server is contacted: the rows live on the server, not in a file.
    match open_store_with(dir.path(), "postgres", Codec::F32, &opts) {
        Err(e @ StoreError::DirectIoUnsupported(_)) => {
            assert!(e.to_string().contains("postgres"), "{e}")
        }
        other => panic!("expected a direct-I/O refusal, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn direct_io_sqlite_store_conforms_for_every_codec_and_read_mode() {
    let (dir, x) = dataset();
    let direct = StoreOptions {
        direct_io: true,
        ..StoreOptions::default()
    };
    for codec in Codec::ALL {
        build(dir.path(), "sqlite", codec);
        let tol = Tolerance::for_codec(codec, &x, DIM);
        let store = open_store_with(dir.path(), "sqlite", codec, &direct).unwrap();
        assert_eq!(store.kind(), "sqlite");
        check_store(&*store, &x, &tol);
        let in_array = SqliteStore::open(dir.path(), codec)
            .unwrap()
            .with_read(SqliteRead::InArray)
            .with_direct_io()
            .unwrap();
        assert!(in_array.direct_io().is_some());
        check_store(&in_array, &x, &tol);
    }
    // Direct reads come in whole 4 KiB blocks through the VFS and are counted as such; the
    // plain store counts row bytes (the kernel reads for it).
    build(dir.path(), "sqlite", Codec::F32);
    let mut one = vec![0f32; DIM];
    let plain = SqliteStore::open(dir.path(), Codec::F32).unwrap();
    plain.gather(&[N as u32 / 2], &mut one).unwrap();
    assert_eq!(plain.bytes_read(), (DIM * 4) as u64);
    let direct = SqliteStore::open(dir.path(), Codec::F32)
        .unwrap()
        .with_direct_io()
        .unwrap();
    direct.gather(&[N as u32 / 2], &mut one).unwrap();
    let b = direct.bytes_read();
    assert!(b >= 4096 && b.is_multiple_of(4096), "{b} bytes");
}

#[test]
fn sqlite_store_conforms_for_every_codec_and_read_mode() {
    let (dir, x) = dataset();
    for codec in Codec::ALL {
        let store = build(dir.path(), "sqlite", codec);
        assert_eq!(store.kind(), "sqlite");
        let tol = Tolerance::for_codec(codec, &x, DIM);
        check_store(&*store, &x, &tol);
        let in_array = SqliteStore::open(dir.path(), codec)
            .unwrap()
            .with_read(SqliteRead::InArray);
        check_store(&in_array, &x, &tol);
        let no_mmap = SqliteStore::open(dir.path(), codec)
            .unwrap()
            .with_mmap_bytes(0);
        check_store(&no_mmap, &x, &tol);
    }
}

#[test]
fn iterator_source_writes_the_same_store() {
    let (dir, x) = dataset();
    // Uneven chunks of whole rows, produced afresh on every pass.
    let src = IterRows::new(N, DIM, || {
        x.chunks(DIM * 777)
            .map(|c| Ok(c.to_vec()))
            .collect::<Vec<_>>()
    });
    for kind in ["mmap", "sqlite"] {
        write_store(dir.path(), kind, Codec::U8, &src).unwrap();
        let store = open_store(dir.path(), kind, Codec::U8).unwrap();
        check_store(&*store, &x, &Tolerance::for_codec(Codec::U8, &x, DIM));
    }
}

#[test]
fn open_store_rejects_unknown_kinds_and_absent_stores() {
    let (dir, _) = dataset();
    let e = open_store(dir.path(), "parquet", Codec::F32).err().unwrap();
    assert!(e.to_string().contains("parquet"), "{e}");
    let e = open_store(dir.path(), "mmap", Codec::F16).err().unwrap();
    assert!(e.to_string().contains("x.f16.npy"), "{e}");
    let e = open_store(dir.path(), "sqlite", Codec::F32).err().unwrap();
    assert!(e.to_string().contains("x.sqlite"), "{e}");
}

#[test]
fn mmap_files_are_plain_numpy_arrays() {
    use scalegnn_npy::{read_header, DType};
    let (dir, _) = dataset();
    let src = NpyRows::open(&dir.path().join("x.npy")).unwrap();
    write_store(dir.path(), "mmap", Codec::F16, &src).unwrap();
    write_store(dir.path(), "mmap", Codec::U8, &src).unwrap();
    let h = read_header(&dir.path().join("x.f16.npy")).unwrap();
    assert_eq!((h.dtype, h.shape), (DType::F16, vec![N, DIM]));
    let h = read_header(&dir.path().join("x.u8.npy")).unwrap();
    assert_eq!((h.dtype, h.shape), (DType::U8, vec![N, DIM]));
    let h = read_header(&dir.path().join("x.scale.npy")).unwrap();
    assert_eq!((h.dtype, h.shape), (DType::F32, vec![2, DIM]));
    // The f32 store over its own x.npy writes nothing.
    write_store(dir.path(), "mmap", Codec::F32, &src).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["x.f16.npy", "x.npy", "x.scale.npy", "x.u8.npy"]);
    assert_eq!(
        scalegnn_store::store_files("mmap", Codec::U8).unwrap(),
        ["x.u8.npy", "x.scale.npy"]
    );
}

#[test]
fn sparse_store_conforms_and_keeps_only_the_non_zeros() {
    let (dir, x) = dataset();
    // Dense rows (every value non-zero but column 1's constant): the same answers as mmap.
    let store = build(dir.path(), "sparse", Codec::F32);
    assert_eq!(store.kind(), "sparse");
    check_store(&*store, &x, &Tolerance::Exact);
    // Mostly zeros, some rows empty, the last row's only value in the last column.
    let mut sparse = x.clone();
    for (k, v) in sparse.iter_mut().enumerate() {
        if k % 7 != 0 || (k / DIM) % 10 == 3 {
            *v = 0.0;
        }
    }
    sparse[N * DIM - 1] = -2.5;
    scalegnn_npy::write_array(&dir.path().join("x.npy"), &[N, DIM], &sparse).unwrap();
    let store = build(dir.path(), "sparse", Codec::F32);
    check_store(&*store, &sparse, &Tolerance::Exact);
    let nnz = sparse.iter().filter(|v| **v != 0.0).count();
    let s = scalegnn_store::SparseStore::open(dir.path(), Codec::F32).unwrap();
    assert_eq!(s.nnz(), nnz);
    let on_disk: u64 = scalegnn_store::SPARSE_FILES
        .iter()
        .map(|f| std::fs::metadata(dir.path().join(f)).unwrap().len())
        .sum();
    let dense = (N * DIM * 4) as u64;
    assert!(
        on_disk < dense / 2,
        "{on_disk} bytes on disk for {nnz} of {} values ({dense} dense)",
        N * DIM
    );
    // The sparse store is a source for another store, value for value.
    let rows = scalegnn_store::StoreRows::new(&s);
    write_store(dir.path(), "sqlite", Codec::F32, &rows).unwrap();
    let back = open_store(dir.path(), "sqlite", Codec::F32).unwrap();
    check_store(&*back, &sparse, &Tolerance::Exact);
    // Only f32, and no direct I/O.
    for codec in [Codec::F16, Codec::U8] {
        let src = NpyRows::open(&dir.path().join("x.npy")).unwrap();
        let e = write_store(dir.path(), "sparse", codec, &src).unwrap_err();
        assert!(e.to_string().contains("f32"), "{e}");
    }
    let direct = StoreOptions {
        direct_io: true,
        ..StoreOptions::default()
    };
    assert!(matches!(
        open_store_with(dir.path(), "sparse", Codec::F32, &direct),
        Err(StoreError::DirectIoUnsupported(_))
    ));
}
