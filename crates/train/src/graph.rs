//! Graph-level tasks: classification and regression of whole graphs of a collection
//! (`graph_ptr.npy`, `graph_y.npy`), their checks, and stratified K-fold cross-validation
//! with the two protocols of the literature (Errica et al.'s fair one, Xu et al.'s GIN one).

use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use scalegnn_data::{Dataset, Labels};
use scalegnn_loader::Prepared;
use scalegnn_nn::Model;
use scalegnn_tensor::{Matrix, Tape, Var};

use crate::task::{Classification, Prediction, Regression, Splits, Task};
use crate::TrainError;

/// Share of the training folds held out to select the epoch under the fair protocol (as
/// Errica et al. 2020: a stratified 10 % hold-out).
const INNER_VAL: f64 = 0.1;

/// The graph pointer of a graph-level dataset, checked: starts at 0, never decreases, ends
/// at the node count, and no graph is empty.
pub fn graph_ptr(ds: &Dataset) -> Result<&[i64], TrainError> {
    let err = |reason: String| TrainError::Dataset {
        path: ds.dir.join("graph_ptr.npy"),
        reason,
    };
    let gp = ds.graph_ptr.as_ref().ok_or_else(|| TrainError::Dataset {
        path: ds.dir.clone(),
        reason: "has no graph_ptr.npy: it is one graph, not a graph collection; node tasks \
                 (node classification or regression) and link prediction apply"
            .into(),
    })?;
    let gp: &[i64] = gp;
    let n = ds.graph.num_nodes() as i64;
    if gp.len() < 2 || gp[0] != 0 {
        return Err(err(format!(
            "must start at 0 and hold at least one graph (has {} entries)",
            gp.len()
        )));
    }
    if let Some(g) = gp.windows(2).position(|w| w[1] < w[0]) {
        return Err(err(format!(
            "decreases at graph {g} ({} then {}): node ranges must be sorted",
            gp[g],
            gp[g + 1]
        )));
    }
    if let Some(g) = gp.windows(2).position(|w| w[1] == w[0]) {
        return Err(err(format!("graph {g} has no nodes")));
    }
    if gp[gp.len() - 1] != n {
        return Err(err(format!(
            "ends at {} but the graph has {n} nodes",
            gp[gp.len() - 1]
        )));
    }
    Ok(gp)
}

/// The whole collection's segments (graph g owns nodes `graph_ptr[g]..graph_ptr[g+1]`), for
/// whole-graph evaluation and prediction of a graph-level model.
pub fn segments(ds: &Dataset) -> Result<Arc<scalegnn_nn::Segments>, TrainError> {
    let gp = graph_ptr(ds)?;
    Ok(Arc::new(scalegnn_nn::Segments::new(
        gp.iter().map(|&v| v as usize).collect(),
    )))
}

/// The dataset's edge features (`edge_attr.npy`, `[edges, width]`, one row per CSR entry),
/// checked against the graph; `None` when it has none.
pub fn edge_attr(ds: &Dataset) -> Result<Option<scalegnn_npy::Array<f32>>, TrainError> {
    let path = ds.dir.join("edge_attr.npy");
    if !path.is_file() {
        return Ok(None);
    }
    let a = scalegnn_npy::open_mmap::<f32>(&path)?;
    let e = ds.graph.num_edges();
    match a.shape() {
        [rows, w] if *rows == e && *w > 0 => {}
        other => {
            return Err(TrainError::Dataset {
                path,
                reason: format!("has shape {other:?}; expected [{e}, width]: a row per edge"),
            })
        }
    }
    if let Some(i) = a.iter().position(|v| !v.is_finite()) {
        return Err(TrainError::Dataset {
            path,
            reason: format!("edge {} has a value that is not a number", i / a.shape()[1]),
        });
    }
    Ok(Some(a))
}

/// The whole graph's edges with their features (full-batch runs, eval and predict).
pub fn whole_edge_features(
    graph: &scalegnn_graph::Csr,
    attr: &scalegnn_npy::Array<f32>,
) -> Result<Arc<scalegnn_nn::EdgeFeatures>, TrainError> {
    let w = attr.shape().get(1).copied().unwrap_or(0);
    let e = scalegnn_loader::edge_features_of(graph, attr, w, &[(0, graph.num_nodes())])?;
    Ok(Arc::new(e))
}

