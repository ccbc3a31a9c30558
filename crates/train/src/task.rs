//! `Task`: what a run learns — the targets of a batch's items, the loss, the metrics, the
//! metric that selects the checkpoint, and what `predict` writes. Node classification
//! (single-label, and multi-label with BCE) and node regression (targets standardised with
//! the training split's statistics, metrics in the original units) are implemented here;
//! link prediction and graph-level tasks are further impls.

use std::sync::Arc;

use scalegnn_data::{Dataset, Labels};
use scalegnn_loader::Prepared;
use scalegnn_nn::Model;
use scalegnn_tensor::{Matrix, Tape, Var};

use crate::scores::{self, mean_over_columns};
use crate::TrainError;

/// What a run learns.
pub trait Task: Send + Sync {
    /// The task's name, as run directories and logs record it.
    fn name(&self) -> &'static str;
    /// Output width the model must have.
    fn out_dim(&self) -> usize;
    /// Width of a scored row (what `scores` and `predict` read): the model's output width,
    /// or 1 where the task decodes rows into one score (link prediction).
    fn score_dim(&self) -> usize {
        self.out_dim()
    }
    /// What the loss and the scores read from the model's output `z` on batch `p`, one row
    /// per scored item in order: the items' rows (`p.rows`, else the first rows).
    fn output(&self, tape: &mut Tape, model: &Model, z: Var, p: &Prepared) -> Var {
        let _ = model;
        match &p.rows {
            Some(rows) => tape.gather_rows(z, rows.clone()),
            None => z,
        }
    }
    /// Mean loss of `out` (from `output`) on batch `p`: by default against the items'
    /// targets; a batch that carries its own (drawn negatives) is scored against those.
    fn batch_loss(&self, tape: &mut Tape, out: Var, p: &Prepared) -> Var {
        self.loss(tape, out, &p.items)
    }
    /// Mean loss of `out` (one row per item, in order) against the items' targets.
    fn loss(&self, tape: &mut Tape, out: Var, items: &[u32]) -> Var;
    /// Every metric of `out` (one row per item) the task computes, `loss` included.
    fn scores(&self, out: &Matrix, items: &[u32]) -> Vec<(&'static str, f64)>;
    /// The scores logged every epoch, which must include `metric`: by default every one.
    /// Tasks whose full set is costly (ROC-AUC and AP one-vs-rest over many classes) keep to
    /// the cheap ones there; `scores` still gives all of them for the kept model.
    fn epoch_scores(&self, out: &Matrix, items: &[u32], metric: &str) -> Vec<(&'static str, f64)> {
        let _ = metric;
        self.scores(out, items)
    }
    /// The metrics `scores` returns, the default selection metric first.
    fn metrics(&self) -> &'static [&'static str];
    /// What `predict` writes for outputs `out`: class ids, probabilities (`proba`), or values.
    fn predict(&self, out: &Matrix, proba: bool) -> Prediction;

    /// Whether `predict` can write probabilities (not for regression).
    fn has_probabilities(&self) -> bool {
        true
    }
}

/// Predictions as written to `predictions.npy`.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    /// Class ids `[n]`, or 0/1 labels `[n, C]` (multi-label).
    Ints(Vec<i64>, Vec<usize>),
    /// Probabilities or regression values, `[n, C]`.
    Floats(Vec<f32>, Vec<usize>),
}

/// The training, validation and test items of one split.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Splits {
    pub train: Vec<u32>,
    pub val: Vec<u32>,
    pub test: Vec<u32>,
    /// Official splits the dataset holds (1 for a plain `train_idx.npy`).
    pub count: usize,
}

