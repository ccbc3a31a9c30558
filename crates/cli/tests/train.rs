//! End-to-end tests of `scalegnn train | eval | predict | embed` and their bad-input errors.

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

fn tiny(root: &Path, name: &str, seed: &str) -> PathBuf {
    let out = root.join(name);
    assert_ok(&run(&[
        "synth",
        "--preset",
        "tiny",
        "--seed",
        seed,
        "--out",
        p(&out),
    ]));
    out
}

#[test]
fn train_writes_a_run_directory_that_eval_predict_and_embed_reload() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "tiny", "1");
    let run_dir = root.path().join("run");
    let cfg = root.path().join("run.toml");
    std::fs::write(&cfg, "model = \"sage\"\nhidden = 8\nepochs = 30\n").unwrap();
    // Flags override the file: epochs 20 wins over 30.
    assert_ok(&run(&[
        "train",
        p(&ds),
        "--config",
        p(&cfg),
        "--epochs",
        "20",
        "--out",
        p(&run_dir),
    ]));
    for f in [
        "config.toml",
        "metrics.jsonl",
        "summary.json",
        "checkpoint/model.json",
    ] {
        assert!(run_dir.join(f).exists(), "{f} missing");
    }
    let resolved = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    assert!(
        resolved.contains("model = \"sage\"") && resolved.contains("epochs = 20"),
        "{resolved}"
    );
    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    assert_eq!(last["split"], "test");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(
        summary["test_mean"], last["value"],
        "summary and last metrics line agree"
    );

    let o = run(&["eval", "--json", p(&run_dir)]);
    assert_ok(&o);
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        e["test_acc"], last["value"],
        "the reloaded checkpoint reproduces the reported test accuracy"
    );

    assert_ok(&run(&["predict", p(&run_dir)]));
    let pred = scalegnn_npy::read_array::<i64>(&run_dir.join("predictions.npy")).unwrap();
    assert_eq!(pred.shape(), &[2000]);
    assert!(pred.iter().all(|&c| (0..5).contains(&c)));
    assert_ok(&run(&["embed", p(&run_dir)]));
    let emb = scalegnn_npy::read_array::<f32>(&run_dir.join("embeddings.npy")).unwrap();
    assert_eq!(emb.shape(), &[2000, 8]);

    // A second run into the same directory is refused.
    assert_fails(
        &run(&["train", p(&ds), "--out", p(&run_dir)]),
        &["already holds a run"],
    );
}

#[test]
fn config_and_model_errors_name_the_culprit() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "tiny", "2");
    let cfg = root.path().join("bad.toml");
    std::fs::write(&cfg, "model = \"gcn\"\nhiden = 8\n").unwrap();
    assert_fails(
        &run(&[
            "train",
            p(&ds),
            "--config",
            p(&cfg),
            "--out",
            p(&root.path().join("r1")),
        ]),
        &["hiden"],
    );
    assert_fails(
        &run(&[
            "train",
            p(&ds),
            "--model",
            "transformer",
            "--out",
            p(&root.path().join("r2")),
        ]),
        &["transformer", "gcn"],
    );
}

#[test]
fn datasets_missing_what_the_task_needs_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let edges = root.path().join("e.csv");
    std::fs::write(&edges, "0,1\n1,2\n2,0\n").unwrap();
    let no_y = root.path().join("no-y");
    let x = root.path().join("x.csv");
    std::fs::write(&x, "1,0\n0,1\n1,1\n").unwrap();
    assert_ok(&run(&[
        "ingest",
        "--format",
        "csv",
        p(&edges),
        "--features",
        p(&x),
        "--out",
        p(&no_y),
    ]));
    assert_fails(
        &run(&["train", p(&no_y), "--out", p(&root.path().join("r"))]),
        &["no node labels"],
    );
    let no_x = root.path().join("no-x");
    let y = root.path().join("y.txt");
    std::fs::write(&y, "0\n1\n0\n").unwrap();
    assert_ok(&run(&[
        "ingest",
        "--format",
        "csv",
        p(&edges),
        "--labels",
        p(&y),
        "--out",
        p(&no_x),
    ]));
    assert_fails(
        &run(&["train", p(&no_x), "--out", p(&root.path().join("r"))]),
        &["no node features"],
    );
}

