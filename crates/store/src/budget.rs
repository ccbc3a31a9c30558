//! `MemoryBudget`: the `--mem-budget` flag, parsed, and split into prefetch buffers, model
//! memory and the feature cache (DESIGN.md, "Memory model").
//!
//! A plan, for a budget `B`:
//!
//! - **batch buffers** = (depth + 2) × batch rows × row bytes: `depth` batches queued by the
//!   prefetch pipeline, one being built (gathered into) and one being trained on;
//! - **model** = the trainer's estimate of one batch's activations and gradients, plus the
//!   fixed heap (parameters, optimizer state, graph structures on the heap);
//! - the prefetch depth is lowered (to 1 at least) until those fit; if even depth 1 does not,
//!   the plan is refused with the smallest budget that would do;
//! - **cache**: what remains. It pays for the cache's id map (4 B × num_nodes) and its miss
//!   buffer (one batch of rows: the worst case, a cold cache, misses the whole batch), and
//!   the rest is split between the hub tier (`hub_share`, [`DEFAULT_HUB_SHARE`] = 90%) and the
//!   dynamic tier (each of its rows costs 5 bytes of bookkeeping more). When the remainder
//!   holds every row, all rows go to the hub tier and no miss buffer is needed. When it cannot
//!   pay for the map and miss buffer, the cache is off (`hub_rows = dynamic_rows = 0`).
//!
//! Why 90% hub: on the products-like graph (2.45M nodes, fan-outs [15, 10, 5], batches of
//! 1024 seeds ≈ 428k sampled nodes; `benches/cache.rs`) the hit rate of a cache of 10% of the
//! rows was 14.5% for LRU, 26.2% for hub 50% + CLOCK 50%, 31.7% for hub 90% + CLOCK 10% and
//! 32.9% for hubs alone (5%: 6.9 / 15.5 / 20.0 / 21.0%; 20%: 32.8 / 41.8 / 47.3 / 48.5%).
//! Seeds are drawn uniformly, so the access distribution is stationary and degree predicts it
//! well; every batch misses more rows than a small dynamic tier holds, flushing it. The 10%
//! dynamic share costs about a point of hit rate here and keeps the cache useful when degree
//! is a poor predictor (directed graphs, capped degrees, skewed seed sets).

use std::fmt;
use std::str::FromStr;

use crate::cache::{DYNAMIC_ROW_OVERHEAD, MAP_BYTES_PER_NODE};

const MIB: f64 = (1u64 << 20) as f64;

/// Share of the cache's row bytes the hub tier gets unless told otherwise (see module docs).
pub const DEFAULT_HUB_SHARE: f64 = 0.9;

/// Why a budget string or plan was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// The budget string is not a size.
    #[error("invalid memory budget {text:?}: {reason} (expected a byte count or a size such as 2GiB, 512MiB, 1.5GB or 800M)")]
    BadSize { text: String, reason: String },
    /// The budget cannot hold one batch even at prefetch depth 1.
    #[error(
        "--mem-budget {budget} cannot hold one batch: a batch of ~{} sampled nodes × {dim} features \
         needs {} of feature buffers ({buffers} buffers of {} at prefetch depth 1: queued, being built, \
         being trained) plus ~{} of activations{}; use at least {} or lower --batch-size/--fanouts",
        thousands(*batch_rows),
        mib(*buffer_bytes),
        mib(*batch_bytes),
        mib(*model_bytes),
        fixed_note(*fixed_bytes),
        min_flag(*min_bytes)
    )]
    TooSmall {
        /// The budget as given.
        budget: String,
        batch_rows: usize,
        dim: usize,
        /// Bytes of one batch's decoded features.
        batch_bytes: usize,
        /// Number of batch buffers at depth 1.
        buffers: usize,
        /// All batch buffers at depth 1.
        buffer_bytes: usize,
        model_bytes: usize,
        fixed_bytes: usize,
        /// The smallest budget that plans (at depth 1, without a cache).
        min_bytes: u64,
    },
}

