//! Mini-batch node classification on sampled blocks: a worker thread samples batch N+1 and
//! gathers its features from the feature store while batch N trains (bounded queue), the
//! loss reads the seed nodes only, and every epoch reports where its time went.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, sync_channel};
use std::sync::Arc;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_data::{Dataset, Labels};
use scalegnn_graph::Csr;
use scalegnn_nn::{Features, GraphCtx, Model, ModelKind};
use scalegnn_sample::{NeighborSampler, Sampler};
use scalegnn_store::FeatureStore;
use scalegnn_tensor::{Adam, Matrix, Tape};
use serde::Serialize;

use crate::{
    accuracy_of, layerwise_logits, Checkpoint, MetricsLog, RunSummary, TrainConfig, TrainError,
};

/// How mini-batches are drawn and pipelined.
#[derive(Debug, Clone, PartialEq)]
pub struct MiniBatchConfig {
    /// Neighbours drawn per hop, seeds' hop first (PyG's `num_neighbors`); -1 = all.
    pub fanouts: Vec<i64>,
    pub batch_size: usize,
    /// Fan-outs for validation/test batches (default: `fanouts`).
    pub eval_fanouts: Option<Vec<i64>>,
    pub eval_batch_size: usize,
    /// Evaluate on at most this many validation (and test) nodes, a fixed random subset.
    pub eval_max: Option<usize>,
    /// Prepared batches waiting in the queue (sampled, features gathered).
    pub prefetch: usize,
    /// Stop each epoch after this many training batches (profiling, benchmarks).
    pub max_batches: Option<usize>,
    /// Threads of the prefetch worker's own pool (sampling and feature gather). Separate
    /// from the compute pool so a gather blocked on disk never holds a compute thread:
    /// sharing one pool, out-of-core page faults quadrupled the products compute time.
    /// More threads than cores keep more reads in flight when features come from disk.
    pub io_threads: usize,
    /// Final validation and test accuracy by exact layer-wise inference over full
    /// neighbourhoods (every layer for every node) instead of sampled batches.
    pub exact_eval: bool,
    /// Where SAGMM's gate input is kept (built there on first use; default: the run
    /// directory, or a temporary one).
    pub gate_dir: Option<PathBuf>,
}

impl Default for MiniBatchConfig {
    /// PyG's products recipe: fan-outs 15, 10, 5 and 1024 seeds per batch.
    fn default() -> Self {
        MiniBatchConfig {
            fanouts: vec![15, 10, 5],
            batch_size: 1024,
            eval_fanouts: None,
            eval_batch_size: 4096,
            eval_max: None,
            prefetch: 2,
            max_batches: None,
            io_threads: 4,
            exact_eval: false,
            gate_dir: None,
        }
    }
}

/// Labels and splits of a node-classification dataset, without its features (they stay in
/// the feature store).
pub struct NodeSplits {
    pub labels: Vec<u32>,
    pub num_classes: usize,
    pub train: Vec<u32>,
    pub val: Vec<u32>,
    pub test: Vec<u32>,
}

impl NodeSplits {
    /// Reads labels and the three splits, with errors naming what is missing.
    pub fn from_dataset(ds: &Dataset) -> Result<NodeSplits, TrainError> {
        let err = |reason: String| TrainError::Dataset {
            path: ds.dir.clone(),
            reason,
        };
        let y = match &ds.y {
            Some(Labels::Classes(y)) => y,
            Some(Labels::Targets(_)) => {
                return Err(err("has regression targets, not class labels".into()))
            }
            None => {
                return Err(err(
                    "has no node labels (y.npy); node classification needs them".into(),
                ))
            }
        };
        let num_classes = ds.manifest.num_classes.max(1) as usize;
        if let Some(bad) = y.iter().find(|&&c| c < 0 || c as usize >= num_classes) {
            return Err(err(format!(
                "label {bad} is outside 0..{num_classes} (y.npy)"
            )));
        }
        let split = |a: &Option<scalegnn_npy::Array<i64>>, name: &str| {
            let a = a.as_ref().ok_or_else(|| {
                err(format!(
                    "has no {name}_idx.npy; ingest with --split to make one"
                ))
            })?;
            Ok::<_, TrainError>(a.iter().map(|&i| i as u32).collect::<Vec<u32>>())
        };
        Ok(NodeSplits {
            labels: y.iter().map(|&c| c as u32).collect(),
            num_classes,
            train: split(&ds.train_idx, "train")?,
            val: split(&ds.val_idx, "val")?,
            test: split(&ds.test_idx, "test")?,
        })
    }
}