#[test]
fn nan_loss_stops_with_the_epoch() {
    let root = tempfile::tempdir().unwrap();
    let edges = root.path().join("e.csv");
    std::fs::write(&edges, "0,1\n1,2\n2,3\n3,0\n").unwrap();
    let x = root.path().join("x.csv");
    // Finite in f32, but their products overflow to infinity in the first layer.
    std::fs::write(&x, "3e38,3e38\n3e38,-3e38\n-3e38,3e38\n3e38,3e38\n").unwrap();
    let y = root.path().join("y.txt");
    std::fs::write(&y, "0\n1\n0\n1\n").unwrap();
    let ds = root.path().join("huge");
    assert_ok(&run(&[
        "ingest",
        "--format",
        "csv",
        p(&edges),
        "--features",
        p(&x),
        "--labels",
        p(&y),
        "--split",
        "random:0.5,0.25",
        "--out",
        p(&ds),
    ]));
    let o = run(&[
        "train",
        p(&ds),
        "--normalize-features",
        "false",
        "--out",
        p(&root.path().join("r")),
    ]);
    assert_fails(&o, &["epoch 1"]);
}

#[test]
fn a_checkpoint_of_another_shape_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let a = tiny(root.path(), "a", "3");
    let b = root.path().join("b");
    assert_ok(&run(&[
        "synth",
        "--preset",
        "tiny",
        "--features",
        "9",
        "--out",
        p(&b),
    ]));
    let run_dir = root.path().join("run");
    assert_ok(&run(&[
        "train",
        p(&a),
        "--epochs",
        "3",
        "--out",
        p(&run_dir),
    ]));
    assert_fails(
        &run(&["eval", p(&run_dir), "--dataset", p(&b)]),
        &["checkpoint does not match"],
    );
}

fn train_losses(metrics: &Path) -> Vec<f64> {
    std::fs::read_to_string(metrics)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"metric\":\"loss\"") && l.contains("\"train\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["value"].as_f64().unwrap()
        })
        .collect()
}

#[test]
fn minibatch_with_full_neighbourhoods_matches_full_batch_exactly() {
    // One batch holding every training node, all neighbours, no dropout: the sampled blocks
    // must compute exactly the full-graph model, so the loss curves agree. (Not GIN: its
    // batch norm sees a block's rows, not the whole graph's, so its statistics differ.)
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "tiny", "3");
    // SGC takes 2 hops in one layer; ChebNet and MixHop 2 hops in each of 2 layers.
    for (model, fanouts) in [
        ("sage", "-1,-1"),
        ("gcn", "-1,-1"),
        ("gat", "-1,-1"),
        ("jk", "-1,-1"),
        ("mlp", "-1,-1"),
        ("sgc", "-1,-1"),
        ("cheb", "-1,-1,-1,-1"),
        ("mixhop", "-1,-1,-1,-1"),
    ] {
        let full = root.path().join(format!("full-{model}"));
        let mb = root.path().join(format!("mb-{model}"));
        let common = [
            "--model",
            model,
            "--dropout",
            "0",
            "--epochs",
            "4",
            "--hidden",
            "16",
            "--normalize-features",
            "false",
        ];
        let mut a = vec!["train", p(&ds)];
        a.extend(common);
        a.extend(["--out", p(&full)]);
        assert_ok(&run(&a));
        let mut b = vec!["train", p(&ds)];
        b.extend(common);
        b.extend([
            "--loader",
            "neighbor",
            "--fanouts",
            fanouts,
            "--batch-size",
            "100000",
            "--out",
            p(&mb),
        ]);
        assert_ok(&run(&b));
        let (lf, lm) = (
            train_losses(&full.join("metrics.jsonl")),
            train_losses(&mb.join("metrics.jsonl")),
        );
        assert_eq!(lf.len(), 4, "{model}");
        assert_eq!(lm.len(), 4, "{model}");
        for (x, y) in lf.iter().zip(&lm) {
            assert!(
                (x - y).abs() < 1e-4 * x.abs().max(1.0),
                "{model}: {lf:?} vs {lm:?}"
            );
        }
    }
}

#[test]
fn minibatch_training_learns_and_reports_stage_times() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "tiny", "4");
    let out = root.path().join("run");
    assert_ok(&run(&[
        "train",
        p(&ds),
        "--model",
        "sage",
        "--loader",
        "neighbor",
        "--fanouts",
        "10,5",
        "--batch-size",
        "64",
        "--hidden",
        "32",
        "--lr",
        "0.01",
        "--epochs",
        "15",
        "--out",
        p(&out),
    ]));
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    for m in [
        "sample_ms",
        "fetch_ms",
        "compute_ms",
        "wait_ms",
        "seeds_per_s",
    ] {
        assert!(text.contains(&format!("\"metric\":\"{m}\"")), "no {m} line");
    }
    let losses = train_losses(&out.join("metrics.jsonl"));
    assert!(losses[losses.len() - 1] < 0.8 * losses[0], "{losses:?}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let acc = summary["test_mean"].as_f64().unwrap();
    // Chance is 1/classes; the tiny preset is homophilous, so a trained SAGE is far above it.
    assert!(acc > 0.5, "test accuracy {acc}");
}

