//! Derived per-node tables (DESIGN.md, "Memory model"): SAGMM's gate input, built by a
//! streaming pass under the memory budget and kept as a memory-mapped feature store in
//! `DATASET/derived/<name>-<key>/`, where the key hashes everything the table depends on
//! (input checksums, store kind and codec, parameters, algorithm version). A table whose key
//! does not match is never reused; stale ones (inputs that changed) are removed; the
//! dataset's own files are never touched. When the dataset directory is not writable the
//! table goes under a fallback directory the caller names (e.g. the run directory).
//!
//! ```text
//! let t = derived::gate_input(&dataset_dir, &graph, store, &GateParams::new(k),
//!     &BuildOptions { budget_bytes, fallback_dir: Some(&run_dir) })?;
//! // t.store: the [N, F + k] rows; t.location says where; t.built: what the build did.
//! ```

mod gate;
mod key;
mod scratch;
mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use scalegnn_graph::Csr;
use scalegnn_limits::human;
use scalegnn_nn::moe::gate_input;
use scalegnn_store::{Codec, FeatureStore, MmapStore, StoreError};
use serde::Serialize;

pub use gate::{BasisPlace, GatePlan};
pub use key::{FeatureInputs, FileSum, KeyInputs};

use key::dataset_inputs;
use table::{is_real_dir, read_marker, remove_stale, Marker, TempTable, PRODUCER};

/// The directory of derived tables inside a dataset (or fallback) directory.
pub const DERIVED_DIR: &str = "derived";

/// The marker file of a table: who wrote it, from which inputs (the key's), its files.
pub const MARKER_FILE: &str = "derived.json";

/// Name of SAGMM's gate-input table (`derived/sagmm-gate-<key>/x.npy`).
pub const GATE_TABLE: &str = "sagmm-gate";

/// Version of the gate table: the gate input's own version (`gate_input::VERSION`) times
/// 100 plus the layout of this directory, so either change gives new keys.
pub const GATE_TABLE_VERSION: u32 = gate_input::VERSION * 100 + 1;

/// Test hook: abort the process (as a kill would) when the build reaches this phase
/// (`hop1`, `hop2`, `commit`).
const ABORT_ENV: &str = "SCALEGNN_TEST_ABORT_DERIVED";

/// Aborts the process at `phase` when the test hook asks for it.
pub(crate) fn abort_point(phase: &str) {
    if std::env::var(ABORT_ENV).is_ok_and(|v| v == phase) {
        eprintln!("{ABORT_ENV}: aborting at {phase}");
        std::process::abort();
    }
}

/// What can go wrong building a derived table.
#[derive(Debug, thiserror::Error)]
pub enum DerivedError {
    /// Reading the features, or opening the table as a store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or writing a `.npy` file (the error names it).
    #[error(transparent)]
    Npy(#[from] scalegnn_npy::NpyError),
    /// Reading the dataset's manifest.
    #[error(transparent)]
    Data(#[from] scalegnn_data::DataError),
    /// The eigen-solve (its scratch file is named when that is what failed).
    #[error("SAGMM gate input: Laplacian eigenvectors: {0}")]
    Graph(#[from] scalegnn_graph::GraphError),
    /// The operating system refused an operation on a file or directory.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    /// The inputs do not make a gate input (mismatched counts, nothing to compute).
    #[error("SAGMM gate input: {0}")]
    Gate(String),
    /// The budget cannot hold even the smallest build.
    #[error(
        "SAGMM gate input: a memory budget of {} cannot hold the build, which needs at \
         least {}: {detail}; raise --mem-budget",
        human(*.budget),
        human(*.need)
    )]
    Budget {
        budget: u64,
        need: u64,
        detail: String,
    },
    /// Neither the dataset's `derived/` nor the fallback directory could be written.
    #[error("{dir}: cannot write the derived table here ({err}){hint}")]
    NotWritable {
        dir: PathBuf,
        err: std::io::Error,
        hint: String,
    },
    /// A directory under the table's final name that scalegnn did not write (no marker).
    #[error(
        "{path}: exists but carries no {MARKER_FILE} of scalegnn's: not a derived table; \
         move it away"
    )]
    Foreign { path: PathBuf },
    /// The marker could not be written.
    #[error("{path}: {reason}")]
    Marker { path: PathBuf, reason: String },
}

/// The parameters of SAGMM's gate input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GateParams {
    /// Laplacian eigenvectors appended to the mixed features (`--gate-eigvecs`).
    pub k: usize,
    /// Lanczos steps.
    pub steps: usize,
    /// Seed of the Lanczos start vector and the eigenvectors' signs.
    pub seed: u64,
}

impl GateParams {
    /// The parameters every trainer uses for `k` eigenvectors (default steps, seed 0).
    pub fn new(k: usize) -> GateParams {
        GateParams {
            k,
            steps: gate_input::default_eig_steps(k),
            seed: gate_input::DEFAULT_EIG_SEED,
        }
    }
}