/// Where one epoch's (or one evaluation's) time went, in milliseconds, and what it moved.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StageTimes {
    pub batches: usize,
    pub seeds: usize,
    /// Worker: neighbour sampling.
    pub sample_ms: f64,
    /// Worker: feature gather from the store (decode included).
    pub fetch_ms: f64,
    /// Worker: building the blocks' propagation matrices.
    pub prepare_ms: f64,
    /// Trainer: forward, backward, optimizer step.
    pub compute_ms: f64,
    /// Trainer: waiting for the next prepared batch.
    pub wait_ms: f64,
    /// Wall time of the whole pass.
    pub wall_ms: f64,
    pub sampled_nodes: usize,
    pub sampled_edges: usize,
    pub bytes_read: u64,
}

impl StageTimes {
    /// Seeds per second of wall time.
    pub fn seeds_per_s(&self) -> f64 {
        self.seeds as f64 / (self.wall_ms / 1e3).max(1e-9)
    }

    /// Adds the per-batch figures of `o`.
    pub fn add(&mut self, o: &StageTimes) {
        self.batches += o.batches;
        self.seeds += o.seeds;
        self.sample_ms += o.sample_ms;
        self.fetch_ms += o.fetch_ms;
        self.prepare_ms += o.prepare_ms;
        self.compute_ms += o.compute_ms;
        self.wait_ms += o.wait_ms;
        self.wall_ms += o.wall_ms;
        self.sampled_nodes += o.sampled_nodes;
        self.sampled_edges += o.sampled_edges;
        self.bytes_read += o.bytes_read;
    }
}

/// A batch ready for the trainer: its blocks, input features and seed labels.
pub struct Prepared<'g> {
    pub graph: GraphCtx<'g>,
    pub x: Features,
    pub num_seeds: usize,
    /// Labels of the seeds, in seed order.
    pub labels: Arc<Vec<usize>>,
    pub times: StageTimes,
}

/// Everything a pass over mini-batches reads.
pub struct BatchSource<'a> {
    pub graph: &'a Csr,
    pub store: &'a dyn FeatureStore,
    pub labels: &'a [u32],
    pub kind: ModelKind,
    /// Threads of the prefetch worker's pool (see `MiniBatchConfig::io_threads`).
    pub io_threads: usize,
    /// SAGMM's gate input per node; each batch gathers its seeds' rows.
    pub gate: Option<&'a dyn FeatureStore>,
}

