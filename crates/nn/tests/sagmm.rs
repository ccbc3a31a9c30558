//! SAGMM behaviour: variable expert counts from the learnable threshold, pruning that frees
//! parameters, and determinism under a seed.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_graph::{Csr, CsrBuilder};
use scalegnn_nn::moe::expert::ExpertForm;
use scalegnn_nn::moe::MoeConfig;
use scalegnn_nn::{Features, GraphCtx, Model, ModelConfig, ModelKind};
use scalegnn_sample::{NeighborSampler, Sampler};
use scalegnn_tensor::{Adam, Matrix, Tape};

/// 200 nodes, two classes alternating. Nodes 0..100 link to their own class (homophilic),
/// nodes 100..200 to the other class (heterophilic); features carry a weak class signal.
fn two_regimes(seed: u64) -> (Csr, Matrix, Vec<usize>) {
    let n = 200;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let y: Vec<usize> = (0..n).map(|i| i % 2).collect();
    let (mut s, mut d) = (Vec::new(), Vec::new());
    for v in 0..n {
        let (base, same) = if v < 100 { (0, true) } else { (100, false) };
        for _ in 0..4 {
            let mut u = base + rng.random_range(0..100);
            while u == v || (y[u] == y[v]) != same {
                u = base + rng.random_range(0..100);
            }
            s.push(v as u32);
            d.push(u as u32);
        }
    }
    let g = CsrBuilder::new()
        .undirected(true)
        .dedup(true)
        .build(&s, &d)
        .unwrap()
        .csr;
    let f = 8;
    let x = Matrix::from_vec(
        n,
        f,
        (0..n * f)
            .map(|k| {
                let (v, j) = (k / f, k % f);
                let signal = if j == y[v] { 0.6 } else { 0.0 };
                signal + rng.random_range(-1.0f32..1.0)
            })
            .collect(),
    );
    (g, x, y)
}

fn config(experts: usize, moe: MoeConfig) -> ModelConfig {
    ModelConfig {
        moe: MoeConfig { experts, ..moe },
        heads: 2,
        ..ModelConfig::new("sagmm".parse::<ModelKind>().unwrap(), 8, 16, 2, 2, 0.1)
    }
}

/// Trains `epochs` full-batch steps; returns the losses. `end_epoch` runs after each.
fn train(m: &mut Model, g: &Csr, x: &Features, y: &[usize], epochs: usize, seed: u64) -> Vec<f32> {
    let ctx = GraphCtx::new(g);
    let idx = Arc::new((0..y.len()).collect::<Vec<_>>());
    let labels = Arc::new(y.to_vec());
    let mut opt = Adam::new(0.02, 0.0);
    let mut tape = Tape::new(true);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut losses = Vec::new();
    for _ in 0..epochs {
        tape.reset(true);
        m.params.zero_grad();
        let out = m.forward_output(&mut tape, x, &ctx, &mut rng);
        let lp = tape.log_softmax(out.out);
        let loss = tape.nll(lp, idx.clone(), labels.clone());
        losses.push(tape.value(loss).data[0]);
        let total = out
            .aux_losses
            .into_iter()
            .fold(loss, |acc, a| tape.add(acc, a));
        tape.backward(total, &mut m.params);
        opt.step(&mut m.params);
        if let Some(rep) = m.end_epoch(0.5, true) {
            for &p in &rep.freed_params {
                opt.free(p);
            }
        }
    }
    losses
}

/// Per node, which experts serve it, from an evaluation pass.
fn selection(m: &Model, g: &Csr, x: &Features) -> Vec<u32> {
    let ctx = GraphCtx::new(g);
    let mut tape = Tape::new(false);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    m.forward(&mut tape, x, &ctx, &mut rng);
    m.moe().unwrap().last_counts()
}

