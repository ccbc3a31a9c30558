//! `scalegnn ingest`: read a graph in another format and write a dataset directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use scalegnn_data::readers;
use scalegnn_data::{ingest, IngestOptions, SplitSpec};

use crate::cmd::store::{convert, drop_dense, StoreFlags};
use crate::progress::Bars;

/// Input formats `ingest` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A scipy-CSR `.npz` file (adj_*, attr_*, labels), as shchur/gnn-benchmark ships them.
    Npz,
    /// A TUDataset directory (<NAME>_A.txt, _graph_indicator.txt, _graph_labels.txt, ...).
    Tu,
    /// A CSV/TSV edge list (one edge per line), with optional --features and --labels files.
    Csv,
    /// A Parquet edge table, with an optional Parquet --features table.
    Parquet,
    /// A NumPy directory: edge_index.npy [2,E], optional x.npy, y.npy, *_mask.npy or *_idx.npy.
    Npy,
    /// An OGB node-property directory as unzipped (raw/edge.csv.gz, raw/node-feat.csv.gz, split/NAME/).
    Ogb,
    /// A DGL GraphBolt OnDiskDataset directory (metadata.yaml; homogeneous graphs).
    Graphbolt,
}

/// Arguments of `scalegnn ingest`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  scalegnn ingest --format npy ../shared/datasets/planetoid-npy/cora --out data/cora
  scalegnn ingest --format npz amazon_electronics_photo.npz --out data/photo --undirected --remove-self-loops
  scalegnn ingest --format tu ../shared/datasets/tu/MUTAG --out data/mutag
  scalegnn ingest --format ogb ogbn_arxiv --out data/arxiv --undirected
  scalegnn ingest --format graphbolt my_ondisk_dataset --out data/g
  scalegnn ingest --format csv edges.tsv --header --src-col from --dst-col to --features x.csv --labels y.txt --out data/g --undirected
  scalegnn ingest --format npy ../shared/datasets/planetoid-npy/cora --out data/cora --store sqlite --codec u8")]