impl Splits {
    /// Split `k` of the dataset: row `k` of 2-D split files (`[S, len]`, padded with -1),
    /// or the only one.
    pub fn from_dataset(ds: &Dataset, k: usize) -> Result<Splits, TrainError> {
        let err = |reason: String| TrainError::Dataset {
            path: ds.dir.clone(),
            reason,
        };
        let mut count = None;
        let mut pick = |a: &Option<scalegnn_npy::Array<i64>>, name: &str| {
            let a = a.as_ref().ok_or_else(|| {
                err(format!(
                    "has no {name}_idx.npy; ingest with --split to make one"
                ))
            })?;
            let (s, row): (usize, &[i64]) = match a.shape() {
                [_] => (1, &a[..]),
                [s, len] => {
                    if k >= *s {
                        return Err(err(format!(
                            "split: {k} is out of range; {name}_idx.npy holds {s} splits"
                        )));
                    }
                    (*s, &a[k * len..(k + 1) * len])
                }
                other => {
                    return Err(err(format!(
                        "{name}_idx.npy has shape {other:?}; expected [n] or [splits, n]"
                    )))
                }
            };
            if s == 1 && k > 0 {
                return Err(err(format!(
                    "split: {k} is out of range; the dataset has one split"
                )));
            }
            if *count.get_or_insert(s) != s {
                return Err(err(format!(
                    "{name}_idx.npy holds {s} splits, the other split files {}",
                    count.unwrap_or(0)
                )));
            }
            // -1 pads the shorter splits of a 2-D file.
            Ok(row
                .iter()
                .filter(|&&i| i >= 0)
                .map(|&i| i as u32)
                .collect::<Vec<u32>>())
        };
        let train = pick(&ds.train_idx, "train")?;
        let val = pick(&ds.val_idx, "val")?;
        let test = pick(&ds.test_idx, "test")?;
        if train.is_empty() {
            return Err(err("the training split is empty".into()));
        }
        Ok(Splits {
            train,
            val,
            test,
            count: count.unwrap_or(1),
        })
    }
}

/// The node-level task the dataset's labels define: single-label classification (`y.npy`
/// int `[N]`), multi-label classification (int `[N, C]` of 0/1) or regression (float).
pub fn node_task(ds: &Dataset, splits: &Splits) -> Result<Box<dyn Task>, TrainError> {
    let err = |reason: &str| TrainError::Dataset {
        path: ds.dir.clone(),
        reason: reason.into(),
    };
    let n = ds.graph.num_nodes();
    match &ds.y {
        None => Err(err(
            "has no node labels (y.npy); node classification needs them",
        )),
        Some(Labels::Classes(y)) if y.shape().len() == 2 => {
            let c = y.shape()[1];
            if y.shape()[0] != n {
                return Err(err("y.npy has a row count other than the node count"));
            }
            if let Some(bad) = y.iter().find(|&&v| v != 0 && v != 1) {
                return Err(err(&format!(
                    "y.npy is [N, {c}] (multi-label) but holds {bad}; expected 0 or 1"
                )));
            }
            let t: Vec<f32> = y.iter().map(|&v| v as f32).collect();
            Ok(Box::new(MultiLabel {
                targets: Arc::new(Matrix::from_vec(n, c, t)),
            }))
        }
        Some(Labels::Classes(y)) => {
            let classes = ds.manifest.num_classes.max(1) as usize;
            // -1 marks an unlabelled node: allowed anywhere but in a split.
            if let Some(bad) = y.iter().find(|&&c| c < -1 || c >= classes as i64) {
                return Err(err(&format!("label {bad} is outside 0..{classes} (y.npy)")));
            }
            for (name, items) in [
                ("train", &splits.train),
                ("val", &splits.val),
                ("test", &splits.test),
            ] {
                if let Some(&i) = items.iter().find(|&&i| y.get(i as usize) == Some(&-1)) {
                    return Err(err(&format!(
                        "node {i} of the {name} split is unlabelled (-1 in y.npy)"
                    )));
                }
            }
            Ok(Box::new(Classification {
                labels: Arc::new(y.iter().map(|&c| c as u32).collect()),
                classes,
            }))
        }
        Some(Labels::Targets(y)) => {
            let t = y.shape().get(1).copied().unwrap_or(1);
            let m = Matrix::from_vec(n, t, y.to_vec());
            Ok(Box::new(Regression::new(m, &splits.train)))
        }
    }
}

