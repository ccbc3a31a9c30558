//! Turning a reader's in-memory `RawDataset` into a checksummed dataset directory:
//! CSR build, degree cap, validation of features/labels/splits, atomic write.

use std::path::{Path, PathBuf};

use scalegnn_graph::{CsrBuilder, DegreeCap};

use crate::progress::Progress;
use crate::{DataError, DatasetWriter, IngestStats, Manifest, Result, SplitSpec, Task};

/// Dense node features, row-major `[rows, num_features]`.
#[derive(Debug, Clone)]
pub struct RawFeatures {
    pub data: Vec<f32>,
    pub num_features: usize,
    /// The file they came from (named in errors).
    pub source: PathBuf,
    /// The node id of each row, for a table keyed by id (ids as the edge list has them);
    /// `None`: row k is node k.
    pub ids: Option<Vec<i64>>,
    /// The input held only the non-zeros (a CSR triple, an `.npz` `attr_*` matrix, feature
    /// pairs): ingest records their density, and the CLI keeps them sparse when it is low.
    pub sparse: bool,
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
    /// Official splits 1..S when the source has several (`splits` is split 0).
    pub more_splits: Vec<RawSplits>,
    pub edge_attr: Option<RawEdgeAttr>,
    pub graphs: Option<RawGraphs>,
    /// The node id of each label row, for labels keyed by id; `None`: row k is node k.
    pub y_ids: Option<Vec<i64>>,
    /// The file the labels came from, when not the input itself (named in errors).
    pub y_source: Option<PathBuf>,
    /// String node ids: `id_names[k]` is the id the input wrote for code `k` (the edge list
    /// and node tables then hold codes).
    pub id_names: Option<Vec<String>>,
    /// What the reader skipped or found suspicious, said to the user and kept in the manifest.
    pub warnings: Vec<String>,
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
    /// A graph without node features gets the local degree profile as its features
    /// ([`degree_profile`]); an input that brings features is refused with it.
    pub degree_features: bool,
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
            degree_features: false,
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

/// Where each input id goes: `0..N` as given, or (with `--relabel`) the position of the id
/// among the sorted distinct ids of the edge list and the keyed node tables.
struct IdMap {
    /// Sorted distinct input ids (relabel only).
    ids: Option<Vec<i64>>,
    num_nodes: usize,
}

impl IdMap {
    fn node(&self, id: i64) -> Option<usize> {
        match &self.ids {
            Some(ids) => ids.binary_search(&id).ok(),
            None => usize::try_from(id).ok().filter(|&v| v < self.num_nodes),
        }
    }
}

/// Places the rows of a table keyed by id in node order; rows of nodes the table does not
/// name get `fill`. Returns the rows and how many nodes had none.
fn place_rows<T: Copy>(
    map: &IdMap,
    ids: &[i64],
    rows: &[T],
    width: usize,
    fill: T,
    what: &Path,
    name_id: &dyn Fn(i64) -> String,
) -> Result<(Vec<T>, u64)> {
    let n = map.num_nodes;
    scalegnn_limits::check_array("the node table", &[n, width], std::mem::size_of::<T>())
        .map_err(|e| DataError::invalid(what, e.to_string()))?;
    let mut out = vec![fill; n * width];
    let mut seen = vec![false; n];
    for (r, &id) in ids.iter().enumerate() {
        let v = map.node(id).ok_or_else(|| {
            DataError::invalid(
                what,
                format!(
                    "row {}: node id {} is not a node of the graph (0..{n})",
                    r + 1,
                    name_id(id)
                ),
            )
        })?;
        if std::mem::replace(&mut seen[v], true) {
            return Err(DataError::invalid(
                what,
                format!("row {}: node id {} has an earlier row", r + 1, name_id(id)),
            ));
        }
        out[v * width..(v + 1) * width].copy_from_slice(&rows[r * width..(r + 1) * width]);
    }
    let missing = seen.iter().filter(|&&s| !s).count() as u64;
    Ok((out, missing))
}

/// Builds and writes the dataset directory `out` from `raw`; returns its manifest.
pub fn ingest(
    mut raw: RawDataset,
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
    let mut stats = IngestStats {
        input_edges: raw.src.len() as u64,
        warnings: std::mem::take(&mut raw.warnings),
        ..Default::default()
    };
    if opts.degree_features && raw.x.is_some() {
        return Err(DataError::invalid(
            &src_label,
            "degree features are for graphs without node features, and this input brings \
             its own",
        ));
    }
    if opts.degree_features && raw.graphs.is_some() {
        return Err(DataError::invalid(
            &src_label,
            "degree features are for one graph, not for a collection of graphs",
        ));
    }
    if raw.src.is_empty() && raw.graphs.is_none() {
        return Err(DataError::invalid(
            &src_label,
            "the edge list has no edges: nothing to build a graph from",
        ));
    }
    let names = raw.id_names.take();
    let name_id = |id: i64| match &names {
        Some(n) => usize::try_from(id)
            .ok()
            .and_then(|k| n.get(k))
            .map_or_else(|| id.to_string(), |s| format!("{s:?}")),
        None => id.to_string(),
    };
    let y_keyed = raw.y_ids.is_some();
    let x_keyed = raw.x.as_ref().is_some_and(|x| x.ids.is_some());
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
        if !x_keyed {
            agree(x.data.len() / x.num_features, "feature matrix", &x.source)?;
        }
    }
    let node_labels = raw.graphs.is_none();
    if let (Some(y), true, false) = (&raw.y, node_labels, y_keyed) {
        agree(y.rows(), "label vector", &src_label)?;
    }
    if let Some(g) = &raw.graphs {
        if let Some(&last) = g.graph_ptr.last() {
            agree(last as usize, "graph index", &src_label)?;
        }
    }
    let keyed_ids = || {
        raw.x
            .iter()
            .filter_map(|x| x.ids.as_deref())
            .chain(raw.y_ids.as_deref())
            .flatten()
            .copied()
    };
    if let Some(bad) = keyed_ids().find(|&i| i < 0) {
        return Err(DataError::invalid(
            &src_label,
            format!("a node table names the negative node id {bad}"),
        ));
    }

