//! `scalegnn profile CONFIG|DATASET`: runs a few mini-batches of a configuration stage by
//! stage (sampling alone, sampling + feature gather, full training steps), prints where the
//! time goes and what bounds the run, and the figures as JSON lines named like the PyG
//! anchor's (`../shared/bench/pyg_anchor.py`), so `ratio.py` can compare them.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_loader::{Loader, Prepared, Sampled, StageTimes};
use scalegnn_nn::Model;
use scalegnn_sample::{NeighborSampler, Sampler};
use scalegnn_store::FeatureStore;
use scalegnn_tensor::{Adam, Tape};
use scalegnn_train::{task_of, Evaluator, LoaderKind, RunConfig, Setup, Trainer};
use serde_json::json;

/// Arguments of `scalegnn profile`.
#[derive(clap::Args)]
pub struct Args {
    /// A run's config.toml (it names the dataset), or a dataset directory.
    pub target: PathBuf,
    /// TOML file with training keys (flags override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Timed batches per stage.
    #[arg(long, default_value_t = 20)]
    pub batches: usize,
    /// Untimed batches before each stage.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// The figures as JSON lines (named like the PyG anchor's), appended to this file; `-`
    /// prints them on stdout.
    #[arg(long)]
    pub jsonl: Option<PathBuf>,
    /// Dataset name in the JSON lines (default: the directory name).
    #[arg(long)]
    pub name: Option<String>,
    /// Skip checksum verification of the dataset.
    #[arg(long)]
    pub no_verify: bool,
    #[command(flatten)]
    pub run: RunConfig,
}

/// Peak resident memory of this process, in MiB (`getrusage` maxrss, as the anchor).
pub(crate) fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage only writes the struct we pass.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) == 0 {
            return u.ru_maxrss as f64 / 1024.0;
        }
    }
    0.0
}