#[test]
fn minibatch_rejects_mismatched_fanouts_and_unsupported_models() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "tiny", "5");
    let o = run(&[
        "train",
        p(&ds),
        "--loader",
        "neighbor",
        "--fanouts",
        "10,5",
        "--layers",
        "3",
        "--out",
        p(&root.path().join("a")),
    ]);
    assert_fails(&o, &["fanouts", "3 layers"]);
    let o = run(&[
        "train",
        p(&ds),
        "--loader",
        "neighbor",
        "--model",
        "cheb",
        "--fanouts",
        "10,5",
        "--out",
        p(&root.path().join("b")),
    ]);
    assert_fails(
        &o,
        &["fanouts has 2 hops", "cheb takes 4 propagation steps"],
    );
    // Exact evaluation needs a model that runs layer by layer: refused before training.
    let o = run(&[
        "train",
        p(&ds),
        "--loader",
        "neighbor",
        "--model",
        "gat",
        "--exact-eval",
        "true",
        "--out",
        p(&root.path().join("b2")),
    ]);
    assert_fails(&o, &["exact_eval", "gat cannot run layer by layer"]);
    assert!(!root.path().join("b2").join("summary.json").exists());
    let o = run(&[
        "train",
        p(&ds),
        "--loader",
        "random-walk",
        "--out",
        p(&root.path().join("c")),
    ]);
    assert_fails(&o, &["loader", "random-walk"]);
    for key in ["batch-size", "eval-max", "prefetch", "io-threads"] {
        let out = root.path().join(format!("zero-{key}"));
        let flag = format!("--{key}");
        let o = run(&[
            "train",
            p(&ds),
            "--loader",
            "neighbor",
            "--fanouts",
            "5,5",
            &flag,
            "0",
            "--out",
            p(&out),
        ]);
        assert_fails(&o, &[&key.replace('-', "_"), "at least 1"]);
    }
}

#[test]
fn a_feature_cache_changes_no_number_and_a_small_budget_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "tiny", "6");
    let base = [
        "--model",
        "sage",
        "--loader",
        "neighbor",
        "--fanouts",
        "5,5",
        "--batch-size",
        "64",
        "--hidden",
        "16",
        "--epochs",
        "3",
    ];
    let (plain, cached, budget) = (
        root.path().join("plain"),
        root.path().join("cached"),
        root.path().join("budget"),
    );
    let mut a = vec!["train", p(&ds)];
    a.extend(base);
    a.extend(["--out", p(&plain)]);
    assert_ok(&run(&a));
    let mut b = vec!["train", p(&ds)];
    b.extend(base);
    b.extend(["--cache-rows", "300", "--out", p(&cached)]);
    assert_ok(&run(&b));
    let mut c = vec!["train", p(&ds)];
    c.extend(base);
    c.extend(["--mem-budget", "64MiB", "--out", p(&budget)]);
    assert_ok(&run(&c));
    // Direct I/O past the page cache, alone and behind the budgeted cache: same rows.
    let (direct, direct_budget) = (root.path().join("direct"), root.path().join("direct-b"));
    for (out, extra) in [
        (&direct, vec!["--direct-io", "true"]),
        (
            &direct_budget,
            vec!["--direct-io", "true", "--mem-budget", "64MiB"],
        ),
    ] {
        let mut f = vec!["train", p(&ds)];
        f.extend(base);
        f.extend(extra);
        f.extend(["--out", p(out)]);
        assert_ok(&run(&f));
    }
    let want = train_losses(&plain.join("metrics.jsonl"));
    assert_eq!(train_losses(&cached.join("metrics.jsonl")), want);
    assert_eq!(train_losses(&budget.join("metrics.jsonl")), want);
    assert_eq!(train_losses(&direct.join("metrics.jsonl")), want);
    assert_eq!(train_losses(&direct_budget.join("metrics.jsonl")), want);
    // SQLite read through the O_DIRECT VFS: the same rows, so the same losses.
    assert_ok(&run(&["store", p(&ds), "--store", "sqlite"]));
    let sq = root.path().join("sq");
    let mut g = vec!["train", p(&ds)];
    g.extend(base);
    g.extend(["--store", "sqlite", "--direct-io", "true", "--out", p(&sq)]);
    assert_ok(&run(&g));
    assert_eq!(train_losses(&sq.join("metrics.jsonl")), want);
    // A postgres store's rows live on its server: refused before any connection.
    let pg = root.path().join("pg");
    let mut h = vec!["train", p(&ds)];
    h.extend(base);
    h.extend([
        "--store",
        "postgres",
        "--direct-io",
        "true",
        "--out",
        p(&pg),
    ]);
    assert_fails(&run(&h), &["direct_io", "postgres"]);
    let text = std::fs::read_to_string(cached.join("metrics.jsonl")).unwrap();
    assert!(
        text.contains("\"metric\":\"cache_hit_rate\""),
        "no hit rate line"
    );

    let (refused, bad) = (root.path().join("refused"), root.path().join("bad"));
    let mut d = vec!["train", p(&ds)];
    d.extend(base);
    d.extend(["--mem-budget", "16KiB", "--out", p(&refused)]);
    assert_fails(
        &run(&d),
        &["mem_budget", "cannot hold one batch", "use at least"],
    );
    let mut e = vec!["train", p(&ds)];
    e.extend(base);
    e.extend(["--mem-budget", "lots", "--out", p(&bad)]);
    assert_fails(&run(&e), &["mem_budget", "lots"]);
}

