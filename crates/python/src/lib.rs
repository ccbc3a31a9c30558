//! `scalegnn._native`: the Rust library behind the `scalegnn` Python package — ingest from
//! NumPy arrays or files, training (interruptible with Ctrl-C, progress through a callback)
//! and inference of a trained run. The Python layer (`python/scalegnn/__init__.py`) wraps
//! these in `Dataset`, `Run` and `train`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;

mod stream;

use scalegnn_data::readers;
use scalegnn_data::{
    ingest as build, Dataset, IngestOptions, NoProgress, OpenOptions, RawDataset, RawEdgeAttr,
    RawFeatures, RawGraphs, RawLabels, RawSplits, SplitSpec,
};
use scalegnn_train::infer::LoadedRun;
use scalegnn_train::tune::{tune, TuneOutcome};
use scalegnn_train::{
    EpochEnd, Prediction, Reporter, RunConfig, RunOptions, RunSummary, State, TrainOutcome,
};

pyo3::create_exception!(
    _native,
    ScalegnnError,
    PyException,
    "An error from scalegnn (bad input, a bad setting, a damaged file); the message names it."
);

/// Any library error as a `ScalegnnError` with the library's message.
fn err(e: impl std::fmt::Display) -> PyErr {
    ScalegnnError::new_err(e.to_string())
}

/// A contiguous NumPy array's elements, copied (the Python layer makes arrays contiguous).
fn vec1<T: numpy::Element + Copy>(a: &PyReadonlyArray1<'_, T>, what: &str) -> PyResult<Vec<T>> {
    a.as_slice()
        .map(<[T]>::to_vec)
        .map_err(|_| err(format!("{what}: the array is not contiguous")))
}

/// A 2-D array as (row-major elements, columns).
fn vec2<T: numpy::Element + Copy>(
    a: &PyReadonlyArray2<'_, T>,
    what: &str,
) -> PyResult<(Vec<T>, usize)> {
    let cols = a.shape()[1];
    let v = a
        .as_slice()
        .map(<[T]>::to_vec)
        .map_err(|_| err(format!("{what}: the array is not C-contiguous")))?;
    Ok((v, cols))
}

/// Node rows of a 1-D id array, each checked against the `n` rows of `path`.
pub(crate) fn node_rows(
    ids: &PyReadonlyArray1<'_, i64>,
    n: usize,
    what: &str,
    path: &Path,
) -> PyResult<Vec<u32>> {
    let raw = ids
        .as_slice()
        .map_err(|_| err(format!("{what}: the array is not contiguous")))?;
    raw.iter()
        .enumerate()
        .map(|(k, &v)| match u32::try_from(v) {
            Ok(u) if (u as usize) < n => Ok(u),
            _ => Err(err(format!(
                "{what}[{k}] = {v} is not a node of {} ({n} nodes)",
                path.display()
            ))),
        })
        .collect()
}

/// The split to generate when the input has none (`random:0.6,0.2`, `per-class:20,30`).
fn split_spec(s: Option<&str>) -> PyResult<Option<SplitSpec>> {
    s.map(|s| s.parse::<SplitSpec>().map_err(err)).transpose()
}