/// What the trainer knows about its memory needs before training.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetInputs {
    /// Features per node.
    pub dim: usize,
    /// Bytes of one decoded feature row (`4 * dim`; 0 means that).
    pub bytes_per_row_decoded: usize,
    /// Sampled nodes per batch (e.g. the mean over a few sampled batches, rounded up).
    pub expected_batch_rows: usize,
    /// Activation + gradient memory of training on one batch.
    pub model_bytes_per_batch: usize,
    /// Prefetch depth asked for (batches queued ahead); lowered to fit, never below 1.
    pub prefetch_depth: usize,
    /// Heap that does not scale with the batch: parameters, optimizer state, graph structures.
    pub fixed_bytes: usize,
    /// Nodes in the graph: sizes the cache's id map and caps the cache at every row
    /// (0 = unknown: no map cost, no cap).
    pub num_nodes: usize,
}

/// How a budget is spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetPlan {
    /// The whole budget.
    pub budget_bytes: u64,
    /// Prefetch depth that fits (≤ the one asked for, ≥ 1).
    pub prefetch_depth: usize,
    /// Batch buffers: `prefetch_depth + 2`.
    pub batch_buffers: usize,
    /// Bytes of one batch buffer (batch rows × row bytes).
    pub batch_bytes: usize,
    /// Bytes of all batch buffers.
    pub batch_buffer_bytes: usize,
    /// Activations and gradients of one batch.
    pub model_bytes: usize,
    /// Parameters, optimizer state, graph structures.
    pub fixed_bytes: usize,
    /// The cache's miss buffer (one batch; 0 without a cache or when every row is pinned).
    pub miss_buffer_bytes: usize,
    /// Heap of the cache at full occupancy (`FeatureCache::capacity_bytes` of these sizes).
    pub cache_bytes: usize,
    /// Rows of the hub tier.
    pub hub_rows: usize,
    /// Rows of the dynamic tier.
    pub dynamic_rows: usize,
    /// Budget left over (rounding, or a cache capped at every row).
    pub unused_bytes: u64,
}

impl BudgetPlan {
    /// Whether the plan has room for a cache.
    pub fn cache_enabled(&self) -> bool {
        self.hub_rows + self.dynamic_rows > 0
    }

    /// One line for logs.
    pub fn summary(&self) -> String {
        format!(
            "budget {}: {} batch buffers of {} (prefetch depth {}), activations {}, fixed {}, \
             cache {} ({} hub rows + {} dynamic rows, miss buffer {}), unused {}",
            mib(self.budget_bytes as usize),
            self.batch_buffers,
            mib(self.batch_bytes),
            self.prefetch_depth,
            mib(self.model_bytes),
            mib(self.fixed_bytes),
            mib(self.cache_bytes),
            thousands(self.hub_rows),
            thousands(self.dynamic_rows),
            mib(self.miss_buffer_bytes),
            mib(self.unused_bytes as usize),
        )
    }
}

/// A heap budget in bytes, with the share of the cache given to the hub tier.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryBudget {
    bytes: u64,
    text: String,
    hub_share: f64,
}

impl MemoryBudget {
    /// Parses `2GiB`, `512MiB`, `1.5GB`, `800M`, `1073741824`, … Units are case-insensitive
    /// and may follow a space: `KiB`/`MiB`/`GiB`/`TiB` (and bare `K`/`M`/`G`/`T`, `Ki`/`Mi`/…)
    /// are powers of 1024; `KB`/`MB`/`GB`/`TB` are powers of 1000; `B` or none is bytes.
    pub fn parse(text: &str) -> Result<MemoryBudget, BudgetError> {
        let bad = |reason: &str| BudgetError::BadSize {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let t = text.trim();
        if t.is_empty() {
            return Err(bad("it is empty"));
        }
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = (&t[..split], t[split..].trim());
        if num.is_empty() || !num.bytes().any(|b| b.is_ascii_digit()) {
            return Err(bad("it does not start with a number"));
        }
        let mult: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "ki" | "kib" => 1 << 10,
            "m" | "mi" | "mib" => 1 << 20,
            "g" | "gi" | "gib" => 1 << 30,
            "t" | "ti" | "tib" => 1 << 40,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            _ => return Err(bad(&format!("unknown unit {unit:?}"))),
        };
        let bytes = if num.contains('.') {
            let v: f64 = num.parse().map_err(|_| bad("the number is malformed"))?;
            if mult == 1 {
                return Err(bad("a byte count must be a whole number"));
            }
            let b = (v * mult as f64).floor();
            if !b.is_finite() || b >= u64::MAX as f64 {
                return Err(bad("it is too large"));
            }
            b as u64
        } else {
            let v: u64 = num.parse().map_err(|_| bad("it is too large"))?;
            v.checked_mul(mult).ok_or_else(|| bad("it is too large"))?
        };
        if bytes == 0 {
            return Err(bad("it must be more than 0 bytes"));
        }
        Ok(MemoryBudget {
            bytes,
            text: t.to_string(),
            hub_share: DEFAULT_HUB_SHARE,
        })
    }