/// Single-label classification: softmax + NLL.
pub struct Classification {
    pub labels: Arc<Vec<u32>>,
    pub classes: usize,
}

impl Classification {
    fn labels_of(&self, items: &[u32]) -> Vec<usize> {
        items
            .iter()
            .map(|&i| self.labels[i as usize] as usize)
            .collect()
    }

    /// Accuracy, macro-F1 and loss; with `ranking`, ROC-AUC and AP too.
    fn scores_with(&self, out: &Matrix, items: &[u32], ranking: bool) -> Vec<(&'static str, f64)> {
        let truth = self.labels_of(items);
        let pred = out.argmax_rows();
        let p = softmax_rows(out);
        let c = out.cols.max(1);
        let nll = truth
            .iter()
            .enumerate()
            .map(|(r, &t)| -p[r * c + t].max(1e-300).ln())
            .sum::<f64>()
            / truth.len().max(1) as f64;
        let mut s = vec![
            ("acc", scores::accuracy(&pred, &truth)),
            ("macro_f1", scores::macro_f1(&pred, &truth, self.classes)),
            ("loss", nll),
        ];
        if !ranking {
            return s;
        }
        // Binary: the positive class's probability; more classes: one-vs-rest mean.
        let (auc, ap) = if self.classes == 2 {
            let score: Vec<f64> = (0..truth.len()).map(|r| p[r * 2 + 1]).collect();
            let t: Vec<bool> = truth.iter().map(|&v| v == 1).collect();
            (
                scores::roc_auc(&score, &t),
                scores::average_precision(&score, &t),
            )
        } else {
            let t: Vec<bool> = truth
                .iter()
                .flat_map(|&v| (0..c).map(move |k| k == v))
                .collect();
            (
                mean_over_columns(&p, &t, c, scores::roc_auc),
                mean_over_columns(&p, &t, c, scores::average_precision),
            )
        };
        if let Some(a) = auc {
            s.push(("roc_auc", a));
        }
        if let Some(a) = ap {
            s.push(("ap", a));
        }
        s
    }
}

/// Row-wise softmax of `out` (numerically stable), f64.
fn softmax_rows(out: &Matrix) -> Vec<f64> {
    let mut p = Vec::with_capacity(out.rows * out.cols);
    for r in 0..out.rows {
        let row = out.row(r);
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let s: f64 = row.iter().map(|&v| ((v - m) as f64).exp()).sum();
        p.extend(row.iter().map(|&v| ((v - m) as f64).exp() / s));
    }
    p
}

impl Task for Classification {
    fn name(&self) -> &'static str {
        "node_classification"
    }

    fn out_dim(&self) -> usize {
        self.classes
    }

    fn loss(&self, tape: &mut Tape, out: Var, items: &[u32]) -> Var {
        let lp = tape.log_softmax(out);
        let rows = Arc::new((0..items.len()).collect());
        tape.nll(lp, rows, Arc::new(self.labels_of(items)))
    }

    fn scores(&self, out: &Matrix, items: &[u32]) -> Vec<(&'static str, f64)> {
        self.scores_with(out, items, true)
    }

    fn epoch_scores(&self, out: &Matrix, items: &[u32], metric: &str) -> Vec<(&'static str, f64)> {
        // One-vs-rest ranking metrics sort every class's scores: on 47 classes they cost more
        // than the epoch's forward pass, so they are computed per epoch only when selecting.
        let ranking = self.classes == 2 || matches!(metric, "roc_auc" | "ap");
        self.scores_with(out, items, ranking)
    }

    fn metrics(&self) -> &'static [&'static str] {
        if self.classes == 2 {
            &["roc_auc", "acc", "macro_f1", "ap"]
        } else {
            &["acc", "macro_f1", "roc_auc", "ap"]
        }
    }

    fn predict(&self, out: &Matrix, proba: bool) -> Prediction {
        if proba {
            let p = softmax_rows(out).into_iter().map(|v| v as f32).collect();
            Prediction::Floats(p, vec![out.rows, out.cols])
        } else {
            let c = out.argmax_rows().into_iter().map(|c| c as i64).collect();
            Prediction::Ints(c, vec![out.rows])
        }
    }
}

