//! Reader for OGB node-property-prediction directories as OGB distributes them (e.g.
//! `ogbn_arxiv/` after unzip): `raw/edge.csv.gz`, `raw/num-node-list.csv.gz`,
//! `raw/node-feat.csv.gz`, `raw/node-label.csv.gz`, optional `raw/edge-feat.csv.gz`, the
//! `.npz` variant (`raw/data.npz`, `raw/node-label.npz`) and `split/<name>/{train,valid,test}`.
//! Uncompressed `.csv` files are read in place of `.csv.gz`. Every file of the directory that
//! is not read is named in a warning.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use scalegnn_npy::RawArray;

use crate::ingest::MAX_CLASSES;
use crate::{DataError, RawDataset, RawEdgeAttr, RawFeatures, RawLabels, RawSplits, Result};

/// What an OGB node-property directory holds, for "missing" messages.
const LAYOUT: &str = "an OGB node-property dataset directory holds raw/edge.csv.gz (or \
                      raw/data.npz), raw/num-node-list.csv.gz, raw/node-feat.csv.gz, \
                      raw/node-label.csv.gz and split/<name>/{train,valid,test}.csv.gz";

/// Longest text line accepted: a feature row of thousands of floats is a few tens of KiB,
/// and a bounded line keeps a newline-free (or crafted) gzip stream from filling memory.
const MAX_LINE: u64 = 64 << 20;

/// Unread files named one per warning; beyond this a count stands for the rest.
const MAX_NAMED: usize = 100;

/// Files and depth the walk for unread files visits: an OGB directory has a few dozen files
/// three levels deep; the bounds also stop symlink loops.
const MAX_WALK_FILES: usize = 10_000;
const MAX_WALK_DEPTH: usize = 8;

/// Reads an OGB dataset directory (the one holding `raw/` and `split/`) using its only
/// split, or the first in sorted order (with a warning) when there are several.
pub fn read(dir: &Path) -> Result<RawDataset> {
    read_with(dir, None)
}

/// Reads an OGB dataset directory with the split `split/<split>/` (`None`: see [`read`]).
pub fn read_with(dir: &Path, split: Option<&str>) -> Result<RawDataset> {
    if !dir.is_dir() {
        return Err(DataError::invalid(
            dir,
            format!("not a directory: {LAYOUT}"),
        ));
    }
    let raw_dir = dir.join("raw");
    if !raw_dir.is_dir() {
        return Err(DataError::invalid(
            dir,
            format!("no raw/ folder: {LAYOUT}{}", where_instead(dir)),
        ));
    }
    if raw_dir.join("relations").is_dir() || text_file(&raw_dir, "num-node-dict").is_some() {
        return Err(DataError::invalid(
            &raw_dir,
            "a heterogeneous OGB dataset (raw/relations/, num-node-dict, as ogbn-mag has) is \
             not read: --format ogb reads homogeneous node-property datasets",
        ));
    }
    let mut r = Reading {
        used: BTreeSet::new(),
        warnings: Vec::new(),
    };
    let npz_path = raw_dir.join("data.npz");
    let (variant, g) = if npz_path.is_file() {
        ("npz", r.graph_npz(&npz_path)?)
    } else {
        ("csv", r.graph_csv(&raw_dir)?)
    };

    // Labels: the variant's own file first.
    let label_csv = text_file(&raw_dir, "node-label");
    let label_npz = Some(raw_dir.join("node-label.npz")).filter(|p| p.is_file());
    let label_file = if variant == "npz" {
        label_npz.or(label_csv)
    } else {
        label_csv.or(label_npz)
    };
    // Without num-node-list, the feature rows say how many label rows to expect.
    let derived = match (&g.count, &g.x) {
        (None, Some(x)) => Some(Count {
            n: x.data.len() / x.num_features.max(1),
            from: format!(
                "{} has {} rows",
                x.source.display(),
                x.data.len() / x.num_features.max(1)
            ),
        }),
        _ => None,
    };
    let label_count = g.count.as_ref().or(derived.as_ref());
    let y = match &label_file {
        Some(p) if p.extension().is_some_and(|e| e == "npz") => Some(r.labels_npz(p, label_count)?),
        Some(p) => {
            r.used.insert(p.clone());
            Some(read_labels_text(p, label_count)?)
        }
        None => {
            r.warnings.push(format!(
                "{} has no node-label.csv.gz (or node-label.npz): the dataset has no labels",
                raw_dir.display()
            ));
            None
        }
    };

    // Splits index nodes: check them against the node count, however it is known.
    let n = match &g.count {
        Some(c) => c.n,
        None => {
            g.x.as_ref()
                .map(|x| x.data.len() / x.num_features.max(1))
                .or(y.as_ref().map(Vec::len))
                .unwrap_or_else(|| {
                    g.src
                        .iter()
                        .chain(&g.dst)
                        .max()
                        .map_or(0, |&m| m as usize + 1)
                })
        }
    };
    let (split_name, splits, covered) = r.splits(dir, split, n)?;

    let mut warnings = std::mem::take(&mut r.warnings);
    warnings.extend(unread_files(dir, &r.used, &covered));
    Ok(RawDataset {
        name: dataset_name(dir),
        source: serde_json::json!({
            "format": "ogb",
            "input": dir.display().to_string(),
            "variant": variant,
            "split": split_name,
        }),
        src: g.src,
        dst: g.dst,
        num_nodes: g.count.map(|c| c.n),
        x: g.x,
        y: y.map(RawLabels::Classes),
        y_source: label_file,
        splits,
        edge_attr: g.edge_attr,
        warnings,
        ..Default::default()
    })
}

/// The node count and the words that say where it came from (for count mismatches).
struct Count {
    n: usize,
    from: String,
}

/// The graph part of the directory: edges, node count, features, edge features.
struct Graph {
    src: Vec<i64>,
    dst: Vec<i64>,
    count: Option<Count>,
    x: Option<RawFeatures>,
    edge_attr: Option<RawEdgeAttr>,
}

/// What the reading has used (files, by path) and noticed so far.
struct Reading {
    used: BTreeSet<PathBuf>,
    warnings: Vec<String>,
}