/// Runs `scalegnn profile`.
pub fn run(a: Args) -> Result<()> {
    let t_load = Instant::now();
    let (dataset, file_cfg) = if a.target.is_dir() {
        (Some(a.target.clone()), RunConfig::default())
    } else {
        let r = RunConfig::load(&a.target)?;
        (r.dataset.clone(), r)
    };
    let extra = match &a.config {
        Some(p) => RunConfig::load(p)?,
        None => RunConfig::default(),
    };
    let mut run = a.run.clone().or(extra).or(file_cfg);
    run.dataset = dataset.clone();
    let Some(dataset) = dataset else {
        bail!("{} names no dataset", a.target.display());
    };
    if run.loader.is_none() {
        run.loader = Some("neighbor".into());
    }
    if run.loader_kind() != LoaderKind::Neighbor {
        bail!("profile measures mini-batch pipelines; set loader = \"neighbor\"");
    }
    if run.task.as_deref() == Some("link") {
        bail!("--task link: profile measures node mini-batches; link batches are not profiled yet");
    }
    let setup = Setup::new(&run, !a.no_verify)?;
    for n in &setup.notes {
        eprintln!("note: {n}");
    }
    let cfg = &setup.cfg;
    let ds = &setup.ds;
    let (task, splits) = task_of(ds, cfg.split())?;
    let store = setup
        .store
        .as_deref()
        .context("profile: no feature store was opened")?;
    let sampler = NeighborSampler::new(&ds.graph, &cfg.fanouts()).context("fanouts")?;
    let load_s = t_load.elapsed().as_secs_f64();

    let name = a.name.clone().unwrap_or_else(|| {
        dataset
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "dataset".into())
    });
    let threads = rayon::current_num_threads();
    let mut lines = Vec::new();
    let mut report = |metric: &str, value: f64, unit: &str| {
        let line = json!({"metric": metric, "value": value, "unit": unit, "engine": "scalegnn",
            "dataset": name, "threads": threads, "model": cfg.model, "fanouts": cfg.fanouts(),
            "batch_size": cfg.batch_size(), "hidden": cfg.hidden(), "store": store.kind(),
            "codec": store.codec().to_string()});
        lines.push(line.to_string());
    };
    report("load_s", load_s, "s");

    let mcfg = cfg.model_config(store.dim(), task.out_dim());
    let mut model = Model::new(mcfg, cfg.seed())?;
    // More batches than one pass holds: repeat the shuffled training nodes, each copy cut
    // to whole batches so no batch holds a node twice.
    let bs = cfg.batch_size().clamp(1, splits.train.len());
    let need = a.warmup + a.batches;
    let mut base = splits.train.clone();
    base.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(cfg.seed()));
    base.truncate(base.len() / bs * bs);
    let mut order = base.clone();
    while order.len() < need * bs {
        order.extend_from_slice(&base);
    }
    let chunks: Vec<&[u32]> = order.chunks(bs).take(need).collect();

    // Stage 1: sampling alone.
    let (mut nodes, mut edges) = (0usize, 0usize);
    let mut t = Instant::now();
    let mut shapes = String::new();
    for (k, seeds) in chunks.iter().enumerate() {
        if k == a.warmup {
            t = Instant::now();
            (nodes, edges) = (0, 0);
        }
        let b = sampler.sample(seeds, k as u64).context("sampling")?;
        if k == 0 {
            let s: Vec<String> = b
                .blocks
                .iter()
                .map(|bl| format!("{}→{} ({} edges)", bl.num_src, bl.num_dst, bl.num_edges()))
                .collect();
            shapes = s.join(", ");
        }
        nodes += b.nodes.len();
        edges += b.num_edges();
    }
    let dt = t.elapsed().as_secs_f64();
    let seeds_timed = (a.batches * bs) as f64;
    report("sampler_seeds_per_s", seeds_timed / dt, "seeds/s");
    report("sampler_edges_per_s", edges as f64 / dt, "edges/s");
    report("sampler_batch_ms", dt / a.batches as f64 * 1e3, "ms");
    report(
        "sampled_nodes_per_batch",
        nodes as f64 / a.batches as f64,
        "nodes",
    );
    report(
        "sampled_edges_per_batch",
        edges as f64 / a.batches as f64,
        "edges",
    );

    // Stage 2: sampling + feature gather (what PyG's NeighborLoader iteration does).
    let gate = setup.gate.as_ref().map(|g| g as &dyn FeatureStore);
    let kind = cfg.model_kind()?;
    let loader = Sampled::new(
        &ds.graph,
        store,
        &sampler,
        bs,
        setup.prefetch,
        cfg.io_threads(),
        kind,
        gate,
    )?
    .normalized(cfg.normalize_features());
    let mut keep = |_: &Prepared| Ok(());
    loader.run(&order[..a.warmup * bs], 1, &mut keep)?;
    let pass = loader.run(&order[a.warmup * bs..need * bs], 2, &mut keep)?;
    report("sample_seeds_per_s", pass.seeds_per_s(), "seeds/s");
    report(
        "sample_batch_ms",
        pass.wall_ms / pass.batches.max(1) as f64,
        "ms",
    );

    // Stage 3: training steps, pipelined.
    store.reset_cache_stats();
    let trainer = Trainer {
        cfg,
        task: task.as_ref(),
        splits: &splits,
        train_loader: &loader,
        eval: Evaluator::new(&loader, task.as_ref(), setup.metric),
        exact: None,
        seed: cfg.seed(),
        interrupt: None,
        tape: Default::default(),
    };
    let mut opt = Adam::new(cfg.lr(), cfg.weight_decay());
    let mut tape = Tape::new(true);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed());
    let mut last_loss = f32::NAN;
    let mut step = |p: &Prepared| {
        last_loss = trainer.step(&mut model, &mut opt, &mut tape, p, &mut rng);
        Ok(())
    };
    loader.run(&order[..a.warmup * bs], 3, &mut step)?;
    let tr = loader.run(&order[a.warmup * bs..need * bs], 4, &mut step)?;
    let per = |v: f64| v / tr.batches.max(1) as f64;
    report("train_seeds_per_s", tr.seeds_per_s(), "seeds/s");
    report("train_batch_ms", per(tr.wall_ms), "ms");
    report("train_sample_ms", per(tr.wait_ms), "ms");
    report("train_compute_ms", per(tr.compute_ms), "ms");
    report("worker_sample_ms", per(tr.sample_ms), "ms");
    report("worker_fetch_ms", per(tr.fetch_ms), "ms");
    report("worker_prepare_ms", per(tr.prepare_ms), "ms");
    report(
        "fetch_mib_per_batch",
        per(tr.bytes_read as f64) / (1 << 20) as f64,
        "MiB",
    );
    if let Some(cs) = store.cache_stats() {
        report("cache_hit_rate", cs.hit_rate(), "fraction");
        report("cache_miss_fetch_ms", cs.mean_fetch_ms(), "ms");
    }
    report("peak_rss_mib", peak_rss_mib(), "MiB");
    // Figures as JSON lines only when asked (--jsonl); the human summary always, verdict last.
    match &a.jsonl {
        Some(p) if p.as_os_str() == "-" => {
            for l in &lines {
                println!("{l}");
            }
        }
        Some(p) => {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?;
            for l in &lines {
                writeln!(f, "{l}").with_context(|| format!("writing {}", p.display()))?;
            }
        }
        None => {}
    }
    println!("blocks of the first batch, input layer first: {shapes}");
    println!(
        "sampling {:.0} seeds/s; sampling + gather {:.0} seeds/s; training {:.0} seeds/s; peak RSS {:.0} MiB",
        seeds_timed / dt,
        pass.seeds_per_s(),
        tr.seeds_per_s(),
        peak_rss_mib()
    );
    println!("{}", diagnose(&tr, last_loss));
    Ok(())
}

