//! Link prediction as a user meets it (issue 14): `split-edges` holds edges out and records
//! the split, `train --task link` learns (full batch and on sampled batches) and `eval`
//! reproduces its figures, and bad input is refused with nothing written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scalegnn"))
        .args(args)
        .output()
        .expect("spawn scalegnn")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) {
    assert!(o.status.success(), "failed: {}", stderr(o));
}

fn fails(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for n in needles {
        assert!(err.contains(n), "error should mention {n:?}: {err}");
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn tiny(root: &Path) -> PathBuf {
    let out = root.join("tiny");
    ok(&run(&[
        "synth",
        "--preset",
        "tiny",
        "--seed",
        "1",
        "--out",
        p(&out),
    ]));
    out
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn test_auc(run_dir: &Path) -> f64 {
    let s = json(&run_dir.join("summary.json"));
    s["test_mean"].as_f64().unwrap()
}

#[test]
fn split_edges_then_link_training_learns_and_eval_reproduces_it() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path());
    ok(&run(&["split-edges", p(&ds), "--seed", "3"]));
    let m = json(&ds.join("manifest.json"));
    assert_eq!(m["link_split"]["seed"], 3);
    for f in [
        "link_train_pos.npy",
        "link_val_pos.npy",
        "link_val_neg.npy",
        "link_test_pos.npy",
        "link_test_neg.npy",
    ] {
        assert!(m["files"][f]["xxh3"].is_string(), "{f} not checksummed");
    }
    // The dataset still verifies: every new file is in the manifest.
    ok(&run(&["info", p(&ds)]));

    let out = root.path().join("gcn");
    let common = [
        "--task",
        "link",
        "--hidden",
        "32",
        "--dropout",
        "0",
        "--weight-decay",
        "0",
    ];
    let mut args = vec!["train", p(&ds), "--epochs", "60", "--out", p(&out)];
    args.extend(common);
    ok(&run(&args));
    let auc = test_auc(&out);
    // Chance is 0.5; the communities of the synthetic graph make links predictable.
    assert!(auc > 0.62, "test ROC-AUC {auc}");
    let cfg = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(cfg.contains("task = \"link\""), "{cfg}");

    // eval reloads the checkpoint on the same message-passing graph: the same test figure.
    let e = run(&["eval", p(&out), "--json"]);
    ok(&e);
    let v: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
    let again = v["test_roc_auc"].as_f64().unwrap();
    assert!((again - auc).abs() < 1e-6, "eval {again} vs train {auc}");
    for k in ["test_ap", "test_mrr", "test_hits@20", "val_hits@100"] {
        assert!(v[k].as_f64().is_some(), "eval lacks {k}: {v}");
    }
    // predict on a link run needs the pairs; with them it scores held-out positives above
    // the fixed negatives, the same from .npy rows and from CSV ids.
    fails(
        &run(&["predict", p(&out)]),
        &["link prediction run", "--edges"],
    );
    let read = |name: &str| {
        scalegnn_npy::read_array::<i64>(&ds.join(name))
            .unwrap()
            .to_vec()
    };
    let (pos, neg) = (read("link_test_pos.npy"), read("link_test_neg.npy"));
    let pairs: Vec<i64> = pos[..200].iter().chain(&neg[..200]).copied().collect();
    let pairs_npy = root.path().join("pairs.npy");
    scalegnn_npy::write_array(&pairs_npy, &[200, 2], &pairs).unwrap();
    ok(&run(&["predict", p(&out), "--edges", p(&pairs_npy)]));
    let sc = scalegnn_npy::read_array::<f32>(&out.join("pair_scores.npy"))
        .unwrap()
        .to_vec();
    assert_eq!(sc.len(), 200);
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(
        mean(&sc[..100]) > mean(&sc[100..]) + 0.02,
        "{} vs {}",
        mean(&sc[..100]),
        mean(&sc[100..])
    );
    let mut csv = String::from("src,dst\n");
    for q in pairs.chunks(2).take(3) {
        csv.push_str(&format!("{},{}\n", q[0], q[1]));
    }
    let pairs_csv = root.path().join("pairs.csv");
    std::fs::write(&pairs_csv, csv).unwrap();
    let scores_csv = root.path().join("scores.csv");
    ok(&run(&[
        "predict",
        p(&out),
        "--edges",
        p(&pairs_csv),
        "--out",
        p(&scores_csv),
    ]));
    let text = std::fs::read_to_string(&scores_csv).unwrap();
    let first: f32 = text
        .lines()
        .nth(1)
        .unwrap()
        .rsplit(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((first - sc[0]).abs() < 1e-5, "{first} vs {}", sc[0]);
    // Ids out of range and the wrong shape are errors naming the file; nothing is written.
    // A first line of integers out of range is an error too, not a header skipped.
    std::fs::write(&pairs_csv, "0,99999\n0,1\n").unwrap();
    fails(
        &run(&[
            "predict",
            p(&out),
            "--edges",
            p(&pairs_csv),
            "--out",
            p(&root.path().join("x.csv")),
        ]),
        &["pairs.csv", "line 1"],
    );
    std::fs::write(&pairs_csv, "0,1\n0,99999\n").unwrap();
    fails(
        &run(&[
            "predict",
            p(&out),
            "--edges",
            p(&pairs_csv),
            "--out",
            p(&root.path().join("x.csv")),
        ]),
        &["pairs.csv", "line 2"],
    );
    scalegnn_npy::write_array(&pairs_npy, &[2, 3], &[0i64, 1, 2, 3, 4, 5]).unwrap();
    fails(
        &run(&[
            "predict",
            p(&out),
            "--edges",
            p(&pairs_npy),
            "--out",
            p(&root.path().join("y.npy")),
        ]),
        &["pairs.npy", "[pairs, 2]"],
    );
    assert!(!root.path().join("x.csv").exists() && !root.path().join("y.npy").exists());

    // topk: each query's best k by the decoder, best first, never the node itself.
    let tk = root.path().join("tk.npy");
    ok(&run(&[
        "topk",
        p(&out),
        "--k",
        "4",
        "--nodes",
        "0,5",
        "--out",
        p(&tk),
    ]));
    let ids = scalegnn_npy::read_array::<i64>(&tk).unwrap();
    assert_eq!(ids.shape(), &[2, 4]);
    assert!(!ids[..4].contains(&0) && !ids[4..].contains(&5));
    let ts = scalegnn_npy::read_array::<f32>(&root.path().join("tk_scores.npy")).unwrap();
    assert!(ts[..4].windows(2).all(|w| w[0] >= w[1]), "{:?}", &ts[..4]);
    fails(
        &run(&["topk", p(&out), "--nodes", "0,abc"]),
        &["--nodes", "abc"],
    );

    // The Hadamard + MLP decoder: its parameters train, are saved and reload with the model.
    let mlp = root.path().join("mlp");
    let mut args = vec![
        "train",
        p(&ds),
        "--epochs",
        "30",
        "--decoder",
        "mlp",
        "--out",
        p(&mlp),
    ];
    args.extend(common);
    ok(&run(&args));
    let params = |d: &Path| {
        json(&d.join("summary.json"))["num_params"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(params(&mlp) - params(&out), (32 * 32 + 32 + 32 + 1) as f64);
    let e = run(&["eval", p(&mlp), "--json"]);
    ok(&e);
    let v: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
    let (a, b) = (v["test_roc_auc"].as_f64().unwrap(), test_auc(&mlp));
    assert!((a - b).abs() < 1e-6 && b > 0.6, "eval {a} vs train {b}");
    fails(
        &run(&["train", p(&ds), "--task", "node", "--decoder", "mlp"]),
        &["decoder", "--task link"],
    );

    // Sampled batches (the endpoints' neighbourhoods), degree-biased negatives, two each.
    let out = root.path().join("sage");
    ok(&run(&[
        "train",
        p(&ds),
        "--task",
        "link",
        "--model",
        "gcn",
        "--loader",
        "neighbor",
        "--fanouts",
        "10,5",
        "--batch-size",
        "1024",
        "--negative-sampling",
        "degree",
        "--negatives",
        "2",
        "--epochs",
        "8",
        "--out",
        p(&out),
    ]));
    let auc = test_auc(&out);
    assert!(auc > 0.65, "sampled test ROC-AUC {auc}");
}

#[test]
fn bad_link_input_is_refused_and_nothing_is_written() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path());
    let before = std::fs::read(ds.join("manifest.json")).unwrap();
    let no_link_files = |ds: &Path| {
        std::fs::read_dir(ds).unwrap().all(|e| {
            !e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("link_")
        })
    };
    // Fractions that sum above 1, the wrong count, not numbers.
    for (bad, needle) in [
        ("0.9,0.1,0.1", "sum"),
        ("0.8,0.2", "three fractions"),
        ("0.8,x,0.1", "not a number"),
    ] {
        fails(
            &run(&["split-edges", p(&ds), "--link-split", bad]),
            &["--link-split", needle],
        );
    }
    assert!(no_link_files(&ds));
    assert_eq!(std::fs::read(ds.join("manifest.json")).unwrap(), before);
    // A link task on a dataset without an edge split.
    fails(
        &run(&[
            "train",
            p(&ds),
            "--task",
            "link",
            "--out",
            p(&root.path().join("r")),
        ]),
        &["edge split", "split-edges"],
    );
    assert!(!root.path().join("r").exists());
    fails(
        &run(&["train", p(&ds), "--task", "edges"]),
        &["task", "unknown task"],
    );
    // A graph with too few edges to split.
    let csv = root.path().join("e.csv");
    std::fs::write(&csv, "0,1\n1,2\n").unwrap();
    let small = root.path().join("small");
    ok(&run(&[
        "ingest",
        "--format",
        "csv",
        p(&csv),
        "--out",
        p(&small),
    ]));
    fails(&run(&["split-edges", p(&small)]), &["too few"]);
    assert!(no_link_files(&small));
    // The same through ingest: the dataset it would have created is not left behind.
    let small2 = root.path().join("small2");
    fails(
        &run(&[
            "ingest",
            "--format",
            "csv",
            p(&csv),
            "--out",
            p(&small2),
            "--link-split",
            "0.85,0.05,0.10",
        ]),
        &["too few"],
    );
    assert!(!small2.exists());
    // A second split needs --force.
    ok(&run(&["split-edges", p(&ds)]));
    fails(&run(&["split-edges", p(&ds)]), &["already has", "--force"]);
    ok(&run(&["split-edges", p(&ds), "--force", "--seed", "9"]));
    assert_eq!(json(&ds.join("manifest.json"))["link_split"]["seed"], 9);

    // An edge list alone (no features) splits, then training says what is missing and
    // how to give it, and leaves no run directory.
    let edges = root.path().join("plain.csv");
    let lines: String = (0..60)
        .map(|i| format!("n{i},n{}\n", (i * 7 + 1) % 60))
        .collect();
    std::fs::write(&edges, format!("from,to\n{lines}")).unwrap();
    let plain = root.path().join("plain");
    // Ingests the edge list into `plain`, with `extra` flags.
    let ingest_plain = |extra: &[&str]| {
        let mut args = vec![
            "ingest",
            "--format",
            "csv",
            p(&edges),
            "--header",
            "--relabel",
            "--undirected",
            "--out",
            p(&plain),
            "--force",
            "--link-split",
            "0.8,0.1,0.1",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    ok(&ingest_plain(&[]));
    let out = root.path().join("plain-run");
    fails(
        &run(&[
            "train",
            p(&plain),
            "--task",
            "link",
            "--epochs",
            "2",
            "--out",
            p(&out),
        ]),
        &[
            "no node features",
            "x.npy",
            "--features",
            "--degree-features",
        ],
    );
    assert!(!out.exists());
    // With the structural features it trains; they are 5 columns, and a node's first is
    // ln(1 + its in-degree).
    ok(&ingest_plain(&["--degree-features"]));
    let m = json(&plain.join("manifest.json"));
    assert_eq!(m["num_features"], 5);
    let indptr: Vec<i64> = scalegnn_npy::open_mmap::<i64>(&plain.join("indptr.npy"))
        .unwrap()
        .to_vec();
    let x: Vec<f32> = scalegnn_npy::open_mmap::<f32>(&plain.join("x.npy"))
        .unwrap()
        .to_vec();
    for v in 0..indptr.len() - 1 {
        let deg = (indptr[v + 1] - indptr[v]) as f32;
        assert!((x[5 * v] - deg.ln_1p()).abs() < 1e-6, "node {v}");
    }
    ok(&run(&[
        "train",
        p(&plain),
        "--task",
        "link",
        "--epochs",
        "2",
        "--out",
        p(&out),
    ]));
    // Features given with the flag are refused: it is for graphs without them.
    let feats = root.path().join("x.npy");
    scalegnn_npy::write_array(&feats, &[60, 1], &vec![1f32; 60]).unwrap();
    fails(
        &run(&[
            "ingest",
            "--format",
            "csv",
            p(&edges),
            "--header",
            "--relabel",
            "--features",
            p(&feats),
            "--degree-features",
            "--out",
            p(&root.path().join("both")),
        ]),
        &["degree features", "its own"],
    );
    assert!(!root.path().join("both").exists());
}

#[test]
fn sagmm_links_on_sampled_batches_gate_on_the_message_graph() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path());
    ok(&run(&["split-edges", p(&ds), "--seed", "3"]));
    let gate_tables = || -> Vec<(String, serde_json::Value)> {
        let mut v: Vec<_> = std::fs::read_dir(ds.join("derived"))
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| p.join("derived.json").exists())
                    .map(|p| {
                        let name = p.file_name().unwrap().to_string_lossy().into_owned();
                        (name, json(&p.join("derived.json")))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let train = |out: &Path, task: &str| {
        run(&[
            "train",
            p(&ds),
            "--task",
            task,
            "--model",
            "sagmm",
            "--loader",
            "neighbor",
            "--fanouts",
            "10,5",
            "--batch-size",
            "1024",
            "--hidden",
            "32",
            "--epochs",
            "30",
            "--out",
            p(out),
        ])
    };
    let out = root.path().join("sagmm");
    ok(&train(&out, "link"));
    let auc = test_auc(&out);
    assert!(auc > 0.6, "sampled SAGMM test ROC-AUC {auc}");
    // The gate table's key names the held-out edges removed from the graph.
    let tables = gate_tables();
    assert_eq!(tables.len(), 1, "{tables:?}");
    let topo = |m: &serde_json::Value| {
        let t = &m["inputs"]["topology"];
        assert!(t.is_object(), "no topology in {m}");
        t.as_object().unwrap().keys().cloned().collect::<Vec<_>>()
    };
    let link_topo = topo(&tables[0].1);
    for f in ["indptr.npy", "link_val_pos.npy", "link_test_pos.npy"] {
        assert!(link_topo.iter().any(|k| k == f), "{f} not in {link_topo:?}");
    }
    // A node run over the whole graph builds its own table and keeps the link one.
    ok(&train(&root.path().join("node"), "node"));
    let tables = gate_tables();
    assert_eq!(tables.len(), 2, "{tables:?}");
    assert!(tables
        .iter()
        .any(|t| !topo(&t.1).iter().any(|k| k.starts_with("link_"))));
    // A new split is another message graph: a new link table, the old one removed as stale.
    let old_link = tables
        .iter()
        .find(|t| topo(&t.1).iter().any(|k| k.starts_with("link_")))
        .unwrap()
        .0
        .clone();
    ok(&run(&["split-edges", p(&ds), "--seed", "4", "--force"]));
    ok(&train(&root.path().join("sagmm2"), "link"));
    let names: Vec<String> = gate_tables().into_iter().map(|t| t.0).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(!names.contains(&old_link), "{names:?}");
}

#[test]
fn a_sagmm_link_checkpoint_reloads_the_model_it_trained() {
    // The link encoder's experts end in a plain convolution: a reload that rebuilt them for
    // node tasks (LayerNorm and ReLU on the last one) scored other numbers than training.
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path());
    ok(&run(&["split-edges", p(&ds), "--seed", "3"]));
    let out = root.path().join("run");
    ok(&run(&[
        "train",
        p(&ds),
        "--task",
        "link",
        "--model",
        "sagmm",
        "--hidden",
        "16",
        "--epochs",
        "8",
        "--out",
        p(&out),
    ]));
    let auc = test_auc(&out);
    let e = run(&["eval", p(&out), "--json"]);
    ok(&e);
    let v: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
    let again = v["test_roc_auc"].as_f64().unwrap();
    assert!((again - auc).abs() < 1e-6, "eval {again} vs train {auc}");
}

#[test]
fn link_training_out_of_core_under_a_budget_learns() {
    // Link batches under --mem-budget go through the budget's planner, which samples the
    // training pairs' endpoints: an endpoint shared by two pairs was refused as a repeated
    // seed before it was deduplicated.
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path());
    ok(&run(&["split-edges", p(&ds), "--seed", "2"]));
    let out = root.path().join("ooc");
    ok(&run(&[
        "train",
        p(&ds),
        "--task",
        "link",
        "--model",
        "sage",
        "--loader",
        "neighbor",
        "--fanouts",
        "10,5",
        "--batch-size",
        "256",
        "--epochs",
        "15",
        "--direct-io",
        "true",
        "--mem-budget",
        "64MiB",
        "--out",
        p(&out),
    ]));
    let auc = test_auc(&out);
    assert!(auc > 0.6, "out-of-core link test ROC-AUC {auc}");

    // topk runs a sampled run's model layer by layer; predict scores pairs with one
    // whole-graph pass: both rank the same neighbours.
    let n = json(&ds.join("manifest.json"))["num_nodes"]
        .as_u64()
        .unwrap() as usize;
    let queries = [0usize, 7];
    let pairs: Vec<i64> = queries
        .iter()
        .flat_map(|&q| {
            (0..n)
                .filter(move |&v| v != q)
                .flat_map(move |v| [q as i64, v as i64])
        })
        .collect();
    let pairs_npy = root.path().join("pairs.npy");
    scalegnn_npy::write_array(&pairs_npy, &[pairs.len() / 2, 2], &pairs).unwrap();
    let scores_npy = root.path().join("scores.npy");
    ok(&run(&[
        "predict",
        p(&out),
        "--edges",
        p(&pairs_npy),
        "--out",
        p(&scores_npy),
    ]));
    let scores = scalegnn_npy::read_array::<f32>(&scores_npy).unwrap();
    let tk = root.path().join("tk.npy");
    ok(&run(&[
        "topk",
        p(&out),
        "--k",
        "3",
        "--nodes",
        "0,7",
        "--out",
        p(&tk),
    ]));
    let ids = scalegnn_npy::read_array::<i64>(&tk).unwrap();
    for (qi, q) in queries.into_iter().enumerate() {
        let own = &scores[qi * (n - 1)..(qi + 1) * (n - 1)];
        let mut order: Vec<usize> = (0..n - 1).collect();
        order.sort_by(|&a, &b| own[b].total_cmp(&own[a]));
        // Row r of the query's pairs is node r, or r + 1 past the query itself.
        let order: Vec<usize> = order
            .iter()
            .map(|&r| if r < q { r } else { r + 1 })
            .collect();
        let got: Vec<usize> = ids[qi * 3..qi * 3 + 3]
            .iter()
            .map(|&v| v as usize)
            .collect();
        // Scores within float noise may swap places; the best is clear of its runner-up.
        assert_eq!(
            got[0],
            order[0],
            "query {q}: topk {got:?}, embeddings {:?}",
            &order[..3]
        );
        for v in &got {
            assert!(
                order[..6].contains(v),
                "query {q}: {v} is not near the top {:?}",
                &order[..6]
            );
        }
    }
}

#[test]
fn a_split_given_with_the_dataset_is_imported_checked_and_used() {
    let root = tempfile::tempdir().unwrap();
    // A split drawn on one copy stands in for one shipped with the data (OGB's).
    let a = tiny(root.path());
    ok(&run(&[
        "split-edges",
        p(&a),
        "--seed",
        "4",
        "--negatives",
        "3",
    ]));
    let given = root.path().join("given");
    std::fs::create_dir(&given).unwrap();
    for f in [
        "link_train_pos.npy",
        "link_val_pos.npy",
        "link_val_neg.npy",
        "link_test_pos.npy",
        "link_test_neg.npy",
    ] {
        std::fs::copy(a.join(f), given.join(f)).unwrap();
    }
    let b = root.path().join("b");
    ok(&run(&[
        "synth",
        "--preset",
        "tiny",
        "--seed",
        "1",
        "--out",
        p(&b),
    ]));
    let unsplit = std::fs::read(b.join("manifest.json")).unwrap();

    // A part missing, or an id out of range: refused, naming the file; nothing written.
    let broken = root.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    for f in ["link_train_pos.npy", "link_val_pos.npy", "link_val_neg.npy"] {
        std::fs::copy(given.join(f), broken.join(f)).unwrap();
    }
    fails(
        &run(&["split-edges", p(&b), "--from", p(&broken)]),
        &["link_test_pos.npy", "missing"],
    );
    std::fs::copy(
        given.join("link_test_neg.npy"),
        broken.join("link_test_neg.npy"),
    )
    .unwrap();
    scalegnn_npy::write_array(&broken.join("link_test_pos.npy"), &[1, 2], &[0i64, 99_999]).unwrap();
    fails(
        &run(&["split-edges", p(&b), "--from", p(&broken)]),
        &["link_test_pos.npy", "99999"],
    );
    fails(
        &run(&["split-edges", p(&b), "--from", p(&given), "--seed", "2"]),
        &["--seed"],
    );
    assert_eq!(std::fs::read(b.join("manifest.json")).unwrap(), unsplit);
    assert!(!b.join("link_train_pos.npy").exists());

    // Imported: the same pairs, recorded as imported with its negatives per positive.
    ok(&run(&["split-edges", p(&b), "--from", p(&given)]));
    for f in ["link_val_neg.npy", "link_test_pos.npy"] {
        let (x, y) = (
            scalegnn_npy::read_array::<i64>(&given.join(f)).unwrap(),
            scalegnn_npy::read_array::<i64>(&b.join(f)).unwrap(),
        );
        assert_eq!(&x[..], &y[..], "{f}");
    }
    let m = json(&b.join("manifest.json"));
    assert_eq!(m["link_split"]["negatives_per_positive"], 3);
    assert!(m["link_split"]["source"]
        .as_str()
        .unwrap()
        .ends_with("given"));
    let info = run(&["info", p(&b)]);
    ok(&info);
    assert!(String::from_utf8_lossy(&info.stdout).contains("imported from"));
    // A link run trains on it.
    let out = root.path().join("run");
    ok(&run(&[
        "train",
        p(&b),
        "--task",
        "link",
        "--model",
        "gcn",
        "--epochs",
        "30",
        "--out",
        p(&out),
    ]));
    let auc = test_auc(&out);
    assert!(auc > 0.6, "test ROC-AUC {auc} on the imported split");
}
