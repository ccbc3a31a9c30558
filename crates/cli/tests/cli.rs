//! End-to-end tests of the `scalegnn` binary: real datasets from ../shared (skipped when
//! absent) and every bad-input case the foundation promises a clear error for.

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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts a clean failure: non-zero exit, no panic, and a message containing every `needle`.
fn assert_fails(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(
        !err.contains("panicked"),
        "panic instead of an error: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "error should mention {n:?}: {err}");
    }
}

fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/datasets")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "skipping: {} not found (../shared/datasets is absent)",
            p.display()
        );
        None
    }
}

fn info_json(dir: &Path) -> serde_json::Value {
    let o = run(&["info", "--json", dir.to_str().unwrap()]);
    assert!(o.status.success(), "info failed: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("info --json prints one JSON object")
}

fn tiny(root: &Path) -> PathBuf {
    let out = root.join("tiny");
    let o = run(&[
        "synth",
        "--preset",
        "tiny",
        "--seed",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "synth failed: {}", stderr(&o));
    out
}

#[test]
fn cora_ingests_to_published_counts() {
    let Some(cora) = shared("planetoid-npy/cora") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("cora");
    let o = run(&[
        "ingest",
        "--format",
        "npy",
        cora.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let i = info_json(&out);
    assert_eq!(i["nodes"], 2708);
    assert_eq!(i["edges"], 10556);
    assert_eq!(i["features"], 1433);
    assert_eq!(i["classes"], 7);
    assert_eq!(
        (i["train"].as_u64(), i["val"].as_u64(), i["test"].as_u64()),
        (Some(140), Some(500), Some(1000))
    );
    assert_eq!(i["symmetric"], true);
    assert_eq!(i["checksums_verified"], true);
}

#[test]
fn pubmed_without_features_ingests() {
    let Some(p) = shared("planetoid-npy/pubmed") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("pubmed");
    let o = run(&[
        "ingest",
        "--format",
        "npy",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let i = info_json(&out);
    assert_eq!(i["nodes"], 19717);
    assert_eq!(i["edges"], 88648);
    assert_eq!(i["features"], 0);
    assert_eq!(i["classes"], 3);
    assert!(!out.join("x.npy").exists());
}

#[test]
fn mutag_ingests_188_graphs() {
    let Some(p) = shared("tu/MUTAG") else { return };
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("mutag");
    let o = run(&[
        "ingest",
        "--format",
        "tu",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let i = info_json(&out);
    assert_eq!(i["graphs"], 188);
    assert_eq!(i["nodes"], 3371);
    assert_eq!(i["edges"], 7442);
    assert_eq!(i["classes"], 2);
}

#[test]
fn amazon_photo_npz_matches_pyg_counts() {
    let Some(p) = shared("npz/amazon_electronics_photo.npz") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("photo");
    let o = run(&[
        "ingest",
        "--format",
        "npz",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--undirected",
        "--remove-self-loops",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let i = info_json(&out);
    assert_eq!(i["nodes"], 7650);
    assert_eq!(i["edges"], 238162);
    assert_eq!(i["features"], 745);
    assert_eq!(i["classes"], 8);
    assert_eq!(
        (i["train"].as_u64(), i["val"].as_u64()),
        (Some(160), Some(240))
    );
}

#[test]
fn make_synth_directories_open_unchanged() {
    // A directory in make_synth.py's layout: meta.json without checksums.
    let root = tempfile::tempdir().unwrap();
    let src = tiny(root.path());
    let dir = root.path().join("pyg");
    std::fs::create_dir(&dir).unwrap();
    for f in [
        "indptr.npy",
        "indices.npy",
        "x.npy",
        "y.npy",
        "train_idx.npy",
        "val_idx.npy",
        "test_idx.npy",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("meta.json"),
        r#"{"num_nodes": 2000, "num_edges": 20000, "num_features": 16, "num_classes": 5, "generator": "x"}"#,
    )
    .unwrap();
    let i = info_json(&dir);
    assert_eq!(i["nodes"], 2000);
    assert_eq!(i["checksums_verified"], false);
    // Without checksums, open scans the CSR: a bad index names indices.npy.
    let ix = scalegnn_npy::read_array::<i32>(&dir.join("indices.npy")).unwrap();
    let mut v = ix.to_vec();
    v[5] = 2000;
    scalegnn_npy::write_array(&dir.join("indices.npy"), &[v.len()], &v).unwrap();
    assert_fails(
        &run(&["info", dir.to_str().unwrap()]),
        &["indices.npy", "2000"],
    );
    // A non-monotone indptr names indptr.npy.
    std::fs::copy(src.join("indices.npy"), dir.join("indices.npy")).unwrap();
    let ip = scalegnn_npy::read_array::<i64>(&dir.join("indptr.npy")).unwrap();
    let mut p = ip.to_vec();
    p.swap(10, 11);
    scalegnn_npy::write_array(&dir.join("indptr.npy"), &[p.len()], &p).unwrap();
    assert_fails(
        &run(&["info", dir.to_str().unwrap()]),
        &["indptr.npy", "monotone"],
    );
}

#[test]
fn truncated_and_corrupted_files_are_reported() {
    let root = tempfile::tempdir().unwrap();
    let d = tiny(root.path());
    let x = d.join("x.npy");
    let bytes = std::fs::read(&x).unwrap();
    // One flipped byte: the checksum catches it.
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x55;
    std::fs::write(&x, &flipped).unwrap();
    assert_fails(&run(&["info", d.to_str().unwrap()]), &["x.npy", "checksum"]);
    // Truncated: the size check catches it, and without verification the npy reader does.
    std::fs::write(&x, &bytes[..bytes.len() - 100]).unwrap();
    assert_fails(&run(&["info", d.to_str().unwrap()]), &["x.npy"]);
    assert_fails(
        &run(&["info", "--no-verify", d.to_str().unwrap()]),
        &["x.npy", "truncated"],
    );
    // Wrong dtype (checksum skipped): named as a dtype error.
    scalegnn_npy::write_array(&x, &[2000, 16], &vec![0f64; 32000]).unwrap();
    assert_fails(
        &run(&["info", "--no-verify", d.to_str().unwrap()]),
        &["x.npy", "dtype"],
    );
    // Wrong shape.
    scalegnn_npy::write_array(&x, &[2000, 15], &vec![0f32; 30000]).unwrap();
    assert_fails(
        &run(&["info", "--no-verify", d.to_str().unwrap()]),
        &["x.npy", "shape"],
    );
}

#[test]
fn manifest_missing_a_key_is_named() {
    let root = tempfile::tempdir().unwrap();
    let d = tiny(root.path());
    let m = d.join("manifest.json");
    let text = std::fs::read_to_string(&m).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("num_classes");
    std::fs::write(&m, v.to_string()).unwrap();
    assert_fails(
        &run(&["info", d.to_str().unwrap()]),
        &["manifest.json", "num_classes"],
    );
}

#[test]
fn csv_errors_name_file_and_line() {
    let root = tempfile::tempdir().unwrap();
    let e = root.path().join("edges.csv");
    std::fs::write(&e, "0,1\n1,2\n2,x\n").unwrap();
    let out = root.path().join("g");
    assert_fails(
        &run(&[
            "ingest",
            "--format",
            "csv",
            e.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]),
        &["edges.csv:3"],
    );
    std::fs::write(&e, "0,1\n1\n").unwrap();
    assert_fails(
        &run(&[
            "ingest",
            "--format",
            "csv",
            e.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]),
        &["edges.csv:2"],
    );
    assert!(!out.exists(), "no output directory after a failed ingest");
    // A good file works, with a header and named columns.
    std::fs::write(&e, "from,to\n0,1\n1,2\n").unwrap();
    let o = run(&[
        "ingest",
        "--format",
        "csv",
        e.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--header",
        "--src-col",
        "from",
        "--dst-col",
        "to",
        "--undirected",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(info_json(&out)["edges"], 4);
}

#[test]
fn nan_features_and_out_of_range_ids_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let e = root.path().join("edges.csv");
    std::fs::write(&e, "0,1\n1,2\n").unwrap();
    let x = root.path().join("x.csv");
    std::fs::write(&x, "1.0,2.0\n3.0,NaN\n5.0,6.0\n").unwrap();
    let out = root.path().join("g");
    assert_fails(
        &run(&[
            "ingest",
            "--format",
            "csv",
            e.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--features",
            x.to_str().unwrap(),
        ]),
        &["x.csv", "row 1", "not finite"],
    );
    assert_fails(
        &run(&[
            "ingest",
            "--format",
            "csv",
            e.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--num-nodes",
            "2",
        ]),
        &["out of range"],
    );
    assert!(!out.exists());
}

#[test]
fn existing_output_is_refused_unless_forced() {
    let root = tempfile::tempdir().unwrap();
    let d = tiny(root.path());
    let o = run(&["synth", "--preset", "tiny", "--out", d.to_str().unwrap()]);
    assert_fails(&o, &["already exists", "--force"]);
    assert_eq!(
        info_json(&d)["nodes"],
        2000,
        "the existing dataset is untouched"
    );
    let o = run(&[
        "synth",
        "--preset",
        "tiny",
        "--seed",
        "9",
        "--nodes",
        "1000",
        "--force",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(info_json(&d)["nodes"], 1000);
}

#[test]
fn ingest_refuses_to_overwrite_its_input() {
    let root = tempfile::tempdir().unwrap();
    let d = tiny(root.path());
    let e = d.join("edges.csv");
    std::fs::write(&e, "0,1\n").unwrap();
    let o = run(&[
        "ingest",
        "--format",
        "csv",
        e.to_str().unwrap(),
        "--out",
        d.to_str().unwrap(),
        "--force",
    ]);
    assert_fails(&o, &["would replace the input"]);
    assert!(e.exists());
}

#[test]
fn killed_ingest_leaves_no_partial_directory() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("k");
    // The hook aborts the process like a kill, after the third file is written.
    let o = bin()
        .args(["synth", "--preset", "tiny", "--out", out.to_str().unwrap()])
        .env("SCALEGNN_TEST_ABORT_AFTER_FILES", "3")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(!out.exists(), "no directory under the final name");
    let leftovers: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        leftovers.iter().all(|n| n.starts_with(".k.tmp-")),
        "{leftovers:?}"
    );
    // The next run cleans the dead temp dir and succeeds.
    let o = run(&["synth", "--preset", "tiny", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["k".to_string()]);
}

#[test]
fn bad_flags_and_missing_dirs_are_clear() {
    assert_fails(&run(&["info", "/nonexistent/dir"]), &["/nonexistent/dir"]);
    assert_fails(
        &run(&["synth", "--preset", "huge", "--out", "/tmp/x"]),
        &["huge"],
    );
    assert_fails(
        &run(&[
            "ingest",
            "--format",
            "npy",
            "/nonexistent",
            "--out",
            "/tmp/y",
        ]),
        &["does not exist"],
    );
    let o = run(&["--help"]);
    assert!(o.status.success());
    for cmd in ["demo", "ingest", "synth", "info"] {
        assert!(stdout(&o).contains(cmd));
    }
}

#[test]
fn partition_writes_a_checked_part_array_and_refuses_bad_counts() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path());
    let d = ds.to_str().unwrap();
    let cut = |method: &str| {
        let o = run(&[
            "partition",
            d,
            "--parts",
            "8",
            "--method",
            method,
            "--force",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("edge cut"), "{}", stdout(&o));
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(ds.join("manifest.json")).unwrap())
                .unwrap();
        let e = &m["partitions"]["8"];
        assert_eq!(e["method"], method);
        assert_eq!(e["file"], "partition-8.npy");
        assert!(m["files"]["partition-8.npy"]["xxh3"].is_string());
        assert!(e["balance"].as_f64().unwrap() < 1.1, "{e}");
        e["cut_fraction"].as_f64().unwrap()
    };
    let random = cut("random");
    let metis = cut("metis");
    // The tiny preset has communities: METIS cuts far fewer edges than chance.
    assert!(metis < 0.5 * random, "metis {metis}, random {random}");
    let parts = std::fs::read(ds.join("partition-8.npy")).unwrap();
    assert!(parts.len() > 2000 * 4);
    // The dataset still opens with its checksums verified, and a changed part array is caught.
    assert!(run(&["info", d]).status.success());
    let mut bad = parts.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(ds.join("partition-8.npy"), &bad).unwrap();
    assert_fails(&run(&["info", d]), &["partition-8.npy"]);
    std::fs::write(ds.join("partition-8.npy"), &parts).unwrap();
    assert_fails(
        &run(&["partition", d, "--parts", "8"]),
        &["already has a partition into 8 parts", "--force"],
    );
    for bad in ["0", "2001"] {
        assert_fails(
            &run(&["partition", d, "--parts", bad]),
            &["--parts", "2000"],
        );
    }
    assert_fails(
        &run(&["partition", d, "--parts", "4", "--method", "kahip"]),
        &["kahip", "metis or random"],
    );
    let missing = root.path().join("nope");
    assert_fails(
        &run(&["partition", missing.to_str().unwrap(), "--parts", "4"]),
        &["nope"],
    );
}
