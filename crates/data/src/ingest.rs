//! Turning a reader's in-memory `RawDataset` into a checksummed dataset directory:
//! CSR build, degree cap, validation of features/labels/splits, atomic write.

use std::path::{Path, PathBuf};

use scalegnn_graph::{CsrBuilder, DegreeCap};

use crate::progress::Progress;
use crate::{DataError, DatasetWriter, Manifest, Result, SplitSpec, Task};

/// Dense node features, row-major `[rows, num_features]`.
#[derive(Debug, Clone)]
pub struct RawFeatures {
    pub data: Vec<f32>,
    pub num_features: usize,
    /// The file they came from (named in errors).
    pub source: PathBuf,
}

/// Labels of nodes or graphs.
#[derive(Debug, Clone)]
pub enum RawLabels {
    /// Class ids `0..C`.
    Classes(Vec<i64>),
    /// Real-valued targets, row-major `[rows, width]`.
    Targets { data: Vec<f32>, width: usize },
}

impl RawLabels {
    fn rows(&self) -> usize {
        match self {
            RawLabels::Classes(v) => v.len(),
            RawLabels::Targets { data, width } => data.len() / (*width).max(1),
        }
    }
}

/// Index lists of the three splits (node ids, or graph ids for graph tasks).
#[derive(Debug, Clone, Default)]
pub struct RawSplits {
    pub train: Vec<i64>,
    pub val: Vec<i64>,
    pub test: Vec<i64>,
}

/// Edge features aligned with the input edge list, row-major `[edges, width]`.
#[derive(Debug, Clone)]
pub struct RawEdgeAttr {
    pub data: Vec<f32>,
    pub width: usize,
}

/// Graph-level structure for datasets of many small graphs.
#[derive(Debug, Clone)]
pub struct RawGraphs {
    /// Node range of graph g is `graph_ptr[g]..graph_ptr[g+1]` (length G+1).
    pub graph_ptr: Vec<i64>,
    pub labels: Option<RawLabels>,
}

/// What a reader produces: an edge list plus whatever the source holds.
#[derive(Debug, Clone, Default)]
pub struct RawDataset {
    pub name: String,
    /// Provenance written into the manifest (format, input paths, options).
    pub source: serde_json::Value,
    /// Edge `src[k] → dst[k]`.
    pub src: Vec<i64>,
    pub dst: Vec<i64>,
    /// Node count when the source knows it (isolated nodes); else max id + 1.
    pub num_nodes: Option<usize>,
    pub x: Option<RawFeatures>,
    pub y: Option<RawLabels>,
    pub splits: Option<RawSplits>,
    pub edge_attr: Option<RawEdgeAttr>,
    pub graphs: Option<RawGraphs>,
}

/// Options common to every `ingest` format.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Add the reverse of every edge.
    pub undirected: bool,
    /// Keep one copy of each (src, dst) pair (default true).
    pub dedup: bool,
    pub remove_self_loops: bool,
    /// Map the sorted distinct ids to 0..N (original ids go to `node_ids.npy`).
    pub relabel: bool,
    pub degree_cap: Option<usize>,
    /// Seed for degree capping and generated splits.
    pub seed: u64,
    /// Split to make when the source has none (needs labels).
    pub split: Option<SplitSpec>,
    /// Replace an existing output directory.
    pub force: bool,
    /// Dataset name (defaults to the reader's).
    pub name: Option<String>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            undirected: false,
            dedup: true,
            remove_self_loops: false,
            relabel: false,
            degree_cap: None,
            seed: 0,
            split: None,
            force: false,
            name: None,
        }
    }
}

fn check_finite(data: &[f32], width: usize, what: &Path) -> Result<()> {
    if let Some(p) = data.iter().position(|v| !v.is_finite()) {
        return Err(DataError::invalid(
            what,
            format!(
                "feature value {} at row {}, column {} is not finite",
                data[p],
                p / width.max(1),
                p % width.max(1)
            ),
        ));
    }
    Ok(())
}

fn check_ids(ids: &[i64], n: usize, what: &str, src: &Path) -> Result<()> {
    if let Some(&bad) = ids.iter().find(|&&i| i < 0 || i as usize >= n) {
        return Err(DataError::invalid(
            src,
            format!("{what}: id {bad} is out of range 0..{n}"),
        ));
    }
    Ok(())
}