impl Reading {
    /// The CSV variant: `edge`, `num-node-list`, `num-edge-list`, `node-feat`, `edge-feat`.
    fn graph_csv(&mut self, raw_dir: &Path) -> Result<Graph> {
        let Some(edge_path) = text_file(raw_dir, "edge") else {
            return Err(DataError::invalid(
                raw_dir.join("edge.csv.gz"),
                format!("missing (and no raw/edge.csv or raw/data.npz either): {LAYOUT}"),
            ));
        };
        let count = match text_file(raw_dir, "num-node-list") {
            Some(p) => {
                self.used.insert(p.clone());
                let n = read_count(&p, "node")?;
                guard_node_count(n, &p)?;
                Some(Count {
                    n,
                    from: format!("{} says {n} nodes", p.display()),
                })
            }
            None => {
                self.warnings.push(format!(
                    "{} has no num-node-list.csv.gz: the node count is taken from the node \
                     features (or the largest node id)",
                    raw_dir.display()
                ));
                None
            }
        };
        let num_edges = match text_file(raw_dir, "num-edge-list") {
            Some(p) => {
                self.used.insert(p.clone());
                Some((read_count(&p, "edge")?, p))
            }
            None => None,
        };
        self.used.insert(edge_path.clone());
        let (src, dst) = read_edges(
            &edge_path,
            count.as_ref(),
            num_edges.as_ref().map(|(e, _)| *e),
        )?;
        if let Some((e, p)) = &num_edges {
            if *e != src.len() {
                return Err(DataError::invalid(
                    &edge_path,
                    format!(
                        "{} edge lines but {} says {e} edges",
                        src.len(),
                        p.display()
                    ),
                ));
            }
        }
        let x = match text_file(raw_dir, "node-feat") {
            Some(p) => {
                self.used.insert(p.clone());
                let t = read_float_table(&p, count.as_ref().map(|c| c.n), "the node features")?;
                if let Some(c) = &count {
                    if t.rows != c.n {
                        return Err(DataError::invalid(
                            &p,
                            format!("{} feature rows but {}", t.rows, c.from),
                        ));
                    }
                }
                Some(RawFeatures {
                    data: t.data,
                    num_features: t.width,
                    source: p,
                    ids: None,
                    sparse: false,
                })
            }
            None => None,
        };
        let edge_attr = match text_file(raw_dir, "edge-feat") {
            Some(p) => {
                self.used.insert(p.clone());
                let t = read_float_table(&p, Some(src.len()), "the edge features")?;
                if t.rows != src.len() {
                    return Err(DataError::invalid(
                        &p,
                        format!(
                            "{} edge-feature rows but {} has {} edge lines (one row per edge line)",
                            t.rows,
                            edge_path.display(),
                            src.len()
                        ),
                    ));
                }
                Some(RawEdgeAttr {
                    data: t.data,
                    width: t.width,
                })
            }
            None => None,
        };
        Ok(Graph {
            src,
            dst,
            count,
            x,
            edge_attr,
        })
    }

    /// The `.npz` variant: `raw/data.npz` with `edge_index` [2, E], `num_nodes_list` (or
    /// `num_nodes`), optional `num_edges_list`, `node_feat` [N, F], `edge_feat` [E, Fe].
    fn graph_npz(&mut self, path: &Path) -> Result<Graph> {
        self.used.insert(path.to_path_buf());
        let mut z = Npz::open(path)?;
        let mut read_keys = BTreeSet::new();

        let count = match z.first_of(&["num_nodes_list", "num_nodes"])? {
            Some((key, a)) => {
                read_keys.insert(key);
                let label = z.label(key);
                let n = single_count(&to_ints(&a, &label)?, &label, "node")?;
                guard_node_count(n, &label)?;
                Some(Count {
                    n,
                    from: format!("{} says {n} nodes", label.display()),
                })
            }
            None => {
                self.warnings.push(format!(
                    "{} has no num_nodes_list: the node count is taken from node_feat (or the \
                     largest node id)",
                    path.display()
                ));
                None
            }
        };

        let label = z.label("edge_index");
        let Some(a) = z.get("edge_index")? else {
            return Err(DataError::invalid(
                path,
                format!(
                    "no edge_index member (keys: {}): {LAYOUT}",
                    z.keys().join(", ")
                ),
            ));
        };
        read_keys.insert("edge_index");
        let e = match a.header.shape.as_slice() {
            [2, e] => *e,
            s => {
                return Err(DataError::invalid(
                    &label,
                    format!("expected shape [2, E], found {s:?}"),
                ))
            }
        };
        let mut src = to_ints(&a, &label)?;
        drop(a);
        let dst = src.split_off(e);
        if let Some(c) = &count {
            for (row, ids) in [(0, &src), (1, &dst)] {
                if let Some((k, &bad)) = ids
                    .iter()
                    .enumerate()
                    .find(|(_, &v)| v < 0 || v as u64 >= c.n as u64)
                {
                    return Err(DataError::invalid(
                        &label,
                        format!(
                            "edge_index[{row}, {k}] = {bad} is out of range 0..{} ({})",
                            c.n, c.from
                        ),
                    ));
                }
            }
        } else if let Some((k, &bad)) = src.iter().chain(&dst).enumerate().find(|(_, &v)| v < 0) {
            return Err(DataError::invalid(
                &label,
                format!(
                    "edge_index[{}, {}] = {bad} is a negative node id",
                    k / e.max(1),
                    k % e.max(1)
                ),
            ));
        }
        if let Some(a) = z.get("num_edges_list")? {
            read_keys.insert("num_edges_list");
            let label = z.label("num_edges_list");
            let want = single_count(&to_ints(&a, &label)?, &label, "edge")?;
            if want != e {
                return Err(DataError::invalid(
                    &label,
                    format!("says {want} edges but edge_index holds {e}"),
                ));
            }
        }

        let x = match z.get("node_feat")? {
            Some(a) => {
                read_keys.insert("node_feat");
                let label = z.label("node_feat");
                let (rows, width) = matrix_shape(&a, &label)?;
                if let Some(c) = &count {
                    if rows != c.n {
                        return Err(DataError::invalid(
                            &label,
                            format!("{rows} feature rows but {}", c.from),
                        ));
                    }
                }
                Some(RawFeatures {
                    data: to_floats(&a, &label)?,
                    num_features: width,
                    source: label,
                    ids: None,
                    sparse: false,
                })
            }
            None => None,
        };
        let edge_attr = match z.get("edge_feat")? {
            Some(a) => {
                read_keys.insert("edge_feat");
                let label = z.label("edge_feat");
                let (rows, width) = matrix_shape(&a, &label)?;
                if rows != e {
                    return Err(DataError::invalid(
                        &label,
                        format!("{rows} edge-feature rows but edge_index holds {e} edges"),
                    ));
                }
                Some(RawEdgeAttr {
                    data: to_floats(&a, &label)?,
                    width,
                })
            }
            None => None,
        };
        self.unread_members(&z, &read_keys);
        Ok(Graph {
            src,
            dst,
            count,
            x,
            edge_attr,
        })
    }

    /// `raw/node-label.npz`: `node_label` [N] or [N, 1], integers or floats (NaN: unlabelled).
    fn labels_npz(&mut self, path: &Path, count: Option<&Count>) -> Result<Vec<i64>> {
        self.used.insert(path.to_path_buf());
        let mut z = Npz::open(path)?;
        let label = z.label("node_label");
        let Some(a) = z.get("node_label")? else {
            return Err(DataError::invalid(
                path,
                format!("no node_label member (keys: {})", z.keys().join(", ")),
            ));
        };
        let y = labels_from_array(&a, &label)?;
        if let Some(c) = count {
            if y.len() != c.n {
                return Err(DataError::invalid(
                    &label,
                    format!("{} label rows but {}", y.len(), c.from),
                ));
            }
        }
        self.unread_members(&z, &BTreeSet::from(["node_label"]));
        Ok(y)
    }

    /// Names the members of an archive that were not read.
    fn unread_members(&mut self, z: &Npz, read_keys: &BTreeSet<&str>) {
        let unread: Vec<String> = z
            .keys()
            .into_iter()
            .filter(|k| !read_keys.contains(k.as_str()))
            .collect();
        if unread.len() > MAX_NAMED {
            self.warnings.push(format!(
                "{} holds {} members that are not read",
                z.path.display(),
                unread.len()
            ));
            return;
        }
        for key in unread {
            {
                let why = if key.starts_with("node") {
                    "extra node data"
                } else if key.starts_with("edge") {
                    "extra edge data"
                } else {
                    "not an OGB graph key"
                };
                self.warnings
                    .push(format!("{} is not read ({why})", z.label(&key).display()));
            }
        }
    }

