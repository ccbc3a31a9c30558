//! `LinkBatches`: the loader of link prediction. Its items are pair ids into a
//! [`PairTable`]; each batch scores its pairs (and, for training, negatives drawn for the
//! batch) from one forward pass: the whole graph, or one neighbour-sampled batch whose seeds
//! are the pairs' endpoints (PyG's `LinkNeighborLoader`). `Prepared::rows` lists the rows of
//! every scored pair's sources, then of their destinations; `Prepared::targets` their labels.

use std::sync::Arc;

use scalegnn_sample::{NegativeSampler, SeedInput};
use scalegnn_tensor::Matrix;

use crate::sampled::chunk_seed;
use crate::{FullGraph, Loader, LoaderError, Prepared, Sampled, StageTimes};

/// Node pairs by id, with a label each (1: an edge, 0: a negative).
#[derive(Debug, Clone, Default)]
pub struct PairTable {
    pub src: Vec<u32>,
    pub dst: Vec<u32>,
    pub label: Vec<f32>,
}

impl PairTable {
    /// Appends `pairs` with `label`; the ids they get.
    pub fn push(&mut self, pairs: &[[u32; 2]], label: f32) -> Vec<u32> {
        let first = self.src.len() as u32;
        for p in pairs {
            self.src.push(p[0]);
            self.dst.push(p[1]);
            self.label.push(label);
        }
        (first..first + pairs.len() as u32).collect()
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.src.len()
    }

    /// True when the table holds no pair.
    pub fn is_empty(&self) -> bool {
        self.src.is_empty()
    }
}

/// A batch's scored pairs: sources, destinations, targets.
type Scored = (Vec<u32>, Vec<u32>, Vec<f32>);

/// Where a link batch's forward pass runs.
pub enum LinkSource<'a> {
    Full(&'a FullGraph<'a>),
    Sampled(&'a Sampled<'a>),
}

/// Batches of node pairs for link prediction.
pub struct LinkBatches<'a> {
    source: LinkSource<'a>,
    pairs: Arc<PairTable>,
    /// Training: negatives drawn per positive of each batch.
    negatives: Option<(&'a NegativeSampler, usize)>,
    /// Pairs per batch (ignored on the whole graph: one batch).
    batch_size: usize,
    /// Sampled training batches leave their positive pairs' edges out of their blocks.
    exclude_targets: bool,
}

impl<'a> LinkBatches<'a> {
    /// Batches of `batch_size` pairs of `pairs` on `source`; with `negatives`, each batch
    /// also scores `k` drawn negatives per pair (the training loader).
    pub fn new(
        source: LinkSource<'a>,
        pairs: Arc<PairTable>,
        negatives: Option<(&'a NegativeSampler, usize)>,
        batch_size: usize,
    ) -> Self {
        LinkBatches {
            source,
            pairs,
            negatives,
            batch_size: batch_size.max(1),
            exclude_targets: false,
        }
    }

    /// Sampled training batches leave the edges they are scored on out of their blocks.
    pub fn excluding_targets(mut self, yes: bool) -> Self {
        self.exclude_targets = yes;
        self
    }

    /// Sources, destinations and targets a batch of pair ids scores (drawn negatives last).
    fn scored(&self, chunk: &[u32], seed: u64) -> Result<Scored, LoaderError> {
        let t = &self.pairs;
        let mut src = Vec::with_capacity(chunk.len());
        let mut dst = Vec::with_capacity(chunk.len());
        let mut y = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let i = i as usize;
            if i >= t.len() {
                return Err(LoaderError::Config(format!(
                    "pair {i} is outside the {} pairs of the link table",
                    t.len()
                )));
            }
            src.push(t.src[i]);
            dst.push(t.dst[i]);
            y.push(t.label[i]);
        }
        if let Some((neg, k)) = self.negatives {
            let (ns, nd) = neg.draw(chunk.len() * k, seed);
            y.extend(std::iter::repeat_n(0.0, ns.len()));
            src.extend(ns);
            dst.extend(nd);
        }
        Ok((src, dst, y))
    }
}

impl Loader for LinkBatches<'_> {
    fn run(
        &self,
        items: &[u32],
        seed: u64,
        step: &mut dyn FnMut(&Prepared) -> Result<(), LoaderError>,
    ) -> Result<StageTimes, LoaderError> {
        match self.source {
            LinkSource::Full(full) => {
                let (src, dst, y) = self.scored(items, seed)?;
                let rows = src.iter().chain(&dst).map(|&v| v as usize).collect();
                full.run_rows(items, rows, Some(y), step)
            }
            LinkSource::Sampled(sampled) => {
                let make = |chunk: &[u32], k: usize, recycled: Option<Matrix>| {
                    let s = chunk_seed(seed, k);
                    let (src, dst, y) = self.scored(chunk, s)?;
                    let targets: Vec<[u32; 2]> = if self.exclude_targets {
                        (0..chunk.len())
                            .filter(|&i| y[i] > 0.5)
                            .map(|i| [src[i], dst[i]])
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let (mut p, at) = sampled.prepare(
                        SeedInput::Edges {
                            src: &src,
                            dst: &dst,
                        },
                        s,
                        recycled,
                        &targets,
                    )?;
                    let at = at.ok_or_else(|| {
                        LoaderError::Sample("the sampler returned no edge positions".into())
                    })?;
                    let rows: Vec<usize> =
                        at.src.iter().chain(&at.dst).map(|&v| v as usize).collect();
                    p.rows = Some(Arc::new(rows));
                    p.targets = Some(Arc::new(y));
                    p.items = Arc::new(chunk.to_vec());
                    p.times.seeds = chunk.len();
                    Ok(p)
                };
                sampled.run_chunks(items, self.batch_size, &make, step)
            }
        }
    }

    fn whole_graph(&self) -> bool {
        matches!(self.source, LinkSource::Full(_))
    }

    fn store(&self) -> Option<&dyn scalegnn_store::FeatureStore> {
        match self.source {
            LinkSource::Full(_) => None,
            LinkSource::Sampled(s) => s.store(),
        }
    }
}
