//! `Trainer`: the one training loop, for every loader (the whole graph is a loader that
//! yields one batch) and every task. Each epoch: a pass of training steps over the shuffled
//! training items, an evaluation pass, then the callbacks (model selection and early
//! stopping, SAGMM pruning, progress, the resumable state). At the end the kept model is
//! evaluated on the test split; the last `test` metric line is the reported figure.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_loader::{Loader, LoaderError, Prepared, StageTimes};
use scalegnn_nn::Model;
use scalegnn_store::FeatureStore;
use scalegnn_tensor::{Adam, Matrix, Tape};

use crate::callbacks::Callback;
use crate::scores::higher_is_better;
use crate::{MetricsLog, RunConfig, Splits, Task, TrainError};

/// What a run achieved.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunSummary {
    /// The selection metric (e.g. `acc`).
    pub metric: String,
    pub best_epoch: usize,
    /// The selection metric on validation at the kept epoch.
    pub best_val: f64,
    /// The selection metric on test for the kept model: the reported figure.
    pub test: f64,
    /// The same for the model of the last epoch.
    pub final_test: f64,
    pub epochs_run: usize,
    pub mean_epoch_ms: f64,
    pub num_params: usize,
}

/// Model selection and early stopping state.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Best {
    /// Epoch of the kept model (0: none yet).
    pub epoch: usize,
    /// The selection metric on validation at that epoch (None: none yet).
    pub value: Option<f64>,
    /// Best validation metric and loss seen (the GAT rule tracks both).
    pub best_metric: Option<f64>,
    pub best_loss: Option<f64>,
    /// Epochs since the last improvement.
    pub since: usize,
}

/// Everything callbacks read and change at an epoch's end.
pub struct State<'a> {
    pub model: Model,
    pub opt: Adam,
    pub log: &'a mut MetricsLog,
    pub epoch: usize,
    /// The items the loss reads (SAGMM-PE: the share left after pretraining).
    pub train_items: Vec<u32>,
    pub best: Best,
    /// The kept model's parameters (restored at the end).
    pub best_params: Vec<Matrix>,
    /// Set by a callback to end training after this epoch.
    pub stop: bool,
    pub run_dir: Option<&'a Path>,
    /// Wall milliseconds of each epoch's training pass.
    pub epoch_ms: Vec<f64>,
    /// Training time so far (resumed runs add the time before the interruption).
    pub train_time: Duration,
}

/// One epoch's outcome, for callbacks.
pub struct EpochEnd<'e> {
    pub epoch: usize,
    /// Mean training loss (the task loss, without regularisers).
    pub loss: f64,
    /// Validation scores (every metric the task computes).
    pub val: &'e [(&'static str, f64)],
    pub times: &'e StageTimes,
    /// Milliseconds of the validation pass.
    pub eval_ms: f64,
}

/// Runs models on a loader without training: outputs of items, and their scores.
pub struct Evaluator<'a> {
    pub loader: &'a dyn Loader,
    pub task: &'a dyn Task,
    pub metric: &'static str,
    tape: RefCell<Tape>,
}

impl<'a> Evaluator<'a> {
    /// An evaluator over `loader` scoring with `task`; `metric` selects.
    pub fn new(loader: &'a dyn Loader, task: &'a dyn Task, metric: &'static str) -> Self {
        Evaluator {
            loader,
            task,
            metric,
            tape: RefCell::new(Tape::new(false)),
        }
    }