    /// Chooses and reads `split/<name>/{train,valid,test}`; returns its name, the split, and
    /// the directories of the splits not chosen (named in one warning, not file by file).
    fn splits(
        &mut self,
        dir: &Path,
        want: Option<&str>,
        n: usize,
    ) -> Result<(Option<String>, Option<RawSplits>, Vec<PathBuf>)> {
        let root = dir.join("split");
        if !root.is_dir() {
            if let Some(w) = want {
                return Err(DataError::invalid(
                    &root,
                    format!("split {w:?} was asked for but the directory has no split/ folder"),
                ));
            }
            self.warnings.push(format!(
                "{} has no split/ folder: the dataset has no official split (--split makes one)",
                dir.display()
            ));
            return Ok((None, None, Vec::new()));
        }
        let mut names: Vec<String> = std::fs::read_dir(&root)
            .map_err(|e| DataError::io(&root, e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let name = match want {
            Some(w) if names.iter().any(|n| n == w) => w.to_string(),
            Some(w) => {
                return Err(DataError::invalid(
                    &root,
                    format!(
                        "no split {w:?}: the splits are {}",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                ))
            }
            None => match names.first() {
                Some(first) => first.clone(),
                None => {
                    self.warnings.push(format!(
                        "{} holds no split folder: the dataset has no official split (--split \
                         makes one)",
                        root.display()
                    ));
                    return Ok((None, None, Vec::new()));
                }
            },
        };
        let others: Vec<&String> = names.iter().filter(|s| **s != name).collect();
        if !others.is_empty() {
            self.warnings.push(format!(
                "{} holds several splits: {name} is used, not {} (--ogb-split NAME chooses)",
                root.display(),
                others
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let at = root.join(&name);
        let mut part = |stem: &str| -> Result<Vec<i64>> {
            let Some(p) = text_file(&at, stem) else {
                let pt = at.join(format!("{stem}.pt"));
                let hint = if pt.is_file() {
                    " (this split is a PyTorch .pt file, as OGB link- and graph-property \
                     datasets have: --format ogb reads node-property datasets)"
                } else {
                    ""
                };
                return Err(DataError::invalid(
                    at.join(format!("{stem}.csv.gz")),
                    format!("missing (and no {stem}.csv either): a split folder holds train, valid and test .csv.gz{hint}"),
                ));
            };
            self.used.insert(p.clone());
            read_split(&p, n)
        };
        let splits = RawSplits {
            train: part("train")?,
            val: part("valid")?,
            test: part("test")?,
        };
        let covered = others.iter().map(|s| root.join(s)).collect();
        Ok((Some(name), Some(splits), covered))
    }
}

/// Why `dir` is not the dataset directory, when a neighbour is: its only subfolder holding
/// `raw/`, or its parent (for `…/raw` itself).
fn where_instead(dir: &Path) -> String {
    if dir.file_name().is_some_and(|n| n == "raw") && dir.join("edge.csv.gz").is_file() {
        return " (this is the raw/ folder itself: pass its parent)".to_string();
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return String::new();
    };
    let holders: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("raw").is_dir())
        .take(2)
        .collect();
    match holders.as_slice() {
        [one] => format!(" (pass {}, which holds raw/)", one.display()),
        _ => String::new(),
    }
}

/// `dir/<stem>.csv.gz`, else `dir/<stem>.csv`, when it is a file.
fn text_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.csv.gz"), format!("{stem}.csv")]
        .into_iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

/// The directory's own name (`ogbn_arxiv`), or "ogb".
fn dataset_name(dir: &Path) -> String {
    let own = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    // "." or "x/.." have no last component; their canonical form does.
    own(dir)
        .or_else(|| std::fs::canonicalize(dir).ok().and_then(|p| own(&p)))
        .unwrap_or_else(|| "ogb".to_string())
}

/// Refuses a node count whose per-node arrays (8 bytes a node at least) cannot fit, so a
/// typo in num-node-list fails here, naming the file, not as an abort in `ingest`.
fn guard_node_count(n: usize, path: &Path) -> Result<()> {
    scalegnn_limits::check_array("the node arrays", &[n, 8], 1)
        .map_err(|e| DataError::invalid(path, format!("{n} nodes: {e}")))
}

/// Makes room for `extra` more items, checking the memory cap before each doubling: the
/// sizes come from file content (a small gzip can inflate to any size).
fn reserve<T>(v: &mut Vec<T>, extra: usize, what: &str) -> std::result::Result<(), String> {
    if v.capacity() - v.len() >= extra {
        return Ok(());
    }
    let want = (v.len().saturating_add(extra))
        .max(v.capacity().saturating_mul(2))
        .max(1024);
    scalegnn_limits::check_array(what, &[want], std::mem::size_of::<T>())
        .map_err(|e| e.to_string())?;
    v.reserve_exact(want - v.len());
    Ok(())
}

/// Reserves `rows × width` items up front when the memory cap allows; otherwise growth is
/// left to [`reserve`], which fails when the data (not a count in a file) is too large.
fn presize<T>(v: &mut Vec<T>, rows: usize, width: usize, what: &str) {
    if scalegnn_limits::check_array(what, &[rows, width], std::mem::size_of::<T>()).is_ok() {
        v.reserve_exact(rows * width);
    }
}

/// Whether blank lines are rows (labels: an unlabelled node) or may only trail.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Blank {
    Row,
    Trailing,
}

/// Opens a text table, decompressing `.gz` as a stream (concatenated members too).
fn open_text(path: &Path) -> Result<(Box<dyn BufRead>, bool)> {
    let f = scalegnn_npy::open_regular(path)?;
    let gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let r: Box<dyn BufRead> = if gz {
        Box::new(BufReader::with_capacity(
            1 << 16,
            MultiGzDecoder::new(BufReader::with_capacity(1 << 16, f)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, f))
    };
    Ok((r, gz))
}

/// A read error: in a gzip stream (no OS error behind it) the data is truncated or corrupt,
/// said at the line being read; otherwise the operating system's error.
fn read_error(path: &Path, gz: bool, line: u64, e: std::io::Error) -> DataError {
    if gz && e.raw_os_error().is_none() {
        DataError::parse(
            path,
            line,
            format!(
                "the gzip data is truncated or corrupt, or the file is not gzip ({e}): download \
                 or unzip the dataset again"
            ),
        )
    } else {
        DataError::io(path, e)
    }
}

/// Calls `f(line, text)` for every line of `path`, trimmed (CRLF, spaces, a UTF-8 BOM), and
/// returns the number of calls; an `Err(reason)` becomes a parse error at that line. Lines
/// are read by hand, not with the `csv` crate: it skips empty lines, and here an empty line
/// is a row (an unlabelled node) or, elsewhere, a gap that would shift every later row.
fn for_each_line(
    path: &Path,
    blank: Blank,
    mut f: impl FnMut(u64, &str) -> std::result::Result<(), String>,
) -> Result<u64> {
    let (mut r, gz) = open_text(path)?;
    let mut buf = Vec::new();
    let mut line = 0u64;
    let mut rows = 0u64;
    let mut first_blank = None;
    loop {
        buf.clear();
        let got = (&mut r)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| read_error(path, gz, line + 1, e))?;
        if got == 0 {
            return Ok(rows);
        }
        line += 1;
        if buf.len() as u64 > MAX_LINE {
            return Err(DataError::parse(
                path,
                line,
                format!("line longer than {} MiB: not an OGB table", MAX_LINE >> 20),
            ));
        }
        let text = std::str::from_utf8(&buf)
            .map_err(|_| DataError::parse(path, line, "not valid UTF-8 text"))?;
        let text = if line == 1 {
            text.trim_start_matches('\u{feff}')
        } else {
            text
        };
        let text = text.trim();
        if text.is_empty() && blank == Blank::Trailing {
            first_blank.get_or_insert(line);
            continue;
        }
        if let Some(b) = first_blank {
            return Err(DataError::parse(
                path,
                b,
                "empty line before the end of the file (rows are matched to nodes and edges by \
                 position)",
            ));
        }
        f(line, text).map_err(|reason| DataError::parse(path, line, reason))?;
        rows += 1;
    }
}

/// Parses a node id (a non-negative integer).
fn parse_id(field: &str) -> std::result::Result<i64, String> {
    match field.parse::<i64>() {
        Ok(v) if v >= 0 => Ok(v),
        Ok(v) => Err(format!("node id {v} is negative")),
        Err(_) => Err(format!(
            "{} is not an integer node id",
            super::table::show(field.as_bytes())
        )),
    }
}

/// Checks a node id against the node count, naming where the count came from.
fn in_range(id: i64, count: Option<&Count>) -> std::result::Result<i64, String> {
    match count {
        Some(c) if id as u64 >= c.n as u64 => Err(format!(
            "node id {id} is out of range 0..{} ({})",
            c.n, c.from
        )),
        _ => Ok(id),
    }
}

/// Reads a count file (`num-node-list`, `num-edge-list`): one non-negative integer. Several
/// lines are several graphs: a graph-property dataset, which this reader does not read.
fn read_count(path: &Path, what: &str) -> Result<usize> {
    let mut values = Vec::new();
    for_each_line(path, Blank::Trailing, |_, text| {
        if !values.is_empty() {
            return Err(format!(
                "a second {what} count: one count per graph means a graph-property dataset \
                 (ogbg-*), and --format ogb reads node-property datasets (one graph)"
            ));
        }
        let v = text
            .parse::<u64>()
            .ok()
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| {
                format!(
                    "{} is not a {what} count",
                    super::table::show(text.as_bytes())
                )
            })?;
        values.push(v);
        Ok(())
    })?;
    values
        .first()
        .copied()
        .ok_or_else(|| DataError::invalid(path, format!("empty: expected the {what} count")))
}

/// The one count of a `num_*_list` array (or a `num_nodes` scalar).
fn single_count(v: &[i64], label: &Path, what: &str) -> Result<usize> {
    match v {
        [c] => usize::try_from(*c)
            .map_err(|_| DataError::invalid(label, format!("{what} count {c} is negative"))),
        [] => Err(DataError::invalid(label, format!("no {what} count"))),
        many => Err(DataError::invalid(
            label,
            format!(
                "{} {what} counts: one per graph means a graph-property dataset (ogbg-*), and \
                 --format ogb reads node-property datasets (one graph)",
                many.len()
            ),
        )),
    }
}

/// Reads `edge.csv(.gz)`: one `src,dst` line per edge, 0-based ids below the node count.
fn read_edges(
    path: &Path,
    count: Option<&Count>,
    num_edges: Option<usize>,
) -> Result<(Vec<i64>, Vec<i64>)> {
    let mut src = Vec::new();
    let mut dst = Vec::new();
    if let Some(e) = num_edges {
        presize(&mut src, e, 1, "the edge list");
        presize(&mut dst, e, 1, "the edge list");
    }
    for_each_line(path, Blank::Trailing, |_, text| {
        let mut fields = text.split(',').map(str::trim);
        let (Some(a), Some(b), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(format!(
                "expected \"src,dst\" (2 comma-separated node ids), found {} field(s)",
                text.split(',').count()
            ));
        };
        let (a, b) = (
            in_range(parse_id(a)?, count)?,
            in_range(parse_id(b)?, count)?,
        );
        reserve(&mut src, 1, "the edge list")?;
        reserve(&mut dst, 1, "the edge list")?;
        src.push(a);
        dst.push(b);
        Ok(())
    })?;
    Ok((src, dst))
}

/// A row-major table of finite floats read from text.
struct Table {
    data: Vec<f32>,
    width: usize,
    rows: usize,
}

/// Reads comma-separated rows of finite floats, all of one width (`rows_hint`: the row count
/// expected, to size the table once).
fn read_float_table(path: &Path, rows_hint: Option<usize>, what: &str) -> Result<Table> {
    let mut data: Vec<f32> = Vec::new();
    let mut width: Option<(usize, u64)> = None;
    let rows = for_each_line(path, Blank::Trailing, |line, text| {
        let k = text.split(',').count();
        match width {
            None => {
                width = Some((k, line));
                if let Some(r) = rows_hint {
                    presize(&mut data, r, k, what);
                }
            }
            Some((w, first)) if w != k => {
                return Err(format!("row has {k} values but line {first} has {w}"))
            }
            Some(_) => {}
        }
        reserve(&mut data, k, what)?;
        for (j, field) in text.split(',').map(str::trim).enumerate() {
            let v = match field.parse::<f32>() {
                Ok(v) if v.is_finite() => v,
                Ok(_) => return Err(format!("column {}: {field} is not finite", j + 1)),
                Err(_) if field.is_empty() => {
                    return Err(format!("column {}: missing value", j + 1))
                }
                Err(_) => {
                    return Err(format!(
                        "column {}: {} is not a number",
                        j + 1,
                        super::table::show(field.as_bytes())
                    ))
                }
            };
            data.push(v);
        }
        Ok(())
    })?;
    let Some((width, _)) = width else {
        return Err(DataError::invalid(path, "empty: the table has no rows"));
    };
    Ok(Table {
        data,
        width,
        rows: rows as usize,
    })
}

/// Parses a class label: an integer (`3`, or `3.0` as pandas writes a column holding NaN),
/// with an empty field, `nan` or `-1` for an unlabelled node.
fn parse_label(field: &str) -> std::result::Result<i64, String> {
    if field.is_empty() || field.eq_ignore_ascii_case("nan") {
        return Ok(-1);
    }
    let v = match field.parse::<i64>() {
        Ok(v) => v,
        Err(_) => match field.parse::<f64>() {
            Ok(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
            _ => {
                return Err(format!(
                    "label {} is not an integer class id (regression labels are not read)",
                    super::table::show(field.as_bytes())
                ))
            }
        },
    };
    check_class(v).map_err(|r| format!("label {v}: {r}"))
}

/// A class id must be -1 (unlabelled) or 0..MAX_CLASSES.
fn check_class(v: i64) -> std::result::Result<i64, String> {
    if (-1..MAX_CLASSES).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "class ids run 0..C-1 with at most {MAX_CLASSES} classes, and -1, NaN or an empty \
             field marks an unlabelled node"
        ))
    }
}

/// The error for labels of several columns (ogbn-proteins: one 0/1 column per task).
fn multi_label(columns: usize) -> String {
    format!(
        "{columns} label columns: multi-label OGB labels (one 0/1 column per task, as \
         ogbn-proteins has) are not read yet; only one class column is"
    )
}

/// Reads `node-label.csv(.gz)`: one class per line, one line per node.
fn read_labels_text(path: &Path, count: Option<&Count>) -> Result<Vec<i64>> {
    let mut y: Vec<i64> = Vec::new();
    if let Some(c) = count {
        presize(&mut y, c.n, 1, "the labels");
    }
    // Blank lines are unlabelled nodes, but blank lines past the node count are the end of
    // the file (an editor's trailing newline), not nodes.
    let mut trailing_blank = 0usize;
    for_each_line(path, Blank::Row, |_, text| {
        let k = text.split(',').count();
        if k > 1 {
            return Err(multi_label(k));
        }
        trailing_blank = if text.is_empty() {
            trailing_blank + 1
        } else {
            0
        };
        reserve(&mut y, 1, "the labels")?;
        y.push(parse_label(text.trim())?);
        Ok(())
    })?;
    if let Some(c) = count {
        let extra = y.len().saturating_sub(c.n).min(trailing_blank);
        y.truncate(y.len() - extra);
        if y.len() != c.n {
            return Err(DataError::invalid(
                path,
                format!("{} label rows but {}", y.len(), c.from),
            ));
        }
    }
    Ok(y)
}

/// Reads `split/<name>/<part>.csv(.gz)`: one node id per line, below `n`.
fn read_split(path: &Path, n: usize) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    for_each_line(path, Blank::Trailing, |_, text| {
        let k = text.split(',').count();
        if k > 1 {
            return Err(format!(
                "{k} fields: a split file holds one node id per line"
            ));
        }
        let id = parse_id(text)?;
        if id as u64 >= n as u64 {
            return Err(format!(
                "node id {id} is out of range 0..{n} (the graph has {n} nodes)"
            ));
        }
        reserve(&mut ids, 1, "the split")?;
        ids.push(id);
        Ok(())
    })?;
    Ok(ids)
}

