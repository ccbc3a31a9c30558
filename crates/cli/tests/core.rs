//! The training core as a user meets it (issue 13): the resolved configuration round-trips,
//! bad values are refused before anything is written, runs resume after SIGKILL to the same
//! figures and stop cleanly on SIGINT, and the tasks (multi-label, regression, binary,
//! several official splits) train and predict.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scalegnn"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("spawn scalegnn")
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

fn tiny(root: &Path, seed: &str) -> PathBuf {
    let out = root.join(format!("tiny{seed}"));
    ok(&run(&[
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

/// The metric lines of a run without the timing ones (which differ run to run).
fn figures(metrics: &Path) -> Vec<String> {
    let timing = [
        "sample_ms",
        "fetch_ms",
        "compute_ms",
        "wait_ms",
        "epoch_s",
        "seeds_per_s",
        "bytes_read",
        "cache_miss_fetch_ms",
        "infer_ms",
        "train_s",
        "pretrain_s",
    ];
    std::fs::read_to_string(metrics)
        .unwrap()
        .lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            !timing.contains(&v["metric"].as_str().unwrap())
        })
        .map(String::from)
        .collect()
}

/// Rewrites `manifest.json` so its file list covers `names` again (size, checksum).
fn relist(ds: &Path, names: &[&str], edit: impl FnOnce(&mut serde_json::Value)) {
    let mp = ds.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mp).unwrap()).unwrap();
    for n in names {
        let f = ds.join(n);
        m["files"][*n] = serde_json::json!({
            "bytes": std::fs::metadata(&f).unwrap().len(),
            "xxh3": scalegnn_data::xxh3_file(&f).unwrap(),
        });
    }
    edit(&mut m);
    std::fs::write(&mp, m.to_string()).unwrap();
}

#[test]
fn the_resolved_config_reruns_the_same_run_and_hyphen_keys_read() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "1");
    let a = root.path().join("a");
    let toml = root.path().join("run.toml");
    std::fs::write(
        &toml,
        "model = \"sage\"\nweight-decay = 0.001\nepochs = 15\n",
    )
    .unwrap();
    ok(&run(&[
        "train",
        p(&ds),
        "--config",
        p(&toml),
        "--out",
        p(&a),
    ]));
    let cfg = std::fs::read_to_string(a.join("config.toml")).unwrap();
    for key in [
        "dataset =",
        "weight_decay = 0.001",
        "hidden = 16",
        "metric = \"acc\"",
    ] {
        assert!(
            cfg.contains(key),
            "{key} missing from the resolved config:\n{cfg}"
        );
    }
    // The run directory's config reruns it: no dataset argument, same figures.
    let b = root.path().join("b");
    ok(&run(&[
        "train",
        "--config",
        p(&a.join("config.toml")),
        "--out",
        p(&b),
    ]));
    assert_eq!(
        figures(&a.join("metrics.jsonl")),
        figures(&b.join("metrics.jsonl"))
    );
    assert_eq!(cfg, std::fs::read_to_string(b.join("config.toml")).unwrap());
}

#[test]
fn bad_values_are_refused_before_anything_is_written() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "2");
    // --resume of a directory scalegnn did not write says so (before looking for its config).
    fails(
        &run(&["train", "--resume", p(root.path())]),
        &["not a run directory"],
    );
    let out = root.path().join("out");
    for (flags, needles) in [
        (&["--dropout", "1.5"][..], &["dropout", "1.5"][..]),
        (&["--lr=-0.01"], &["lr", "-0.01"]),
        (&["--epochs", "0"], &["epochs", "at least 1"]),
        (&["--runs", "0"], &["runs", "at least 1"]),
        (&["--fanouts", "10,10"], &["fanouts", "loader = neighbor"]),
        (
            &["--mem-budget", "1GiB"],
            &["mem_budget", "loader = neighbor"],
        ),
        (&["--heads", "4"], &["heads", "gcn does not use it"]),
        (
            &[
                "--loader",
                "neighbor",
                "--fanouts",
                "10,10,10",
                "--layers",
                "2",
            ],
            &["fanouts", "2 layers"],
        ),
        (
            &[
                "--loader",
                "neighbor",
                "--model",
                "gat",
                "--exact-eval",
                "true",
            ],
            &["exact_eval", "gat cannot run layer by layer"],
        ),
        (
            &["--loader", "neighbor", "--mem-budget", "16KiB"],
            &["mem_budget", "cannot hold one batch"],
        ),
        (&["--metric", "rmse"], &["metric", "rmse"]),
        (&["--split", "3"], &["split", "out of range"]),
    ] {
        let mut args = vec!["train", p(&ds), "--out", p(&out)];
        args.extend_from_slice(flags);
        fails(&run(&args), needles);
        assert!(!out.exists(), "{flags:?} left {} behind", out.display());
    }
    fails(&run(&["--threads", "0", "info", p(&ds)]), &["--threads"]);
}

