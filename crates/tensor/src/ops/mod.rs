//! Ops beyond the core set, one concept a file: each adds `Tape` methods and its backward.

mod activation;
pub(crate) mod attention;
mod shape;
mod gather;
mod norm;
mod loss;
mod aggregate;
