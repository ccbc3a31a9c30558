//! The resumable state of a run, saved after every epoch in `RUN_DIR/state/` (replaced
//! atomically; flushed to the disk at most every `SYNC_EVERY`, and at the end): the model's and the kept model's parameters, Adam's moments, the epoch, the
//! selection state, SAGMM's pruning state, the training items and how many metric lines
//! belong to the epochs done. `--resume` continues from it to the figures the uninterrupted
//! run reaches (random streams are derived from seed and epoch, so nothing else is needed).

use std::path::Path;
use std::time::Duration;

use scalegnn_nn::moe::MoeState;
use scalegnn_nn::Model;
use scalegnn_tensor::{Adam, Matrix};
use serde::{Deserialize, Serialize};

use crate::callbacks::Callback;
use crate::trainer::{Best, EpochEnd, State, Trainer};
use crate::TrainError;

/// Directory of the state inside a run directory.
pub const STATE_DIR: &str = "state";

/// What `state.json` records besides the arrays.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub format: String,
    pub epoch: usize,
    pub best: Best,
    pub epoch_ms: Vec<f64>,
    pub train_s: f64,
    /// Metric lines written for the epochs done (later lines are dropped on resume).
    pub log_lines: usize,
    pub adam_step: i32,
    /// Parameter count (each has `p<i>`, `m<i>`, `v<i>`, `best<i>` files).
    pub params: usize,
    /// Adam's moments exist (after the first step).
    pub moments: bool,
    pub pruned: Vec<usize>,
    pub frozen: bool,
    #[serde(default)]
    pub moe: Option<MoeState>,
    /// Format 2: the shapes of the matrices packed in `params.npy`, `best.npy`, `m.npy` and
    /// `v.npy`, in parameter order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shapes: Option<Shapes>,
}

/// Shapes of the packed arrays of a format-2 state (pruned parameters are `[0, 0]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shapes {
    pub params: Vec<[usize; 2]>,
    pub best: Vec<[usize; 2]>,
    pub m: Vec<[usize; 2]>,
    pub v: Vec<[usize; 2]>,
}

/// Format 2 packs each kind of array into one file. Format 1 wrote four files per parameter:
/// a 200-epoch SAGMM run on Texas created 90,000 files and spent 7 of its 9 s in the kernel;
/// packed, 6 per epoch. Format 1 states still load.
const FORMAT: &str = "scalegnn-state/2";
const FORMAT_V1: &str = "scalegnn-state/1";

/// The matrices' values end to end, and their shapes.
fn pack(ms: &[Matrix]) -> (Vec<f32>, Vec<[usize; 2]>) {
    let mut flat = Vec::with_capacity(ms.iter().map(|m| m.data.len()).sum());
    for m in ms {
        flat.extend_from_slice(&m.data);
    }
    (flat, ms.iter().map(|m| [m.rows, m.cols]).collect())
}

/// Cuts `flat` back into matrices of `shapes`; None when the sizes disagree.
fn unpack(flat: &[f32], shapes: &[[usize; 2]]) -> Option<Vec<Matrix>> {
    let mut at = 0usize;
    let mut out = Vec::with_capacity(shapes.len());
    for &[r, c] in shapes {
        let n = r.checked_mul(c)?;
        let end = at.checked_add(n)?;
        out.push(Matrix::from_vec(r, c, flat.get(at..end)?.to_vec()));
        at = end;
    }
    (at == flat.len()).then_some(out)
}

/// How often the state and the checkpoint are flushed to the disk (fsync). Every epoch is
/// saved (a killed process resumes from the last one), but an fsync per epoch cost more than
/// the epochs: a 200-epoch Cora run took 40 s instead of 1.2 s on this machine's disk. A
/// machine crash loses at most this much training.
pub const SYNC_EVERY: Duration = Duration::from_secs(30);

/// Saves the state after every epoch (after selection and pruning).
#[derive(Default)]
pub struct Saver {
    last_sync: Option<std::time::Instant>,
}