/// Starts `scalegnn args…` and kills it (SIGKILL) once it has reported `epochs` epochs: the
/// kill lands early in the next epoch, at whatever batch it has reached.
fn kill_after_epochs(args: &[&str], epochs: usize) {
    let mut child = bin()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The child reports every epoch on stderr: reading it paces the wait without sleeping.
    let err = child.stderr.take().unwrap();
    let mut seen = 0;
    for line in std::io::BufReader::new(err).lines() {
        if line.unwrap_or_default().starts_with("epoch ") {
            seen += 1;
            if seen >= epochs {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_run_killed_five_times_resumes_to_the_uninterrupted_figures() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "3");
    let whole = root.path().join("whole");
    let cut = root.path().join("cut");
    let args = |out: &Path| -> Vec<String> {
        [
            "--threads",
            "1",
            "train",
            p(&ds),
            "--model",
            "sage",
            "--loader",
            "neighbor",
            "--fanouts",
            "5,5",
            "--batch-size",
            "16",
            "--hidden",
            "8",
            "--epochs",
            "12",
            "--out",
            p(out),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let a = args(&whole);
    ok(&run(&a.iter().map(String::as_str).collect::<Vec<_>>()));
    let b = args(&cut);
    // Killed five times, two epochs into each process.
    kill_after_epochs(&b.iter().map(String::as_str).collect::<Vec<_>>(), 2);
    for _ in 1..5 {
        kill_after_epochs(&["--threads", "1", "train", "--resume", p(&cut)], 2);
    }
    let before = std::fs::read_to_string(cut.join("state/state.json")).unwrap();
    assert!(
        !before.contains("\"epoch\": 12"),
        "the run finished before the last kill"
    );
    ok(&run(&["--threads", "1", "train", "--resume", p(&cut)]));
    assert_eq!(
        figures(&whole.join("metrics.jsonl")),
        figures(&cut.join("metrics.jsonl"))
    );
    let s = |d: &Path| std::fs::read_to_string(d.join("result.json")).unwrap();
    let (x, y): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&s(&whole)).unwrap(),
        serde_json::from_str(&s(&cut)).unwrap(),
    );
    assert_eq!(x["test"], y["test"]);
    assert_eq!(x["best_epoch"], y["best_epoch"]);
}

#[test]
fn sagmm_resumes_with_its_pruning_state_and_sigint_stops_cleanly() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "4");
    let args = |out: &Path| {
        vec![
            "--threads".to_string(),
            "1".into(),
            "train".into(),
            p(&ds).into(),
            "--model".into(),
            "sagmm".into(),
            "--hidden".into(),
            "8".into(),
            "--epochs".into(),
            "12".into(),
            "--prune-interval".into(),
            "3".into(),
            "--prune-factor".into(),
            "0.9".into(),
            "--out".into(),
            p(out).into(),
        ]
    };
    let whole = root.path().join("whole");
    let a = args(&whole);
    ok(&run(&a.iter().map(String::as_str).collect::<Vec<_>>()));
    // SIGINT: stops at a batch boundary, says how to resume, exit 130.
    let cut = root.path().join("cut");
    let b = args(&cut);
    let mut child = bin()
        .args(&b)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let mut reader = std::io::BufReader::new(err);
    let mut text = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        text.push_str(&line);
        line.clear();
        let done = std::fs::read_to_string(cut.join("metrics.jsonl"))
            .map(|t| t.contains("\"epoch\":5,"))
            .unwrap_or(false);
        if done {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            break;
        }
    }
    reader.read_to_string_lossy(&mut text);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("scalegnn train --resume"), "{text}");
    assert!(cut.join("checkpoint/model.json").exists());
    ok(&run(&["--threads", "1", "train", "--resume", p(&cut)]));
    assert_eq!(
        figures(&whole.join("metrics.jsonl")),
        figures(&cut.join("metrics.jsonl"))
    );
}

trait ReadLossy {
    fn read_to_string_lossy(&mut self, s: &mut String);
}

impl<R: std::io::Read> ReadLossy for R {
    fn read_to_string_lossy(&mut self, s: &mut String) {
        let mut b = Vec::new();
        let _ = self.read_to_end(&mut b);
        s.push_str(&String::from_utf8_lossy(&b));
    }
}

