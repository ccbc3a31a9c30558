//! `scalegnn store`: put a dataset's features into another feature store or codec, in place,
//! and record it in the manifest; also the `--store/--codec/--pg-url` flags `ingest` shares.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use scalegnn_data::{
    xxh3_file, Dataset, FeatureStoreInfo, FileEntry, Manifest, OpenOptions, Progress,
};
use scalegnn_store::{
    open_store_with, store_files, write_store_with, ChunkFn, Codec, NpyRows, RowSource,
    SparseStore, StoreError, StoreOptions, StoreRows, KINDS, SPARSE_FILES,
};

use crate::progress::Bars;

/// Where and how the node features are stored.
#[derive(clap::Args, Clone, Debug)]
pub struct StoreFlags {
    /// Feature store: mmap (x.npy, x.f16.npy or x.u8.npy beside the manifest), sqlite
    /// (x.sqlite), postgres (a table on a PostgreSQL server, recorded in x.postgres.json) or
    /// sparse (only the non-zeros, x.csr.*.npy; f32, for bag-of-words features).
    /// [default: mmap; ingest keeps features given sparse (pairs, a CSR triple, .npz) that
    /// are under 10 % non-zero in the sparse store]
    #[arg(long = "store", value_name = "KIND", value_parser = KINDS)]
    pub kind: Option<String>,
    /// Feature codec: f32 (exact), f16 (half the bytes), u8 (a quarter; per-column min/max).
    #[arg(long, value_name = "CODEC", default_value = "f32", value_parser = ["f32", "f16", "u8"])]
    pub codec: String,
    /// PostgreSQL server for --store postgres, postgres://USER[:PASSWORD]@HOST:PORT/DB
    /// (default: $SCALEGNN_PG_URL). The password is never written to disk; prefer the
    /// environment variable (or PGPASSWORD) to keep it out of the process list.
    #[arg(long, value_name = "URL")]
    pub pg_url: Option<String>,
}

impl StoreFlags {
    /// The store kind asked for (mmap when not given).
    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("mmap")
    }

    /// True for the store every dataset has anyway: x.npy itself.
    pub fn is_default(&self) -> bool {
        self.kind() == "mmap" && self.codec == "f32"
    }

    /// True when neither --store nor --codec was given (the choice is left to ingest).
    pub fn unset(&self) -> bool {
        self.kind.is_none() && self.codec == "f32"
    }

    /// The sparse store (f32), ingest's choice for sparse input of low density.
    pub fn sparse() -> StoreFlags {
        StoreFlags {
            kind: Some("sparse".into()),
            codec: "f32".into(),
            pg_url: None,
        }
    }

    fn codec(&self) -> Result<Codec> {
        Ok(self.codec.parse::<Codec>()?)
    }

    fn options(&self) -> StoreOptions {
        StoreOptions {
            pg_url: self.pg_url.clone(),
            ..Default::default()
        }
    }

    /// Refuses flags that cannot work before any data is read (e.g. postgres without a URL).
    pub fn check(&self) -> Result<()> {
        let codec = self.codec()?;
        // The sparse store's file list is the codec check: it exists for f32 only.
        store_files(self.kind(), codec).context("--store/--codec")?;
        if self.kind() == "postgres" {
            self.options().pg_write_server()?;
        }
        Ok(())
    }
}

/// Arguments of `scalegnn store`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  scalegnn store data/products --store mmap --codec u8
  scalegnn store data/products --store sqlite --codec f16
  SCALEGNN_PG_URL=postgres://me@db:5432/gnn scalegnn store data/products --store postgres

x.npy stays: it is the source of every store (a dataset ingested with --store sparse has none:
its sparse store is the source). `scalegnn train` opens the store the manifest names.")]
pub struct Args {
    /// Dataset directory.
    pub dataset: PathBuf,
    #[command(flatten)]
    pub flags: StoreFlags,
}

/// Runs `scalegnn store`.
pub fn run(a: Args) -> Result<()> {
    a.flags.check()?;
    let bars = Bars::new();
    convert(&a.dataset, &a.flags, &bars)?;
    Ok(())
}

