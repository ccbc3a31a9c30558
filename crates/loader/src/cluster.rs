//! `ClusterBatches`: ClusterGCN's loader. The nodes are split into partition clusters
//! (`scalegnn partition`); each epoch the clusters are shuffled (seeded) and taken
//! `clusters_per_batch` at a time; a batch is the subgraph they induce (`ClusterSampler`),
//! its features gathered from the store through the prefetch pipeline like every other
//! batch, and its loss taken on the run's items (training, or evaluation, nodes) inside it.

use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_sample::SeedInput;

use crate::sampled::chunk_seed;
use crate::{Loader, LoaderError, Prepared, Sampled, StageTimes};

/// Batches of whole partition clusters.
pub struct ClusterBatches<'a> {
    /// Prepares batches with a `ClusterSampler`.
    sampled: &'a Sampled<'a>,
    /// Nodes of each cluster.
    clusters: Vec<Vec<u32>>,
    per_batch: usize,
    num_nodes: usize,
}

impl<'a> ClusterBatches<'a> {
    /// Batches of `per_batch` of `clusters` (each a node list; together a partition of the
    /// graph's `num_nodes` nodes), prepared by `sampled`.
    pub fn new(
        sampled: &'a Sampled<'a>,
        clusters: Vec<Vec<u32>>,
        per_batch: usize,
        num_nodes: usize,
    ) -> Self {
        ClusterBatches {
            sampled,
            clusters,
            per_batch: per_batch.max(1),
            num_nodes,
        }
    }
}

impl Loader for ClusterBatches<'_> {
    fn run(
        &self,
        items: &[u32],
        seed: u64,
        step: &mut dyn FnMut(&Prepared) -> Result<(), LoaderError>,
    ) -> Result<StageTimes, LoaderError> {
        let mut wanted = vec![false; self.num_nodes];
        for &v in items {
            let slot = wanted.get_mut(v as usize).ok_or_else(|| {
                LoaderError::Config(format!(
                    "item {v} is outside the graph's {} nodes",
                    self.num_nodes
                ))
            })?;
            *slot = true;
        }
        // Clusters holding no item would give batches with nothing to score.
        let mut order: Vec<u32> = (0..self.clusters.len() as u32)
            .filter(|&c| {
                self.clusters[c as usize]
                    .iter()
                    .any(|&v| wanted[v as usize])
            })
            .collect();
        order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
        let wanted = &wanted;
        let make = |chunk: &[u32], k: usize, recycled| {
            let nodes: Vec<u32> = chunk
                .iter()
                .flat_map(|&c| self.clusters[c as usize].iter().copied())
                .collect();
            let (mut p, _) = self.sampled.prepare(
                SeedInput::Nodes(&nodes),
                chunk_seed(seed, k),
                recycled,
                &[],
            )?;
            let (mut its, mut rows) = (Vec::new(), Vec::new());
            for (r, &v) in nodes.iter().enumerate() {
                if wanted[v as usize] {
                    its.push(v);
                    rows.push(r);
                }
            }
            p.times.seeds = its.len();
            p.items = Arc::new(its);
            p.rows = Some(Arc::new(rows));
            Ok(p)
        };
        self.sampled.run_chunks(&order, self.per_batch, &make, step)
    }

    fn whole_graph(&self) -> bool {
        false
    }

    fn store(&self) -> Option<&dyn scalegnn_store::FeatureStore> {
        self.sampled.store()
    }
}