#[test]
fn multilabel_regression_binary_and_several_splits_train_and_predict() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "5");
    let y = scalegnn_npy::read_array::<i64>(&ds.join("y.npy")).unwrap();
    let n = y.len();
    // Multi-label: [N, 3] of 0/1 from the class; ROC-AUC selects by default.
    let ml = root.path().join("ml");
    copy_dir(&ds, &ml);
    let multi: Vec<i64> = y
        .iter()
        .flat_map(|&c| [(c == 0) as i64, c % 2, (c > 2) as i64])
        .collect();
    scalegnn_npy::write_array(&ml.join("y.npy"), &[n, 3], &multi).unwrap();
    relist(&ml, &["y.npy"], |_| {});
    let out = root.path().join("ml-run");
    ok(&run(&["train", p(&ml), "--epochs", "30", "--out", p(&out)]));
    assert!(std::fs::read_to_string(out.join("config.toml"))
        .unwrap()
        .contains("metric = \"roc_auc\""));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(s["test_mean"].as_f64().unwrap() > 0.7, "{s}");
    ok(&run(&["predict", "--proba", p(&out)]));
    let pr = scalegnn_npy::read_array::<f32>(&out.join("probabilities.npy")).unwrap();
    assert_eq!(pr.shape(), &[n, 3]);
    // Regression: a float target; RMSE in the original units selects.
    let rg = root.path().join("rg");
    copy_dir(&ds, &rg);
    let t: Vec<f32> = y.iter().map(|&c| 100.0 + 10.0 * c as f32).collect();
    scalegnn_npy::write_array(&rg.join("y.npy"), &[n], &t).unwrap();
    relist(&rg, &["y.npy"], |m| m["task"] = "node_regression".into());
    let out = root.path().join("rg-run");
    ok(&run(&[
        "train",
        p(&rg),
        "--epochs",
        "60",
        "--lr",
        "0.05",
        "--out",
        p(&out),
    ]));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["metric"], "rmse");
    // The targets' std is ~14; predicting the mean would give about that.
    assert!(s["test_mean"].as_f64().unwrap() < 12.0, "{s}");
    ok(&run(&["predict", p(&out)]));
    fails(
        &run(&["predict", "--proba", p(&out)]),
        &["--proba", "values"],
    );
    let v = scalegnn_npy::read_array::<f32>(&out.join("predictions.npy")).unwrap();
    assert!(
        v.iter().all(|x| (60.0..=160.0).contains(x)),
        "not in the original units"
    );
    // Binary classes: ROC-AUC by default.
    let bi = root.path().join("bi");
    copy_dir(&ds, &bi);
    let b: Vec<i64> = y.iter().map(|&c| c % 2).collect();
    scalegnn_npy::write_array(&bi.join("y.npy"), &[n], &b).unwrap();
    relist(&bi, &["y.npy"], |m| m["num_classes"] = 2.into());
    let out = root.path().join("bi-run");
    ok(&run(&["train", p(&bi), "--epochs", "10", "--out", p(&out)]));
    assert!(std::fs::read_to_string(out.join("config.toml"))
        .unwrap()
        .contains("metric = \"roc_auc\""));
    // Several official splits ([S, len] split files): --runs 2 takes splits 0 and 1.
    let sp = root.path().join("sp");
    copy_dir(&ds, &sp);
    let mut names = Vec::new();
    for part in ["train", "val", "test"] {
        let f = format!("{part}_idx.npy");
        let a = scalegnn_npy::read_array::<i64>(&sp.join(&f)).unwrap();
        // The second split is one shorter: -1 pads it, as in OGB/WebKB-style mask files.
        let mut two = a.to_vec();
        two.extend(a.iter().rev().skip(1));
        two.push(-1);
        scalegnn_npy::write_array(&sp.join(&f), &[2, a.len()], &two).unwrap();
        names.push(f);
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    relist(&sp, &names, |_| {});
    let out = root.path().join("sp-run");
    ok(&run(&[
        "train",
        p(&sp),
        "--epochs",
        "5",
        "--runs",
        "2",
        "--out",
        p(&out),
    ]));
    let c1 = std::fs::read_to_string(out.join("run-1/config.toml")).unwrap();
    assert!(c1.contains("split = 1") && c1.contains("seed = 1"), "{c1}");
    // Its runs evaluate (checksums verified, padding accepted).
    let e = run(&["eval", p(&out.join("run-1"))]);
    ok(&e);
    assert!(String::from_utf8_lossy(&e.stdout).contains("test"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn a_damaged_saved_state_is_an_error_naming_its_file() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path(), "3");
    let cut = root.path().join("cut");
    let args = [
        "train",
        p(&ds),
        "--model",
        "sage",
        "--epochs",
        "3",
        "--out",
        p(&cut),
    ];
    ok(&run(&args));
    // Make it look interrupted after epoch 1, then damage the packed parameters.
    for f in ["result.json", "summary.json"] {
        let _ = std::fs::remove_file(cut.join(f));
    }
    let st = cut.join("state/state.json");
    let text = std::fs::read_to_string(&st).unwrap();
    std::fs::write(&st, text.replace("\"epoch\": 3", "\"epoch\": 1")).unwrap();
    let params = cut.join("state/params.npy");
    let len = std::fs::metadata(&params).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&params)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    fails(
        &run(&["train", "--resume", p(&cut)]),
        &["params.npy", "truncated"],
    );
}