    progress.stage("building CSR", None);
    let self_loops = raw.src.iter().zip(&raw.dst).filter(|(s, d)| s == d).count() as u64;
    stats.self_loops = self_loops;
    let mut builder = CsrBuilder::new()
        .undirected(opts.undirected)
        .dedup(opts.dedup)
        .remove_self_loops(opts.remove_self_loops)
        .track_edge_ids(raw.edge_attr.is_some());
    let map = if opts.relabel {
        // The ids of the node tables count too: a node with features but no edge stays.
        let mut ids: Vec<i64> = raw.src.iter().chain(&raw.dst).copied().collect();
        ids.extend(keyed_ids());
        ids.sort_unstable();
        ids.dedup();
        if let Some(k) = n.filter(|&k| k != ids.len() && !(x_keyed || y_keyed)) {
            return Err(DataError::invalid(
                &src_label,
                format!(
                    "node data has {k} rows but the edge list has {} distinct ids",
                    ids.len()
                ),
            ));
        }
        stats.relabelled_ids = Some(ids.len() as u64);
        let num_nodes = ids.len();
        let at = |v: i64| ids.binary_search(&v).map_or(-1, |p| p as i64);
        raw.src.iter_mut().for_each(|v| *v = at(*v));
        raw.dst.iter_mut().for_each(|v| *v = at(*v));
        IdMap {
            ids: Some(ids),
            num_nodes,
        }
    } else {
        // Keyed tables may name isolated nodes past the largest edge id.
        let edge_max = raw.src.iter().chain(&raw.dst).copied().max().unwrap_or(-1);
        let key_max = keyed_ids().max().unwrap_or(-1);
        let k = match n {
            Some(k) => k,
            None => (edge_max.max(key_max) + 1) as usize,
        };
        IdMap {
            ids: None,
            num_nodes: k,
        }
    };
    builder = builder.num_nodes(map.num_nodes);
    let built = builder.build(&raw.src, &raw.dst)?;
    let mut csr = built.csr;
    let mut edge_ids = built.edge_ids;
    let num_nodes = csr.num_nodes();
    if opts.remove_self_loops {
        stats.self_loops_removed = self_loops;
    }
    let emitted = (stats.input_edges - self_loops) * if opts.undirected { 2 } else { 1 }
        + (self_loops - stats.self_loops_removed);
    stats.duplicates_removed = emitted.saturating_sub(csr.num_edges() as u64);
    if let Some(cap) = opts.degree_cap {
        progress.stage("capping in-degree", None);
        let (capped, kept) = DegreeCap {
            max_in_degree: cap,
            seed: opts.seed,
        }
        .apply(&csr);
        edge_ids = edge_ids.map(|ids| kept.iter().map(|&p| ids[p as usize]).collect());
        stats.capped_edges = (csr.num_edges() - capped.num_edges()) as u64;
        csr = capped;
    }
    stats.isolated_nodes = {
        let mut touched = vec![false; num_nodes];
        for v in 0..num_nodes {
            let nb = csr.neighbors(v);
            if !nb.is_empty() {
                touched[v] = true;
            }
            for u in nb.iter() {
                touched[u] = true;
            }
        }
        touched.iter().filter(|&&t| !t).count() as u64
    };

