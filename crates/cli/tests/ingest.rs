//! Bring your own graph: ingest as users export graphs (64-bit and string ids, tables keyed
//! by id, unlabelled nodes, headers on some files only, list columns, several official
//! splits), where nothing is dropped without a word and errors name the file and line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scalegnn"))
        .args(args)
        .output()
        .expect("spawn scalegnn")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: Output) -> (String, String) {
    assert!(
        o.status.success(),
        "failed: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    (text(&o.stdout), text(&o.stderr))
}

/// Non-zero exit, no panic, and every needle in the message.
fn fails(o: Output, needles: &[&str]) {
    let err = text(&o.stderr);
    assert!(!o.status.success(), "expected failure: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for n in needles {
        assert!(err.contains(n), "error should mention {n:?}: {err}");
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Every array file of a dataset directory, by name.
fn arrays(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "npy" || e == "csv"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// A small graph as published: N nodes with shuffled 64-bit ids, features keyed by id in
/// shuffled rows, labels `id,target` with 10 % set to -1.
struct Published {
    ids: Vec<u64>,
    edges: Vec<(usize, usize)>,
    x: Vec<Vec<f32>>,
    y: Vec<i64>,
}

fn published() -> Published {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let n = 60;
    let mut ids: Vec<u64> = (0..n)
        .map(|_| rng.random_range(100_000_000_000_000u64..200_000_000_000_000))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "distinct ids");
    ids.shuffle(&mut rng);
    let mut edges = Vec::new();
    for v in 0..n {
        for _ in 0..3 {
            let u = rng.random_range(0..n);
            if u != v {
                edges.push((v, u));
            }
        }
    }
    let x = (0..n)
        .map(|v| {
            (0..4)
                .map(|j| ((v * 7 + j * 3) % 11) as f32 / 4.0)
                .collect()
        })
        .collect();
    let y = (0..n)
        .map(|v| if v % 10 == 3 { -1 } else { (v % 3) as i64 })
        .collect();
    Published { ids, edges, x, y }
}

/// The published graph in CSV (edges, `id,f0..` features, `id,target` labels, rows shuffled),
/// Parquet (edge table, node table with id, features and label), and the NumPy layout (the
/// same graph over 0..N-1 in sorted-id order, as --relabel numbers it).
fn write_all(g: &Published, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let n = g.ids.len();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let csv = dir.join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    let mut e = String::from("source,target\n");
    for &(a, b) in &g.edges {
        e += &format!("{},{}\n", g.ids[a], g.ids[b]);
    }
    write(&csv, "edges.csv", &e);
    let mut x = String::from("node,f0,f1,f2,f3\n");
    let mut y = String::from("id,target\n");
    for &v in &order {
        let row: Vec<String> = g.x[v].iter().map(|f| f.to_string()).collect();
        x += &format!("{},{}\n", g.ids[v], row.join(","));
        y += &format!("{},{}\n", g.ids[v], g.y[v]);
    }
    write(&csv, "features.csv", &x);
    write(&csv, "labels.csv", &y);
    // The same features as (node, feature, value) pairs, zeros left out, rows shuffled.
    let mut pairs: Vec<String> = Vec::new();
    for v in 0..n {
        for (j, f) in g.x[v].iter().enumerate() {
            if *f != 0.0 {
                pairs.push(format!("{},{j},{f}\n", g.ids[v]));
            }
        }
    }
    pairs.shuffle(&mut rng);
    write(
        &csv,
        "feature_pairs.csv",
        &(String::from("node,feature,value\n") + &pairs.concat()),
    );

    let pq = dir.join("pq");
    std::fs::create_dir_all(&pq).unwrap();
    {
        use parquet::data_type::{FloatType, Int64Type};
        use parquet::file::writer::SerializedFileWriter;
        use parquet::schema::parser::parse_message_type;
        let table = |path: &Path, schema: &str, cols: Vec<Result<Vec<i64>, Vec<f32>>>| {
            let schema = Arc::new(parse_message_type(schema).unwrap());
            let f = std::fs::File::create(path).unwrap();
            let mut w = SerializedFileWriter::new(f, schema, Default::default()).unwrap();
            let mut rg = w.next_row_group().unwrap();
            for c in cols {
                let mut cw = rg.next_column().unwrap().unwrap();
                match c {
                    Ok(v) => {
                        cw.typed::<Int64Type>().write_batch(&v, None, None).unwrap();
                    }
                    Err(v) => {
                        cw.typed::<FloatType>().write_batch(&v, None, None).unwrap();
                    }
                }
                cw.close().unwrap();
            }
            rg.close().unwrap();
            w.close().unwrap();
        };
        let src: Vec<i64> = g.edges.iter().map(|&(a, _)| g.ids[a] as i64).collect();
        let dst: Vec<i64> = g.edges.iter().map(|&(_, b)| g.ids[b] as i64).collect();
        table(
            &pq.join("edges.parquet"),
            "message e { REQUIRED INT64 src; REQUIRED INT64 dst; }",
            vec![Ok(src), Ok(dst)],
        );
        let mut cols = vec![Ok(order.iter().map(|&v| g.ids[v] as i64).collect())];
        for j in 0..4 {
            cols.push(Err(order.iter().map(|&v| g.x[v][j]).collect()));
        }
        cols.push(Ok(order.iter().map(|&v| g.y[v]).collect()));
        table(
            &pq.join("nodes.parquet"),
            "message n { REQUIRED INT64 node; REQUIRED FLOAT f0; REQUIRED FLOAT f1; \
             REQUIRED FLOAT f2; REQUIRED FLOAT f3; REQUIRED INT64 label; }",
            cols,
        );
    }

    let np = dir.join("npy");
    std::fs::create_dir_all(&np).unwrap();
    let mut sorted: Vec<usize> = (0..n).collect();
    sorted.sort_by_key(|&v| g.ids[v]);
    let mut rank = vec![0usize; n];
    for (r, &v) in sorted.iter().enumerate() {
        rank[v] = r;
    }
    let mut ei: Vec<i64> = g.edges.iter().map(|&(a, _)| rank[a] as i64).collect();
    ei.extend(g.edges.iter().map(|&(_, b)| rank[b] as i64));
    scalegnn_npy::write_array(&np.join("edge_index.npy"), &[2, g.edges.len()], &ei).unwrap();
    let xs: Vec<f32> = sorted.iter().flat_map(|&v| g.x[v].clone()).collect();
    scalegnn_npy::write_array(&np.join("x.npy"), &[n, 4], &xs).unwrap();
    let ys: Vec<i64> = sorted.iter().map(|&v| g.y[v]).collect();
    scalegnn_npy::write_array(&np.join("y.npy"), &[n], &ys).unwrap();
    (csv, pq, np)
}

#[test]
fn a_published_graph_ingests_the_same_from_csv_parquet_and_numpy() {
    let root = tempfile::tempdir().unwrap();
    let g = published();
    let (csv, pq, np) = write_all(&g, root.path());
    let common = ["--relabel", "--split", "random:0.6,0.2", "--seed", "3"];
    let out_csv = root.path().join("d-csv");
    let (stdout, stderr) = ok(run(&[
        &["ingest", "--format", "csv"][..],
        &[
            s(&csv.join("edges.csv")),
            "--header",
            "--features",
            s(&csv.join("features.csv")),
            "--features-header",
            "--labels",
            s(&csv.join("labels.csv")),
            "--labels-header",
            "--node-id-col",
            "0",
            "--out",
            s(&out_csv),
        ],
        &common,
    ]
    .concat()));
    let unlabelled = g.y.iter().filter(|&&v| v < 0).count();
    assert!(
        stdout.contains(&format!("{unlabelled} unlabelled")),
        "{stdout}"
    );
    assert!(
        stderr.contains("unlabelled") && stderr.contains("no split"),
        "{stderr}"
    );
    // Features as (node, feature, value) pairs: the same dataset again.
    let out_pairs = root.path().join("d-pairs");
    ok(run(&[
        &["ingest", "--format", "csv"][..],
        &[
            s(&csv.join("edges.csv")),
            "--header",
            "--features",
            s(&csv.join("feature_pairs.csv")),
            "--features-header",
            "--features-pairs",
            "--labels",
            s(&csv.join("labels.csv")),
            "--labels-header",
            "--node-id-col",
            "0",
            "--out",
            s(&out_pairs),
        ],
        &common,
    ]
    .concat()));
    let out_pq = root.path().join("d-pq");
    ok(run(&[
        &["ingest", "--format", "parquet"][..],
        &[
            s(&pq.join("edges.parquet")),
            "--features",
            s(&pq.join("nodes.parquet")),
            "--node-id-col",
            "node",
            "--label-col",
            "label",
            "--out",
            s(&out_pq),
        ],
        &common,
    ]
    .concat()));
    let out_np = root.path().join("d-np");
    ok(run(&[
        "ingest",
        "--format",
        "npy",
        s(&np),
        "--split",
        "random:0.6,0.2",
        "--seed",
        "3",
        "--out",
        s(&out_np),
    ]));
    // The same arrays, byte for byte (the relabelled runs also hold node_ids.npy).
    let a = arrays(&out_csv);
    let b = arrays(&out_pq);
    let c = arrays(&out_np);
    assert_eq!(a, b, "CSV and Parquet give the same dataset");
    assert_eq!(a, arrays(&out_pairs), "feature pairs give the same dataset");
    let a_no_ids: Vec<_> = a
        .iter()
        .filter(|(n, _)| n != "node_ids.npy")
        .cloned()
        .collect();
    assert_eq!(
        a_no_ids, c,
        "CSV and the NumPy layout give the same dataset"
    );
    let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
    for f in [
        "indptr.npy",
        "indices.npy",
        "x.npy",
        "y.npy",
        "train_idx.npy",
        "node_ids.npy",
    ] {
        assert!(names.contains(&f), "{f} in {names:?}");
    }
    // The original ids come back in node order.
    let ids: Vec<i64> = scalegnn_npy::read_array(&out_csv.join("node_ids.npy"))
        .unwrap()
        .to_vec();
    let mut want: Vec<i64> = g.ids.iter().map(|&v| v as i64).collect();
    want.sort_unstable();
    assert_eq!(ids, want);
    let m = manifest(&out_csv);
    assert_eq!(m["ingest"]["unlabelled"], unlabelled as u64);
    assert_eq!(m["ingest"]["relabelled_ids"], g.ids.len() as u64);
    // And it trains: no unlabelled node in any split.
    let run_dir = root.path().join("run");
    ok(run(&[
        "train",
        s(&out_csv),
        "--model",
        "gcn",
        "--epochs",
        "3",
        "--threads",
        "1",
        "--out",
        s(&run_dir),
    ]));
}

#[test]
fn string_ids_are_relabelled_and_kept() {
    let root = tempfile::tempdir().unwrap();
    let e = write(
        root.path(),
        "e.csv",
        "alice,bob\nbob,\"carol, jr\"\n\"carol, jr\",alice\n",
    );
    let y = write(root.path(), "y.csv", "bob,1\nalice,0\n");
    let out = root.path().join("d");
    // Without --relabel a string id is an error naming the line and the flag.
    fails(
        run(&["ingest", "--format", "csv", s(&e), "--out", s(&out)]),
        &["e.csv:1", "alice", "--relabel"],
    );
    assert!(!out.exists());
    ok(run(&[
        "ingest",
        "--format",
        "csv",
        s(&e),
        "--relabel",
        "--labels",
        s(&y),
        "--node-id-col",
        "0",
        "--out",
        s(&out),
    ]));
    let names = std::fs::read_to_string(out.join("node_ids.csv")).unwrap();
    assert_eq!(names, "id\nalice\nbob\n\"carol, jr\"\n");
    let labels: Vec<i64> = scalegnn_npy::read_array(&out.join("y.npy"))
        .unwrap()
        .to_vec();
    assert_eq!(
        labels,
        vec![0, 1, -1],
        "keyed by string id; carol unlabelled"
    );
}

#[test]
fn large_ids_without_relabel_are_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let e = write(
        root.path(),
        "big.csv",
        "145647315578475,145647315578476\n145647315578476,9\n",
    );
    let out = root.path().join("d");
    fails(
        run(&["ingest", "--format", "csv", s(&e), "--out", s(&out)]),
        &["145647315578476", "--relabel"],
    );
    assert!(!out.exists());
}

#[test]
fn headers_are_per_file() {
    let root = tempfile::tempdir().unwrap();
    let e = write(root.path(), "e.csv", "src,dst\n0,1\n1,2\n2,0\n");
    let x = write(root.path(), "x.csv", "1,2\n3,4\n5,6\n");
    let out = root.path().join("d");
    // The edge header does not eat the first feature row.
    ok(run(&[
        "ingest",
        "--format",
        "csv",
        s(&e),
        "--header",
        "--features",
        s(&x),
        "--out",
        s(&out),
    ]));
    let xs: Vec<f32> = scalegnn_npy::read_array(&out.join("x.npy"))
        .unwrap()
        .to_vec();
    assert_eq!(xs, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    // A features header not declared: the error names the line and the flag.
    let xh = write(root.path(), "xh.csv", "a,b\n1,2\n3,4\n5,6\n");
    fails(
        run(&[
            "ingest",
            "--format",
            "csv",
            s(&e),
            "--header",
            "--features",
            s(&xh),
            "--out",
            s(&root.path().join("d2")),
        ]),
        &["xh.csv:1", "--features-header"],
    );
}

#[test]
fn labels_keyed_by_id_and_unlabelled_nodes() {
    let root = tempfile::tempdir().unwrap();
    let e = write(root.path(), "e.csv", "0,1\n1,2\n2,3\n3,0\n");
    let out = root.path().join("d");
    // id,target with a header; node 2 missing, node 3 empty: both unlabelled.
    let y = write(root.path(), "y.csv", "id,target\n1,1\n0,0\n3,\n");
    let (stdout, _) = ok(run(&[
        "ingest",
        "--format",
        "csv",
        s(&e),
        "--labels",
        s(&y),
        "--labels-header",
        "--node-id-col",
        "id",
        "--out",
        s(&out),
    ]));
    assert!(stdout.contains("2 unlabelled"), "{stdout}");
    let labels: Vec<i64> = scalegnn_npy::read_array(&out.join("y.npy"))
        .unwrap()
        .to_vec();
    assert_eq!(labels, vec![0, 1, -1, -1]);
    for f in ["train_idx.npy", "val_idx.npy", "test_idx.npy"] {
        let ids: Vec<i64> = scalegnn_npy::read_array(&out.join(f)).unwrap().to_vec();
        assert!(
            ids.iter().all(|&i| i < 2),
            "{f}: {ids:?} holds an unlabelled node"
        );
    }
    // Two columns without --node-id-col: refused, naming the line and the flag.
    fails(
        run(&[
            "ingest",
            "--format",
            "csv",
            s(&e),
            "--labels",
            s(&y),
            "--labels-header",
            "--out",
            s(&root.path().join("d2")),
        ]),
        &["y.csv:2", "--node-id-col"],
    );
    // A label below -1 is refused by value.
    let bad = write(root.path(), "bad.txt", "0\n-2\n1\n0\n");
    fails(
        run(&[
            "ingest",
            "--format",
            "csv",
            s(&e),
            "--labels",
            s(&bad),
            "--out",
            s(&root.path().join("d3")),
        ]),
        &["bad.txt:2", "-2", "unlabelled"],
    );
}

#[test]
fn a_feature_column_that_counts_like_an_id_is_named() {
    let root = tempfile::tempdir().unwrap();
    let e = write(root.path(), "e.csv", "0,1\n1,2\n2,0\n");
    let x = write(root.path(), "x.csv", "0,0.5,1\n1,0.25,0\n2,0.75,1\n");
    let (_, stderr) = ok(run(&[
        "ingest",
        "--format",
        "csv",
        s(&e),
        "--features",
        s(&x),
        "--out",
        s(&root.path().join("d")),
    ]));
    assert!(
        stderr.contains("like a node id") && stderr.contains("--node-id-col"),
        "{stderr}"
    );
    // With --node-id-col 0 the column is the id, not a feature.
    ok(run(&[
        "ingest",
        "--format",
        "csv",
        s(&e),
        "--features",
        s(&x),
        "--node-id-col",
        "0",
        "--out",
        s(&root.path().join("d2")),
    ]));
    assert_eq!(manifest(&root.path().join("d2"))["num_features"], 2);
}

#[test]
fn unreadable_inputs_and_empty_graphs_are_errors() {
    let root = tempfile::tempdir().unwrap();
    let e = write(root.path(), "e.csv", "0,1\n1,2\n2,0\n");
    let j = write(root.path(), "x.json", "{\"0\": [1, 2]}");
    fails(
        run(&[
            "ingest",
            "--format",
            "csv",
            s(&e),
            "--features",
            s(&j),
            "--out",
            s(&root.path().join("d")),
        ]),
        &["x.json", ".json", "--features"],
    );
    let empty = write(root.path(), "empty.csv", "");
    let out = root.path().join("d2");
    fails(
        run(&["ingest", "--format", "csv", s(&empty), "--out", s(&out)]),
        &["empty.csv", "no edges"],
    );
    assert!(!out.exists());
    // A flag the format does not read is refused, not ignored.
    fails(
        run(&[
            "ingest",
            "--format",
            "npy",
            s(root.path()),
            "--header",
            "--out",
            s(&root.path().join("d3")),
        ]),
        &["--header", "npy"],
    );
}

#[test]
fn self_loops_duplicates_and_isolated_nodes_are_counted() {
    let root = tempfile::tempdir().unwrap();
    let e = write(root.path(), "e.csv", "0,1\n1,2\n2,2\n0,1\n1,0\n");
    let out = root.path().join("d");
    let (stdout, stderr) = ok(run(&[
        "ingest",
        "--format",
        "csv",
        s(&e),
        "--num-nodes",
        "5",
        "--undirected",
        "--out",
        s(&out),
    ]));
    assert!(stdout.contains("1 self-loop kept"), "{stdout}");
    assert!(stderr.contains("self-loop"), "{stderr}");
    let st = &manifest(&out)["ingest"];
    assert_eq!(st["input_edges"], 5);
    assert_eq!(st["self_loops"], 1);
    // 0-1 given twice plus 1-0: with reverses, 0→1 and 1→0 are each kept once.
    assert_eq!(st["duplicates_removed"], 4);
    assert_eq!(st["isolated_nodes"], 2);
    assert_eq!(manifest(&out)["num_edges"], 5);
}

#[test]
fn numpy_layout_keeps_every_official_split_and_names_unused_files() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path().join("np");
    std::fs::create_dir_all(&d).unwrap();
    let n = 6usize;
    let ei: Vec<i64> = vec![0, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 0];
    scalegnn_npy::write_array(&d.join("edge_index.npy"), &[2, 6], &ei).unwrap();
    scalegnn_npy::write_array(&d.join("y.npy"), &[n], &[0i64, 1, 0, 1, 0, 1]).unwrap();
    // Sparse features: the identity's first 3 columns as a CSR triple.
    scalegnn_npy::write_array(&d.join("x_indptr.npy"), &[n + 1], &[0i64, 1, 2, 3, 3, 3, 3])
        .unwrap();
    scalegnn_npy::write_array(&d.join("x_indices.npy"), &[3], &[0i64, 1, 2]).unwrap();
    scalegnn_npy::write_array(&d.join("x_data.npy"), &[3], &[1f32, 1.0, 1.0]).unwrap();
    // Two official splits as [S, N] masks (the heterophilous benchmarks' layout).
    let mask = |rows: [[u8; 6]; 2]| -> Vec<u8> { rows.concat() };
    for (name, rows) in [
        ("train_masks.npy", [[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0]]),
        ("val_masks.npy", [[0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]]),
        ("test_masks.npy", [[0, 0, 0, 0, 1, 1], [1, 1, 0, 0, 0, 0]]),
    ] {
        let m: Vec<u8> = mask(rows);
        scalegnn_npy::write_array(&d.join(name), &[2, n], &m).unwrap();
    }
    write(&d, "README.txt", "notes");
    let out = root.path().join("d");
    let (_, stderr) = ok(run(&["ingest", "--format", "npy", s(&d), "--out", s(&out)]));
    assert!(
        stderr.contains("README.txt") && stderr.contains("not used"),
        "{stderr}"
    );
    assert!(stderr.contains("sparse features"), "{stderr}");
    let train = scalegnn_npy::read_array::<i64>(&out.join("train_idx.npy")).unwrap();
    assert_eq!(train.shape(), &[2, 2]);
    assert_eq!(train.to_vec(), vec![0, 1, 2, 3]);
    assert_eq!(manifest(&out)["num_features"], 3);
    // WebKB's layout also holds *_mask.npy = row 0 of *_masks.npy: the same dataset, said.
    for (name, row) in [
        ("train_mask.npy", [1u8, 1, 0, 0, 0, 0]),
        ("val_mask.npy", [0, 0, 1, 1, 0, 0]),
        ("test_mask.npy", [0, 0, 0, 0, 1, 1]),
    ] {
        scalegnn_npy::write_array(&d.join(name), &[n], &row).unwrap();
    }
    let both = root.path().join("both");
    let (_, said) = ok(run(&[
        "ingest",
        "--format",
        "npy",
        s(&d),
        "--out",
        s(&both),
    ]));
    assert!(
        said.contains("train_mask.npy repeats split 0 of train_masks.npy"),
        "{said}"
    );
    assert_eq!(arrays(&out), arrays(&both));
    // A single mask that is none of the splits is an error naming both files.
    scalegnn_npy::write_array(&d.join("val_mask.npy"), &[n], &[1u8, 0, 0, 0, 0, 0]).unwrap();
    fails(
        run(&[
            "ingest",
            "--format",
            "npy",
            s(&d),
            "--out",
            s(&root.path().join("x")),
        ]),
        &["val_mask.npy and val_masks.npy give different val splits"],
    );
    // Split 1 trains.
    ok(run(&[
        "train",
        s(&out),
        "--model",
        "mlp",
        "--epochs",
        "2",
        "--split",
        "1",
        "--threads",
        "1",
        "--out",
        s(&root.path().join("run")),
    ]));
}

#[test]
fn negative_numbers_are_values() {
    let root = tempfile::tempdir().unwrap();
    let e = write(root.path(), "e.csv", "0,1\n1,2\n2,0\n");
    let y = write(root.path(), "y.txt", "0\n1\n0\n");
    let out = root.path().join("d");
    ok(run(&[
        "ingest",
        "--format",
        "csv",
        s(&e),
        "--labels",
        s(&y),
        "--out",
        s(&out),
    ]));
    fails(
        run(&[
            "train",
            s(&out),
            "--lr",
            "-0.01",
            "--out",
            s(&root.path().join("r")),
        ]),
        &["lr", "-0.01"],
    );
}

#[test]
fn predictions_and_embeddings_are_keyed_by_the_original_ids() {
    let root = tempfile::tempdir().unwrap();
    // A string-id graph, features keyed by id in another order than the edges.
    let e = write(
        root.path(),
        "e.csv",
        "carol,alice\nalice,bob\nbob,dave\ndave,carol\nbob,carol\n",
    );
    let x = write(
        root.path(),
        "x.csv",
        "dave,1,0\nbob,0,1\nalice,1,1\ncarol,0,0\n",
    );
    let y = write(root.path(), "y.csv", "alice,0\nbob,1\ncarol,0\ndave,1\n");
    let ds = root.path().join("d");
    ok(run(&[
        "ingest",
        "--format",
        "csv",
        s(&e),
        "--relabel",
        "--features",
        s(&x),
        "--labels",
        s(&y),
        "--node-id-col",
        "0",
        "--split",
        "random:0.5,0.25",
        "--out",
        s(&ds),
    ]));
    let r = root.path().join("run");
    // One validation node: ROC-AUC is undefined there, and training says what it selects on.
    let (_, err) = ok(run(&[
        "train",
        s(&ds),
        "--model",
        "gcn",
        "--epochs",
        "3",
        "--out",
        s(&r),
    ]));
    assert!(err.contains("undefined on the validation split"), "{err}");
    ok(run(&["predict", "--format", "csv", s(&r)]));
    let table = std::fs::read_to_string(r.join("predictions.csv")).unwrap();
    let ids: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(table.lines().next(), Some("id,prediction"));
    assert_eq!(ids, vec!["alice", "bob", "carol", "dave"]);
    // Embeddings as Parquet by extension; the id column leads.
    let emb = root.path().join("emb.parquet");
    ok(run(&["embed", "--out", s(&emb), s(&r)]));
    let file = std::fs::File::open(&emb).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).expect("a Parquet file");
    use parquet::file::reader::FileReader;
    let meta = reader.metadata();
    assert_eq!(meta.file_metadata().num_rows(), 4);
    assert_eq!(meta.file_metadata().schema_descr().column(0).name(), "id");
    // A format that contradicts the extension is refused, and nothing is written.
    let wrong = root.path().join("p.csv");
    fails(
        run(&["predict", "--format", "parquet", "--out", s(&wrong), s(&r)]),
        &["--format parquet"],
    );
    assert!(!wrong.exists());
}

#[test]
fn ogb_and_graphbolt_directories_ingest_like_numpy() {
    let root = tempfile::tempdir().unwrap();
    let g = published();
    let (_, _, np) = write_all(&g, root.path());
    let n = g.ids.len();
    let ys: Vec<i64> = scalegnn_npy::read_array(&np.join("y.npy"))
        .unwrap()
        .to_vec();
    let ei: Vec<i64> = scalegnn_npy::read_array(&np.join("edge_index.npy"))
        .unwrap()
        .to_vec();
    let xs: Vec<f32> = scalegnn_npy::read_array(&np.join("x.npy"))
        .unwrap()
        .to_vec();
    let e = ei.len() / 2;
    // Every labelled node in one official split, so GraphBolt (labels per split) agrees.
    let labelled: Vec<i64> = (0..n as i64).filter(|&v| ys[v as usize] >= 0).collect();
    let (tr, rest) = labelled.split_at(labelled.len() / 2);
    let (va, te) = rest.split_at(rest.len() / 2);
    let splits = [("train", tr), ("val", va), ("test", te)];
    for (name, ids) in splits {
        scalegnn_npy::write_array(&np.join(format!("{name}_idx.npy")), &[ids.len()], ids).unwrap();
    }
    // OGB: uncompressed CSV files (read in place of .csv.gz), split/NAME/{train,valid,test}.
    let ogb = root.path().join("ogbn_test");
    std::fs::create_dir_all(ogb.join("raw")).unwrap();
    std::fs::create_dir_all(ogb.join("split/random")).unwrap();
    let lines = |rows: &mut dyn Iterator<Item = String>| rows.collect::<Vec<_>>().join("\n") + "\n";
    write(
        &ogb.join("raw"),
        "edge.csv",
        &lines(&mut (0..e).map(|k| format!("{},{}", ei[k], ei[e + k]))),
    );
    write(&ogb.join("raw"), "num-node-list.csv", &format!("{n}\n"));
    write(&ogb.join("raw"), "num-edge-list.csv", &format!("{e}\n"));
    write(
        &ogb.join("raw"),
        "node-feat.csv",
        &lines(&mut xs.chunks(4).map(|r| {
            r.iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join(",")
        })),
    );
    write(
        &ogb.join("raw"),
        "node-label.csv",
        &lines(&mut ys.iter().map(|y| y.to_string())),
    );
    for (name, ids) in [("train", tr), ("valid", va), ("test", te)] {
        write(
            &ogb.join("split/random"),
            &format!("{name}.csv"),
            &lines(&mut ids.iter().map(|v| v.to_string())),
        );
    }
    // GraphBolt: metadata.yaml over .npy files.
    let gb = root.path().join("gb");
    std::fs::create_dir_all(&gb).unwrap();
    std::fs::copy(np.join("edge_index.npy"), gb.join("edges.npy")).unwrap();
    std::fs::copy(np.join("x.npy"), gb.join("feat.npy")).unwrap();
    let mut sets = String::new();
    for (name, key, ids) in [
        ("train", "train_set", tr),
        ("val", "validation_set", va),
        ("test", "test_set", te),
    ] {
        scalegnn_npy::write_array(&gb.join(format!("{name}_seeds.npy")), &[ids.len()], ids)
            .unwrap();
        let y: Vec<i64> = ids.iter().map(|&v| ys[v as usize]).collect();
        scalegnn_npy::write_array(&gb.join(format!("{name}_labels.npy")), &[y.len()], &y).unwrap();
        sets += &format!(
            "    {key}:\n      - data:\n          - name: seeds\n            format: numpy\n            path: {name}_seeds.npy\n          - name: labels\n            format: numpy\n            path: {name}_labels.npy\n"
        );
    }
    write(
        &gb,
        "metadata.yaml",
        &format!(
            "dataset_name: test\ngraph:\n  nodes:\n    - num: {n}\n  edges:\n    - format: numpy\n      path: edges.npy\n\
             feature_data:\n  - domain: node\n    name: feat\n    format: numpy\n    path: feat.npy\n\
             tasks:\n  - name: node_classification\n    num_classes: 3\n{sets}"
        ),
    );
    let mut outs = Vec::new();
    for (fmt, input) in [("npy", &np), ("ogb", &ogb), ("graphbolt", &gb)] {
        let out = root.path().join(format!("out-{fmt}"));
        ok(run(&[
            "ingest",
            "--format",
            fmt,
            s(input),
            "--out",
            s(&out),
        ]));
        outs.push((fmt, arrays(&out)));
    }
    for (fmt, a) in &outs[1..] {
        let names: Vec<&String> = a.iter().map(|(k, _)| k).collect();
        let want: Vec<&String> = outs[0].1.iter().map(|(k, _)| k).collect();
        assert_eq!(names, want, "{fmt}: the same files");
        for ((name, bytes), (_, expect)) in a.iter().zip(&outs[0].1) {
            assert!(
                bytes == expect,
                "{fmt}: {name} differs from the NumPy ingest"
            );
        }
    }
    // The OGB split flag belongs to OGB only.
    fails(
        run(&[
            "ingest",
            "--format",
            "npy",
            s(&np),
            "--ogb-split",
            "random",
            "--out",
            s(&root.path().join("x")),
        ]),
        &["--ogb-split", "ogb"],
    );
}

/// The seed's result line of `train` without its timing.
fn result_line(out: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.contains("test acc"))
        .unwrap_or_else(|| panic!("no result line in {out}"));
    line.split(" params").next().unwrap().to_string()
}

