//! Checkpoints: a directory with `model.json` (the run's resolved configuration, the input
//! and output widths, the experts pruned) and one `.npy` per parameter, written to a temp
//! directory and renamed into place so a crash never leaves a half checkpoint.

use std::path::Path;

use scalegnn_nn::{Model, ModelConfig};
use scalegnn_tensor::Matrix;
use serde::{Deserialize, Serialize};

use crate::{RunConfig, TrainError};

/// Version of `model.json`.
const FORMAT: &str = "scalegnn-checkpoint/2";

/// What `model.json` records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub format: String,
    /// The run's configuration, resolved (the model is rebuilt from it).
    pub config: RunConfig,
    pub in_dim: usize,
    pub out_dim: usize,
    /// SAGMM: experts pruned when this checkpoint was written.
    #[serde(default)]
    pub pruned: Vec<usize>,
    /// Width of the edge features the model reads (GINE; 0: none).
    #[serde(default)]
    pub edge_dim: usize,
    pub epoch: usize,
    /// The selection metric and its validation value at `epoch`.
    pub metric: String,
    pub value: f64,
    /// Name and shape of every parameter, in order.
    pub params: Vec<(String, usize, usize)>,
}

impl Checkpoint {
    /// The model shape this checkpoint holds.
    pub fn model_config(&self) -> ModelConfig {
        let mut c = self.config.model_config(self.in_dim, self.out_dim);
        c.moe.pruned.clone_from(&self.pruned);
        c.edge_dim = self.edge_dim;
        c
    }

    /// Saves `model` (trained with `cfg`) into `dir` atomically and durably (fsynced),
    /// replacing an older one.
    pub fn save(
        dir: &Path,
        model: &Model,
        cfg: &RunConfig,
        epoch: usize,
        metric: &str,
        value: f64,
    ) -> Result<(), TrainError> {
        Checkpoint::save_with(dir, model, cfg, epoch, metric, value, true)
    }

    /// [`Checkpoint::save`], fsynced only when `sync` (the trainer syncs its checkpoint
    /// with the resumable state, at most every few seconds: an fsync per improving epoch made
    /// a 200-epoch Cora run 30 times slower on a slow disk).
    pub(crate) fn save_with(
        dir: &Path,
        model: &Model,
        cfg: &RunConfig,
        epoch: usize,
        metric: &str,
        value: f64,
        sync: bool,
    ) -> Result<(), TrainError> {
        let c = &model.config;
        let mut config = cfg.clone();
        // Never a password in a run directory.
        config.pg_url = None;
        let meta = Checkpoint {
            format: FORMAT.into(),
            config,
            in_dim: c.in_dim,
            out_dim: c.out_dim,
            pruned: c.moe.pruned.clone(),
            edge_dim: c.edge_dim,
            epoch,
            metric: metric.into(),
            value,
            params: (0..model.params.values.len())
                .map(|i| {
                    let v = &model.params.values[i];
                    (model.params.names[i].clone(), v.rows, v.cols)
                })
                .collect(),
        };
        crate::rundir::replace_dir(dir, sync, |tmp| {
            for (i, v) in model.params.values.iter().enumerate() {
                scalegnn_npy::write_array_unsynced(
                    &tmp.join(format!("{}.npy", model.params.names[i])),
                    &[v.rows, v.cols],
                    &v.data,
                )?;
            }
            let text = serde_json::to_string_pretty(&meta)
                .map_err(|e| TrainError::io(tmp.join("model.json"), e.into()))?;
            let p = tmp.join("model.json");
            std::fs::write(&p, text).map_err(|e| TrainError::io(&p, e))
        })
    }

    /// Reads `dir/model.json` (a regular file of at most 1 MiB).
    pub fn read_meta(dir: &Path) -> Result<Checkpoint, TrainError> {
        let mpath = dir.join("model.json");
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(scalegnn_npy::open_regular(&mpath)?, 1 << 20),
            &mut text,
        )
        .map_err(|e| TrainError::io(&mpath, e))?;
        let bad = |reason: String| TrainError::Checkpoint {
            path: mpath.clone(),
            reason,
        };
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if v.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(bad(format!(
                "not a {FORMAT} checkpoint (written by an older scalegnn?); train the run again"
            )));
        }
        let meta: Checkpoint = serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
        meta.config.check().map_err(|e| bad(e.to_string()))?;
        if let Some(&e) = meta
            .pruned
            .iter()
            .find(|&&e| e >= meta.config.moe().experts)
        {
            return Err(bad(format!(
                "pruned expert {e} is outside 0..{}",
                meta.config.moe().experts
            )));
        }
        Ok(meta)
    }

    /// Loads a checkpoint: the model rebuilt from its configuration, every parameter read
    /// and checked (shape, finite values). With `expect` = (in, out) widths, they must match.
    pub fn load(
        dir: &Path,
        expect: Option<(usize, usize)>,
    ) -> Result<(Model, Checkpoint), TrainError> {
        let meta = Checkpoint::read_meta(dir)?;
        if let Some((i, o)) = expect.filter(|&e| e != (meta.in_dim, meta.out_dim)) {
            return Err(TrainError::Checkpoint {
                path: dir.to_path_buf(),
                reason: format!(
                    "it holds a model of {} inputs and {} outputs; the dataset has {i} and {o}",
                    meta.in_dim, meta.out_dim
                ),
            });
        }
        let mut model = Model::new(meta.model_config(), 0)?;
        for i in 0..model.params.values.len() {
            let name = model.params.names[i].clone();
            let p = dir.join(format!("{name}.npy"));
            let a = scalegnn_npy::read_array::<f32>(&p)?;
            let want = [model.params.values[i].rows, model.params.values[i].cols];
            if a.shape() != want {
                return Err(TrainError::Checkpoint {
                    path: p,
                    reason: format!("shape {:?}, the model needs {want:?}", a.shape()),
                });
            }
            // A checkpoint with NaN or Inf weights predicts garbage (chance accuracy, exit 0):
            // refused, naming the file.
            if let Some((k, v)) = a.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(TrainError::Checkpoint {
                    path: p,
                    reason: format!("value {k} is {v} (not a finite weight)"),
                });
            }
            model.params.values[i] = Matrix::from_vec(want[0], want[1], a.to_vec());
        }
        if meta.config.moe().pretrain && meta.config.model_kind().is_ok_and(|k| k.is_mixture()) {
            model.freeze_experts();
        }
        Ok((model, meta))
    }
}