/// How to build a derived table when none can be reused.
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions<'a> {
    /// Resident bytes the build may use: the run's `--mem-budget`, or
    /// `scalegnn_limits::available_memory()` when it has none.
    pub budget_bytes: u64,
    /// Where tables go (under `<dir>/derived/`) when the dataset directory is not writable,
    /// e.g. the run directory; None: such a build is an error.
    pub fallback_dir: Option<&'a Path>,
}

/// Where a table lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableLocation {
    /// `DATASET/derived/`.
    Dataset,
    /// `<fallback>/derived/`; `reason` says why (to show the user).
    Fallback { reason: String },
}

/// What a build did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The budget plan it followed.
    pub plan: GatePlan,
    /// Wall time of the build, seconds.
    pub seconds: f64,
    /// Largest eigenpair residual `‖L v − λ v‖` (how converged the eigenvectors are).
    pub residual_max: Option<f64>,
    /// `manifest` when every input checksum came from the dataset's manifest, `contents`
    /// when some file had to be hashed (a `meta.json` directory, or a stale manifest).
    pub checksums_from: &'static str,
    /// Wall time of each phase, seconds: `hop1`, `hop2` (with the mix), `eigen`, `write`.
    pub phases: Vec<(&'static str, f64)>,
}

/// SAGMM's gate input of a dataset as a feature store.
pub struct GateTable {
    /// The rows, `[N, F + k]` f32, memory-mapped from `dir/x.npy`.
    pub store: MmapStore,
    /// `<DATASET or fallback>/derived/sagmm-gate-<key>/`.
    pub dir: PathBuf,
    /// The key (16 hex digits) of the inputs recorded in `dir/derived.json`.
    pub key: String,
    /// Under the dataset or under the fallback directory, and why.
    pub location: TableLocation,
    /// None when an existing table was reused.
    pub built: Option<BuildReport>,
    /// Stale tables removed on the way (their inputs changed).
    pub removed: Vec<PathBuf>,
}

impl std::fmt::Debug for GateTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateTable")
            .field("dir", &self.dir)
            .field("key", &self.key)
            .field("location", &self.location)
            .field("built", &self.built)
            .field("removed", &self.removed)
            .finish()
    }
}

/// Refuses inputs that do not make a gate input.
fn check_inputs(graph: &Csr, store: &dyn FeatureStore, p: &GateParams) -> Result<(), DerivedError> {
    if graph.num_nodes() != store.num_nodes() {
        return Err(DerivedError::Gate(format!(
            "the graph has {} nodes but the feature store {} rows",
            graph.num_nodes(),
            store.num_nodes()
        )));
    }
    if store.dim() + p.k == 0 {
        return Err(DerivedError::Gate(
            "the features have no column and k = 0: nothing to compute".into(),
        ));
    }
    Ok(())
}

/// How the budget would be used to build the gate input of `graph` and `store`, or the
/// error naming the budget when even the smallest build does not fit.
pub fn gate_plan(
    graph: &Csr,
    store: &dyn FeatureStore,
    params: &GateParams,
    budget_bytes: u64,
) -> Result<GatePlan, DerivedError> {
    check_inputs(graph, store, params)?;
    gate::plan(graph, store, params, budget_bytes)
}

/// The table in `dir` when it is a complete table of exactly `inputs` (`Ok(None)` when there
/// is none; one of ours that does not match, or is damaged, is removed so it can be rebuilt).
fn open_valid(
    dir: &Path,
    key: &str,
    inputs: &KeyInputs,
    shape: [usize; 2],
) -> Result<Option<MmapStore>, DerivedError> {
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(None);
    }
    if !is_real_dir(dir) {
        return Err(DerivedError::Foreign {
            path: dir.to_path_buf(),
        });
    }
    let Some(m) = read_marker(dir) else {
        return Err(DerivedError::Foreign {
            path: dir.to_path_buf(),
        });
    };
    if m.key == key && m.inputs == *inputs && m.shape == shape {
        if let Ok(s) = MmapStore::open(dir, Codec::F32) {
            let size_ok = m.files.get("x.npy").is_some_and(|e| {
                std::fs::metadata(dir.join("x.npy")).is_ok_and(|md| md.len() == e.bytes)
            });
            if s.num_nodes() == shape[0] && s.dim() == shape[1] && size_ok {
                return Ok(Some(s));
            }
        }
    }
    // Ours but not these inputs (a hash collision) or damaged: never reused. Removed when
    // the directory is writable; a read-only dataset leaves it, and the build goes to the
    // fallback directory.
    let _ = std::fs::remove_dir_all(dir);
    Ok(None)
}

/// Whether a table (described by its marker) can never be used again next to `cur`: an older
/// version, other topology, or other contents of the same feature store.
fn is_stale(m: &Marker, cur: &KeyInputs) -> bool {
    let (a, b) = (&m.inputs, cur);
    // Only a file both depend on that changed makes the table stale: a table over another
    // graph of the same dataset (a link split's message graph) is another table, kept.
    let topology_changed = a
        .topology
        .iter()
        .any(|(name, sum)| b.topology.get(name).is_some_and(|s| s != sum));
    m.table == b.table
        && (a.version < b.version
            || topology_changed
            || (a.features.kind == b.features.kind
                && a.features.codec == b.features.codec
                && a.features.files != b.features.files))
}

