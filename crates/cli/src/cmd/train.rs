//! `scalegnn train DATASET`: flags and a TOML config (keys = flag names, `-` or `_`) merged
//! into a `RunConfig` (flags win), then `scalegnn_train::train` does the rest; this module
//! only prints.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use scalegnn_train::tune::{tune, TuneOutcome};
use scalegnn_train::{EpochEnd, Reporter, RunConfig, RunOptions, RunSummary, State, TrainOutcome};

/// Arguments of `scalegnn train`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  scalegnn train data/cora --model gat --runs 10 --out runs/cora-gat
  scalegnn train data/products --loader neighbor --fanouts 15,10,5 --mem-budget 3GiB
  scalegnn train --config runs/cora-gat/config.toml --out runs/again   # a run's config reruns it
  scalegnn train --resume runs/products                                 # after Ctrl-C or a crash
  scalegnn train data/cora --model sagmm --tune 20 --runs 5             # search on validation first")]
pub struct Args {
    /// Dataset directory (from `scalegnn ingest` or `synth`; a --config may name it instead).
    pub dataset: Option<PathBuf>,
    /// TOML file with any of the flags below as keys (flags override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run directory (default runs/<timestamp>): config.toml, metrics.jsonl, checkpoint/.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Skip checksum verification of the dataset.
    #[arg(long)]
    pub no_verify: bool,
    /// Replace --out when it holds an earlier run (only a directory scalegnn wrote for a run).
    #[arg(long)]
    pub force: bool,
    /// Continue the interrupted run in RUN_DIR from its last saved epoch, with its own
    /// configuration (no other setting may be given).
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// Before training, try N configurations (the defaults, then a seeded random search over
    /// lr, weight decay, dropout, hidden width and, for sagmm, the expert-loss weight; keys
    /// you give are kept) and train the one best on validation; trials are in tune.json.
    #[arg(long, value_name = "N")]
    pub tune: Option<usize>,
    #[command(flatten)]
    pub run: RunConfig,
}

fn default_run_dir() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Two runs started in the same second (a script's loop) must not collide.
    let base = PathBuf::from("runs").join(format!("{secs}"));
    if !base.exists() {
        return base;
    }
    (2u32..)
        .map(|k| base.with_file_name(format!("{secs}-{k}")))
        .find(|p| !p.exists())
        .unwrap_or(base)
}