    // Tables keyed by id, in node order.
    if let Some(x) = raw.x.as_mut() {
        if let Some(ids) = x.ids.take() {
            let (data, missing) = place_rows(
                &map,
                &ids,
                &x.data,
                x.num_features,
                0f32,
                &x.source,
                &name_id,
            )?;
            x.data = data;
            stats.featureless_nodes = missing;
            if missing > 0 {
                stats.warnings.push(format!(
                    "{missing} of {num_nodes} nodes have no row in {}: their features are zero",
                    x.source.display()
                ));
            }
        }
    }
    if let Some(ids) = raw.y_ids.take() {
        match raw.y.as_mut() {
            Some(RawLabels::Classes(c)) => {
                let at = raw.y_source.as_deref().unwrap_or(&src_label);
                let (placed, _) = place_rows(&map, &ids, c, 1, -1i64, at, &name_id)?;
                *c = placed;
            }
            Some(RawLabels::Targets { data, width }) => {
                let at = raw.y_source.as_deref().unwrap_or(&src_label);
                let (placed, missing) =
                    place_rows(&map, &ids, data, *width, f32::NAN, at, &name_id)?;
                if missing > 0 {
                    return Err(DataError::invalid(
                        &src_label,
                        format!("{missing} nodes have no regression target"),
                    ));
                }
                *data = placed;
            }
            None => {}
        }
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

    if opts.degree_features {
        // A collection, or features given, were refused before the directory was created.
        let x = degree_profile(&csr);
        w.write("x.npy", &[num_nodes, DEGREE_PROFILE], &x)?;
        m.num_features = DEGREE_PROFILE as u64;
        m.source["features"] = serde_json::json!("local degree profile (--degree-features)");
        stats.feature_nonzeros = Some(x.iter().filter(|v| **v != 0.0).count() as u64);
    }
    if let Some(x) = &raw.x {
        check_finite(&x.data, x.num_features, &x.source)?;
        w.write("x.npy", &[num_nodes, x.num_features], &x.data)?;
        m.num_features = x.num_features as u64;
        stats.feature_nonzeros = Some(x.data.iter().filter(|v| **v != 0.0).count() as u64);
        stats.sparse_input = x.sparse;
    }
    let label_file = raw.y_source.clone().unwrap_or_else(|| src_label.clone());
    let write_labels = |w: &mut DatasetWriter, file: &str, y: &RawLabels| -> Result<(u64, u64)> {
        let src_label = &label_file;
        match y {
            RawLabels::Classes(c) => {
                if let Some((i, &bad)) = c.iter().enumerate().find(|(_, &v)| v < -1) {
                    return Err(DataError::invalid(
                        src_label,
                        format!(
                            "class label {bad} (item {i}) is negative: class ids run 0..C-1, \
                             and -1 (or an empty field) marks an unlabelled item"
                        ),
                    ));
                }
                // The class count is the largest label + 1 and sizes the model's output
                // layer and per-class buffers: a label of 2^40 is a sparse id, not a class.
                if let Some((i, &bad)) = c.iter().enumerate().find(|(_, &v)| v >= MAX_CLASSES) {
                    return Err(DataError::invalid(
                        src_label,
                        format!(
                            "class label {bad} (item {i}) would make more than {MAX_CLASSES} \
                             classes: class ids must run 0..C-1; map them to 0..C-1 first"
                        ),
                    ));
                }
                let unlabelled = c.iter().filter(|&&v| v < 0).count() as u64;
                if unlabelled == c.len() as u64 {
                    return Err(DataError::invalid(
                        src_label,
                        "every item is unlabelled (-1): there is nothing to train on",
                    ));
                }
                w.write(file, &[c.len()], c)?;
                Ok((
                    c.iter().copied().max().map_or(0, |v| v as u64 + 1),
                    unlabelled,
                ))
            }
            RawLabels::Targets { data, width } => {
                check_finite(data, *width, src_label)?;
                w.write(file, &[data.len() / width, *width], data)?;
                Ok((0, 0))
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
            (m.num_classes, stats.unlabelled) = write_labels(&mut w, "graph_y.npy", y)?;
            if let RawLabels::Classes(c) = y {
                split_labels = Some(c.clone());
            }
        }
        if let Some(y) = &raw.y {
            write_labels(&mut w, "y.npy", y)?;
        }
    } else if let Some(y) = &raw.y {
        (m.num_classes, stats.unlabelled) = write_labels(&mut w, "y.npy", y)?;
        if let RawLabels::Classes(c) = y {
            split_labels = Some(c.clone());
        }
    }
    if stats.unlabelled > 0 {
        stats.warnings.push(format!(
            "{} of {items} {} are unlabelled (-1 in {}): no split holds them",
            stats.unlabelled,
            if raw.graphs.is_some() {
                "graphs"
            } else {
                "nodes"
            },
            if raw.graphs.is_some() {
                "graph_y.npy"
            } else {
                "y.npy"
            },
        ));
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
    if let Some(s0) = &splits {
        // Several official splits are written as [S, len] arrays padded with -1.
        let all: Vec<&RawSplits> = std::iter::once(s0).chain(&raw.more_splits).collect();
        for (k, s) in all.iter().enumerate() {
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
                            format!("split {k}: id {i} is in more than one of train, val, test"),
                        ));
                    }
                    if split_labels.as_ref().is_some_and(|y| y[i as usize] < 0) {
                        return Err(DataError::invalid(
                            &src_label,
                            format!(
                                "{file} (split {k}): item {i} is unlabelled (-1) but in a split"
                            ),
                        ));
                    }
                }
            }
        }
        for (file, part) in [
            ("train_idx.npy", 0usize),
            ("val_idx.npy", 1),
            ("test_idx.npy", 2),
        ] {
            let pick = |s: &RawSplits| match part {
                0 => s.train.clone(),
                1 => s.val.clone(),
                _ => s.test.clone(),
            };
            if all.len() == 1 {
                let ids = pick(s0);
                w.write(file, &[ids.len()], &ids)?;
            } else {
                let width = all.iter().map(|s| pick(s).len()).max().unwrap_or(0);
                let mut grid = vec![-1i64; all.len() * width];
                for (k, s) in all.iter().enumerate() {
                    let ids = pick(s);
                    grid[k * width..k * width + ids.len()].copy_from_slice(&ids);
                }
                w.write(file, &[all.len(), width], &grid)?;
            }
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
    if let Some(ids) = &map.ids {
        match &names {
            None => w.write("node_ids.npy", &[ids.len()], ids)?,
            Some(names) => write_id_names(&mut w, ids, names)?,
        }
    }
    if stats.self_loops > 0 && !opts.remove_self_loops {
        stats.warnings.push(format!(
            "{} self-loop{} kept (--remove-self-loops drops them)",
            stats.self_loops,
            if stats.self_loops == 1 { "" } else { "s" }
        ));
    }
    m.ingest = Some(stats);
    progress.stage("checksumming and renaming", None);
    w.commit(m)
}