/// Builds the dataset directory `out` from arrays (the Python layer has turned masks into
/// index arrays and picked class ids or real targets by dtype); returns `out`.
#[pyfunction]
#[pyo3(signature = (
    out, src, dst, *, num_nodes=None, x=None, y=None, y_values=None, train=None, val=None,
    test=None, edge_attr=None, graph_ptr=None, graph_y=None, graph_y_values=None,
    undirected=false, name=None, split=None, seed=0, force=false, degree_features=false
))]
#[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
fn ingest_arrays(
    py: Python<'_>,
    out: PathBuf,
    src: PyReadonlyArray1<'_, i64>,
    dst: PyReadonlyArray1<'_, i64>,
    num_nodes: Option<usize>,
    x: Option<PyReadonlyArray2<'_, f32>>,
    y: Option<PyReadonlyArray1<'_, i64>>,
    y_values: Option<PyReadonlyArray2<'_, f32>>,
    train: Option<PyReadonlyArray1<'_, i64>>,
    val: Option<PyReadonlyArray1<'_, i64>>,
    test: Option<PyReadonlyArray1<'_, i64>>,
    edge_attr: Option<PyReadonlyArray2<'_, f32>>,
    graph_ptr: Option<PyReadonlyArray1<'_, i64>>,
    graph_y: Option<PyReadonlyArray1<'_, i64>>,
    graph_y_values: Option<PyReadonlyArray2<'_, f32>>,
    undirected: bool,
    name: Option<String>,
    split: Option<String>,
    seed: u64,
    force: bool,
    degree_features: bool,
) -> PyResult<PathBuf> {
    let name_given = name.clone().unwrap_or_else(|| "arrays".into());
    let mut raw = RawDataset {
        name: name_given.clone(),
        source: serde_json::json!({"format": "python arrays", "input": name_given}),
        src: vec1(&src, "edge_index[0]")?,
        dst: vec1(&dst, "edge_index[1]")?,
        num_nodes,
        ..Default::default()
    };
    if let Some(x) = &x {
        let (data, num_features) = vec2(x, "x")?;
        raw.x = Some(RawFeatures {
            data,
            num_features,
            source: PathBuf::from("x (array)"),
            ids: None,
            sparse: false,
        });
    }
    let labels = |classes: &Option<PyReadonlyArray1<'_, i64>>,
                  values: &Option<PyReadonlyArray2<'_, f32>>,
                  what: &str|
     -> PyResult<Option<RawLabels>> {
        Ok(match (classes, values) {
            (Some(c), _) => Some(RawLabels::Classes(vec1(c, what)?)),
            (None, Some(v)) => {
                let (data, width) = vec2(v, what)?;
                Some(RawLabels::Targets { data, width })
            }
            (None, None) => None,
        })
    };
    raw.y = labels(&y, &y_values, "y")?;
    if train.is_some() || val.is_some() || test.is_some() {
        let part = |a: &Option<PyReadonlyArray1<'_, i64>>, what| {
            a.as_ref().map_or(Ok(Vec::new()), |a| vec1(a, what))
        };
        raw.splits = Some(RawSplits {
            train: part(&train, "train")?,
            val: part(&val, "val")?,
            test: part(&test, "test")?,
        });
    }
    if let Some(e) = &edge_attr {
        let (data, width) = vec2(e, "edge_attr")?;
        raw.edge_attr = Some(RawEdgeAttr { data, width });
    }
    if let Some(g) = &graph_ptr {
        raw.graphs = Some(RawGraphs {
            graph_ptr: vec1(g, "graph_ptr")?,
            labels: labels(&graph_y, &graph_y_values, "graph_y")?,
        });
    }
    let opts = IngestOptions {
        undirected,
        seed,
        split: split_spec(split.as_deref())?,
        force,
        name,
        degree_features,
        ..Default::default()
    };
    py.detach(|| build(raw, &opts, &out, &NoProgress))
        .map_err(err)?;
    Ok(out)
}

/// The table options of a CSV/Parquet ingest from a dict of `scalegnn ingest`'s column
/// flags (`header`, `src_col`, …); an unknown key is an error naming it.
fn table_input(table: Option<&Bound<'_, PyDict>>, relabel: bool) -> PyResult<readers::TableInput> {
    let mut t = readers::TableInput {
        string_ids: relabel,
        ..Default::default()
    };
    let Some(table) = table else {
        return Ok(t);
    };
    for (k, v) in table.iter() {
        let key: String = k.extract()?;
        let bad = |e: PyErr| ScalegnnError::new_err(format!("table option {key}: {e}"));
        match key.as_str() {
            "delimiter" => t.delimiter = v.extract().map_err(bad)?,
            "header" => t.header = v.extract().map_err(bad)?,
            "features_header" => t.features_header = v.extract().map_err(bad)?,
            "labels_header" => t.labels_header = v.extract().map_err(bad)?,
            "features_pairs" => t.features_pairs = v.extract().map_err(bad)?,
            "src_col" => t.src_col = column_name(&v).map_err(bad)?,
            "dst_col" => t.dst_col = column_name(&v).map_err(bad)?,
            "node_id_col" => t.node_id_col = column_name(&v).map_err(bad)?,
            "id_col" => t.id_col = column_name(&v).map_err(bad)?,
            "label_col" => t.label_col = column_name(&v).map_err(bad)?,
            "features" => t.features = v.extract().map_err(bad)?,
            "labels" => t.labels = v.extract().map_err(bad)?,
            "num_nodes" => t.num_nodes = v.extract().map_err(bad)?,
            other => {
                return Err(ScalegnnError::new_err(format!(
                    "unknown table option `{other}` (delimiter, header, features_header, \
                     labels_header, features_pairs, src_col, dst_col, node_id_col, id_col, \
                     label_col, features, labels, num_nodes)"
                )))
            }
        }
    }
    Ok(t)
}