/// Multi-label classification: an independent sigmoid per label, BCE.
pub struct MultiLabel {
    /// `[N, C]` of 0/1.
    pub targets: Arc<Matrix>,
}

impl MultiLabel {
    fn rows_of(&self, items: &[u32]) -> Matrix {
        let c = self.targets.cols;
        let mut m = Matrix::zeros(items.len(), c);
        for (r, &i) in items.iter().enumerate() {
            m.row_mut(r).copy_from_slice(self.targets.row(i as usize));
        }
        m
    }
}

impl Task for MultiLabel {
    fn name(&self) -> &'static str {
        "node_multilabel_classification"
    }

    fn out_dim(&self) -> usize {
        self.targets.cols
    }

    fn loss(&self, tape: &mut Tape, out: Var, items: &[u32]) -> Var {
        let t = self.rows_of(items);
        tape.bce_with_logits(out, &t, None)
    }

    fn scores(&self, out: &Matrix, items: &[u32]) -> Vec<(&'static str, f64)> {
        let t = self.rows_of(items);
        let c = t.cols.max(1);
        let truth: Vec<bool> = t.data.iter().map(|&v| v > 0.5).collect();
        let score: Vec<f64> = out.data.iter().map(|&v| v as f64).collect();
        let hits = truth
            .iter()
            .zip(&score)
            .filter(|(&t, &s)| t == (s > 0.0))
            .count();
        let bce = score
            .iter()
            .zip(&truth)
            .map(|(&x, &t)| x.max(0.0) - if t { x } else { 0.0 } + (-x.abs()).exp().ln_1p())
            .sum::<f64>()
            / truth.len().max(1) as f64;
        let mut s = vec![
            ("acc", hits as f64 / truth.len().max(1) as f64),
            ("loss", bce),
        ];
        if let Some(a) = mean_over_columns(&score, &truth, c, scores::roc_auc) {
            s.push(("roc_auc", a));
        }
        if let Some(a) = mean_over_columns(&score, &truth, c, scores::average_precision) {
            s.push(("ap", a));
        }
        s
    }

    fn metrics(&self) -> &'static [&'static str] {
        &["roc_auc", "ap", "acc"]
    }

    fn predict(&self, out: &Matrix, proba: bool) -> Prediction {
        let shape = vec![out.rows, out.cols];
        if proba {
            let p = out.data.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect();
            Prediction::Floats(p, shape)
        } else {
            let p = out.data.iter().map(|&x| (x > 0.0) as i64).collect();
            Prediction::Ints(p, shape)
        }
    }
}

