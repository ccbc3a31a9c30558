//! Small valid files the targets put beside the fuzzed one: the datasets whose manifest the
//! `manifest` target replaces, and parameter files for the `checkpoint` target. Deterministic,
//! so the seed manifests (written from these by `examples/make_corpus.rs`) keep matching
//! their checksums.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use scalegnn_data::{DatasetWriter, Manifest, Task};
use scalegnn_npy::{DType, Header};

/// Writes a node-classification dataset into `out` (which must not exist): a 6-node ring,
/// 3 features, 2 classes and the three splits.
pub fn node_dataset(out: &Path) -> scalegnn_data::Result<Manifest> {
    let n = 6usize;
    let mut w = DatasetWriter::create(out, false)?;
    // In-neighbours of node v on the undirected ring: v-1 and v+1.
    let indptr: Vec<i64> = (0..=n as i64).map(|v| 2 * v).collect();
    let indices: Vec<i64> = (0..n as i64)
        .flat_map(|v| [(v + n as i64 - 1) % n as i64, (v + 1) % n as i64])
        .collect();
    w.write("indptr.npy", &[n + 1], &indptr)?;
    w.write("indices.npy", &[indices.len()], &indices)?;
    let x: Vec<f32> = (0..n * 3).map(|i| i as f32 * 0.5).collect();
    w.write("x.npy", &[n, 3], &x)?;
    w.write("y.npy", &[n], &[0i64, 1, 0, 1, 0, 1])?;
    w.write("train_idx.npy", &[2], &[0i64, 1])?;
    w.write("val_idx.npy", &[2], &[2i64, 3])?;
    w.write("test_idx.npy", &[2], &[4i64, 5])?;
    let mut m = Manifest::new("fixture-node", Task::NodeClassification);
    m.num_nodes = n as u64;
    m.num_edges = indices.len() as u64;
    m.num_features = 3;
    m.num_classes = 2;
    w.commit(m)
}

/// Writes a graph-classification dataset into `out` (which must not exist): two graphs (a
/// triangle and an edge), 2 features, graph labels and splits over graphs.
pub fn graph_dataset(out: &Path) -> scalegnn_data::Result<Manifest> {
    let mut w = DatasetWriter::create(out, false)?;
    // Triangle 0-1-2 and edge 3-4, both directions; in-neighbours per node.
    let indptr = [0i64, 2, 4, 6, 7, 8];
    let indices = [1i64, 2, 0, 2, 0, 1, 4, 3];
    w.write("indptr.npy", &[6], &indptr)?;
    w.write("indices.npy", &[8], &indices)?;
    w.write(
        "x.npy",
        &[5, 2],
        &[1f32, 0., 0., 1., 1., 1., 0., 0., 2., 2.],
    )?;
    w.write("graph_ptr.npy", &[3], &[0i64, 3, 5])?;
    w.write("graph_y.npy", &[2], &[1i64, 0])?;
    w.write("train_idx.npy", &[1], &[0i64])?;
    w.write("val_idx.npy", &[1], &[1i64])?;
    w.write("test_idx.npy", &[1], &[1i64])?;
    let mut m = Manifest::new("fixture-graph", Task::GraphClassification);
    m.num_nodes = 5;
    m.num_edges = 8;
    m.num_features = 2;
    m.num_classes = 2;
    m.num_graphs = Some(2);
    w.commit(m)
}

/// This thread's fixture datasets: the scratch dir that holds them and their paths.
struct Datasets {
    _root: tempfile::TempDir,
    dirs: Vec<PathBuf>,
}

thread_local! {
    static DATASETS: RefCell<Option<Datasets>> = const { RefCell::new(None) };
}

fn make_datasets() -> Result<Datasets, String> {
    let root = crate::scratch().map_err(|e| e.to_string())?;
    let node = root.path().join("node");
    let graph = root.path().join("graph");
    node_dataset(&node).map_err(|e| e.to_string())?;
    graph_dataset(&graph).map_err(|e| e.to_string())?;
    Ok(Datasets {
        _root: root,
        dirs: vec![node, graph],
    })
}

/// Runs `f` on this thread's fixture dataset directories (node-level, then graph-level),
/// made on first use. `f` may overwrite their `manifest.json` and nothing else.
pub fn with_datasets(f: impl FnOnce(&[PathBuf]) -> Result<(), String>) -> Result<(), String> {
    DATASETS.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(make_datasets()?);
        }
        match slot.as_ref() {
            Some(d) => f(&d.dirs),
            None => Err("no fixture datasets".into()),
        }
    })
}

/// A `.npy` file of f32 zeros with shape `[rows, cols]`; when that is more than `max_elems`
/// elements (or overflows), the header alone, which every reader must refuse as truncated.
pub fn zeros_npy(rows: usize, cols: usize, max_elems: usize) -> Vec<u8> {
    let mut out = Header::encode(DType::F32, &[rows, cols]);
    if let Some(n) = rows.checked_mul(cols).filter(|&n| n <= max_elems) {
        out.resize(out.len() + 4 * n, 0);
    }
    out
}
