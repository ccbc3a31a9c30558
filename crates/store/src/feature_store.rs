//! The `FeatureStore` trait: random-access, thread-safe reads of node feature rows as f32.

use crate::{CacheStats, Codec, StoreError};

/// Node features kept off the heap, read by node id in batches.
pub trait FeatureStore: Send + Sync {
    /// Number of nodes (rows); valid ids are `0..num_nodes`.
    fn num_nodes(&self) -> usize;
    /// Features per node (columns).
    fn dim(&self) -> usize;
    /// How values are stored (decoded to f32 by `gather`).
    fn codec(&self) -> Codec;
    /// Short name for reports: "mmap", "sqlite", "postgres".
    fn kind(&self) -> &'static str;
    /// Decodes rows `ids` into `out` (`[ids.len(), dim]`, row-major f32, caller-owned).
    fn gather(&self, ids: &[u32], out: &mut [f32]) -> Result<(), StoreError>;
    /// Bytes read from the backing storage so far (for per-epoch I/O reports).
    fn bytes_read(&self) -> u64;
    /// Hit/miss counters when this store is a cache (`None` for plain stores).
    fn cache_stats(&self) -> Option<CacheStats> {
        None
    }
    /// Zeroes the cache counters (per-epoch reports); nothing for plain stores.
    fn reset_cache_stats(&self) {}
}