/// `node_ids.csv`: the string id of each node, one per line under an `id` header (quoted
/// where the id needs it), so node k of the dataset is line k + 2.
fn write_id_names(w: &mut DatasetWriter, codes: &[i64], names: &[String]) -> Result<()> {
    let path = w.dir().join("node_ids.csv");
    let err = |e: csv::Error| DataError::invalid(&path, e.to_string());
    let mut out = csv::Writer::from_path(&path).map_err(err)?;
    out.write_record(["id"]).map_err(err)?;
    for &c in codes {
        let name = usize::try_from(c).ok().and_then(|k| names.get(k));
        out.write_record([name.map_or("", String::as_str)])
            .map_err(err)?;
    }
    let file = out
        .into_inner()
        .map_err(|e| DataError::io(&path, e.into_error()))?;
    file.sync_all().map_err(|e| DataError::io(&path, e))?;
    w.file_done();
    Ok(())
}

/// Columns of [`degree_profile`].
pub const DEGREE_PROFILE: usize = 5;

/// Features for a graph that has none: per node, its in-degree and the minimum, maximum, mean
/// and standard deviation of its in-neighbours' in-degrees (PyG's `LocalDegreeProfile`, Cai
/// and Wang 2018), each as `ln(1 + value)` so that hubs of power-law graphs do not dwarf the
/// rest. `[N, 5]` row-major; a node without in-neighbours has zeros past its degree.
pub fn degree_profile(csr: &scalegnn_graph::Csr) -> Vec<f32> {
    use rayon::prelude::*;
    let deg = csr.degrees();
    let mut x = vec![0f32; csr.num_nodes() * DEGREE_PROFILE];
    x.par_chunks_mut(DEGREE_PROFILE)
        .enumerate()
        .for_each(|(v, row)| {
            let (mut lo, mut hi, mut sum, mut sq, mut k) = (u32::MAX, 0u32, 0f64, 0f64, 0usize);
            for u in csr.neighbors(v).iter() {
                let d = deg[u];
                lo = lo.min(d);
                hi = hi.max(d);
                sum += f64::from(d);
                sq += f64::from(d) * f64::from(d);
                k += 1;
            }
            row[0] = (f64::from(deg[v])).ln_1p() as f32;
            if k > 0 {
                let mean = sum / k as f64;
                let std = (sq / k as f64 - mean * mean).max(0.0).sqrt();
                row[1] = f64::from(lo).ln_1p() as f32;
                row[2] = f64::from(hi).ln_1p() as f32;
                row[3] = mean.ln_1p() as f32;
                row[4] = std.ln_1p() as f32;
            }
        });
    x
}
