//! Layer-wise inference (each layer over every node's full neighbourhood, chunk by chunk)
//! must give the logits of the whole-graph forward pass.

use scalegnn_data::synth::{generate, Preset, SynthConfig};
use scalegnn_data::{Dataset, NoProgress, OpenOptions};
use std::sync::Arc;

use rand::SeedableRng;
use scalegnn_loader::exact::layerwise_logits;
use scalegnn_nn::{Features, GraphCtx, Model, ModelConfig, ModelKind};
use scalegnn_store::{open_store, Codec};
use scalegnn_tensor::{Matrix, Tape};

#[test]
fn layerwise_logits_equal_the_full_graph_forward() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny");
    generate(
        &SynthConfig::preset(Preset::Tiny, 2),
        &out,
        false,
        &NoProgress,
    )
    .unwrap();
    let ds = Dataset::open(&out, OpenOptions { verify: true }).unwrap();
    let store = open_store(&out, "mmap", Codec::F32).unwrap();
    let n = ds.graph.num_nodes();
    let classes = ds.manifest.num_classes as usize;
    let ids: Vec<u32> = (0..n as u32).collect();
    let mut m = Matrix::zeros(n, store.dim());
    store.gather(&ids, &mut m.data).unwrap();
    let x = Features::Dense(Arc::new(m));
    let targets: Vec<u32> = (0..n as u32).rev().step_by(3).collect();
    // Every model the registry says runs layer by layer.
    let kinds: Vec<ModelKind> = ModelKind::all()
        .into_iter()
        .filter(|k| k.spec().layerwise)
        .collect();
    assert!(kinds.len() >= 4, "{kinds:?}");
    for kind in kinds {
        let cfg = ModelConfig::new(kind, store.dim(), 12, classes, 3, 0.5);
        let model = Model::new(cfg, 7).unwrap();
        let mut tape = Tape::new(false);
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(0);
        let z = model.forward(&mut tape, &x, &GraphCtx::new(&ds.graph), &mut rng);
        let full = tape.value(z).clone();
        // Chunks of 97 nodes: many chunks, a ragged last one.
        let lw =
            layerwise_logits(&model, &ds.graph, store.as_ref(), &targets, 97, dir.path()).unwrap();
        assert_eq!((lw.rows, lw.cols), (targets.len(), full.cols));
        for (r, &t) in targets.iter().enumerate() {
            for (a, b) in lw.row(r).iter().zip(full.row(t as usize)) {
                assert!(
                    (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                    "{kind:?} node {t}: {a} vs {b}"
                );
            }
        }
    }
    // Scratch files are removed.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".scratch"))
        .collect();
    assert!(left.is_empty(), "scratch files left: {left:?}");
}
