//! One file per architecture; each builds its parameters and records its forward pass.

pub mod cheb;
pub mod gat;
pub mod gcn;
pub mod gin;
pub mod gine;
pub mod jk;
pub mod mixhop;
pub mod mlp;
pub mod norm;
pub mod sage;
pub mod sgc;
pub mod stack;

use std::sync::Arc;

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{Matrix, ParamStore, Tape, Var};

/// Registers `{name}.weight` (Glorot `[din, dout]`) and `{name}.bias` (zeros `[1, dout]`);
/// returns their indices.
pub(crate) fn linear(
    params: &mut ParamStore,
    name: &str,
    din: usize,
    dout: usize,
    rng: &mut Xoshiro256PlusPlus,
) -> (usize, usize) {
    let w = params.add(&format!("{name}.weight"), Matrix::glorot(din, dout, rng));
    let b = params.add(&format!("{name}.bias"), Matrix::zeros(1, dout));
    (w, b)
}

/// The first `n` rows of `h` (a block's dst nodes are a prefix of its src nodes), or `h`
/// itself when `n` is `None` (the whole graph).
pub(crate) fn dst_rows(tape: &mut Tape, h: Var, n: Option<usize>) -> Var {
    match n {
        Some(n) if n < tape.value(h).rows => tape.gather_rows(h, Arc::new((0..n).collect())),
        _ => h,
    }
}
