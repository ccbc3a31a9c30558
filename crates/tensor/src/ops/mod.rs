//! Ops beyond the core set, one concept a file: each adds `Tape` methods and its backward.

mod shape;
