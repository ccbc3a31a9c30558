//! Callbacks the trainer runs at the start, after every epoch and at the end: model
//! selection with early stopping and the best checkpoint, SAGMM's expert pretraining and
//! pruning, progress reports. The resumable state is saved by `state::Saver`.

use std::sync::Arc;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_loader::LoaderError;
use scalegnn_tensor::{Tape, Var};

use crate::config::Selection as Rule;
use crate::scores::higher_is_better;
use crate::trainer::{value, EpochEnd, State, Trainer};
use crate::{Checkpoint, TrainError};

/// A hook into the training loop.
pub trait Callback {
    /// Before the first epoch (not when resuming).
    fn on_start(&mut self, _t: &Trainer, _s: &mut State) -> Result<(), TrainError> {
        Ok(())
    }
    /// After an epoch's training and validation passes.
    fn on_epoch(&mut self, _t: &Trainer, _s: &mut State, _e: &EpochEnd) -> Result<(), TrainError> {
        Ok(())
    }
    /// After the kept model's parameters are restored, before its test pass: the last chance
    /// to change the kept model, on validation figures only.
    fn on_kept(&mut self, _t: &Trainer, _s: &mut State) -> Result<(), TrainError> {
        Ok(())
    }
    /// After the kept model's test pass, before the summary.
    fn on_end(&mut self, _t: &Trainer, _s: &mut State) -> Result<(), TrainError> {
        Ok(())
    }
}

/// Saves the kept model as the run's checkpoint (made durable by `state::Saver` with the
/// resumable state).
pub(crate) fn save_checkpoint(t: &Trainer, s: &State, value: f64) -> Result<(), TrainError> {
    if let Some(dir) = s.run_dir {
        Checkpoint::save_with(
            &dir.join("checkpoint"),
            &s.model,
            t.cfg,
            s.epoch,
            t.eval.metric,
            value,
            false,
        )?;
    }
    Ok(())
}

/// Model selection and early stopping: keeps the model of the best validation metric (or,
/// with `select = best_and_loss`, the GAT paper's rule), saves it as the checkpoint, and
/// stops after `patience` epochs without improvement.
pub struct ModelSelection;

impl Callback for ModelSelection {
    fn on_epoch(&mut self, t: &Trainer, s: &mut State, e: &EpochEnd) -> Result<(), TrainError> {
        let metric = t.eval.metric;
        let v = value(e.val, metric);
        let b = &mut s.best;
        let keep = match t.cfg.selection() {
            Rule::Best => {
                let better = t.improves(v, b.value);
                if better {
                    b.since = 0;
                } else {
                    b.since += 1;
                }
                better
            }
            Rule::BestAndLoss => {
                let vl = value(e.val, "loss");
                let up = higher_is_better(metric);
                let metric_ok = b
                    .best_metric
                    .is_none_or(|m| if up { v >= m } else { v <= m });
                let loss_ok = b.best_loss.is_none_or(|l| vl <= l);
                if metric_ok || loss_ok {
                    b.best_metric = Some(match b.best_metric {
                        Some(m) if up => m.max(v),
                        Some(m) => m.min(v),
                        None => v,
                    });
                    b.best_loss = Some(b.best_loss.map_or(vl, |l| l.min(vl)));
                    b.since = 0;
                } else {
                    b.since += 1;
                }
                metric_ok && loss_ok
            }
        };
        if keep {
            b.epoch = e.epoch;
            b.value = Some(v);
            s.best_params.clone_from(&s.model.params.values);
            save_checkpoint(t, s, v)?;
        }
        if t.cfg.patience.is_some_and(|p| s.best.since >= p) {
            s.stop = true;
        }
        Ok(())
    }
}

/// SAGMM: expert pretraining (SAGMM-PE) at the start, per-epoch importance and pruning —
/// each candidate checked on the validation split first, with either loader — and the
/// expert-count histogram and plot at the end. Does nothing for other models.
pub struct Sagmm;

