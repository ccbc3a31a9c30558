//! What a SAGMM run records besides accuracy: per-expert importance every epoch, which
//! experts were pruned when, parameter count and inference time as the mixture shrinks, and
//! how many experts each node uses; the last two also as PNG plots.

use std::path::Path;

use scalegnn_nn::moe::EpochReport;
use scalegnn_nn::Model;

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
