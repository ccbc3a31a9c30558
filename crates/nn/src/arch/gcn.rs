//! GCN (Kipf & Welling 2017): `h' = Â h W + b` with `Â = D^-1/2 (A+I) D^-1/2`.

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{ParamStore, Tape, Var};

use crate::features::Input;
use crate::model::Architecture;
use crate::{Features, GraphCtx, ModelConfig};

/// A stack of GCN layers with ReLU and dropout between them.
pub struct Gcn {
    layers: Vec<(usize, usize)>,
    dropout: f32,
    /// Dropout on the input features (PyG's GraphSAGE has none; the GCN paper uses `dropout`).
    input_dropout: f32,
}

impl Gcn {
    /// Registers `layers` (weight, bias) pairs in `params`.
    pub fn new(cfg: &ModelConfig, params: &mut ParamStore, rng: &mut Xoshiro256PlusPlus) -> Gcn {
        let layers = (0..cfg.layers)
            .map(|l| {
                let (din, dout) = cfg.dims(l);
                super::linear(params, &format!("layer{l}"), din, dout, rng)
            })
            .collect();
        Gcn {
            layers,
            dropout: cfg.dropout,
            input_dropout: cfg.input_dropout,
        }
    }
}

/// GCN layer `l` on `h`: multiplies by W first when that shrinks the width, so the SpMM
/// moves fewer columns.
pub fn gcn_layer(tape: &mut Tape, h: &Input, w: Var, b: Var, graph: &GraphCtx, l: usize) -> Var {
    let p = graph.gcn_at(l);
    let (din, dout) = (tape.value(w).rows, tape.value(w).cols);
    let z = match h {
        Input::Dense(v) if dout > din => {
            let t = tape.spmm(&p.a, &p.at, *v);
            tape.matmul(t, w)
        }
        _ => {
            let t = h.matmul(tape, w);
            tape.spmm(&p.a, &p.at, t)
        }
    };
    tape.add_bias(z, b)
}

impl Architecture for Gcn {
    fn supports_blocks(&self) -> bool {
        true
    }

    fn forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        embed: bool,
    ) -> Var {
        let mut h = Input::from_features(tape, x, self.input_dropout, rng);
        let last = self.layers.len() - 1;
        for (l, &(w, b)) in self.layers.iter().enumerate() {
            if embed && l == last {
                let d = h.dense(tape);
                return super::dst_rows(tape, d, graph.num_dst(l));
            }
            let (wv, bv) = (tape.param(params, w), tape.param(params, b));
            let z = gcn_layer(tape, &h, wv, bv, graph, l);
            if l == last {
                return z;
            }
            let a = tape.relu(z);
            h = Input::Dense(tape.dropout(a, self.dropout, rng));
        }
        unreachable!("a model has at least one layer")
    }
}
