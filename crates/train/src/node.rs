//! Full-batch node classification: every epoch runs the whole graph forward and backward,
//! evaluates on validation, keeps the best model (early stopping), and reports test accuracy
//! at the best validation epoch.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use scalegnn_data::{Dataset, Labels};
use scalegnn_nn::{Features, GraphCtx, Model, ModelConfig, ModelKind};
use scalegnn_tensor::{Adam, Matrix, Tape};

use crate::{Checkpoint, MetricsLog, TrainError};

/// Feature density below which the first layer multiplies only non-zeros: on Cora (1.3 %
/// non-zero) that cut the GCN epoch from 23.5 ms to a few ms; dense GEMM wins above ~25 %.
const SPARSE_MAX_DENSITY: f64 = 0.25;

/// Which validation signal selects the kept model and drives early stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Selection {
    /// Keep the epoch with the best validation accuracy; patience counts epochs since it.
    #[default]
    ValAcc,
    /// The GAT paper's rule: patience counts epochs in which neither validation accuracy nor
    /// validation loss reached a new best; the kept model is the last one at which both did.
    ValAccLoss,
}

impl std::str::FromStr for Selection {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "val_acc" => Ok(Selection::ValAcc),
            "val_acc_loss" => Ok(Selection::ValAccLoss),
            _ => Err(format!(
                "unknown selection `{s}` (expected val_acc or val_acc_loss)"
            )),
        }
    }
}

/// Hyper-parameters of a full-batch run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub model: ModelKind,
    pub hidden: usize,
    pub layers: usize,
    pub dropout: f32,
    pub lr: f32,
    pub weight_decay: f32,
    pub epochs: usize,
    /// Stop after this many epochs without a better validation accuracy.
    pub patience: Option<usize>,
    /// How the kept model is chosen (and what patience waits for).
    pub selection: Selection,
    pub seed: u64,
    /// Divide each feature row by its sum clamped at 1 (PyG's NormalizeFeatures, as the GCN paper does).
    pub normalize_features: bool,
    /// Dropout on the input features (default: `dropout`).
    pub input_dropout: Option<f32>,
    /// Attention heads (GAT).
    pub heads: usize,
    /// Dropout on attention coefficients (GAT); defaults to `dropout`.
    pub attn_dropout: Option<f32>,
    /// Propagation hops (SGC, ChebNet, MixHop).
    pub hops: usize,
    /// Batch norm inside GIN's MLP.
    pub batch_norm: bool,
    /// SAGMM's knobs.
    pub moe: scalegnn_nn::moe::MoeConfig,
}

impl TrainConfig {
    /// The model shape this run trains for `in_dim` features and `classes` classes.
    pub fn model_config(&self, in_dim: usize, classes: usize) -> ModelConfig {
        ModelConfig {
            heads: self.heads,
            // SAGMM's experts take the features undropped unless asked: with dropout 0.5 on
            // the input, Cora fell from 80.2 to 73.8 % (3 seeds, same run otherwise).
            input_dropout: self
                .input_dropout
                .unwrap_or(if self.model == ModelKind::Sagmm {
                    0.0
                } else {
                    self.dropout
                }),
            attn_dropout: self.attn_dropout.unwrap_or(self.dropout),
            hops: self.hops,
            batch_norm: self.batch_norm,
            moe: self.moe.clone(),
            ..ModelConfig::new(
                self.model,
                in_dim,
                self.hidden,
                classes,
                self.layers,
                self.dropout,
            )
        }
    }
}

impl Default for TrainConfig {
    /// The GCN paper's Cora recipe.
    fn default() -> Self {
        TrainConfig {
            model: ModelKind::Gcn,
            hidden: 16,
            layers: 2,
            dropout: 0.5,
            lr: 0.01,
            weight_decay: 5e-4,
            epochs: 200,
            patience: None,
            selection: Selection::ValAcc,
            seed: 0,
            normalize_features: true,
            input_dropout: None,
            heads: 8,
            attn_dropout: None,
            hops: 2,
            batch_norm: false,
            moe: scalegnn_nn::moe::MoeConfig::default(),
        }
    }
}

