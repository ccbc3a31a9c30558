//! Reader for the TUDataset text format (`<N>_A.txt`, `<N>_graph_indicator.txt`, label and
//! attribute files): one dataset directory becomes a `RawDataset` laid out as PyG's `TUDataset`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::{
    DataError, RawDataset, RawEdgeAttr, RawFeatures, RawGraphs, RawLabels, RawSplits, Result,
};

/// Widest one-hot encoding accepted: a label range wider than this is an id, not a category,
/// and encoding it would allocate rows × range floats.
const MAX_ONE_HOT_WIDTH: i128 = 1 << 16;

/// Reads a TUDataset directory; `name` is the file prefix (default: the directory's name).
pub fn read(dir: &Path, name: Option<&str>) -> Result<RawDataset> {
    if !dir.is_dir() {
        return Err(DataError::invalid(
            dir,
            "not a directory (expected a TUDataset folder holding <name>_A.txt)",
        ));
    }
    let name = match name {
        Some(n) => n.to_string(),
        None => default_name(dir)?,
    };
    let file = |part: &str| dir.join(format!("{name}_{part}.txt"));
    let optional = |part: &str| Some(file(part)).filter(|p| p.is_file());
    let required = |part: &str, what: &str| {
        let p = file(part);
        if p.is_file() {
            Ok(p)
        } else {
            Err(DataError::invalid(
                &p,
                format!("missing: a TUDataset directory needs {name}_{part}.txt ({what}); is the prefix {name:?} right?"),
            ))
        }
    };
    let a_path = required("A", "the edge list")?;
    let ind_path = required("graph_indicator", "the graph id of every node")?;

    let (graph_of, graph_ptr) = read_indicator(&ind_path)?;
    let n = graph_of.len();
    let num_graphs = graph_ptr.len() - 1;
    let (src, dst) = read_edges(&a_path, &graph_of)?;
    let m = src.len();

    // Node features: one-hot labels first, then attributes.
    let node_labels = optional("node_labels");
    let node_attrs = optional("node_attributes");
    let label_cols = match &node_labels {
        Some(p) => Some(one_hot(&read_table(p, n, None, "node", parse_int)?, p)?),
        None => None,
    };
    let attr_cols = match &node_attrs {
        Some(p) => Some(read_table(p, n, None, "node", parse_float)?),
        None => None,
    };
    let x_source = node_labels.or(node_attrs).unwrap_or_default();
    let x = concat_columns(label_cols, attr_cols).map(|t| RawFeatures {
        data: t.data,
        num_features: t.width,
        source: x_source,
        ids: None,
        sparse: false,
    });

    // Edge features, aligned with the lines of _A.txt.
    let edge_label_cols = match optional("edge_labels") {
        Some(p) => Some(one_hot(
            &read_table(&p, m, None, "line of _A.txt", parse_int)?,
            &p,
        )?),
        None => None,
    };
    let edge_attr_cols = match optional("edge_attributes") {
        Some(p) => Some(read_table(&p, m, None, "line of _A.txt", parse_float)?),
        None => None,
    };
    let edge_attr = concat_columns(edge_label_cols, edge_attr_cols).map(|t| RawEdgeAttr {
        data: t.data,
        width: t.width,
    });

    // Graph labels: classes when present, else regression targets (ESOL).
    let labels = if let Some(p) = optional("graph_labels") {
        let t = read_table(&p, num_graphs, Some(1), "graph", parse_int)?;
        Some(RawLabels::Classes(dense_classes(&t.data)))
    } else if let Some(p) = optional("graph_attributes") {
        let t = read_table(&p, num_graphs, None, "graph", parse_float)?;
        Some(RawLabels::Targets {
            data: t.data,
            width: t.width,
        })
    } else {
        None
    };
    let splits = match optional("split") {
        Some(p) => Some(read_splits(&p, num_graphs)?),
        None => None,
    };

    Ok(RawDataset {
        source: serde_json::json!({"format": "tu", "input": dir.display().to_string(), "prefix": name}),
        name,
        src,
        dst,
        num_nodes: Some(n),
        x,
        y: None,
        splits,
        edge_attr,
        graphs: Some(RawGraphs { graph_ptr, labels }),
        ..Default::default()
    })
}