/// A column given as a 0-based index or a header name.
fn column_name(v: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if v.is_none() {
        return Ok(None);
    }
    match v.extract::<usize>() {
        Ok(i) => Ok(Some(i.to_string())),
        Err(_) => v.extract::<String>().map(Some),
    }
}

/// Builds the dataset directory `out` from files in one of the formats `scalegnn ingest`
/// reads: npy (a folder of .npy), npz, tu, ogb, graphbolt, or a csv/parquet edge table with
/// `table` options (the column flags of `scalegnn ingest`).
#[pyfunction]
#[pyo3(signature = (input, out, format, *, undirected=false, name=None, split=None, seed=0, force=false, relabel=false, degree_features=false, table=None))]
#[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
fn ingest_files(
    py: Python<'_>,
    input: PathBuf,
    out: PathBuf,
    format: &str,
    undirected: bool,
    name: Option<String>,
    split: Option<String>,
    seed: u64,
    force: bool,
    relabel: bool,
    degree_features: bool,
    table: Option<Bound<'_, PyDict>>,
) -> PyResult<PathBuf> {
    let split = split_spec(split.as_deref())?;
    let format = format.to_string();
    let tin = table_input(table.as_ref(), relabel)?;
    // The same rule as the CLI's flags: an option the format does not read is refused.
    if let Some(u) = tin.unread(&format) {
        return Err(ScalegnnError::new_err(match u.read_by {
            Some([]) => format!(
                "{}: the option describes a file that is not given",
                u.option
            ),
            Some(by) => format!(
                "table option {} does not apply to format {format}: it is read by {}",
                u.option,
                by.join(", ")
            ),
            None => "node_id_col and id_col name the same thing; give one".to_string(),
        }));
    }
    py.detach(|| -> Result<(), String> {
        let read = |r: scalegnn_data::Result<RawDataset>| {
            r.map_err(|e| format!("reading {}: {e}", input.display()))
        };
        let mut raw = match format.as_str() {
            "npy" => read(readers::npy_dir::read(&input))?,
            "npz" => read(readers::npz::read(&input))?,
            "tu" => read(readers::tu::read(&input, None))?,
            "ogb" => read(readers::ogb::read(&input))?,
            "graphbolt" => read(readers::graphbolt::read(&input))?,
            "csv" => read(tin.read_csv(&input))?,
            "parquet" => read(tin.read_parquet(&input))?,
            other => {
                return Err(format!(
                    "format `{other}`: expected npy, npz, tu, ogb, graphbolt, csv or parquet"
                ))
            }
        };
        let split = readers::split_to_make(&format, &mut raw, split, "split", &input);
        let opts = IngestOptions {
            undirected,
            seed,
            split,
            force,
            name,
            relabel,
            degree_features,
            ..Default::default()
        };
        build(raw, &opts, &out, &NoProgress)
            .map(|_| ())
            .map_err(|e| format!("writing {}: {e}", out.display()))
    })
    .map_err(err)?;
    Ok(out)
}