pub struct Args {
    /// Format of INPUT.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Input file or directory.
    pub input: PathBuf,
    /// Output dataset directory (must not exist unless --force).
    #[arg(long)]
    pub out: PathBuf,
    /// Add the reverse of every edge (make the graph undirected).
    #[arg(long)]
    pub undirected: bool,
    /// Keep at most K in-edges per node, a uniform random subset (the hub fix for power-law graphs).
    #[arg(long, value_name = "K")]
    pub degree_cap: Option<usize>,
    /// Drop edges from a node to itself.
    #[arg(long)]
    pub remove_self_loops: bool,
    /// A graph without node features (an edge list alone) gets 5 structural ones: each
    /// node's in-degree and the min, max, mean and std of its in-neighbours' (PyG's
    /// LocalDegreeProfile), as ln(1 + value).
    #[arg(long)]
    pub degree_features: bool,
    /// Keep repeated (src, dst) pairs (default: one copy each).
    #[arg(long)]
    pub keep_duplicates: bool,
    /// Map the distinct node ids, sorted, to 0..N: any integers (saved in node_ids.npy) or,
    /// in a CSV edge list, any strings (saved in node_ids.csv).
    #[arg(long)]
    pub relabel: bool,
    /// Split to make when the input has none: random:TRAIN,VAL (fractions) or per-class:TRAIN,VAL (counts).
    /// Default: per-class:20,30 for npz, random:0.6,0.2 for csv/parquet with labels.
    #[arg(long)]
    pub split: Option<SplitSpec>,
    /// Also split the edges for link prediction: TRAIN,VAL,TEST shares of the undirected
    /// edges (e.g. 0.85,0.05,0.10), with fixed negatives, as `scalegnn split-edges` does.
    #[arg(long, value_name = "TRAIN,VAL,TEST", value_parser = scalegnn_data::LinkSplitSpec::parse)]
    pub link_split: Option<scalegnn_data::LinkSplitSpec>,
    /// Seed for degree capping and generated splits.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Dataset name in the manifest (default: from the input's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Replace an existing output directory (the old one is removed only after the new one is in place).
    #[arg(long)]
    pub force: bool,
    /// CSV/TSV: field delimiter (default: tab for .tsv/.tab files, else comma; `space` for whitespace).
    #[arg(long)]
    pub delimiter: Option<String>,
    /// CSV/TSV: the first line of the edge list is a header (--features-header and
    /// --labels-header say the same of those files).
    #[arg(long, alias = "edges-header")]
    pub header: bool,
    /// CSV/TSV: the first line of the --features file is a header.
    #[arg(long)]
    pub features_header: bool,
    /// CSV: the --features file holds one `node,feature[,value]` row per non-zero (a sparse
    /// or bag-of-words export; value 1 when absent; feature = 0-based index), node in
    /// --node-id-col (default 0); a node without a row gets zeros.
    #[arg(long)]
    pub features_pairs: bool,
    /// CSV/TSV: the first line of the --labels file is a header.
    #[arg(long)]
    pub labels_header: bool,
    /// CSV/TSV: column (0-based index or header name) of the node id in the --features and
    /// --labels tables; their rows are then matched to nodes by id, in any order, with gaps.
    #[arg(long)]
    pub node_id_col: Option<String>,
    /// CSV: source column (0-based index or header name); Parquet: column name (default src).
    #[arg(long)]
    pub src_col: Option<String>,
    /// CSV: destination column (0-based index or header name); Parquet: column name (default dst).
    #[arg(long)]
    pub dst_col: Option<String>,
    /// CSV/Parquet: node feature file (.npy, .csv/.tsv, or .parquet), one row per node.
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// CSV: node label file (.npy, one integer per line, or a table keyed by --node-id-col);
    /// -1 or an empty field marks an unlabelled node (in no split).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Parquet: column of the --features table giving each row's node id.
    #[arg(long)]
    pub id_col: Option<String>,
    /// Parquet: integer label column of the --features table; CSV: label column of a
    /// --labels table keyed by --node-id-col (default: its other column).
    #[arg(long)]
    pub label_col: Option<String>,
    /// CSV/Parquet: node count, when isolated nodes follow the largest id.
    #[arg(long)]
    pub num_nodes: Option<usize>,
    /// TU: file prefix (default: the directory's name).
    #[arg(long)]
    pub prefix: Option<String>,
    /// OGB: which split/NAME directory to use when there are several (default: the first
    /// by name, with a warning naming the others).
    #[arg(long, value_name = "NAME")]
    pub ogb_split: Option<String>,
    /// Feature store to write besides x.npy (which stays as the source, except with --store
    /// sparse: the sparse store is lossless and replaces it). Without --store and --codec,
    /// features given as non-zeros only (pairs, a CSR triple, .npz) that are under 10 %
    /// non-zero are kept in the sparse store.
    #[command(flatten)]
    pub store: StoreFlags,
}

/// The table options of `a` (CSV and Parquet).
fn table_input(a: &Args) -> readers::TableInput {
    readers::TableInput {
        delimiter: a.delimiter.clone(),
        header: a.header,
        features_header: a.features_header,
        labels_header: a.labels_header,
        features_pairs: a.features_pairs,
        src_col: a.src_col.clone(),
        dst_col: a.dst_col.clone(),
        node_id_col: a.node_id_col.clone(),
        id_col: a.id_col.clone(),
        label_col: a.label_col.clone(),
        features: a.features.clone(),
        labels: a.labels.clone(),
        num_nodes: a.num_nodes,
        string_ids: a.relabel,
    }
}

/// Refuses an output that would overwrite the input (nothing the user gave is lost).
fn check_not_input(input: &Path, out: &Path) -> Result<()> {
    let (Ok(i), Ok(o)) = (input.canonicalize(), out.canonicalize()) else {
        return Ok(());
    };
    if i == o || i.starts_with(&o) {
        bail!(
            "--out {} would replace the input {}; choose another directory",
            out.display(),
            input.display()
        );
    }
    Ok(())
}