/// The directory's own name, used as the file prefix when none is given.
fn default_name(dir: &Path) -> Result<String> {
    let own = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    // "." or "x/.." have no last component; their canonical form does.
    own(dir)
        .or_else(|| std::fs::canonicalize(dir).ok().and_then(|p| own(&p)))
        .ok_or_else(|| {
            DataError::invalid(
                dir,
                "cannot infer the file prefix from the directory name; pass it explicitly",
            )
        })
}

/// Calls `f(record)` for every non-blank line of `path`, trimmed (so CRLF, surrounding spaces
/// and a UTF-8 BOM are fine), and returns the number of records. An `Err(reason)` from `f`
/// becomes a parse error at that line. Blank lines may only trail: the files are matched to
/// nodes, edges and graphs by line, so a gap would silently shift everything after it.
fn for_each_record(
    path: &Path,
    mut f: impl FnMut(&str) -> std::result::Result<(), String>,
) -> Result<usize> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    let mut line = 0u64;
    let mut records = 0usize;
    let mut first_blank = None;
    loop {
        buf.clear();
        if reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| DataError::io(path, e))?
            == 0
        {
            return Ok(records);
        }
        line += 1;
        let text = std::str::from_utf8(&buf)
            .map_err(|_| DataError::parse(path, line, "not valid UTF-8 text"))?;
        let text = if line == 1 {
            text.trim_start_matches('\u{feff}')
        } else {
            text
        };
        let text = text.trim();
        if text.is_empty() {
            first_blank.get_or_insert(line);
            continue;
        }
        if let Some(blank) = first_blank {
            return Err(DataError::parse(
                path,
                blank,
                "empty line before the end of the file (lines are matched to items by position)",
            ));
        }
        f(text).map_err(|reason| DataError::parse(path, line, reason))?;
        records += 1;
    }
}

/// Parses an integer field; like PyG (which reads through float) it accepts `2.0` for 2.
fn parse_int(field: &str) -> std::result::Result<i64, String> {
    let field = field.trim();
    if let Ok(v) = field.parse::<i64>() {
        return Ok(v);
    }
    match field.parse::<f64>() {
        Ok(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Ok(v as i64),
        _ => Err(format!("expected an integer, found {field:?}")),
    }
}

/// Parses a finite float field (non-finite values would be rejected later without a line number).
fn parse_float(field: &str) -> std::result::Result<f32, String> {
    let field = field.trim();
    match field.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("value {field:?} is not finite")),
        Err(_) => Err(format!("expected a number, found {field:?}")),
    }
}

/// Reads the graph indicator: per node its 0-based graph, and the node range of every graph.
fn read_indicator(path: &Path) -> Result<(Vec<u32>, Vec<i64>)> {
    let mut graph_of: Vec<u32> = Vec::new();
    let mut graph_ptr = vec![0i64];
    // 1-based id of the graph being read; 0 before the first node.
    let mut current = 0i64;
    for_each_record(path, |rec| {
        let g = parse_int(rec)?;
        if g < 1 {
            return Err(format!("graph id {g}: graph ids start at 1"));
        }
        if g == current + 1 {
            if current > 0 {
                graph_ptr.push(graph_of.len() as i64);
            }
            current = g;
        } else if g > current {
            return Err(format!("graph id {g} after {current} skips a graph (ids must run 1, 2, 3, ... without gaps)"));
        } else if g < current {
            return Err(format!(
                "graph id {g} after {current}: the indicator must be nondecreasing"
            ));
        }
        let zero_based =
            u32::try_from(current - 1).map_err(|_| format!("graph id {g} is too large"))?;
        graph_of.push(zero_based);
        Ok(())
    })?;
    if graph_of.is_empty() {
        return Err(DataError::invalid(
            path,
            "empty: the graph indicator lists no nodes",
        ));
    }
    graph_ptr.push(graph_of.len() as i64);
    Ok((graph_of, graph_ptr))
}

