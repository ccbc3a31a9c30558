//! What a SAGMM run records besides accuracy: per-expert importance every epoch, which
//! experts were pruned when, parameter count and inference time as the mixture shrinks, and
//! how many experts each node uses; the last two also as PNG plots.

use std::path::{Path, PathBuf};

use scalegnn_graph::Csr;
use scalegnn_nn::moe::{gate_input, EpochReport};
use scalegnn_nn::Model;
use scalegnn_store::{Codec, FeatureStore, MmapStore};
use scalegnn_tensor::Matrix;

use crate::{MetricLine, MetricsLog, TrainError};

/// Metric split of the mixture's lines.
pub const SPLIT: &str = "moe";

/// Logs one epoch's importance per expert (`importance_<i>_<kind>`), the active expert
/// count, parameters held, each expert pruned (`pruned_expert`, value = its index) and each
/// candidate the validation check kept (`prune_kept_expert`).
pub fn log_epoch(
    log: &mut MetricsLog,
    epoch: usize,
    model: &Model,
    rep: &EpochReport,
    infer_ms: f64,
) -> Result<(), TrainError> {
    let Some(moe) = model.moe() else {
        return Ok(());
    };
    for (i, (e, imp)) in moe.experts.iter().zip(&rep.importance).enumerate() {
        log.push(
            epoch,
            SPLIT,
            &format!("importance_{i}_{}", e.kind.name()),
            *imp,
        )?;
    }
    let active = moe.active().iter().filter(|&&a| a).count();
    log.push(epoch, SPLIT, "active_experts", active as f64)?;
    // Every parameter the mixture holds, frozen (SAGMM-PE) or not; pruned experts hold none.
    let held: usize = model.params.values.iter().map(|v| v.data.len()).sum();
    log.push(epoch, SPLIT, "params", held as f64)?;
    log.push(epoch, SPLIT, "infer_ms", infer_ms)?;
    log.push(epoch, SPLIT, "prune_factor", rep.factor as f64)?;
    for &e in &rep.kept {
        log.push(epoch, SPLIT, "prune_kept_expert", e as f64)?;
    }
    for &e in &rep.pruned {
        log.push(epoch, SPLIT, "pruned_expert", e as f64)?;
    }
    Ok(())
}

/// Where the gate input of a dataset directory lives for `k` eigenvectors.
pub fn gate_dir(dataset_dir: &Path, k: usize) -> PathBuf {
    dataset_dir.join(format!("sagmm_gate_k{k}"))
}

/// The gate input of every node as a memory-mapped feature store in `dir` (`x.npy`, `[N, F + k]`),
/// computed from `store`'s features on first use and written atomically, so later runs (and
/// every batch, which gathers its seeds' rows) read it instead of solving again. A file of
/// the wrong shape (other features or k) is rebuilt. Also returns, when it solved, the
/// largest eigenpair residual `‖L v − λ v‖` (how converged the eigenvectors are).
pub fn gate_store(
    dir: &Path,
    graph: &Csr,
    store: &dyn FeatureStore,
    k: usize,
) -> Result<(MmapStore, Option<f64>), TrainError> {
    let (n, f) = (store.num_nodes(), store.dim());
    if let Ok(s) = MmapStore::open(dir, Codec::F32) {
        if s.num_nodes() == n && s.dim() == f + k {
            return Ok((s, None));
        }
    }
    let mut x = Matrix::zeros(n, f);
    let ids: Vec<u32> = (0..n as u32).collect();
    // In chunks so a store with a connection pool or a cache sees ordinary batch sizes.
    for (c, chunk) in ids.chunks(1 << 16).enumerate() {
        let start = c << 16;
        store.gather(chunk, &mut x.data[start * f..(start + chunk.len()) * f])?;
    }
    let (g, sp) = gate_input::gate_features(graph, &x, k, gate_input::default_eig_steps(k), 0)
        .map_err(|e| TrainError::Config(format!("SAGMM gate input: {e}")))?;
    drop(x);
    let worst = sp
        .as_ref()
        .map(|sp| sp.residuals.iter().copied().fold(0.0f64, f64::max));
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let path = dir.join("x.npy");
    scalegnn_npy::write_array_atomic(&path, &[n, f + k], &g.data)?;
    Ok((MmapStore::open(dir, Codec::F32)?, worst))
}

/// Nodes using 1, 2, … E experts (index k−1) in the evaluation passes since the model's
/// histogram was reset.
pub fn expert_count_histogram(model: &Model) -> Vec<u64> {
    model.moe().map(|m| m.histogram()).unwrap_or_default()
}

/// Logs the training wall time (`train_s`) and the final histogram
/// (`nodes_using_<k>_experts`), and draws `sagmm.png` in `run_dir`: importance per expert
/// over epochs, and the histogram. Nothing for other models.
pub fn finish(
    log: &mut MetricsLog,
    epoch: usize,
    model: &Model,
    train_time: std::time::Duration,
    run_dir: Option<&Path>,
) -> Result<(), TrainError> {
    if model.moe().is_none() {
        return Ok(());
    }
    log.push(epoch, SPLIT, "train_s", train_time.as_secs_f64())?;
    let hist = expert_count_histogram(model);
    for (k, &n) in hist.iter().enumerate() {
        log.push(
            epoch,
            SPLIT,
            &format!("nodes_using_{}_experts", k + 1),
            n as f64,
        )?;
    }
    log.flush()?;
    if let Some(dir) = run_dir {
        crate::plot::plot_moe(&log.lines, &hist, &dir.join("sagmm.png"))?;
    }
    Ok(())
}

/// Importance series per expert (name, points) from metric lines.
pub(crate) fn importance_series(lines: &[MetricLine]) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for l in lines.iter().filter(|l| l.split == SPLIT) {
        if let Some(name) = l.metric.strip_prefix("importance_") {
            match out.iter_mut().find(|(n, _)| n == name) {
                Some((_, pts)) => pts.push((l.epoch as f64, l.value)),
                None => out.push((name.to_string(), vec![(l.epoch as f64, l.value)])),
            }
        }
    }
    out
}