impl BatchSource<'_> {
    /// Runs `step` on every chunk of `seeds`, sampling and gathering on a worker thread
    /// `depth` batches ahead. Feature buffers come back from `step` and are reused, so the
    /// steady state allocates no new feature memory. Returns the pass's stage times.
    pub fn run(
        &self,
        sampler: &dyn Sampler,
        seeds: &[u32],
        batch_size: usize,
        depth: usize,
        seed: u64,
        step: &mut dyn FnMut(Prepared) -> Result<Matrix, TrainError>,
    ) -> Result<StageTimes, TrainError> {
        let t_start = Instant::now();
        let bytes0 = self.store.bytes_read();
        let dim = self.store.dim();
        let mut total = StageTimes::default();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.io_threads.max(1))
            .thread_name(|i| format!("prefetch-{i}"))
            .build()
            .map_err(|e| TrainError::Config(format!("starting the prefetch threads: {e}")))?;
        let pool = &pool;
        std::thread::scope(|s| -> Result<(), TrainError> {
            let (tx, rx) = sync_channel::<Result<Prepared, TrainError>>(depth.max(1));
            let (free_tx, free_rx) = channel::<Matrix>();
            s.spawn(move || {
                for (k, chunk) in seeds.chunks(batch_size.max(1)).enumerate() {
                    let recycled = free_rx.try_recv().ok();
                    let prepared = pool.install(|| {
                        self.prepare(sampler, chunk, seed ^ ((k as u64) << 1), dim, recycled)
                    });
                    let failed = prepared.is_err();
                    if tx.send(prepared).is_err() || failed {
                        break;
                    }
                }
            });
            loop {
                let t0 = Instant::now();
                let Ok(prepared) = rx.recv() else { break };
                let wait = t0.elapsed().as_secs_f64() * 1e3;
                let mut p = prepared?;
                p.times.wait_ms = wait;
                let t1 = Instant::now();
                let times = std::mem::take(&mut p.times);
                let buf = step(p)?;
                total.add(&StageTimes {
                    compute_ms: t1.elapsed().as_secs_f64() * 1e3,
                    ..times
                });
                // The worker may have finished; a closed channel only means no reuse.
                let _ = free_tx.send(buf);
            }
            Ok(())
        })?;
        total.wall_ms = t_start.elapsed().as_secs_f64() * 1e3;
        total.bytes_read = self.store.bytes_read() - bytes0;
        Ok(total)
    }

    /// Samples one batch, gathers its features into a recycled buffer and builds the
    /// propagation matrices the model will ask for.
    fn prepare<'g>(
        &'g self,
        sampler: &dyn Sampler,
        seeds: &[u32],
        seed: u64,
        dim: usize,
        recycled: Option<Matrix>,
    ) -> Result<Prepared<'g>, TrainError> {
        let t0 = Instant::now();
        let batch = sampler
            .sample(seeds, seed)
            .map_err(|e| TrainError::Sample(e.to_string()))?;
        let t1 = Instant::now();
        let n = batch.nodes.len();
        let mut buf = recycled.unwrap_or_else(|| Matrix::zeros(0, 0));
        buf.rows = n;
        buf.cols = dim;
        // Every element is overwritten by the gather; resizing only grows the buffer.
        buf.data.resize(n * dim, 0.0);
        self.store.gather(&batch.nodes, &mut buf.data)?;
        let t2 = Instant::now();
        let labels: Vec<usize> = batch.nodes[..batch.num_seeds]
            .iter()
            .map(|&v| self.labels[v as usize] as usize)
            .collect();
        let (num_seeds, edges) = (batch.num_seeds, batch.num_edges());
        let mut graph = GraphCtx::from_batch(self.graph, batch);
        if let Some(g) = self.gate {
            let mut m = Matrix::zeros(num_seeds, g.dim());
            g.gather(&seeds[..num_seeds], &mut m.data)?;
            graph = graph.with_gate_input(Arc::new(m));
        }
        graph.prepare(self.kind);
        let t3 = Instant::now();
        Ok(Prepared {
            graph,
            x: Features::Dense(Arc::new(buf)),
            num_seeds,
            labels: Arc::new(labels),
            times: StageTimes {
                batches: 1,
                seeds: num_seeds,
                sample_ms: (t1 - t0).as_secs_f64() * 1e3,
                fetch_ms: (t2 - t1).as_secs_f64() * 1e3,
                prepare_ms: (t3 - t2).as_secs_f64() * 1e3,
                sampled_nodes: n,
                sampled_edges: edges,
                ..StageTimes::default()
            },
        })
    }
}