/// Reads `_A.txt` into 0-based `(src, dst)`, checking ids against `n` and that no edge joins two graphs.
fn read_edges(path: &Path, graph_of: &[u32]) -> Result<(Vec<i64>, Vec<i64>)> {
    let n = graph_of.len();
    let mut src = Vec::new();
    let mut dst = Vec::new();
    let node = |field: &str| {
        let v = parse_int(field)?;
        if v < 1 || v as u64 > n as u64 {
            return Err(format!(
                "node id {v} is out of range 1..={n} (the graph indicator lists {n} nodes)"
            ));
        }
        Ok(v - 1)
    };
    for_each_record(path, |rec| {
        let mut fields = rec.split(',');
        let (Some(a), Some(b), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(format!(
                "expected 2 comma-separated node ids \"i, j\", found {} field(s)",
                rec.split(',').count()
            ));
        };
        let (i, j) = (node(a)?, node(b)?);
        let (gi, gj) = (graph_of[i as usize], graph_of[j as usize]);
        if gi != gj {
            return Err(format!(
                "edge {}, {} joins graph {} and graph {}",
                i + 1,
                j + 1,
                gi + 1,
                gj + 1
            ));
        }
        src.push(i);
        dst.push(j);
        Ok(())
    })?;
    Ok((src, dst))
}

/// A row-major table read from a comma-separated file.
struct Table<T> {
    data: Vec<T>,
    width: usize,
    rows: usize,
}

/// Reads exactly `rows` lines of comma-separated fields, all with the same count (`width` if given).
fn read_table<T>(
    path: &Path,
    rows: usize,
    width: Option<usize>,
    per: &str,
    parse: impl Fn(&str) -> std::result::Result<T, String>,
) -> Result<Table<T>> {
    let mut data = Vec::with_capacity(rows.saturating_mul(width.unwrap_or(1)));
    let mut width = width;
    let mut seen = 0usize;
    for_each_record(path, |rec| {
        if seen == rows {
            return Err(format!("extra line: expected {rows} lines, one per {per}"));
        }
        let before = data.len();
        for field in rec.split(',') {
            data.push(parse(field)?);
        }
        let k = data.len() - before;
        match width {
            None => width = Some(k),
            Some(w) if w != k => {
                return Err(format!("expected {w} comma-separated field(s), found {k}"))
            }
            Some(_) => {}
        }
        seen += 1;
        Ok(())
    })?;
    if seen < rows {
        return Err(DataError::parse(
            path,
            seen as u64 + 1,
            format!("file ends after {seen} lines, expected {rows} (one per {per})"),
        ));
    }
    Ok(Table {
        data,
        width: width.unwrap_or(0),
        rows,
    })
}

/// One-hot encodes each column of categorical ints as PyG does: value − column minimum,
/// width max − min + 1; the encodings of several columns are concatenated.
fn one_hot(t: &Table<i64>, path: &Path) -> Result<Table<f32>> {
    if t.rows == 0 || t.width == 0 {
        return Ok(Table {
            data: Vec::new(),
            width: 0,
            rows: t.rows,
        });
    }
    let mut lo = vec![i64::MAX; t.width];
    let mut hi = vec![i64::MIN; t.width];
    for row in t.data.chunks_exact(t.width) {
        for (c, &v) in row.iter().enumerate() {
            lo[c] = lo[c].min(v);
            hi[c] = hi[c].max(v);
        }
    }
    // i128: max − min of two i64 can overflow i64.
    let spans: Vec<i128> = lo
        .iter()
        .zip(&hi)
        .map(|(&l, &h)| h as i128 - l as i128 + 1)
        .collect();
    let total: i128 = spans.iter().sum();
    if total > MAX_ONE_HOT_WIDTH {
        let (c, _) = spans
            .iter()
            .enumerate()
            .max_by_key(|(_, &s)| s)
            .unwrap_or((0, &0));
        return Err(DataError::invalid(
            path,
            format!(
                "label values {}..={} (column {}) need a one-hot width of {total}, more than the {MAX_ONE_HOT_WIDTH} allowed; are these ids rather than categories?",
                lo[c],
                hi[c],
                c + 1
            ),
        ));
    }
    let width = total as usize;
    // Rows × width floats: a few thousand lines with labels 0 and 65535 would ask for GiBs.
    scalegnn_limits::check_array("the one-hot label encoding", &[t.rows, width], 4)
        .map_err(|e| DataError::invalid(path, e.to_string()))?;
    let mut data = vec![0f32; t.rows * width];
    for (out, row) in data
        .chunks_exact_mut(width)
        .zip(t.data.chunks_exact(t.width))
    {
        let mut offset = 0;
        for (c, &v) in row.iter().enumerate() {
            out[offset + (v - lo[c]) as usize] = 1.0;
            offset += spans[c] as usize;
        }
    }
    Ok(Table {
        data,
        width,
        rows: t.rows,
    })
}

