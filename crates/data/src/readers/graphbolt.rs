//! Reader for DGL GraphBolt `OnDiskDataset` directories, homogeneous graphs only: the
//! directory's `metadata.yaml` names the node count, one edge list (`csv`: `src,dst` lines
//! without a header; `numpy`: a `[2, E]` integer array), `feature_data` (`.npy` arrays per node
//! or edge) and `tasks`, whose train/validation/test sets hold `seeds` (older releases:
//! `seed_nodes`) and `labels`. Typed (heterogeneous) graphs are refused until the
//! heterogeneous issue; link prediction tasks are named in a warning and not read.
//!
//! Every path in `metadata.yaml` is relative to the directory and must stay inside it, symlinks
//! included: a downloaded dataset must not make us read `/etc/passwd`.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::table;
use crate::ingest::MAX_CLASSES;
use crate::{DataError, RawDataset, RawEdgeAttr, RawFeatures, RawLabels, RawSplits, Result};

/// The file that makes a directory a GraphBolt dataset.
const METADATA: &str = "metadata.yaml";
/// A metadata file is a few kilobytes; anything near this is not one.
const MAX_METADATA_BYTES: u64 = 16 << 20;
/// Unreferenced files named one by one before the rest are counted.
const MAX_NAMED_UNUSED: usize = 20;
/// Directory entries looked at when listing unreferenced files (a huge tree is summarised).
const MAX_WALK: usize = 100_000;
/// GraphBolt writes its own converted copy here; it duplicates what metadata.yaml names.
const PREPROCESSED: &str = "preprocessed";

type Map = serde_json::Map<String, Value>;

/// Reads a GraphBolt `OnDiskDataset` directory (or its `metadata.yaml`) of a homogeneous graph.
pub fn read(dir: &Path) -> Result<RawDataset> {
    // Accept the metadata file itself too: it is what people tend to point at.
    let dir = if dir.file_name().is_some_and(|n| n == METADATA) && dir.is_file() {
        dir.parent().unwrap_or(Path::new("."))
    } else {
        dir
    };
    let mut cx = Ctx::new(dir)?;
    let root = cx.load()?;
    let raw = cx.read_all(&root)?;
    Ok(raw)
}

/// What a `path` entry of metadata.yaml names.
#[derive(Debug, Clone)]
struct Entry {
    /// Key path of the entry in metadata.yaml (`feature_data[2]`), for messages.
    key: String,
    /// The `path` as written.
    rel: String,
    /// The file inside the directory.
    file: PathBuf,
    /// `numpy`, `csv`, `torch`, …
    format: String,
}

/// One `feature_data` entry.
#[derive(Debug)]
struct Feature {
    domain: String,
    name: String,
    entry: Entry,
}

/// One train/validation/test set of a task (its single untyped entry).
#[derive(Debug)]
struct TvtSet {
    /// `tasks[0].train_set`
    key: String,
    /// (name, entry) of each `data` item.
    data: Vec<(Option<String>, Entry)>,
}

/// One task of metadata.yaml.
#[derive(Debug)]
struct TaskMeta {
    key: String,
    name: Option<String>,
    num_classes: Option<u64>,
    /// train, validation, test.
    sets: [Option<TvtSet>; 3],
}

impl TaskMeta {
    fn describe(&self) -> String {
        match &self.name {
            Some(n) => format!("{} ({n:?})", self.key),
            None => self.key.clone(),
        }
    }
}

/// What a task asks for, as far as this reader is concerned.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// `seeds`/`seed_nodes` are node ids `[n]`: node classification (or regression).
    Nodes,
    /// Node pairs: link prediction.
    Links,
    /// Neither: nothing a node task can use.
    Other,
}

const PARTS: [&str; 3] = ["train_set", "validation_set", "test_set"];

/// The reading state: where we are, what metadata.yaml referenced and what to warn about.
struct Ctx {
    dir: PathBuf,
    /// `dir` with symlinks resolved, which every referenced file must lie under.
    root: PathBuf,
    meta: PathBuf,
    /// Normalised relative paths of every file metadata.yaml names (used or not).
    referenced: HashSet<PathBuf>,
    warnings: Vec<String>,
}

impl Ctx {
    fn new(dir: &Path) -> Result<Ctx> {
        let meta = dir.join(METADATA);
        if !dir.is_dir() {
            return Err(DataError::invalid(
                dir,
                "not a directory: a GraphBolt OnDiskDataset is a directory holding metadata.yaml",
            ));
        }
        if !meta.exists() {
            return Err(DataError::invalid(
                &meta,
                "missing: a GraphBolt OnDiskDataset directory has metadata.yaml at its root",
            ));
        }
        let root = std::fs::canonicalize(dir).map_err(|e| DataError::io(dir, e))?;
        Ok(Ctx {
            dir: dir.to_path_buf(),
            root,
            meta,
            referenced: HashSet::new(),
            warnings: Vec::new(),
        })
    }

    /// An error about metadata.yaml at `key`.
    fn key_err(&self, key: &str, reason: impl std::fmt::Display) -> DataError {
        DataError::Manifest {
            path: self.meta.clone(),
            reason: format!("{key}: {reason}"),
        }
    }

    /// An error about the content of a file metadata.yaml names at `key`.
    fn file_err(&self, e: &Entry, reason: impl std::fmt::Display) -> DataError {
        DataError::invalid(&e.file, format!("{reason} (metadata.yaml {}.path)", e.key))
    }

    /// An npy error, with the metadata key added (the npy message already names the file).
    fn npy_err(&self, e: &Entry, err: scalegnn_npy::NpyError) -> DataError {
        let text = err.to_string();
        let prefix = format!("{}: ", e.file.display());
        let reason = text.strip_prefix(&prefix).unwrap_or(&text);
        self.file_err(e, reason)
    }

