//! The memory plan of a sampled run: a few batches are sampled to measure their size, the
//! model says what one batch's activations take, and the budget (`--mem-budget`) decides the
//! prefetch depth and the feature cache (hub tier by in-degree + CLOCK) in front of the store.

use scalegnn_graph::Csr;
use scalegnn_nn::ModelConfig;
use scalegnn_sample::Sampler;
use scalegnn_store::{hub_nodes, BudgetInputs, FeatureCache, FeatureStore, MemoryBudget};

use crate::LoaderError;

/// A store behind its cache, and the prefetch depth the budget allows.
pub struct Planned {
    pub store: Box<dyn FeatureStore>,
    pub prefetch: usize,
    /// The plan, one line (None without a budget).
    pub summary: Option<String>,
}

/// What the planner is told.
pub struct PlanInputs<'a> {
    pub graph: &'a Csr,
    pub sampler: &'a dyn Sampler,
    /// Training items (the first batches are sampled to measure their size).
    pub train: &'a [u32],
    pub batch_size: usize,
    pub prefetch: usize,
    /// The model trained: its parameters and one batch's activations count against the budget.
    pub model: &'a ModelConfig,
    /// Heap besides the model and the features that does not scale with the batch (labels,
    /// splits), bytes.
    pub fixed_bytes: usize,
}

/// Puts `store` behind a cache sized by `budget` (or `cache_rows` rows without one; neither:
/// no cache), and lowers the prefetch depth to fit. Refuses, saying what would fit, when the
/// budget cannot hold one batch.
pub fn plan(
    store: Box<dyn FeatureStore>,
    budget: Option<&MemoryBudget>,
    cache_rows: Option<usize>,
    p: &PlanInputs,
) -> Result<Planned, LoaderError> {
    let (hub_rows, dynamic_rows, prefetch, summary) = match budget {
        Some(budget) => {
            let inputs = budget_inputs(store.dim(), p)?;
            let plan = budget
                .plan(inputs)
                .map_err(|e| LoaderError::Config(format!("mem_budget: {e}")))?;
            (
                plan.hub_rows,
                plan.dynamic_rows,
                plan.prefetch_depth,
                Some(plan.summary()),
            )
        }
        None => match cache_rows {
            Some(rows) => {
                // More rows than nodes would only reserve memory no row can fill; the rows
                // kept are checked against the memory cap before the cache allocates them.
                let rows = rows.min(p.graph.num_nodes());
                scalegnn_limits::check_array("--cache-rows", &[rows, store.dim()], 4)
                    .map_err(|e| LoaderError::Config(format!("cache_rows: {e}")))?;
                let hub = rows * 9 / 10;
                (hub, rows - hub, p.prefetch, None)
            }
            None => (0, 0, p.prefetch, None),
        },
    };
    if hub_rows + dynamic_rows == 0 {
        return Ok(Planned {
            store,
            prefetch,
            summary,
        });
    }
    let hub = hub_nodes(p.graph.indptr(), hub_rows);
    let cache = FeatureCache::new(store, &hub, dynamic_rows)?;
    Ok(Planned {
        store: Box::new(cache),
        prefetch,
        summary,
    })
}

/// Batch size measured on three sampled batches (10 % headroom: a later batch may be
/// larger), activations from the model for the measured blocks.
fn budget_inputs(dim: usize, p: &PlanInputs) -> Result<BudgetInputs, LoaderError> {
    let (mut rows, mut act) = (0usize, 0u128);
    let per_layer = p.model.kind.blocks_per_layer(p.model.hops).max(1);
    for (k, seeds) in p.train.chunks(p.batch_size.max(1)).take(3).enumerate() {
        let b = p
            .sampler
            .sample(seeds, k as u64)
            .map_err(|e| LoaderError::Sample(e.to_string()))?;
        rows = rows.max(b.nodes.len());
        // Layer l outputs the dst rows of its last block.
        let layer_rows: Vec<usize> = b
            .blocks
            .chunks(per_layer)
            .map(|c| c.last().map_or(0, |bl| bl.num_dst))
            .collect();
        act = act.max(p.model.activation_bytes(&layer_rows, b.num_edges()));
    }
    let act = usize::try_from(act).unwrap_or(usize::MAX);
    let params = usize::try_from(p.model.param_bytes()).unwrap_or(usize::MAX);
    Ok(BudgetInputs {
        dim,
        bytes_per_row_decoded: 4 * dim,
        expected_batch_rows: rows + rows / 10,
        model_bytes_per_batch: act.saturating_add(act / 10),
        prefetch_depth: p.prefetch,
        fixed_bytes: params.saturating_add(p.fixed_bytes),
        num_nodes: p.graph.num_nodes(),
    })
}