/// Draws an edge split for link prediction into the dataset at `path` (`link_split`:
/// train,val,test fractions; `negatives` fixed negatives per validation/test positive);
/// refuses to replace an existing split unless `force`. Returns the summary line.
#[pyfunction]
#[pyo3(signature = (path, *, link_split="0.85,0.05,0.10", negatives=1, seed=0, force=false))]
fn split_edges(
    py: Python<'_>,
    path: PathBuf,
    link_split: &str,
    negatives: usize,
    seed: u64,
    force: bool,
) -> PyResult<String> {
    let spec = scalegnn_data::LinkSplitSpec {
        negatives_per_positive: negatives,
        ..scalegnn_data::LinkSplitSpec::parse(link_split)
            .map_err(|e| ScalegnnError::new_err(format!("link_split: {e}")))?
    };
    spec.check()
        .map_err(|e| ScalegnnError::new_err(format!("negatives: {e}")))?;
    py.detach(|| {
        let ds = Dataset::open(&path, OpenOptions::default()).map_err(|e| e.to_string())?;
        if ds.manifest.link_split.is_some() && !force {
            return Err(format!(
                "{} already has an edge split (manifest link_split); force=True replaces it \
                 (runs trained on it then no longer match it)",
                path.display()
            ));
        }
        scalegnn_data::link::split_dataset(&ds, spec, seed).map_err(|e| e.to_string())
    })
    .map_err(ScalegnnError::new_err)
}

/// The manifest of the dataset directory `path`, as JSON (checksums verified on open).
#[pyfunction]
fn dataset_manifest(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    let m = py
        .detach(|| Dataset::open(&path, OpenOptions::default()).map(|d| d.manifest))
        .map_err(err)?;
    serde_json::to_string(&m).map_err(err)
}

/// Passes a run's progress to Python callables (the Python layer's progress bar).
struct PyReport {
    on_epoch: Option<Py<PyAny>>,
    on_note: Option<Py<PyAny>>,
    run: usize,
    epochs: usize,
}

impl PyReport {
    /// Calls `f` with `args`; a callback that raises is reported and otherwise ignored, so a
    /// broken progress bar never loses a run.
    fn call<'py, A: pyo3::call::PyCallArgs<'py>>(py: Python<'py>, f: &Py<PyAny>, args: A) {
        if let Err(e) = f.call1(py, args) {
            e.print(py);
        }
    }
}

impl Reporter for PyReport {
    fn note(&mut self, msg: &str) {
        if let Some(f) = &self.on_note {
            Python::attach(|py| PyReport::call(py, f, (msg,)));
        }
    }
    fn run_start(&mut self, run: usize, _seed: u64, epochs: usize, _from: usize) {
        self.run = run;
        self.epochs = epochs;
    }
    fn epoch(&mut self, e: &EpochEnd, _s: &State) {
        if let Some(f) = &self.on_epoch {
            Python::attach(|py| {
                let val = PyDict::new(py);
                for (k, v) in e.val {
                    let _ = val.set_item(*k, *v);
                }
                PyReport::call(py, f, (self.run, e.epoch, self.epochs, e.loss, val));
            });
        }
    }
    fn run_end(&mut self, _seed: u64, _s: &RunSummary) {}
}

/// What a worker thread's training returns.
type Trained = Result<(TrainOutcome, Option<serde_json::Value>), String>;