#[test]
fn the_threshold_gives_nodes_of_a_two_regime_graph_variable_expert_counts() {
    let (g, x, y) = two_regimes(1);
    let x = Features::Dense(Arc::new(x));
    let moe = MoeConfig {
        prune: false,
        pool: vec![
            "gcn".parse::<ModelKind>().unwrap(),
            "sage".parse().unwrap(),
            "sgc".parse().unwrap(),
            "gin".parse().unwrap(),
        ],
        ..MoeConfig::default()
    };
    let mut m = Model::new(config(4, moe), 3).unwrap();
    // 20 epochs: the model has learned (the loss fell) and the thresholds have moved. Trained
    // much longer on this graph, every p ends above its threshold and every node uses all
    // four experts (nothing in the loss asks for fewer): seen on 5 graph seeds, 200 epochs.
    let losses = train(&mut m, &g, &x, &y, 20, 5);
    assert!(losses[19] < 0.7 * losses[0], "{losses:?}");
    let counts = selection(&m, &g, &x);
    assert_eq!(counts.len(), 200);
    assert!(counts.iter().all(|&c| (1..=4).contains(&c)), "{counts:?}");
    // Variable counts: at least two counts each serve 5 % of the nodes (a fixed top-k, or
    // every expert for every node, gives one).
    let mut hist = [0usize; 5];
    counts.iter().for_each(|&c| hist[c as usize] += 1);
    let common = hist.iter().filter(|&&h| h >= 10).count();
    assert!(common >= 2, "histogram of experts per node {hist:?}");
    // The thresholds were learned (the straight-through gradient reached τ).
    let tau = m
        .params
        .names
        .iter()
        .position(|n| n == "gate.tau")
        .expect("gate.tau");
    let moved = m.params.values[tau]
        .data
        .iter()
        .fold(0f32, |a, t| a.max(t.abs()));
    assert!(
        moved > 1e-3,
        "τ stayed at its initial 0: {:?}",
        m.params.values[tau].data
    );
}

#[test]
fn pruning_frees_parameters_and_keeps_min_experts() {
    let (g, x, y) = two_regimes(2);
    let x = Features::Dense(Arc::new(x));
    let moe = MoeConfig {
        prune_interval: 1,
        prune_factor: 0.9,
        min_experts: 2,
        ..MoeConfig::default()
    };
    let mut m = Model::new(config(5, moe), 1).unwrap();
    let before = m.params.count();
    train(&mut m, &g, &x, &y, 30, 2);
    let moe = m.moe().unwrap();
    let active = moe.active().iter().filter(|&&a| a).count();
    assert!(active >= 2, "{active} experts left");
    assert!(active < 5, "nothing was pruned with factor 0.9 every epoch");
    let mut freed = 0;
    for (e, (ex, &a)) in moe.experts.iter().zip(moe.active()).enumerate() {
        for &p in &ex.params {
            let v = &m.params.values[p];
            if a {
                assert!(v.rows * v.cols > 0, "expert {e} active but empty");
            } else {
                assert_eq!(
                    (v.rows, v.cols),
                    (0, 0),
                    "pruned expert {e} still holds its weights"
                );
                assert!(!m.params.trainable[p]);
                freed += ex.params.len();
            }
        }
    }
    assert!(freed > 0);
    assert!(
        m.params.count() < before,
        "{} vs {before}",
        m.params.count()
    );
    assert_eq!(m.config.moe.pruned.len(), 5 - active);
    // The pruned mixture still predicts every node.
    let ctx = GraphCtx::new(&g);
    let mut tape = Tape::new(false);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    let out = m.forward(&mut tape, &x, &ctx, &mut rng);
    assert_eq!((tape.value(out).rows, tape.value(out).cols), (200, 2));
    // A model built with that pruned list has the same parameters (a checkpoint reloads).
    let again = Model::new(m.config.clone(), 1).unwrap();
    assert_eq!(again.params.count(), m.params.count());
}

#[test]
fn checked_pruning_keeps_a_candidate_whose_removal_costs_validation_accuracy() {
    let (g, x, y) = two_regimes(4);
    let x = Features::Dense(Arc::new(x));
    let moe = MoeConfig {
        prune_interval: 4,
        prune_factor: 0.9,
        min_experts: 1,
        ..MoeConfig::default()
    };
    let mut m = Model::new(config(5, moe), 1).unwrap();
    // Three epochs (no pruning decision yet), then a fourth training pass by hand so its
    // end is the pruning decision.
    train(&mut m, &g, &x, &y, 3, 4);
    let ctx = GraphCtx::new(&g);
    let mut tape = Tape::new(true);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    m.forward(&mut tape, &x, &ctx, &mut rng);
    // The first candidate tried is made essential: the mixture without it "scores" 0.
    let mut calls: Vec<Vec<usize>> = Vec::new();
    let mut poison = None;
    let rep = m
        .end_epoch_checked(0.5, true, |model| {
            let active = model.moe().unwrap().active();
            let masked: Vec<usize> = (0..active.len()).filter(|&e| !active[e]).collect();
            let first = *poison.get_or_insert(masked[0]);
            calls.push(masked.clone());
            if masked.contains(&first) {
                0.0
            } else {
                0.5
            }
        })
        .unwrap();
    let first = poison.expect("no pruning candidate with factor 0.9: the test needs one");
    assert_eq!(rep.kept, vec![first]);
    assert_eq!(rep.pruned.len() + 1, calls.len(), "{calls:?}");
    assert!(!rep.pruned.contains(&first));
    // Each later candidate was measured without the kept one masked, on top of those
    // accepted before it.
    for (k, masked) in calls.iter().enumerate().skip(1) {
        assert!(!masked.contains(&first), "{calls:?}");
        assert_eq!(masked.len(), k, "{calls:?}");
    }
    let moe = m.moe().unwrap();
    assert!(moe.active()[first]);
    for &e in &rep.pruned {
        assert!(!moe.active()[e]);
        let p = moe.experts[e].params[0];
        assert_eq!(
            m.params.values[p].rows, 0,
            "pruned expert {e} kept its weights"
        );
    }
    assert_eq!(m.config.moe.pruned, rep.pruned);
}