    /// The model's outputs for each of `sets` (rows in item order), from one loader pass
    /// over all of them (no dropout).
    pub fn outputs(&self, model: &Model, sets: &[&[u32]]) -> Result<Vec<Matrix>, TrainError> {
        let all: Vec<u32> = sets.iter().flat_map(|s| s.iter().copied()).collect();
        let cols = self.task.score_dim();
        let mut out = Matrix::zeros(all.len(), cols);
        let mut filled = 0usize;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
        let mut tape = self.tape.borrow_mut();
        let mut failure = None;
        let mut positions: Option<HashMap<u32, Vec<usize>>> = None;
        let res = self.loader.run(&all, 0xE7A1, &mut |p: &Prepared| {
            tape.reset(false);
            let z = model.forward(&mut tape, &p.x, &p.graph, &mut rng);
            let o = self.task.output(&mut tape, model, z, p);
            let v = tape.value(o);
            let k = p.items.len();
            if filled + k > all.len() || v.rows < k || v.cols != cols {
                failure = Some(TrainError::Config(
                    "a loader returned more rows than asked".into(),
                ));
                return Err(LoaderError::Stopped);
            }
            if all[filled..filled + k] == p.items[..] {
                out.data[filled * cols..(filled + k) * cols].copy_from_slice(&v.data[..k * cols]);
            } else {
                // A loader that batches in its own order (ClusterGCN: cluster by cluster)
                // names its items; each row goes where its item was asked for.
                let at = positions.get_or_insert_with(|| {
                    let mut m: HashMap<u32, Vec<usize>> = HashMap::with_capacity(all.len());
                    for (i, &it) in all.iter().enumerate() {
                        m.entry(it).or_default().push(i);
                    }
                    m
                });
                for (r, it) in p.items.iter().enumerate() {
                    for &i in at.get(it).map(Vec::as_slice).unwrap_or(&[]) {
                        out.data[i * cols..(i + 1) * cols]
                            .copy_from_slice(&v.data[r * cols..(r + 1) * cols]);
                    }
                }
            }
            filled += k;
            tape.reset(false);
            Ok(())
        });
        finish(res, failure)?;
        let mut parts = Vec::with_capacity(sets.len());
        let mut at = 0;
        for s in sets {
            let m = Matrix::from_vec(
                s.len(),
                cols,
                out.data[at * cols..(at + s.len()) * cols].to_vec(),
            );
            at += s.len();
            parts.push(m);
        }
        Ok(parts)
    }

    /// The task's scores of the model on each of `sets`.
    pub fn scores(
        &self,
        model: &Model,
        sets: &[&[u32]],
    ) -> Result<Vec<Vec<(&'static str, f64)>>, TrainError> {
        let outs = self.outputs(model, sets)?;
        Ok(outs
            .iter()
            .zip(sets)
            .map(|(o, s)| self.task.scores(o, s))
            .collect())
    }

    /// The scores logged every epoch on each of `sets` (`Task::epoch_scores`: the cheap
    /// ones and the selection metric).
    pub fn epoch_scores(
        &self,
        model: &Model,
        sets: &[&[u32]],
    ) -> Result<Vec<Vec<(&'static str, f64)>>, TrainError> {
        let outs = self.outputs(model, sets)?;
        Ok(outs
            .iter()
            .zip(sets)
            .map(|(o, s)| self.task.epoch_scores(o, s, self.metric))
            .collect())
    }

    /// The selection metric of the model on `items`.
    pub fn metric_of(&self, model: &Model, items: &[u32]) -> Result<f64, TrainError> {
        Ok(value(&self.epoch_scores(model, &[items])?[0], self.metric))
    }
}