/// Trains `config_json` (RunConfig keys) into `out`, optionally after a `tune`-trial search.
/// Runs on a worker thread with the interpreter released; Ctrl-C stops it at the next batch
/// boundary (the run directory keeps what `--resume` needs) and raises KeyboardInterrupt.
/// Returns JSON: `{"runs": [{"seed", …summary}], "tune": {…} | null}`.
#[pyfunction]
#[pyo3(signature = (config_json, out, *, force=false, tune_trials=None, verify=true, on_epoch=None, on_note=None))]
#[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
fn train(
    py: Python<'_>,
    config_json: &str,
    out: PathBuf,
    force: bool,
    tune_trials: Option<usize>,
    verify: bool,
    on_epoch: Option<Py<PyAny>>,
    on_note: Option<Py<PyAny>>,
) -> PyResult<String> {
    let cfg: RunConfig = serde_json::from_str(config_json).map_err(|e| {
        // serde lists every key after an unknown one; the first words name it.
        let e = e.to_string();
        let short = e.split(", expected one of").next().unwrap_or(&e);
        err(format!(
            "config: {short} (the keys are those of `scalegnn train --config`)"
        ))
    })?;
    cfg.check().map_err(err)?;
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Trained>();
    let mut report = PyReport {
        on_epoch,
        on_note,
        run: 0,
        epochs: 0,
    };
    let work = |report: &mut PyReport| -> Trained {
        let (cfg, tuned) = match tune_trials {
            Some(n) => match tune(&cfg, n, &out, Some(&stop), verify, report)
                .map_err(|e| format!("tuning for {}: {e}", out.display()))?
            {
                TuneOutcome::Done(t) => {
                    let j = serde_json::to_value(&t).map_err(|e| e.to_string())?;
                    (t.cfg, Some(j))
                }
                TuneOutcome::Interrupted { trial } => {
                    return Ok((
                        TrainOutcome::Interrupted {
                            run: 0,
                            epoch: trial,
                        },
                        None,
                    ))
                }
            },
            None => (cfg.clone(), None),
        };
        let opts = RunOptions {
            out: out.clone(),
            force,
            resume: false,
            verify,
            interrupt: Some(&stop),
        };
        let outcome = scalegnn_train::train(&cfg, &opts, report)
            .map_err(|e| format!("training into {}: {e}", out.display()))?;
        if let (Some(t), TrainOutcome::Done(_)) = (&tuned, &outcome) {
            let dir = scalegnn_train::RunDir::open(&out).map_err(|e| e.to_string())?;
            let text = serde_json::to_string_pretty(t).map_err(|e| e.to_string())?;
            dir.write("tune.json", text.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        Ok((outcome, tuned))
    };
    let mut interrupted: Option<PyErr> = None;
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            // A panic becomes an error here: otherwise the scope would re-raise it as a
            // PanicException, which `except Exception` does not catch.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut report)))
                .unwrap_or_else(|_| Err("training failed (a panic; see stderr)".into()));
            let _ = tx.send(r);
        });
        let mut rx = rx;
        loop {
            // Wait with the interpreter released, so the worker's callbacks can run; wake
            // every 100 ms to let Python handle a Ctrl-C.
            let (got, back) = py.detach(move || (rx.recv_timeout(Duration::from_millis(100)), rx));
            rx = back;
            match got {
                Ok(r) => return r,
                Err(RecvTimeoutError::Timeout) => {
                    if interrupted.is_none() {
                        if let Err(e) = py.check_signals() {
                            stop.store(true, Ordering::SeqCst);
                            interrupted = Some(e);
                        }
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err("the training thread ended without a result".into())
                }
            }
        }
    });
    if let Some(e) = interrupted {
        return Err(e);
    }
    let (outcome, tuned) = result.map_err(err)?;
    match outcome {
        TrainOutcome::Done(runs) => {
            let runs: Vec<serde_json::Value> = runs
                .into_iter()
                .map(|(seed, s)| {
                    let mut v = serde_json::to_value(&s).unwrap_or_default();
                    v["seed"] = seed.into();
                    v
                })
                .collect();
            Ok(serde_json::json!({"runs": runs, "tune": tuned}).to_string())
        }
        TrainOutcome::Interrupted { run, epoch } => {
            Err(pyo3::exceptions::PyKeyboardInterrupt::new_err(format!(
                "interrupted during run {run} after {epoch} epochs"
            )))
        }
    }
}

/// One trained run reloaded from its directory: scores, predictions, embeddings.
#[pyclass(module = "scalegnn._native", frozen)]
struct LoadedModel {
    inner: LoadedRun,
}

#[pymethods]
impl LoadedModel {
    /// Opens a run directory (`run-N` of a multi-run directory) on the dataset it trained on,
    /// or on `dataset`.
    #[new]
    #[pyo3(signature = (path, dataset=None))]
    fn new(py: Python<'_>, path: PathBuf, dataset: Option<PathBuf>) -> PyResult<LoadedModel> {
        let inner = py
            .detach(|| LoadedRun::open(&path, dataset.as_deref()).map_err(|e| e.to_string()))
            .map_err(|e| err(format!("opening run {}: {e}", path.display())))?;
        Ok(LoadedModel { inner })
    }