/// Joins two tables of the same row count column-wise (`a` first); `None` if both are absent or empty.
fn concat_columns(a: Option<Table<f32>>, b: Option<Table<f32>>) -> Option<Table<f32>> {
    let t = match (a, b) {
        (Some(a), Some(b)) if a.width > 0 && b.width > 0 => {
            let width = a.width + b.width;
            let mut data = Vec::with_capacity(a.rows * width);
            for (ra, rb) in a
                .data
                .chunks_exact(a.width)
                .zip(b.data.chunks_exact(b.width))
            {
                data.extend_from_slice(ra);
                data.extend_from_slice(rb);
            }
            Table {
                data,
                width,
                rows: a.rows,
            }
        }
        (Some(a), Some(b)) => {
            if a.width > 0 {
                a
            } else {
                b
            }
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => return None,
    };
    (t.width > 0).then_some(t)
}

/// Maps raw class values to `0..C` by rank among the sorted distinct values (PyG's `unique`).
fn dense_classes(raw: &[i64]) -> Vec<i64> {
    let mut distinct = raw.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    raw.iter()
        .map(|v| distinct.partition_point(|d| d < v) as i64)
        .collect()
}

/// Reads `<N>_split.txt`: one of `train`/`val`/`test` per graph, giving 0-based graph ids per split.
fn read_splits(path: &Path, num_graphs: usize) -> Result<RawSplits> {
    let mut s = RawSplits::default();
    let mut g = 0usize;
    for_each_record(path, |rec| {
        if g == num_graphs {
            return Err(format!(
                "extra line: expected {num_graphs} lines, one per graph"
            ));
        }
        let part = match rec {
            "train" => &mut s.train,
            "val" | "valid" => &mut s.val,
            "test" => &mut s.test,
            other => return Err(format!("expected train, val or test, found {other:?}")),
        };
        part.push(g as i64);
        g += 1;
        Ok(())
    })?;
    if g < num_graphs {
        return Err(DataError::parse(
            path,
            g as u64 + 1,
            format!("file ends after {g} lines, expected {num_graphs} (one per graph)"),
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A two-graph dataset "TOY": graph 1 is the path 1-2-3, graph 2 the edge 4-5. CRLF, stray
    /// spaces and a trailing blank line are deliberate.
    const TOY: &[(&str, &str)] = &[
        ("A", " 1, 2\r\n2,1\r\n2, 3\r\n3, 2 \r\n4, 5\r\n5, 4\r\n\r\n"),
        ("graph_indicator", "1\n1\n1\n2\n2\n"),
        ("graph_labels", "1\n-1\n"),
        ("node_labels", "2\n3\n2\n5\n3\n"),
        ("edge_labels", "1\n1\n2\n2\n3\n3\n"),
    ];

    /// TOY parts to replace (`Some(text)`) or delete (`None`).
    type Changes<'a> = &'a [(&'a str, Option<&'a str>)];

    /// Writes the TOY files into `dir`, with `changes` replacing (`Some`) or deleting (`None`) parts.
    fn write_toy(dir: &Path, changes: Changes) {
        for (part, text) in TOY {
            std::fs::write(dir.join(format!("TOY_{part}.txt")), text).unwrap();
        }
        for (part, text) in changes {
            let p = dir.join(format!("TOY_{part}.txt"));
            match text {
                Some(t) => std::fs::write(p, t).unwrap(),
                None => std::fs::remove_file(p).unwrap(),
            }
        }
    }

    fn toy_error(changes: Changes) -> String {
        let tmp = tempfile::tempdir().unwrap();
        write_toy(tmp.path(), changes);
        match read(tmp.path(), Some("TOY")) {
            Ok(_) => panic!("expected an error for {changes:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn class_counts(labels: &Option<RawLabels>) -> Vec<usize> {
        let Some(RawLabels::Classes(c)) = labels else {
            panic!("expected class labels, got {labels:?}")
        };
        let mut counts = vec![0; c.iter().max().map_or(0, |&m| m as usize + 1)];
        for &v in c {
            counts[v as usize] += 1;
        }
        counts
    }

    #[test]
    fn tu_reads_small_fixture() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("TOY");
        std::fs::create_dir(&dir).unwrap();
        write_toy(&dir, &[]);
        // The prefix defaults to the directory name.
        let raw = read(&dir, None).unwrap();
        assert_eq!(raw.name, "TOY");
        assert_eq!(raw.source["format"], "tu");
        assert_eq!(raw.source["prefix"], "TOY");
        assert_eq!(raw.num_nodes, Some(5));
        assert_eq!(raw.src, vec![0, 1, 1, 2, 3, 4]);
        assert_eq!(raw.dst, vec![1, 0, 2, 1, 4, 3]);
        let g = raw.graphs.as_ref().unwrap();
        assert_eq!(g.graph_ptr, vec![0, 3, 5]);
        // Sorted distinct labels -1, 1 → classes 0, 1.
        match &g.labels {
            Some(RawLabels::Classes(c)) => assert_eq!(c, &vec![1, 0]),
            other => panic!("{other:?}"),
        }
        // Node labels 2,3,2,5,3: minimum 2, width 5 − 2 + 1 = 4.
        let x = raw.x.as_ref().unwrap();
        assert_eq!(x.num_features, 4);
        assert!(x.source.ends_with("TOY_node_labels.txt"));
        #[rustfmt::skip]
        assert_eq!(x.data, vec![
            1., 0., 0., 0.,
            0., 1., 0., 0.,
            1., 0., 0., 0.,
            0., 0., 0., 1.,
            0., 1., 0., 0.,
        ]);
        // Edge labels 1,1,2,2,3,3 in _A.txt order → one-hot width 3.
        let ea = raw.edge_attr.as_ref().unwrap();
        assert_eq!(ea.width, 3);
        for (k, row) in ea.data.chunks(3).enumerate() {
            let mut want = [0.0; 3];
            want[k / 2] = 1.0;
            assert_eq!(row, want, "edge {k}");
        }
        assert!(raw.y.is_none());
        assert!(raw.splits.is_none());
    }

    #[test]
    fn tu_attributes_targets_and_splits() {
        let tmp = tempfile::tempdir().unwrap();
        write_toy(
            tmp.path(),
            &[
                ("graph_labels", None),
                ("edge_labels", None),
                (
                    "node_attributes",
                    Some("0.5, 1\n1.5, 2\n2.5, 3\n3.5, 4\n4.5, 5\n"),
                ),
                ("edge_attributes", Some("0.1\n0.1\n0.2\n0.2\n0.3\n0.3\n")),
                ("graph_attributes", Some("-0.77\n2.5\n")),
                ("split", Some("test\r\ntrain\r\n")),
            ],
        );
        let raw = read(tmp.path(), Some("TOY")).unwrap();
        // One-hot columns come first, then the attributes.
        let x = raw.x.unwrap();
        assert_eq!(x.num_features, 6);
        assert_eq!(&x.data[..6], &[1., 0., 0., 0., 0.5, 1.]);
        assert_eq!(&x.data[24..], &[0., 1., 0., 0., 4.5, 5.]);
        let ea = raw.edge_attr.unwrap();
        assert_eq!((ea.width, ea.data[2]), (1, 0.2));
        match raw.graphs.unwrap().labels {
            Some(RawLabels::Targets { data, width }) => {
                assert_eq!((data, width), (vec![-0.77, 2.5], 1))
            }
            other => panic!("{other:?}"),
        }
        let s = raw.splits.unwrap();
        assert_eq!((s.train, s.val, s.test), (vec![1], vec![], vec![0]));

        // Attributes alone are the features.
        write_toy(tmp.path(), &[("node_labels", None)]);
        let x = read(tmp.path(), Some("TOY")).unwrap().x.unwrap();
        assert_eq!(x.num_features, 2);
        assert!(x.source.ends_with("TOY_node_attributes.txt"));
    }

    #[test]
    fn tu_malformed_inputs_name_file_and_line() {
        // (changes, "file:line:" expected in the message, words of the reason)
        let cases: &[(Changes, &str, &str)] = &[
            (
                &[("A", Some("1, 2\n2, x\n"))],
                "TOY_A.txt:2:",
                "expected an integer",
            ),
            (
                &[("A", Some("1, 2\n2, 1\n2, 6\n"))],
                "TOY_A.txt:3:",
                "out of range",
            ),
            (
                &[("A", Some("1, 2\n0, 1\n"))],
                "TOY_A.txt:2:",
                "out of range",
            ),
            (
                &[("A", Some("1, 2, 3\n"))],
                "TOY_A.txt:1:",
                "2 comma-separated",
            ),
            (
                &[("A", Some("1, 2\n3, 4\n"))],
                "TOY_A.txt:2:",
                "joins graph 1 and graph 2",
            ),
            (
                &[("A", Some("1, 2\n\n2, 1\n"))],
                "TOY_A.txt:2:",
                "empty line",
            ),
            // Indicator one node short of the node labels (node 5 and its edges dropped):
            // the labels' extra line is named.
            (
                &[
                    ("graph_indicator", Some("1\n1\n1\n2\n")),
                    ("A", Some("1, 2\n2, 1\n")),
                    ("edge_labels", Some("0\n0\n")),
                ],
                "TOY_node_labels.txt:5:",
                "extra line",
            ),
            (
                &[("graph_indicator", Some("1\n1\n1\n2\n2\n2\n"))],
                "TOY_node_labels.txt:6:",
                "file ends after 5",
            ),
            (
                &[("graph_indicator", Some("1\n1\n2\n1\n2\n"))],
                "TOY_graph_indicator.txt:4:",
                "nondecreasing",
            ),
            (
                &[("graph_indicator", Some("1\n1\n1\n3\n3\n"))],
                "TOY_graph_indicator.txt:4:",
                "skips",
            ),
            (
                &[("graph_labels", Some("1\n"))],
                "TOY_graph_labels.txt:2:",
                "file ends after 1",
            ),
            (
                &[("graph_labels", Some("1\n-1, 2\n"))],
                "TOY_graph_labels.txt:2:",
                "expected 1",
            ),
            (
                &[("edge_labels", Some("1\n1\n2\n2\n3\n3\n0\n"))],
                "TOY_edge_labels.txt:7:",
                "extra line",
            ),
            (
                &[("split", Some("train\ndev\n"))],
                "TOY_split.txt:2:",
                "train, val or test",
            ),
            (
                &[("node_attributes", Some("1\n2\nnan\n4\n5\n"))],
                "TOY_node_attributes.txt:3:",
                "not finite",
            ),
        ];
        for (changes, at, why) in cases {
            let msg = toy_error(changes);
            assert!(
                msg.contains(at) && msg.contains(why),
                "{changes:?}: got {msg:?}, want {at} … {why}"
            );
        }
        let msg = toy_error(&[("A", None)]);
        assert!(
            msg.contains("TOY_A.txt") && msg.contains("missing"),
            "{msg}"
        );
        let msg = toy_error(&[("graph_indicator", None)]);
        assert!(
            msg.contains("TOY_graph_indicator.txt") && msg.contains("missing"),
            "{msg}"
        );
        let msg = toy_error(&[("node_labels", Some("1\n2\n3\n4\n100000\n"))]);
        assert!(
            msg.contains("TOY_node_labels.txt") && msg.contains("one-hot width"),
            "{msg}"
        );
    }

    #[test]
    fn tu_one_hot_larger_than_memory_is_refused_before_allocating() {
        // Labels 0 and 65535 are within the width limit, but on 2^30 rows (as many lines
        // as a file would need; the two values stand for them) the encoding is 2^30 ×
        // 65536 × 4 bytes: refused against the memory cap, naming the file. It was allocated
        // unchecked (fuzz regression tu/one-hot-rows-times-width: 600 lines, 157 MB).
        let table = Table {
            data: vec![0, 65535],
            width: 1,
            rows: 1 << 30,
        };
        let e = one_hot(&table, Path::new("BIG_node_labels.txt"))
            .err()
            .expect("refused")
            .to_string();
        assert!(
            e.contains("BIG_node_labels.txt") && e.contains("one-hot"),
            "{e}"
        );
    }

    const TU_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/datasets/tu");

    /// The real dataset directory, or `None` (with a message) when it is absent.
    fn real(name: &str) -> Option<PathBuf> {
        let dir = Path::new(TU_ROOT).join(name);
        if dir.is_dir() {
            Some(dir)
        } else {
            eprintln!("skipping: TU dataset {} not found", dir.display());
            None
        }
    }

    fn num_graphs(raw: &RawDataset) -> usize {
        raw.graphs.as_ref().unwrap().graph_ptr.len() - 1
    }

    #[test]
    fn tu_real_mutag() {
        let Some(dir) = real("MUTAG") else { return };
        let raw = read(&dir, None).unwrap();
        assert_eq!(num_graphs(&raw), 188);
        assert_eq!(raw.num_nodes, Some(3371));
        assert_eq!(raw.src.len(), 7442);
        // Class 0 is the raw label -1 (63 graphs), class 1 is 1 (125).
        assert_eq!(
            class_counts(&raw.graphs.as_ref().unwrap().labels),
            vec![63, 125]
        );
        assert_eq!(raw.x.as_ref().unwrap().num_features, 7);
        assert_eq!(raw.edge_attr.as_ref().unwrap().width, 4);

        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("mutag");
        let m = crate::ingest(
            raw,
            &crate::IngestOptions::default(),
            &out,
            &crate::NoProgress,
        )
        .unwrap();
        assert_eq!(m.num_graphs, Some(188));
        assert_eq!(m.num_edges, 7442);
    }

    #[test]
    fn tu_real_esol() {
        let Some(dir) = real("ESOL") else { return };
        let raw = read(&dir, None).unwrap();
        assert_eq!(num_graphs(&raw), 1128);
        assert_eq!(raw.num_nodes, Some(14991));
        assert_eq!(raw.src.len(), 30856);
        match &raw.graphs.as_ref().unwrap().labels {
            Some(RawLabels::Targets { data, width }) => assert_eq!((data.len(), *width), (1128, 1)),
            other => panic!("{other:?}"),
        }
        let s = raw.splits.as_ref().unwrap();
        assert_eq!((s.train.len(), s.val.len(), s.test.len()), (902, 112, 114));
    }

    #[test]
    fn tu_real_proteins() {
        let Some(dir) = real("PROTEINS") else { return };
        let raw = read(&dir, None).unwrap();
        assert_eq!(num_graphs(&raw), 1113);
        assert_eq!(raw.num_nodes, Some(43471));
        assert_eq!(raw.src.len(), 162088);
        assert_eq!(
            class_counts(&raw.graphs.as_ref().unwrap().labels),
            vec![663, 450]
        );
        // 3 one-hot node labels + 1 attribute.
        assert_eq!(raw.x.as_ref().unwrap().num_features, 4);
        assert!(raw.edge_attr.is_none());
    }
}
