//! Loader conformance: what every `Loader` must do for the trainer, checked on the whole-graph
//! loader and on sampled batches (full and partial fan-outs); and, for every model that runs
//! on sampled blocks, that a batch holding every in-neighbour gives the whole graph's outputs
//! and parameter gradients (the blocks' normalisation and CSC-built transposes are exact).

use std::sync::Arc;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_data::synth::{generate, Preset, SynthConfig};
use scalegnn_data::{Dataset, NoProgress, OpenOptions};
use scalegnn_loader::{FullGraph, Loader, LoaderError, Prepared, Sampled};
use scalegnn_nn::{Features, GraphCtx, Model, ModelConfig, ModelKind};
use scalegnn_sample::NeighborSampler;
use scalegnn_store::{open_store, Codec, FeatureStore};
use scalegnn_tensor::{Matrix, Tape};

struct Fixture {
    _dir: tempfile::TempDir,
    ds: Dataset,
    store: Box<dyn FeatureStore>,
    x: Features,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny");
    generate(
        &SynthConfig::preset(Preset::Tiny, 3),
        &out,
        false,
        &NoProgress,
    )
    .unwrap();
    let ds = Dataset::open(&out, OpenOptions { verify: true }).unwrap();
    let store = open_store(&out, "mmap", Codec::F32).unwrap();
    let n = ds.graph.num_nodes();
    let ids: Vec<u32> = (0..n as u32).collect();
    let mut m = Matrix::zeros(n, store.dim());
    store.gather(&ids, &mut m.data).unwrap();
    Fixture {
        _dir: dir,
        ds,
        store,
        x: Features::Dense(Arc::new(m)),
    }
}

/// What one pass showed the step: the items of each batch and the input rows of its items.
#[derive(Debug, PartialEq)]
struct Pass {
    items: Vec<Vec<u32>>,
    item_rows: Vec<Vec<f32>>,
}

fn dense(x: &Features) -> &Matrix {
    match x {
        Features::Dense(m) => m,
        _ => panic!("expected dense features"),
    }
}

fn record(loader: &dyn Loader, items: &[u32], seed: u64) -> Pass {
    let mut pass = Pass {
        items: Vec::new(),
        item_rows: Vec::new(),
    };
    let times = loader
        .run(items, seed, &mut |p: &Prepared| {
            let x = dense(&p.x);
            let mut rows = Vec::new();
            for k in 0..p.items.len() {
                let r = p.rows.as_ref().map_or(k, |r| r[k]);
                rows.extend_from_slice(x.row(r));
            }
            pass.items.push(p.items.to_vec());
            pass.item_rows.push(rows);
            Ok(())
        })
        .unwrap();
    assert_eq!(times.seeds, items.len(), "stage times count every item");
    assert_eq!(times.batches, pass.items.len());
    pass
}

/// The contract: every item once, in order; each item's input row is its feature row; the
/// same seed gives the same batches; a failing step ends the pass.
fn check_loader(name: &str, loader: &dyn Loader, f: &Fixture, items: &[u32]) {
    let pass = record(loader, items, 5);
    let seen: Vec<u32> = pass.items.concat();
    assert_eq!(seen, items, "{name}: every item once, in order");
    let x = dense(&f.x);
    for (batch, rows) in pass.items.iter().zip(&pass.item_rows) {
        for (k, &i) in batch.iter().enumerate() {
            let want = x.row(i as usize);
            assert_eq!(
                &rows[k * x.cols..(k + 1) * x.cols],
                want,
                "{name}: input row of item {i}"
            );
        }
    }
    assert_eq!(
        pass,
        record(loader, items, 5),
        "{name}: same seed, same pass"
    );
    let mut calls = 0;
    let r = loader.run(items, 5, &mut |_| {
        calls += 1;
        Err(LoaderError::Stopped)
    });
    assert!(
        matches!(r, Err(LoaderError::Stopped)),
        "{name}: a failing step ends the pass"
    );
    assert_eq!(calls, 1, "{name}: no step after a failed one");
    assert!(
        record(loader, &[], 5).items.iter().all(|b| b.is_empty()),
        "{name}: no items, no work"
    );
}