    /// Reads and parses metadata.yaml into a generic tree (keys are checked by hand so that
    /// every message can name its key path).
    fn load(&self) -> Result<Map> {
        let f = scalegnn_npy::open_regular(&self.meta)?;
        let mut bytes = Vec::new();
        f.take(MAX_METADATA_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| DataError::io(&self.meta, e))?;
        if bytes.len() as u64 > MAX_METADATA_BYTES {
            return Err(DataError::invalid(
                &self.meta,
                format!(
                    "larger than {} MiB: not a GraphBolt metadata file",
                    MAX_METADATA_BYTES >> 20
                ),
            ));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            DataError::invalid(
                &self.meta,
                format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            )
        })?;
        // The default budget bounds nesting, aliases and node counts (no billion laughs).
        let opts = serde_saphyr::options! { with_snippet: false };
        let root: Value = serde_saphyr::from_str_with_options(&text, opts).map_err(|e| {
            let text = e.without_snippet().to_string();
            // The parser's advice on its own options means nothing to whoever wrote the file.
            let msg = text.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
            match e.location().filter(|l| l.line() > 0) {
                Some(l) => DataError::parse(&self.meta, l.line(), format!("invalid YAML: {msg}")),
                None => DataError::Manifest {
                    path: self.meta.clone(),
                    reason: format!("invalid YAML: {msg}"),
                },
            }
        })?;
        match root {
            Value::Object(m) => Ok(m),
            Value::Null => Err(DataError::Manifest {
                path: self.meta.clone(),
                reason: "empty: it must be a mapping with graph, feature_data and tasks".into(),
            }),
            other => Err(DataError::Manifest {
                path: self.meta.clone(),
                reason: format!(
                    "the document is {}, not a mapping with graph, feature_data and tasks",
                    kind_of(&other)
                ),
            }),
        }
    }

    fn map<'v>(&self, v: &'v Value, key: &str) -> Result<&'v Map> {
        v.as_object()
            .ok_or_else(|| self.key_err(key, format!("is {}, expected a mapping", kind_of(v))))
    }

    /// A list value; absent or null is an empty list.
    fn list<'v>(&self, v: Option<&'v Value>, key: &str) -> Result<&'v [Value]> {
        match v {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(other) => Err(self.key_err(
                key,
                format!("is {}, expected a list (`- ` items)", kind_of(other)),
            )),
        }
    }

    /// A scalar as text (YAML `name: 1` is a name too); `None` when absent or null.
    fn opt_str(&self, m: &Map, key: &str, field: &str) -> Result<Option<String>> {
        match m.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
            Some(v) => Err(self.key_err(
                &format!("{key}.{field}"),
                format!("is {}, expected a string", kind_of(v)),
            )),
        }
    }

    fn req_str(&self, m: &Map, key: &str, field: &str) -> Result<String> {
        self.opt_str(m, key, field)?
            .ok_or_else(|| self.key_err(&format!("{key}.{field}"), "missing"))
    }

    fn opt_u64(&self, m: &Map, key: &str, field: &str) -> Result<Option<u64>> {
        match m.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                self.key_err(
                    &format!("{key}.{field}"),
                    format!("is {v}, expected a non-negative integer"),
                )
            }),
        }
    }

    /// Refuses a `type` key: typed node/edge sets belong to heterogeneous graphs.
    fn untyped(&self, m: &Map, key: &str) -> Result<()> {
        match m.get("type") {
            None | Some(Value::Null) => Ok(()),
            Some(t) => Err(self.key_err(
                &format!("{key}.type"),
                format!(
                    "is {}: heterogeneous (typed) GraphBolt graphs are not read yet; this reader \
                     takes homogeneous datasets (one nodes entry and one edges entry, no `type` \
                     anywhere)",
                    show_value(t)
                ),
            )),
        }
    }

    /// The `path` (and `format`) of an entry, resolved inside the directory.
    fn entry(&mut self, m: &Map, key: &str) -> Result<Entry> {
        let rel = self.req_str(m, key, "path")?;
        let format = self.req_str(m, key, "format")?;
        let file = self.resolve(&rel, &format!("{key}.path"))?;
        Ok(Entry {
            key: key.to_string(),
            rel,
            file,
            format,
        })
    }

    /// `dir/rel` for a path of metadata.yaml, refusing anything that leaves the directory:
    /// absolute paths, `..`, and symlinks that resolve outside it.
    fn resolve(&mut self, rel: &str, key: &str) -> Result<PathBuf> {
        let mut norm = PathBuf::new();
        for c in Path::new(rel).components() {
            match c {
                Component::Normal(s) => norm.push(s),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(self.key_err(
                        key,
                        format!(
                            "{rel:?} climbs out with `..`: paths in metadata.yaml must stay \
                             inside the dataset directory"
                        ),
                    ))
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(self.key_err(
                        key,
                        format!(
                            "{rel:?} is absolute: paths in metadata.yaml are relative to the \
                             dataset directory and must stay inside it"
                        ),
                    ))
                }
            }
        }
        if norm.as_os_str().is_empty() || rel.contains('\0') {
            return Err(self.key_err(key, format!("{rel:?} is not a file path")));
        }
        let file = self.dir.join(&norm);
        // A symlink (of the file or of a folder on the way) must not lead outside either.
        if let Ok(real) = std::fs::canonicalize(&file) {
            if !real.starts_with(&self.root) {
                return Err(self.key_err(
                    key,
                    format!(
                        "{rel:?} resolves to {}, outside the dataset directory",
                        real.display()
                    ),
                ));
            }
        }
        self.referenced.insert(norm);
        Ok(file)
    }

    /// Refuses formats other than NumPy for an array we read.
    fn numpy(&self, e: &Entry) -> Result<()> {
        match e.format.as_str() {
            "numpy" => Ok(()),
            "torch" => Err(self.key_err(
                &format!("{}.format", e.key),
                format!(
                    "torch: PyTorch files ({}) are not read; save the tensor with numpy.save \
                     (tensor.numpy()) and write `format: numpy`",
                    e.rel
                ),
            )),
            other => Err(self.key_err(
                &format!("{}.format", e.key),
                format!("{other:?} is not a GraphBolt data format (numpy or torch)"),
            )),
        }
    }

    fn read_i64(&self, e: &Entry) -> Result<(Vec<i64>, Vec<usize>)> {
        self.numpy(e)?;
        scalegnn_npy::read_any_as_i64(&e.file).map_err(|err| self.npy_err(e, err))
    }

    fn read_f32(&self, e: &Entry) -> Result<(Vec<f32>, Vec<usize>)> {
        self.numpy(e)?;
        scalegnn_npy::read_any_as_f32(&e.file).map_err(|err| self.npy_err(e, err))
    }

    fn warn(&mut self, w: String) {
        self.warnings.push(w);
    }

    /// Everything after parsing: graph, features, task, and the files nobody named.
    fn read_all(&mut self, root: &Map) -> Result<RawDataset> {
        let known = [
            "dataset_name",
            "graph",
            "feature_data",
            "tasks",
            "graph_topology",
            "include_original_edge_id",
        ];
        for k in root.keys().filter(|k| !known.contains(&k.as_str())) {
            self.warn(format!("metadata.yaml key {k:?} is not read"));
        }
        let graph = match root.get("graph") {
            Some(g) if !g.is_null() => self.map(g, "graph")?,
            _ if root.contains_key("graph_topology") => {
                return Err(self.key_err(
                    "graph",
                    "missing, and graph_topology is set: this is GraphBolt's preprocessed \
                     metadata (a FusedCSCSamplingGraph in a PyTorch file), which is not read; \
                     give the original dataset directory (the parent of preprocessed/)",
                ))
            }
            _ => {
                return Err(self.key_err(
                    "graph",
                    "missing: metadata.yaml must describe graph.nodes and graph.edges",
                ))
            }
        };
        for k in graph.keys() {
            if !["nodes", "edges", "feature_data"].contains(&k.as_str()) {
                self.warn(format!("metadata.yaml key graph.{k} is not read"));
            }
        }
        let name = match self.opt_str(root, "", "dataset_name")? {
            Some(n) if !n.trim().is_empty() => n,
            _ => self
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "dataset".into()),
        };

        // Parse the whole structure (and resolve every path) before reading any array, so
        // a typed graph or an escaping path is refused before we read anything.
        let n = self.node_count(graph)?;
        let edges = self.edge_entry(graph)?;
        let mut features = Vec::new();
        for (list_key, v) in [
            ("feature_data", root.get("feature_data")),
            ("graph.feature_data", graph.get("feature_data")),
        ] {
            for (i, f) in self.list(v, list_key)?.iter().enumerate() {
                let key = format!("{list_key}[{i}]");
                features.push(self.feature(f, &key)?);
            }
        }
        let mut tasks = Vec::new();
        for (i, t) in self.list(root.get("tasks"), "tasks")?.iter().enumerate() {
            tasks.push(self.task(t, &format!("tasks[{i}]"))?);
        }

        let (src, dst) = self.read_edges(&edges, n)?;
        let num_edges = src.len();
        let mut source = serde_json::json!({
            "format": "graphbolt",
            "input": self.dir.display().to_string(),
        });

        let (x_pick, ea_pick, label_pick) = self.choose_features(&features);
        let x = match x_pick {
            Some(i) => Some(self.node_features(&features[i], n)?),
            None => None,
        };
        if let Some(i) = x_pick {
            source["x"] = Value::String(features[i].name.clone());
        }
        let edge_attr = match ea_pick {
            Some(i) => Some(self.edge_features(&features[i], num_edges, &edges)?),
            None => None,
        };
        if let Some(i) = ea_pick {
            source["edge_attr"] = Value::String(features[i].name.clone());
        }
        let feature_labels = match label_pick {
            Some(i) => Some(self.node_labels(&features[i], n)?),
            None => None,
        };

        // The task: the first whose seeds are node ids.
        let mut chosen: Option<usize> = None;
        for (i, t) in tasks.iter().enumerate() {
            let kind = self.kind(t)?;
            match (kind, chosen) {
                (Kind::Nodes, None) => chosen = Some(i),
                (Kind::Nodes, Some(c)) => {
                    let w = format!(
                        "metadata.yaml {} is not read: only the first node task ({}) is",
                        t.describe(),
                        tasks[c].describe()
                    );
                    self.warn(w);
                }
                (Kind::Links, _) => {
                    let w = format!(
                        "metadata.yaml {} is not read: link prediction sets (node pairs) are \
                         not read yet",
                        t.describe()
                    );
                    self.warn(w);
                }
                (Kind::Other, _) => {
                    let w = format!(
                        "metadata.yaml {} is not read: its sets hold no `seeds` (or \
                         `seed_nodes`) of node ids",
                        t.describe()
                    );
                    self.warn(w);
                }
            }
        }
        let (y, splits) = match chosen {
            Some(c) => {
                let t = &tasks[c];
                source["task"] = Value::String(t.name.clone().unwrap_or_else(|| t.key.clone()));
                if let Some(k) = t.num_classes {
                    source["num_classes"] = Value::from(k);
                }
                let (y, s) = self.read_task(t, n, feature_labels.as_ref())?;
                (y, Some(s))
            }
            None => (feature_labels.as_ref().map(|(y, _)| y.clone()), None),
        };
        if y.is_none() {
            self.warn(
                "no labels: feature_data has no node feature named `label` and no task set \
                 has `labels`"
                    .to_string(),
            );
        }
        let y_source = match (&feature_labels, &y) {
            (Some((_, e)), Some(_)) => Some(e.file.clone()),
            _ => None,
        };

        self.note_unreferenced();
        Ok(RawDataset {
            name,
            source,
            src,
            dst,
            num_nodes: Some(n),
            x,
            y: y.map(RawLabels::Classes),
            splits,
            edge_attr,
            y_source,
            warnings: std::mem::take(&mut self.warnings),
            ..Default::default()
        })
    }

    /// Which features become x, edge_attr and the labels: per domain the one named `feat`, or
    /// the only one there is; the node feature `label`. Every other entry is named in a warning.
    fn choose_features(
        &mut self,
        features: &[Feature],
    ) -> (Option<usize>, Option<usize>, Option<usize>) {
        let mut label = None;
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        // (entry, why it is not used), for entries that are never candidates.
        let mut skipped: Vec<(usize, &str)> = Vec::new();
        let mut cands: [Vec<usize>; 2] = Default::default();
        for (i, f) in features.iter().enumerate() {
            if !seen.insert((&f.domain, &f.name)) {
                skipped.push((i, "an earlier entry has the same domain and name"));
                continue;
            }
            match f.domain.as_str() {
                "node" if is_label(&f.name) && label.is_none() => label = Some(i),
                "node" if is_label(&f.name) => {
                    skipped.push((i, "an earlier node feature holds the labels"))
                }
                "node" => cands[0].push(i),
                "edge" => cands[1].push(i),
                "graph" => skipped.push((i, "graph-level features are not read")),
                _ => skipped.push((i, "the domain is not node, edge or graph")),
            }
        }
        let pick = |c: &[usize]| match c {
            [one] => Some(*one),
            _ => c.iter().copied().find(|&i| features[i].name == "feat"),
        };
        let (x, ea) = (pick(&cands[0]), pick(&cands[1]));
        for (d, (c, chosen)) in cands.iter().zip([x, ea]).enumerate() {
            let (what, file) = [("node", "x.npy"), ("edge", "edge_attr.npy")][d];
            for &i in c.iter().filter(|&&i| Some(i) != chosen) {
                let why = match chosen {
                    Some(k) => format!(
                        "{file} holds {what} feature {:?} (one {what} feature matrix is kept)",
                        features[k].name
                    ),
                    None => format!(
                        "there are several {what} features and none is named `feat` (name the \
                         one to use `feat`)"
                    ),
                };
                self.warn(unused_feature(&features[i], &why));
            }
        }
        for (i, why) in skipped {
            self.warn(unused_feature(&features[i], why));
        }
        (x, ea, label)
    }

    /// `graph.nodes`: one untyped entry with `num`.
    fn node_count(&self, graph: &Map) -> Result<usize> {
        let nodes = self.list(graph.get("nodes"), "graph.nodes")?;
        for (i, v) in nodes.iter().enumerate() {
            self.untyped(
                self.map(v, &format!("graph.nodes[{i}]"))?,
                &format!("graph.nodes[{i}]"),
            )?;
        }
        let first = match nodes {
            [one] => self.map(one, "graph.nodes[0]")?,
            [] => {
                return Err(self.key_err(
                    "graph.nodes",
                    "missing or empty: a homogeneous graph has one entry `- num: N`",
                ))
            }
            more => {
                return Err(self.key_err(
                    "graph.nodes",
                    format!(
                        "has {} entries: heterogeneous (typed) GraphBolt graphs are not read \
                         yet; a homogeneous graph has one entry `- num: N`",
                        more.len()
                    ),
                ))
            }
        };
        let num = self
            .opt_u64(first, "graph.nodes[0]", "num")?
            .ok_or_else(|| self.key_err("graph.nodes[0].num", "missing: the node count"))?;
        let n = usize::try_from(num)
            .map_err(|_| self.key_err("graph.nodes[0].num", format!("{num} is too large")))?;
        // The labels and masks are sized from it.
        scalegnn_limits::check_array("the node label vector", &[n], 8)
            .map_err(|e| self.key_err("graph.nodes[0].num", e))?;
        Ok(n)
    }

    /// `graph.edges`: one untyped entry with `format` and `path`.
    fn edge_entry(&mut self, graph: &Map) -> Result<Entry> {
        let edges = self.list(graph.get("edges"), "graph.edges")?;
        for (i, v) in edges.iter().enumerate() {
            self.untyped(
                self.map(v, &format!("graph.edges[{i}]"))?,
                &format!("graph.edges[{i}]"),
            )?;
        }
        match edges {
            [one] => {
                let m = self.map(one, "graph.edges[0]")?;
                self.entry(m, "graph.edges[0]")
            }
            [] => Err(self.key_err(
                "graph.edges",
                "missing or empty: a homogeneous graph has one entry with format and path",
            )),
            more => Err(self.key_err(
                "graph.edges",
                format!(
                    "has {} entries: heterogeneous (typed) GraphBolt graphs are not read yet; a \
                     homogeneous graph has one edges entry",
                    more.len()
                ),
            )),
        }
    }

    fn feature(&mut self, v: &Value, key: &str) -> Result<Feature> {
        let m = self.map(v, key)?;
        self.untyped(m, key)?;
        let domain = self.req_str(m, key, "domain")?;
        let name = self.req_str(m, key, "name")?;
        let entry = self.entry(m, key)?;
        Ok(Feature {
            domain,
            name,
            entry,
        })
    }

    fn task(&mut self, v: &Value, key: &str) -> Result<TaskMeta> {
        let m = self.map(v, key)?;
        let name = self.opt_str(m, key, "name")?;
        let num_classes = self.opt_u64(m, key, "num_classes")?;
        let mut sets: [Option<TvtSet>; 3] = [None, None, None];
        for (p, part) in PARTS.iter().enumerate() {
            let set_key = format!("{key}.{part}");
            let entries = self.list(m.get(*part), &set_key)?;
            for (j, e) in entries.iter().enumerate() {
                self.untyped(
                    self.map(e, &format!("{set_key}[{j}]"))?,
                    &format!("{set_key}[{j}]"),
                )?;
            }
            let first = match entries {
                [] => continue,
                [one] => self.map(one, &format!("{set_key}[0]"))?,
                more => {
                    return Err(self.key_err(
                        &set_key,
                        format!(
                            "has {} entries: without `type` a set has one entry (as GraphBolt \
                             requires)",
                            more.len()
                        ),
                    ))
                }
            };
            let data_key = format!("{set_key}[0].data");
            let mut data = Vec::new();
            for (j, d) in self.list(first.get("data"), &data_key)?.iter().enumerate() {
                let dk = format!("{data_key}[{j}]");
                let dm = self.map(d, &dk)?;
                let dname = self.opt_str(dm, &dk, "name")?;
                data.push((dname, self.entry(dm, &dk)?));
            }
            sets[p] = Some(TvtSet { key: set_key, data });
        }
        Ok(TaskMeta {
            key: key.to_string(),
            name,
            num_classes,
            sets,
        })
    }

    /// Whether a task's seeds are node ids, node pairs or absent (reads `.npy` headers only).
    fn kind(&self, t: &TaskMeta) -> Result<Kind> {
        let mut kind = Kind::Other;
        for set in t.sets.iter().flatten() {
            for (name, e) in &set.data {
                match name.as_deref() {
                    Some("node_pairs" | "negative_srcs" | "negative_dsts") => {
                        return Ok(Kind::Links)
                    }
                    Some("seeds" | "seed_nodes") => {
                        if e.format != "numpy" {
                            // Unknown shape: taken as nodes, and reading it explains the format.
                            kind = Kind::Nodes;
                            continue;
                        }
                        let h = scalegnn_npy::read_header(&e.file)
                            .map_err(|err| self.npy_err(e, err))?;
                        match h.shape.as_slice() {
                            [_] => kind = Kind::Nodes,
                            [_, 2] | [2, _] => return Ok(Kind::Links),
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(kind)
    }

    fn read_edges(&self, e: &Entry, n: usize) -> Result<(Vec<i64>, Vec<i64>)> {
        match e.format.as_str() {
            "numpy" => {
                let (v, shape) = self.read_i64(e)?;
                let m = match shape.as_slice() {
                    [2, m] => *m,
                    [m, 2] => {
                        return Err(self.file_err(
                            e,
                            format!(
                                "shape [{m}, 2]: GraphBolt edges are a [2, E] array (src row, \
                                 dst row); transpose it"
                            ),
                        ))
                    }
                    s => {
                        return Err(self.file_err(
                            e,
                            format!("shape {s:?}: GraphBolt edges are a [2, E] array"),
                        ))
                    }
                };
                if let Some(k) = v.iter().position(|&id| id < 0 || id as u64 >= n as u64) {
                    return Err(self.file_err(
                        e,
                        format!(
                            "edge {} ({}): node id {} is outside 0..{n} \
                             (graph.nodes[0].num = {n})",
                            k % m.max(1),
                            if k < m { "src" } else { "dst" },
                            v[k]
                        ),
                    ));
                }
                let dst = v[m..].to_vec();
                let mut src = v;
                src.truncate(m);
                Ok((src, dst))
            }
            "csv" => self.read_edges_csv(e, n),
            other => Err(self.key_err(
                &format!("{}.format", e.key),
                format!("{other:?}: GraphBolt edges are `csv` or `numpy`"),
            )),
        }
    }

    /// `src,dst` per line, no header (GraphBolt reads them with pandas, `names=[src, dst]`).
    fn read_edges_csv(&self, e: &Entry, n: usize) -> Result<(Vec<i64>, Vec<i64>)> {
        let path = &e.file;
        // A FIFO or device would block or never end: only regular files are read.
        scalegnn_npy::open_regular(path).map_err(|err| self.npy_err(e, err))?;
        let mut rdr = match table::open_csv(path, b',', false) {
            Ok(r) => r,
            Err(DataError::Io { err, .. }) => return Err(self.file_err(e, err)),
            Err(other) => return Err(other),
        };
        let (mut src, mut dst) = (Vec::new(), Vec::new());
        let mut rec = csv::ByteRecord::new();
        let mut first = true;
        while rdr
            .read_byte_record(&mut rec)
            .map_err(|err| table::csv_error(path, err))?
        {
            if table::is_blank(&rec) {
                continue;
            }
            let line = table::line_of(&rec);
            if rec.len() != 2 {
                return Err(DataError::parse(
                    path,
                    line,
                    format!(
                        "{} fields: a GraphBolt edge line is `src,dst` ({}.path)",
                        rec.len(),
                        e.key
                    ),
                ));
            }
            let mut ends = [0i64; 2];
            for (j, field) in rec.iter().enumerate() {
                let v = table::parse_i64(field).ok_or_else(|| {
                    let mut reason = format!(
                        "column {}: {} is not an integer node id",
                        j + 1,
                        table::show(field)
                    );
                    if first {
                        reason
                            .push_str(" (GraphBolt edge CSV files have no header line: remove it)");
                    }
                    DataError::parse(path, line, reason)
                })?;
                if v < 0 || v as u64 >= n as u64 {
                    return Err(DataError::parse(
                        path,
                        line,
                        format!(
                            "column {}: node id {v} is outside 0..{n} (graph.nodes[0].num = {n})",
                            j + 1
                        ),
                    ));
                }
                ends[j] = v;
            }
            src.push(ends[0]);
            dst.push(ends[1]);
            first = false;
        }
        Ok((src, dst))
    }

    /// A node feature matrix `[N, F]` (or `[N]`).
    fn node_features(&self, f: &Feature, n: usize) -> Result<RawFeatures> {
        let e = &f.entry;
        let (data, shape) = self.read_f32(e)?;
        let (rows, width) = self.rows_width(e, &shape, "N, F")?;
        if rows != n {
            return Err(self.file_err(
                e,
                format!(
                    "node feature {:?} has {rows} rows but graph.nodes[0].num is {n}",
                    f.name
                ),
            ));
        }
        Ok(RawFeatures {
            data,
            num_features: width,
            source: e.file.clone(),
            ids: None,
            sparse: false,
        })
    }

    /// An edge feature matrix `[E, W]` (or `[E]`), rows in the edge file's order.
    fn edge_features(&self, f: &Feature, num_edges: usize, edges: &Entry) -> Result<RawEdgeAttr> {
        let e = &f.entry;
        let (data, shape) = self.read_f32(e)?;
        let (rows, width) = self.rows_width(e, &shape, "E, W")?;
        if rows != num_edges {
            return Err(self.file_err(
                e,
                format!(
                    "edge feature {:?} has {rows} rows but {} holds {num_edges} edges",
                    f.name, edges.rel
                ),
            ));
        }
        Ok(RawEdgeAttr { data, width })
    }

    fn rows_width(&self, e: &Entry, shape: &[usize], want: &str) -> Result<(usize, usize)> {
        match *shape {
            [r] => Ok((r, 1)),
            [r, w] if w > 0 => Ok((r, w)),
            _ => Err(self.file_err(e, format!("shape {shape:?}, expected [{want}] or [N]"))),
        }
    }

    /// Class ids, `[k]` or `[k, 1]`; -1 (unlabelled) allowed only where `unlabelled`.
    fn class_ids(&self, e: &Entry, unlabelled: bool, num_classes: Option<u64>) -> Result<Vec<i64>> {
        let (v, shape) = self.read_i64(e)?;
        match shape.as_slice() {
            [_] | [_, 1] => {}
            [_, c] => {
                return Err(self.file_err(
                    e,
                    format!(
                        "shape {shape:?}: {c} labels per item (multi-label) are not read yet; \
                         class ids are [n]"
                    ),
                ))
            }
            _ => return Err(self.file_err(e, format!("shape {shape:?}, expected [n] class ids"))),
        }
        let low = if unlabelled { -1 } else { 0 };
        let high = num_classes.map_or(MAX_CLASSES, |k| (k as i64).min(MAX_CLASSES));
        if let Some((i, &bad)) = v.iter().enumerate().find(|(_, &c)| c < low || c >= high) {
            let bound = match num_classes {
                Some(k) => format!("num_classes is {k}"),
                None => format!("at most {MAX_CLASSES} classes"),
            };
            return Err(self.file_err(
                e,
                format!(
                    "item {i}: class {bad} is outside {low}..{high} ({bound}{})",
                    if unlabelled { "; -1 is unlabelled" } else { "" }
                ),
            ));
        }
        Ok(v)
    }

    /// The node feature `label`: one class id per node.
    fn node_labels(&self, f: &Feature, n: usize) -> Result<(Vec<i64>, Entry)> {
        let y = self.class_ids(&f.entry, true, None)?;
        if y.len() != n {
            return Err(self.file_err(
                &f.entry,
                format!("{} labels but graph.nodes[0].num is {n}", y.len()),
            ));
        }
        Ok((y, f.entry.clone()))
    }

    /// The splits from the task's seeds, and the labels: the feature `label` when there is
    /// one, with the task's own `labels` written over it (they are what the task scores).
    fn read_task(
        &mut self,
        t: &TaskMeta,
        n: usize,
        feature_labels: Option<&(Vec<i64>, Entry)>,
    ) -> Result<(Option<Vec<i64>>, RawSplits)> {
        scalegnn_limits::check_array("the split membership of every node", &[n], 1)
            .map_err(|e| self.key_err("graph.nodes[0].num", e))?;
        // owner[v] = 1 + the part holding node v (0: none), to refuse a node in two sets.
        let mut owner = vec![0u8; n];
        let mut y = feature_labels.map(|(y, _)| y.clone());
        let mut parts: [Vec<i64>; 3] = Default::default();
        let mut disagree = 0u64;
        let mut first_disagree = None;
        for (p, set) in t.sets.iter().enumerate() {
            let Some(set) = set else { continue };
            let mut seeds = None;
            let mut labels = None;
            for (name, e) in &set.data {
                match name.as_deref() {
                    Some("seeds" | "seed_nodes") if seeds.is_none() => seeds = Some(e),
                    Some("labels") if labels.is_none() => labels = Some(e),
                    Some("seeds" | "seed_nodes" | "labels") => {
                        return Err(self.key_err(
                            &e.key,
                            format!(
                                "a second {:?} in the same set",
                                name.as_deref().unwrap_or("")
                            ),
                        ))
                    }
                    _ => {
                        let w = format!(
                            "metadata.yaml {} ({}, {}) is not used: only seeds and labels of a \
                             node task are read",
                            e.key,
                            name.as_deref()
                                .map_or("no name".to_string(), |s| format!("{s:?}")),
                            e.rel
                        );
                        self.warn(w);
                    }
                }
            }
            let Some(se) = seeds else {
                if set.data.is_empty() {
                    continue;
                }
                return Err(self.key_err(
                    &format!("{}[0].data", set.key),
                    "has no `seeds` (or `seed_nodes`): the node ids of the set",
                ));
            };
            let (ids, shape) = self.read_i64(se)?;
            match shape.as_slice() {
                [_] | [_, 1] => {}
                s => {
                    return Err(self.file_err(
                        se,
                        format!("shape {s:?}: seeds of a node task are [n] node ids"),
                    ))
                }
            }
            for (i, &v) in ids.iter().enumerate() {
                if v < 0 || v as u64 >= n as u64 {
                    return Err(self.file_err(
                        se,
                        format!(
                            "item {i}: node id {v} is outside 0..{n} (graph.nodes[0].num = {n})"
                        ),
                    ));
                }
                let o = &mut owner[v as usize];
                if *o != 0 {
                    let other = PARTS[(*o - 1) as usize];
                    return Err(self.file_err(
                        se,
                        format!(
                            "item {i}: node {v} is already in {}: a node belongs to one set",
                            if *o as usize == p + 1 {
                                "this set".to_string()
                            } else {
                                format!("{}.{other}", t.key)
                            }
                        ),
                    ));
                }
                *o = p as u8 + 1;
            }
            match labels {
                Some(le) => {
                    let lab = self.class_ids(le, false, t.num_classes)?;
                    if lab.len() != ids.len() {
                        return Err(self.file_err(
                            le,
                            format!("{} labels for {} seeds in {}", lab.len(), ids.len(), se.rel),
                        ));
                    }
                    let y = y.get_or_insert_with(|| vec![-1; n]);
                    for (&v, &c) in ids.iter().zip(&lab) {
                        let slot = &mut y[v as usize];
                        if feature_labels.is_some() && *slot != c {
                            disagree += 1;
                            first_disagree.get_or_insert((v, *slot, c, le.rel.clone()));
                        }
                        *slot = c;
                    }
                }
                None if feature_labels.is_some() => {}
                None => {
                    return Err(self.key_err(
                        &format!("{}[0].data", set.key),
                        "has seeds but no `labels`, and feature_data has no node feature named \
                         `label`: the set's nodes would have no class",
                    ))
                }
            }
            parts[p] = ids;
        }
        if let (Some((v, was, now, file)), Some((_, fe))) = (first_disagree, feature_labels) {
            self.warn(format!(
                "{disagree} seed(s) of {} have a label differing from feature {}: y.npy holds \
                 the task's (node {v}: {was} in {}, {now} in {file})",
                t.describe(),
                fe.key,
                fe.rel
            ));
        }
        if let (Some(k), Some(y)) = (t.num_classes, &y) {
            let top = y.iter().copied().max().unwrap_or(-1) + 1;
            if (top as u64) < k {
                self.warn(format!(
                    "{}.num_classes is {k} but the labels only use classes 0..{}: the \
                     manifest records {top} classes",
                    t.key,
                    top - 1
                ));
            }
            if let Some(&bad) = y.iter().find(|&&c| c >= 0 && c as u64 >= k) {
                // Only the feature `label` can get here (task labels were checked).
                return Err(self.key_err(
                    &format!("{}.num_classes", t.key),
                    format!("is {k} but the node labels hold class {bad}"),
                ));
            }
        }
        let [train, val, test] = parts;
        Ok((y, RawSplits { train, val, test }))
    }

    /// Warns about every file of the directory that metadata.yaml does not name.
    fn note_unreferenced(&mut self) {
        let mut unused = Vec::new();
        let mut preprocessed = false;
        let mut stack = vec![PathBuf::new()];
        let mut looked = 0usize;
        let mut truncated = false;
        while let Some(rel) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(self.dir.join(&rel)) else {
                continue;
            };
            for ent in rd.flatten() {
                looked += 1;
                if looked > MAX_WALK {
                    truncated = true;
                    break;
                }
                let r = rel.join(ent.file_name());
                // Not following symlinked folders: no loops, no walking outside.
                let is_dir = ent.file_type().is_ok_and(|t| t.is_dir());
                if rel.as_os_str().is_empty() && ent.file_name() == PREPROCESSED && is_dir {
                    preprocessed = true;
                } else if is_dir {
                    stack.push(r);
                } else if r != Path::new(METADATA) && !self.referenced.contains(&r) {
                    unused.push(r);
                }
            }
            if truncated {
                break;
            }
        }
        unused.sort();
        if preprocessed {
            self.warn(format!(
                "{} (GraphBolt's own converted copy) is not read: metadata.yaml's sources are",
                self.dir.join(PREPROCESSED).display()
            ));
        }
        let more = unused.len().saturating_sub(MAX_NAMED_UNUSED);
        for r in unused.into_iter().take(MAX_NAMED_UNUSED) {
            let w = format!(
                "{} is not named by metadata.yaml and is not read",
                self.dir.join(r).display()
            );
            self.warn(w);
        }
        if more > 0 {
            self.warn(format!(
                "{more} more files are not named by metadata.yaml and are not read"
            ));
        }
        if truncated {
            self.warn(format!(
                "{} holds more than {MAX_WALK} entries: unreferenced files were not all listed",
                self.dir.display()
            ));
        }
    }
}

fn is_label(name: &str) -> bool {
    name == "label" || name == "labels"
}

fn unused_feature(f: &Feature, why: &str) -> String {
    format!(
        "metadata.yaml {} ({} feature {:?}, {}) is not used: {why}",
        f.entry.key, f.domain, f.name, f.entry.rel
    )
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A YAML value in a message, shortened.
fn show_value(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `text` to `dir/rel`, making folders on the way.
    fn text(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn npy<T: scalegnn_npy::Element>(dir: &Path, rel: &str, shape: &[usize], data: &[T]) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        scalegnn_npy::write_array(&p, shape, data).unwrap();
    }

    // The 6-node graph of the fixtures: a ring 0→1→…→5→0 plus 0→3.
    const SRC: [i64; 7] = [0, 1, 2, 3, 4, 5, 0];
    const DST: [i64; 7] = [1, 2, 3, 4, 5, 0, 3];

    /// One task set in GraphBolt's layout.
    fn set(part: &str, seeds_name: &str, labels: bool) -> String {
        let mut s = format!(
            "    {part}:\n      - data:\n          - name: {seeds_name}\n            format: numpy\n            \
             path: set/{part}-seeds.npy\n"
        );
        if labels {
            s.push_str(&format!(
                "          - name: labels\n            format: numpy\n            path: set/{part}-labels.npy\n"
            ));
        }
        s
    }

    /// Seeds train {0, 1}, validation {2}, test {3, 4}; node 5 is in no set.
    fn write_sets(d: &Path, labels: bool) {
        npy(d, "set/train_set-seeds.npy", &[2], &[0i64, 1]);
        npy(d, "set/validation_set-seeds.npy", &[1], &[2i32]);
        npy(d, "set/test_set-seeds.npy", &[2], &[3i64, 4]);
        if labels {
            npy(d, "set/train_set-labels.npy", &[2], &[0i64, 1]);
            npy(d, "set/validation_set-labels.npy", &[1], &[2i64]);
            npy(d, "set/test_set-labels.npy", &[2], &[1i64, 0]);
        }
    }

    fn nc_task(seeds_name: &str, labels: bool) -> String {
        let mut s = "tasks:\n  - name: node_classification\n    num_classes: 3\n".to_string();
        for part in PARTS {
            s.push_str(&set(part, seeds_name, labels));
        }
        s
    }

    /// The full fixture: numpy edges, node feat, edge feat, a task, an extra file.
    fn numpy_fixture(d: &Path) {
        let mut edges = SRC.to_vec();
        edges.extend(DST);
        npy(d, "edges/edge.npy", &[2, 7], &edges);
        let feat: Vec<f32> = (0..6).flat_map(|i| [i as f32, 10.0 + i as f32]).collect();
        npy(d, "data/node-feat.npy", &[6, 2], &feat);
        let efeat: Vec<f64> = SRC
            .iter()
            .zip(DST)
            .map(|(&s, t)| (s * 10 + t) as f64)
            .collect();
        npy(d, "data/edge-feat.npy", &[7], &efeat);
        write_sets(d, true);
        text(d, "notes.txt", "not part of the dataset\n");
        let meta = format!(
            "dataset_name: tiny_graph\n\
             graph:\n  nodes:\n    - num: 6\n  edges:\n    - format: numpy\n      path: edges/edge.npy\n\
             feature_data:\n\
             \x20 - domain: node\n    name: feat\n    format: numpy\n    in_memory: true\n    path: data/node-feat.npy\n\
             \x20 - domain: edge\n    name: feat\n    format: numpy\n    path: ./data/edge-feat.npy\n\
             {}",
            nc_task("seeds", true)
        );
        text(d, METADATA, &meta);
    }

    fn err(dir: &Path) -> String {
        read(dir).unwrap_err().to_string()
    }

    #[test]
    fn numpy_fixture_reads_and_ingests() {
        let d = tempfile::tempdir().unwrap();
        numpy_fixture(d.path());
        let raw = read(d.path()).unwrap();
        assert_eq!(raw.name, "tiny_graph");
        assert_eq!(raw.source["format"], "graphbolt");
        assert_eq!(raw.source["input"], d.path().display().to_string());
        assert_eq!(raw.source["task"], "node_classification");
        assert_eq!(raw.source["num_classes"], 3);
        assert_eq!(raw.src, SRC);
        assert_eq!(raw.dst, DST);
        assert_eq!(raw.num_nodes, Some(6));
        let x = raw.x.as_ref().unwrap();
        assert_eq!(x.num_features, 2);
        assert_eq!(&x.data[..4], &[0.0, 10.0, 1.0, 11.0]);
        assert!(x.ids.is_none());
        assert_eq!(x.source, d.path().join("data/node-feat.npy"));
        match &raw.y {
            Some(RawLabels::Classes(y)) => assert_eq!(y, &[0, 1, 2, 1, 0, -1]),
            other => panic!("{other:?}"),
        }
        let s = raw.splits.as_ref().unwrap();
        assert_eq!(
            (&s.train[..], &s.val[..], &s.test[..]),
            (&[0, 1][..], &[2][..], &[3, 4][..])
        );
        let ea = raw.edge_attr.as_ref().unwrap();
        assert_eq!(ea.width, 1);
        assert_eq!(ea.data[6], 3.0);
        assert_eq!(raw.warnings.len(), 1, "{:?}", raw.warnings);
        assert!(raw.warnings[0].contains("notes.txt"), "{:?}", raw.warnings);

        let out = d.path().join("out");
        let m = crate::ingest(
            raw,
            &crate::IngestOptions::default(),
            &out,
            &crate::NoProgress,
        )
        .unwrap();
        assert_eq!(m.num_nodes, 6);
        assert_eq!(m.num_edges, 7);
        assert_eq!(m.num_classes, 3);
        let i64s = |f: &str| scalegnn_npy::read_any_as_i64(&out.join(f)).unwrap();
        let f32s = |f: &str| scalegnn_npy::read_any_as_f32(&out.join(f)).unwrap();
        let (x, xs) = f32s("x.npy");
        assert_eq!(xs, vec![6, 2]);
        assert_eq!(x[10..], [5.0, 15.0]);
        assert_eq!(i64s("y.npy").0, vec![0, 1, 2, 1, 0, -1]);
        assert_eq!(i64s("train_idx.npy").0, vec![0, 1]);
        assert_eq!(i64s("val_idx.npy").0, vec![2]);
        assert_eq!(i64s("test_idx.npy").0, vec![3, 4]);
        // edge_attr.npy follows the CSR's edge order: the in-edges of each node in turn.
        let (ea, eas) = f32s("edge_attr.npy");
        assert_eq!(eas, vec![7, 1]);
        let (indptr, _) = i64s("indptr.npy");
        let (indices, _) = i64s("indices.npy");
        let mut k = 0;
        for v in 0..6usize {
            for &u in &indices[indptr[v] as usize..indptr[v + 1] as usize] {
                assert_eq!(ea[k], (u * 10 + v as i64) as f32);
                k += 1;
            }
        }
        assert_eq!(k, 7);
    }

    #[test]
    fn metadata_file_itself_is_accepted() {
        let d = tempfile::tempdir().unwrap();
        numpy_fixture(d.path());
        let raw = read(&d.path().join(METADATA)).unwrap();
        assert_eq!(raw.src.len(), 7);
    }

    #[test]
    fn csv_edges_seed_nodes_and_labels_from_feature_data() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let csv: String = SRC
            .iter()
            .zip(DST)
            .map(|(s, t)| format!("{s},{t}\n"))
            .collect();
        text(p, "edges/edge.csv", &csv);
        npy(p, "data/node-label.npy", &[6], &[0i64, 1, 2, 1, 0, 2]);
        npy(p, "data/a.npy", &[6, 3], &[1f32; 18]);
        npy(p, "data/b.npy", &[6, 1], &[2f32; 6]);
        write_sets(p, false);
        let meta = format!(
            "graph:\n  nodes:\n    - num: 6\n  edges:\n    - format: csv\n      path: edges/edge.csv\n\
             feature_data:\n\
             \x20 - domain: node\n    name: label\n    format: numpy\n    path: data/node-label.npy\n\
             \x20 - domain: node\n    name: a\n    format: numpy\n    path: data/a.npy\n\
             \x20 - domain: node\n    name: b\n    format: numpy\n    path: data/b.npy\n\
             {}",
            nc_task("seed_nodes", false)
        );
        text(p, METADATA, &meta);
        let raw = read(p).unwrap();
        // No dataset_name: the directory's name.
        assert_eq!(raw.name, p.file_name().unwrap().to_string_lossy());
        assert_eq!(raw.src, SRC);
        assert_eq!(raw.dst, DST);
        match &raw.y {
            Some(RawLabels::Classes(y)) => assert_eq!(y, &[0, 1, 2, 1, 0, 2]),
            other => panic!("{other:?}"),
        }
        assert_eq!(raw.y_source, Some(p.join("data/node-label.npy")));
        assert_eq!(raw.splits.as_ref().unwrap().test, vec![3, 4]);
        // Two node features, neither named feat: neither is used, both are named.
        assert!(raw.x.is_none());
        let w = raw.warnings.join("\n");
        assert!(
            w.contains("\"a\"") && w.contains("\"b\"") && w.contains("`feat`"),
            "{w}"
        );

        let out = p.join("out");
        crate::ingest(
            raw,
            &crate::IngestOptions::default(),
            &out,
            &crate::NoProgress,
        )
        .unwrap();
        let (y, _) = scalegnn_npy::read_any_as_i64(&out.join("y.npy")).unwrap();
        assert_eq!(y, vec![0, 1, 2, 1, 0, 2]);
    }

    #[test]
    fn task_labels_override_feature_labels_with_a_warning() {
        let d = tempfile::tempdir().unwrap();
        numpy_fixture(d.path());
        npy(
            d.path(),
            "data/node-label.npy",
            &[6],
            &[0i64, 1, 2, 2, 0, 1],
        );
        let meta = std::fs::read_to_string(d.path().join(METADATA)).unwrap().replace(
            "feature_data:\n",
            "feature_data:\n  - domain: node\n    name: label\n    format: numpy\n    path: data/node-label.npy\n",
        );
        text(d.path(), METADATA, &meta);
        let raw = read(d.path()).unwrap();
        match &raw.y {
            // Node 3: 2 in the feature, 1 in the test set; node 5 keeps the feature's label.
            Some(RawLabels::Classes(y)) => assert_eq!(y, &[0, 1, 2, 1, 0, 1]),
            other => panic!("{other:?}"),
        }
        let w = raw.warnings.join("\n");
        assert!(w.contains("1 seed(s)") && w.contains("node 3"), "{w}");
    }

    #[test]
    fn other_tasks_are_named_in_warnings() {
        let d = tempfile::tempdir().unwrap();
        numpy_fixture(d.path());
        npy(
            d.path(),
            "set/lp-seeds.npy",
            &[3, 2],
            &[0i64, 1, 1, 2, 2, 3],
        );
        let lp = "  - name: link_prediction\n    train_set:\n      - data:\n          - name: seeds\n            \
                  format: numpy\n            path: set/lp-seeds.npy\n";
        let meta = std::fs::read_to_string(d.path().join(METADATA)).unwrap();
        // Link prediction first: the node task after it is still found.
        let meta = meta.replace("tasks:\n", &format!("tasks:\n{lp}"));
        let second = nc_task("seeds", true)
            .replace("tasks:\n", "")
            .replace("node_classification", "again");
        text(d.path(), METADATA, &format!("{meta}{second}extra_key: 1\n"));
        let raw = read(d.path()).unwrap();
        assert_eq!(raw.source["task"], "node_classification");
        let w = raw.warnings.join("\n");
        assert!(
            w.contains("tasks[0] (\"link_prediction\")") && w.contains("link prediction"),
            "{w}"
        );
        assert!(
            w.contains("tasks[2] (\"again\")") && w.contains("tasks[1]"),
            "{w}"
        );
        assert!(w.contains("\"extra_key\""), "{w}");
        assert!(!w.contains("lp-seeds.npy is not named"), "{w}");
    }

    #[test]
    fn preprocessed_copy_is_one_warning() {
        let d = tempfile::tempdir().unwrap();
        numpy_fixture(d.path());
        text(
            d.path(),
            "preprocessed/metadata.yaml",
            "graph_topology: {}\n",
        );
        text(d.path(), "preprocessed/data/node-feat.npy", "x");
        let raw = read(d.path()).unwrap();
        let w: Vec<&String> = raw
            .warnings
            .iter()
            .filter(|w| w.contains("preprocessed"))
            .collect();
        assert_eq!(w.len(), 1, "{:?}", raw.warnings);
    }

    #[test]
    fn missing_metadata() {
        let d = tempfile::tempdir().unwrap();
        let msg = err(d.path());
        assert!(
            msg.contains("metadata.yaml") && msg.contains("missing"),
            "{msg}"
        );
    }

    #[test]
    fn bad_yaml_names_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        text(
            d.path(),
            METADATA,
            "dataset_name: x\ngraph:\n  nodes: [\n    - num: 3\n",
        );
        let msg = err(d.path());
        assert!(msg.contains("metadata.yaml:"), "{msg}");
        assert!(msg.contains("invalid YAML"), "{msg}");
        let e = read(d.path()).unwrap_err();
        assert!(
            matches!(e, DataError::Parse { line, .. } if line > 1),
            "{e}"
        );

        text(d.path(), METADATA, "- just\n- a list\n");
        assert!(err(d.path()).contains("not a mapping"));
    }

    #[test]
    fn typed_graph_is_refused() {
        let d = tempfile::tempdir().unwrap();
        text(
            d.path(),
            METADATA,
            "graph:\n  nodes:\n    - type: paper\n      num: 3\n    - type: author\n      num: 2\n  \
             edges:\n    - type: author:writes:paper\n      format: csv\n      path: e.csv\n",
        );
        let msg = err(d.path());
        assert!(
            msg.contains("graph.nodes[0].type") && msg.contains("heterogeneous"),
            "{msg}"
        );

        // One typed entry is typed too, and so is a typed feature.
        text(
            d.path(),
            METADATA,
            "graph:\n  nodes:\n    - num: 3\n  edges:\n    - format: csv\n      path: e.csv\n\
             feature_data:\n  - domain: node\n    type: paper\n    name: feat\n    format: numpy\n    path: f.npy\n",
        );
        let msg = err(d.path());
        assert!(
            msg.contains("feature_data[0].type") && msg.contains("heterogeneous"),
            "{msg}"
        );
    }

    #[test]
    fn paths_escaping_the_directory_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let inner = d.path().join("ds");
        numpy_fixture(&inner);
        npy(d.path(), "outside.npy", &[6, 2], &[0f32; 12]);
        let meta = std::fs::read_to_string(inner.join(METADATA)).unwrap();
        for bad in ["../outside.npy", "data/../../outside.npy", "/etc/passwd"] {
            text(&inner, METADATA, &meta.replace("data/node-feat.npy", bad));
            let msg = err(&inner);
            assert!(msg.contains("feature_data[0].path"), "{msg}");
            assert!(msg.contains("absolute") || msg.contains("`..`"), "{msg}");
        }
        // A symlink inside that leads outside.
        std::os::unix::fs::symlink(d.path().join("outside.npy"), inner.join("data/link.npy"))
            .unwrap();
        text(
            &inner,
            METADATA,
            &meta.replace("data/node-feat.npy", "data/link.npy"),
        );
        let msg = err(&inner);
        assert!(msg.contains("outside the dataset directory"), "{msg}");
    }

    #[test]
    fn seed_out_of_range_is_refused() {
        let d = tempfile::tempdir().unwrap();
        numpy_fixture(d.path());
        npy(d.path(), "set/test_set-seeds.npy", &[2], &[3i64, 6]);
        let msg = err(d.path());
        assert!(msg.contains("test_set-seeds.npy"), "{msg}");
        assert!(msg.contains("node id 6 is outside 0..6"), "{msg}");
        assert!(msg.contains("tasks[0].test_set[0].data[0].path"), "{msg}");
    }

    #[test]
    fn seed_in_two_sets_is_refused() {
        let d = tempfile::tempdir().unwrap();
        numpy_fixture(d.path());
        npy(d.path(), "set/test_set-seeds.npy", &[2], &[3i64, 0]);
        let msg = err(d.path());
        assert!(
            msg.contains("node 0 is already in tasks[0].train_set"),
            "{msg}"
        );
    }

    #[test]
    fn label_outside_num_classes_is_refused() {
        let d = tempfile::tempdir().unwrap();
        numpy_fixture(d.path());
        npy(d.path(), "set/train_set-labels.npy", &[2], &[0i64, 3]);
        let msg = err(d.path());
        assert!(
            msg.contains("train_set-labels.npy") && msg.contains("num_classes is 3"),
            "{msg}"
        );
    }

    #[test]
    fn csv_edge_errors_name_the_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let meta =
            "graph:\n  nodes:\n    - num: 3\n  edges:\n    - format: csv\n      path: e.csv\n";
        text(p, METADATA, meta);
        text(p, "e.csv", "src,dst\n0,1\n");
        let msg = err(p);
        assert!(
            msg.contains("e.csv:1:") && msg.contains("no header"),
            "{msg}"
        );
        text(p, "e.csv", "0,1\n1,2\n2,3\n");
        let msg = err(p);
        assert!(
            msg.contains("e.csv:3:") && msg.contains("outside 0..3"),
            "{msg}"
        );
        text(p, "e.csv", "0,1,2\n");
        assert!(err(p).contains("e.csv:1:"));
    }

    #[test]
    fn structural_errors_name_the_key() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        numpy_fixture(p);
        let meta = std::fs::read_to_string(p.join(METADATA)).unwrap();
        text(
            p,
            METADATA,
            &meta.replace("    - num: 6\n", "    - count: 6\n"),
        );
        assert!(err(p).contains("graph.nodes[0].num: missing"));
        text(
            p,
            METADATA,
            &meta.replace("path: set/test_set-labels.npy\n", ""),
        );
        let msg = err(p);
        assert!(
            msg.contains("tasks[0].test_set[0].data[1].path: missing"),
            "{msg}"
        );
        text(
            p,
            METADATA,
            &meta.replace("set/test_set-labels.npy", "set/nope.npy"),
        );
        let msg = err(p);
        assert!(
            msg.contains("nope.npy") && msg.contains("tasks[0].test_set[0].data[1]"),
            "{msg}"
        );
        text(
            p,
            METADATA,
            &meta.replace(
                "format: numpy\n    in_memory",
                "format: torch\n    in_memory",
            ),
        );
        let msg = err(p);
        assert!(
            msg.contains("feature_data[0].format") && msg.contains("numpy.save"),
            "{msg}"
        );
        // The [E, 2] layout is named as such.
        let mut e = Vec::new();
        for k in 0..7 {
            e.extend([SRC[k], DST[k]]);
        }
        npy(p, "edges/edge.npy", &[7, 2], &e);
        text(p, METADATA, &meta);
        assert!(err(p).contains("transpose"));
    }

    #[test]
    fn preprocessed_metadata_is_explained() {
        let d = tempfile::tempdir().unwrap();
        text(
            d.path(),
            METADATA,
            "graph_topology:\n  type: FusedCSCSamplingGraph\n  path: preprocessed/g.pt\n",
        );
        assert!(err(d.path()).contains("preprocessed"));
    }

    #[test]
    fn numpy_edge_and_edge_feature_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        numpy_fixture(p);
        npy(p, "data/edge-feat.npy", &[6, 1], &[0f32; 6]);
        let msg = err(p);
        assert!(
            msg.contains("edge-feat.npy") && msg.contains("6 rows") && msg.contains("7 edges"),
            "{msg}"
        );
        let mut edges = SRC.to_vec();
        edges.extend(DST);
        edges[8] = 9;
        npy(p, "edges/edge.npy", &[2, 7], &edges);
        let msg = err(p);
        assert!(
            msg.contains("edge 1 (dst): node id 9 is outside 0..6"),
            "{msg}"
        );
    }

    #[test]
    fn feature_data_under_graph_is_read_too() {
        // GraphBolt keeps graph.feature_data for the sampling graph; a node `feat` there is
        // still the node features when the top level has none.
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        numpy_fixture(p);
        let meta = std::fs::read_to_string(p.join(METADATA)).unwrap().replace(
            "feature_data:\n  - domain: node\n    name: feat\n    format: numpy\n    in_memory: true\n    path: data/node-feat.npy\n",
            "feature_data:\n",
        );
        let meta = meta.replace(
            "      path: edges/edge.npy\n",
            "      path: edges/edge.npy\n  feature_data:\n    - domain: node\n      name: feat\n      format: numpy\n      path: data/node-feat.npy\n",
        );
        text(p, METADATA, &meta);
        let raw = read(p).unwrap();
        assert_eq!(raw.x.as_ref().unwrap().num_features, 2);
        assert!(raw.edge_attr.is_some());
        assert_eq!(raw.warnings.len(), 1, "{:?}", raw.warnings);
    }

    #[test]
    fn odd_yaml_is_an_error_not_a_panic() {
        let d = tempfile::tempdir().unwrap();
        let deep = format!("{}1{}", "[".repeat(500), "]".repeat(500));
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
                    e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n";
        for yaml in [
            "",
            "graph: 3\n",
            "graph: {nodes: [{num: -1}], edges: 5}\n",
            "graph: {nodes: [{num: 1.5}], edges: []}\n",
            "graph: {nodes: [{num: 99999999999999999999}], edges: []}\n",
            "graph: {nodes: [{num: 3}], edges: [{format: csv}]}\n",
            "graph: {nodes: [{num: 3}], edges: [{format: csv, path: [a]}]}\n",
            "graph: {nodes: [{num: 3}], edges: [{format: csv, path: \"\"}]}\n",
            "graph: {nodes: [{num: 3}], edges: [{format: csv, path: e.csv}]}\ntasks: {a: 1}\n",
            "\u{0}\u{1}",
            &deep,
            bomb,
        ] {
            text(d.path(), METADATA, yaml);
            assert!(read(d.path()).is_err(), "{yaml:?}");
        }
    }
}