/// The graph-level task `ds`'s labels define: classification (int `graph_y.npy`) or
/// regression (float, standardised with the training graphs' statistics).
pub fn graph_task(ds: &Dataset, splits: &Splits) -> Result<Box<dyn Task>, TrainError> {
    let gp = graph_ptr(ds)?;
    let graphs = gp.len() - 1;
    let err = |reason: String| TrainError::Dataset {
        path: ds.dir.join("graph_y.npy"),
        reason,
    };
    match &ds.graph_y {
        None => Err(TrainError::Dataset {
            path: ds.dir.clone(),
            reason: "has no graph labels (graph_y.npy); graph tasks need them".into(),
        }),
        Some(Labels::Classes(y)) => {
            if y.shape() != [graphs] {
                return Err(err(format!(
                    "has shape {:?} for {graphs} graphs; expected [{graphs}]",
                    y.shape()
                )));
            }
            let classes = ds.manifest.num_classes.max(1) as usize;
            if let Some(g) = y.iter().position(|&c| c < 0 || c >= classes as i64) {
                return Err(err(format!(
                    "graph {g} has label {} (expected 0..{classes}; every graph needs one)",
                    y[g]
                )));
            }
            Ok(Box::new(GraphLevel {
                name: "graph_classification",
                inner: Box::new(Classification {
                    labels: Arc::new(y.iter().map(|&c| c as u32).collect()),
                    classes,
                }),
            }))
        }
        Some(Labels::Targets(y)) => {
            let t = y.shape().get(1).copied().unwrap_or(1);
            if y.shape()[0] != graphs {
                return Err(err(format!(
                    "has {} rows for {graphs} graphs",
                    y.shape()[0]
                )));
            }
            if let Some(i) = y.iter().position(|v| !v.is_finite()) {
                return Err(err(format!(
                    "graph {} has a target that is not a number",
                    i / t.max(1)
                )));
            }
            let m = Matrix::from_vec(graphs, t, y.to_vec());
            Ok(Box::new(GraphLevel {
                name: "graph_regression",
                inner: Box::new(Regression::new(m, &splits.train)),
            }))
        }
    }
}

/// Fold `fold` of a stratified `k`-fold cross-validation of the graphs labelled `labels`
/// (seeded): its graphs are the test split; the other folds train. With `gin`, validation
/// is the test fold (Xu et al.'s protocol selects the epoch there); otherwise a stratified
/// 10 % of the training folds (Errica et al.), and the test fold is never looked at.
pub fn cv_splits(
    labels: &[i64],
    k: usize,
    fold: usize,
    gin: bool,
    seed: u64,
) -> Result<Splits, String> {
    let classes = labels.iter().copied().max().map_or(0, |m| m + 1).max(0) as usize;
    let mut by_class: Vec<Vec<u32>> = vec![Vec::new(); classes.max(1)];
    for (g, &c) in labels.iter().enumerate() {
        by_class[c.max(0) as usize].push(g as u32);
    }
    if let Some((c, members)) = by_class
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.is_empty())
        .find(|(_, m)| m.len() < k)
    {
        return Err(format!(
            "{k} folds but class {c} has only {} graphs: every fold must hold each class; \
             choose cv ≤ {}",
            members.len(),
            members.len()
        ));
    }
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x00C5_F01D);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    let mut rest_by_class = Vec::new();
    for members in &mut by_class {
        members.shuffle(&mut rng);
        // Graph i of a class goes to fold i mod k: class shares equal to within one graph.
        let mut rest = Vec::new();
        for (i, &g) in members.iter().enumerate() {
            if i % k == fold {
                test.push(g);
            } else {
                rest.push(g);
            }
        }
        rest_by_class.push(rest);
    }
    let mut val = Vec::new();
    if gin {
        val = test.clone();
        train = rest_by_class.concat();
    } else {
        for rest in &rest_by_class {
            let v = ((rest.len() as f64 * INNER_VAL).round() as usize).min(rest.len());
            val.extend_from_slice(&rest[..v]);
            train.extend_from_slice(&rest[v..]);
        }
    }
    for s in [&mut train, &mut val, &mut test] {
        s.sort_unstable();
    }
    Ok(Splits {
        train,
        val,
        test,
        count: k,
    })
}

/// Xu et al.'s figure from the validation curves of the folds (`curves[fold]` = that fold's
/// log; validation is the test fold under this protocol): the epoch whose `metric` averaged
/// over folds is best, and the folds' mean and standard deviation at that epoch. Only
/// epochs every fold reached count. `None` without such an epoch.
pub fn gin_protocol(curves: &[Vec<crate::MetricLine>], metric: &str) -> Option<(usize, f64, f64)> {
    let per_fold: Vec<std::collections::BTreeMap<usize, f64>> = curves
        .iter()
        .map(|lines| {
            lines
                .iter()
                .filter(|l| l.split == "val" && l.metric == metric && l.value.is_finite())
                .map(|l| (l.epoch, l.value))
                .collect()
        })
        .collect();
    let first = per_fold.first()?;
    let higher = crate::scores::higher_is_better(metric);
    let mut best: Option<(usize, f64, f64)> = None;
    for &epoch in first.keys() {
        let vals: Option<Vec<f64>> = per_fold.iter().map(|f| f.get(&epoch).copied()).collect();
        let Some(vals) = vals else { continue };
        let n = vals.len() as f64;
        let mean = vals.iter().sum::<f64>() / n;
        let std = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let better = match best {
            None => true,
            Some((_, m, _)) => {
                if higher {
                    mean > m
                } else {
                    mean < m
                }
            }
        };
        if better {
            best = Some((epoch, mean, std));
        }
    }
    best
}