#[test]
fn profile_reports_every_stage_and_names_the_bound() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "tiny", "8");
    let jsonl = root.path().join("p.jsonl");
    let o = run(&[
        "profile",
        p(&ds),
        "--model",
        "sage",
        "--fanouts",
        "5,5",
        "--batch-size",
        "32",
        "--batches",
        "3",
        "--warmup",
        "1",
        "--cache-rows",
        "100",
        "--jsonl",
        p(&jsonl),
    ]);
    assert_ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.trim_end()
            .lines()
            .last()
            .unwrap_or("")
            .contains("bound by"),
        "the verdict is not the last line: {out}"
    );
    let text = std::fs::read_to_string(&jsonl).unwrap();
    for m in [
        "sampler_seeds_per_s",
        "sample_seeds_per_s",
        "train_seeds_per_s",
        "train_compute_ms",
        "cache_hit_rate",
        "peak_rss_mib",
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("\"metric\":\"{m}\"")))
            .unwrap_or_else(|| panic!("no {m} line in {text}"));
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["value"].as_f64().unwrap() >= 0.0, "{m}: {line}");
        assert_eq!(v["engine"], "scalegnn");
    }
    // Fan-outs that do not give every propagation step a hop are refused with the reason.
    let o = run(&["profile", p(&ds), "--model", "mixhop", "--fanouts", "5,5"]);
    assert_fails(&o, &["mixhop takes 4 propagation steps"]);
}

/// The `moe` metric lines named `metric` in a run's metrics.
fn moe_values(metrics: &Path, metric: &str) -> Vec<f64> {
    std::fs::read_to_string(metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["split"] == "moe" && v["metric"] == metric)
        .map(|v| v["value"].as_f64().unwrap())
        .collect()
}

#[test]
fn sagmm_prunes_reports_and_its_pruned_checkpoint_reloads() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "tiny", "6");
    let run_dir = root.path().join("sagmm");
    assert_ok(&run(&[
        "train",
        p(&ds),
        "--model",
        "sagmm",
        "--hidden",
        "16",
        "--epochs",
        "12",
        "--prune-interval",
        "3",
        "--prune-factor",
        "0.9",
        // Pruning during training only (the final checked pruning has its own test).
        "--best-expert",
        "false",
        "--out",
        p(&run_dir),
    ]));
    let m = run_dir.join("metrics.jsonl");
    let pruned = moe_values(&m, "pruned_expert");
    assert!(
        !pruned.is_empty(),
        "factor 0.9 every 3 epochs pruned nothing"
    );
    // The expert-supervision weight is recorded although it was defaulted.
    let cfg = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    assert!(cfg.contains("expert_loss = 0.5"), "{cfg}");
    let params = moe_values(&m, "params");
    assert!(params.last() < params.first(), "{params:?}");
    assert_eq!(moe_values(&m, "importance_0_gcn").len(), 12);
    // Epoch 12 is a pruning epoch (interval 3) but the last: nothing is pruned there.
    let text = std::fs::read_to_string(&m).unwrap();
    for l in text.lines().filter(|l| l.contains("\"pruned_expert\"")) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(
            v["epoch"].as_u64().unwrap() < 12,
            "pruned at the last epoch: {l}"
        );
    }
    let hist: f64 = (1..=8)
        .map(|k| moe_values(&m, &format!("nodes_using_{k}_experts"))[0])
        .sum();
    assert_eq!(
        hist as usize, 2000,
        "every node of the tiny preset is counted once"
    );
    assert!(run_dir.join("sagmm.png").exists() || !run_dir.join("curves.png").exists());
    // The checkpoint holds the pruned mixture: eval reloads it and reproduces the test figure.
    let text = std::fs::read_to_string(&m).unwrap();
    let last = text
        .lines()
        .rev()
        .find(|l| l.contains("\"split\":\"test\""))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .unwrap();
    let o = run(&["eval", "--json", p(&run_dir)]);
    assert_ok(&o);
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(e["test_acc"], last["value"]);
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("checkpoint/model.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["pruned"].as_array().unwrap().len(), pruned.len());
}

