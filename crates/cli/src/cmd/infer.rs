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
    /// Output file (default: RUN_DIR/predictions.npy, probabilities.npy or embeddings.npy).
    #[arg(long)]
    pub out: Option<PathBuf>,
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
    let out_path = |name: &str| -> Result<PathBuf> {
        Ok(match &a.out {
            Some(o) => o.clone(),
            None => RunDir::open(&a.run_dir)?.file(name)?,
        })
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
            let file = if a.proba {
                "probabilities.npy"
            } else {
                "predictions.npy"
            };
            let out = out_path(file)?;
            let shape = match task.predict(&outs[0], a.proba) {
                Prediction::Ints(v, shape) => {
                    scalegnn_npy::write_array_atomic(&out, &shape, &v)?;
                    shape
                }
                Prediction::Floats(v, shape) => {
                    scalegnn_npy::write_array_atomic(&out, &shape, &v)?;
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
            let out = out_path("embeddings.npy")?;
            scalegnn_npy::write_array_atomic(&out, &[m.rows, m.cols], &m.data)?;
            println!("wrote {} ([{}, {}])", out.display(), m.rows, m.cols);
        }
    }
    Ok(())
}