/// An open `.npz` archive.
struct Npz {
    zip: zip::ZipArchive<File>,
    path: PathBuf,
}

impl Npz {
    fn open(path: &Path) -> Result<Npz> {
        let f = scalegnn_npy::open_regular(path)?;
        let zip = zip::ZipArchive::new(f).map_err(|e| {
            DataError::invalid(path, format!("not a readable .npz (zip) file: {e}"))
        })?;
        Ok(Npz {
            zip,
            path: path.to_path_buf(),
        })
    }

    /// The array names (members `<key>.npy`; other members under their own name).
    fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .zip
            .file_names_raw()
            .map(|f| {
                let f = String::from_utf8_lossy(f);
                f.strip_suffix(".npy").unwrap_or(&f).to_string()
            })
            .collect();
        k.sort();
        k
    }

    /// `path[key]`, how errors name a member.
    fn label(&self, key: &str) -> PathBuf {
        PathBuf::from(format!("{}[{key}]", self.path.display()))
    }

    /// The array `key`, or `None` when the archive has no such member.
    fn get(&mut self, key: &str) -> Result<Option<RawArray>> {
        let label = self.label(key);
        let mut f = match self.zip.by_name(&format!("{key}.npy")) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(DataError::invalid(&label, e.to_string())),
        };
        Ok(Some(scalegnn_npy::read_from(&mut f, &label)?))
    }

    /// The first of `keys` the archive holds, with its key.
    fn first_of<'k>(&mut self, keys: &[&'k str]) -> Result<Option<(&'k str, RawArray)>> {
        for &k in keys {
            if let Some(a) = self.get(k)? {
                return Ok(Some((k, a)));
            }
        }
        Ok(None)
    }
}