    /// A budget of `bytes`.
    pub fn from_bytes(bytes: u64) -> MemoryBudget {
        MemoryBudget {
            bytes,
            text: format_size(bytes),
            hub_share: DEFAULT_HUB_SHARE,
        }
    }

    /// The budget in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The share of the cache's row bytes given to the hub tier (clamped to 0..=1;
    /// [`DEFAULT_HUB_SHARE`] by default, also when `share` is NaN).
    pub fn with_hub_share(mut self, share: f64) -> MemoryBudget {
        self.hub_share = if share.is_nan() {
            DEFAULT_HUB_SHARE
        } else {
            share.clamp(0.0, 1.0)
        };
        self
    }

    /// The hub tier's share of the cache.
    pub fn hub_share(&self) -> f64 {
        self.hub_share
    }

    /// Splits the budget (see the module docs); refuses it, saying what would fit, when one
    /// batch cannot be trained even at prefetch depth 1.
    pub fn plan(&self, p: BudgetInputs) -> Result<BudgetPlan, BudgetError> {
        let row = if p.bytes_per_row_decoded == 0 {
            4 * p.dim
        } else {
            p.bytes_per_row_decoded
        };
        let batch = p.expected_batch_rows.saturating_mul(row);
        let base = (p.fixed_bytes as u64).saturating_add(p.model_bytes_per_batch as u64);
        let need = |depth: usize| -> u64 {
            base.saturating_add((depth as u64 + 2).saturating_mul(batch as u64))
        };
        let Some(depth) = (1..=p.prefetch_depth.max(1))
            .rev()
            .find(|&d| need(d) <= self.bytes)
        else {
            let min = need(1);
            return Err(BudgetError::TooSmall {
                budget: self.text.clone(),
                batch_rows: p.expected_batch_rows,
                dim: p.dim,
                batch_bytes: batch,
                buffers: 3,
                buffer_bytes: batch.saturating_mul(3),
                model_bytes: p.model_bytes_per_batch,
                fixed_bytes: p.fixed_bytes,
                min_bytes: min,
            });
        };
        let left = self.bytes - need(depth);
        let map = (p.num_nodes * MAP_BYTES_PER_NODE) as u64;
        let (mut hub_rows, mut dynamic_rows, mut miss) = (0usize, 0usize, 0usize);
        if row > 0 {
            let all_rows = (p.num_nodes as u64).saturating_mul(row as u64);
            if p.num_nodes > 0 && left >= map + all_rows {
                hub_rows = p.num_nodes;
            } else if left > map + batch as u64 {
                miss = batch;
                let avail = left - map - batch as u64;
                let hub_bytes = (avail as f64 * self.hub_share) as u64;
                hub_rows = usize::try_from(hub_bytes / row as u64).unwrap_or(usize::MAX);
                let rest = avail - hub_rows as u64 * row as u64;
                dynamic_rows = usize::try_from(rest / (row + DYNAMIC_ROW_OVERHEAD) as u64)
                    .unwrap_or(usize::MAX);
                if p.num_nodes > 0 {
                    hub_rows = hub_rows.min(p.num_nodes);
                    dynamic_rows = dynamic_rows.min(p.num_nodes - hub_rows);
                }
            }
        }
        let cache_bytes = if hub_rows + dynamic_rows == 0 {
            0
        } else {
            hub_rows * row + dynamic_rows * (row + DYNAMIC_ROW_OVERHEAD) + map as usize
        };
        let used = need(depth) + (cache_bytes + miss) as u64;
        Ok(BudgetPlan {
            budget_bytes: self.bytes,
            prefetch_depth: depth,
            batch_buffers: depth + 2,
            batch_bytes: batch,
            batch_buffer_bytes: batch * (depth + 2),
            model_bytes: p.model_bytes_per_batch,
            fixed_bytes: p.fixed_bytes,
            miss_buffer_bytes: miss,
            cache_bytes,
            hub_rows,
            dynamic_rows,
            unused_bytes: self.bytes.saturating_sub(used),
        })
    }
}

