//! `scalegnn ingest --store/--codec` and `scalegnn store`: features moved into another store,
//! recorded in the manifest (kind, codec, checksummed files), and read back by `train`; and
//! the refusals: unknown kinds, NaN features, postgres without a server URL.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scalegnn"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("spawn scalegnn")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_ok(o: &Output) {
    assert!(o.status.success(), "failed: {}", stderr(o));
}

fn assert_fails(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure; stderr: {err}");
    assert!(
        !err.contains("panicked"),
        "panic instead of an error: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "error should mention {n:?}: {err}");
    }
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn tiny(root: &Path, name: &str) -> PathBuf {
    let out = root.join(name);
    assert_ok(&run(&["synth", "--preset", "tiny", "--out", p(&out)]));
    out
}

fn manifest(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Asserts the manifest names `kind`/`codec` and lists `files` with their true sizes.
fn assert_recorded(dir: &Path, kind: &str, codec: &str, files: &[&str]) {
    let m = manifest(dir);
    assert_eq!(m["feature_store"]["kind"], kind, "{m}");
    assert_eq!(m["feature_store"]["codec"], codec, "{m}");
    for f in files.iter().chain(&["x.npy"]) {
        let len = std::fs::metadata(dir.join(f)).unwrap().len();
        assert_eq!(m["files"][f]["bytes"], len, "{f}: {m}");
        assert_eq!(
            m["files"][f]["xxh3"],
            scalegnn_data::xxh3_file(&dir.join(f)).unwrap(),
            "{f}"
        );
    }
}

fn train(ds: &Path, out: &Path) -> Output {
    run(&[
        "train",
        p(ds),
        "--loader",
        "neighbor",
        "--fanouts",
        "5,5",
        "--epochs",
        "2",
        "--out",
        p(out),
    ])
}

/// A NumPy input directory (edge_index.npy, x.npy, y.npy, splits) made from a synth dataset.
fn npy_input(ds: &Path, out: &Path) {
    use scalegnn_npy::{read_any_as_i64, write_array};
    std::fs::create_dir(out).unwrap();
    let (indptr, _) = read_any_as_i64(&ds.join("indptr.npy")).unwrap();
    let (indices, _) = read_any_as_i64(&ds.join("indices.npy")).unwrap();
    let n = indptr.len() - 1;
    let mut dst = Vec::with_capacity(indices.len());
    for (v, w) in indptr.windows(2).enumerate() {
        dst.extend(std::iter::repeat_n(v as i64, (w[1] - w[0]) as usize));
    }
    let mut ei = indices.clone();
    ei.extend(dst);
    write_array(&out.join("edge_index.npy"), &[2, indices.len()], &ei).unwrap();
    for f in [
        "x.npy",
        "y.npy",
        "train_idx.npy",
        "val_idx.npy",
        "test_idx.npy",
    ] {
        std::fs::copy(ds.join(f), out.join(f)).unwrap();
    }
    std::fs::write(out.join("meta.json"), format!("{{\"num_nodes\": {n}}}")).unwrap();
}

#[test]
fn ingest_into_sqlite_u8_then_train() {
    let root = tempfile::tempdir().unwrap();
    let synth = tiny(root.path(), "synth");
    let input = root.path().join("input");
    npy_input(&synth, &input);
    let ds = root.path().join("ds");
    assert_ok(&run(&[
        "ingest",
        "--format",
        "npy",
        p(&input),
        "--out",
        p(&ds),
        "--store",
        "sqlite",
        "--codec",
        "u8",
    ]));
    assert_recorded(&ds, "sqlite", "u8", &["x.sqlite"]);
    assert_ok(&train(&ds, &root.path().join("run")));
    assert!(root.path().join("run/metrics.jsonl").exists());
    // The manifest's checksum covers the store: a changed byte is caught before training.
    let db = ds.join("x.sqlite");
    let mut bytes = std::fs::read(&db).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&db, bytes).unwrap();
    assert_fails(
        &train(&ds, &root.path().join("run2")),
        &["x.sqlite", "checksum"],
    );
}

#[test]
fn store_converts_in_place_and_train_reads_it() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "ds");
    assert_recorded(&ds, "mmap", "f32", &[]);
    assert_ok(&run(&["store", p(&ds), "--store", "mmap", "--codec", "u8"]));
    assert_recorded(&ds, "mmap", "u8", &["x.u8.npy", "x.scale.npy"]);
    assert_ok(&train(&ds, &root.path().join("run_u8")));
    assert_ok(&run(&["store", p(&ds), "--store", "sqlite"]));
    assert_recorded(&ds, "sqlite", "f32", &["x.sqlite", "x.u8.npy"]);
    assert_ok(&train(&ds, &root.path().join("run_sqlite")));
    let info = run(&["info", p(&ds)]);
    assert_ok(&info);
    assert!(
        String::from_utf8_lossy(&info.stdout).contains("sqlite"),
        "{}",
        String::from_utf8_lossy(&info.stdout)
    );
    // No temp files left behind.
    let hidden: Vec<_> = std::fs::read_dir(&ds)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