/// A dataset in the form a full-batch run needs: dense features, labels and splits in memory.
pub struct NodeData {
    /// Features, stored sparse when at most a quarter of the entries are non-zero.
    pub x: Features,
    pub labels: Arc<Vec<usize>>,
    pub num_classes: usize,
    pub train: Arc<Vec<usize>>,
    /// `0..train.len()` and the labels of the training nodes in that order (loss inputs).
    pub train_rows: Arc<Vec<usize>>,
    pub train_labels: Arc<Vec<usize>>,
    pub val: Arc<Vec<usize>>,
    pub test: Arc<Vec<usize>>,
}

impl NodeData {
    /// Loads features (from `x.npy`), labels and splits, with clear errors for what is missing.
    pub fn from_dataset(ds: &Dataset, normalize: bool) -> Result<NodeData, TrainError> {
        let x = ds.x.as_ref().ok_or_else(|| TrainError::Dataset {
            path: ds.dir.clone(),
            reason: "has no node features (x.npy); node classification needs them".into(),
        })?;
        scalegnn_limits::check_array(
            "the features of every node (full batch)",
            &[x.rows(), x.row_len()],
            4,
        )?;
        let m = Matrix::from_vec(x.rows(), x.row_len(), x.to_vec());
        NodeData::with_features(ds, m, normalize)
    }

    /// Every node's features read through a feature store (so its codec applies), with the
    /// dataset's labels and splits.
    pub fn from_store(
        ds: &Dataset,
        store: &dyn scalegnn_store::FeatureStore,
        normalize: bool,
    ) -> Result<NodeData, TrainError> {
        let (n, f) = (store.num_nodes(), store.dim());
        if n != ds.graph.num_nodes() {
            return Err(TrainError::Dataset {
                path: ds.dir.clone(),
                reason: format!(
                    "the feature store holds {n} nodes, the graph {}",
                    ds.graph.num_nodes()
                ),
            });
        }
        scalegnn_limits::check_array("the features of every node (full batch)", &[n, f], 4)?;
        let ids: Vec<u32> = (0..n as u32).collect();
        let mut m = Matrix::zeros(n, f);
        store.gather(&ids, &mut m.data)?;
        NodeData::with_features(ds, m, normalize)
    }

    /// `x` (`[N, F]`) with the dataset's labels and splits.
    pub fn with_features(
        ds: &Dataset,
        mut m: Matrix,
        normalize: bool,
    ) -> Result<NodeData, TrainError> {
        let err = |reason: &str| TrainError::Dataset {
            path: ds.dir.clone(),
            reason: reason.into(),
        };
        let y = match &ds.y {
            Some(Labels::Classes(y)) => y,
            Some(Labels::Targets(_)) => {
                return Err(err("has regression targets, not class labels"))
            }
            None => {
                return Err(err(
                    "has no node labels (y.npy); node classification needs them",
                ))
            }
        };
        let split = |a: &Option<scalegnn_npy::Array<i64>>,
                     name: &str|
         -> Result<Arc<Vec<usize>>, TrainError> {
            let a = a.as_ref().ok_or_else(|| {
                err(&format!(
                    "has no {name}_idx.npy; ingest with --split to make one"
                ))
            })?;
            Ok(Arc::new(a.iter().map(|&i| i as usize).collect()))
        };
        let num_classes = ds.manifest.num_classes.max(1) as usize;
        if let Some(bad) = y.iter().find(|&&c| c < 0 || c as usize >= num_classes) {
            return Err(err(&format!(
                "label {bad} is outside 0..{num_classes} (y.npy)"
            )));
        }
        let f = m.cols;
        if normalize {
            // Exactly PyG's NormalizeFeatures: divide by the row sum clamped below at 1.
            m.data.par_chunks_mut(f.max(1)).for_each(|r| {
                let s = r.iter().sum::<f32>().max(1.0);
                r.iter_mut().for_each(|v| *v /= s);
            });
        }
        let labels: Vec<usize> = y.iter().map(|&c| c.max(0) as usize).collect();
        let train = split(&ds.train_idx, "train")?;
        Ok(NodeData {
            train_rows: Arc::new((0..train.len()).collect()),
            train_labels: Arc::new(train.iter().map(|&i| labels[i]).collect()),
            x: Features::from_dense(m, SPARSE_MAX_DENSITY),
            labels: Arc::new(labels),
            num_classes,
            train,
            val: split(&ds.val_idx, "val")?,
            test: split(&ds.test_idx, "test")?,
        })
    }
}