/// The value of `metric` in `scores` (NaN when the task could not compute it, e.g. ROC-AUC
/// on a split with one class).
pub fn value(scores: &[(&'static str, f64)], metric: &str) -> f64 {
    scores
        .iter()
        .find(|(n, _)| *n == metric)
        .map_or(f64::NAN, |(_, v)| *v)
}

/// The error a step kept, else the loader's.
fn finish<T>(res: Result<T, LoaderError>, failure: Option<TrainError>) -> Result<T, TrainError> {
    match (res, failure) {
        (_, Some(e)) => Err(e),
        (Err(e), None) => Err(TrainError::Loader(e)),
        (Ok(v), None) => Ok(v),
    }
}

/// Final evaluation by exact layer-wise inference (full neighbourhoods), for `exact_eval`.
pub struct ExactEval<'a> {
    pub graph: &'a scalegnn_graph::Csr,
    pub store: &'a dyn FeatureStore,
    pub chunk: usize,
    pub scratch: &'a Path,
}

/// The training loop's inputs.
pub struct Trainer<'a> {
    pub cfg: &'a RunConfig,
    pub task: &'a dyn Task,
    pub splits: &'a Splits,
    pub train_loader: &'a dyn Loader,
    pub eval: Evaluator<'a>,
    pub exact: Option<ExactEval<'a>>,
    /// Seed of this run (the config's seed + run index).
    pub seed: u64,
    /// Set from outside (SIGINT) to stop at the next batch boundary.
    pub interrupt: Option<&'a AtomicBool>,
    /// The training tape, kept across epochs so its buffer pool is: a fresh tape per epoch
    /// allocated (and page-faulted) every buffer of a full-batch step again, a third of the
    /// time of a GCN epoch on 100k nodes.
    pub tape: RefCell<Tape>,
}

/// How a fit ended.
pub enum Outcome {
    Done(Box<Model>, RunSummary),
    /// Interrupted after `epoch` whole epochs; the state to resume from is saved.
    Interrupted {
        epoch: usize,
    },
}