/// One training step on a prepared batch; returns the task loss, or the non-finite total loss
/// when the step was skipped.
pub fn train_step(
    model: &mut Model,
    opt: &mut Adam,
    tape: &mut Tape,
    p: &Prepared,
    rng: &mut Xoshiro256PlusPlus,
) -> f32 {
    tape.reset(true);
    model.params.zero_grad();
    let logits = model.forward(tape, &p.x, &p.graph, rng);
    let lp = tape.log_softmax(logits);
    let rows = Arc::new((0..p.num_seeds).collect::<Vec<usize>>());
    let loss = tape.nll(lp, rows.clone(), p.labels.clone());
    let loss_v = tape.value(loss).data[0];
    // SAGMM's load-balance and diversity terms and its experts' own logits (none for the
    // other models).
    let loss = tape.with_aux_losses(loss);
    let loss = tape.with_aux_logits(loss, None, &rows, &p.labels);
    // A non-finite total (the task loss or an expert's own) skips the step and is returned,
    // so the caller stops with its NaN error.
    let total_v = tape.value(loss).data[0];
    if !total_v.is_finite() {
        return total_v;
    }
    tape.backward_freeing(loss, &mut model.params);
    opt.step(&mut model.params);
    model.update_stats(tape);
    loss_v
}

/// Accuracy of `model` on `nodes` with sampled neighbourhoods (no dropout), and the pass's
/// stage times.
pub fn evaluate_sampled(
    model: &Model,
    src: &BatchSource,
    sampler: &dyn Sampler,
    nodes: &[u32],
    mb: &MiniBatchConfig,
    tape: &mut Tape,
) -> Result<(f64, StageTimes), TrainError> {
    let mut correct = 0usize;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    let times = src.run(
        sampler,
        nodes,
        mb.eval_batch_size,
        mb.prefetch,
        0xE7A1,
        &mut |p| {
            tape.reset(false);
            let logits = model.forward(tape, &p.x, &p.graph, &mut rng);
            let pred = tape.value(logits).argmax_rows();
            correct += pred
                .iter()
                .zip(p.labels.iter())
                .filter(|(a, b)| a == b)
                .count();
            tape.reset(false);
            Ok(p.x.into_buffer())
        },
    )?;
    Ok((correct as f64 / nodes.len().max(1) as f64, times))
}

/// A fixed random subset of at most `max` of `nodes` (all of them when `max` is `None`).
fn subset(nodes: &[u32], max: Option<usize>, seed: u64) -> Vec<u32> {
    let mut v = nodes.to_vec();
    if let Some(m) = max.filter(|&m| m < v.len()) {
        v.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
        v.truncate(m);
    }
    v
}

/// Refuses a model that cannot run on sampled blocks, or fan-outs that do not give one hop
/// per propagation step of the model.
pub fn check_blocks(model: &Model, mb: &MiniBatchConfig) -> Result<(), TrainError> {
    if !model.supports_blocks() {
        return Err(TrainError::Config(format!(
            "model {} does not train on sampled blocks yet; use loader = \"full\"",
            model.config.kind.name()
        )));
    }
    let blocks = model.config.num_blocks();
    if mb.fanouts.len() != blocks {
        let per = model.config.kind.blocks_per_layer(model.config.hops);
        return Err(TrainError::Config(if per == 1 {
            format!(
                "fanouts has {} hops but the model has {} layers; give one fan-out per layer",
                mb.fanouts.len(),
                model.config.layers
            )
        } else {
            format!(
                "fanouts has {} hops but {} takes {blocks} propagation steps ({} per layer, hops = {}); give one fan-out per step",
                mb.fanouts.len(),
                model.config.kind.name(),
                per,
                model.config.hops
            )
        }));
    }
    if mb.exact_eval && !model.supports_layerwise() {
        return Err(TrainError::Config(format!(
            "exact_eval: model {} cannot run layer by layer (gcn, sage, gin and mlp can); evaluate with sampled batches (eval_fanouts = -1 for full neighbourhoods)",
            model.config.kind.name()
        )));
    }
    Ok(())
}