/// What a run achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub best_epoch: usize,
    pub best_val_acc: f64,
    /// Test accuracy of the model at the best validation epoch (the reported figure).
    pub test_acc: f64,
    pub final_test_acc: f64,
    pub epochs_run: usize,
    pub mean_epoch_ms: f64,
    pub num_params: usize,
}

fn accuracy(pred: &[usize], labels: &[usize], idx: &[usize]) -> f64 {
    if idx.is_empty() {
        return 0.0;
    }
    idx.iter().filter(|&&i| pred[i] == labels[i]).count() as f64 / idx.len() as f64
}

/// Mean negative log-likelihood of the rows `idx` of `logits` (softmax per row).
fn nll(logits: &Matrix, labels: &[usize], idx: &[usize]) -> f64 {
    let total: f64 = idx
        .iter()
        .map(|&i| {
            let r = logits.row(i);
            let m = r.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let lse = m as f64 + r.iter().map(|&v| ((v - m) as f64).exp()).sum::<f64>().ln();
            lse - r[labels[i]] as f64
        })
        .sum();
    total / idx.len().max(1) as f64
}

/// Logits of `model` on the whole graph in evaluation mode (no dropout).
pub fn evaluate(model: &Model, x: &Features, graph: &GraphCtx, tape: &mut Tape) -> Matrix {
    tape.reset(false);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    let out = model.forward(tape, x, graph, &mut rng);
    tape.value(out).clone()
}

/// Splits `train` (shuffled with `seed`) into a `share` for pretraining and the rest.
fn split_share(train: &[usize], share: f32, seed: u64) -> (Vec<usize>, Vec<usize>) {
    use rand::seq::SliceRandom;
    let mut v = train.to_vec();
    v.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x9E7A));
    let k = ((v.len() as f64 * share.clamp(0.0, 1.0) as f64).round() as usize)
        .clamp(1, v.len().saturating_sub(1).max(1));
    let rest = v.split_off(k);
    (v, rest)
}

/// SAGMM-PE's first phase: every expert, with its own head, trained on the nodes `pre` for
/// `epochs` epochs (the sum of their losses: the experts share no parameter, so this is
/// each trained alone); then the experts are frozen.
#[allow(clippy::too_many_arguments)] // the phase's inputs, each distinct
fn pretrain_experts(
    model: &mut Model,
    data: &NodeData,
    graph: &GraphCtx,
    pre: &[usize],
    epochs: usize,
    opt: &mut Adam,
    rng: &mut Xoshiro256PlusPlus,
    log: &mut MetricsLog,
) -> Result<(), TrainError> {
    let idx = Arc::new(pre.to_vec());
    let rows = Arc::new((0..pre.len()).collect::<Vec<_>>());
    let labels = Arc::new(pre.iter().map(|&i| data.labels[i]).collect::<Vec<_>>());
    let mut tape = Tape::new(true);
    let t0 = Instant::now();
    for epoch in 1..=epochs {
        tape.reset(true);
        model.params.zero_grad();
        let moe = model.moe().expect("pretraining a SAGMM model");
        let outs = moe.pretrain_forward(&mut tape, &model.params, &data.x, graph, rng);
        let mut total: Option<scalegnn_tensor::Var> = None;
        for z in outs.into_iter().flatten() {
            let picked = tape.gather_rows(z, idx.clone());
            let lp = tape.log_softmax(picked);
            let l = tape.nll(lp, rows.clone(), labels.clone());
            total = Some(match total {
                Some(t) => tape.add(t, l),
                None => l,
            });
        }
        let Some(total) = total else { break };
        let v = tape.value(total).data[0];
        if !v.is_finite() {
            return Err(TrainError::NanLoss { epoch, value: v });
        }
        log.push(epoch, "pretrain", "loss", v as f64)?;
        tape.backward_freeing(total, &mut model.params);
        opt.step(&mut model.params);
    }
    log.push(
        epochs,
        crate::sagmm::SPLIT,
        "pretrain_s",
        t0.elapsed().as_secs_f64(),
    )?;
    model.freeze_experts();
    Ok(())
}