#[test]
fn sagmm_ends_on_its_best_expert_when_validation_prefers_it() {
    let root = tempfile::tempdir().unwrap();
    let ds = root.path().join("hetero");
    assert_ok(&run(&[
        "synth",
        "--preset",
        "tiny",
        "--homophily",
        "0.2",
        "--seed",
        "1",
        "--out",
        p(&ds),
    ]));
    let mut ended_on_one = 0;
    for seed in ["0", "1", "2", "3"] {
        let run_dir = root.path().join(format!("run{seed}"));
        assert_ok(&run(&[
            "--threads",
            "1",
            "train",
            p(&ds),
            "--model",
            "sagmm",
            "--expert-pool",
            "gcn,mlp,sage",
            "--hidden",
            "8",
            "--epochs",
            "30",
            "--seed",
            seed,
            "--out",
            p(&run_dir),
        ]));
        let m = run_dir.join("metrics.jsonl");
        let alone: Vec<f64> = (0..3)
            .map(|e| moe_values(&m, &format!("val_acc_expert_{e}"))[0])
            .collect();
        let result: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run_dir.join("result.json")).unwrap())
                .unwrap();
        let best_val = result["best_val"].as_f64().unwrap();
        // The kept model is never below any of its experts alone on validation.
        for a in &alone {
            assert!(best_val >= *a, "kept {best_val}, an expert alone {a}");
        }
        let chosen = moe_values(&m, "best_expert");
        if let Some(&e) = chosen.first() {
            ended_on_one += 1;
            assert_eq!(best_val, alone[e as usize]);
            // The checkpoint holds that expert alone: eval reproduces the test figure.
            let meta: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(run_dir.join("checkpoint/model.json")).unwrap(),
            )
            .unwrap();
            let mut pruned: Vec<u64> = meta["pruned"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            pruned.sort_unstable();
            let others: Vec<u64> = (0..3).filter(|&o| o != e as u64).collect();
            assert_eq!(pruned, others);
            let o = run(&["eval", "--json", p(&run_dir)]);
            assert_ok(&o);
            let ev: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(ev["test_acc"], result["test"]);
            assert_eq!(ev["val_acc"].as_f64().unwrap(), best_val);
            let hist = moe_values(&m, "nodes_using_1_experts");
            assert_eq!(hist, vec![2000.0], "every node uses the one expert");
        }
    }
    assert!(
        ended_on_one > 0,
        "no seed ended on one expert: the check is not exercised"
    );
    // --best-expert false keeps the mixture (the method as described).
    let run_dir = root.path().join("mixture");
    assert_ok(&run(&[
        "--threads",
        "1",
        "train",
        p(&ds),
        "--model",
        "sagmm",
        "--expert-pool",
        "gcn,mlp,sage",
        "--hidden",
        "8",
        "--epochs",
        "30",
        "--seed",
        "0",
        "--best-expert",
        "false",
        "--out",
        p(&run_dir),
    ]));
    let m = run_dir.join("metrics.jsonl");
    assert!(moe_values(&m, "best_expert").is_empty());
    assert!(moe_values(&m, "val_acc_expert_0").is_empty());
}

#[test]
fn sagmm_shared_input_has_one_projection_prunes_and_reloads() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "tiny", "6");
    let train = |shared: &str, name: &str| -> (PathBuf, f64) {
        let out = root.path().join(name);
        assert_ok(&run(&[
            "--threads",
            "1",
            "train",
            p(&ds),
            "--model",
            "sagmm",
            "--hidden",
            "16",
            "--epochs",
            "12",
            "--prune-interval",
            "3",
            "--prune-factor",
            "0.9",
            "--shared-input",
            shared,
            "--out",
            p(&out),
        ]));
        let params = moe_values(&out.join("metrics.jsonl"), "params");
        (out, params[0])
    };
    let (_, own) = train("false", "own");
    let (out, shared) = train("true", "shared");
    // Nine input Linears (the pool with its MLP) of 16 features × 16 become one:
    // 8 × (16·16 + 16) fewer.
    assert_eq!(own - shared, 8.0 * (16.0 * 16.0 + 16.0));
    let m = out.join("metrics.jsonl");
    assert!(!moe_values(&m, "pruned_expert").is_empty());
    let cfg = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(cfg.contains("shared_input = true"), "{cfg}");
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    let o = run(&["eval", "--json", p(&out)]);
    assert_ok(&o);
    let ev: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ev["test_acc"], result["test"]);
}

