//! `train`: a whole training command — settings checked and the dataset, task, features,
//! loaders and memory plan set up *before* the run directory is made; then one run per seed
//! (and official split), each resumable, and the summary. The CLI and the Python package
//! call this; they only parse arguments and print.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use scalegnn_data::{Dataset, OpenOptions};
use scalegnn_graph::Csr;
use scalegnn_loader::{
    derived, plan, ClusterBatches, FullGraph, GraphBatches, LinkBatches, LinkSource, Loader,
    PlanInputs, Sampled,
};
use scalegnn_nn::{Features, Model};
use scalegnn_sample::{ClusterSampler, NeighborSampler};
use scalegnn_store::{Codec, FeatureStore, MemoryBudget, MmapStore, StoreOptions};
use scalegnn_tensor::{Adam, Matrix};

use crate::callbacks::{Callback, ModelSelection, Progress, Sagmm};
use crate::config::LoaderKind;
use crate::link::{link_data, LinkData, LinkPrediction};
use crate::state::{self, Saver};
use crate::trainer::{Best, EpochEnd, Evaluator, ExactEval, Outcome, State, Trainer};
use crate::{node_task, MetricsLog, RunConfig, RunDir, RunSummary, Splits, Task, TrainError};

/// Feature density below which the first layer multiplies only non-zeros: on Cora (1.3 %
/// non-zero) that cut the GCN epoch from 23.5 ms to a few ms; dense GEMM wins above ~25 %.
const SPARSE_MAX_DENSITY: f64 = 0.25;

/// SAGMM's default expert pool for link prediction (the SAGMM paper's link pool).
const LINK_POOL: [&str; 4] = ["gcn", "sage", "jk", "sgc"];

/// SAGMM's default experts for graph-level tasks (issue 15: GCN, GIN, SAGE, GAT).
const GRAPH_POOL: [&str; 4] = ["gcn", "gin", "sage", "gat"];

/// How a `train` command runs besides its configuration.
pub struct RunOptions<'a> {
    pub out: PathBuf,
    /// Replace `out` when it holds an earlier run.
    pub force: bool,
    /// Continue the run in `out` (its config.toml) from its saved state.
    pub resume: bool,
    /// Verify the dataset's checksums and ranges on open.
    pub verify: bool,
    /// Set (by a SIGINT handler) to stop at the next batch boundary.
    pub interrupt: Option<&'a AtomicBool>,
}

/// What the caller is told while a command runs.
pub trait Reporter {
    /// A remark worth a line (the memory plan, a derived setting).
    fn note(&mut self, msg: &str);
    /// A run begins (`from_epoch` > 0 when resumed).
    fn run_start(&mut self, run: usize, seed: u64, epochs: usize, from_epoch: usize);
    /// An epoch ended.
    fn epoch(&mut self, e: &EpochEnd, s: &State);
    /// A run ended.
    fn run_end(&mut self, seed: u64, s: &RunSummary);
}

/// A reporter that says nothing (tests, the demo, library callers).
pub struct Silent;

impl Reporter for Silent {
    fn note(&mut self, _: &str) {}
    fn run_start(&mut self, _: usize, _: u64, _: usize, _: usize) {}
    fn epoch(&mut self, _: &EpochEnd, _: &State) {}
    fn run_end(&mut self, _: u64, _: &RunSummary) {}
}

/// How a command ended.
pub enum TrainOutcome {
    /// Every run finished: their summaries, in order.
    Done(Vec<(u64, RunSummary)>),
    /// Stopped by the user during run `run`, after `epoch` whole epochs.
    Interrupted { run: usize, epoch: usize },
}

/// Everything a run needs that comes from the configuration and the dataset, made before
/// anything is written.
pub struct Setup {
    /// The configuration as the run directory records it: every applicable key resolved,
    /// the dataset, store, codec and metric filled in.
    pub cfg: RunConfig,
    pub ds: Dataset,
    pub metric: &'static str,
    /// Official splits the dataset holds.
    pub split_count: usize,
    /// Whole-graph features (loader full).
    pub features: Option<Features>,
    /// The store behind its cache (loader neighbor).
    pub store: Option<Box<dyn FeatureStore>>,
    pub prefetch: usize,
    /// SAGMM's gate input (loader neighbor).
    pub gate: Option<MmapStore>,
    /// Link prediction's pairs, splits and message-passing graph (task link).
    pub link: Option<LinkData>,
    /// The dataset's edge features (edge_attr.npy), when the model reads them.
    pub edge_attr: Option<scalegnn_npy::Array<f32>>,
    /// ClusterGCN (loader cluster): the nodes of each partition cluster.
    pub clusters: Option<Vec<Vec<u32>>>,
    pub notes: Vec<String>,
}

