//! `scalegnn eval | predict | embed RUN_DIR`: reload a run's best checkpoint and use it on
//! the whole graph.

use std::path::PathBuf;

use anyhow::{Context, Result};
use rand::SeedableRng;
use scalegnn_loader::FullGraph;
use scalegnn_tensor::Tape;
use scalegnn_train::{full_features, load_run, task_of, Checkpoint, Evaluator, Prediction, RunDir};

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
    let (cfg, ds) = load_run(&a.run_dir, a.dataset.as_deref())
        .with_context(|| format!("opening run {}", a.run_dir.display()))?;
    let (task, splits) = task_of(&ds, cfg.split())?;
    let (model, meta) = Checkpoint::load(
        &a.run_dir.join("checkpoint"),
        Some((ds.manifest.num_features as usize, task.out_dim())),
    )?;
    if a.proba && !task.has_probabilities() {
        anyhow::bail!(
            "--proba: {} predicts values, not class probabilities; run predict without --proba",
            task.name()
        );
    }
    let x = full_features(&ds, &cfg)?;
    let loader = FullGraph::new(&ds.graph, x);
    use scalegnn_data::export::{write_table, NodeKeys, TableFormat, Values};
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
            let ev = Evaluator::new(&loader, task.as_ref(), "acc");
            let sets = [&splits.train[..], &splits.val[..], &splits.test[..]];
            let scores = ev.scores(&model, &sets)?;
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
                let metrics: Vec<&str> = scores[0].iter().map(|(m, _)| *m).collect();
                print!("{:<8}", "split");
                for m in &metrics {
                    print!("{m:>10}");
                }
                println!();
                for (split, sc) in names.iter().zip(&scores) {
                    print!("{split:<8}");
                    for m in &metrics {
                        let v = scalegnn_train::value(sc, m);
                        print!("{v:>10.4}");
                    }
                    println!();
                }
            }
        }
        Mode::Predict => {
            let all: Vec<u32> = (0..ds.graph.num_nodes() as u32).collect();
            let ev = Evaluator::new(&loader, task.as_ref(), "acc");
            let outs = ev.outputs(&model, &[&all])?;
            let stem = if a.proba {
                "probabilities"
            } else {
                "predictions"
            };
            let out = out_path(stem)?;
            let keys = if format == TableFormat::Npy {
                NodeKeys::Index(ds.graph.num_nodes())
            } else {
                keys()?
            };
            let shape = match task.predict(&outs[0], a.proba) {
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
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(0);
            let mut tape = Tape::new(false);
            let h = model.embed(&mut tape, loader.features(), loader.graph(), &mut rng);
            let m = tape.value(h);
            let out = out_path("embeddings")?;
            let cols = named("e", m.cols);
            if matches!(format, TableFormat::Npy) {
                // [N, D] even when D is 1: embeddings are vectors.
                scalegnn_npy::write_array_atomic(&out, &[m.rows, m.cols], &m.data)?;
            } else {
                write_table(&out, format, &keys()?, &cols, Values::Floats(&m.data))?;
            }
            println!("wrote {} ([{}, {}])", out.display(), m.rows, m.cols);
        }
    }
    Ok(())
}
