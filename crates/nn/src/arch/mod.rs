//! One file per architecture; each builds its parameters and records its forward pass.

pub mod cheb;
pub mod gat;
pub mod gcn;
pub mod gin;
pub mod jk;
pub mod mixhop;
pub mod mlp;
pub mod sage;
pub mod sgc;