impl Setup {
    /// Checks `cfg`, opens its dataset and prepares features, loaders' inputs and the
    /// memory plan; refuses, naming the key or file, whatever would fail later.
    pub fn new(cfg: &RunConfig, verify: bool) -> Result<Setup, TrainError> {
        let dir = cfg
            .dataset
            .clone()
            .ok_or_else(|| crate::config::ConfigError {
                key: "dataset".into(),
                reason: "no dataset given".into(),
            })?;
        // A graph collection trains on whole-graph batches unless told otherwise (and is
        // refused, saying why, when told otherwise).
        let collection_cfg;
        let cfg = if dir.join("graph_ptr.npy").is_file()
            && cfg.loader.is_none()
            && cfg.task.as_deref().is_none_or(|t| t == "graph")
        {
            collection_cfg = RunConfig {
                loader: Some("graphs".into()),
                task: Some("graph".into()),
                ..cfg.clone()
            };
            &collection_cfg
        } else {
            cfg
        };
        cfg.check()?;
        let ds = Dataset::open(&dir, OpenOptions { verify })?;
        check_task_level(&ds, cfg)?;
        let has_edge_split = ds.dir.join(scalegnn_data::link::LINK_FILES[0]).exists();
        let is_link = match cfg.task.as_deref() {
            Some(t) => t == "link",
            None => ds.y.is_none() && has_edge_split,
        };
        if !is_link {
            for (key, given) in [
                ("decoder", cfg.decoder.is_some()),
                ("exclude_targets", cfg.exclude_targets.is_some()),
                ("negatives", cfg.negatives.is_some()),
                ("negative_sampling", cfg.negative_sampling.is_some()),
            ] {
                if given {
                    return Err(crate::config::ConfigError {
                        key: key.into(),
                        reason: "applies to link prediction (--task link)".into(),
                    }
                    .into());
                }
            }
        }
        if !is_link && ds.y.is_none() && !cfg.graph_level() {
            return Err(TrainError::Dataset {
                path: ds.dir.clone(),
                reason: if has_edge_split {
                    "has no node labels (y.npy) for node tasks; it has an edge split: \
                     train with --task link"
                        .into()
                } else {
                    "has no node labels (y.npy); node tasks need them".into()
                },
            });
        }
        let link = if is_link {
            check_link_config(cfg)?;
            Some(link_data(&ds, cfg.negative_kind())?)
        } else {
            None
        };
        // SAGMM's pool for links is the SAGMM paper's (GCN, SAGE, GCN-JK, SGC) unless given.
        let link_cfg;
        let cfg = if cfg.expert_pool.is_none() && cfg.model_kind()?.is_mixture() {
            // The graph-level pool: GCN, GIN, SAGE and GAT, each pooled.
            let pool: Option<&[&str]> = if is_link {
                Some(&LINK_POOL)
            } else if cfg.graph_level() {
                Some(&GRAPH_POOL)
            } else {
                None
            };
            match pool {
                Some(p) => {
                    link_cfg = RunConfig {
                        expert_pool: Some(p.iter().map(|s| s.to_string()).collect()),
                        ..cfg.clone()
                    };
                    &link_cfg
                }
                None => cfg,
            }
        } else {
            cfg
        };
        // The graph messages pass over (a link run's has no validation or test edge).
        let graph: &Csr = link.as_ref().map_or(&ds.graph, |l| &l.graph);
        let mut notes = Vec::new();
        if cfg.layers.is_none() && cfg.fanouts.is_some() && cfg.layers() != 2 {
            notes.push(format!(
                "layers = {} (one per fan-out of --fanouts)",
                cfg.layers()
            ));
        }
        let (task, splits) = task_and_splits(&ds, link.as_ref(), cfg, cfg.split(), cfg.seed())?;
        if cfg.cv.is_some() && ds.train_idx.is_some() {
            notes.push(
                "--cv makes its own folds: the dataset's split (train_idx.npy, val_idx.npy, \
                 test_idx.npy) is not used by this run"
                    .into(),
            );
        }
        let metric = match &cfg.metric {
            Some(m) => *task.metrics().iter().find(|t| *t == m).ok_or_else(|| {
                crate::config::ConfigError {
                    key: "metric".into(),
                    reason: format!(
                        "{m} is not a metric of {} (choose from {})",
                        task.name(),
                        task.metrics().join(", ")
                    ),
                }
            })?,
            None => task.metrics()[0],
        };
        // A metric the validation split cannot define (ROC-AUC over one class, anything over
        // no items) would select no checkpoint: probe it on a constant output first.
        let probe = scalegnn_tensor::Matrix::zeros(splits.val.len(), task.score_dim());
        let defined = |m: &str| {
            task.scores(&probe, &splits.val)
                .iter()
                .any(|(k, v)| *k == m && v.is_finite())
        };
        let metric =
            if defined(metric) {
                metric
            } else if cfg.metric.is_some() || splits.val.is_empty() {
                return Err(crate::config::ConfigError {
                    key: "metric".into(),
                    reason: format!(
                    "{metric} is undefined on the validation split ({} items{}); choose another \
                     --metric or a larger validation split",
                    splits.val.len(),
                    if splits.val.is_empty() { "" } else { ", one class" }
                ),
                }
                .into());
            } else {
                let m = *task
                    .metrics()
                    .iter()
                    .find(|m| defined(m))
                    .unwrap_or(&"loss");
                notes.push(format!(
                "selecting on val {m}: {metric} is undefined on the validation split (one class)"
            ));
                m
            };
        let info = &ds.manifest.feature_store;
        let kind = cfg.store.clone().unwrap_or_else(|| info.kind.clone());
        let codec = cfg.codec.clone().unwrap_or_else(|| info.codec.clone());
        let codec_v: Codec =
            codec
                .parse()
                .map_err(|e: scalegnn_store::StoreError| crate::config::ConfigError {
                    key: "codec".into(),
                    reason: e.to_string(),
                })?;
        if cfg.direct_io() && kind == "postgres" {
            return Err(crate::config::ConfigError {
                key: "direct_io".into(),
                reason: "a postgres store's rows live on its server; direct I/O reads local files (mmap, sqlite)".into(),
            }
            .into());
        }
        let in_dim = ds.manifest.num_features as usize;
        if in_dim == 0 {
            return Err(TrainError::Dataset {
                path: ds.dir.clone(),
                // Every model reads node features: a graph given as an edge list alone
                // (the common link-prediction input) needs structural ones.
                reason: "has no node features (x.npy), and every model reads them; give a \
                         features table at ingest (--features), or ingest again with \
                         --degree-features for structural ones (learnable node embeddings are \
                         not built yet)"
                    .into(),
            });
        }
        let mut mcfg = cfg.model_config(in_dim, task.out_dim());
        // Edge features: read by the models that take them, named when a model does not.
        let edge_attr = crate::graph::edge_attr(&ds)?;
        let reads_edges = mcfg.kind.uses(scalegnn_nn::registry::Knob::EdgeFeatures);
        let edge_attr = match edge_attr {
            Some(a) if reads_edges => {
                if cfg.is_sampled() || link.is_some() {
                    return Err(crate::config::ConfigError {
                        key: "model".into(),
                        reason: format!(
                            "{} reads edge features on graph batches or the whole graph (loader graphs or full), not on sampled neighbourhoods or links yet",
                            mcfg.kind.name()
                        ),
                    }
                    .into());
                }
                mcfg.edge_dim = a.shape()[1];
                Some(a)
            }
            Some(a) => {
                notes.push(format!(
                    "edge_attr.npy ({} columns per edge) is not read by {}: --model gine puts edge features in its messages",
                    a.shape()[1],
                    mcfg.kind.name()
                ));
                None
            }
            None => None,
        };
        let probe = Model::new(mcfg.clone(), 0)?;
        let open = || -> Result<Box<dyn FeatureStore>, TrainError> {
            let opts = StoreOptions {
                pg_url: cfg.pg_url.clone(),
                direct_io: cfg.direct_io(),
                ..Default::default()
            };
            let store = scalegnn_store::open_store_with(&ds.dir, &kind, codec_v, &opts)?;
            // The store's own dimensions (an SQLite meta table, a server's table) are data:
            // they must be the manifest's before anything is sized from them.
            let m = &ds.manifest;
            if (store.num_nodes() as u64, store.dim() as u64) != (m.num_nodes, m.num_features) {
                let files = scalegnn_store::store_files(&kind, codec_v)
                    .map(|f| f.join(", "))
                    .unwrap_or_default();
                return Err(TrainError::Dataset {
                    path: ds.dir.clone(),
                    reason: format!(
                        "the {kind} feature store ({files}) holds {} nodes x {} features, but manifest.json says {} x {}",
                        store.num_nodes(),
                        store.dim(),
                        m.num_nodes,
                        m.num_features
                    ),
                });
            }
            Ok(store)
        };
        let (mut features, mut store_out, mut gate, mut prefetch) =
            (None, None, None, cfg.prefetch());
        let clusters = match (cfg.loader_kind(), cfg.parts) {
            (LoaderKind::Cluster, Some(p)) => Some(
                scalegnn_data::partition::load_partition(&ds, p)?
                    .ok_or_else(|| crate::config::ConfigError {
                        key: "parts".into(),
                        reason: format!(
                            "{} has no partition into {p} parts; make one with `scalegnn \
                             partition {} --parts {p}`",
                            dir.display(),
                            dir.display()
                        ),
                    })?
                    .members(),
            ),
            _ => None,
        };
        match cfg.loader_kind() {
            LoaderKind::Graphs => {
                // Batches gather their graphs' rows from the store: nothing is loaded whole.
                store_out = Some(open()?);
            }
            LoaderKind::Full => {
                mcfg.check_fits(graph.num_nodes(), graph.num_edges())?;
                features = Some(all_features(
                    &ds,
                    &kind,
                    codec_v,
                    cfg.normalize_features(),
                    open,
                )?);
            }
            LoaderKind::Neighbor | LoaderKind::Cluster => {
                if !probe.supports_blocks() {
                    return Err(crate::config::ConfigError {
                        key: "loader".into(),
                        reason: format!(
                            "model {} does not train on sampled blocks yet; use loader = full",
                            mcfg.kind.name()
                        ),
                    }
                    .into());
                }
                if cfg.exact_eval() && !probe.supports_layerwise() {
                    return Err(crate::config::ConfigError {
                        key: "exact_eval".into(),
                        reason: format!(
                            "model {} cannot run layer by layer ({} can); evaluate with sampled batches (eval_fanouts = -1 for full neighbourhoods)",
                            mcfg.kind.name(),
                            scalegnn_nn::ModelKind::all()
                                .iter()
                                .filter(|k| k.spec().layerwise)
                                .map(|k| k.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                    .into());
                }
                let store = open()?;
                let sampler = NeighborSampler::new(graph, &cfg.fanouts())
                    .map_err(|e| TrainError::Config(format!("fanouts: {e}")))?;
                let budget = cfg
                    .mem_budget
                    .as_deref()
                    .map(|b| b.parse::<MemoryBudget>())
                    .transpose()
                    .map_err(|e| crate::config::ConfigError {
                        key: "mem_budget".into(),
                        reason: e.to_string(),
                    })?;
                if let Some(b) = &budget {
                    scalegnn_limits::set_memory_cap(b.bytes());
                }
                // A link batch's seeds are the endpoints of its pairs and of their negatives.
                let (plan_seeds, plan_batch) = match &link {
                    Some(l) => {
                        let per = 2 * (1 + cfg.negatives());
                        let take = splits.train.len().min(3 * cfg.batch_size());
                        let p = &l.pairs;
                        // Once each, as in a real link batch: the sampler refuses a seed
                        // given twice, and endpoints repeat across pairs.
                        let mut seen = vec![false; graph.num_nodes()];
                        let seeds: Vec<u32> = splits.train[..take]
                            .iter()
                            .flat_map(|&i| [p.src[i as usize], p.dst[i as usize]])
                            .filter(|&v| !std::mem::replace(&mut seen[v as usize], true))
                            .collect();
                        (Some(seeds), per * cfg.batch_size())
                    }
                    None => match &clusters {
                        // A cluster batch's nodes are its clusters' nodes.
                        Some(c) => {
                            let q = cfg.clusters_per_batch();
                            let seeds: Vec<u32> = c.iter().take(3 * q).flatten().copied().collect();
                            let batch = c.iter().take(q).map(Vec::len).sum::<usize>();
                            (Some(seeds), batch.max(1))
                        }
                        None => (None, cfg.batch_size()),
                    },
                };
                let cluster_sampler = ClusterSampler::new(graph, cfg.num_blocks())
                    .map_err(|e| TrainError::Config(format!("cluster batches: {e}")))?;
                let plan_sampler: &dyn scalegnn_sample::Sampler = if clusters.is_some() {
                    &cluster_sampler
                } else {
                    &sampler
                };
                let planned = plan(
                    store,
                    budget.as_ref(),
                    cfg.cache_rows,
                    &PlanInputs {
                        graph,
                        sampler: plan_sampler,
                        train: plan_seeds.as_deref().unwrap_or(&splits.train),
                        batch_size: plan_batch,
                        prefetch: cfg.prefetch(),
                        model: &mcfg,
                        fixed_bytes: ds.graph.num_nodes() * 8,
                    },
                )
                .map_err(|e| match e {
                    scalegnn_loader::LoaderError::Config(msg) => TrainError::Config(msg),
                    e => e.into(),
                })?;
                if let Some(s) = &planned.summary {
                    notes.push(s.clone());
                }
                prefetch = planned.prefetch;
                if mcfg.kind.is_mixture() {
                    let k = mcfg.moe.eig_k;
                    let budget_bytes = budget
                        .as_ref()
                        .map_or_else(scalegnn_limits::available_memory, |b| b.bytes());
                    let cache = user_cache_dir();
                    // A link run's gate reads the message graph: the held-out edges
                    // would leak into the gate's structural features otherwise.
                    let graph_files: &[&str] = if link.is_some() {
                        &scalegnn_data::link::HELD_OUT_FILES
                    } else {
                        &[]
                    };
                    let t = derived::gate_input_on(
                        &ds.dir,
                        graph,
                        graph_files,
                        planned.store.as_ref(),
                        &derived::GateParams::new(k),
                        &derived::BuildOptions {
                            budget_bytes,
                            fallback_dir: cache.as_deref(),
                        },
                    )?;
                    if let derived::TableLocation::Fallback { reason } = &t.location {
                        notes.push(format!("SAGMM gate input: {reason}"));
                    }
                    if let Some(b) = &t.built {
                        notes.push(format!(
                            "SAGMM gate input built in {:.1} s under {}{}",
                            b.seconds,
                            t.dir.display(),
                            b.residual_max
                                .map(|r| format!("; largest eigenpair residual {r:.2e}"))
                                .unwrap_or_default()
                        ));
                    }
                    for r in &t.removed {
                        notes.push(format!("removed a stale derived table {}", r.display()));
                    }
                    let g = t.store;
                    gate = Some(g);
                }
                store_out = Some(planned.store);
            }
        }
        let mut r = cfg.resolved();
        r.dataset = Some(dir.canonicalize().unwrap_or(dir));
        r.store = Some(kind);
        r.codec = Some(codec);
        r.metric = Some(metric.to_string());
        r.normalize_features = Some(cfg.normalize_features());
        r.task = Some(
            if link.is_some() {
                "link"
            } else if cfg.graph_level() {
                "graph"
            } else {
                "node"
            }
            .into(),
        );
        if link.is_some() {
            r.decoder = Some(cfg.decoder.clone().unwrap_or_else(|| "dot".into()));
            if cfg.loader_kind() == LoaderKind::Neighbor {
                r.exclude_targets = Some(cfg.exclude_targets());
            }
            r.negatives = Some(cfg.negatives());
            r.negative_sampling = Some(
                match cfg.negative_kind() {
                    scalegnn_sample::NegativeKind::Uniform => "uniform",
                    scalegnn_sample::NegativeKind::Degree => "degree",
                }
                .into(),
            );
        }
        Ok(Setup {
            cfg: r,
            ds,
            metric,
            split_count: splits.count,
            features,
            store: store_out,
            prefetch,
            gate,
            link,
            edge_attr,
            clusters,
            notes,
        })
    }
}

/// Refuses a graph-level run on one graph and a node or link run on a graph collection,
/// saying which tasks the dataset supports.
fn check_task_level(ds: &Dataset, cfg: &RunConfig) -> Result<(), TrainError> {
    let err = |reason: String| -> Result<(), TrainError> {
        Err(TrainError::Dataset {
            path: ds.dir.clone(),
            reason,
        })
    };
    match (&ds.graph_ptr, cfg.graph_level()) {
        (Some(gp), false) => err(format!(
            "is a collection of {} graphs (graph_ptr.npy): it supports graph classification and regression (task = graph, loader = graphs, the default for it), not {}",
            gp.len().saturating_sub(1),
            match cfg.task.as_deref() {
                Some("link") => "link prediction".to_string(),
                Some("node") => "node tasks".to_string(),
                _ => format!("loader = {}", cfg.loader.as_deref().unwrap_or("full")),
            }
        )),
        (None, true) => err(
            "is one graph (no graph_ptr.npy), not a graph collection: graph tasks need one (ingest --format tu); node tasks and link prediction apply"
                .into(),
        ),
        (Some(_), true) if cfg.is_sampled() => {
            Err(crate::config::ConfigError {
                key: "loader".into(),
                reason: "neighbor and cluster batch nodes; a graph task batches whole graphs (loader graphs, the default) or takes them all at once (full)"
                    .into(),
            }
            .into())
        }
        _ => Ok(()),
    }
}

/// Refuses the settings a link run cannot honour yet, naming the key.
fn check_link_config(cfg: &RunConfig) -> Result<(), TrainError> {
    let refuse = |key: &str, reason: &str| -> Result<(), TrainError> {
        Err(crate::config::ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
        .into())
    };
    if cfg.exact_eval() && cfg.loader_kind() == LoaderKind::Neighbor {
        return refuse(
            "exact_eval",
            "link prediction evaluates pairs on sampled batches; exact layer-wise evaluation \
             is for node tasks",
        );
    }
    if cfg.split() > 0 {
        return refuse("split", "a dataset holds one edge split (split 0)");
    }
    Ok(())
}

/// The task and splits of a run on `ds` (split `k`): link prediction on `link`'s pairs, or
/// the node task the labels define.
fn task_and_splits(
    ds: &Dataset,
    link: Option<&LinkData>,
    cfg: &RunConfig,
    k: usize,
    base_seed: u64,
) -> Result<(Box<dyn Task>, Splits), TrainError> {
    if cfg.graph_level() {
        let splits = match cfg.cv {
            Some(folds) => {
                let graphs = crate::graph::graph_ptr(ds)?.len() - 1;
                // Regression folds are not stratified: every graph is "class 0".
                let labels: Vec<i64> = match &ds.graph_y {
                    Some(scalegnn_data::Labels::Classes(y)) if y.len() == graphs => y.to_vec(),
                    _ => vec![0; graphs],
                };
                crate::graph::cv_splits(&labels, folds, k, cfg.cv_gin(), base_seed).map_err(
                    |reason| crate::config::ConfigError {
                        key: "cv".into(),
                        reason,
                    },
                )?
            }
            None => Splits::from_dataset(ds, k).map_err(|e| match e {
                TrainError::Dataset { path, reason } if ds.train_idx.is_none() => {
                    TrainError::Dataset {
                        path,
                        reason: format!("{reason}, or train with --cv K (K-fold cross-validation)"),
                    }
                }
                e => e,
            })?,
        };
        return Ok((crate::graph::graph_task(ds, &splits)?, splits));
    }
    Ok(match link {
        Some(l) => (
            Box::new(LinkPrediction {
                pairs: l.pairs.clone(),
                dim: cfg.hidden(),
            }),
            l.splits.clone(),
        ),
        None => {
            let splits = Splits::from_dataset(ds, k)?;
            (node_task(ds, &splits)?, splits)
        }
    })
}

/// Runs a `train` command: every run of `cfg` (or, with `opts.resume`, of the run directory's
/// own config.toml) into `opts.out`.
pub fn train(
    cfg: &RunConfig,
    opts: &RunOptions,
    report: &mut dyn Reporter,
) -> Result<TrainOutcome, TrainError> {
    let cfg = if opts.resume {
        if !opts.out.join(crate::rundir::MARKER).is_file() {
            // Said before reading its config.toml, which a foreign directory lacks.
            return Err(TrainError::RunDir {
                path: opts.out.clone(),
                reason:
                    "is not a run directory scalegnn wrote (no .scalegnn-run): nothing to resume"
                        .into(),
            });
        }
        let mut saved = RunConfig::load(&opts.out.join("config.toml"))?;
        // A password is never recorded; the command line's is used again.
        saved.pg_url = cfg.pg_url.clone();
        saved
    } else {
        cfg.clone()
    };
    let setup = Setup::new(&cfg, opts.verify)?;
    for n in &setup.notes {
        report.note(n);
    }
    let top = if opts.resume {
        RunDir::resume(&opts.out)?
    } else {
        let top = RunDir::create(&opts.out, opts.force)?;
        top.write("config.toml", setup.cfg.to_toml().as_bytes())?;
        top
    };
    let runs = setup.cfg.runs();
    let mut results = Vec::new();
    for r in 0..runs {
        // Cross-validation folds differ in their data, not their seed: the folds' seed is the
        // run's, so each fold's config.toml rebuilds its own fold.
        let seed = setup.cfg.seed() + if setup.cfg.cv.is_some() { 0 } else { r as u64 };
        let split = (setup.cfg.split() + r) % setup.split_count.max(1);
        let sub;
        let dir = if runs == 1 {
            &top
        } else {
            sub = top.sub_or_resume(&format!("run-{r}"), opts.resume)?;
            &sub
        };
        let one = RunConfig {
            seed: Some(seed),
            runs: Some(1),
            split: Some(split),
            ..setup.cfg.clone()
        };
        if runs > 1 && !dir.path().join("config.toml").exists() {
            dir.write("config.toml", one.to_toml().as_bytes())?;
        }
        // A run that finished before an interruption is not run again.
        let done = dir.path().join("result.json");
        if opts.resume && done.exists() {
            let text = std::fs::read_to_string(&done).map_err(|e| TrainError::io(&done, e))?;
            let s: RunSummary =
                serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint {
                    path: done.clone(),
                    reason: e.to_string(),
                })?;
            report.run_end(seed, &s);
            results.push((seed, s));
            continue;
        }
        match run_one(&setup, &one, (r, seed, split), dir, opts, report)? {
            Outcome::Done(model, s) => {
                drop(model);
                dir.write(
                    "result.json",
                    serde_json::to_string_pretty(&s)
                        .unwrap_or_default()
                        .as_bytes(),
                )?;
                report.run_end(seed, &s);
                results.push((seed, s));
            }
            Outcome::Interrupted { epoch } => {
                return Ok(TrainOutcome::Interrupted { run: r, epoch });
            }
        }
    }
    // Xu et al.'s protocol reads the folds' curves together (the per-fold best is not it).
    let gin = if setup.cfg.cv.is_some() && setup.cfg.cv_gin() && runs > 1 {
        let curves: Vec<_> = (0..runs)
            .map(|r| {
                crate::plot::read_lines(&top.path().join(format!("run-{r}")).join("metrics.jsonl"))
            })
            .collect();
        let g = crate::graph::gin_protocol(&curves, setup.metric);
        if let Some((epoch, mean, std)) = g {
            report.note(&format!(
                "GIN protocol (Xu et al. 2019): {} {:.4} ± {:.4} over {runs} folds at epoch {epoch}, the best epoch of the folds' mean validation (= test fold) curve",
                setup.metric, mean, std
            ));
        }
        g
    } else {
        None
    };
    write_summary(&top, &setup, &results, gin)?;
    if runs > 1 {
        // From each run's metrics.jsonl, so runs finished before a resume are drawn too.
        let curves: Vec<_> = (0..runs)
            .zip(&results)
            .map(|(r, (_, s))| {
                let lines = crate::plot::read_lines(
                    &top.path().join(format!("run-{r}")).join("metrics.jsonl"),
                );
                (lines, Some(s.best_epoch))
            })
            .collect();
        let info = crate::plot::PlotInfo::summary(&setup, &results);
        // Without a font every run has said so already.
        crate::plot::plot_summary(&curves, &info, &top.file("curves.png")?)?;
    }
    Ok(TrainOutcome::Done(results))
}

/// One run (one seed and split) in `dir`, new or resumed from its saved state.
fn run_one(
    setup: &Setup,
    cfg: &RunConfig,
    (run, seed, split): (usize, u64, usize),
    dir: &RunDir,
    opts: &RunOptions,
    report: &mut dyn Reporter,
) -> Result<Outcome, TrainError> {
    let ds = &setup.ds;
    let (task, splits) = task_and_splits(ds, setup.link.as_ref(), cfg, split, setup.cfg.seed())?;
    let in_dim = ds.manifest.num_features as usize;
    let mut mcfg = cfg.model_config(in_dim, task.out_dim());
    mcfg.edge_dim = setup.edge_attr.as_ref().map_or(0, |a| a.shape()[1]);
    let saved = if opts.resume {
        state::load(&dir.path().join(state::STATE_DIR))?
    } else {
        None
    };
    if let Some(s) = &saved {
        mcfg.moe.pruned.clone_from(&s.saved.pruned);
    }
    let mut model = Model::new(mcfg, seed)?;
    let mut opt = Adam::new(cfg.lr(), cfg.weight_decay());
    let metrics = dir.file("metrics.jsonl")?;
    let mut log = match &saved {
        Some(s) => MetricsLog::resume(&metrics, s.saved.log_lines)?,
        None => MetricsLog::to_file(&metrics)?,
    };
    let mut best_params = model.params.values.clone();
    let (mut epoch, mut best, mut epoch_ms) = (0, Best::default(), Vec::new());
    let (mut train_time, mut train_items) = (Default::default(), splits.train.clone());
    if let Some(s) = &saved {
        s.restore(&mut model, &mut opt)?;
        epoch = s.saved.epoch;
        best = s.saved.best.clone();
        best_params.clone_from(&s.best_params);
        epoch_ms.clone_from(&s.saved.epoch_ms);
        train_time = s.train_time();
        // The saved items must be training nodes of this dataset (a subset once expert
        // pretraining took its share): a changed state/ directory is an error, not a panic.
        let mut known = splits.train.clone();
        known.sort_unstable();
        if let Some(bad) = s
            .train_items
            .iter()
            .find(|i| known.binary_search(i).is_err())
        {
            return Err(TrainError::Checkpoint {
                path: dir.path().join("state"),
                reason: format!("train_items.npy holds node {bad}, which is not a training node"),
            });
        }
        train_items.clone_from(&s.train_items);
    }
    // Early stopping may have ended the run just before the interruption.
    let stop = cfg.patience.is_some_and(|p| epoch > 0 && best.since >= p);
    let state = State {
        model,
        opt,
        log: &mut log,
        epoch,
        train_items,
        best,
        best_params,
        stop,
        run_dir: Some(dir.path()),
        epoch_ms,
        train_time,
    };
    report.run_start(run, seed, cfg.epochs(), epoch);

    let graph: &Csr = setup.link.as_ref().map_or(&ds.graph, |l| &l.graph);
    let (full, t_sampled, e_sampled);
    let (train_sampler, eval_sampler);
    let (link_train, link_eval);
    let (graphs_train, graphs_eval);
    let (cluster_sampler, cluster_train, cluster_eval);
    let (train_loader, eval_loader): (&dyn Loader, &dyn Loader) = match cfg.loader_kind() {
        LoaderKind::Cluster => {
            let store = setup
                .store
                .as_deref()
                .ok_or_else(|| TrainError::Config("no feature store was opened".into()))?;
            let clusters = setup
                .clusters
                .clone()
                .ok_or_else(|| TrainError::Config("no partition was loaded".into()))?;
            cluster_sampler = ClusterSampler::new(graph, cfg.num_blocks())
                .map_err(|e| TrainError::Config(format!("cluster batches: {e}")))?;
            let gate = setup.gate.as_ref().map(|g| g as &dyn FeatureStore);
            // Training and evaluation both batch by cluster: every item is scored once, inside
            // its own cluster's subgraph (`exact_eval` gives full-neighbourhood figures).
            t_sampled = Sampled::new(
                graph,
                store,
                &cluster_sampler,
                cfg.clusters_per_batch(),
                setup.prefetch,
                cfg.io_threads(),
                cfg.model_kind()?,
                gate,
            )?
            .normalized(cfg.normalize_features());
            let q = cfg.clusters_per_batch();
            let n = graph.num_nodes();
            cluster_train = ClusterBatches::new(&t_sampled, clusters.clone(), q, n);
            cluster_eval = ClusterBatches::new(&t_sampled, clusters, q, n);
            (&cluster_train, &cluster_eval)
        }
        LoaderKind::Graphs => {
            let store = setup
                .store
                .as_deref()
                .ok_or_else(|| TrainError::Config("no feature store was opened".into()))?;
            let gp = crate::graph::graph_ptr(ds)?;
            // Every neighbour: a graph's nodes reach only each other.
            train_sampler = NeighborSampler::full(graph, cfg.num_blocks())
                .map_err(|e| TrainError::Config(format!("graph batches: {e}")))?;
            eval_sampler = NeighborSampler::full(graph, cfg.num_blocks())
                .map_err(|e| TrainError::Config(format!("graph batches: {e}")))?;
            let kind = cfg.model_kind()?;
            let sampled = |sampler, batch| -> Result<Sampled, TrainError> {
                Ok(Sampled::new(
                    graph,
                    store,
                    sampler,
                    batch,
                    setup.prefetch,
                    cfg.io_threads(),
                    kind,
                    None,
                )?
                .normalized(cfg.normalize_features()))
            };
            t_sampled = sampled(&train_sampler, cfg.batch_size())?;
            e_sampled = sampled(&eval_sampler, cfg.eval_batch_size())?;
            let (gt, ge) = (
                GraphBatches::new(&t_sampled, gp, cfg.batch_size()),
                GraphBatches::new(&e_sampled, gp, cfg.eval_batch_size()),
            );
            (graphs_train, graphs_eval) = match &setup.edge_attr {
                Some(a) => {
                    let w = a.shape()[1];
                    (
                        gt.with_edge_attr(graph, a, w),
                        ge.with_edge_attr(graph, a, w),
                    )
                }
                None => (gt, ge),
            };
            (&graphs_train, &graphs_eval)
        }
        LoaderKind::Full => {
            full = {
                let f = FullGraph::new(
                    graph,
                    setup.features.clone().unwrap_or_else(|| {
                        Features::Dense(std::sync::Arc::new(Matrix::zeros(0, 0)))
                    }),
                );
                // Full batch over a collection: every graph at once, one output row each.
                let f = if cfg.graph_level() {
                    f.with_segments(crate::graph::segments(ds)?)
                } else {
                    f
                };
                match &setup.edge_attr {
                    Some(a) => f.with_edge_features(crate::graph::whole_edge_features(graph, a)?),
                    None => f,
                }
            };
            match &setup.link {
                Some(l) => {
                    // Full batch: one step over every training positive (GAE's protocol).
                    let neg = Some((&l.negatives, cfg.negatives()));
                    link_train =
                        LinkBatches::new(LinkSource::Full(&full), l.pairs.clone(), neg, usize::MAX);
                    link_eval = LinkBatches::new(
                        LinkSource::Full(&full),
                        l.pairs.clone(),
                        None,
                        usize::MAX,
                    );
                    (&link_train, &link_eval)
                }
                None => (&full, &full),
            }
        }
        LoaderKind::Neighbor => {
            let store = setup
                .store
                .as_deref()
                .ok_or_else(|| TrainError::Config("no feature store was opened".into()))?;
            train_sampler = NeighborSampler::new(graph, &cfg.fanouts())
                .map_err(|e| TrainError::Config(format!("fanouts: {e}")))?;
            eval_sampler = NeighborSampler::new(graph, &cfg.eval_fanouts())
                .map_err(|e| TrainError::Config(format!("eval_fanouts: {e}")))?;
            let gate = setup.gate.as_ref().map(|g| g as &dyn FeatureStore);
            let kind = cfg.model_kind()?;
            let norm = cfg.normalize_features();
            t_sampled = Sampled::new(
                graph,
                store,
                &train_sampler,
                cfg.batch_size(),
                setup.prefetch,
                cfg.io_threads(),
                kind,
                gate,
            )?
            .normalized(norm);
            e_sampled = Sampled::new(
                graph,
                store,
                &eval_sampler,
                cfg.eval_batch_size(),
                setup.prefetch,
                cfg.io_threads(),
                kind,
                gate,
            )?
            .normalized(norm);
            match &setup.link {
                Some(l) => {
                    let neg = Some((&l.negatives, cfg.negatives()));
                    link_train = LinkBatches::new(
                        LinkSource::Sampled(&t_sampled),
                        l.pairs.clone(),
                        neg,
                        cfg.batch_size(),
                    )
                    .excluding_targets(cfg.exclude_targets());
                    link_eval = LinkBatches::new(
                        LinkSource::Sampled(&e_sampled),
                        l.pairs.clone(),
                        None,
                        cfg.eval_batch_size(),
                    );
                    (&link_train, &link_eval)
                }
                None => (&t_sampled, &e_sampled),
            }
        }
    };
    let splits = subset_eval(splits, cfg);
    let exact = match (cfg.exact_eval(), setup.store.as_deref()) {
        (true, Some(store)) => Some(ExactEval {
            graph,
            store,
            chunk: cfg.eval_batch_size(),
            scratch: dir.path(),
        }),
        _ => None,
    };
    let trainer = Trainer {
        cfg,
        task: task.as_ref(),
        splits: &splits,
        train_loader,
        eval: Evaluator::new(eval_loader, task.as_ref(), setup.metric),
        exact,
        seed,
        interrupt: opts.interrupt,
        tape: Default::default(),
    };
    let mut on_epoch = |e: &EpochEnd, s: &State| report.epoch(e, s);
    let (mut sel, mut moe, mut saver) = (ModelSelection, Sagmm, Saver::default());
    let mut progress = Progress(&mut on_epoch);
    let mut callbacks: Vec<&mut dyn Callback> = vec![&mut sel, &mut moe, &mut saver, &mut progress];
    let outcome = trainer.fit(state, &mut callbacks)?;
    if let Outcome::Done(_, s) = &outcome {
        let info = crate::plot::PlotInfo::run(setup, s, seed);
        if !crate::plot_curves(&log.lines, &info, &dir.file("curves.png")?)? {
            report.note("no TrueType font found (DejaVu or Liberation); curves.png not drawn");
        }
    }
    Ok(outcome)
}

/// The splits as evaluated: at most `eval_max` validation and test items (a fixed random
/// subset) when asked.
fn subset_eval(mut s: Splits, cfg: &RunConfig) -> Splits {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    if let Some(m) = cfg.eval_max {
        for (v, seed) in [(&mut s.val, 1u64), (&mut s.test, 2)] {
            if m < v.len() {
                v.shuffle(&mut rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed));
                v.truncate(m);
            }
        }
    }
    s
}

/// `summary.json`: every run's figures, their mean ± std, and what the run was.
fn write_summary(
    top: &RunDir,
    setup: &Setup,
    results: &[(u64, RunSummary)],
    gin: Option<(usize, f64, f64)>,
) -> Result<(), TrainError> {
    let vals: Vec<f64> = results.iter().map(|(_, s)| s.test).collect();
    let n = vals.len().max(1) as f64;
    let mean = vals.iter().sum::<f64>() / n;
    let std = (vals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let epoch_ms = results.iter().map(|(_, s)| s.mean_epoch_ms).sum::<f64>() / n;
    let per_run: Vec<serde_json::Value> = results
        .iter()
        .map(|(seed, s)| {
            serde_json::json!({"seed": seed, "test": s.test, "best_val": s.best_val,
                "best_epoch": s.best_epoch, "final_test": s.final_test, "epoch_ms": s.mean_epoch_ms,
                "epochs_run": s.epochs_run})
        })
        .collect();
    let cfg = &setup.cfg;
    let mut summary = serde_json::json!({
        "model": cfg.model, "dataset": cfg.dataset, "metric": setup.metric,
        "runs": results.len(), "test_mean": mean, "test_std": std, "epoch_ms_mean": epoch_ms,
        "num_params": results.first().map(|(_, s)| s.num_params),
        "threads": rayon::current_num_threads(), "per_run": per_run,
    });
    if let Some(k) = cfg.cv {
        summary["cv"] = serde_json::json!({
            "folds": k,
            "protocol": if cfg.cv_gin() { "gin" } else { "fair" },
        });
    }
    if let Some((epoch, m, s)) = gin {
        summary["gin_protocol"] = serde_json::json!({"epoch": epoch, "mean": m, "std": s});
    }
    top.write("summary.json", summary.to_string().as_bytes())
}

/// The run directory a `RUN_DIR` argument names for eval/predict/embed: its config and the
/// dataset it trained on (or `dataset`).
pub fn load_run(
    run_dir: &Path,
    dataset: Option<&Path>,
) -> Result<(RunConfig, Dataset), TrainError> {
    // A directory of several runs (--runs, --cv) holds no model of its own: name the ones
    // it holds instead of failing on a missing checkpoint file.
    if !run_dir.join("checkpoint").exists() && run_dir.join("run-0").is_dir() {
        let n = (0..)
            .take_while(|k| run_dir.join(format!("run-{k}")).is_dir())
            .count();
        return Err(TrainError::RunDir {
            path: run_dir.to_path_buf(),
            reason: format!(
                "holds {n} runs (run-0 … run-{}), one model each; give one of them, e.g. {}",
                n - 1,
                run_dir.join("run-0").display()
            ),
        });
    }
    let cfg = RunConfig::load(&run_dir.join("config.toml"))?;
    let dir = dataset
        .map(Path::to_path_buf)
        .or_else(|| cfg.dataset.clone())
        .ok_or_else(|| crate::config::ConfigError {
            key: "dataset".into(),
            reason: format!("{} names no dataset", run_dir.join("config.toml").display()),
        })?;
    let ds = Dataset::open(&dir, OpenOptions::default())?;
    Ok((cfg, ds))
}

/// Whole-graph features of `ds` as a run with `cfg` trained on them (x.npy, normalised as
/// the run was), for eval/predict/embed.
pub fn full_features(ds: &Dataset, cfg: &RunConfig) -> Result<Features, TrainError> {
    // x.npy when the dataset has it (exact f32, whatever store the run read); else the
    // store the manifest names (a sparse dataset keeps no dense copy).
    let info = &ds.manifest.feature_store;
    let (kind, codec) = match &ds.x {
        Some(_) => ("mmap".to_string(), Codec::F32),
        None => (info.kind.clone(), info.codec.parse::<Codec>()?),
    };
    let opts = StoreOptions {
        pg_url: cfg.pg_url.clone(),
        ..Default::default()
    };
    all_features(ds, &kind, codec, cfg.normalize_features(), || {
        Ok(scalegnn_store::open_store_with(
            &ds.dir, &kind, codec, &opts,
        )?)
    })
}

/// Every node's output of `model` on `graph` `[N, out_dim]` (a link run's embeddings): layer
/// by layer over full neighbourhoods when the model can run so and the features are read
/// as stored, else one whole-graph pass with every feature in memory.
pub fn node_outputs(
    ds: &Dataset,
    cfg: &RunConfig,
    model: &Model,
    graph: &Csr,
    scratch: &Path,
) -> Result<Matrix, TrainError> {
    // A whole-graph pass holds every layer's activations, [N, hidden] each: on the products
    // preset (SAGE, 3 x 256) its peak RSS was 24.3 GB, the machine's whole memory. Layer by
    // layer it is one [N, hidden] scratch file per layer and a chunk of rows on the heap.
    if model.config.kind.spec().layerwise && !cfg.normalize_features() {
        let (kind, codec) = match &ds.x {
            Some(_) => ("mmap".to_string(), Codec::F32),
            None => {
                let info = &ds.manifest.feature_store;
                (info.kind.clone(), info.codec.parse::<Codec>()?)
            }
        };
        if kind != "sparse" {
            let opts = StoreOptions {
                pg_url: cfg.pg_url.clone(),
                ..Default::default()
            };
            let store = scalegnn_store::open_store_with(&ds.dir, &kind, codec, &opts)?;
            let all: Vec<u32> = (0..graph.num_nodes() as u32).collect();
            return Ok(scalegnn_loader::exact::layerwise_logits(
                model,
                graph,
                store.as_ref(),
                &all,
                cfg.eval_batch_size(),
                scratch,
            )?);
        }
    }
    let x = full_features(ds, cfg)?;
    let loader = FullGraph::new(graph, x);
    let mut rng = <rand_xoshiro::Xoshiro256PlusPlus as rand::SeedableRng>::seed_from_u64(0);
    let mut tape = scalegnn_tensor::Tape::new(false);
    let z = model.forward(&mut tape, loader.features(), loader.graph(), &mut rng);
    Ok(tape.value(z).clone())
}

/// Every node's features in memory: `x.npy` when it is the store, a sparse store's rows
/// as sparse features without a dense copy, any other store gathered (`open` opens it and
/// checks it against the manifest).
fn all_features(
    ds: &Dataset,
    kind: &str,
    codec: Codec,
    normalize: bool,
    open: impl FnOnce() -> Result<Box<dyn FeatureStore>, TrainError>,
) -> Result<Features, TrainError> {
    let what = "every node's features (full batch)";
    if kind == "sparse" {
        let s = scalegnn_store::SparseStore::open(&ds.dir, codec)?;
        let m = &ds.manifest;
        if (s.num_nodes() as u64, s.dim() as u64) != (m.num_nodes, m.num_features) {
            return Err(TrainError::Dataset {
                path: ds.dir.clone(),
                reason: format!(
                    "the sparse feature store holds {} nodes x {} features, but manifest.json says {} x {}",
                    s.num_nodes(),
                    s.dim(),
                    m.num_nodes,
                    m.num_features
                ),
            });
        }
        let (ptr, cols, vals) = s.csr();
        if (s.nnz() as f64) <= SPARSE_MAX_DENSITY * (s.num_nodes() * s.dim()) as f64 {
            scalegnn_limits::check_array(what, &[s.nnz()], 8)?;
            let indptr: Vec<usize> = ptr.iter().map(|&p| p as usize).collect();
            let mut weights = vals.to_vec();
            if normalize {
                scalegnn_loader::normalize_csr_rows(&indptr, &mut weights);
            }
            let sm = scalegnn_tensor::SparseMat::new(
                s.num_nodes(),
                s.dim(),
                indptr,
                cols.to_vec(),
                weights,
            );
            return Ok(Features::Sparse(std::sync::Arc::new(sm)));
        }
    }
    let mut m = match (&ds.x, kind, codec) {
        // x.npy is that store: read it directly.
        (Some(x), "mmap", Codec::F32) => {
            scalegnn_limits::check_array(what, &[x.rows(), x.row_len()], 4)?;
            Matrix::from_vec(x.rows(), x.row_len(), x.to_vec())
        }
        (None, "mmap", Codec::F32) => {
            return Err(TrainError::Dataset {
                path: ds.dir.clone(),
                reason: "has no node features (x.npy)".into(),
            })
        }
        _ => {
            let store = open()?;
            let (n, f) = (store.num_nodes(), store.dim());
            scalegnn_limits::check_array(what, &[n, f], 4)?;
            let ids: Vec<u32> = (0..n as u32).collect();
            let mut m = Matrix::zeros(n, f);
            store.gather(&ids, &mut m.data)?;
            m
        }
    };
    if normalize {
        scalegnn_loader::normalize_rows(&mut m);
    }
    Ok(Features::from_dense(m, SPARSE_MAX_DENSITY))
}

/// The task of `ds` for split `k` (for eval/predict).
pub fn task_of(ds: &Dataset, k: usize) -> Result<(Box<dyn Task>, Splits), TrainError> {
    let splits = Splits::from_dataset(ds, k)?;
    Ok((node_task(ds, &splits)?, splits))
}

/// What `run_task` returns: the task, its splits and, for a link run, its link data.
pub type RunTask = (Box<dyn Task>, Splits, Option<LinkData>);

/// The task, splits and (for a link run) link data of a run with resolved config `cfg` on
/// `ds`, for eval/predict/embed.
pub fn run_task(ds: &Dataset, cfg: &RunConfig) -> Result<RunTask, TrainError> {
    let link = match cfg.task.as_deref() {
        Some("link") => Some(link_data(ds, cfg.negative_kind())?),
        _ => None,
    };
    let (task, splits) = task_and_splits(ds, link.as_ref(), cfg, cfg.split(), cfg.seed())?;
    Ok((task, splits, link))
}

/// The user's cache directory for derived tables of datasets that are not writable
/// (`$XDG_CACHE_HOME/scalegnn`, else `~/.cache/scalegnn`): per user, so no other account can
/// plant a table there; None when neither is set.
fn user_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("scalegnn"))
}
