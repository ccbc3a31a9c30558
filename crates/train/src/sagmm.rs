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
/// count, trainable parameters, and each expert pruned (`pruned_expert`, value = its index).
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
    log.push(epoch, SPLIT, "params", model.params.count() as f64)?;
    log.push(epoch, SPLIT, "infer_ms", infer_ms)?;
    log.push(epoch, SPLIT, "prune_factor", rep.factor as f64)?;
    for &e in &rep.pruned {
        log.push(epoch, SPLIT, "pruned_expert", e as f64)?;
    }
    Ok(())
}

/// Nodes using 1, 2, … E experts in the model's last forward pass (index k−1 for k experts).
pub fn expert_count_histogram(model: &Model) -> Vec<u64> {
    let Some(moe) = model.moe() else {
        return Vec::new();
    };
    let e = moe.experts.len();
    let mut h = vec![0u64; e];
    for c in moe.last_counts() {
        if c >= 1 {
            h[(c as usize - 1).min(e - 1)] += 1;
        }
    }
    h
}

/// Logs the final histogram (`nodes_using_<k>_experts`) and draws `sagmm.png` in `run_dir`:
/// importance per expert over epochs, and the histogram.
pub fn finish(
    log: &mut MetricsLog,
    epoch: usize,
    model: &Model,
    run_dir: Option<&Path>,
) -> Result<(), TrainError> {
    if model.moe().is_none() {
        return Ok(());
    }
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