/// Writes the features `dir/x.npy` (or, without it, the dataset's sparse store) into the
/// store `flags` name, checks it opens, then records kind, codec and the store's files (with
/// checksums) in `manifest.json`, replaced atomically. The dataset is verified first
/// (checksums), so a damaged source is not copied into a store.
pub fn convert(dir: &Path, flags: &StoreFlags, bars: &Bars) -> Result<Manifest> {
    let t0 = Instant::now();
    let codec = flags.codec()?;
    let kind = flags.kind();
    let opts = flags.options();
    bars.stage(&format!("verifying {}", dir.display()), None);
    let ds = Dataset::open(dir, OpenOptions::default())
        .with_context(|| format!("opening dataset {}", dir.display()))?;
    let had_manifest = dir.join("manifest.json").exists();
    let mut manifest = ds.manifest.clone();
    // The rows come from x.npy; a sparse dataset keeps no x.npy, its sparse store is exact.
    let from_sparse = ds.x.is_none() && SPARSE_FILES.iter().all(|f| dir.join(f).exists());
    if ds.x.is_none() && !from_sparse {
        bail!(
            "{}: the dataset has no node features (x.npy) to put in a feature store",
            dir.display()
        );
    }
    drop(ds);
    // Back to a sparse store the dataset still has: nothing to write, only the manifest.
    let keep_sparse = from_sparse && kind == "sparse";
    if keep_sparse && manifest.feature_store.kind == "sparse" {
        bail!(
            "{}: the features are already in the sparse store (the dataset has no x.npy)",
            dir.display()
        );
    }
    let (sparse, sparse_rows, npy);
    let rows: &dyn RowSource = if from_sparse {
        sparse = SparseStore::open(dir, Codec::F32)?;
        sparse_rows = StoreRows::new(&sparse);
        &sparse_rows
    } else {
        npy = NpyRows::open(&dir.join("x.npy"))?;
        &npy
    };
    let source = if from_sparse {
        "the sparse store"
    } else {
        "x.npy"
    };
    let what = || {
        format!(
            "writing the {kind} feature store ({codec}) of {}",
            dir.display()
        )
    };
    // u8 scans once for the column ranges, sparse once to count the non-zeros.
    let passes = if codec == Codec::U8 || kind == "sparse" {
        2
    } else {
        1
    };
    bars.stage(
        &format!("{kind} store ({codec})"),
        Some((passes * rows.num_nodes()) as u64),
    );
    if !keep_sparse {
        write_store_with(dir, kind, codec, &Counted(rows, bars), &opts).with_context(what)?;
    }
    // Read it back once: the shape must match and the store must open as train will open it.
    let store = open_store_with(dir, kind, codec, &opts)
        .with_context(|| format!("opening the new {kind} store of {}", dir.display()))?;
    if (store.num_nodes(), store.dim()) != (rows.num_nodes(), rows.dim()) {
        bail!(
            "the new {kind} store of {} holds {} x {} features, {source} {} x {}",
            dir.display(),
            store.num_nodes(),
            store.dim(),
            rows.num_nodes(),
            rows.dim()
        );
    }
    drop(store);
    bars.stage("checksumming", None);
    manifest.feature_store = FeatureStoreInfo {
        kind: kind.to_string(),
        codec: codec.name().to_string(),
    };
    // A make_synth.py directory (meta.json only) gets a full manifest: every file was just
    // verified by opening it, so its checksums can be recorded too.
    let names: Vec<String> = if had_manifest {
        store_files(kind, codec)?
            .into_iter()
            .map(String::from)
            .collect()
    } else {
        dataset_files(dir)?
    };
    for name in names {
        let p = dir.join(&name);
        let bytes = std::fs::metadata(&p)
            .with_context(|| format!("reading {}", p.display()))?
            .len();
        let xxh3 = xxh3_file(&p)?;
        manifest.files.insert(name, FileEntry { bytes, xxh3 });
    }
    write_manifest(dir, &manifest)?;
    bars.finish();
    let place = if kind == "postgres" {
        format!(" on {}", opts.pg_write_server().unwrap_or_default())
    } else {
        String::new()
    };
    println!(
        "stored the features of {} in the {kind} store ({codec}){place}: {} nodes x {} features in {:.1}s",
        dir.display(),
        rows.num_nodes(),
        rows.dim(),
        t0.elapsed().as_secs_f64()
    );
    Ok(manifest)
}

/// Removes the dense `x.npy` of a dataset whose features were just put in its sparse store
/// (lossless, so the sparse store becomes the source): the manifest stops listing it first,
/// so an interruption leaves an unlisted x.npy that verification names, never a listed file
/// that is gone.
pub fn drop_dense(dir: &Path, mut manifest: Manifest) -> Result<Manifest> {
    if manifest.feature_store.kind != "sparse" {
        bail!(
            "{}: x.npy is kept unless the features are in the sparse store",
            dir.display()
        );
    }
    manifest.files.remove("x.npy");
    write_manifest(dir, &manifest)?;
    let xp = dir.join("x.npy");
    std::fs::remove_file(&xp).with_context(|| format!("removing {}", xp.display()))?;
    Ok(manifest)
}

/// Regular, non-hidden files of `dir` except the manifest.
fn dataset_files(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().map(|t| t.is_file()).unwrap_or(false)
            && !name.starts_with('.')
            && name != "manifest.json"
        {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Replaces `dir/manifest.json` atomically: a synced temp file renamed over it.
fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let path = dir.join("manifest.json");
    let tmp = dir.join(format!(".manifest.json.tmp-{}", std::process::id()));
    let res = m.write(&tmp).map_err(anyhow::Error::from).and_then(|_| {
        std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))
    });
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A row source that advances the progress bar as chunks go by.
struct Counted<'a>(&'a dyn RowSource, &'a Bars);

impl RowSource for Counted<'_> {
    fn num_nodes(&self) -> usize {
        self.0.num_nodes()
    }
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn for_each_chunk(&self, f: &mut ChunkFn<'_>) -> Result<(), StoreError> {
        let dim = self.0.dim().max(1);
        self.0.for_each_chunk(&mut |first, chunk| {
            f(first, chunk)?;
            self.1.advance((chunk.len() / dim) as u64);
            Ok(())
        })
    }
    fn npy_path(&self) -> Option<&Path> {
        self.0.npy_path()
    }
}
