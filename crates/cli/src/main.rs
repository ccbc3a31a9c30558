//! The `scalegnn` binary: parses the command line and dispatches to one module per command.

mod cmd;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// scalegnn: train graph neural networks on graphs larger than memory.
///
/// Start with `scalegnn demo`. Datasets are directories (manifest.json + .npy arrays) made by
/// `scalegnn ingest` from your files or by `scalegnn synth`; `scalegnn info DIR` describes one.
#[derive(Parser)]
#[command(name = "scalegnn", version, about, long_about)]
struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the small synthetic preset into a temporary directory and describe it.
    Demo(cmd::demo::Args),
    /// Turn a graph in another format (npz, TU, CSV/TSV, Parquet, NumPy) into a dataset directory.
    Ingest(cmd::ingest::Args),
    /// Generate a synthetic power-law, community-structured graph with learnable labels.
    Synth(cmd::synth::Args),
    /// Move a dataset's features into another store or codec (mmap/sqlite/postgres; f32/f16/u8).
    Store(cmd::store::Args),
    /// Hold validation/test edges out of a dataset for link prediction (with fixed negatives).
    SplitEdges(cmd::split_edges::Args),
    /// Split the nodes into parts (METIS minimum edge cut, or random) for ClusterGCN/sharding.
    Partition(cmd::partition::Args),
    /// Describe a dataset directory: sizes, splits, degree statistics, files.
    Info(cmd::info::Args),
    /// Train a node classifier or a link predictor, full batch or on sampled mini-batches.
    Train(cmd::train::Args),
    /// Run a few mini-batches stage by stage and say what bounds the run (JSON lines too).
    Profile(cmd::profile::Args),
    /// Evaluate a run's best checkpoint on train/val/test.
    Eval(cmd::infer::Args),
    /// Write a run's class predictions for every node, or a link run's scores of --edges pairs.
    Predict(cmd::infer::Args),
    /// Write a run's node embeddings, the input of the last layer (embeddings.npy).
    Embed(cmd::infer::Args),
    /// Exact top-k neighbours of nodes by a link prediction run's decoder score (retrieval).
    Topk(cmd::infer::TopkArgs),
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`scalegnn info | head`) like other Unix tools, instead of
    // panicking inside println!.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    if let Some(t) = cli.threads {
        // Checked first: starting 100,000 threads takes most of a minute before it fails.
        if t == 0 {
            eprintln!("error: --threads: must be at least 1 (leave it out for every core)");
            return ExitCode::from(2);
        }
        if let Err(e) = scalegnn_limits::check_threads("--threads", t) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
        {
            eprintln!("error: could not start {t} threads: {e}");
            return ExitCode::from(2);
        }
    }
    let res = match cli.command {
        Command::Demo(a) => cmd::demo::run(a),
        Command::Ingest(a) => cmd::ingest::run(a),
        Command::Synth(a) => cmd::synth::run(a),
        Command::Store(a) => cmd::store::run(a),
        Command::SplitEdges(a) => cmd::split_edges::run(a),
        Command::Partition(a) => cmd::partition::run(a),
        Command::Info(a) => cmd::info::run(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Profile(a) => cmd::profile::run(a),
        Command::Eval(a) => cmd::infer::run(a, cmd::infer::Mode::Eval),
        Command::Predict(a) => cmd::infer::run(a, cmd::infer::Mode::Predict),
        Command::Embed(a) => cmd::infer::run(a, cmd::infer::Mode::Embed),
        Command::Topk(a) => cmd::infer::topk(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", clip(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}

/// An error message cut to a readable size: a parser that quotes the offending input (a
/// 10 MB TOML string, a binary line) must not flood the terminal.
fn clip(msg: &str) -> String {
    const LINE: usize = 400;
    const TOTAL: usize = 4000;
    let mut out = String::new();
    for line in msg.lines() {
        if out.len() >= TOTAL {
            out.push_str("\n… (message cut)");
            break;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        if line.len() > LINE {
            let cut = (0..=LINE)
                .rev()
                .find(|&i| line.is_char_boundary(i))
                .unwrap_or(0);
            out.push_str(&line[..cut]);
            out.push_str(&format!("… ({} more bytes)", line.len() - cut));
        } else {
            out.push_str(line);
        }
    }
    out
}
