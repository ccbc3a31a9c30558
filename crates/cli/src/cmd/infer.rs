//! `scalegnn eval | predict | embed RUN_DIR`: reload a run's best checkpoint and use it on
//! the whole graph.

use std::path::PathBuf;

use anyhow::{Context, Result};

use scalegnn_data::export::{write_table, NodeKeys, TableFormat, Values};
use scalegnn_train::infer::LoadedRun;
use scalegnn_train::{load_run, node_outputs, run_task, Checkpoint, Prediction, RunDir};

/// Arguments shared by `eval`, `predict` and `embed`.
#[derive(clap::Args)]
pub struct Args {
    /// Run directory written by `scalegnn train` (a `run-N` of `--runs` too).
    pub run_dir: PathBuf,
    /// Dataset to use instead of the one the run trained on.
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// Output file (default: RUN_DIR/predictions.npy, probabilities.npy or embeddings.npy,
    /// with the extension of --format).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// predict/embed: npy (row k = node k), or csv/parquet (a table whose first column `id`
    /// holds each node's id as the input to ingest wrote it). Default: from --out's
    /// extension, else npy.
    #[arg(long, value_parser = ["npy", "csv", "parquet"])]
    pub format: Option<String>,
    /// predict: class probabilities `[N, C]` (float32) instead of class ids.
    #[arg(long)]
    pub proba: bool,
    /// eval: one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// predict on a link prediction run: the node pairs to score, a `.npy` of node rows
    /// `[pairs, 2]` or a CSV of two id columns (ids as given to ingest); writes each pair's
    /// probability of being an edge (pair_scores.npy `[pairs]`, or CSV src,dst,score).
    #[arg(long, value_name = "PAIRS")]
    pub edges: Option<PathBuf>,
}

