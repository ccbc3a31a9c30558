//! Adding a model is one file and one registry line: a 1-layer linear propagation model
//! (`Â X W + b`) defined here, outside the crate, joins the registry with `register` and is
//! then built, trained, sized and listed like the built-in ones.

use std::sync::Arc;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_graph::CsrBuilder;
use scalegnn_nn::arch::gcn::gcn_layer;
use scalegnn_nn::registry::{self, Depth, ModelSpec, Operator, Steps};
use scalegnn_nn::{
    Architecture, Features, GraphCtx, Input, Model, ModelConfig, ModelKind, SizeShape,
};
use scalegnn_tensor::{Adam, Matrix, ParamStore, Tape, Var};

/// `Â X W + b`, one layer whatever `layers` says.
struct Toy {
    w: usize,
    b: usize,
}

impl Architecture for Toy {
    fn forward(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        x: &Features,
        graph: &GraphCtx,
        rng: &mut Xoshiro256PlusPlus,
        _embed: bool,
    ) -> Var {
        let h = Input::from_features(tape, x, 0.0, rng);
        let (w, b) = (tape.param(params, self.w), tape.param(params, self.b));
        gcn_layer(tape, &h, w, b, graph, 0)
    }
}

static TOY: ModelSpec = ModelSpec {
    name: "toy",
    aliases: &["linear-propagation"],
    about: "one linear propagation",
    knobs: &[],
    depth: Depth::One,
    steps: Steps::One,
    operators: &[Operator::Gcn],
    blocks: true,
    layerwise: false,
    mixture: false,
    build: |cfg, params, rng| {
        let w = params.add("toy.weight", Matrix::glorot(cfg.in_dim, cfg.out_dim, rng));
        let b = params.add("toy.bias", Matrix::zeros(1, cfg.out_dim));
        Box::new(Toy { w, b })
    },
    size: |cfg| SizeShape::stack(cfg, 1, 1, false, |i, o| (i * o + o, o)),
    expert: None,
};

#[test]
fn a_model_from_one_file_and_one_registry_line_trains_like_the_built_in_ones() {
    // The one registry line.
    registry::register(&TOY).unwrap();

    // Found by name and alias, listed after the built-in models, refused a second time.
    let kind: ModelKind = "toy".parse().unwrap();
    assert_eq!(kind, "Linear-Propagation".parse::<ModelKind>().unwrap());
    assert_eq!(ModelKind::all().last(), Some(&kind));
    assert!(registry::register(&TOY).is_err());
    assert_eq!(kind.num_blocks(3, 2), 1);

    // Two triangles with separable features: the toy fits them.
    let g = CsrBuilder::new()
        .undirected(true)
        .build(&[0u32, 1, 2, 3, 4, 5], &[1u32, 2, 0, 4, 5, 3])
        .unwrap()
        .csr;
    let mut ctx = GraphCtx::new(&g);
    ctx.prepare(kind);
    let x = Features::from_dense(
        Matrix::from_vec(
            6,
            2,
            vec![1., 0., 1., 0.1, 0.9, 0., 0., 1., 0.1, 1., 0., 0.8],
        ),
        0.0,
    );
    let cfg = ModelConfig::new(kind, 2, 8, 2, 1, 0.0);
    let mut m = Model::new(cfg.clone(), 1).unwrap();
    assert_eq!(m.params.count(), 2 * 2 + 2);
    assert!(m.supports_blocks() && !m.supports_layerwise() && m.moe().is_none());
    // The size guard reads the registry's estimate: an absurd width is refused.
    assert!(ModelConfig::new(kind, 1 << 40, 8, 1 << 30, 1, 0.0)
        .check_fits(0, 0)
        .is_err());
    let idx = Arc::new((0..6).collect::<Vec<usize>>());
    let y = Arc::new(vec![0usize, 0, 0, 1, 1, 1]);
    let mut opt = Adam::new(0.1, 0.0);
    let mut tape = Tape::new(true);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    let mut first = None;
    let mut last = f32::NAN;
    for _ in 0..100 {
        tape.reset(true);
        m.params.zero_grad();
        let z = m.forward(&mut tape, &x, &ctx, &mut rng);
        let lp = tape.log_softmax(z);
        let loss = tape.nll(lp, idx.clone(), y.clone());
        last = tape.value(loss).data[0];
        first.get_or_insert(last);
        tape.backward(loss, &mut m.params);
        opt.step(&mut m.params);
    }
    assert!(last < 0.5 * first.unwrap(), "loss {first:?} -> {last}");
    tape.reset(false);
    let z = m.forward(&mut tape, &x, &ctx, &mut rng);
    assert_eq!(tape.value(z).argmax_rows(), *y);
}
