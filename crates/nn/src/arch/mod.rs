//! One file per architecture; each builds its parameters and records its forward pass.

pub mod gcn;
pub mod mlp;
pub mod sage;