    /// Rows predict and embed give (graphs of a graph-level run, else nodes).
    #[getter]
    fn items(&self) -> usize {
        self.inner.items()
    }

    /// The epoch of the kept checkpoint.
    #[getter]
    fn checkpoint_epoch(&self) -> usize {
        self.inner.meta.epoch
    }

    /// The task's metrics on each split, as JSON `{"train": {...}, "val": ..., "test": ...}`.
    fn scores(&self, py: Python<'_>) -> PyResult<String> {
        let s = py
            .detach(|| self.inner.scores().map_err(|e| e.to_string()))
            .map_err(err)?;
        let mut obj = serde_json::Map::new();
        for (name, sc) in ["train", "val", "test"].iter().zip(s) {
            let m: serde_json::Map<String, serde_json::Value> = sc
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into()))
                .collect();
            obj.insert(name.to_string(), m.into());
        }
        Ok(serde_json::Value::Object(obj).to_string())
    }

    /// Every item's prediction: class ids (int64), values, or with `proba` probabilities
    /// (float32), shaped `[items]` or `[items, k]`. The array owns the library's buffer.
    #[pyo3(signature = (proba=false))]
    fn predict<'py>(&self, py: Python<'py>, proba: bool) -> PyResult<Bound<'py, PyAny>> {
        let p = py
            .detach(|| self.inner.predict(proba).map_err(|e| e.to_string()))
            .map_err(err)?;
        match p {
            Prediction::Ints(v, shape) => Ok(PyArray1::from_vec(py, v).reshape(shape)?.into_any()),
            Prediction::Floats(v, shape) => {
                Ok(PyArray1::from_vec(py, v).reshape(shape)?.into_any())
            }
        }
    }

    /// Every item's embedding `[items, d]` (float32, no copy of the library's buffer).
    fn embed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = py
            .detach(|| self.inner.embed().map_err(|e| e.to_string()))
            .map_err(err)?;
        let (rows, cols) = (m.rows, m.cols);
        Ok(PyArray1::from_vec(py, m.data)
            .reshape([rows, cols])?
            .into_any())
    }

    /// A link run's probability that each pair (`[m, 2]` node rows) is an edge.
    fn pair_scores<'py>(
        &self,
        py: Python<'py>,
        pairs: PyReadonlyArray2<'py, i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if pairs.shape()[1] != 2 {
            return Err(err(format!(
                "pairs: shape {:?}, expected [m, 2]",
                pairs.shape()
            )));
        }
        let (flat, _) = vec2(&pairs, "pairs")?;
        let mut rows = Vec::with_capacity(flat.len() / 2);
        for (k, p) in flat.chunks_exact(2).enumerate() {
            let node = |v: i64| {
                u32::try_from(v)
                    .map_err(|_| err(format!("pairs row {k}: node {v} is not a node row")))
            };
            rows.push([node(p[0])?, node(p[1])?]);
        }
        let s = py
            .detach(|| self.inner.pair_scores(&rows).map_err(|e| e.to_string()))
            .map_err(err)?;
        Ok(PyArray1::from_vec(py, s).into_any())
    }
}

/// The path as given when it is a directory of one run or of several.
#[pyfunction]
fn run_dirs(path: PathBuf) -> Vec<PathBuf> {
    if path.join("checkpoint").exists() {
        return vec![path];
    }
    (0..)
        .map(|k| path.join(format!("run-{k}")))
        .take_while(|p| Path::is_dir(p))
        .collect()
}

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ScalegnnError", m.py().get_type::<ScalegnnError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(ingest_arrays, m)?)?;
    m.add_function(wrap_pyfunction!(ingest_files, m)?)?;
    m.add_function(wrap_pyfunction!(dataset_manifest, m)?)?;
    m.add_function(wrap_pyfunction!(split_edges, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(run_dirs, m)?)?;
    m.add_class::<LoadedModel>()?;
    m.add_class::<stream::BatchStream>()?;
    m.add_class::<stream::FeatureRows>()?;
    m.add_function(wrap_pyfunction!(stream::neighbor_stream, m)?)?;
    m.add_function(wrap_pyfunction!(stream::link_stream, m)?)?;
    Ok(())
}
