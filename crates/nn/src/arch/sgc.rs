//! SGC (Wu et al. 2019): logistic regression on `Â^K X`, the propagation precomputed once.

use std::sync::Arc;

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{spmm, Matrix, ParamStore, Tape, Var};

use crate::features::Input;
use crate::model::{Architecture, SizeShape};
use crate::registry::{Depth, ExpertConv, Knob, ModelSpec, Operator, Steps};
use crate::{Features, GraphCtx, ModelConfig};

/// One linear layer over `K`-hop smoothed features.
pub struct Sgc {
    w: usize,
    b: usize,
    k: usize,
}

/// `Â^K X` for one feature matrix (identified by its allocation, so new features recompute).
struct Smoothed {
    source: usize,
    x: Arc<Matrix>,
}

impl Sgc {
    /// A `[in_dim, out_dim]` linear layer; `hops` is K.
    pub fn new(cfg: &ModelConfig, params: &mut ParamStore, rng: &mut Xoshiro256PlusPlus) -> Sgc {
        let w = params.add(
            "linear.weight",
            Matrix::glorot(cfg.in_dim, cfg.out_dim, rng),
        );
        let b = params.add("linear.bias", Matrix::zeros(1, cfg.out_dim));
        Sgc {
            w,
            b,
            k: cfg.hops.max(1),
        }
    }
}

fn features_id(x: &Features) -> usize {
    match x {
        Features::Dense(m) => Arc::as_ptr(m) as usize,
        Features::Sparse(s) => Arc::as_ptr(s) as usize,
    }
}

impl Sgc {
    /// On a sampled batch: `K` propagation steps over its blocks on the tape (the features
    /// change every batch, so nothing is cached), then the linear layer on the seed rows.
    fn forward_blocks(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        embed: bool,
    ) -> Var {
        let mut h = Input::from_features(tape, x, 0.0, rng).dense(tape);
        for k in 0..self.k {
            let p = graph.gcn_at(k);
            h = tape.spmm(&p.a, &p.at, h);
        }
        if embed {
            return h;
        }
        let (w, b) = (tape.param(params, self.w), tape.param(params, self.b));
        let z = tape.matmul(h, w);
        tape.add_bias(z, b)
    }
}

impl Architecture for Sgc {
    fn forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        embed: bool,
    ) -> Var {
        if graph.num_blocks() > 0 {
            return self.forward_blocks(tape, params, x, graph, rng, embed);
        }
        let id = features_id(x);
        let smoothed = graph.cached("sgc", |_| std::sync::Mutex::new(None::<Smoothed>));
        let xs = {
            let mut slot = smoothed.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some(s) if s.source == id => s.x.clone(),
                _ => {
                    let p = graph.gcn();
                    let mut cur = match x {
                        Features::Dense(m) => (**m).clone(),
                        Features::Sparse(s) => s.to_dense(),
                    };
                    let mut next = Matrix::zeros(cur.rows, cur.cols);
                    for _ in 0..self.k {
                        spmm(&p.a, &cur, &mut next, false);
                        std::mem::swap(&mut cur, &mut next);
                    }
                    let x = Arc::new(cur);
                    *slot = Some(Smoothed {
                        source: id,
                        x: x.clone(),
                    });
                    x
                }
            }
        };
        // SGC is plain logistic regression on the smoothed features: no dropout (Wu et al.).
        let h = Input::from_features(tape, &Features::Dense(xs), 0.0, rng);
        if embed {
            return h.dense(tape);
        }
        let (w, b) = (tape.param(params, self.w), tape.param(params, self.b));
        let z = h.matmul(tape, w);
        tape.add_bias(z, b)
    }
}

/// The registry's entry.
pub const SPEC: ModelSpec = ModelSpec {
    name: "sgc",
    aliases: &[],
    about: "SGC: one linear layer over Â^K X (K = hops)",
    knobs: &[Knob::Hops],
    depth: Depth::One,
    steps: Steps::Hops,
    operators: &[Operator::Gcn],
    blocks: true,
    layerwise: false,
    mixture: false,
    build: |cfg, params, rng| Box::new(Sgc::new(cfg, params, rng)),
    size,
    expert: Some(EXPERT),
};

fn size(cfg: &ModelConfig) -> SizeShape {
    SizeShape::stack(cfg, 1, 1, false, |i, o| (i * o, o))
}

/// As a SAGMM expert: `hops` propagations (at most `layers`), then a linear.
const EXPERT: ExpertConv = ExpertConv {
    hops_per_conv: |hops, layers| hops.clamp(1, layers.max(1)),
    multi_head: false,
    jumping_knowledge: false,
    params: crate::arch::gcn::expert_params,
    conv: |tape, p, h, graph, blk, s, _| {
        let mut t = h;
        for k in 0..s.hops {
            let a = graph.gcn_at(blk + k);
            t = tape.spmm(&a.a, &a.at, t);
        }
        let t = tape.matmul(t, p[0]);
        tape.add_bias(t, p[1])
    },
};