#[test]
fn every_loader_meets_the_contract() {
    let f = fixture();
    let n = f.ds.graph.num_nodes() as u32;
    // A shuffled-looking order with gaps, longer than several batches.
    let items: Vec<u32> = (0..n).map(|i| (i * 7919) % n).step_by(3).collect();
    let full = FullGraph::new(&f.ds.graph, f.x.clone());
    check_loader("full graph", &full, &f, &items);
    assert!(full.whole_graph());
    for fanouts in [vec![-1i64, -1], vec![3, 2]] {
        let sampler = NeighborSampler::new(&f.ds.graph, &fanouts).unwrap();
        let loader = Sampled::new(
            &f.ds.graph,
            f.store.as_ref(),
            &sampler,
            64,
            2,
            1,
            "sage".parse::<ModelKind>().unwrap(),
            None,
        )
        .unwrap();
        assert!(!loader.whole_graph());
        check_loader(&format!("sampled {fanouts:?}"), &loader, &f, &items);
    }
}

/// Runs `model` on `graph` and returns the outputs and every parameter's gradient of
/// `Σ out ∘ probe`.
fn outputs_and_grads(
    model: &mut Model,
    x: &Features,
    graph: &GraphCtx,
    probe: &Matrix,
) -> (Matrix, Vec<Matrix>) {
    model.params.zero_grad();
    let mut tape = Tape::new(false);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    let out = model.forward(&mut tape, x, graph, &mut rng);
    let value = tape.value(out).clone();
    let loss = tape.weighted_sum(out, probe);
    tape.backward(loss, &mut model.params);
    (value, model.params.grads.clone())
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-4 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn a_batch_with_every_neighbour_equals_the_whole_graph() {
    let f = fixture();
    let g = &f.ds.graph;
    let n = g.num_nodes();
    let classes = f.ds.manifest.num_classes as usize;
    let seeds: Vec<u32> = (0..n as u32).rev().step_by(5).collect();
    let kinds: Vec<ModelKind> = ModelKind::all()
        .into_iter()
        .filter(|k| k.spec().blocks && !k.is_mixture())
        .collect();
    assert!(kinds.len() >= 5, "{kinds:?}");
    for kind in kinds {
        let cfg = ModelConfig::new(kind, f.store.dim(), 8, classes, 2, 0.0);
        let mut model = Model::new(cfg, 11).unwrap();
        let hops = model.config.num_blocks();
        let mut probe_rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut probe_seeds = Matrix::zeros(seeds.len(), classes);
        for v in &mut probe_seeds.data {
            *v = rand::Rng::random_range(&mut probe_rng, -1.0f32..1.0);
        }
        // The same probe on the whole graph: the seeds' rows, zero elsewhere.
        let mut probe_all = Matrix::zeros(n, classes);
        for (r, &s) in seeds.iter().enumerate() {
            probe_all
                .row_mut(s as usize)
                .copy_from_slice(probe_seeds.row(r));
        }
        let (full_out, full_grads) =
            outputs_and_grads(&mut model, &f.x, &GraphCtx::new(g), &probe_all);

        let sampler = NeighborSampler::full(g, hops).unwrap();
        let batch = scalegnn_sample::Sampler::sample(&sampler, &seeds, 0).unwrap();
        // Every in-neighbour drawn: the sampler scales nothing (0 on rows without any).
        for b in &batch.blocks {
            for (i, &s) in b.scale.iter().enumerate() {
                assert_eq!(s, if b.row(i).is_empty() { 0.0 } else { 1.0 });
            }
        }
        let mut xb = Matrix::zeros(batch.nodes.len(), f.store.dim());
        f.store.gather(&batch.nodes, &mut xb.data).unwrap();
        let ctx = GraphCtx::from_batch(g, batch);
        let (out, grads) = outputs_and_grads(
            &mut model,
            &Features::Dense(Arc::new(xb)),
            &ctx,
            &probe_seeds,
        );
        assert_eq!(out.rows, seeds.len(), "{kind:?}: one output row per seed");
        for (r, &s) in seeds.iter().enumerate() {
            for (a, b) in out.row(r).iter().zip(full_out.row(s as usize)) {
                assert!(close(*a, *b), "{kind:?} node {s}: {a} vs {b}");
            }
        }
        for (p, (a, b)) in grads.iter().zip(&full_grads).enumerate() {
            let name = &model.params.names[p];
            for (u, v) in a.data.iter().zip(&b.data) {
                assert!(close(*u, *v), "{kind:?} gradient of {name}: {u} vs {v}");
            }
        }
    }
}