impl Callback for Sagmm {
    fn on_start(&mut self, t: &Trainer, s: &mut State) -> Result<(), TrainError> {
        let Some(moe) = s.model.moe() else {
            return Ok(());
        };
        let cfg = t.cfg.moe();
        if !cfg.pretrain || moe.experts.is_empty() {
            return Ok(());
        }
        let (pre, rest) = split_share(&s.train_items, cfg.pretrain_share, t.seed);
        pretrain_experts(t, s, &pre, cfg.pretrain_epochs)?;
        s.train_items = rest;
        s.best_params.clone_from(&s.model.params.values);
        Ok(())
    }

    fn on_epoch(&mut self, t: &Trainer, s: &mut State, e: &EpochEnd) -> Result<(), TrainError> {
        if s.model.moe().is_none() {
            return Ok(());
        }
        let metric = t.eval.metric;
        // Pruning compares "higher is better" figures.
        let up = higher_is_better(metric);
        let v = value(e.val, metric);
        let v = if up { v } else { -v };
        let val = &t.splits.val;
        let mut failure = None;
        // No pruning at the last epoch: the pruned model would have no epoch to recover in,
        // and model selection would have to take it as it is.
        let may_prune = s.epoch < t.cfg.epochs();
        let rep = s
            .model
            .end_epoch_checked(v, may_prune, |m| match t.eval.metric_of(m, val) {
                Ok(x) if up => x,
                Ok(x) => -x,
                Err(err) => {
                    failure.get_or_insert(err);
                    f64::NAN
                }
            });
        if let Some(err) = failure {
            return Err(err);
        }
        let Some(rep) = rep else { return Ok(()) };
        crate::sagmm::log_epoch(s.log, s.epoch, &s.model, &rep, e.eval_ms)?;
        for &p in &rep.freed_params {
            s.opt.free(p);
        }
        if !rep.pruned.is_empty() {
            // The mixture shrank: selection restarts from the pruned model, measured now, so
            // the kept model is always one that was evaluated as it is.
            let sc = t.eval.epoch_scores(&s.model, &[val])?.remove(0);
            let v = value(&sc, metric);
            s.log
                .push(s.epoch, "val", &format!("{metric}_after_prune"), v)?;
            s.best.epoch = s.epoch;
            s.best.value = Some(v);
            s.best.best_metric = Some(v);
            s.best.best_loss = Some(value(&sc, "loss"));
            s.best.since = 0;
            s.best_params.clone_from(&s.model.params.values);
            save_checkpoint(t, s, v)?;
        }
        Ok(())
    }

    /// The final checked pruning (`best_expert`): each expert of the kept mixture is scored
    /// alone on the validation split; when the best of them beats the mixture, the others are
    /// pruned and that expert is the kept model. A mixture that can pick any of its experts
    /// then never ends below the strongest one on validation.
    fn on_kept(&mut self, t: &Trainer, s: &mut State) -> Result<(), TrainError> {
        if s.model.moe().is_none() {
            return Ok(());
        }
        let cfg = t.cfg.moe();
        // SAGMM-PE's experts were trained with their own heads, not the shared one.
        if !cfg.best_expert || cfg.pretrain {
            return Ok(());
        }
        let val = &t.splits.val;
        let mixture = t.eval.metric_of(&s.model, val)?;
        let mut failure = None;
        let alone = s
            .model
            .score_experts_alone(|m| match t.eval.metric_of(m, val) {
                Ok(x) => x,
                Err(err) => {
                    failure.get_or_insert(err);
                    f64::NAN
                }
            });
        if let Some(err) = failure {
            return Err(err);
        }
        let metric = t.eval.metric;
        let epoch = s.best.epoch;
        let mut best: Option<(usize, f64)> = None;
        for &(e, v) in &alone {
            s.log.push(
                epoch,
                crate::sagmm::SPLIT,
                &format!("val_{metric}_expert_{e}"),
                v,
            )?;
            if t.improves(v, Some(best.map_or(mixture, |b| b.1))) {
                best = Some((e, v));
            }
        }
        let Some((e, v)) = best else {
            return Ok(());
        };
        let Some(rep) = s.model.prune_all_but(e) else {
            return Ok(());
        };
        // Not `pruned_expert` lines: those are the decisions taken during training.
        s.log.push(
            epoch,
            crate::sagmm::SPLIT,
            "params",
            s.model.params.count() as f64,
        )?;
        debug_assert!(rep.pruned.len() + 1 == alone.len());
        s.log
            .push(epoch, crate::sagmm::SPLIT, "best_expert", e as f64)?;
        s.log
            .push(epoch, "val", &format!("{metric}_best_expert"), v)?;
        s.best.value = Some(v);
        s.best_params.clone_from(&s.model.params.values);
        if let Some(dir) = s.run_dir {
            Checkpoint::save_with(
                &dir.join("checkpoint"),
                &s.model,
                t.cfg,
                epoch,
                metric,
                v,
                true,
            )?;
        }
        Ok(())
    }

