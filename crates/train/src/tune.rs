//! `--tune N`: a seeded random search over the few knobs that matter (learning rate, weight
//! decay, dropout, hidden width, SAGMM's expert-loss weight and gate threshold), every trial scored on the
//! validation split only; the chosen values become the run's configuration. Any model can be
//! tuned, so a mixture and the single models it is compared with get the same budget.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::run::{train, Reporter, RunOptions, Silent, TrainOutcome};
use crate::{RunConfig, TrainError};

/// A knob the search may set, and the values it draws from. Grids, not ranges: trials are
/// reproducible, printable and never repeat one another.
struct Knob {
    key: &'static str,
    grid: &'static [f64],
    /// Whether the run's model reads it.
    applies: fn(&RunConfig) -> bool,
    /// The value the run would use without the search.
    current: fn(&RunConfig) -> f64,
    set: fn(&mut RunConfig, f64),
}

/// An f32 setting as the f64 its shortest decimal reads as (0.01, not 0.009999999776).
fn shown(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

fn always(_: &RunConfig) -> bool {
    true
}

fn mixture(c: &RunConfig) -> bool {
    c.model_kind().is_ok_and(|k| k.is_mixture())
}

/// The search space. The grids span the values the layers' papers and PyG's examples use
/// (GCN: lr 0.01, wd 5e-4, dropout 0.5, 16 hidden; GAT: lr 0.005; SAGE on products: lr 0.003,
/// no decay, 256 hidden) with room on either side.
const KNOBS: &[Knob] = &[
    Knob {
        key: "lr",
        grid: &[0.001, 0.002, 0.005, 0.01, 0.02, 0.05],
        applies: always,
        current: |c| shown(c.lr()),
        set: |c, v| c.lr = Some(v as f32),
    },
    Knob {
        key: "weight_decay",
        grid: &[0.0, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3],
        applies: always,
        current: |c| shown(c.weight_decay()),
        set: |c, v| c.weight_decay = Some(v as f32),
    },
    Knob {
        key: "dropout",
        grid: &[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
        applies: always,
        current: |c| shown(c.dropout()),
        set: |c, v| c.dropout = Some(v as f32),
    },
    Knob {
        key: "hidden",
        grid: &[16.0, 32.0, 64.0, 128.0, 256.0],
        applies: always,
        current: |c| c.hidden() as f64,
        set: |c, v| c.hidden = Some(v as usize),
    },
    Knob {
        key: "expert_loss",
        grid: &[0.0, 0.1, 0.25, 0.5, 1.0],
        applies: mixture,
        current: |c| shown(c.moe().expert_loss),
        set: |c, v| c.expert_loss = Some(v as f32),
    },
    // Last, so adding it left the other models' draws as they were.
    Knob {
        key: "gate_threshold",
        grid: &[0.3, 0.4, 0.5, 0.6, 0.7],
        applies: taag,
        current: |c| shown(c.moe().threshold),
        set: |c, v| c.gate_threshold = Some(v as f32),
    },
];

fn taag(c: &RunConfig) -> bool {
    mixture(c) && c.moe().gate == scalegnn_nn::moe::GateKind::Taag
}

/// Runs each trial averages over at most (seeds seed, seed+1, …, as `--runs` does).
pub const TRIAL_RUNS_MAX: usize = 3;

/// One configuration the search tried.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Trial {
    /// The searched knobs' values (trial 0: the defaults).
    #[serde(serialize_with = "as_map")]
    pub values: Vec<(&'static str, f64)>,
    /// Mean best validation value of the selection metric over the trial's runs (test
    /// figures of trials are not kept: nothing here may lean on them). None: it failed.
    pub val: Option<f64>,
    /// Why the trial did not finish (a loss that diverged, a size that does not fit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// What the search found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Tuned {
    /// The selection metric (validation).
    pub metric: String,
    /// Knobs searched, and knobs the user fixed (not searched).
    pub searched: Vec<&'static str>,
    pub fixed: Vec<&'static str>,
    /// Runs per trial.
    pub runs_per_trial: usize,
    pub trials: Vec<Trial>,
    /// Index of the chosen trial.
    pub chosen: usize,
    /// `cfg` with the chosen values set.
    #[serde(skip)]
    pub cfg: RunConfig,
}

/// How a search ended.
pub enum TuneOutcome {
    Done(Box<Tuned>),
    /// Stopped by the user during trial `trial`.
    Interrupted {
        trial: usize,
    },
}

/// Tries `trials` configurations of `cfg` (the first with its defaults, then random draws of
/// the knobs the user did not set, seeded by `cfg`'s seed) and picks the best by the
/// selection metric on validation. Each trial trains `min(runs, 3)` runs in a scratch
/// directory beside `out`, removed after it; `report` hears one note per trial.
pub fn tune(
    cfg: &RunConfig,
    trials: usize,
    out: &Path,
    interrupt: Option<&std::sync::atomic::AtomicBool>,
    verify: bool,
    report: &mut dyn Reporter,
) -> Result<TuneOutcome, TrainError> {
    if trials == 0 {
        return Err(TrainError::Config("--tune needs at least 1 trial".into()));
    }
    cfg.check()?;
    let knobs: Vec<&Knob> = KNOBS.iter().filter(|k| (k.applies)(cfg)).collect();
    // Keys the user set are kept, not searched.
    let given = cfg.given_keys();
    let (fixed, free): (Vec<&Knob>, Vec<&Knob>) =
        knobs.iter().partition(|k| given.contains(&k.key));
    if free.is_empty() {
        return Err(TrainError::Config(format!(
            "--tune has nothing to search: {} are all given",
            fixed.iter().map(|k| k.key).collect::<Vec<_>>().join(", ")
        )));
    }
    let runs_per_trial = cfg.runs().min(TRIAL_RUNS_MAX);
    let scratch = scratch_dir(out);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed() ^ 0x7475_6e65);
    let mut done: Vec<Trial> = Vec::new();
    let mut tried: Vec<Vec<u64>> = Vec::new();
    let mut metric = String::new();
    for t in 0..trials {
        let values: Vec<(&'static str, f64)> = if t == 0 {
            free.iter().map(|k| (k.key, (k.current)(cfg))).collect()
        } else {
            // A configuration not tried yet, when the grid has one left.
            let mut draw = || {
                free.iter()
                    .map(|k| (k.key, k.grid[rng.random_range(0..k.grid.len())]))
                    .collect::<Vec<_>>()
            };
            let mut v = draw();
            for _ in 0..100 {
                if !tried.contains(&bits(&v)) {
                    break;
                }
                v = draw();
            }
            v
        };
        tried.push(bits(&values));
        let mut c = RunConfig {
            runs: Some(runs_per_trial),
            ..cfg.clone()
        };
        for (k, v) in &values {
            if let Some(knob) = free.iter().find(|n| n.key == *k) {
                (knob.set)(&mut c, *v);
            }
        }
        let opts = RunOptions {
            out: scratch.clone(),
            force: true,
            resume: false,
            verify: verify && t == 0,
            interrupt,
        };
        let outcome = train(&c, &opts, &mut Silent);
        let _ = std::fs::remove_dir_all(&scratch);
        let shown: Vec<String> = values.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let results = match outcome {
            Ok(TrainOutcome::Done(r)) => r,
            Ok(TrainOutcome::Interrupted { .. }) => {
                return Ok(TuneOutcome::Interrupted { trial: t })
            }
            // A configuration that diverges or does not fit is a bad draw, not a bad search.
            Err(e @ (TrainError::NanLoss { .. } | TrainError::Limit(_))) => {
                report.note(&format!(
                    "tune {}/{trials}: {}: failed ({e})",
                    t + 1,
                    shown.join(", ")
                ));
                done.push(Trial {
                    values,
                    val: None,
                    failed: Some(e.to_string()),
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        let n = results.len().max(1) as f64;
        let val = results.iter().map(|(_, s)| s.best_val).sum::<f64>() / n;
        metric = results
            .first()
            .map(|(_, s)| s.metric.clone())
            .unwrap_or_default();
        report.note(&format!(
            "tune {}/{trials}: {}: val {metric} {val:.4}{}",
            t + 1,
            shown.join(", "),
            if runs_per_trial > 1 {
                format!(" (mean of {runs_per_trial} runs)")
            } else {
                String::new()
            }
        ));
        done.push(Trial {
            values,
            // An undefined metric (NaN) ranks below every defined one.
            val: Some(val).filter(|v| !v.is_nan()),
            failed: None,
        });
    }
    let higher = crate::scores::higher_is_better(&metric);
    // The first of equals wins, so the defaults stay unless a trial beats them.
    let mut chosen: Option<(usize, f64)> = None;
    for (i, t) in done.iter().enumerate() {
        let Some(v) = t.val else { continue };
        let better = chosen.is_none_or(|(_, b)| if higher { v > b } else { v < b });
        if better {
            chosen = Some((i, v));
        }
    }
    let Some((chosen, _)) = chosen else {
        return Err(TrainError::Config(format!(
            "--tune: none of the {trials} trials finished with a validation figure (see the notes above)"
        )));
    };
    let mut best = cfg.clone();
    for (k, v) in &done[chosen].values {
        if let Some(knob) = free.iter().find(|n| n.key == *k) {
            (knob.set)(&mut best, *v);
        }
    }
    Ok(TuneOutcome::Done(Box::new(Tuned {
        metric,
        searched: free.iter().map(|k| k.key).collect(),
        fixed: fixed.iter().map(|k| k.key).collect(),
        runs_per_trial,
        trials: done,
        chosen,
        cfg: best,
    })))
}

/// Knob values as a JSON object, whole numbers (hidden widths) as integers.
fn as_map<S: serde::Serializer>(v: &[(&'static str, f64)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(v.len()))?;
    for (k, x) in v {
        if x.fract() == 0.0 && x.abs() < 1e15 && *k == "hidden" {
            m.serialize_entry(k, &(*x as i64))?;
        } else {
            m.serialize_entry(k, x)?;
        }
    }
    m.end()
}

/// The values as bits, to compare trials exactly.
fn bits(v: &[(&'static str, f64)]) -> Vec<u64> {
    v.iter().map(|(_, x)| x.to_bits()).collect()
}

/// A hidden sibling of `out` for the trials' run directories.
fn scratch_dir(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    out.with_file_name(format!(".{name}.tune-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_knob_default_is_in_its_grid() {
        // Trial 0 runs the defaults; a default outside the grid would still be tried, but
        // the grid is meant to bracket it.
        let c = RunConfig {
            model: Some("sagmm".into()),
            ..Default::default()
        };
        for k in KNOBS {
            let d = (k.current)(&c);
            assert!(
                k.grid.iter().any(|g| (g - d).abs() < 1e-9),
                "{}: default {d} not in {:?}",
                k.key,
                k.grid
            );
        }
    }

    #[test]
    fn knobs_the_user_set_are_not_searched() {
        let c = RunConfig {
            lr: Some(0.3),
            ..Default::default()
        };
        let given = c.given_keys();
        assert!(given.contains(&"lr"));
        assert!(!given.contains(&"weight_decay"));
        // Every knob is a config key, so given_keys can name it.
        for k in KNOBS {
            let mut set = RunConfig::default();
            (k.set)(&mut set, k.grid[1]);
            assert_eq!(set.given_keys(), vec![k.key]);
        }
        let el = KNOBS.iter().find(|k| k.key == "expert_loss").unwrap();
        assert!(!(el.applies)(&c), "expert_loss is SAGMM's only");
    }
}