#[test]
fn unknown_store_kinds_and_codecs_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "ds");
    assert_fails(
        &run(&["store", p(&ds), "--store", "parquet"]),
        &["parquet", "mmap, sqlite, postgres"],
    );
    assert_fails(
        &run(&["store", p(&ds), "--store", "sqlite", "--codec", "f64"]),
        &["f64", "f32, f16, u8"],
    );
    let input = root.path().join("input");
    npy_input(&ds, &input);
    let out = root.path().join("out");
    assert_fails(
        &run(&[
            "ingest",
            "--format",
            "npy",
            p(&input),
            "--out",
            p(&out),
            "--store",
            "hdf5",
        ]),
        &["hdf5"],
    );
    assert!(!out.exists());
    assert_recorded(&ds, "mmap", "f32", &[]);
}

#[test]
fn nan_features_into_sqlite_fail_naming_node_and_column() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "ds");
    // A NaN in x.npy, with the manifest's checksum updated as if it had always been there.
    let xp = ds.join("x.npy");
    let (mut x, shape) = scalegnn_npy::read_any_as_f32(&xp).unwrap();
    x[37 * shape[1] + 5] = f32::NAN;
    scalegnn_npy::write_array(&xp, &shape, &x).unwrap();
    let mut m = manifest(&ds);
    m["files"]["x.npy"]["xxh3"] = scalegnn_data::xxh3_file(&xp).unwrap().into();
    m["files"]["x.npy"]["bytes"] = std::fs::metadata(&xp).unwrap().len().into();
    std::fs::write(ds.join("manifest.json"), m.to_string()).unwrap();
    let before = std::fs::read(ds.join("manifest.json")).unwrap();
    let mut names_before: Vec<_> = std::fs::read_dir(&ds)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names_before.sort();
    for codec in ["f32", "u8"] {
        assert_fails(
            &run(&["store", p(&ds), "--store", "sqlite", "--codec", codec]),
            &["node 37, column 5", "sqlite"],
        );
        let mut names: Vec<_> = std::fs::read_dir(&ds)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, names_before, "a store file was left behind");
        assert_eq!(std::fs::read(ds.join("manifest.json")).unwrap(), before);
    }
}

#[test]
fn postgres_without_a_url_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "ds");
    let input = root.path().join("input");
    npy_input(&ds, &input);
    let out = root.path().join("out");
    let o = bin()
        .args([
            "ingest",
            "--format",
            "npy",
            p(&input),
            "--out",
            p(&out),
            "--store",
            "postgres",
        ])
        .env_remove("SCALEGNN_PG_URL")
        .output()
        .unwrap();
    assert_fails(&o, &["postgres", "--pg-url", "SCALEGNN_PG_URL"]);
    assert!(!out.exists(), "ingest wrote a dataset before refusing");
    let o = bin()
        .args(["store", p(&ds), "--store", "postgres"])
        .env_remove("SCALEGNN_PG_URL")
        .output()
        .unwrap();
    assert_fails(&o, &["--pg-url", "SCALEGNN_PG_URL"]);
    assert!(!ds.join("x.postgres.json").exists());
    assert_recorded(&ds, "mmap", "f32", &[]);
}

#[test]
fn ingest_into_postgres_then_train_with_the_recorded_url() {
    let Ok(url) = std::env::var("SCALEGNN_PG_URL") else {
        println!("skipping: SCALEGNN_PG_URL not set");
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let synth = tiny(root.path(), "synth");
    let input = root.path().join("input");
    npy_input(&synth, &input);
    let ds = root.path().join("pg");
    let o = bin()
        .args([
            "ingest",
            "--format",
            "npy",
            p(&input),
            "--out",
            p(&ds),
            "--store",
            "postgres",
            "--codec",
            "f16",
            "--pg-url",
            &url,
        ])
        .env_remove("SCALEGNN_PG_URL")
        .output()
        .unwrap();
    assert_ok(&o);
    assert_recorded(&ds, "postgres", "f16", &["x.postgres.json"]);
    // Each run reads the features from the server, through the URL recorded at ingest or
    // the one --pg-url gives.
    let train = |extra: &[&str], out: &str| {
        bin()
            .args([
                "train",
                p(&ds),
                "--loader",
                "neighbor",
                "--fanouts",
                "5,5",
                "--epochs",
                "1",
            ])
            .args(extra)
            .arg("--out")
            .arg(root.path().join(out))
            .env_remove("SCALEGNN_PG_URL")
            .output()
            .unwrap()
    };
    // No --pg-url: the server comes from x.postgres.json.
    assert_ok(&train(&[], "run"));
    // --pg-url: used (a malformed one is refused), and never written to the run.
    assert_fails(
        &train(&["--pg-url", "mysql://nowhere"], "bad-url"),
        &["PostgreSQL URL"],
    );
    // The CI server trusts loopback, so a password in the URL is accepted and ignored.
    let user_info = url.split("://").nth(1).and_then(|r| r.split('@').next());
    let with_password = match user_info {
        Some(u) if url.contains('@') && !u.contains(':') => url.replacen('@', ":s3cret-pw@", 1),
        _ => url.clone(),
    };
    assert_ok(&train(&["--pg-url", &with_password], "flag"));
    let config = std::fs::read_to_string(root.path().join("flag/config.toml")).unwrap();
    assert!(
        !config.contains("s3cret") && !config.contains("pg_url"),
        "{config}"
    );
    let opts = scalegnn_store::StoreOptions {
        pg_url: Some(url),
        ..Default::default()
    };
    scalegnn_store::drop_postgres_store(&ds, &opts).unwrap();
}
