//! Ops beyond the core set, one concept a file: each adds `Tape` methods and its backward.

mod activation;
mod aggregate;
pub(crate) mod attention;
mod gather;
mod loss;
mod moe;
mod norm;
mod sage;
mod shape;