/// The array as i64 (a copy: its size is checked first).
fn to_ints(a: &RawArray, label: &Path) -> Result<Vec<i64>> {
    scalegnn_limits::check_array("the integer array", &[a.header.len()], 8)
        .map_err(|e| DataError::invalid(label, e.to_string()))?;
    a.to_i64().ok_or_else(|| {
        DataError::invalid(
            label,
            format!(
                "expected an integer array, found {}",
                a.header.dtype.descr()
            ),
        )
    })
}

/// The array as f32 (a copy: its size is checked first).
fn to_floats(a: &RawArray, label: &Path) -> Result<Vec<f32>> {
    scalegnn_limits::check_array("the float array", &[a.header.len()], 4)
        .map_err(|e| DataError::invalid(label, e.to_string()))?;
    Ok(a.to_f32())
}

/// `[rows, width]` of a feature array of shape `[R, W]` (W > 0) or `[R]` (one column).
fn matrix_shape(a: &RawArray, label: &Path) -> Result<(usize, usize)> {
    match a.header.shape.as_slice() {
        [r] => Ok((*r, 1)),
        [r, w] if *w > 0 => Ok((*r, *w)),
        s => Err(DataError::invalid(
            label,
            format!("expected shape [rows, columns] with columns > 0, found {s:?}"),
        )),
    }
}

/// Class labels from `node_label`: `[N]` or `[N, 1]`; integers as they are, floats with NaN
/// for an unlabelled node (as ogbn-papers100M stores them) and integral values otherwise.
fn labels_from_array(a: &RawArray, label: &Path) -> Result<Vec<i64>> {
    match a.header.shape.as_slice() {
        [_] | [_, 1] => {}
        [_, t] => return Err(DataError::invalid(label, multi_label(*t))),
        s => {
            return Err(DataError::invalid(
                label,
                format!("expected shape [N] or [N, 1], found {s:?}"),
            ))
        }
    }
    let bad = |i: usize, v: String, why: String| {
        DataError::invalid(label, format!("row {i}: label {v}: {why}"))
    };
    let is_float = matches!(
        a.header.dtype,
        scalegnn_npy::DType::F16 | scalegnn_npy::DType::F32 | scalegnn_npy::DType::F64
    );
    let classes = if is_float {
        scalegnn_limits::check_array("the labels", &[a.header.len()], 8)
            .map_err(|e| DataError::invalid(label, e.to_string()))?;
        to_floats(a, label)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                if v.is_nan() {
                    Ok(-1)
                } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
                    Ok(v as i64)
                } else {
                    Err(bad(
                        i,
                        v.to_string(),
                        "not an integer class id (regression labels are not read)".into(),
                    ))
                }
            })
            .collect::<Result<Vec<i64>>>()?
    } else {
        to_ints(a, label)?
    };
    for (i, &v) in classes.iter().enumerate() {
        check_class(v).map_err(|why| bad(i, v.to_string(), why))?;
    }
    Ok(classes)
}