/// Trains a model full-batch; writes metrics to `log` and, with `run_dir`, the best checkpoint.
pub fn train_node_classification(
    data: &NodeData,
    graph: &scalegnn_graph::Csr,
    cfg: &TrainConfig,
    log: &mut MetricsLog,
    run_dir: Option<&Path>,
    on_epoch: &mut dyn FnMut(usize, f64, f64),
) -> Result<(Model, RunSummary), TrainError> {
    let mcfg = cfg.model_config(data.x.cols(), data.num_classes);
    // Full batch holds every node's activations: refused before allocating when they
    // cannot fit.
    mcfg.check_fits(graph.num_nodes(), graph.num_edges())?;
    let mut model = Model::new(mcfg, cfg.seed)?;
    let graph = GraphCtx::new(graph);
    let mut opt = Adam::new(cfg.lr, cfg.weight_decay);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed ^ 0x5EED);
    let mut tape = Tape::new(true);
    let mut best = (0usize, -1.0f64, 0.0f64);
    let mut best_params = model.params.values.clone();
    let mut epoch_ms = Vec::new();
    let mut last_test = 0.0;
    let mut epochs_run = 0;
    let (mut since_best, mut best_acc, mut best_loss) = (0usize, -1.0f64, f64::INFINITY);
    let t_run = Instant::now();
    // The nodes whose labels the loss reads (SAGMM-PE: the share left after pretraining).
    let (mut fit, mut fit_rows, mut fit_labels) = (
        data.train.clone(),
        data.train_rows.clone(),
        data.train_labels.clone(),
    );
    if model.config.moe.pretrain && model.moe().is_some() {
        let (pre, rest) = split_share(&data.train, model.config.moe.pretrain_share, cfg.seed);
        let epochs = match model.config.moe.pretrain_epochs {
            0 => (cfg.epochs / 2).max(1),
            e => e,
        };
        pretrain_experts(
            &mut model, data, &graph, &pre, epochs, &mut opt, &mut rng, log,
        )?;
        fit_rows = Arc::new((0..rest.len()).collect());
        fit_labels = Arc::new(rest.iter().map(|&i| data.labels[i]).collect());
        fit = Arc::new(rest);
        best_params.clone_from(&model.params.values);
    }
    for epoch in 1..=cfg.epochs {
        let t0 = Instant::now();
        tape.reset(true);
        model.params.zero_grad();
        let logits = model.forward(&mut tape, &data.x, &graph, &mut rng);
        // Softmax only the training rows (8 % of the nodes on the synthetic presets): the
        // loss never reads the others.
        let picked = tape.gather_rows(logits, fit.clone());
        let lp = tape.log_softmax(picked);
        let loss = tape.nll(lp, fit_rows.clone(), fit_labels.clone());
        let loss_v = tape.value(loss).data[0];
        // SAGMM's load-balance and diversity terms join the task loss (none for the others),
        // and its experts' own logits are scored on the same rows.
        let loss = tape.with_aux_losses(loss);
        let loss = tape.with_aux_logits(loss, Some(&fit), &fit_rows, &fit_labels);
        // The total, not just the task loss: an expert's own loss can be non-finite on rows
        // its gate weight ignores in the mixture.
        let total_v = tape.value(loss).data[0];
        if !total_v.is_finite() {
            log.flush()?;
            return Err(TrainError::NanLoss {
                epoch,
                value: total_v,
            });
        }
        tape.backward_freeing(loss, &mut model.params);
        opt.step(&mut model.params);
        model.update_stats(&tape);
        epoch_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        epochs_run = epoch;

        let t_eval = Instant::now();
        let logits = evaluate(&model, &data.x, &graph, &mut tape);
        let infer_ms = t_eval.elapsed().as_secs_f64() * 1e3;
        let pred = logits.argmax_rows();
        let (tr, va, te) = (
            accuracy(&pred, &data.labels, &data.train),
            accuracy(&pred, &data.labels, &data.val),
            accuracy(&pred, &data.labels, &data.test),
        );
        last_test = te;
        log.push(epoch, "train", "loss", loss_v as f64)?;
        log.push(epoch, "train", "acc", tr)?;
        log.push(epoch, "val", "acc", va)?;
        let keep = match cfg.selection {
            Selection::ValAcc => {
                if va > best.1 {
                    since_best = 0;
                    true
                } else {
                    since_best += 1;
                    false
                }
            }
            Selection::ValAccLoss => {
                let vl = nll(&logits, &data.labels, &data.val);
                log.push(epoch, "val", "loss", vl)?;
                let keep = va >= best_acc && vl <= best_loss;
                if va >= best_acc || vl <= best_loss {
                    best_acc = best_acc.max(va);
                    best_loss = best_loss.min(vl);
                    since_best = 0;
                } else {
                    since_best += 1;
                }
                keep
            }
        };
        if keep {
            best = (epoch, va, te);
            best_params.clone_from(&model.params.values);
            if let Some(dir) = run_dir {
                Checkpoint::save(&dir.join("checkpoint"), &model, epoch, va)?;
            }
        }
        // Pruning candidates are checked on the validation set first (full batch: one
        // forward pass each, every `prune_interval` epochs).
        // No pruning at the last epoch: the pruned model would have no epoch to recover in,
        // and model selection would have to take it as it is.
        let checked = model.end_epoch_checked(va, epoch < cfg.epochs, |m| {
            let pred = evaluate(m, &data.x, &graph, &mut tape).argmax_rows();
            accuracy(&pred, &data.labels, &data.val)
        });
        if let Some(rep) = checked {
            crate::sagmm::log_epoch(log, epoch, &model, &rep, infer_ms)?;
            for &p in &rep.freed_params {
                opt.free(p);
            }
            if !rep.pruned.is_empty() {
                // The mixture shrank: model selection restarts from the pruned model, measured
                // now, so the kept model is always one that was evaluated as it is.
                let logits = evaluate(&model, &data.x, &graph, &mut tape);
                let pred = logits.argmax_rows();
                let (va, te) = (
                    accuracy(&pred, &data.labels, &data.val),
                    accuracy(&pred, &data.labels, &data.test),
                );
                log.push(epoch, "val", "acc_after_prune", va)?;
                best = (epoch, va, te);
                best_acc = va;
                best_loss = nll(&logits, &data.labels, &data.val);
                since_best = 0;
                best_params.clone_from(&model.params.values);
                if let Some(dir) = run_dir {
                    Checkpoint::save(&dir.join("checkpoint"), &model, epoch, va)?;
                }
            }
        }
        log.flush()?;
        on_epoch(epoch, loss_v as f64, va);
        if cfg.patience.is_some_and(|p| since_best >= p) {
            break;
        }
    }
    model.params.values = best_params;
    if let Some(m) = model.moe() {
        // One pass of the kept model: how many experts each node uses.
        m.reset_histogram();
        let train_time = t_run.elapsed();
        evaluate(&model, &data.x, &graph, &mut tape);
        crate::sagmm::finish(log, epochs_run, &model, train_time, run_dir)?;
    }
    // The reported figure: test accuracy of the best-validation model, as the last test line.
    log.push(best.0, "test", "acc", best.2)?;
    log.flush()?;
    // Epoch 1 pays first-touch allocation; report the steady state like the PyG anchor does.
    let steady = if epoch_ms.len() > 1 {
        &epoch_ms[1..]
    } else {
        &epoch_ms[..]
    };
    let summary = RunSummary {
        best_epoch: best.0,
        best_val_acc: best.1,
        test_acc: best.2,
        final_test_acc: last_test,
        epochs_run,
        mean_epoch_ms: steady.iter().sum::<f64>() / steady.len().max(1) as f64,
        num_params: model.params.count(),
    };
    Ok((model, summary))
}