#[test]
fn sagmm_trains_on_sampled_batches_and_pretrained_experts() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "tiny", "7");
    let mb = root.path().join("mb");
    assert_ok(&run(&[
        "train",
        p(&ds),
        "--model",
        "sagmm",
        "--loader",
        "neighbor",
        "--fanouts",
        "10,5",
        "--batch-size",
        "64",
        "--hidden",
        "16",
        "--epochs",
        "8",
        "--out",
        p(&mb),
    ]));
    let losses = train_losses(&mb.join("metrics.jsonl"));
    assert!(losses[losses.len() - 1] < 0.8 * losses[0], "{losses:?}");
    // The gate input was built as a keyed derived table of the dataset, for the next run to
    // reuse.
    let tables: Vec<_> = std::fs::read_dir(ds.join("derived"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        tables.len() == 1 && tables[0].starts_with("sagmm-gate-"),
        "{tables:?}"
    );
    assert!(ds.join("derived").join(&tables[0]).join("x.npy").exists());
    let pe = root.path().join("pe");
    assert_ok(&run(&[
        "train",
        p(&ds),
        "--model",
        "sagmm",
        "--pretrain-experts",
        "true",
        "--pretrain-epochs",
        "5",
        "--hidden",
        "16",
        "--epochs",
        "5",
        "--out",
        p(&pe),
    ]));
    let text = std::fs::read_to_string(pe.join("metrics.jsonl")).unwrap();
    assert_eq!(text.matches("\"split\":\"pretrain\"").count(), 5);
    assert_ok(&run(&["eval", p(&pe)]));
}

#[test]
fn sagmm_standalone_experts_train_on_batches_pretrain_prune_and_reload() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "tiny", "9");
    // Sampled batches with experts of different depths (SGC at one hop takes one block of
    // two), pruning during training.
    let mb = root.path().join("mb");
    assert_ok(&run(&[
        "train",
        p(&ds),
        "--model",
        "sagmm",
        "--expert-form",
        "standalone",
        "--expert-pool",
        "gcn,sgc,sage,mlp",
        "--hops",
        "1",
        "--loader",
        "neighbor",
        "--fanouts",
        "10,5",
        "--batch-size",
        "128",
        "--hidden",
        "16",
        "--epochs",
        "9",
        "--prune-interval",
        "3",
        "--prune-factor",
        "0.9",
        "--best-expert",
        "false",
        "--out",
        p(&mb),
    ]));
    let m = mb.join("metrics.jsonl");
    let losses = train_losses(&m);
    assert!(losses[losses.len() - 1] < 0.8 * losses[0], "{losses:?}");
    assert!(
        !moe_values(&m, "pruned_expert").is_empty(),
        "nothing pruned"
    );
    let cfg = std::fs::read_to_string(mb.join("config.toml")).unwrap();
    assert!(cfg.contains("expert_form = \"standalone\""), "{cfg}");
    // The experts are the registry's models under their prefix, and there is no head.
    let meta = std::fs::read_to_string(mb.join("checkpoint/model.json")).unwrap();
    assert!(meta.contains("expert0.gcn.layer0.weight"), "{meta}");
    assert!(!meta.contains("head.weight"), "{meta}");
    // The pruned checkpoint reloads (eval runs on the whole graph, the run scored sampled
    // batches: the figures differ).
    assert_ok(&run(&["eval", p(&mb)]));
    // SAGMM-PE with standalone experts: pretrained through their own outputs, then frozen.
    let pe = root.path().join("pe");
    assert_ok(&run(&[
        "train",
        p(&ds),
        "--model",
        "sagmm",
        "--expert-form",
        "standalone",
        "--expert-pool",
        "gcn,sage",
        "--pretrain-experts",
        "true",
        "--pretrain-epochs",
        "4",
        "--hidden",
        "16",
        "--epochs",
        "4",
        "--out",
        p(&pe),
    ]));
    let text = std::fs::read_to_string(pe.join("metrics.jsonl")).unwrap();
    assert_eq!(text.matches("\"split\":\"pretrain\"").count(), 4);
    // Full batch: the reloaded checkpoint reproduces the run's test figure.
    let last = text
        .lines()
        .rev()
        .find(|l| l.contains("\"split\":\"test\""))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .unwrap();
    let o = run(&["eval", "--json", p(&pe)]);
    assert_ok(&o);
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(e["test_acc"], last["value"]);
}