impl Trainer<'_> {
    /// The stream of random numbers of one epoch: derived from the seed and the epoch, so a
    /// resumed run draws exactly what the uninterrupted one drew.
    pub fn epoch_rng(&self, epoch: usize, stream: u64) -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus::seed_from_u64(
            (self.seed ^ 0x5EED ^ stream)
                .wrapping_add((epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        )
    }

    /// One training step on a prepared batch; the task loss (or the non-finite total loss,
    /// in which case no update was made).
    pub fn step(
        &self,
        model: &mut Model,
        opt: &mut Adam,
        tape: &mut Tape,
        p: &Prepared,
        rng: &mut Xoshiro256PlusPlus,
    ) -> f32 {
        tape.reset(true);
        model.params.zero_grad();
        let out = model.forward_output(tape, &p.x, &p.graph, rng);
        let picked = self.task.output(tape, model, out.out, p);
        let loss = self.task.batch_loss(tape, picked, p);
        let loss_v = tape.value(loss).data[0];
        // Regularisers a model records (SAGMM's load balance and diversity), and outputs it
        // asks to have scored by the task loss too (SAGMM's experts), with their weights.
        let mut total = loss;
        for a in out.aux_losses {
            total = tape.add(total, a);
        }
        for (z, w) in out.aux_outputs {
            let z = self.task.output(tape, model, z, p);
            let l = self.task.batch_loss(tape, z, p);
            let l = tape.scale(l, w);
            total = tape.add(total, l);
        }
        let total_v = tape.value(total).data[0];
        if !total_v.is_finite() {
            tape.reset(true);
            return total_v;
        }
        tape.backward_freeing(total, &mut model.params);
        opt.step(&mut model.params);
        model.update_stats(tape);
        // Frees the batch's buffers on the tape so the loader can reuse its features.
        tape.reset(true);
        loss_v
    }

    /// One pass of training steps over `items`; the mean task loss and the pass's times.
    pub fn train_pass(
        &self,
        model: &mut Model,
        opt: &mut Adam,
        items: &[u32],
        epoch: usize,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Result<(f64, StageTimes), TrainError> {
        let mut tape = self.tape.borrow_mut();
        let (mut sum, mut n) = (0f64, 0usize);
        let mut failure = None;
        let sample_seed = self.seed.wrapping_mul(1_000_003) ^ epoch as u64;
        let res = self.train_loader.run(items, sample_seed, &mut |p| {
            if self.interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
                failure = Some(TrainError::Interrupted);
                return Err(LoaderError::Stopped);
            }
            let l = self.step(model, opt, &mut tape, p, rng);
            if !l.is_finite() {
                failure = Some(TrainError::NanLoss { epoch, value: l });
                return Err(LoaderError::Stopped);
            }
            sum += l as f64;
            n += 1;
            Ok(())
        });
        let times = finish(res, failure)?;
        Ok((sum / n.max(1) as f64, times))
    }

    /// Trains `state.model` from `state.epoch + 1` to the configured epochs, running
    /// `callbacks` at the start, after every epoch and at the end.
    pub fn fit(
        &self,
        mut state: State,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<Outcome, TrainError> {
        let t_run = Instant::now() - state.train_time;
        if state.epoch == 0 {
            for cb in callbacks.iter_mut() {
                cb.on_start(self, &mut state)?;
            }
        }
        let epochs = self.cfg.epochs();
        while state.epoch < epochs && !state.stop {
            let epoch = state.epoch + 1;
            // From the epoch alone, so a resumed run decays as the uninterrupted one.
            state.opt.lr = self.cfg.lr_at(epoch);
            let mut rng = self.epoch_rng(epoch, 0);
            let mut order = state.train_items.clone();
            if !self.train_loader.whole_graph() {
                order.shuffle(&mut rng);
                if let Some(m) = self.cfg.max_batches {
                    order.truncate(m * self.cfg.batch_size());
                }
            }
            if let Some(st) = self.train_loader.store() {
                st.reset_cache_stats();
            }
            let (loss, times) =
                match self.train_pass(&mut state.model, &mut state.opt, &order, epoch, &mut rng) {
                    Ok(v) => v,
                    Err(TrainError::Interrupted) => {
                        state.log.flush()?;
                        return Ok(Outcome::Interrupted { epoch: state.epoch });
                    }
                    Err(e) => {
                        state.log.flush()?;
                        return Err(e);
                    }
                };
            state.epoch = epoch;
            state.epoch_ms.push(times.wall_ms);
            state.log.push(epoch, "train", "loss", loss)?;
            if !self.train_loader.whole_graph() {
                for (name, v) in [
                    ("sample_ms", times.sample_ms),
                    ("fetch_ms", times.fetch_ms),
                    ("compute_ms", times.compute_ms),
                    ("wait_ms", times.wait_ms),
                    ("epoch_s", times.wall_ms / 1e3),
                    ("seeds_per_s", times.seeds_per_s()),
                    ("bytes_read", times.bytes_read as f64),
                ] {
                    state.log.push(epoch, "train", name, v)?;
                }
                if let Some(cs) = self.train_loader.store().and_then(|st| st.cache_stats()) {
                    state
                        .log
                        .push(epoch, "train", "cache_hit_rate", cs.hit_rate())?;
                    state
                        .log
                        .push(epoch, "train", "cache_rows_fetched", cs.rows_fetched as f64)?;
                    state
                        .log
                        .push(epoch, "train", "cache_miss_fetch_ms", cs.mean_fetch_ms())?;
                }
            }
            let t_eval = Instant::now();
            // On the whole graph the training items' outputs come from the same pass.
            let val = if self.eval.loader.whole_graph() {
                let s = self
                    .eval
                    .epoch_scores(&state.model, &[&self.splits.train, &self.splits.val])?;
                for (name, v) in s[0].iter().filter(|(n, _)| *n != "loss") {
                    state.log.push(epoch, "train", name, *v)?;
                }
                s[1].clone()
            } else {
                self.eval
                    .epoch_scores(&state.model, &[&self.splits.val])?
                    .remove(0)
            };
            let eval_ms = t_eval.elapsed().as_secs_f64() * 1e3;
            for (name, v) in &val {
                state.log.push(epoch, "val", name, *v)?;
            }
            state.train_time = t_run.elapsed();
            let end = EpochEnd {
                epoch,
                loss,
                val: &val,
                times: &times,
                eval_ms,
            };
            for cb in callbacks.iter_mut() {
                cb.on_epoch(self, &mut state, &end)?;
            }
            state.log.flush()?;
            if self.interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) && state.epoch < epochs {
                return Ok(Outcome::Interrupted { epoch: state.epoch });
            }
        }
        self.finish_run(state, callbacks, t_run)
    }

    /// The kept model's test figures, the callbacks' end, the summary.
    fn finish_run(
        &self,
        mut state: State,
        callbacks: &mut [&mut dyn Callback],
        t_run: Instant,
    ) -> Result<Outcome, TrainError> {
        let metric = self.eval.metric;
        let last_params =
            std::mem::replace(&mut state.model.params.values, state.best_params.clone());
        for cb in callbacks.iter_mut() {
            cb.on_kept(self, &mut state)?;
        }
        if let Some(m) = state.model.moe() {
            // The histogram of experts per node covers the kept model's test pass.
            m.reset_histogram();
        }
        let test_scores = self.test_scores(&state.model)?;
        state.train_time = t_run.elapsed();
        for cb in callbacks.iter_mut() {
            cb.on_end(self, &mut state)?;
        }
        let final_test = {
            let kept = std::mem::replace(&mut state.model.params.values, last_params);
            let t = value(&self.test_scores(&state.model)?, metric);
            state.model.params.values = kept;
            t
        };
        if let Some(ex) = &self.exact {
            let logits = scalegnn_loader::exact::layerwise_logits(
                &state.model,
                ex.graph,
                ex.store,
                &self.splits.val,
                ex.chunk,
                ex.scratch,
            )?;
            let s = self.eval.task.scores(&logits, &self.splits.val);
            state.log.push(
                state.best.epoch,
                "val",
                &format!("exact_{metric}"),
                value(&s, metric),
            )?;
        }
        // Every test metric, the selection metric last: the last test line is the figure.
        let best_epoch = state.best.epoch;
        for (name, v) in test_scores.iter().filter(|(n, _)| *n != metric) {
            state.log.push(best_epoch, "test", name, *v)?;
        }
        let test = value(&test_scores, metric);
        state.log.push(best_epoch, "test", metric, test)?;
        state.log.flush()?;
        // Epoch 1 pays first-touch allocation on the whole graph; report the steady state
        // like the PyG anchor does.
        let ms = &state.epoch_ms;
        let steady = if self.train_loader.whole_graph() && ms.len() > 1 {
            &ms[1..]
        } else {
            &ms[..]
        };
        let summary = RunSummary {
            metric: metric.to_string(),
            best_epoch,
            best_val: state.best.value.unwrap_or(f64::NAN),
            test,
            final_test,
            epochs_run: state.epoch,
            mean_epoch_ms: steady.iter().sum::<f64>() / steady.len().max(1) as f64,
            num_params: state.model.params.count(),
        };
        Ok(Outcome::Done(Box::new(state.model), summary))
    }

    /// Test scores of `model`: exact layer-wise inference when asked, else the eval loader.
    fn test_scores(&self, model: &Model) -> Result<Vec<(&'static str, f64)>, TrainError> {
        match &self.exact {
            Some(ex) => {
                let logits = scalegnn_loader::exact::layerwise_logits(
                    model,
                    ex.graph,
                    ex.store,
                    &self.splits.test,
                    ex.chunk,
                    ex.scratch,
                )?;
                Ok(self.eval.task.scores(&logits, &self.splits.test))
            }
            None => Ok(self.eval.scores(model, &[&self.splits.test])?.remove(0)),
        }
    }

    /// Whether `new` improves on `old` for the selection metric.
    pub fn improves(&self, new: f64, old: Option<f64>) -> bool {
        match old {
            // The first epoch always yields a checkpoint, and a defined value replaces an
            // undefined one: a run must end with a model to evaluate.
            None => true,
            Some(o) if o.is_nan() => !new.is_nan(),
            Some(o) if higher_is_better(self.eval.metric) => new > o,
            Some(o) => new < o,
        }
    }
}