/// Most classes a label vector may imply (2^24; real node sets have up to a few thousand).
pub const MAX_CLASSES: i64 = 1 << 24;

/// Builds and writes the dataset directory `out` from `raw`; returns its manifest.
pub fn ingest(
    raw: RawDataset,
    opts: &IngestOptions,
    out: &Path,
    progress: &dyn Progress,
) -> Result<Manifest> {
    let src_label = PathBuf::from(
        raw.source
            .get("input")
            .and_then(|v| v.as_str())
            .unwrap_or(raw.name.as_str())
            .to_string(),
    );
    // Node count: every node-aligned part must agree.
    let mut n = raw.num_nodes;
    let mut agree = |rows: usize, what: &str, path: &Path| -> Result<()> {
        match n {
            Some(k) if k != rows && !opts.relabel => Err(DataError::invalid(
                path,
                format!("{what} has {rows} rows but the graph has {k} nodes"),
            )),
            _ => {
                n = Some(rows);
                Ok(())
            }
        }
    };
    if let Some(x) = &raw.x {
        if x.num_features == 0 || x.data.len() % x.num_features != 0 {
            return Err(DataError::invalid(
                &x.source,
                "feature matrix is not [N, F] with F > 0",
            ));
        }
        agree(x.data.len() / x.num_features, "feature matrix", &x.source)?;
    }
    let node_labels = raw.graphs.is_none();
    if let (Some(y), true) = (&raw.y, node_labels) {
        agree(y.rows(), "label vector", &src_label)?;
    }
    if let Some(g) = &raw.graphs {
        if let Some(&last) = g.graph_ptr.last() {
            agree(last as usize, "graph index", &src_label)?;
        }
    }

    progress.stage("building CSR", None);
    let mut builder = CsrBuilder::new()
        .undirected(opts.undirected)
        .dedup(opts.dedup)
        .remove_self_loops(opts.remove_self_loops)
        .relabel(opts.relabel)
        .track_edge_ids(raw.edge_attr.is_some());
    if let Some(k) = n {
        builder = builder.num_nodes(k);
    }
    let built = builder.build(&raw.src, &raw.dst)?;
    let mut csr = built.csr;
    let mut edge_ids = built.edge_ids;
    if opts.relabel {
        if let Some(k) = n {
            if k != csr.num_nodes() {
                return Err(DataError::invalid(
                    &src_label,
                    format!(
                        "node data has {k} rows but the edge list has {} distinct ids",
                        csr.num_nodes()
                    ),
                ));
            }
        }
    }
    let num_nodes = csr.num_nodes();
    if let Some(cap) = opts.degree_cap {
        progress.stage("capping in-degree", None);
        let (capped, kept) = DegreeCap {
            max_in_degree: cap,
            seed: opts.seed,
        }
        .apply(&csr);
        edge_ids = edge_ids.map(|ids| kept.iter().map(|&p| ids[p as usize]).collect());
        csr = capped;
    }

    let name = opts.name.clone().unwrap_or_else(|| raw.name.clone());
    let task = match (&raw.graphs, &raw.y) {
        (Some(g), _) => match &g.labels {
            Some(RawLabels::Classes(_)) => Task::GraphClassification,
            Some(RawLabels::Targets { .. }) => Task::GraphRegression,
            None => Task::None,
        },
        (None, Some(RawLabels::Classes(_))) => Task::NodeClassification,
        (None, Some(RawLabels::Targets { .. })) => Task::NodeRegression,
        (None, None) => Task::None,
    };
    let mut m = Manifest::new(&name, task);
    m.num_nodes = num_nodes as u64;
    m.num_edges = csr.num_edges() as u64;
    m.source = raw.source.clone();

    progress.stage("writing", None);
    let mut w = DatasetWriter::create(out, opts.force)?;
    csr.write_npy(w.dir())?;
    w.file_done();
    w.file_done();

    if let Some(x) = &raw.x {
        check_finite(&x.data, x.num_features, &x.source)?;
        w.write("x.npy", &[num_nodes, x.num_features], &x.data)?;
        m.num_features = x.num_features as u64;
    }
    let write_labels = |w: &mut DatasetWriter, file: &str, y: &RawLabels| -> Result<u64> {
        match y {
            RawLabels::Classes(c) => {
                if let Some(&bad) = c.iter().find(|&&v| v < 0) {
                    return Err(DataError::invalid(
                        &src_label,
                        format!("negative class label {bad}"),
                    ));
                }
                // The class count is the largest label + 1 and sizes the model's output
                // layer and per-class buffers: a label of 2^40 is a sparse id, not a class.
                if let Some((i, &bad)) = c.iter().enumerate().find(|(_, &v)| v >= MAX_CLASSES) {
                    return Err(DataError::invalid(
                        &src_label,
                        format!(
                            "class label {bad} (item {i}) would make more than {MAX_CLASSES} \
                             classes: class ids must run 0..C-1; map them to 0..C-1 first"
                        ),
                    ));
                }
                w.write(file, &[c.len()], c)?;
                Ok(c.iter().copied().max().map_or(0, |v| v as u64 + 1))
            }
            RawLabels::Targets { data, width } => {
                check_finite(data, *width, &src_label)?;
                w.write(file, &[data.len() / width, *width], data)?;
                Ok(0)
            }
        }
    };
    // Items the splits index: nodes, or graphs for graph-level tasks.
    let mut items = num_nodes;
    let mut split_labels: Option<Vec<i64>> = None;
    if let Some(g) = &raw.graphs {
        let ok = g.graph_ptr.first() == Some(&0) && g.graph_ptr.windows(2).all(|p| p[0] <= p[1]);
        if !ok {
            return Err(DataError::invalid(
                &src_label,
                "graph index is not a nondecreasing node range per graph",
            ));
        }
        w.write("graph_ptr.npy", &[g.graph_ptr.len()], &g.graph_ptr)?;
        items = g.graph_ptr.len() - 1;
        m.num_graphs = Some(items as u64);
        if let Some(y) = &g.labels {
            if y.rows() != items {
                return Err(DataError::invalid(
                    &src_label,
                    format!("{} graph labels for {items} graphs", y.rows()),
                ));
            }
            m.num_classes = write_labels(&mut w, "graph_y.npy", y)?;
            if let RawLabels::Classes(c) = y {
                split_labels = Some(c.clone());
            }
        }
        if let Some(y) = &raw.y {
            write_labels(&mut w, "y.npy", y)?;
        }
    } else if let Some(y) = &raw.y {
        m.num_classes = write_labels(&mut w, "y.npy", y)?;
        if let RawLabels::Classes(c) = y {
            split_labels = Some(c.clone());
        }
    }
    let splits = match (&raw.splits, opts.split) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(spec))
            if raw.y.is_some() || raw.graphs.as_ref().is_some_and(|g| g.labels.is_some()) =>
        {
            Some(spec.make(items, split_labels.as_deref(), opts.seed))
        }
        _ => None,
    };
    if let Some(s) = &splits {
        let mut seen = vec![false; items];
        for (file, ids) in [
            ("train_idx.npy", &s.train),
            ("val_idx.npy", &s.val),
            ("test_idx.npy", &s.test),
        ] {
            check_ids(ids, items, file, &src_label)?;
            for &i in ids.iter() {
                if std::mem::replace(&mut seen[i as usize], true) {
                    return Err(DataError::invalid(
                        &src_label,
                        format!("id {i} is in more than one split"),
                    ));
                }
            }
            w.write(file, &[ids.len()], ids)?;
        }
    }
    if let (Some(ea), Some(ids)) = (&raw.edge_attr, &edge_ids) {
        check_finite(&ea.data, ea.width, &src_label)?;
        let mut data = Vec::with_capacity(ids.len() * ea.width);
        for &k in ids {
            let k = k as usize;
            data.extend_from_slice(&ea.data[k * ea.width..(k + 1) * ea.width]);
        }
        w.write("edge_attr.npy", &[ids.len(), ea.width], &data)?;
    }
    if let Some(ids) = &built.node_ids {
        w.write("node_ids.npy", &[ids.len()], ids)?;
    }
    progress.stage("checksumming and renaming", None);
    w.commit(m)
}
