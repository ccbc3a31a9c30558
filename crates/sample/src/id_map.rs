//! `IdMap`: global node id → local (batch) id, a dense array over all nodes that is reset
//! entry by entry after each batch, so a batch costs O(batch), never O(num_nodes).
//! Why dense: one cache miss per lookup and no hashing; 4 bytes per graph node, allocated
//! once per concurrent `sample` call and pooled across calls.

use std::sync::Mutex;

use crate::prefetch::prefetch;

/// Marks a node not yet in the batch; never a valid local id (batches have < u32::MAX nodes).
const ABSENT: u32 = u32::MAX;

/// Global → local id map for one batch at a time.
pub(crate) struct IdMap {
    local: Vec<u32>,
}

impl IdMap {
    fn new(num_nodes: usize) -> Self {
        IdMap {
            local: vec![ABSENT; num_nodes],
        }
    }

    /// The local id of `global`, inserting it as `next` when absent; `None` when `global` is
    /// not a node of the graph. Returns `(local, inserted)`.
    #[inline]
    pub(crate) fn get_or_insert(&mut self, global: u32, next: u32) -> Option<(u32, bool)> {
        let slot = self.local.get_mut(global as usize)?;
        if *slot == ABSENT {
            *slot = next;
            Some((next, true))
        } else {
            Some((*slot, false))
        }
    }

    /// Hints that `global`'s slot will be looked up soon (ignored when out of range).
    #[inline]
    pub(crate) fn prefetch(&self, global: u32) {
        if let Some(slot) = self.local.get(global as usize..global as usize + 1) {
            prefetch(slot);
        }
    }

    /// Number of graph nodes the map covers.
    pub(crate) fn len(&self) -> usize {
        self.local.len()
    }

    /// Forgets the batch whose nodes are `nodes` (every id inserted since the last reset).
    pub(crate) fn reset(&mut self, nodes: &[u32]) {
        for &v in nodes {
            if let Some(slot) = self.local.get_mut(v as usize) {
                *slot = ABSENT;
            }
        }
    }
}

/// Idle maps for one graph, so concurrent `sample` calls each get one and reuse it later.
pub(crate) struct IdMapPool {
    num_nodes: usize,
    idle: Mutex<Vec<IdMap>>,
}

impl IdMapPool {
    /// An empty pool for a graph of `num_nodes` nodes (maps are built on first use).
    pub(crate) fn new(num_nodes: usize) -> Self {
        IdMapPool {
            num_nodes,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// An idle (all-absent) map, or a new one.
    pub(crate) fn take(&self) -> IdMap {
        // A poisoned lock only means another thread panicked while pushing; the Vec is intact.
        let popped = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        popped.unwrap_or_else(|| IdMap::new(self.num_nodes))
    }

    /// Returns a map that has been reset.
    pub(crate) fn give(&self, map: IdMap) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(map);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_once_rejects_out_of_range_and_resets() {
        let pool = IdMapPool::new(10);
        let mut m = pool.take();
        assert_eq!(m.get_or_insert(3, 0), Some((0, true)));
        assert_eq!(m.get_or_insert(7, 1), Some((1, true)));
        assert_eq!(m.get_or_insert(3, 2), Some((0, false)));
        assert_eq!(m.get_or_insert(10, 2), None);
        m.reset(&[3, 7]);
        pool.give(m);
        let mut m = pool.take();
        assert_eq!(m.get_or_insert(3, 0), Some((0, true)));
    }
}