/// Trains on sampled mini-batches; validation after every epoch keeps the best model (and
/// checkpoint); the last `test` metric line is the test accuracy at the best epoch.
#[allow(clippy::too_many_arguments)] // the run's inputs, each distinct
pub fn train_minibatch(
    graph: &Csr,
    store: &dyn FeatureStore,
    splits: &NodeSplits,
    cfg: &TrainConfig,
    mb: &MiniBatchConfig,
    log: &mut MetricsLog,
    run_dir: Option<&Path>,
    on_epoch: &mut dyn FnMut(usize, f64, f64, &StageTimes),
) -> Result<(Model, RunSummary), TrainError> {
    let mcfg = cfg.model_config(store.dim(), splits.num_classes);
    let mut model = Model::new(mcfg, cfg.seed)?;
    check_blocks(&model, mb)?;
    let sampler =
        NeighborSampler::new(graph, &mb.fanouts).map_err(|e| TrainError::Config(e.to_string()))?;
    let eval_fanouts = mb
        .eval_fanouts
        .clone()
        .unwrap_or_else(|| mb.fanouts.clone());
    let eval_sampler = NeighborSampler::new(graph, &eval_fanouts)
        .map_err(|e| TrainError::Config(e.to_string()))?;
    // SAGMM's gate input, built once per dataset and gathered per batch.
    let gate = match model.moe() {
        Some(_) => {
            let dir = mb.gate_dir.clone().unwrap_or_else(|| {
                run_dir
                    .map(Path::to_path_buf)
                    .unwrap_or_else(std::env::temp_dir)
                    .join(format!("sagmm_gate_k{}", cfg.moe.eig_k))
            });
            let (g, worst) =
                scalegnn_loader::derived::gate_store(&dir, graph, store, cfg.moe.eig_k)
                    .map_err(|e| TrainError::Config(e.to_string()))?;
            if let Some(r) = worst {
                log.push(0, crate::sagmm::SPLIT, "eig_residual_max", r)?;
            }
            Some(g)
        }
        None => None,
    };
    let src = BatchSource {
        graph,
        store,
        labels: &splits.labels,
        kind: cfg.model,
        io_threads: mb.io_threads,
        gate: gate.as_ref().map(|g| g as &dyn FeatureStore),
    };
    let val = subset(&splits.val, mb.eval_max, 1);
    let test = subset(&splits.test, mb.eval_max, 2);
    let mut opt = Adam::new(cfg.lr, cfg.weight_decay);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed ^ 0x5EED);
    let mut tape = Tape::new(true);
    let mut best = (0usize, -1.0f64);
    let mut best_params = model.params.values.clone();
    let mut since_best = 0usize;
    let mut epoch_ms = Vec::new();
    let mut epochs_run = 0;
    let t_run = Instant::now();
    for epoch in 1..=cfg.epochs {
        let mut order = splits.train.clone();
        order.shuffle(&mut rng);
        if let Some(m) = mb.max_batches {
            order.truncate(m * mb.batch_size);
        }
        let (mut loss_sum, mut loss_n) = (0.0f64, 0usize);
        let mut nan = None;
        store.reset_cache_stats();
        let times = src.run(
            &sampler,
            &order,
            mb.batch_size,
            mb.prefetch,
            cfg.seed.wrapping_mul(1_000_003) ^ epoch as u64,
            &mut |p| {
                let loss = train_step(&mut model, &mut opt, &mut tape, &p, &mut rng);
                if !loss.is_finite() {
                    nan = Some(loss);
                }
                loss_sum += loss as f64;
                loss_n += 1;
                tape.reset(true);
                Ok(p.x.into_buffer())
            },
        )?;
        if let Some(value) = nan {
            log.flush()?;
            return Err(TrainError::NanLoss { epoch, value });
        }
        epoch_ms.push(times.wall_ms);
        epochs_run = epoch;
        let loss = loss_sum / loss_n.max(1) as f64;
        log.push(epoch, "train", "loss", loss)?;
        for (name, v) in [
            ("sample_ms", times.sample_ms),
            ("fetch_ms", times.fetch_ms),
            ("compute_ms", times.compute_ms),
            ("wait_ms", times.wait_ms),
            ("epoch_s", times.wall_ms / 1e3),
            ("seeds_per_s", times.seeds_per_s()),
            ("bytes_read", times.bytes_read as f64),
        ] {
            log.push(epoch, "train", name, v)?;
        }
        if let Some(cs) = store.cache_stats() {
            log.push(epoch, "train", "cache_hit_rate", cs.hit_rate())?;
            log.push(epoch, "train", "cache_rows_fetched", cs.rows_fetched as f64)?;
            log.push(epoch, "train", "cache_miss_fetch_ms", cs.mean_fetch_ms())?;
        }
        let t_eval = Instant::now();
        let (va, _) = evaluate_sampled(&model, &src, &eval_sampler, &val, mb, &mut tape)?;
        let eval_ms = t_eval.elapsed().as_secs_f64() * 1e3;
        log.push(epoch, "val", "acc", va)?;
        if va > best.1 {
            best = (epoch, va);
            since_best = 0;
            best_params.clone_from(&model.params.values);
            if let Some(dir) = run_dir {
                Checkpoint::save(&dir.join("checkpoint"), &model, epoch, va)?;
            }
        } else {
            since_best += 1;
        }
        // No pruning at the last epoch (see the full-batch trainer).
        if let Some(rep) = model.end_epoch(va, epoch < cfg.epochs) {
            crate::sagmm::log_epoch(log, epoch, &model, &rep, eval_ms)?;
            for &p in &rep.freed_params {
                opt.free(p);
            }
            if !rep.pruned.is_empty() {
                // The mixture shrank: selection restarts, and until a later epoch does better
                // the kept model is the pruned one (its test accuracy is measured at the end).
                best = (epoch, -1.0);
                since_best = 0;
                best_params.clone_from(&model.params.values);
            }
        }
        log.flush()?;
        on_epoch(epoch, loss, va, &times);
        if cfg.patience.is_some_and(|p| since_best >= p) {
            break;
        }
    }
    let last_params = std::mem::replace(&mut model.params.values, best_params);
    let scratch = run_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let test_of = |model: &Model, tape: &mut Tape| -> Result<f64, TrainError> {
        if mb.exact_eval {
            let logits =
                layerwise_logits(model, graph, store, &test, mb.eval_batch_size, &scratch)?;
            Ok(accuracy_of(&logits, &test, &splits.labels))
        } else {
            Ok(evaluate_sampled(model, &src, &eval_sampler, &test, mb, tape)?.0)
        }
    };
    if let Some(m) = model.moe() {
        m.reset_histogram();
    }
    let test_acc = test_of(&model, &mut tape)?;
    // The histogram covers the test nodes' batches of the kept model.
    crate::sagmm::finish(log, epochs_run, &model, t_run.elapsed(), run_dir)?;
    let final_test_acc = {
        let best_params = std::mem::replace(&mut model.params.values, last_params);
        let t = test_of(&model, &mut tape)?;
        model.params.values = best_params;
        t
    };
    if mb.exact_eval {
        let logits = layerwise_logits(&model, graph, store, &val, mb.eval_batch_size, &scratch)?;
        log.push(
            best.0,
            "val",
            "exact_acc",
            accuracy_of(&logits, &val, &splits.labels),
        )?;
    }
    log.push(best.0, "test", "acc", test_acc)?;
    log.flush()?;
    let summary = RunSummary {
        best_epoch: best.0,
        best_val_acc: best.1,
        test_acc,
        final_test_acc,
        epochs_run,
        mean_epoch_ms: epoch_ms.iter().sum::<f64>() / epoch_ms.len().max(1) as f64,
        num_params: model.params.count(),
    };
    Ok((model, summary))
}