/// Set by SIGINT: the trainer stops at the next batch boundary.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    // Only async-signal-safe calls here: an atomic swap, write(2) and _exit(2).
    if INTERRUPTED.swap(true, Ordering::Relaxed) {
        // The second Ctrl-C: stop now (setup, e.g. checksums or a derived table, has no batch
        // boundary to wait for). Every file is written to a temporary name first, so a
        // finished file is never left half-written.
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
    let msg = b"\nstopping at the next batch boundary (Ctrl-C again to stop at once)\n";
    // SAFETY: write(2) on stderr with a valid buffer is async-signal-safe.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

/// Runs `scalegnn train`.
pub fn run(a: Args) -> Result<()> {
    let (cfg, out) = match &a.resume {
        Some(dir) => {
            let mut others = a.run.given_keys();
            others.retain(|k| *k != "pg_url");
            if a.dataset.is_some()
                || a.config.is_some()
                || a.out.is_some()
                || a.force
                || a.tune.is_some()
                || !others.is_empty()
            {
                bail!(
                    "--resume continues {}'s own configuration (its config.toml): give no dataset, --config, --out, --force, --tune or setting ({})",
                    dir.display(),
                    others.join(", ")
                );
            }
            (a.run.clone(), dir.clone())
        }
        None => {
            let file = match &a.config {
                Some(p) => RunConfig::load(p)?,
                None => RunConfig::default(),
            };
            let mut cfg = a.run.clone().or(file);
            if let Some(d) = &a.dataset {
                cfg.dataset = Some(d.clone());
            }
            if cfg.dataset.is_none() {
                bail!("no dataset: give DATASET, or `dataset = \"DIR\"` in --config");
            }
            (cfg, a.out.clone().unwrap_or_else(default_run_dir))
        }
    };
    // SAFETY: installs a handler that only stores to an atomic (async-signal-safe).
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    let opts = RunOptions {
        out: out.clone(),
        force: a.force,
        resume: a.resume.is_some(),
        verify: !a.no_verify,
        interrupt: Some(&INTERRUPTED),
    };
    let mut report = Printer::new();
    let mut tuned = None;
    let cfg = match a.tune {
        Some(n) => {
            // Refuse an --out that cannot take the run before spending the trials on it (as
            // RunDir::create will: an empty directory is adopted, a run replaced with --force).
            let used = std::fs::read_dir(&out).is_ok_and(|mut d| d.next().is_some());
            let is_run = out.join(scalegnn_train::rundir::MARKER).is_file();
            if used && !(a.force && is_run) {
                bail!(
                    "training into {}: {}",
                    out.display(),
                    if is_run {
                        "already holds a run; choose another --out, or --force to replace it"
                    } else {
                        "is not empty and not a run directory; choose another --out"
                    }
                );
            }
            let t = match tune(&cfg, n, &out, Some(&INTERRUPTED), !a.no_verify, &mut report)
                .with_context(|| format!("tuning for {}", out.display()))?
            {
                TuneOutcome::Done(t) => t,
                TuneOutcome::Interrupted { trial } => {
                    eprintln!(
                        "interrupted during tuning trial {}; nothing was trained",
                        trial + 1
                    );
                    std::process::exit(130);
                }
            };
            let chosen = &t.trials[t.chosen];
            let shown: Vec<String> = chosen
                .values
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            println!(
                "tune: trial {} of {} is best on validation ({} {:.4}): {}",
                t.chosen + 1,
                t.trials.len(),
                t.metric,
                chosen.val.unwrap_or(f64::NAN),
                shown.join(", ")
            );
            let c = t.cfg.clone();
            tuned = Some(t);
            c
        }
        None => cfg,
    };
    let outcome = scalegnn_train::train(&cfg, &opts, &mut report)
        .with_context(|| format!("training into {}", out.display()))?;
    if let (Some(t), TrainOutcome::Done(_)) = (&tuned, &outcome) {
        let dir = scalegnn_train::RunDir::open(&out)?;
        let json = serde_json::to_string_pretty(t).context("tune.json")?;
        dir.write("tune.json", json.as_bytes())?;
    }
    report.finish_bar();
    match outcome {
        TrainOutcome::Done(results) => {
            if results.len() > 1 {
                let vals: Vec<f64> = results.iter().map(|(_, s)| s.test).collect();
                let n = vals.len() as f64;
                let mean = vals.iter().sum::<f64>() / n;
                let std = (vals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
                let metric = &results[0].1.metric;
                // Fractions in [0, 1] read as percentages; errors (mse, mae, rmse) are in the
                // targets' own units and stay as they are.
                let pct = scalegnn_train::scores::higher_is_better(metric);
                let (scale, unit) = if pct { (100.0, " %") } else { (1.0, "") };
                println!(
                    "test {metric} over {} runs: {:.2} ± {:.2}{unit}",
                    results.len(),
                    scale * mean,
                    scale * std
                );
            }
            println!("run directory: {}", out.display());
            Ok(())
        }
        TrainOutcome::Interrupted { run, epoch } => {
            eprintln!(
                "interrupted after epoch {epoch}{}; the best checkpoint so far is kept. Resume with:\n  scalegnn train --resume {}",
                if run > 0 { format!(" of run {run}") } else { String::new() },
                out.display()
            );
            std::process::exit(130);
        }
    }
}

/// Prints what a run does: a progress bar on a terminal, else a line every few epochs
/// (every epoch on sampled batches, with where the time went).
struct Printer {
    bar: Option<ProgressBar>,
    every: usize,
}

impl Printer {
    fn new() -> Printer {
        Printer {
            bar: None,
            every: 1,
        }
    }

    fn finish_bar(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Reporter for Printer {
    fn note(&mut self, msg: &str) {
        eprintln!("note: {msg}");
    }

    fn run_start(&mut self, run: usize, seed: u64, epochs: usize, from: usize) {
        self.finish_bar();
        if from > 0 {
            eprintln!("run {run} (seed {seed}): resuming after epoch {from} of {epochs}");
        }
        // About ten lines per run when not drawing a bar.
        self.every = epochs.div_ceil(10).max(1);
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(epochs as u64).with_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(format!("seed {seed}"));
            bar.set_position(from as u64);
            bar.set_draw_target(ProgressDrawTarget::stderr());
            self.bar = Some(bar);
        }
    }

    fn epoch(&mut self, e: &EpochEnd, s: &State) {
        let metric = s.best.value.map_or(String::new(), |v| {
            format!(" (best {v:.4} at {})", s.best.epoch)
        });
        let val: Vec<String> = e
            .val
            .iter()
            .filter(|(n, _)| *n != "loss")
            .map(|(n, v)| format!("{n} {v:.4}"))
            .collect();
        let t = e.times;
        let sampled = t.sample_ms + t.fetch_ms > 0.0;
        if let Some(bar) = &self.bar {
            bar.set_message(format!("loss {:.4} val {}{metric}", e.loss, val.join(" ")));
            bar.set_position(e.epoch as u64);
            return;
        }
        if sampled {
            eprintln!(
                "epoch {}: loss {:.4} val {}; {:.1} s, {:.0} seeds/s; sample {:.0} ms, fetch {:.0} ms, compute {:.0} ms, waiting {:.0} ms",
                e.epoch,
                e.loss,
                val.join(" "),
                t.wall_ms / 1e3,
                t.seeds_per_s(),
                t.sample_ms,
                t.fetch_ms,
                t.compute_ms,
                t.wait_ms
            );
        } else if e.epoch.is_multiple_of(self.every) || e.epoch == 1 {
            eprintln!(
                "epoch {}: loss {:.4} val {}{metric}; {:.0} ms/epoch",
                e.epoch,
                e.loss,
                val.join(" "),
                t.wall_ms
            );
        }
    }

    fn run_end(&mut self, seed: u64, s: &RunSummary) {
        self.finish_bar();
        println!(
            "seed {seed}: test {m} {:.4} at best val {m} {:.4} (epoch {}); {} params; {:.2} ms/epoch",
            s.test,
            s.best_val,
            s.best_epoch,
            s.num_params,
            s.mean_epoch_ms,
            m = s.metric
        );
    }
}