#[test]
fn bag_of_words_features_train_from_the_sparse_store_alone() {
    let root = tempfile::tempdir().unwrap();
    // 240 nodes, 60 word features, 2-4 words each; the label follows the words.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    let n = 240;
    let (mut e, mut x, mut y) = (String::new(), String::new(), String::new());
    for v in 0..n {
        let class = v % 3;
        y += &format!("{v},{class}\n");
        for _ in 0..rng.random_range(2..5) {
            let w = class * 20 + rng.random_range(0..20);
            // Repeated words are counts, as a bag of words.
            x += &format!("{v},{w},{}\n", rng.random_range(1..4));
        }
        for _ in 0..3 {
            let u = rng.random_range(0..n);
            if u != v {
                e += &format!("{v},{u}\n");
            }
        }
    }
    // A pair given twice would be an error: keep each (node, word) once.
    let mut seen = std::collections::HashSet::new();
    let x: String = x
        .lines()
        .filter(|l| {
            let mut f = l.split(',');
            seen.insert((f.next().unwrap().to_string(), f.next().unwrap().to_string()))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    // The same features as a wide table (node id, then 60 columns).
    let mut wide = vec![vec!["0".to_string(); 61]; n];
    for (v, row) in wide.iter_mut().enumerate() {
        row[0] = v.to_string();
    }
    for l in x.lines() {
        let f: Vec<usize> = l.split(',').map(|t| t.parse().unwrap()).collect();
        wide[f[0]][1 + f[1]] = f[2].to_string();
    }
    let wide: String = wide.iter().map(|r| r.join(",") + "\n").collect();
    let (e, x, wide, y) = (
        write(root.path(), "e.csv", &e),
        write(root.path(), "x.csv", &x),
        write(root.path(), "wide.csv", &wide),
        write(root.path(), "y.csv", &y),
    );
    let ingest = |out: &Path, features: &Path, extra: &[&str]| {
        let mut args = vec![
            "ingest",
            "--format",
            "csv",
            s(&e),
            "--undirected",
            "--features",
            s(features),
            "--labels",
            s(&y),
            "--node-id-col",
            "0",
            "--out",
            s(out),
        ];
        args.extend_from_slice(extra);
        ok(run(&args))
    };
    let dense = root.path().join("dense");
    let sparse = root.path().join("sparse");
    let (said, _) = ingest(&dense, &wide, &[]);
    assert!(
        said.contains("--store sparse keeps them in"),
        "a mostly-zero wide table gets the hint: {said}"
    );
    // Given as pairs, under 10 % non-zero: kept sparse without asking.
    let (said, _) = ingest(&sparse, &x, &["--features-pairs"]);
    assert!(said.contains("features kept sparse as given"), "{said}");
    // Unless a store is asked for: then x.npy, identical to the wide table's.
    let asked = root.path().join("asked");
    ingest(&asked, &x, &["--features-pairs", "--store", "mmap"]);
    assert_eq!(
        std::fs::read(asked.join("x.npy")).unwrap(),
        std::fs::read(dense.join("x.npy")).unwrap()
    );
    assert!(dense.join("x.npy").exists());
    assert!(
        !sparse.join("x.npy").exists(),
        "the sparse store replaces x.npy"
    );
    let m = manifest(&sparse);
    assert_eq!(m["feature_store"]["kind"], "sparse");
    assert!(m["files"].get("x.npy").is_none());
    assert!(m["files"].get("x.csr.data.npy").is_some());
    let bytes = |d: &Path, names: &[&str]| -> u64 {
        names
            .iter()
            .map(|f| std::fs::metadata(d.join(f)).unwrap().len())
            .sum()
    };
    let sparse_bytes = bytes(
        &sparse,
        &[
            "x.csr.shape.npy",
            "x.csr.indptr.npy",
            "x.csr.indices.npy",
            "x.csr.data.npy",
        ],
    );
    assert!(
        sparse_bytes * 4 < bytes(&dense, &["x.npy"]),
        "sparse {sparse_bytes} B"
    );
    ok(run(&["info", s(&sparse)]));

    // Same seed, one thread: the same numbers from either dataset, full batch and sampled.
    let train = |ds: &Path, name: &str, extra: &[&str]| {
        let out = root.path().join(name);
        let mut args = vec![
            "train",
            s(ds),
            "--epochs",
            "4",
            "--seed",
            "5",
            "--out",
            s(&out),
        ];
        args.extend_from_slice(extra);
        let (said, _) = ok(Command::new(env!("CARGO_BIN_EXE_scalegnn"))
            .args(&args)
            .env("RAYON_NUM_THREADS", "1")
            .output()
            .expect("spawn scalegnn"));
        (result_line(&said), out)
    };
    for (model, extra) in [
        ("gcn", &[][..]),
        ("sage", &["--loader", "neighbor", "--batch-size", "64"][..]),
    ] {
        let mut args = vec!["--model", model];
        args.extend_from_slice(extra);
        let (a, ra) = train(&dense, &format!("{model}-dense"), &args);
        let (b, rb) = train(&sparse, &format!("{model}-sparse"), &args);
        assert_eq!(a, b, "{model}");
        ok(run(&["predict", s(&ra)]));
        ok(run(&["predict", s(&rb)]));
        assert_eq!(
            std::fs::read(ra.join("predictions.npy")).unwrap(),
            std::fs::read(rb.join("predictions.npy")).unwrap(),
            "{model} predictions"
        );
    }

    // Another store is written from the sparse one; the sparse store takes only f32.
    fails(
        run(&["store", s(&sparse), "--store", "sparse", "--codec", "u8"]),
        &["u8"],
    );
    fails(
        run(&["store", s(&sparse), "--store", "sparse"]),
        &["already in the sparse store"],
    );
    ok(run(&["store", s(&sparse), "--store", "sqlite"]));
    assert_eq!(manifest(&sparse)["feature_store"]["kind"], "sqlite");
    let (c, _) = train(&sparse, "gcn-sqlite", &["--model", "gcn"]);
    let (a, _) = train(&dense, "gcn-dense-2", &["--model", "gcn"]);
    assert_eq!(a, c);
    ok(run(&["store", s(&sparse), "--store", "sparse"]));
    assert_eq!(manifest(&sparse)["feature_store"]["kind"], "sparse");
    ok(run(&["info", s(&sparse)]));
}

#[test]
fn string_ids_in_parquet_ingest_like_csv() {
    use parquet::data_type::{ByteArray, ByteArrayType, FloatType, Int64Type};
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    let root = tempfile::tempdir().unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let n = 30;
    // Names whose sorted order differs from their first appearance (and from numeric order).
    let names: Vec<String> = (0..n).map(|v| format!("user-{}", (v * 7) % n)).collect();
    let mut edges = Vec::new();
    for v in 0..n {
        for _ in 0..2 {
            let u = rng.random_range(0..n);
            if u != v {
                edges.push((v, u));
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let x = |v: usize, j: usize| ((v * 3 + j) % 5) as f32;
    let y = |v: usize| if v % 6 == 1 { -1 } else { (v % 2) as i64 };

    let mut e = String::new();
    for &(a, b) in &edges {
        e += &format!("{},{}\n", names[a], names[b]);
    }
    let (mut xs, mut ys) = (String::new(), String::new());
    for &v in &order {
        xs += &format!("{},{},{}\n", names[v], x(v, 0), x(v, 1));
        ys += &format!("{},{}\n", names[v], y(v));
    }
    let e = write(root.path(), "e.csv", &e);
    let xs = write(root.path(), "x.csv", &xs);
    let ys = write(root.path(), "y.csv", &ys);

    let table = |path: &Path, schema: &str, cols: Vec<(u8, Vec<usize>)>| {
        let schema = Arc::new(parse_message_type(schema).unwrap());
        let f = std::fs::File::create(path).unwrap();
        let mut w = SerializedFileWriter::new(f, schema, Default::default()).unwrap();
        let mut rg = w.next_row_group().unwrap();
        for (kind, rows) in cols {
            let mut cw = rg.next_column().unwrap().unwrap();
            match kind {
                b's' => {
                    let v: Vec<ByteArray> = rows
                        .iter()
                        .map(|&v| ByteArray::from(names[v].as_str()))
                        .collect();
                    cw.typed::<ByteArrayType>()
                        .write_batch(&v, None, None)
                        .unwrap();
                }
                b'y' => {
                    let v: Vec<i64> = rows.iter().map(|&v| y(v)).collect();
                    cw.typed::<Int64Type>().write_batch(&v, None, None).unwrap();
                }
                j => {
                    let v: Vec<f32> = rows.iter().map(|&v| x(v, (j - b'0') as usize)).collect();
                    cw.typed::<FloatType>().write_batch(&v, None, None).unwrap();
                }
            }
            cw.close().unwrap();
        }
        rg.close().unwrap();
        w.close().unwrap();
    };
    let ep = root.path().join("e.parquet");
    table(
        &ep,
        "message e { REQUIRED BYTE_ARRAY src (UTF8); REQUIRED BYTE_ARRAY dst (UTF8); }",
        vec![
            (b's', edges.iter().map(|&(a, _)| a).collect()),
            (b's', edges.iter().map(|&(_, b)| b).collect()),
        ],
    );
    let np = root.path().join("n.parquet");
    table(
        &np,
        "message n { REQUIRED BYTE_ARRAY id (UTF8); REQUIRED FLOAT f0; REQUIRED FLOAT f1; \
         REQUIRED INT64 label; }",
        vec![
            (b's', order.clone()),
            (b'0', order.clone()),
            (b'1', order.clone()),
            (b'y', order.clone()),
        ],
    );

    let split = ["--split", "random:0.5,0.25", "--seed", "3"];
    let from_csv = root.path().join("d-csv");
    ok(run(&[
        &[
            "ingest",
            "--format",
            "csv",
            s(&e),
            "--relabel",
            "--features",
            s(&xs),
            "--labels",
            s(&ys),
            "--node-id-col",
            "0",
            "--out",
            s(&from_csv),
        ][..],
        &split,
    ]
    .concat()));
    let from_pq = root.path().join("d-pq");
    let pq_args = |out: &Path, relabel: bool| -> Vec<String> {
        let mut v: Vec<String> = [
            "ingest",
            "--format",
            "parquet",
            s(&ep),
            "--features",
            s(&np),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        v.extend(
            [
                "--node-id-col",
                "id",
                "--label-col",
                "label",
                "--out",
                s(out),
            ]
            .iter()
            .chain(&split)
            .map(|a| a.to_string()),
        );
        if relabel {
            v.push("--relabel".into());
        }
        v
    };
    let args = pq_args(&from_pq, false);
    fails(
        run(&args.iter().map(String::as_str).collect::<Vec<_>>()),
        &["e.parquet", "column src holds strings", "--relabel"],
    );
    assert!(!from_pq.exists());
    let args = pq_args(&from_pq, true);
    ok(run(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let ids = std::fs::read_to_string(from_pq.join("node_ids.csv")).unwrap();
    let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(ids.lines().skip(1).collect::<Vec<_>>(), want);
    assert_eq!(arrays(&from_csv), arrays(&from_pq));
}