/// Refuses flags the chosen format does not read: a flag that silently does nothing
/// leaves the user believing it did.
fn check_flags(a: &Args) -> Result<()> {
    let name = |f: Format| {
        f.to_possible_value()
            .map_or(String::new(), |v| v.get_name().to_string())
    };
    let fmt = name(a.format);
    for (flag, set, format) in [
        ("--prefix", a.prefix.is_some(), Format::Tu),
        ("--ogb-split", a.ogb_split.is_some(), Format::Ogb),
    ] {
        if set && a.format != format {
            bail!(
                "{flag} does not apply to --format {fmt}: it is read by {}",
                name(format)
            );
        }
    }
    // The table flags: one rule with the Python package's keywords (readers::TableInput).
    if let Some(u) = table_input(a).unread(&fmt) {
        let flag = format!("--{}", u.option.replace('_', "-"));
        match u.read_by {
            Some([]) => bail!("{flag}: the flag describes a file that is not given"),
            Some(by) => bail!(
                "{flag} does not apply to --format {fmt}: it is read by {}",
                by.join(", ")
            ),
            None => bail!("--node-id-col and --id-col name the same thing; give one"),
        }
    }
    Ok(())
}

/// Runs `scalegnn ingest`.
pub fn run(a: Args) -> Result<()> {
    check_flags(&a)?;
    if !a.input.exists() {
        bail!("input {} does not exist", a.input.display());
    }
    check_not_input(&a.input, &a.out)?;
    // Store flags that cannot work (postgres without a URL) fail before any reading.
    a.store.check()?;
    let out_existed = a.out.exists();
    let t0 = Instant::now();
    let bars = Bars::new();
    {
        use scalegnn_data::Progress;
        bars.stage(&format!("reading {}", a.input.display()), None);
    }
    let ctx = || format!("reading {}", a.input.display());
    let raw = match a.format {
        Format::Npz => readers::npz::read(&a.input).with_context(ctx)?,
        Format::Npy => readers::npy_dir::read(&a.input).with_context(ctx)?,
        Format::Tu => readers::tu::read(&a.input, a.prefix.as_deref()).with_context(ctx)?,
        Format::Ogb => {
            readers::ogb::read_with(&a.input, a.ogb_split.as_deref()).with_context(ctx)?
        }
        Format::Graphbolt => readers::graphbolt::read(&a.input).with_context(ctx)?,
        Format::Csv => table_input(&a).read_csv(&a.input).with_context(ctx)?,
        Format::Parquet => table_input(&a).read_parquet(&a.input).with_context(ctx)?,
    };
    let mut raw = raw;
    let format = a
        .format
        .to_possible_value()
        .map_or(String::new(), |v| v.get_name().to_string());
    let split = readers::split_to_make(&format, &mut raw, a.split, "--split", &a.input);
    let opts = IngestOptions {
        undirected: a.undirected,
        dedup: !a.keep_duplicates,
        remove_self_loops: a.remove_self_loops,
        relabel: a.relabel,
        degree_cap: a.degree_cap,
        degree_features: a.degree_features,
        seed: a.seed,
        split,
        force: a.force,
        name: a.name.clone(),
    };
    let mut m = ingest(raw, &opts, &a.out, &bars)
        .with_context(|| format!("writing {}", a.out.display()))?;
    // Features the input gave as non-zeros only stay that way when they are mostly zeros,
    // unless a store was asked for.
    // Features the input gave as non-zeros only stay that way when they are mostly zeros,
    // unless a store was asked for; dense input that is mostly zeros gets a hint below.
    let st = m.ingest.clone().unwrap_or_default();
    let cells = m.num_nodes.saturating_mul(m.num_features);
    let nnz = st.feature_nonzeros.unwrap_or(0);
    let mostly_zeros =
        st.feature_nonzeros.is_some() && cells > 0 && nnz as f64 <= SPARSE_DENSITY * cells as f64;
    let keep_sparse = a.store.unset() && st.sparse_input && mostly_zeros;
    let sparse_flags = StoreFlags::sparse();
    let store = if keep_sparse { &sparse_flags } else { &a.store };
    if !store.is_default() {
        let stored = convert(&a.out, store, &bars).and_then(|done| {
            if store.kind() == "sparse" {
                drop_dense(&a.out, done)
            } else {
                Ok(done)
            }
        });
        match stored {
            Ok(done) => m = done,
            Err(e) if !out_existed => {
                // All or nothing: a dataset this command created goes if its store fails.
                let _ = std::fs::remove_dir_all(&a.out);
                return Err(e);
            }
            Err(e) => {
                return Err(e.context(format!(
                    "{} was written with its features in x.npy (the mmap f32 store); retry with `scalegnn store`",
                    a.out.display()
                )))
            }
        }
    }
    bars.finish();
    let link_line = match a.link_split {
        Some(spec) => {
            let done = scalegnn_data::Dataset::open(&a.out, Default::default())
                .map_err(anyhow::Error::from)
                .and_then(|ds| super::split_edges::split_into(&ds, spec, a.seed));
            match done {
                Ok(line) => Some(line),
                Err(e) => {
                    if !out_existed {
                        // All or nothing: the dataset this command created goes too.
                        let _ = std::fs::remove_dir_all(&a.out);
                    }
                    return Err(e.context(format!("--link-split {}", a.out.display())));
                }
            }
        }
        None => None,
    };
    if let Some(st) = &m.ingest {
        for w in &st.warnings {
            eprintln!("warning: {w}");
        }
        let mut said = vec![format!("{} edge lines read", st.input_edges)];
        if st.self_loops > 0 {
            said.push(format!(
                "{} self-loop{} {}",
                st.self_loops,
                if st.self_loops == 1 { "" } else { "s" },
                if st.self_loops_removed > 0 {
                    "removed"
                } else {
                    "kept"
                }
            ));
        }
        if st.duplicates_removed > 0 {
            said.push(format!("{} duplicate edges removed", st.duplicates_removed));
        }
        if st.capped_edges > 0 {
            said.push(format!(
                "{} in-edges dropped by the degree cap",
                st.capped_edges
            ));
        }
        if let Some(k) = st.relabelled_ids {
            said.push(format!("{k} ids relabelled to 0..{}", k.saturating_sub(1)));
        }
        said.push(format!("{} isolated nodes", st.isolated_nodes));
        if st.unlabelled > 0 {
            said.push(format!("{} unlabelled", st.unlabelled));
        }
        println!("{}", said.join(", "));
    }
    println!(
        "wrote {}: {} nodes, {} edges, {} features, {} classes{} in {:.1}s",
        a.out.display(),
        m.num_nodes,
        m.num_edges,
        m.num_features,
        m.num_classes,
        m.num_graphs
            .map(|g| format!(", {g} graphs"))
            .unwrap_or_default(),
        t0.elapsed().as_secs_f64()
    );
    if let Some(l) = link_line {
        println!("{l}");
    }
    // indptr u64 per node + column u32 and value f32 per non-zero, against 4 B per cell.
    let (sparse_bytes, dense_bytes) = (8 * (m.num_nodes + 1) + 8 * nnz, 4 * cells);
    let density = 100.0 * nnz as f64 / cells.max(1) as f64;
    if keep_sparse {
        println!(
            "features kept sparse as given ({density:.2} % non-zero): {} in the sparse store, not {} in x.npy (--store mmap writes x.npy)",
            mib(sparse_bytes),
            mib(dense_bytes)
        );
    } else if a.store.unset() && mostly_zeros {
        println!(
            "features are {density:.1} % non-zero: --store sparse keeps them in {} instead of x.npy's {}",
            mib(sparse_bytes),
            mib(dense_bytes)
        );
    }
    Ok(())
}

/// Features below this share of non-zeros are kept sparse when given sparse, and get a hint
/// when given dense: the sparse store (8 B per non-zero) then needs at most a fifth of
/// x.npy's bytes (4 B per cell); full batch keeps features up to 25 % non-zero sparse in
/// memory anyway (train's `SPARSE_MAX_DENSITY`).
const SPARSE_DENSITY: f64 = 0.1;

/// Bytes as MiB, one decimal.
fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}