#[test]
fn the_same_seed_gives_the_same_run_and_another_seed_another() {
    let (g, x, y) = two_regimes(3);
    let x = Features::Dense(Arc::new(x));
    let run = |seed: u64| {
        let mut m = Model::new(config(8, MoeConfig::default()), seed).unwrap();
        train(&mut m, &g, &x, &y, 6, seed)
    };
    let (a, b, c) = (run(4), run(4), run(5));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn expert_supervision_scores_each_active_expert_in_training_only() {
    let (g, x, y) = two_regimes(5);
    let x = Features::Dense(Arc::new(x));
    let ctx = GraphCtx::new(&g);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    let supervised = MoeConfig {
        expert_loss: 0.6,
        ..MoeConfig::default()
    };
    let m = Model::new(config(3, supervised.clone()), 1).unwrap();
    let mut tape = Tape::new(true);
    let out = m.forward_output(&mut tape, &x, &ctx, &mut rng);
    // One set of logits per expert, shaped like the mixture's, weighted to a mean.
    assert_eq!(out.aux_outputs.len(), 3);
    for &(z, w) in &out.aux_outputs {
        assert_eq!(tape.value(z).rows, tape.value(out.out).rows);
        assert_eq!(tape.value(z).cols, 2);
        assert!((w - 0.2).abs() < 1e-6, "{w}");
    }
    // None in evaluation, none when the weight is 0.
    let mut eval = Tape::new(false);
    let out = m.forward_output(&mut eval, &x, &ctx, &mut rng);
    assert!(out.aux_outputs.is_empty() && out.aux_losses.is_empty());
    let off = MoeConfig {
        expert_loss: 0.0,
        ..MoeConfig::default()
    };
    let plain = Model::new(config(3, off), 1).unwrap();
    let mut t = Tape::new(true);
    assert!(plain
        .forward_output(&mut t, &x, &ctx, &mut rng)
        .aux_outputs
        .is_empty());
    // Pruned experts are not scored: the weight is shared by those left.
    let pruning = MoeConfig {
        expert_loss: 0.6,
        prune_interval: 1,
        prune_factor: 0.9,
        min_experts: 2,
        ..MoeConfig::default()
    };
    let mut p = Model::new(config(5, pruning), 1).unwrap();
    train(&mut p, &g, &x, &y, 30, 2);
    let active = p.moe().unwrap().active().iter().filter(|&&a| a).count();
    assert!(active < 5, "nothing was pruned");
    let mut t = Tape::new(true);
    let out = p.forward_output(&mut t, &x, &ctx, &mut rng);
    assert_eq!(out.aux_outputs.len(), active);
    let share = 0.6 / active as f32;
    assert!(out
        .aux_outputs
        .iter()
        .all(|&(_, w)| (w - share).abs() < 1e-6));
    // The experts' own losses reach the expert weights: two steps on them alone (the head
    // starts at zero, so the first moves only the head) change every expert's parameters.
    let mut m = Model::new(config(3, supervised), 1).unwrap();
    let before = m.params.values.clone();
    let idx = Arc::new((0..y.len()).collect::<Vec<_>>());
    let labels = Arc::new(y.clone());
    let mut opt = Adam::new(0.01, 0.0);
    for _ in 0..2 {
        let mut tape = Tape::new(true);
        m.params.zero_grad();
        let out = m.forward_output(&mut tape, &x, &ctx, &mut rng);
        let lp = tape.log_softmax(out.out);
        let task = tape.nll(lp, idx.clone(), labels.clone());
        // The mixture's own loss counts for nothing: only the experts' losses move weights.
        let none = tape.scale(task, 0.0);
        assert_eq!(out.aux_outputs.len(), 3);
        let total = out.aux_outputs.into_iter().fold(none, |acc, (z, w)| {
            let lp = tape.log_softmax(z);
            let l = tape.nll(lp, idx.clone(), labels.clone());
            let l = tape.scale(l, w);
            tape.add(acc, l)
        });
        assert!(tape.value(total).data[0] > 0.0);
        tape.backward(total, &mut m.params);
        opt.step(&mut m.params);
    }
    let moe = m.moe().unwrap();
    for (e, ex) in moe.experts.iter().enumerate() {
        let changed = ex
            .params
            .iter()
            .any(|&p| m.params.values[p].data != before[p].data);
        assert!(changed, "expert {e} got no gradient from its own loss");
    }
}

/// A standalone-form mixture of `pool` (experts as the registry's own models).
fn standalone(pool: &[&str], hops: usize) -> ModelConfig {
    let moe = MoeConfig {
        pool: pool.iter().map(|n| n.parse().unwrap()).collect(),
        form: ExpertForm::Standalone,
        ..MoeConfig::default()
    };
    ModelConfig {
        hops,
        ..config(pool.len(), moe)
    }
}

#[test]
fn a_standalone_expert_alone_is_the_model_of_its_name() {
    let (g, x, _) = two_regimes(3);
    let x = Features::Dense(Arc::new(x));
    let ctx = GraphCtx::new(&g);
    for name in ["gcn", "sage", "gat", "sgc", "gin", "mlp"] {
        let mut mix = Model::new(standalone(&[name], 2), 1).unwrap();
        let plain_cfg = ModelConfig {
            kind: name.parse().unwrap(),
            ..standalone(&[name], 2)
        };
        let plain = Model::new(plain_cfg, 2).unwrap();
        // The mixture owns exactly the model's parameters, under the expert's prefix, and
        // no head of its own (the expert gives the logits).
        assert_eq!(
            mix.params.names.len(),
            plain.params.names.len() + 4,
            "{name}"
        );
        assert!(
            mix.params
                .names
                .iter()
                .all(|n| n.starts_with(&format!("expert0.{name}.")) || n.starts_with("gate.")),
            "{name}: {:?}",
            mix.params.names
        );
        for (i, n) in plain.params.names.iter().enumerate() {
            let j = mix
                .params
                .names
                .iter()
                .position(|m| *m == format!("expert0.{name}.{n}"))
                .unwrap_or_else(|| panic!("{name}: no expert0.{name}.{n}"));
            mix.params.values[j] = plain.params.values[i].clone();
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
        let mut t = Tape::new(false);
        let a = mix.forward(&mut t, &x, &ctx, &mut rng);
        let b = plain.forward(&mut t, &x, &ctx, &mut rng);
        let (a, b) = (t.value(a), t.value(b));
        assert_eq!((a.rows, a.cols), (b.rows, b.cols), "{name}");
        let diff = a
            .data
            .iter()
            .zip(&b.data)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "{name}: the lone expert differs by {diff}");
    }
}

#[test]
fn standalone_experts_of_different_depths_serve_a_sampled_batch_as_the_whole_graph() {
    let (g, x, _) = two_regimes(4);
    // With one hop SGC takes one block and GCN two: the SGC expert runs on the batch's last
    // block only.
    let m = Model::new(standalone(&["sgc", "gcn"], 1), 5).unwrap();
    let depths: Vec<usize> = m
        .moe()
        .unwrap()
        .experts
        .iter()
        .map(|e| e.num_blocks())
        .collect();
    assert_eq!(depths, vec![1, 2]);
    let (gate, _) = scalegnn_nn::moe::gate_input::gate_features(&g, &x, 8, 50, 0).unwrap();
    let gate = Arc::new(gate);
    let full_ctx = GraphCtx::new(&g).with_gate_input(gate.clone());
    let xf = Features::Dense(Arc::new(x.clone()));
    let mut t = Tape::new(false);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    let full = m.forward(&mut t, &xf, &full_ctx, &mut rng);
    let full = t.value(full).clone();

    // Every node a seed: the gate's linear attention sums over the rows it scores, so only
    // the same rows give the same weights.
    let seeds: Vec<u32> = (0..200).rev().collect();
    let sampler = NeighborSampler::full(&g, 2).unwrap();
    let batch = sampler.sample(&seeds, 0).unwrap();
    let mut xb = Matrix::zeros(batch.nodes.len(), x.cols);
    for (r, &v) in batch.nodes.iter().enumerate() {
        xb.row_mut(r).copy_from_slice(x.row(v as usize));
    }
    let mut gb = Matrix::zeros(seeds.len(), gate.cols);
    for (r, &v) in seeds.iter().enumerate() {
        gb.row_mut(r).copy_from_slice(gate.row(v as usize));
    }
    let ctx = GraphCtx::from_batch(&g, batch).with_gate_input(Arc::new(gb));
    let out = m.forward(&mut t, &Features::Dense(Arc::new(xb)), &ctx, &mut rng);
    let out = t.value(out);
    assert_eq!(out.rows, seeds.len());
    for (r, &v) in seeds.iter().enumerate() {
        for (a, b) in out.row(r).iter().zip(full.row(v as usize)) {
            assert!((a - b).abs() < 1e-4, "node {v}: batch {a}, whole graph {b}");
        }
    }
}
