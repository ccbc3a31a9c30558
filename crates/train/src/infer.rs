//! A trained run reloaded for inference: its scores on the splits, predictions, embeddings and
//! pair scores over the whole graph, as `scalegnn eval | predict | embed` and the Python
//! package give them.

use std::path::Path;
use std::sync::Arc;

use rand::SeedableRng;
use scalegnn_data::Dataset;
use scalegnn_loader::{FullGraph, LinkBatches, LinkSource, Loader, PairTable};
use scalegnn_nn::{Features, Model};
use scalegnn_tensor::{Matrix, Tape};

use crate::link::LinkData;
use crate::run::{full_features, load_run, run_task};
use crate::{Checkpoint, Evaluator, Prediction, RunConfig, Splits, Task, TrainError};

/// Scores of one split: `(metric, value)` pairs.
pub type SplitScores = Vec<(&'static str, f64)>;

/// A run directory's best checkpoint with the dataset, task and features it needs.
pub struct LoadedRun {
    /// The run's resolved configuration.
    pub cfg: RunConfig,
    pub ds: Dataset,
    pub task: Box<dyn Task>,
    pub splits: Splits,
    /// A link run's pairs and message graph.
    pub link: Option<LinkData>,
    pub model: Model,
    /// What the checkpoint records besides the weights (epoch, selection metric).
    pub meta: Checkpoint,
    /// The whole-graph features, read on first use (so usage errors come before the read);
    /// behind a lock so two threads' first calls read them once.
    x: std::sync::Mutex<Option<Features>>,
}

impl LoadedRun {
    /// Opens `run_dir` (one run: a `run-N` of a multi-run directory) on the dataset it trained
    /// on, or on `dataset`; the features are read on first use.
    pub fn open(run_dir: &Path, dataset: Option<&Path>) -> Result<LoadedRun, TrainError> {
        let (cfg, ds) = load_run(run_dir, dataset)?;
        let (task, splits, link) = run_task(&ds, &cfg)?;
        let (model, meta) = Checkpoint::load(
            &run_dir.join("checkpoint"),
            Some((ds.manifest.num_features as usize, task.out_dim())),
        )?;
        Ok(LoadedRun {
            cfg,
            ds,
            task,
            splits,
            link,
            model,
            meta,
            x: std::sync::Mutex::new(None),
        })
    }

    /// Whether the run predicts one row per graph of a collection.
    pub fn graph_level(&self) -> bool {
        self.cfg.graph_level()
    }

    /// Rows `predict` and `embed` give: graphs for a graph-level run, else nodes.
    pub fn items(&self) -> usize {
        if self.graph_level() {
            self.ds
                .graph_ptr
                .as_ref()
                .map_or(0, |g| g.len().saturating_sub(1))
        } else {
            self.ds.graph.num_nodes()
        }
    }

    /// The whole-graph loader the model reads: a link run's message graph (without its
    /// validation and test edges), graph segments and edge features where the run used them.
    fn loader(&self) -> Result<FullGraph<'_>, TrainError> {
        let graph = self.link.as_ref().map_or(&self.ds.graph, |l| &l.graph);
        let x = {
            let mut slot = self.x.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some(x) => x.clone(),
                None => {
                    let x = full_features(&self.ds, &self.cfg)?;
                    *slot = Some(x.clone());
                    x
                }
            }
        };
        let mut loader = FullGraph::new(graph, x);
        if self.graph_level() {
            loader = loader.with_segments(crate::graph::segments(&self.ds)?);
        }
        let cfg = &self.model.config;
        if cfg.edge_dim > 0 && cfg.kind.uses(scalegnn_nn::registry::Knob::EdgeFeatures) {
            let attr = crate::graph::edge_attr(&self.ds)?.ok_or_else(|| {
                TrainError::Config(
                    "the model reads edge features but the dataset has no edge_attr.npy".into(),
                )
            })?;
            loader = loader.with_edge_features(crate::graph::whole_edge_features(graph, &attr)?);
        }
        Ok(loader)
    }

    /// The task's metrics on the train, validation and test splits.
    pub fn scores(&self) -> Result<[SplitScores; 3], TrainError> {
        let loader = self.loader()?;
        let link_loader = self.link.as_ref().map(|l| {
            LinkBatches::new(LinkSource::Full(&loader), l.pairs.clone(), None, usize::MAX)
        });
        let eval_loader: &dyn Loader = match &link_loader {
            Some(l) => l,
            None => &loader,
        };
        let ev = Evaluator::new(eval_loader, self.task.as_ref(), "acc");
        let s = &self.splits;
        let mut scores = ev
            .scores(&self.model, &[&s.train[..], &s.val[..], &s.test[..]])?
            .into_iter();
        let mut next = || scores.next().unwrap_or_default();
        Ok([next(), next(), next()])
    }

    /// Every item's prediction (class ids, values, or with `proba` class probabilities).
    pub fn predict(&self, proba: bool) -> Result<Prediction, TrainError> {
        if self.link.is_some() {
            return Err(TrainError::Config(
                "a link prediction run scores node pairs (pair scores), not nodes".into(),
            ));
        }
        if proba && !self.task.has_probabilities() {
            return Err(TrainError::Config(format!(
                "{} predicts values, not class probabilities",
                self.task.name()
            )));
        }
        let loader = self.loader()?;
        let all: Vec<u32> = (0..self.items() as u32).collect();
        let ev = Evaluator::new(&loader, self.task.as_ref(), "acc");
        let outs = ev.outputs(&self.model, &[&all])?;
        let out = outs
            .into_iter()
            .next()
            .unwrap_or_else(|| Matrix::zeros(0, 0));
        Ok(self.task.predict(&out, proba))
    }

    /// Every item's embedding `[items, d]`: a node's input to the last layer, a graph's
    /// pooled row.
    pub fn embed(&self) -> Result<Matrix, TrainError> {
        let loader = self.loader()?;
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(0);
        let mut tape = Tape::new(false);
        let h = self
            .model
            .embed(&mut tape, loader.features(), loader.graph(), &mut rng);
        Ok(tape.into_value(h))
    }

    /// A link run's probability that each of `pairs` (node rows) is an edge.
    pub fn pair_scores(&self, pairs: &[[u32; 2]]) -> Result<Vec<f32>, TrainError> {
        if self.link.is_none() {
            return Err(TrainError::Config(
                "pair scores need a link prediction run (train --task link)".into(),
            ));
        }
        let n = self.ds.graph.num_nodes();
        if let Some(p) = pairs.iter().find(|p| p.iter().any(|&v| v as usize >= n)) {
            return Err(TrainError::Config(format!(
                "pair ({}, {}) names a node outside the graph's {n} nodes",
                p[0], p[1]
            )));
        }
        let loader = self.loader()?;
        let mut table = PairTable::default();
        let ids = table.push(pairs, 0.0);
        let pl = LinkBatches::new(LinkSource::Full(&loader), Arc::new(table), None, usize::MAX);
        let ev = Evaluator::new(&pl, self.task.as_ref(), "roc_auc");
        let outs = ev.outputs(&self.model, &[&ids])?;
        let out = outs
            .into_iter()
            .next()
            .unwrap_or_else(|| Matrix::zeros(0, 0));
        match self.task.predict(&out, true) {
            Prediction::Floats(p, _) => Ok(p),
            Prediction::Ints(..) => Err(TrainError::Config(format!(
                "{} gives no pair scores",
                self.task.name()
            ))),
        }
    }
}
