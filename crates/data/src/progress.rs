//! Progress reporting hook: the library says what it is doing, the CLI draws the bars.

/// Receives progress from long operations (ingest, synth).
pub trait Progress: Sync {
    /// A new stage starts; `total` units of work if known.
    fn stage(&self, name: &str, total: Option<u64>);
    /// `n` more units of the current stage are done.
    fn advance(&self, n: u64);
}

/// Progress sink that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _name: &str, _total: Option<u64>) {}
    fn advance(&self, _n: u64) {}
}