/// Warnings naming every file under `dir` that was not read: README/RELEASE text files in
/// one line, the rest one line each with what it likely is; `covered` folders (splits not
/// chosen, already named) are left out.
fn unread_files(dir: &Path, used: &BTreeSet<PathBuf>, covered: &[PathBuf]) -> Vec<String> {
    let mut files = Vec::new();
    let mut truncated = false;
    walk(dir, Path::new(""), 0, &mut files, &mut truncated);
    files.sort();
    let mut texts = Vec::new();
    let mut lines = Vec::new();
    let mut more = 0usize;
    for rel in files {
        let full = dir.join(&rel);
        if used.contains(&full) || covered.iter().any(|c| full.starts_with(c)) {
            continue;
        }
        let fname = rel
            .file_name()
            .map(|f| f.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if fname.starts_with("readme") || fname.starts_with("release") {
            texts.push(rel.display().to_string());
            continue;
        }
        if lines.len() == MAX_NAMED {
            more += 1;
            continue;
        }
        let top = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let why = match top.as_str() {
            "raw" if fname.starts_with("node") => "extra node data",
            "raw" if fname.starts_with("edge") => "extra edge data",
            "raw" => "not a file this reader takes",
            "mapping" => "id mapping",
            "processed" => "a cache of OGB's Python loader",
            "split" => "not a train/valid/test file of the split used",
            _ => "not part of the OGB layout",
        };
        lines.push(format!("{} is not read ({why})", full.display()));
    }
    if more > 0 {
        lines.push(format!(
            "… and {more} more files under {} are not read",
            dir.display()
        ));
    }
    if truncated {
        lines.push(format!(
            "{} holds more than {MAX_WALK_FILES} files (or folders deeper than \
             {MAX_WALK_DEPTH}): not all unread files are named",
            dir.display()
        ));
    }
    if !texts.is_empty() {
        lines.insert(
            0,
            format!(
                "text files not read in {}: {}",
                dir.display(),
                texts.join(", ")
            ),
        );
    }
    lines
}

/// Collects the files under `dir/rel` (paths relative to `dir`), within the walk bounds.
fn walk(dir: &Path, rel: &Path, depth: usize, out: &mut Vec<PathBuf>, truncated: &mut bool) {
    let Ok(entries) = std::fs::read_dir(dir.join(rel)) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let r = rel.join(e.file_name());
        let p = dir.join(&r);
        if p.is_dir() {
            if depth + 1 >= MAX_WALK_DEPTH {
                *truncated = true;
            } else {
                walk(dir, &r, depth + 1, out, truncated);
            }
        } else if out.len() == MAX_WALK_FILES {
            *truncated = true;
            return;
        } else {
            out.push(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::{ingest, IngestOptions, NoProgress};

    /// How the fixture's tables are stored.
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Gz,
        Plain,
        Npz,
    }

    /// Edges of the 5-node fixture, in file order.
    const EDGES: [(i64, i64); 6] = [(0, 1), (1, 2), (2, 0), (3, 4), (4, 3), (1, 3)];

    fn gzip(text: &str) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    /// Writes `<dir>/<rel>.csv.gz` (or `.csv` for `Kind::Plain`).
    fn table(dir: &Path, rel: &str, text: &str, kind: Kind) -> PathBuf {
        let p = if kind == Kind::Plain {
            dir.join(format!("{rel}.csv"))
        } else {
            dir.join(format!("{rel}.csv.gz"))
        };
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        if kind == Kind::Plain {
            std::fs::write(&p, text).unwrap();
        } else {
            std::fs::write(&p, gzip(text)).unwrap();
        }
        p
    }

    /// The bytes of an `.npy` file holding `data` with `shape`.
    fn npy<T: scalegnn_npy::Element>(shape: &[usize], data: &[T]) -> Vec<u8> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.npy");
        scalegnn_npy::write_array(&p, shape, data).unwrap();
        std::fs::read(p).unwrap()
    }

    fn npz(path: &Path, members: &[(&str, Vec<u8>)]) {
        let mut z = zip::ZipWriter::new(File::create(path).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in members {
            z.start_file(format!("{name}.npy"), opts).unwrap();
            z.write_all(body).unwrap();
        }
        z.finish().unwrap();
    }

    fn feat_row(i: usize) -> [f32; 3] {
        [i as f32 + 0.5, -(i as f32), 10.0 * i as f32]
    }

    fn edge_row(k: usize) -> [f32; 2] {
        let (s, d) = EDGES[k];
        [(s * 10 + d) as f32, k as f32]
    }

    /// A 5-node OGB directory `<tmp>/ogbn_toy`: 6 edges, 3 features, labels with node 2
    /// unlabelled, split/random, edge features, raw/node_year, RELEASE and mapping/ files.
    fn fixture(tmp: &Path, kind: Kind) -> PathBuf {
        let dir = tmp.join("ogbn_toy");
        let raw = dir.join("raw");
        std::fs::create_dir_all(&raw).unwrap();
        let text_kind = if kind == Kind::Npz { Kind::Gz } else { kind };
        if kind == Kind::Npz {
            let mut ei = Vec::new();
            ei.extend(EDGES.iter().map(|e| e.0));
            ei.extend(EDGES.iter().map(|e| e.1));
            let x: Vec<f32> = (0..5).flat_map(feat_row).collect();
            let ea: Vec<f32> = (0..6).flat_map(edge_row).collect();
            npz(
                &raw.join("data.npz"),
                &[
                    ("edge_index", npy(&[2, 6], &ei)),
                    ("node_feat", npy(&[5, 3], &x)),
                    ("edge_feat", npy(&[6, 2], &ea)),
                    ("num_nodes_list", npy(&[1], &[5i64])),
                    ("num_edges_list", npy(&[1], &[6i64])),
                    (
                        "node_year",
                        npy(&[5, 1], &[2010i64, 2011, 2012, 2013, 2014]),
                    ),
                ],
            );
            npz(
                &raw.join("node-label.npz"),
                &[(
                    "node_label",
                    npy(&[5, 1], &[0.0f64, 1.0, f64::NAN, 2.0, 1.0]),
                )],
            );
        } else {
            let edges: String = EDGES.iter().map(|(s, d)| format!("{s},{d}\n")).collect();
            table(&raw, "edge", &edges, kind);
            table(&raw, "num-node-list", "5\n", kind);
            table(&raw, "num-edge-list", "6\n", kind);
            let feats: String = (0..5)
                .map(|i| {
                    let r = feat_row(i);
                    format!("{},{},{}\n", r[0], r[1], r[2])
                })
                .collect();
            table(&raw, "node-feat", &feats, kind);
            // Node 2 is unlabelled: NaN in the gzip files, an empty line in the plain ones.
            let labels = if kind == Kind::Plain {
                "0\n1\n\n2\n1\n\n"
            } else {
                "0\n1\nnan\n2\n1\n"
            };
            table(&raw, "node-label", labels, kind);
            let ef: String = (0..6)
                .map(|k| {
                    let r = edge_row(k);
                    format!("{},{}\n", r[0], r[1])
                })
                .collect();
            table(&raw, "edge-feat", &ef, kind);
            table(&raw, "node_year", "2010\n2011\n2012\n2013\n2014\n", kind);
        }
        table(&dir, "split/random/train", "0\n1\n", text_kind);
        table(&dir, "split/random/valid", "3\n", text_kind);
        table(&dir, "split/random/test", "4\n", text_kind);
        table(
            &dir,
            "mapping/nodeidx2paperid",
            "node idx,paper id\n0,9\n",
            Kind::Gz,
        );
        std::fs::write(dir.join("mapping/README.md"), "ids\n").unwrap();
        std::fs::write(dir.join("RELEASE_v1.txt"), "v1\n").unwrap();
        dir
    }

    fn has(warnings: &[String], parts: &[&str]) -> bool {
        warnings.iter().any(|w| parts.iter().all(|p| w.contains(p)))
    }

    /// Checks every field of the fixture's RawDataset.
    fn check_raw(raw: &RawDataset, dir: &Path, kind: Kind) {
        assert_eq!(raw.name, "ogbn_toy");
        assert_eq!(raw.source["format"], "ogb");
        assert_eq!(raw.source["input"], dir.display().to_string());
        assert_eq!(raw.source["split"], "random");
        let variant = if kind == Kind::Npz { "npz" } else { "csv" };
        assert_eq!(raw.source["variant"], variant);
        assert_eq!(raw.src, EDGES.iter().map(|e| e.0).collect::<Vec<_>>());
        assert_eq!(raw.dst, EDGES.iter().map(|e| e.1).collect::<Vec<_>>());
        assert_eq!(raw.num_nodes, Some(5));
        let x = raw.x.as_ref().unwrap();
        assert_eq!(x.num_features, 3);
        assert_eq!(x.data, (0..5).flat_map(feat_row).collect::<Vec<_>>());
        assert!(x.ids.is_none());
        let x_src = x.source.display().to_string();
        match kind {
            Kind::Gz => assert!(x_src.ends_with("raw/node-feat.csv.gz"), "{x_src}"),
            Kind::Plain => assert!(x_src.ends_with("raw/node-feat.csv"), "{x_src}"),
            Kind::Npz => assert!(x_src.ends_with("raw/data.npz[node_feat]"), "{x_src}"),
        }
        match &raw.y {
            Some(RawLabels::Classes(c)) => assert_eq!(c, &vec![0, 1, -1, 2, 1]),
            other => panic!("{other:?}"),
        }
        let y_src = raw.y_source.as_ref().unwrap().display().to_string();
        assert!(y_src.contains("raw/node-label."), "{y_src}");
        let s = raw.splits.as_ref().unwrap();
        assert_eq!(
            (&s.train, &s.val, &s.test),
            (&vec![0, 1], &vec![3], &vec![4])
        );
        assert!(raw.more_splits.is_empty());
        let ea = raw.edge_attr.as_ref().unwrap();
        assert_eq!(ea.width, 2);
        assert_eq!(ea.data, (0..6).flat_map(edge_row).collect::<Vec<_>>());
        assert!(raw.graphs.is_none());
        assert!(raw.y_ids.is_none());
        assert!(raw.id_names.is_none());
        let w = &raw.warnings;
        match kind {
            Kind::Npz => assert!(has(w, &["data.npz[node_year]", "extra node data"]), "{w:?}"),
            _ => assert!(has(w, &["raw/node_year.csv", "extra node data"]), "{w:?}"),
        }
        assert!(
            has(
                w,
                &["text files not read", "RELEASE_v1.txt", "mapping/README.md"]
            ),
            "{w:?}"
        );
        assert!(
            has(w, &["mapping/nodeidx2paperid.csv.gz", "id mapping"]),
            "{w:?}"
        );
        // Read files are never named; nothing else is either.
        assert!(!has(w, &["edge.csv"]) && !has(w, &["node-feat"]), "{w:?}");
        assert_eq!(w.len(), 3, "{w:?}");
    }

    #[test]
    fn ogb_reads_gz_fixture_and_ingests_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fixture(tmp.path(), Kind::Gz);
        let raw = read(&dir).unwrap();
        check_raw(&raw, &dir, Kind::Gz);

        let out = tmp.path().join("out");
        let m = ingest(raw, &IngestOptions::default(), &out, &NoProgress).unwrap();
        assert_eq!(m.num_nodes, 5);
        assert_eq!(m.num_edges, 6);
        let (x, shape) = scalegnn_npy::read_any_as_f32(&out.join("x.npy")).unwrap();
        assert_eq!(shape, vec![5, 3]);
        assert_eq!(x, (0..5).flat_map(feat_row).collect::<Vec<_>>());
        let (y, _) = scalegnn_npy::read_any_as_i64(&out.join("y.npy")).unwrap();
        assert_eq!(y, vec![0, 1, -1, 2, 1]);
        let (train, _) = scalegnn_npy::read_any_as_i64(&out.join("train_idx.npy")).unwrap();
        assert_eq!(train, vec![0, 1]);
        let (val, _) = scalegnn_npy::read_any_as_i64(&out.join("val_idx.npy")).unwrap();
        assert_eq!(val, vec![3]);
        // edge_attr.npy follows the CSR (rows are destinations, entries sources).
        let (ptr, _) = scalegnn_npy::read_any_as_i64(&out.join("indptr.npy")).unwrap();
        let (idx, _) = scalegnn_npy::read_any_as_i64(&out.join("indices.npy")).unwrap();
        let (ea, shape) = scalegnn_npy::read_any_as_f32(&out.join("edge_attr.npy")).unwrap();
        assert_eq!(shape, vec![6, 2]);
        for d in 0..5 {
            for k in ptr[d] as usize..ptr[d + 1] as usize {
                let s = idx[k];
                let input = EDGES.iter().position(|&e| e == (s, d as i64)).unwrap();
                assert_eq!(&ea[2 * k..2 * k + 2], &edge_row(input), "CSR entry {k}");
            }
        }
        let text = std::fs::read_to_string(out.join("manifest.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let warnings: Vec<String> = json["ingest"]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert!(has(&warnings, &["raw/node_year.csv.gz"]), "{warnings:?}");
        assert!(
            has(&warnings, &["1 of 5 nodes are unlabelled"]),
            "{warnings:?}"
        );
        assert_eq!(json["source"]["format"], "ogb");
        assert_eq!(json["source"]["split"], "random");
    }

    #[test]
    fn ogb_reads_npz_variant() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fixture(tmp.path(), Kind::Npz);
        let raw = read(&dir).unwrap();
        check_raw(&raw, &dir, Kind::Npz);
        let out = tmp.path().join("out");
        ingest(raw, &IngestOptions::default(), &out, &NoProgress).unwrap();
        let (y, _) = scalegnn_npy::read_any_as_i64(&out.join("y.npy")).unwrap();
        assert_eq!(y, vec![0, 1, -1, 2, 1]);

        // A scalar num_nodes and [N] integer labels are read too.
        let raw_dir = dir.join("raw");
        let mut ei = Vec::new();
        ei.extend(EDGES.iter().map(|e| e.0));
        ei.extend(EDGES.iter().map(|e| e.1));
        npz(
            &raw_dir.join("data.npz"),
            &[
                ("edge_index", npy(&[2, 6], &ei)),
                ("num_nodes", npy(&[], &[5i32])),
            ],
        );
        npz(
            &raw_dir.join("node-label.npz"),
            &[("node_label", npy(&[5], &[0i64, 1, -1, 2, 1]))],
        );
        let raw = read(&dir).unwrap();
        assert_eq!(raw.num_nodes, Some(5));
        assert!(raw.x.is_none() && raw.edge_attr.is_none());
        assert!(matches!(&raw.y, Some(RawLabels::Classes(c)) if c == &[0, 1, -1, 2, 1]));

        // Several label columns: a clear "not yet".
        npz(
            &raw_dir.join("node-label.npz"),
            &[("node_label", npy(&[5, 2], &[0i64; 10]))],
        );
        let msg = read(&dir).unwrap_err().to_string();
        assert!(msg.contains("node-label.npz[node_label]"), "{msg}");
        assert!(msg.contains("multi-label"), "{msg}");

        // Labels that are not class ids name their row.
        npz(
            &raw_dir.join("node-label.npz"),
            &[("node_label", npy(&[5], &[0.0f32, 1.5, 0.0, 0.0, 0.0]))],
        );
        let msg = read(&dir).unwrap_err().to_string();
        assert!(msg.contains("row 1: label 1.5"), "{msg}");

        // Edge ids past the node count.
        npz(
            &raw_dir.join("data.npz"),
            &[
                ("edge_index", npy(&[2, 2], &[0i64, 1, 1, 7])),
                ("num_nodes_list", npy(&[1], &[5i64])),
            ],
        );
        let msg = read(&dir).unwrap_err().to_string();
        assert!(msg.contains("data.npz[edge_index]"), "{msg}");
        assert!(
            msg.contains("edge_index[1, 1] = 7 is out of range 0..5"),
            "{msg}"
        );
    }

    #[test]
    fn ogb_reads_uncompressed_csv() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fixture(tmp.path(), Kind::Plain);
        let raw = read(&dir).unwrap();
        check_raw(&raw, &dir, Kind::Plain);
    }

    #[test]
    fn ogb_split_choice() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fixture(tmp.path(), Kind::Gz);
        table(&dir, "split/time/train", "4\n", Kind::Gz);
        table(&dir, "split/time/valid", "0\n", Kind::Gz);
        table(&dir, "split/time/test", "1\n", Kind::Gz);

        let raw = read(&dir).unwrap();
        assert_eq!(raw.source["split"], "random");
        assert!(
            has(
                &raw.warnings,
                &[
                    "several splits",
                    "random is used",
                    "not time",
                    "--ogb-split"
                ]
            ),
            "{:?}",
            raw.warnings
        );
        // The other split's files are covered by that line, not named one by one.
        assert!(
            !has(&raw.warnings, &["split/time/train"]),
            "{:?}",
            raw.warnings
        );

        let raw = read_with(&dir, Some("time")).unwrap();
        assert_eq!(raw.source["split"], "time");
        let s = raw.splits.unwrap();
        assert_eq!((s.train, s.val, s.test), (vec![4], vec![0], vec![1]));

        let msg = read_with(&dir, Some("nope")).unwrap_err().to_string();
        assert!(
            msg.contains("no split \"nope\": the splits are random, time"),
            "{msg}"
        );

        // No split folder: a warning, no splits.
        std::fs::remove_dir_all(dir.join("split")).unwrap();
        let raw = read(&dir).unwrap();
        assert!(raw.splits.is_none());
        assert!(
            has(&raw.warnings, &["no split/ folder"]),
            "{:?}",
            raw.warnings
        );
    }

    fn error_of(dir: &Path) -> String {
        match read(dir) {
            Ok(_) => panic!("expected an error reading {}", dir.display()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn ogb_truncated_gzip_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fixture(tmp.path(), Kind::Gz);
        let rows: String = (0..5).map(|i| format!("{i}.25,{i},{i}\n")).collect();
        let full = gzip(&rows);
        std::fs::write(dir.join("raw/node-feat.csv.gz"), &full[..full.len() - 12]).unwrap();
        let msg = error_of(&dir);
        assert!(msg.contains("raw/node-feat.csv.gz:"), "{msg}");
        assert!(msg.contains("truncated or corrupt"), "{msg}");

        // Not gzip at all.
        std::fs::write(dir.join("raw/node-feat.csv.gz"), "1,2,3\n").unwrap();
        let msg = error_of(&dir);
        assert!(msg.contains("raw/node-feat.csv.gz:1:"), "{msg}");
    }

    #[test]
    fn ogb_non_numeric_feature_names_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fixture(tmp.path(), Kind::Gz);
        table(
            &dir.join("raw"),
            "node-feat",
            "1,2,3\n4,5,6\n7,abc,9\n1,2,3\n1,2,3\n",
            Kind::Gz,
        );
        let msg = error_of(&dir);
        assert!(msg.contains("raw/node-feat.csv.gz:3:"), "{msg}");
        assert!(msg.contains("column 2: \"abc\" is not a number"), "{msg}");
    }

    #[test]
    fn ogb_row_count_mismatches_name_both_counts() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fixture(tmp.path(), Kind::Gz);
        let raw_dir = dir.join("raw");
        table(&raw_dir, "node-feat", "1,2\n3,4\n5,6\n7,8\n", Kind::Gz);
        let msg = error_of(&dir);
        assert!(msg.contains("node-feat.csv.gz"), "{msg}");
        assert!(msg.contains("4 feature rows"), "{msg}");
        assert!(msg.contains("num-node-list.csv.gz says 5 nodes"), "{msg}");

        let dir = fixture(&tmp.path().join("b"), Kind::Gz);
        table(&dir.join("raw"), "edge-feat", "1\n2\n3\n", Kind::Gz);
        let msg = error_of(&dir);
        assert!(msg.contains("edge-feat.csv.gz"), "{msg}");
        assert!(msg.contains("3 edge-feature rows"), "{msg}");
        assert!(msg.contains("6 edge lines"), "{msg}");

        let dir = fixture(&tmp.path().join("c"), Kind::Gz);
        table(&dir.join("raw"), "node-label", "0\n1\n", Kind::Gz);
        let msg = error_of(&dir);
        assert!(msg.contains("2 label rows but"), "{msg}");

        let dir = fixture(&tmp.path().join("d"), Kind::Gz);
        table(&dir.join("raw"), "num-edge-list", "7\n", Kind::Gz);
        let msg = error_of(&dir);
        assert!(msg.contains("6 edge lines but"), "{msg}");
        assert!(msg.contains("says 7 edges"), "{msg}");
    }

    #[test]
    fn ogb_split_id_out_of_range_names_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fixture(tmp.path(), Kind::Gz);
        table(&dir, "split/random/test", "4\n9\n", Kind::Gz);
        let msg = error_of(&dir);
        assert!(msg.contains("split/random/test.csv.gz:2:"), "{msg}");
        assert!(msg.contains("node id 9 is out of range 0..5"), "{msg}");
    }

    #[test]
    fn ogb_missing_parts_say_what_is_expected() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fixture(tmp.path(), Kind::Gz);
        std::fs::remove_file(dir.join("raw/edge.csv.gz")).unwrap();
        let msg = error_of(&dir);
        assert!(msg.contains("raw/edge.csv.gz: missing"), "{msg}");
        assert!(
            msg.contains("split/<name>/{train,valid,test}.csv.gz"),
            "{msg}"
        );

        // The parent of the dataset directory: the message points at it.
        let msg = error_of(tmp.path());
        assert!(msg.contains("no raw/ folder"), "{msg}");
        assert!(msg.contains("ogbn_toy, which holds raw/"), "{msg}");

        let dir = fixture(&tmp.path().join("b"), Kind::Gz);
        std::fs::remove_file(dir.join("split/random/valid.csv.gz")).unwrap();
        let msg = error_of(&dir);
        assert!(msg.contains("split/random/valid.csv.gz: missing"), "{msg}");
    }

    #[test]
    fn ogb_other_bad_inputs() {
        let tmp = tempfile::tempdir().unwrap();
        // Several label columns (ogbn-proteins).
        let dir = fixture(tmp.path(), Kind::Gz);
        table(&dir.join("raw"), "node-label", "0,1\n1,0\n", Kind::Gz);
        let msg = error_of(&dir);
        assert!(msg.contains("node-label.csv.gz:1:"), "{msg}");
        assert!(msg.contains("multi-label OGB labels"), "{msg}");

        // A graph-property dataset (several graphs).
        let dir = fixture(&tmp.path().join("b"), Kind::Gz);
        table(&dir.join("raw"), "num-node-list", "3\n2\n", Kind::Gz);
        let msg = error_of(&dir);
        assert!(msg.contains("num-node-list.csv.gz:2:"), "{msg}");
        assert!(msg.contains("graph-property"), "{msg}");

        // An edge past the node count, and a malformed edge line.
        let dir = fixture(&tmp.path().join("c"), Kind::Gz);
        table(&dir.join("raw"), "edge", "0,1\n1,5\n", Kind::Gz);
        let msg = error_of(&dir);
        assert!(
            msg.contains("edge.csv.gz:2: node id 5 is out of range 0..5"),
            "{msg}"
        );
        table(&dir.join("raw"), "edge", "0,1\n1 2\n", Kind::Gz);
        let msg = error_of(&dir);
        assert!(msg.contains("edge.csv.gz:2:"), "{msg}");

        // A gap in the features shifts rows: refused at the gap.
        let dir = fixture(&tmp.path().join("d"), Kind::Gz);
        table(&dir.join("raw"), "node-feat", "1\n\n2\n3\n4\n5\n", Kind::Gz);
        let msg = error_of(&dir);
        assert!(msg.contains("node-feat.csv.gz:2: empty line"), "{msg}");

        // Heterogeneous (ogbn-mag).
        let dir = fixture(&tmp.path().join("e"), Kind::Gz);
        std::fs::create_dir(dir.join("raw/relations")).unwrap();
        let msg = error_of(&dir);
        assert!(msg.contains("heterogeneous"), "{msg}");
    }
}