#[test]
fn sagmm_bad_keys_are_errors_naming_the_key() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "tiny", "8");
    for (flag, value, needle) in [
        ("--experts", "10", "experts"),
        ("--expert-pool", "gcn,transformer", "expert_pool"),
        ("--gate", "top3", "gate"),
        ("--expert-form", "stacked", "expert_form"),
        ("--prune-factor", "1.5", "prune_factor"),
        ("--prune-tolerance", "-0.1", "prune_tolerance"),
        ("--prune-interval", "0", "prune_interval"),
        ("--min-experts", "0", "min_experts"),
        ("--pretrain-share", "1", "pretrain_share"),
        ("--load-balance", "-1", "load_balance"),
        ("--expert-loss", "-1", "expert_loss"),
        ("--expert-loss", "NaN", "expert_loss"),
        ("--gate-eigvecs", "100000", "gate_eigvecs"),
        ("--gate-threshold", "0", "gate_threshold"),
        ("--gate-threshold", "1", "gate_threshold"),
        ("--gate-threshold", "NaN", "gate_threshold"),
    ] {
        let out = root
            .path()
            .join(format!("bad{}", flag.trim_start_matches('-')));
        let arg = format!("{flag}={value}");
        let o = run(&["train", p(&ds), "--model", "sagmm", &arg, "--out", p(&out)]);
        assert_fails(&o, &[needle]);
        assert!(!out.join("summary.json").exists(), "{flag}");
    }
    let out = root.path().join("topk-threshold");
    let o = run(&[
        "train",
        p(&ds),
        "--model",
        "sagmm",
        "--gate",
        "top1",
        "--gate-threshold",
        "0.3",
        "--out",
        p(&out),
    ]);
    assert_fails(&o, &["gate_threshold", "taag"]);
    let out = root.path().join("standalone-shared");
    let o = run(&[
        "train",
        p(&ds),
        "--model",
        "sagmm",
        "--expert-form",
        "standalone",
        "--shared-input",
        "true",
        "--out",
        p(&out),
    ]);
    assert_fails(&o, &["shared_input", "wrapped"]);
}

#[test]
fn sagmm_gate_threshold_sets_how_many_experts_a_node_starts_with() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "tiny", "8");
    let mean_experts = |threshold: &str| -> f64 {
        let out = root.path().join(format!("t{threshold}"));
        assert_ok(&run(&[
            "--threads",
            "1",
            "train",
            p(&ds),
            "--model",
            "sagmm",
            "--epochs",
            "1",
            "--best-expert",
            "false",
            "--gate-threshold",
            threshold,
            "--out",
            p(&out),
        ]));
        let cfg = std::fs::read_to_string(out.join("config.toml")).unwrap();
        assert!(
            cfg.contains(&format!("gate_threshold = {threshold}")),
            "{cfg}"
        );
        let m = out.join("metrics.jsonl");
        let (mut nodes, mut uses) = (0.0, 0.0);
        for k in 1..=8 {
            let n = moe_values(&m, &format!("nodes_using_{k}_experts"))[0];
            nodes += n;
            uses += n * k as f64;
        }
        uses / nodes
    };
    let (low, high) = (mean_experts("0.2"), mean_experts("0.8"));
    // Gate scores start near 0.5: a low threshold lets most experts in, a high one almost
    // none (a node choosing none uses its best expert).
    assert!(low > 6.0, "threshold 0.2: {low} experts per node");
    assert!(high < 2.0, "threshold 0.8: {high} experts per node");
}

#[test]
fn tune_searches_on_validation_and_trains_the_best_trial() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "tiny", "4");
    let out = root.path().join("tuned");
    let o = run(&[
        "train",
        p(&ds),
        "--model",
        "gcn",
        "--epochs",
        "8",
        "--runs",
        "2",
        "--lr",
        "0.02",
        "--tune",
        "4",
        "--out",
        p(&out),
    ]);
    assert_ok(&o);
    let said = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o);
    assert_eq!(said.matches("note: tune ").count(), 4, "{said}");
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("tune.json")).unwrap()).unwrap();
    let trials = t["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4);
    assert_eq!(t["runs_per_trial"], 2);
    // The user's lr is kept, never searched.
    assert_eq!(t["fixed"], serde_json::json!(["lr"]));
    assert!(trials.iter().all(|x| x["values"].get("lr").is_none()));
    // Trial 1 is the defaults; the chosen one has the best validation value.
    assert_eq!(
        trials[0]["values"],
        serde_json::json!({"weight_decay": 0.0005, "dropout": 0.5, "hidden": 16})
    );
    let vals: Vec<f64> = trials.iter().map(|x| x["val"].as_f64().unwrap()).collect();
    let chosen = t["chosen"].as_u64().unwrap() as usize;
    assert!(vals.iter().all(|v| *v <= vals[chosen]), "{vals:?}");
    // The run trains the chosen values (its config.toml), with the same seeds as the trial,
    // so its mean best validation value is the trial's.
    let cfg = std::fs::read_to_string(out.join("config.toml")).unwrap();
    let best = &trials[chosen]["values"];
    assert!(
        cfg.contains(&format!("hidden = {}", best["hidden"])),
        "{cfg}"
    );
    assert!(cfg.contains("lr = 0.02"), "{cfg}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let runs = summary["runs"].as_u64().unwrap();
    assert_eq!(runs, 2);
    let mean_val: f64 = (0..2)
        .map(|r| {
            let s: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(out.join(format!("run-{r}/result.json"))).unwrap(),
            )
            .unwrap();
            s["best_val"].as_f64().unwrap()
        })
        .sum::<f64>()
        / 2.0;
    assert!(
        (mean_val - vals[chosen]).abs() < 1e-9,
        "{mean_val} vs {vals:?}"
    );
    // No scratch directory is left beside the run.
    let left: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tune"))
        .collect();
    assert_eq!(left, vec!["tuned".to_string()]);
    // The same search again with --force replaces the tuned run (tune.json is its own).
    let again = run(&[
        "train",
        p(&ds),
        "--model",
        "gcn",
        "--epochs",
        "8",
        "--runs",
        "2",
        "--lr",
        "0.02",
        "--tune",
        "2",
        "--force",
        "--out",
        p(&out),
    ]);
    assert_ok(&again);
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("tune.json")).unwrap()).unwrap();
    assert_eq!(t["trials"].as_array().unwrap().len(), 2);

    // Nothing to search, and --tune with --resume, are refused.
    assert_fails(
        &run(&[
            "train",
            p(&ds),
            "--model",
            "mlp",
            "--lr",
            "0.01",
            "--weight-decay",
            "0",
            "--dropout",
            "0.5",
            "--hidden",
            "8",
            "--tune",
            "2",
            "--out",
            p(&root.path().join("none")),
        ]),
        &["nothing to search"],
    );
    assert_fails(
        &run(&["train", "--resume", p(&out), "--tune", "2"]),
        &["--tune"],
    );
    assert_fails(
        &run(&[
            "train",
            p(&ds),
            "--tune",
            "0",
            "--out",
            p(&root.path().join("zero")),
        ]),
        &["--tune needs at least 1 trial"],
    );
    // An --out holding a run is refused before any trial.
    let o = run(&["train", p(&ds), "--tune", "2", "--out", p(&out)]);
    assert_fails(&o, &["already holds a run"]);
    assert!(!stderr(&o).contains("note: tune"));
}