/// Regression: MSE on targets standardised with the training split's mean and standard
/// deviation per column; metrics and predictions in the original units.
pub struct Regression {
    /// Standardised targets `[N, T]`.
    targets: Arc<Matrix>,
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Regression {
    /// Standardises `targets` with the statistics of the rows `train`.
    pub fn new(mut targets: Matrix, train: &[u32]) -> Regression {
        let t = targets.cols;
        let mut mean = vec![0f64; t];
        let mut sq = vec![0f64; t];
        for &i in train {
            for (c, &v) in targets.row(i as usize).iter().enumerate() {
                mean[c] += v as f64;
                sq[c] += v as f64 * v as f64;
            }
        }
        let k = train.len().max(1) as f64;
        let std: Vec<f64> = (0..t)
            .map(|c| {
                mean[c] /= k;
                let var = (sq[c] / k - mean[c] * mean[c]).max(0.0);
                // A constant column keeps unit scale.
                if var > 1e-24 {
                    var.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        for r in 0..targets.rows {
            for (c, v) in targets.row_mut(r).iter_mut().enumerate() {
                *v = ((*v as f64 - mean[c]) / std[c]) as f32;
            }
        }
        Regression {
            targets: Arc::new(targets),
            mean,
            std,
        }
    }

    fn rows_of(&self, items: &[u32]) -> Matrix {
        let c = self.targets.cols;
        let mut m = Matrix::zeros(items.len(), c);
        for (r, &i) in items.iter().enumerate() {
            m.row_mut(r).copy_from_slice(self.targets.row(i as usize));
        }
        m
    }

    fn original(&self, m: &Matrix) -> Vec<f64> {
        let c = m.cols.max(1);
        m.data
            .iter()
            .enumerate()
            .map(|(k, &v)| v as f64 * self.std[k % c] + self.mean[k % c])
            .collect()
    }
}

impl Task for Regression {
    fn name(&self) -> &'static str {
        "node_regression"
    }

    fn out_dim(&self) -> usize {
        self.targets.cols
    }

    fn loss(&self, tape: &mut Tape, out: Var, items: &[u32]) -> Var {
        let t = self.rows_of(items);
        tape.mse(out, &t, None)
    }

    fn scores(&self, out: &Matrix, items: &[u32]) -> Vec<(&'static str, f64)> {
        let t = self.rows_of(items);
        let (loss, _) = scores::squared_and_absolute_error(
            &out.data.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            &t.data.iter().map(|&v| v as f64).collect::<Vec<_>>(),
        );
        let (mse, mae) =
            scores::squared_and_absolute_error(&self.original(out), &self.original(&t));
        vec![
            ("rmse", mse.sqrt()),
            ("mse", mse),
            ("mae", mae),
            ("loss", loss),
        ]
    }

    fn metrics(&self) -> &'static [&'static str] {
        &["rmse", "mse", "mae"]
    }

    fn has_probabilities(&self) -> bool {
        false
    }

    fn predict(&self, out: &Matrix, _proba: bool) -> Prediction {
        let v = self.original(out).into_iter().map(|v| v as f32).collect();
        Prediction::Floats(v, vec![out.rows, out.cols])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_reports_original_units() {
        let y = Matrix::from_vec(4, 1, vec![10.0, 20.0, 30.0, 40.0]);
        let task = Regression::new(y, &[0, 1, 2, 3]);
        // Predicting the standardised targets exactly: zero error in any unit.
        let out = Matrix::from_vec(2, 1, task.rows_of(&[1, 3]).data);
        let s = task.scores(&out, &[1, 3]);
        assert!(s.iter().all(|(_, v)| v.abs() < 1e-6), "{s:?}");
        // One standard deviation off: the RMSE is the std in the original units.
        let off = Matrix::from_vec(1, 1, vec![task.rows_of(&[0]).data[0] + 1.0]);
        let rmse = task.scores(&off, &[0])[0].1;
        assert!((rmse - 125f64.sqrt()).abs() < 1e-3, "{rmse}");
        match task.predict(&out, false) {
            Prediction::Floats(v, _) => assert!((v[1] - 40.0).abs() < 1e-4, "{v:?}"),
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn binary_classification_selects_roc_auc() {
        let t = Classification {
            labels: Arc::new(vec![0, 1, 1, 0]),
            classes: 2,
        };
        assert_eq!(t.metrics()[0], "roc_auc");
        let out = Matrix::from_vec(4, 2, vec![1., 0., 0., 1., 0., 2., 2., 0.]);
        let s = t.scores(&out, &[0, 1, 2, 3]);
        let get = |k| s.iter().find(|(n, _)| *n == k).unwrap().1;
        assert_eq!(get("acc"), 1.0);
        assert_eq!(get("roc_auc"), 1.0);
    }
}