/// Arguments of `topk`.
#[derive(clap::Args)]
pub struct TopkArgs {
    /// Run directory of a link prediction run.
    pub run_dir: PathBuf,
    /// Neighbours per query node.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Query nodes, comma-separated ids as given to ingest (default: every node).
    #[arg(long, value_delimiter = ',')]
    pub nodes: Option<Vec<String>>,
    /// Dataset to use instead of the one the run trained on.
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// Output: .npy (topk.npy `[queries, k]` node rows, beside it topk_scores.npy) or .csv
    /// (query,rank,node,score with ids as given to ingest). Default RUN_DIR/topk.npy.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Which use of the checkpoint.
#[derive(Clone, Copy)]
pub enum Mode {
    Eval,
    Predict,
    Embed,
}

/// Runs `eval`, `predict` or `embed`.
pub fn run(a: Args, mode: Mode) -> Result<()> {
    let r = LoadedRun::open(&a.run_dir, a.dataset.as_deref())
        .with_context(|| format!("opening run {}", a.run_dir.display()))?;
    if a.proba && !r.task.has_probabilities() {
        anyhow::bail!(
            "--proba: {} predicts values, not class probabilities; run predict without --proba",
            r.task.name()
        );
    }
    if r.link.is_some() && matches!(mode, Mode::Predict) && a.edges.is_none() {
        anyhow::bail!(
            "{} is a link prediction run: predict scores node pairs given with --edges \
             PAIRS (.npy [pairs, 2] or CSV); `eval` reports its metrics, `embed` writes the \
             node embeddings, `topk` the best-scored neighbours",
            a.run_dir.display()
        );
    }
    if a.edges.is_some() && (r.link.is_none() || !matches!(mode, Mode::Predict)) {
        anyhow::bail!("--edges applies to predict on a link prediction run (train --task link)");
    }
    let (cfg, ds, task, meta) = (&r.cfg, &r.ds, &r.task, &r.meta);
    let graph_level = r.graph_level();
    // A graph-level run predicts and embeds one row per graph.
    let items = r.items();
    let format = match (a.format.as_deref(), &a.out) {
        (Some("csv"), _) => TableFormat::Csv,
        (Some("parquet"), _) => TableFormat::Parquet,
        (Some(_), _) => TableFormat::Npy,
        (None, Some(o)) => TableFormat::from_path(o).unwrap_or(TableFormat::Npy),
        (None, None) => TableFormat::Npy,
    };
    if let (Some(o), Some(f)) = (&a.out, a.format.as_deref()) {
        if TableFormat::from_path(o).is_some_and(|g| g != format) {
            anyhow::bail!("--out {} does not end in .{f} (--format {f})", o.display());
        }
    }
    if a.format.is_some() && matches!(mode, Mode::Eval) {
        anyhow::bail!("--format applies to predict and embed; eval prints (--json for JSON)");
    }
    let ext = match format {
        TableFormat::Npy => "npy",
        TableFormat::Csv => "csv",
        TableFormat::Parquet => "parquet",
    };
    let out_path = |stem: &str| -> Result<PathBuf> {
        Ok(match &a.out {
            Some(o) => o.clone(),
            None => RunDir::open(&a.run_dir)?.file(&format!("{stem}.{ext}"))?,
        })
    };
    let keys = || NodeKeys::of_dataset(&ds.dir, ds.graph.num_nodes());
    let named = |prefix: &str, n: usize| -> Vec<String> {
        (0..n).map(|j| format!("{prefix}{j}")).collect()
    };
    match mode {
        Mode::Eval => {
            let scores = r.scores()?;
            let names = ["train", "val", "test"];
            if a.json {
                let mut obj = serde_json::Map::new();
                obj.insert("checkpoint_epoch".into(), meta.epoch.into());
                for (split, sc) in names.iter().zip(&scores) {
                    for (m, v) in sc {
                        obj.insert(format!("{split}_{m}"), (*v).into());
                    }
                }
                println!("{}", serde_json::Value::Object(obj));
            } else {
                println!(
                    "checkpoint of epoch {} ({} {:.4} on validation), {} on {}",
                    meta.epoch,
                    meta.metric,
                    meta.value,
                    task.name(),
                    ds.dir.display()
                );
                if cfg.loader_kind() == scalegnn_train::LoaderKind::Neighbor {
                    // The figures differ from metrics.jsonl: say why, before anyone wonders.
                    println!(
                        "scored with every neighbour (the whole graph); the run chose this checkpoint on sampled fan-outs {:?}",
                        cfg.eval_fanouts()
                    );
                }
                // Every metric some split has (a link run's training split holds positives
                // only, so it has no ranking metrics); `-` marks one a split cannot define.
                let mut metrics: Vec<&str> = Vec::new();
                for m in scores.iter().flatten().map(|(m, _)| *m) {
                    if !metrics.contains(&m) {
                        metrics.push(m);
                    }
                }
                print!("{:<8}", "split");
                for m in &metrics {
                    print!("{m:>10}");
                }
                println!();
                for (split, sc) in names.iter().zip(&scores) {
                    print!("{split:<8}");
                    for m in &metrics {
                        let v = scalegnn_train::value(sc, m);
                        if v.is_finite() {
                            print!("{v:>10.4}");
                        } else {
                            print!("{:>10}", "-");
                        }
                    }
                    println!();
                }
            }
        }
        Mode::Predict if a.edges.is_some() => {
            let path = a.edges.as_deref().unwrap_or(std::path::Path::new(""));
            let node_keys = keys()?;
            let pairs = scalegnn_data::link::read_pairs(path, &node_keys)
                .with_context(|| format!("reading --edges {}", path.display()))?;
            if format == TableFormat::Parquet {
                anyhow::bail!("--format parquet: pair scores are written as npy or csv");
            }
            let p = r.pair_scores(&pairs)?;
            let out = out_path("pair_scores")?;
            if format == TableFormat::Npy {
                scalegnn_npy::write_array_atomic(&out, &[p.len()], &p)?;
            } else {
                let mut text = String::from("src,dst,score\n");
                for (q, s) in pairs.iter().zip(&p) {
                    let a = csv_field(&node_keys.key(q[0] as usize));
                    let b = csv_field(&node_keys.key(q[1] as usize));
                    text.push_str(&format!("{a},{b},{s}\n"));
                }
                scalegnn_npy::write_file_atomic(&out, text.as_bytes())?;
            }
            println!("wrote {} ({} pairs)", out.display(), p.len());
        }
        Mode::Predict => {
            let stem = if a.proba {
                "probabilities"
            } else {
                "predictions"
            };
            let out = out_path(stem)?;
            let keys = if format == TableFormat::Npy || graph_level {
                NodeKeys::Index(items)
            } else {
                keys()?
            };
            let shape = match r.predict(a.proba)? {
                Prediction::Ints(v, shape) => {
                    let cols = match shape.as_slice() {
                        [_] => vec!["prediction".to_string()],
                        s => named("label", s[1]),
                    };
                    if format == TableFormat::Npy {
                        scalegnn_npy::write_array_atomic(&out, &shape, &v)?;
                    } else {
                        write_table(&out, format, &keys, &cols, Values::Ints(&v))?;
                    }
                    shape
                }
                Prediction::Floats(v, shape) => {
                    let width = shape.get(1).copied().unwrap_or(1);
                    let cols = if a.proba {
                        named("p", width)
                    } else if width == 1 {
                        vec!["prediction".to_string()]
                    } else {
                        named("y", width)
                    };
                    if format == TableFormat::Npy {
                        scalegnn_npy::write_array_atomic(&out, &shape, &v)?;
                    } else {
                        write_table(&out, format, &keys, &cols, Values::Floats(&v))?;
                    }
                    shape
                }
            };
            println!("wrote {} {shape:?}", out.display());
        }
        Mode::Embed => {
            let emb = r.embed()?;
            let m = &emb;
            let out = out_path("embeddings")?;
            let cols = named("e", m.cols);
            if matches!(format, TableFormat::Npy) {
                // [N, D] even when D is 1: embeddings are vectors.
                scalegnn_npy::write_array_atomic(&out, &[m.rows, m.cols], &m.data)?;
            } else {
                let keys = if graph_level {
                    NodeKeys::Index(items)
                } else {
                    keys()?
                };
                write_table(&out, format, &keys, &cols, Values::Floats(&m.data))?;
            }
            println!("wrote {} ([{}, {}])", out.display(), m.rows, m.cols);
        }
    }
    Ok(())
}

/// A CSV field: quoted when it holds a separator, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Runs `topk`: the best-scored neighbours of query nodes by a link run's decoder.
pub fn topk(a: TopkArgs) -> Result<()> {
    let (cfg, ds) = load_run(&a.run_dir, a.dataset.as_deref())
        .with_context(|| format!("opening run {}", a.run_dir.display()))?;
    let (task, _, link) = run_task(&ds, &cfg)?;
    let Some(link) = link else {
        anyhow::bail!(
            "{} is not a link prediction run (train --task link): topk ranks node pairs by a \
             link decoder",
            a.run_dir.display()
        );
    };
    if a.k == 0 {
        anyhow::bail!("--k: must be at least 1");
    }
    let (model, _) = Checkpoint::load(
        &a.run_dir.join("checkpoint"),
        Some((ds.manifest.num_features as usize, task.out_dim())),
    )?;
    let n = link.graph.num_nodes();
    let keys = NodeKeys::of_dataset(&ds.dir, n)?;
    let queries: Vec<u32> = match &a.nodes {
        None => (0..n as u32).collect(),
        Some(ids) => {
            let index: std::collections::HashMap<String, u32> =
                (0..n).map(|r| (keys.key(r), r as u32)).collect();
            ids.iter()
                .map(|id| {
                    index.get(id.trim()).copied().with_context(|| {
                        format!("--nodes: `{id}` is not a node id of the dataset ({n} nodes)")
                    })
                })
                .collect::<Result<_>>()?
        }
    };
    let t0 = std::time::Instant::now();
    let z = node_outputs(&ds, &cfg, &model, &link.graph, &a.run_dir)?;
    let t1 = std::time::Instant::now();
    let (ids, scores) = scalegnn_train::link::top_k(&z, &queries, a.k);
    let secs = t1.elapsed().as_secs_f64();
    let k = ids.len() / queries.len().max(1);
    let out = match &a.out {
        Some(o) => o.clone(),
        None => RunDir::open(&a.run_dir)?.file("topk.npy")?,
    };
    match TableFormat::from_path(&out) {
        Some(TableFormat::Npy) | None => {
            let rows: Vec<i64> = ids.iter().map(|&v| v as i64).collect();
            scalegnn_npy::write_array_atomic(&out, &[queries.len(), k], &rows)?;
            let sp = out.with_file_name(format!(
                "{}_scores.npy",
                out.file_stem()
                    .map_or("topk".into(), |s| s.to_string_lossy())
            ));
            scalegnn_npy::write_array_atomic(&sp, &[queries.len(), k], &scores)?;
        }
        Some(TableFormat::Csv) => {
            let mut text = String::from("query,rank,node,score\n");
            for (qi, &q) in queries.iter().enumerate() {
                let qk = csv_field(&keys.key(q as usize));
                for r in 0..k {
                    let j = qi * k + r;
                    let node = csv_field(&keys.key(ids[j] as usize));
                    text.push_str(&format!("{qk},{},{node},{}\n", r + 1, scores[j]));
                }
            }
            scalegnn_npy::write_file_atomic(&out, text.as_bytes())?;
        }
        Some(TableFormat::Parquet) => anyhow::bail!("--out: topk writes .npy or .csv"),
    }
    println!(
        "wrote {} ({} queries x {k}); embeddings {:.2} s, ranking {:.2} s ({:.0} queries/s over {n} nodes)",
        out.display(),
        queries.len(),
        (t1 - t0).as_secs_f64(),
        secs,
        queries.len() as f64 / secs.max(1e-9)
    );
    Ok(())
}