    fn on_end(&mut self, _t: &Trainer, s: &mut State) -> Result<(), TrainError> {
        crate::sagmm::finish(s.log, s.epoch, &s.model, s.train_time, s.run_dir)
    }
}

/// Splits `train` (shuffled with `seed`) into a `share` for pretraining and the rest.
fn split_share(train: &[u32], share: f32, seed: u64) -> (Vec<u32>, Vec<u32>) {
    let mut v = train.to_vec();
    v.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x9E7A));
    let k = ((v.len() as f64 * share.clamp(0.0, 1.0) as f64).round() as usize)
        .clamp(1, v.len().saturating_sub(1).max(1));
    let rest = v.split_off(k);
    (v, rest)
}

/// SAGMM-PE's first phase: every expert, with its own head, trained on the items `pre` for
/// `epochs` epochs (the sum of their losses: the experts share no parameter, so this is
/// each trained alone); then the experts are frozen.
fn pretrain_experts(
    t: &Trainer,
    s: &mut State,
    pre: &[u32],
    epochs: usize,
) -> Result<(), TrainError> {
    let mut tape = Tape::new(true);
    let t0 = Instant::now();
    for epoch in 1..=epochs {
        let mut rng = t.epoch_rng(epoch, 0x9E7A);
        let (mut sum, mut n) = (0f64, 0usize);
        let mut failure = None;
        let (model, opt) = (&mut s.model, &mut s.opt);
        let res = t
            .train_loader
            .run(pre, t.seed ^ 0x9E7A ^ epoch as u64, &mut |p| {
                tape.reset(true);
                model.params.zero_grad();
                let Some(moe) = model.moe() else {
                    return Ok(());
                };
                let outs = moe.pretrain_forward(&mut tape, &model.params, &p.x, &p.graph, &mut rng);
                let mut total: Option<Var> = None;
                for z in outs.into_iter().flatten() {
                    let z = match &p.rows {
                        Some(rows) => tape.gather_rows(z, Arc::clone(rows)),
                        None => z,
                    };
                    let l = t.task.loss(&mut tape, z, &p.items);
                    total = Some(match total {
                        Some(acc) => tape.add(acc, l),
                        None => l,
                    });
                }
                let Some(total) = total else { return Ok(()) };
                let v = tape.value(total).data[0];
                if !v.is_finite() {
                    failure = Some(TrainError::NanLoss { epoch, value: v });
                    return Err(LoaderError::Stopped);
                }
                sum += v as f64;
                n += 1;
                tape.backward_freeing(total, &mut model.params);
                opt.step(&mut model.params);
                tape.reset(true);
                Ok(())
            });
        if let Some(e) = failure {
            return Err(e);
        }
        res?;
        s.log
            .push(epoch, "pretrain", "loss", sum / n.max(1) as f64)?;
    }
    s.log.push(
        epochs,
        crate::sagmm::SPLIT,
        "pretrain_s",
        t0.elapsed().as_secs_f64(),
    )?;
    s.model.freeze_experts();
    Ok(())
}

/// Reports each epoch to a closure (the CLI's progress bar or line).
pub struct Progress<'f>(pub &'f mut dyn FnMut(&EpochEnd, &State));

impl Callback for Progress<'_> {
    fn on_epoch(&mut self, _t: &Trainer, s: &mut State, e: &EpochEnd) -> Result<(), TrainError> {
        (self.0)(e, s);
        Ok(())
    }
}
