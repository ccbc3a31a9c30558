//! The loop the stacked architectures share (GCN, SAGE, GIN, MLP, ChebNet): dropout on the
//! input features, then each layer with its activation and dropout between layers. Their
//! embeddings and exact layer-wise inference run the same loop over a sub-range of layers, so
//! an architecture file holds only its parameters and its layer.

use std::ops::Range;

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{ParamStore, Tape, Var};

use crate::features::Input;
use crate::model::Architecture;
use crate::{Features, GraphCtx, VirtualNode};

/// The layers of one kind a [`Stacked`] architecture runs.
pub trait Stack: Send + Sync {
    /// Sampled blocks (propagation steps) one layer consumes.
    fn blocks_per_layer(&self) -> usize {
        1
    }

    /// Layer `l` on `h` (its first block is `l × blocks_per_layer()`): the activated output,
    /// or with `activate` false (the last layer) the raw one.
    fn layer(&self, cx: LayerCtx, h: &Input, l: usize, activate: bool) -> Var;
}

/// What a layer records on and reads: the tape, the parameters and the graph.
pub struct LayerCtx<'a, 'g> {
    pub tape: &'a mut Tape,
    pub params: &'a ParamStore,
    pub graph: &'a GraphCtx<'g>,
}

/// An architecture made of `layers` layers of a [`Stack`], with dropout on the input
/// features and between layers.
pub struct Stacked<S> {
    stack: S,
    layers: usize,
    dropout: f32,
    /// Dropout on the input features (PyG's GraphSAGE has none; the GCN paper uses `dropout`).
    input_dropout: f32,
    /// Graph-level tasks: the virtual node joined to every node of each graph.
    virtual_node: Option<VirtualNode>,
}

impl<S: Stack> Stacked<S> {
    /// `stack`'s `cfg.layers` layers with `cfg`'s dropouts.
    pub fn new(cfg: &crate::ModelConfig, stack: S) -> Stacked<S> {
        Stacked {
            stack,
            layers: cfg.layers,
            dropout: cfg.dropout,
            input_dropout: cfg.input_dropout,
            virtual_node: None,
        }
    }

    /// The same with a virtual node when `cfg.virtual_node` (its parameters registered after
    /// the layers', so a model without it draws the same weights).
    pub fn with_virtual_node(
        mut self,
        cfg: &crate::ModelConfig,
        params: &mut ParamStore,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Stacked<S> {
        if cfg.virtual_node {
            self.virtual_node = Some(VirtualNode::new(cfg, params, rng));
        }
        self
    }

    /// The input of layer `l`: `h`, or with a virtual node (layers ≥ 1 of a batch of graphs)
    /// `h` plus the node's state, which the layer's input then updates (`state`).
    #[allow(clippy::too_many_arguments)] // the forward pass's inputs, each distinct
    fn enter(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        l: usize,
        h: Input,
        state: &mut Option<Var>,
    ) -> Input {
        let (Some(vn), Some(seg)) = (&self.virtual_node, graph.segments()) else {
            return h;
        };
        if !vn.joins(l) {
            return h;
        }
        let s = match *state {
            Some(s) => s,
            None => vn.start(tape, params, seg),
        };
        let h = h.dense(tape);
        let h = vn.inject(tape, seg, h, s);
        *state = Some(if vn.updates_after(l) {
            vn.update(tape, params, seg, l, h, s, self.dropout, rng)
        } else {
            s
        });
        Input::Dense(h)
    }

    /// Layers `layers` on `x` (features before layer 0, activations after): the logits
    /// after the last layer, else the activations entering layer `layers.end`.
    #[allow(clippy::too_many_arguments)] // the forward pass's inputs, each distinct
    fn run_layers(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        layers: Range<usize>,
    ) -> Var {
        let p_in = if layers.start == 0 {
            self.input_dropout
        } else {
            0.0
        };
        let mut h = Input::from_features(tape, x, p_in, rng);
        let last = self.layers - 1;
        let mut state = None;
        for l in layers {
            h = self.enter(tape, params, graph, rng, l, h, &mut state);
            let cx = LayerCtx {
                tape: &mut *tape,
                params,
                graph,
            };
            let z = self.stack.layer(cx, &h, l, l != last);
            if l == last {
                return z;
            }
            h = Input::Dense(tape.dropout(z, self.dropout, rng));
        }
        h.dense(tape)
    }
}

/// `relu(z)` when `activate`, else `z`: the activation of every stacked layer but the last.
pub(crate) fn relu_if(tape: &mut Tape, z: Var, activate: bool) -> Var {
    if activate {
        tape.relu(z)
    } else {
        z
    }
}

impl<S: Stack> Architecture for Stacked<S> {
    fn forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        embed: bool,
    ) -> Var {
        let last = self.layers - 1;
        if embed {
            // The last layer's input, on the nodes the logits would be for.
            let h = self.run_layers(tape, params, x, graph, rng, 0..last);
            let rows = graph.num_dst((last + 1) * self.stack.blocks_per_layer() - 1);
            return super::dst_rows(tape, h, rows);
        }
        self.run_layers(tape, params, x, graph, rng, 0..last + 1)
    }

    fn forward_layers(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Option<Vec<Var>> {
        let mut h = Input::from_features(tape, x, self.input_dropout, rng);
        let last = self.layers - 1;
        let mut outs = Vec::with_capacity(self.layers);
        let mut state = None;
        for l in 0..self.layers {
            h = self.enter(tape, params, graph, rng, l, h, &mut state);
            let cx = LayerCtx {
                tape: &mut *tape,
                params,
                graph,
            };
            let z = self.stack.layer(cx, &h, l, l != last);
            outs.push(z);
            h = Input::Dense(tape.dropout(z, self.dropout, rng));
        }
        Some(outs)
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
        // Layer-wise inference gives each layer one block; a virtual node carries state
        // from layer to layer, which a single layer's pass does not have.
        (self.stack.blocks_per_layer() == 1 && self.virtual_node.is_none())
            .then(|| self.run_layers(tape, params, x, graph, rng, layers))
    }
}