/// A node-level task's loss and metrics over graph rows, under the graph task's name.
struct GraphLevel {
    name: &'static str,
    inner: Box<dyn Task>,
}

impl Task for GraphLevel {
    fn name(&self) -> &'static str {
        self.name
    }
    fn out_dim(&self) -> usize {
        self.inner.out_dim()
    }
    fn score_dim(&self) -> usize {
        self.inner.score_dim()
    }
    fn output(&self, tape: &mut Tape, model: &Model, z: Var, p: &Prepared) -> Var {
        self.inner.output(tape, model, z, p)
    }
    fn loss(&self, tape: &mut Tape, out: Var, items: &[u32]) -> Var {
        self.inner.loss(tape, out, items)
    }
    fn scores(&self, out: &Matrix, items: &[u32]) -> Vec<(&'static str, f64)> {
        self.inner.scores(out, items)
    }
    fn epoch_scores(&self, out: &Matrix, items: &[u32], metric: &str) -> Vec<(&'static str, f64)> {
        self.inner.epoch_scores(out, items, metric)
    }
    fn metrics(&self) -> &'static [&'static str] {
        // Graph benchmarks (TU, OGB's molhiv aside) report accuracy, binary or not.
        if self.name == "graph_classification" {
            &["acc", "macro_f1", "roc_auc", "ap"]
        } else {
            self.inner.metrics()
        }
    }
    fn predict(&self, out: &Matrix, proba: bool) -> Prediction {
        self.inner.predict(out, proba)
    }
    fn has_probabilities(&self) -> bool {
        self.inner.has_probabilities()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_stratified_disjoint_and_cover_every_graph() {
        // 30 graphs of class 0, 12 of class 1.
        let labels: Vec<i64> = (0..42).map(|i| (i >= 30) as i64).collect();
        let mut tested = vec![0; 42];
        for fold in 0..3 {
            let s = cv_splits(&labels, 3, fold, false, 7).unwrap();
            for &g in &s.test {
                tested[g as usize] += 1;
            }
            let ones = s.test.iter().filter(|&&g| labels[g as usize] == 1).count();
            assert_eq!((s.test.len(), ones), (14, 4), "fold {fold}");
            let mut all: Vec<u32> = [&s.train[..], &s.val, &s.test].concat();
            all.sort_unstable();
            assert_eq!(all, (0..42).collect::<Vec<u32>>(), "fold {fold}");
            assert!(!s.val.is_empty() && s.val.iter().all(|g| !s.test.contains(g)));
            let gin = cv_splits(&labels, 3, fold, true, 7).unwrap();
            assert_eq!(gin.val, gin.test);
            assert_eq!(gin.test, s.test);
        }
        assert!(tested.iter().all(|&t| t == 1), "{tested:?}");
        assert_ne!(
            cv_splits(&labels, 3, 0, false, 7).unwrap().test,
            cv_splits(&labels, 3, 0, false, 8).unwrap().test
        );
    }

    #[test]
    fn the_gin_figure_is_the_best_epoch_of_the_mean_curve() {
        let line = |epoch, value| crate::MetricLine {
            epoch,
            split: "val".into(),
            metric: "acc".into(),
            value,
        };
        // Fold 0 peaks at epoch 1, fold 1 at epoch 3; the mean peaks at epoch 2.
        let curves = vec![
            vec![line(1, 0.9), line(2, 0.8), line(3, 0.5)],
            vec![line(1, 0.5), line(2, 0.8), line(3, 0.9)],
        ];
        let (e, m, s) = gin_protocol(&curves, "acc").unwrap();
        assert_eq!(e, 2);
        assert!((m - 0.8).abs() < 1e-12 && s.abs() < 1e-12);
        assert!(gin_protocol(&curves, "loss").is_none());
    }

    #[test]
    fn more_folds_than_a_class_has_graphs_is_an_error() {
        let labels = [0, 0, 0, 1, 1, 0];
        let e = cv_splits(&labels, 3, 0, false, 0).unwrap_err();
        assert!(e.contains("class 1 has only 2"), "{e}");
    }
}