#[test]
fn cluster_batches_train_evaluate_by_cluster_and_refuse_bad_settings() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "tiny", "1");
    let out = root.path().join("cl");
    // No partition yet: the error says how to make one.
    let o = run(&[
        "train",
        p(&ds),
        "--model",
        "gcn",
        "--loader",
        "cluster",
        "--parts",
        "8",
        "--out",
        p(&out),
    ]);
    assert_fails(&o, &["parts", "scalegnn partition"]);
    assert!(!out.join("summary.json").exists());
    assert_ok(&run(&["partition", p(&ds), "--parts", "8"]));
    assert_ok(&run(&[
        "train",
        p(&ds),
        "--model",
        "gcn",
        "--loader",
        "cluster",
        "--parts",
        "8",
        "--clusters-per-batch",
        "2",
        "--epochs",
        "10",
        "--out",
        p(&out),
    ]));
    let m = out.join("metrics.jsonl");
    let losses = train_losses(&m);
    assert!(losses[losses.len() - 1] < 0.8 * losses[0], "{losses:?}");
    let cfg = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(cfg.contains("loader = \"cluster\""), "{cfg}");
    assert!(
        cfg.contains("parts = 8") && cfg.contains("clusters_per_batch = 2"),
        "{cfg}"
    );
    // Validation is scored cluster by cluster, each node's output put back in its place: the
    // figure is the model's (a node scored as another scores near chance, 1/5 here).
    let text = std::fs::read_to_string(&m).unwrap();
    let best_val = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["split"] == "val" && v["metric"] == "acc")
        .map(|v| v["value"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(best_val > 0.6, "best validation accuracy {best_val}");
    // The checkpoint evaluates on the whole graph.
    let o = run(&["eval", "--json", p(&out)]);
    assert_ok(&o);
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(e["test_acc"].as_f64().unwrap() > 0.5, "{e}");
    for (args, needle) in [
        (vec!["--loader", "cluster"], "parts"),
        (
            vec!["--loader", "cluster", "--parts", "8", "--fanouts", "5,5"],
            "fanouts",
        ),
        (
            vec!["--loader", "cluster", "--parts", "8", "--batch-size", "64"],
            "batch_size",
        ),
        (
            vec![
                "--loader",
                "cluster",
                "--parts",
                "8",
                "--clusters-per-batch",
                "0",
            ],
            "clusters_per_batch",
        ),
        (vec!["--loader", "neighbor", "--parts", "8"], "parts"),
        (vec!["--clusters-per-batch", "2"], "clusters_per_batch"),
    ] {
        let bad = root.path().join("bad");
        let mut a = vec!["train", p(&ds), "--model", "gcn", "--out", p(&bad)];
        a.extend(args);
        assert_fails(&run(&a), &[needle]);
        assert!(!bad.join("summary.json").exists(), "{needle}");
    }
}