impl Callback for Saver {
    fn on_epoch(&mut self, t: &Trainer, s: &mut State, _e: &EpochEnd) -> Result<(), TrainError> {
        let Some(dir) = s.run_dir else {
            return Ok(());
        };
        // Lines on disk first, so the count recorded is what the file holds.
        s.log.flush()?;
        let last = s.epoch >= t.cfg.epochs() || s.stop;
        let interrupted = t
            .interrupt
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed));
        let sync =
            last || interrupted || self.last_sync.is_none_or(|at| at.elapsed() >= SYNC_EVERY);
        save(&dir.join(STATE_DIR), s, sync)?;
        if sync {
            let ckpt = dir.join("checkpoint");
            if ckpt.is_dir() {
                crate::rundir::sync_dir(&ckpt)?;
            }
            self.last_sync = Some(std::time::Instant::now());
        }
        Ok(())
    }
}

/// Writes `s` into `dir` (a temp dir renamed over it; fsynced when `sync`).
pub fn save(dir: &Path, s: &State, sync: bool) -> Result<(), TrainError> {
    let (step, m, v) = s.opt.moments();
    let moe = s.model.moe();
    let saved = Saved {
        format: FORMAT.into(),
        epoch: s.epoch,
        best: s.best.clone(),
        epoch_ms: s.epoch_ms.clone(),
        train_s: s.train_time.as_secs_f64(),
        log_lines: s.log.lines.len(),
        adam_step: step,
        params: s.model.params.values.len(),
        moments: !m.is_empty(),
        pruned: s.model.config.moe.pruned.clone(),
        frozen: moe.is_some_and(|m| m.is_frozen()),
        moe: moe.map(|m| m.state()),
        shapes: None,
    };
    let packed = [
        ("params.npy", pack(&s.model.params.values)),
        ("best.npy", pack(&s.best_params)),
        ("m.npy", pack(m)),
        ("v.npy", pack(v)),
    ];
    let shape_of = |i: usize| packed[i].1 .1.clone();
    let saved = Saved {
        shapes: Some(Shapes {
            params: shape_of(0),
            best: shape_of(1),
            m: shape_of(2),
            v: shape_of(3),
        }),
        ..saved
    };
    crate::rundir::replace_dir(dir, sync, |tmp| {
        for (name, (flat, _)) in &packed {
            scalegnn_npy::write_array_unsynced(&tmp.join(name), &[flat.len()], flat)?;
        }
        let items: Vec<i64> = s.train_items.iter().map(|&i| i as i64).collect();
        scalegnn_npy::write_array_unsynced(&tmp.join("train_items.npy"), &[items.len()], &items)?;
        let text = serde_json::to_string_pretty(&saved)
            .map_err(|e| TrainError::io(tmp.join("state.json"), e.into()))?;
        let p = tmp.join("state.json");
        std::fs::write(&p, text).map_err(|e| TrainError::io(&p, e))
    })
}

/// A run's saved state, read back.
pub struct Loaded {
    pub saved: Saved,
    pub params: Vec<Matrix>,
    pub best_params: Vec<Matrix>,
    pub m: Vec<Matrix>,
    pub v: Vec<Matrix>,
    pub train_items: Vec<u32>,
}

