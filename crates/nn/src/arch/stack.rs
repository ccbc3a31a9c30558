//! The loop the stacked architectures share (GCN, SAGE, GIN, MLP, ChebNet): dropout on the
//! input features, then each layer with its activation and dropout between layers. Their
//! embeddings and exact layer-wise inference run the same loop over a sub-range of layers, so
//! an architecture file holds only its parameters and its layer.

use std::ops::Range;

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{ParamStore, Tape, Var};

use crate::features::Input;
use crate::model::Architecture;
use crate::{Features, GraphCtx};

/// A stack of layers of one kind.
pub trait Stack: Send + Sync {
    /// Layers in the stack (≥ 1).
    fn num_layers(&self) -> usize;

    /// Sampled blocks (propagation steps) one layer consumes.
    fn blocks_per_layer(&self) -> usize {
        1
    }

    /// Dropout on the input features.
    fn input_dropout(&self) -> f32;

    /// Dropout between layers.
    fn dropout(&self) -> f32;

    /// Layer `l` on `h` (its first block is `l × blocks_per_layer()`): the activated output,
    /// or with `activate` false (the last layer) the raw one.
    fn layer(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        h: &Input,
        graph: &GraphCtx,
        l: usize,
        activate: bool,
    ) -> Var;
}

/// Layers `layers` of `s` on `x` (features before layer 0, activations after): the logits
/// after the last layer, else the activations entering layer `layers.end`.
fn run_layers<S: Stack + ?Sized>(
    s: &S,
    tape: &mut Tape,
    params: &ParamStore,
    x: &Features,
    graph: &GraphCtx,
    rng: &mut Xoshiro256PlusPlus,
    layers: Range<usize>,
) -> Var {
    let p_in = if layers.start == 0 {
        s.input_dropout()
    } else {
        0.0
    };
    let mut h = Input::from_features(tape, x, p_in, rng);
    let last = s.num_layers() - 1;
    for l in layers {
        let z = s.layer(tape, params, &h, graph, l, l != last);
        if l == last {
            return z;
        }
        h = Input::Dense(tape.dropout(z, s.dropout(), rng));
    }
    h.dense(tape)
}

/// `relu(z)` when `activate`, else `z`: the activation of every stacked layer but the last.
pub(crate) fn relu_if(tape: &mut Tape, z: Var, activate: bool) -> Var {
    if activate {
        tape.relu(z)
    } else {
        z
    }
}

impl<S: Stack> Architecture for S {
    fn forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        embed: bool,
    ) -> Var {
        let last = self.num_layers() - 1;
        if embed {
            // The last layer's input, on the nodes the logits would be for.
            let h = run_layers(self, tape, params, x, graph, rng, 0..last);
            let rows = graph.num_dst((last + 1) * self.blocks_per_layer() - 1);
            return super::dst_rows(tape, h, rows);
        }
        run_layers(self, tape, params, x, graph, rng, 0..last + 1)
    }

    fn forward_range(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        layers: Range<usize>,
    ) -> Option<Var> {
        // Layer-wise inference gives each layer one block.
        (self.blocks_per_layer() == 1)
            .then(|| run_layers(self, tape, params, x, graph, rng, layers))
    }
}
