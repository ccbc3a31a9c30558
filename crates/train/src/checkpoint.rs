//! Checkpoints: a directory with `model.json` (shape) and one `.npy` per parameter, written
//! to a temp directory and renamed into place so a crash never leaves a half checkpoint.

use std::path::Path;

use scalegnn_nn::moe::expert::ExpertKind;
use scalegnn_nn::moe::MoeConfig;
use scalegnn_nn::{Model, ModelConfig, ModelKind};
use scalegnn_tensor::Matrix;
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// What `model.json` records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    pub model: String,
    pub in_dim: usize,
    pub hidden: usize,
    pub out_dim: usize,
    pub layers: usize,
    pub dropout: f32,
    pub heads: usize,
    pub attn_dropout: f32,
    pub hops: usize,
    /// GIN's batch norm (absent in older checkpoints: off).
    #[serde(default)]
    pub batch_norm: bool,
    /// SAGMM's shape: expert pool, gate, and the experts pruned (absent for other models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moe: Option<MoeShape>,
    pub epoch: usize,
    pub val_acc: f64,
    pub params: Vec<(String, usize, usize)>,
}

/// The part of SAGMM's configuration that decides its parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MoeShape {
    /// Expert architectures drawn from (names).
    pub pool: Vec<String>,
    pub experts: usize,
    pub identical: bool,
    pub gate: String,
    pub eig_k: usize,
    pub pruned: Vec<usize>,
    /// SAGMM-PE (its experts have pretraining heads).
    #[serde(default)]
    pub pretrain: bool,
}

impl Checkpoint {
    /// Saves `model` into `dir` atomically (replacing an older checkpoint there).
    pub fn save(dir: &Path, model: &Model, epoch: usize, val_acc: f64) -> Result<(), TrainError> {
        let c = &model.config;
        let meta = Checkpoint {
            model: c.kind.name().into(),
            in_dim: c.in_dim,
            hidden: c.hidden,
            out_dim: c.out_dim,
            layers: c.layers,
            dropout: c.dropout,
            heads: c.heads,
            attn_dropout: c.attn_dropout,
            hops: c.hops,
            batch_norm: c.batch_norm,
            moe: (c.kind == ModelKind::Sagmm).then(|| MoeShape {
                pool: c.moe.pool.iter().map(|k| k.name().to_string()).collect(),
                experts: c.moe.experts,
                identical: c.moe.identical,
                gate: c.moe.gate.to_string(),
                eig_k: c.moe.eig_k,
                pruned: c.moe.pruned.clone(),
                pretrain: c.moe.pretrain,
            }),
            epoch,
            val_acc,
            params: (0..model.params.values.len())
                .map(|i| {
                    (
                        model.params.names[i].clone(),
                        model.params.values[i].rows,
                        model.params.values[i].cols,
                    )
                })
                .collect(),
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "checkpoint".into());
        let parent = dir.parent().unwrap_or(Path::new("."));
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
        for (i, v) in model.params.values.iter().enumerate() {
            scalegnn_npy::write_array(
                &tmp.join(format!("{}.npy", model.params.names[i])),
                &[v.rows, v.cols],
                &v.data,
            )?;
        }
        let text =
            serde_json::to_string_pretty(&meta).map_err(|e| TrainError::io(&tmp, e.into()))?;
        let mpath = tmp.join("model.json");
        std::fs::write(&mpath, text).map_err(|e| TrainError::io(&mpath, e))?;
        std::fs::File::open(&mpath)
            .and_then(|f| f.sync_all())
            .map_err(|e| TrainError::io(&mpath, e))?;
        if dir.exists() {
            std::fs::rename(dir, &old).map_err(|e| TrainError::io(dir, e))?;
        }
        std::fs::rename(&tmp, dir).map_err(|e| TrainError::io(dir, e))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }

    /// Loads a checkpoint; when `expect` is given, its shape must match.
    pub fn load(
        dir: &Path,
        expect: Option<&ModelConfig>,
    ) -> Result<(Model, Checkpoint), TrainError> {
        let mpath = dir.join("model.json");
        let mut text = String::new();
        // model.json is a few KiB; a larger file is not one.
        std::io::Read::read_to_string(
            &mut std::io::Read::take(scalegnn_npy::open_regular(&mpath)?, 1 << 20),
            &mut text,
        )
        .map_err(|e| TrainError::io(&mpath, e))?;
        let meta: Checkpoint = serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint {
            path: mpath.clone(),
            reason: e.to_string(),
        })?;
        let kind: ModelKind = meta.model.parse()?;
        let mut moe = MoeConfig::default();
        if let Some(m) = &meta.moe {
            moe.pool = m
                .pool
                .iter()
                .map(|n| {
                    ExpertKind::parse(n).ok_or_else(|| TrainError::Checkpoint {
                        path: mpath.clone(),
                        reason: format!("unknown expert kind {n:?}"),
                    })
                })
                .collect::<Result<_, _>>()?;
            moe.experts = m.experts;
            moe.identical = m.identical;
            moe.gate = m.gate.parse().map_err(|e: String| TrainError::Checkpoint {
                path: mpath.clone(),
                reason: e,
            })?;
            moe.eig_k = m.eig_k;
            if let Some(&bad) = m.pruned.iter().find(|&&e| e >= m.experts) {
                return Err(TrainError::Checkpoint {
                    path: mpath.clone(),
                    reason: format!("pruned expert {bad} is outside 0..{}", m.experts),
                });
            }
            moe.pruned = m.pruned.clone();
            moe.pretrain = m.pretrain;
        }
        let cfg = ModelConfig {
            moe,
            heads: meta.heads,
            attn_dropout: meta.attn_dropout,
            hops: meta.hops,
            batch_norm: meta.batch_norm,
            ..ModelConfig::new(
                kind,
                meta.in_dim,
                meta.hidden,
                meta.out_dim,
                meta.layers,
                meta.dropout,
            )
        };
        if let Some(e) = expect {
            if (e.kind, e.in_dim, e.hidden, e.out_dim, e.layers)
                != (cfg.kind, cfg.in_dim, cfg.hidden, cfg.out_dim, cfg.layers)
            {
                return Err(TrainError::Checkpoint {
                    path: dir.to_path_buf(),
                    reason: format!(
                        "it holds {} {}→{}→{} with {} layers, the run wants {} {}→{}→{} with {} layers",
                        cfg.kind.name(), cfg.in_dim, cfg.hidden, cfg.out_dim, cfg.layers,
                        e.kind.name(), e.in_dim, e.hidden, e.out_dim, e.layers
                    ),
                });
            }
        }
        let mut model = Model::new(cfg, 0)?;
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
        Ok((model, meta))
    }
}