impl FromStr for MemoryBudget {
    type Err = BudgetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MemoryBudget::parse(s)
    }
}

impl fmt::Display for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `bytes` in the largest binary unit that divides it, else in bytes.
fn format_size(bytes: u64) -> String {
    for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes != 0 && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// `bytes` as MiB for messages: "163 MiB" (one decimal below 10 MiB).
fn mib(bytes: usize) -> String {
    let m = bytes as f64 / MIB;
    if m < 10.0 {
        format!("{m:.1} MiB")
    } else {
        format!("{m:.0} MiB")
    }
}

/// The smallest whole number of MiB holding `bytes`, as a flag value: "520MiB".
fn min_flag(bytes: u64) -> String {
    format!("{}MiB", bytes.div_ceil(1 << 20))
}

fn fixed_note(fixed: usize) -> String {
    if fixed == 0 {
        String::new()
    } else {
        format!(
            " and {} of parameters, optimizer state and graph",
            mib(fixed)
        )
    }
}

/// 427000 → "427,000".
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: u64 = 1 << 20;
    const GI: u64 = 1 << 30;

    fn bytes(s: &str) -> u64 {
        MemoryBudget::parse(s).unwrap().bytes()
    }

    #[test]
    fn parses_binary_decimal_and_bare_sizes() {
        assert_eq!(bytes("2GiB"), 2 * GI);
        assert_eq!(bytes("512MiB"), 512 * MI);
        assert_eq!(bytes("1.5GB"), 1_500_000_000);
        assert_eq!(bytes("800M"), 800 * MI);
        assert_eq!(bytes("1073741824"), GI);
        assert_eq!(bytes(" 2 gib "), 2 * GI);
        assert_eq!(bytes("1.5GiB"), GI + GI / 2);
        assert_eq!(bytes("64k"), 64 * 1024);
        assert_eq!(bytes("3MB"), 3_000_000);
        assert_eq!(bytes("1Ti"), 1 << 40);
        assert_eq!(bytes("100B"), 100);
        assert_eq!(bytes(".5G"), GI / 2);
        let b: MemoryBudget = "300MiB".parse().unwrap();
        assert_eq!(b.to_string(), "300MiB");
        assert_eq!(MemoryBudget::from_bytes(3 * GI).to_string(), "3GiB");
        assert_eq!(MemoryBudget::from_bytes(1000).to_string(), "1000");
    }

    #[test]
    fn bad_sizes_are_named_in_the_error() {
        for (s, why) in [
            ("", "empty"),
            ("GiB", "number"),
            ("2XB", "unknown unit \"XB\""),
            ("1e9", "unknown unit \"e9\""),
            ("-1G", "number"),
            ("1.2.3G", "malformed"),
            ("0", "more than 0"),
            ("1.5", "whole"),
            ("99999999999999999999", "too large"),
            ("20000000T", "too large"),
        ] {
            let e = MemoryBudget::parse(s).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(&format!("{s:?}")), "{msg}");
            assert!(msg.contains(why), "{s:?}: {msg}");
            assert!(msg.contains("2GiB"), "{msg}");
        }
    }

    /// Products-like inputs: 2.45M nodes × 100 features, ~427k sampled nodes per batch.
    fn products() -> BudgetInputs {
        BudgetInputs {
            dim: 100,
            bytes_per_row_decoded: 400,
            expected_batch_rows: 427_000,
            model_bytes_per_batch: 300 * MI as usize,
            prefetch_depth: 2,
            fixed_bytes: 50 * MI as usize,
            num_nodes: 2_449_029,
        }
    }

    #[test]
    fn plan_splits_what_remains_between_hub_and_dynamic() {
        let p = MemoryBudget::parse("1536MiB")
            .unwrap()
            .plan(products())
            .unwrap();
        let batch = 427_000 * 400;
        assert_eq!(p.prefetch_depth, 2);
        assert_eq!(p.batch_buffers, 4);
        assert_eq!(p.batch_bytes, batch);
        assert_eq!(p.batch_buffer_bytes, 4 * batch);
        assert_eq!(p.miss_buffer_bytes, batch);
        let map = 2_449_029 * 4;
        let avail = 1536 * MI as usize - 350 * MI as usize - 4 * batch - batch - map;
        // 90% of the remaining row bytes to the hub tier (rows rounded down).
        assert_eq!(
            p.hub_rows,
            (avail as f64 * DEFAULT_HUB_SHARE) as usize / 400
        );
        assert_eq!(p.dynamic_rows, (avail - p.hub_rows * 400) / 405);
        assert_eq!(
            p.cache_bytes,
            crate::FeatureCache::bytes_for(2_449_029, 100, p.hub_rows, p.dynamic_rows)
        );
        let total = p.batch_buffer_bytes
            + p.model_bytes
            + p.fixed_bytes
            + p.miss_buffer_bytes
            + p.cache_bytes
            + p.unused_bytes as usize;
        assert_eq!(total as u64, 1536 * MI);
        assert!(p.unused_bytes < 405, "{}", p.summary());
        assert!(p.cache_enabled());

        // Other hub shares move rows between the tiers.
        let budget = MemoryBudget::parse("1536MiB").unwrap();
        let q = budget.clone().with_hub_share(1.0).plan(products()).unwrap();
        assert_eq!(q.dynamic_rows, 0);
        assert_eq!(q.hub_rows, avail / 400);
        let h = budget.with_hub_share(0.5).plan(products()).unwrap();
        assert_eq!(h.hub_rows, avail / 2 / 400);
        assert_eq!(h.dynamic_rows, (avail - h.hub_rows * 400) / 405);
    }

    #[test]
    fn a_budget_holding_every_row_pins_them_all() {
        let p = MemoryBudget::parse("4GiB")
            .unwrap()
            .plan(products())
            .unwrap();
        assert_eq!(p.hub_rows, 2_449_029);
        assert_eq!(p.dynamic_rows, 0);
        assert_eq!(p.miss_buffer_bytes, 0);
        assert_eq!(p.cache_bytes, 2_449_029 * 404);
    }

    #[test]
    fn depth_is_lowered_before_giving_up_and_the_cache_goes_first() {
        let batch = 427_000 * 400u64;
        let base = 350 * MI;
        // Depth 2 needs 4 buffers; this budget has room for 3 plus a little.
        let b = MemoryBudget::from_bytes(base + 3 * batch + MI);
        let p = b.plan(products()).unwrap();
        assert_eq!(p.prefetch_depth, 1);
        assert_eq!(p.batch_buffers, 3);
        assert!(!p.cache_enabled(), "no room for the miss buffer: {p:?}");
        assert_eq!(p.cache_bytes, 0);
        assert_eq!(p.unused_bytes, MI);
        // Depth 0 asked for is treated as 1.
        let mut i = products();
        i.prefetch_depth = 0;
        assert_eq!(b.plan(i).unwrap().prefetch_depth, 1);
        // Depth 5 asked for, 5 fits.
        i.prefetch_depth = 5;
        let big = MemoryBudget::from_bytes(base + 7 * batch);
        assert_eq!(big.plan(i).unwrap().prefetch_depth, 5);
    }

    #[test]
    fn refusal_says_what_would_fit() {
        let e = MemoryBudget::parse("300MiB")
            .unwrap()
            .plan(products())
            .unwrap_err();
        let msg = e.to_string();
        // 427,000 × 400 B = 163 MiB per buffer, 3 at depth 1 = 489 MiB, + 300 + 50 MiB.
        let min_mib = (350 * MI + 3 * 427_000 * 400).div_ceil(MI);
        for part in [
            "--mem-budget 300MiB cannot hold one batch",
            "~427,000 sampled nodes × 100 features",
            "489 MiB of feature buffers",
            "3 buffers of 163 MiB",
            "~300 MiB of activations",
            "50 MiB of parameters",
            &format!("use at least {min_mib}MiB"),
            "lower --batch-size/--fanouts",
        ] {
            assert!(msg.contains(part), "missing {part:?} in: {msg}");
        }
        // The suggested budget plans; one MiB less does not.
        let ok = MemoryBudget::parse(&format!("{min_mib}MiB")).unwrap();
        assert_eq!(ok.plan(products()).unwrap().prefetch_depth, 1);
        let short = MemoryBudget::from_bytes((min_mib - 1) * MI);
        assert!(short.plan(products()).is_err());
    }

    #[test]
    fn formats_numbers_for_messages() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(427_000), "427,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
        assert_eq!(mib(163 * MI as usize), "163 MiB");
        assert_eq!(mib(MI as usize / 2), "0.5 MiB");
        assert_eq!(min_flag(MI + 1), "2MiB");
    }
}