/// Says which stage bounds the pipelined run and what to change: the checklist a user would
/// otherwise work through by hand.
fn diagnose(t: &StageTimes, loss: f32) -> String {
    let n = t.batches.max(1) as f64;
    let (wall, wait, compute) = (t.wall_ms / n, t.wait_ms / n, t.compute_ms / n);
    let (sample, fetch, prep) = (t.sample_ms / n, t.fetch_ms / n, t.prepare_ms / n);
    let worker = sample + fetch + prep;
    let mut s = format!(
        "per batch: {wall:.0} ms wall = {compute:.0} ms compute + {wait:.0} ms waiting for input; \
         the prefetch worker spent {sample:.0} ms sampling, {fetch:.0} ms gathering features \
         ({:.1} MiB read), {prep:.0} ms building blocks (last loss {loss:.3})\n",
        t.bytes_read as f64 / n / (1 << 20) as f64
    );
    if wait > 0.1 * wall {
        let (what, fix) = if fetch >= sample {
            (
                "feature fetch",
                "a faster store (mmap before sqlite/postgres), a smaller codec (--codec f16 or u8 \
                 at ingest), a larger cache, more prefetch depth (--prefetch), or, when the \
                 features do not fit in memory, direct reads with --direct-io true behind \
                 --mem-budget",
            )
        } else {
            (
                "sampling",
                "smaller fan-outs (--fanouts), a degree cap at ingest (--degree-cap), or more \
                 prefetch depth (--prefetch)",
            )
        };
        s += &format!(
            "bound by input: the trainer waits {:.0} % of the time, mostly on {what}. Try {fix}.",
            100.0 * wait / wall
        );
    } else {
        s += &format!(
            "bound by compute ({:.0} % of the time; the worker's {worker:.0} ms per batch is hidden \
             behind it). Try fewer sampled nodes (--fanouts, --batch-size), a narrower model \
             (--hidden), or more threads (--threads).",
            100.0 * compute / wall
        );
    }
    s
}