/// Reads the state in `dir`, or `None` when there is none (the run never finished an epoch).
pub fn load(dir: &Path) -> Result<Option<Loaded>, TrainError> {
    let p = dir.join("state.json");
    if !p.exists() {
        return Ok(None);
    }
    let bad = |reason: String| TrainError::Checkpoint {
        path: p.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&p).map_err(|e| TrainError::io(&p, e))?;
    let saved: Saved = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let (params, best_params, m, v) = if saved.format == FORMAT {
        let Some(sh) = saved.shapes.clone() else {
            return Err(bad("format 2 without the arrays' shapes".into()));
        };
        let read = |name: &str, shapes: &[[usize; 2]]| -> Result<Vec<Matrix>, TrainError> {
            let a = scalegnn_npy::read_array::<f32>(&dir.join(name))?;
            unpack(&a, shapes).ok_or_else(|| {
                bad(format!(
                    "{name} holds {} values, its shapes in state.json add up to another count",
                    a.len()
                ))
            })
        };
        (
            read("params.npy", &sh.params)?,
            read("best.npy", &sh.best)?,
            read("m.npy", &sh.m)?,
            read("v.npy", &sh.v)?,
        )
    } else if saved.format == FORMAT_V1 {
        let read = |name: String| -> Result<Matrix, TrainError> {
            let a = scalegnn_npy::read_array::<f32>(&dir.join(&name))?;
            let (r, c) = match a.shape() {
                [r, c] => (*r, *c),
                other => return Err(bad(format!("{name}: shape {other:?}"))),
            };
            Ok(Matrix::from_vec(r, c, a.to_vec()))
        };
        let all = |prefix: &str| -> Result<Vec<Matrix>, TrainError> {
            (0..saved.params)
                .map(|i| read(format!("{prefix}{i}.npy")))
                .collect()
        };
        let (m, v) = if saved.moments {
            (all("m")?, all("v")?)
        } else {
            (Vec::new(), Vec::new())
        };
        (all("p")?, all("best")?, m, v)
    } else {
        return Err(bad(format!(
            "format {:?}, expected {FORMAT:?}",
            saved.format
        )));
    };
    if params.len() != saved.params || best_params.len() != saved.params {
        return Err(bad(format!(
            "{} parameters recorded, {} saved",
            saved.params,
            params.len()
        )));
    }
    let items = scalegnn_npy::read_array::<i64>(&dir.join("train_items.npy"))?;
    let train_items = items.iter().map(|&i| i as u32).collect();
    Ok(Some(Loaded {
        saved,
        params,
        best_params,
        m,
        v,
        train_items,
    }))
}

impl Loaded {
    /// Puts the saved parameters, moments and SAGMM state into `model` and `opt`.
    pub fn restore(&self, model: &mut Model, opt: &mut Adam) -> Result<(), TrainError> {
        if model.params.values.len() != self.params.len()
            || model
                .params
                .values
                .iter()
                .zip(&self.params)
                .any(|(a, b)| (a.rows, a.cols) != (b.rows, b.cols))
        {
            return Err(TrainError::Config(
                "the saved state does not fit the model of this run's config.toml".into(),
            ));
        }
        model.params.values.clone_from(&self.params);
        opt.restore(self.saved.adam_step, self.m.clone(), self.v.clone());
        if self.saved.frozen {
            model.freeze_experts();
        }
        if let (Some(moe), Some(st)) = (model.moe_mut(), &self.saved.moe) {
            moe.restore(st);
        }
        Ok(())
    }

    /// The training time before the interruption.
    pub fn train_time(&self) -> Duration {
        Duration::from_secs_f64(self.saved.train_s.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_arrays_unpack_to_the_same_matrices_and_a_wrong_count_is_refused() {
        let ms = vec![
            Matrix::from_vec(2, 3, (0..6).map(|i| i as f32).collect()),
            Matrix::zeros(0, 0),
            Matrix::from_vec(1, 2, vec![7.0, -1.5]),
        ];
        let (flat, shapes) = pack(&ms);
        assert_eq!(flat.len(), 8);
        let back = unpack(&flat, &shapes).unwrap();
        assert_eq!(back.len(), 3);
        for (a, b) in ms.iter().zip(&back) {
            assert_eq!((a.rows, a.cols, &a.data), (b.rows, b.cols, &b.data));
        }
        assert!(unpack(&flat[..7], &shapes).is_none(), "too few values");
        let mut long = flat.clone();
        long.push(0.0);
        assert!(unpack(&long, &shapes).is_none(), "values left over");
        assert!(
            unpack(&flat, &[[usize::MAX, 2]]).is_none(),
            "overflowing shape"
        );
    }
}
