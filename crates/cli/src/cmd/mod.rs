//! One module per subcommand: its arguments and what it runs.

pub mod demo;
pub mod infer;
pub mod info;
pub mod ingest;
pub mod partition;
pub mod profile;
pub mod split_edges;
pub mod store;
pub mod synth;
pub mod train;