/// SAGMM's gate input of the dataset in `dataset_dir` (whose topology is `graph` and whose
/// features `store` reads): the table of these exact inputs under `DATASET/derived/` (or the
/// fallback's `derived/`) when there is one, else built there by streaming under
/// `opts.budget_bytes` and written atomically.
pub fn gate_input(
    dataset_dir: &Path,
    graph: &Csr,
    store: &dyn FeatureStore,
    params: &GateParams,
    opts: &BuildOptions,
) -> Result<GateTable, DerivedError> {
    gate_input_on(dataset_dir, graph, &[], store, params, opts)
}

/// [`gate_input`] over a graph derived from the dataset's topology and `graph_files` (e.g. a
/// link split's message graph, without the held-out edges those files list): the files join
/// the table's key, so another split never reuses this table.
pub fn gate_input_on(
    dataset_dir: &Path,
    graph: &Csr,
    graph_files: &[&str],
    store: &dyn FeatureStore,
    params: &GateParams,
    opts: &BuildOptions,
) -> Result<GateTable, DerivedError> {
    check_inputs(graph, store, params)?;
    let params_json = serde_json::to_value(params).map_err(|e| DerivedError::Marker {
        path: dataset_dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let (inputs, from) = dataset_inputs(
        dataset_dir,
        graph,
        graph_files,
        store,
        GATE_TABLE,
        GATE_TABLE_VERSION,
        params_json,
    )?;
    let key = inputs.key();
    let name = format!("{GATE_TABLE}-{key}");
    let shape = [store.num_nodes(), store.dim() + params.k];
    let primary = dataset_dir.join(DERIVED_DIR);
    let fallback = opts.fallback_dir.map(|d| d.join(DERIVED_DIR));

    let mut candidates = vec![(primary.clone(), TableLocation::Dataset)];
    if let Some(fb) = &fallback {
        let reason = format!("reusing the table built earlier under {}", fb.display());
        candidates.push((fb.clone(), TableLocation::Fallback { reason }));
    }
    for (base, location) in candidates {
        let dir = base.join(&name);
        if let Some(store) = open_valid(&dir, &key, &inputs, shape)? {
            let removed = remove_stale(&base, &name, |m| is_stale(m, &inputs));
            return Ok(GateTable {
                store,
                dir,
                key,
                location,
                built: None,
                removed,
            });
        }
    }

    let plan = gate::plan(graph, store, params, opts.budget_bytes)?;
    let (base, location, tmp) = match TempTable::create(&primary, &name) {
        Ok(t) => (primary, TableLocation::Dataset, t),
        Err(err) => match &fallback {
            Some(fb) => match TempTable::create(fb, &name) {
                Ok(t) => {
                    let reason = format!(
                        "{} is not writable ({err}): built under {}",
                        primary.display(),
                        fb.display()
                    );
                    (fb.clone(), TableLocation::Fallback { reason }, t)
                }
                Err(e2) => {
                    return Err(DerivedError::NotWritable {
                        dir: fb.clone(),
                        err: e2,
                        hint: format!("; nor under the dataset: {}: {err}", primary.display()),
                    })
                }
            },
            None => {
                return Err(DerivedError::NotWritable {
                    dir: primary,
                    err,
                    hint: "; pass a fallback directory (e.g. the run directory)".into(),
                })
            }
        },
    };
    let t0 = Instant::now();
    let built = gate::build(tmp.path(), graph, store, params, &plan)?;
    let seconds = t0.elapsed().as_secs_f64();
    let marker = Marker {
        producer: PRODUCER.into(),
        table: GATE_TABLE.into(),
        key: key.clone(),
        inputs: inputs.clone(),
        shape: shape.to_vec(),
        files: [(
            "x.npy".to_string(),
            FileSum {
                bytes: built.bytes,
                xxh3: built.xxh3.clone(),
            },
        )]
        .into_iter()
        .collect(),
        build: serde_json::json!({
            "checksums_from": from,
            "plan": plan,
            "seconds": seconds,
            "phases": built.phases.iter().map(|(n, s)| (n.to_string(), *s)).collect::<BTreeMap<_, _>>(),
            "residual_max": built.residual_max,
        }),
    };
    let dir = base.join(&name);
    // False: another process committed the same table first; it is used instead.
    let ours = tmp.commit(&marker, &dir)?;
    let store = open_valid(&dir, &key, &inputs, shape)?.ok_or_else(|| {
        DerivedError::Gate(format!(
            "{}: the table just written is not valid",
            dir.display()
        ))
    })?;
    let removed = remove_stale(&base, &name, |m| is_stale(m, &inputs));
    Ok(GateTable {
        store,
        dir,
        key,
        location,
        built: ours.then_some(BuildReport {
            plan,
            seconds,
            residual_max: built.residual_max,
            checksums_from: from,
            phases: built.phases,
        }),
        removed,
    })
}
