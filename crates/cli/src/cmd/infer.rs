//! `scalegnn eval | predict | embed RUN_DIR`: reload a run's best checkpoint and use it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use rand::SeedableRng;
use scalegnn_data::{Dataset, OpenOptions};
use scalegnn_tensor::Tape;
use scalegnn_train::{evaluate, Checkpoint, NodeData, RunDir};

use super::train::ResolvedConfig;

/// Arguments shared by `eval`, `predict` and `embed`.
#[derive(clap::Args)]
pub struct Args {
    /// Run directory written by `scalegnn train`.
    pub run_dir: PathBuf,
    /// Dataset to use instead of the one the run trained on.
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// Output file (default: RUN_DIR/predictions.npy or RUN_DIR/embeddings.npy).
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
    let cpath = a.run_dir.join("config.toml");
    let text =
        std::fs::read_to_string(&cpath).with_context(|| format!("reading {}", cpath.display()))?;
    let rc: ResolvedConfig = toml::from_str(&text)
        .with_context(|| format!("{}: invalid run config", cpath.display()))?;
    let cfg = rc.run.resolve()?;
    let dpath = a.dataset.clone().unwrap_or(rc.dataset.clone());
    let ds = Dataset::open(&dpath, OpenOptions::default())
        .with_context(|| format!("opening dataset {}", dpath.display()))?;
    let data = NodeData::from_dataset(&ds, cfg.normalize_features)?;
    let expect = cfg.model_config(data.x.cols(), data.num_classes);
    let (model, meta) = Checkpoint::load(&a.run_dir.join("checkpoint"), Some(&expect))?;
    let graph = scalegnn_nn::GraphCtx::new(&ds.graph);
    let mut tape = Tape::new(false);
    match mode {
        Mode::Eval => {
            let logits = evaluate(&model, &data.x, &graph, &mut tape);
            let pred = logits.argmax_rows();
            let acc = |idx: &[usize]| {
                idx.iter().filter(|&&i| pred[i] == data.labels[i]).count() as f64
                    / idx.len().max(1) as f64
            };
            println!(
                "{}",
                serde_json::json!({"checkpoint_epoch": meta.epoch, "train_acc": acc(&data.train), "val_acc": acc(&data.val), "test_acc": acc(&data.test)})
            );
        }
        Mode::Predict => {
            let logits = evaluate(&model, &data.x, &graph, &mut tape);
            let pred: Vec<i64> = logits.argmax_rows().into_iter().map(|p| p as i64).collect();
            let out = match &a.out {
                Some(o) => o.clone(),
                None => RunDir::open(&a.run_dir)?.file("predictions.npy")?,
            };
            scalegnn_npy::write_array_atomic(&out, &[pred.len()], &pred)?;
            println!("wrote {} ({} predictions)", out.display(), pred.len());
        }
        Mode::Embed => {
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(0);
            let h = model.embed(&mut tape, &data.x, &graph, &mut rng);
            let m = tape.value(h);
            let out = match &a.out {
                Some(o) => o.clone(),
                None => RunDir::open(&a.run_dir)?.file("embeddings.npy")?,
            };
            scalegnn_npy::write_array_atomic(&out, &[m.rows, m.cols], &m.data)?;
            println!("wrote {} ([{}, {}])", out.display(), m.rows, m.cols);
        }
    }
    Ok(())
}
