//! CSV/TSV (and space-separated) edge lists: one edge per line, integer node ids in two
//! chosen columns, optional node feature and label files beside them.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::table::{self, Column, Keys, Layout};
use crate::{DataError, RawDataset, RawLabels, Result};

/// Where the edge list is and how to read it.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// The edge list file.
    pub edges: PathBuf,
    /// None: from extension (.tsv/.tab → b'\t', else b',').  Whitespace-separated (space) also accepted via Some(b' ').
    pub delimiter: Option<u8>,
    /// The first (non-comment) line of the edge list is a header.
    pub header: bool,
    /// The features table has a header line.
    pub features_header: bool,
    /// The labels table has a header line.
    pub labels_header: bool,
    /// Column of the node id in the features and labels tables (rows keyed by id).
    pub node_id_col: Option<Column>,
    /// Column of the label in a labels table keyed by id (default: the other column).
    pub label_col: Option<Column>,
    /// Ids need not be integers: any string is a node id (for `--relabel`).
    pub string_ids: bool,
    /// The features file holds `node, feature[, value]` rows (one per non-zero).
    pub features_pairs: bool,
    /// Column of the source id (default `Index(0)`).
    pub src_col: Column,
    /// Column of the destination id (default `Index(1)`).
    pub dst_col: Column,
    /// Node features (`.npy`, CSV/TSV or Parquet), see `table::read_features`.
    pub features: Option<PathBuf>,
    /// Node class labels (`.npy` or one integer per line), see `table::read_labels`.
    pub labels: Option<PathBuf>,
    /// Node count, for isolated nodes past the largest id.
    pub num_nodes: Option<usize>,
}

impl CsvOptions {
    /// Options for `edges` with the defaults: delimiter from the extension, no header,
    /// columns 0 and 1, no node data.
    pub fn new(edges: impl Into<PathBuf>) -> Self {
        CsvOptions {
            edges: edges.into(),
            delimiter: None,
            header: false,
            features_header: false,
            labels_header: false,
            node_id_col: None,
            label_col: None,
            string_ids: false,
            features_pairs: false,
            src_col: Column::Index(0),
            dst_col: Column::Index(1),
            features: None,
            labels: None,
            num_nodes: None,
        }
    }
}

/// Fields of a record; with `collapse` (space-separated input) runs of separators count
/// as one, so empty fields are not counted.
fn field(rec: &csv::ByteRecord, idx: usize, collapse: bool) -> Option<&[u8]> {
    if collapse {
        rec.iter().filter(|f| !f.is_empty()).nth(idx)
    } else {
        rec.get(idx)
    }
}

fn width(rec: &csv::ByteRecord, collapse: bool) -> usize {
    if collapse {
        rec.iter().filter(|f| !f.is_empty()).count()
    } else {
        rec.len()
    }
}

/// Parses one id field of the record on `line`, naming the column in errors; `None` when
/// the field is not an integer and `keys` takes integers only.
#[allow(clippy::too_many_arguments)] // the field's coordinates, each named in errors
fn id_at(
    path: &Path,
    rec: &csv::ByteRecord,
    idx: usize,
    collapse: bool,
    role: &str,
    col: &Column,
    line: u64,
    keys: &mut Keys,
) -> Result<Option<i64>> {
    match field(rec, idx, collapse) {
        None => {
            let n = width(rec, collapse);
            Err(DataError::parse(
                path,
                line,
                format!(
                    "{role} ({col}) is missing: the line has {n} field{}",
                    if n == 1 { "" } else { "s" }
                ),
            ))
        }
        Some([]) => Err(DataError::parse(
            path,
            line,
            format!("{role} ({col}) is empty"),
        )),
        Some(f) => Ok(keys.key(f)),
    }
}

/// The edges of the file: `Ok(None)` when an id is not an integer and `keys` takes integers
/// only (the caller may read again with string ids).
#[allow(clippy::too_many_arguments)]
fn read_edges(
    path: &Path,
    delimiter: u8,
    opts: &CsvOptions,
    keys: &mut Keys,
    retry_as_strings: bool,
) -> Result<Option<Edges>> {
    let collapse = delimiter == b' ';
    let mut rdr = table::open_csv(path, delimiter, opts.header)?;
    let header = if opts.header {
        Some(
            rdr.byte_headers()
                .map_err(|e| table::csv_error(path, e))?
                .clone(),
        )
    } else {
        None
    };
    let si = table::resolve(path, "src", &opts.src_col, header.as_ref(), collapse)?;
    let di = table::resolve(path, "dst", &opts.dst_col, header.as_ref(), collapse)?;
    let mut src = Vec::new();
    let mut dst = Vec::new();
    let mut rec = csv::ByteRecord::new();
    let mut first = true;
    let mut widest = header.as_ref().map_or(0, |h| width(h, collapse));
    while rdr
        .read_byte_record(&mut rec)
        .map_err(|e| table::csv_error(path, e))?
    {
        if table::is_blank(&rec) {
            continue;
        }
        widest = widest.max(width(&rec, collapse));
        let line = table::line_of(&rec);
        for (role, idx, col, out) in [
            ("src", si, &opts.src_col, &mut src),
            ("dst", di, &opts.dst_col, &mut dst),
        ] {
            match id_at(path, &rec, idx, collapse, role, col, line, keys)? {
                Some(v) => out.push(v),
                None if retry_as_strings => return Ok(None),
                None => {
                    let f = field(&rec, idx, collapse).unwrap_or_default();
                    let mut reason = format!(
                        "{role} ({col}): {} is not an integer node id (--relabel reads \
                         any string as an id)",
                        table::show(f)
                    );
                    if first && !opts.header {
                        reason.push_str("; if this line is a header, pass --header");
                    }
                    return Err(DataError::parse(path, line, reason));
                }
            }
        }
        first = false;
    }
    // Columns besides the two ids (weights, timestamps, types) are not kept: named, so
    // nothing the file holds is dropped silently.
    let unused = (0..widest)
        .filter(|&i| i != si && i != di)
        .map(
            |i| match header.as_ref().and_then(|h| field(h, i, collapse)) {
                Some(name) => format!("{} (column {i})", table::show(name)),
                None => format!("column {i}"),
            },
        )
        .collect();
    Ok(Some(Edges { src, dst, unused }))
}

/// An edge list as read: source and destination ids, and the columns not read.
struct Edges {
    src: Vec<i64>,
    dst: Vec<i64>,
    unused: Vec<String>,
}

/// Reads the edge list (and node features/labels when given) into a `RawDataset`.
pub fn read(opts: &CsvOptions) -> Result<RawDataset> {
    let path = opts.edges.as_path();
    let delimiter = opts.delimiter.unwrap_or_else(|| table::delimiter_for(path));
    let mut keys = Keys::Ints;
    // Integer ids are read as numbers (sorted numerically by --relabel); the first id that
    // is not an integer sends a --relabel read back to the start with every id a string.
    let edges = match read_edges(path, delimiter, opts, &mut keys, opts.string_ids)? {
        Some(e) => e,
        None => {
            keys = Keys::Strings(Default::default());
            read_edges(path, delimiter, opts, &mut keys, false)?
                .ok_or_else(|| DataError::invalid(path, "string ids were refused"))?
        }
    };
    let (src, dst) = (edges.src, edges.dst);
    let mut warnings = Vec::new();
    if !edges.unused.is_empty() {
        warnings.push(format!(
            "{}: {} not read: an edge table gives the graph its two id columns only (edge \
             weights and attributes from CSV are not kept)",
            path.display(),
            edges.unused.join(", ")
        ));
    }
    let x = opts
        .features
        .as_deref()
        .map(|p| {
            let layout = Layout {
                header: opts.features_header,
                id_col: opts.node_id_col.clone(),
                label_col: None,
                pairs: opts.features_pairs,
            };
            table::read_feature_table(p, &layout, &mut keys, &mut warnings)
        })
        .transpose()?;
    let (y, y_ids) = match opts.labels.as_deref() {
        Some(p) => {
            let layout = Layout {
                header: opts.labels_header,
                id_col: opts.node_id_col.clone(),
                label_col: opts.label_col.clone(),
                pairs: false,
            };
            let (y, ids) = table::read_label_table(p, &layout, &mut keys)?;
            (Some(RawLabels::Classes(y)), ids)
        }
        None => (None, None),
    };
    let (mut src, mut dst, mut x, mut y_ids) = (src, dst, x, y_ids);
    let id_names = match keys {
        Keys::Strings(t) => {
            let (rank, sorted) = t.into_sorted();
            let recode = |v: &mut [i64]| {
                for c in v {
                    *c = rank[*c as usize];
                }
            };
            recode(&mut src);
            recode(&mut dst);
            if let Some(ids) = x.as_mut().and_then(|x| x.ids.as_mut()) {
                recode(ids);
            }
            if let Some(ids) = y_ids.as_mut() {
                recode(ids);
            }
            Some(sorted)
        }
        Keys::Ints => None,
    };

    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".to_string());
    let show_col = |c: &Column| match c {
        Column::Index(i) => json!(i),
        Column::Name(n) => json!(n),
    };
    let source = json!({
        "format": "csv",
        "input": path.to_string_lossy(),
        "delimiter": (delimiter as char).to_string(),
        "header": opts.header,
        "features_header": opts.features_header,
        "features_pairs": opts.features_pairs,
        "labels_header": opts.labels_header,
        "node_id_col": opts.node_id_col.as_ref().map(show_col),
        "label_col": opts.label_col.as_ref().map(show_col),
        "string_ids": id_names.is_some(),
        "src_col": show_col(&opts.src_col),
        "dst_col": show_col(&opts.dst_col),
        "features": opts.features.as_ref().map(|p| p.to_string_lossy().into_owned()),
        "labels": opts.labels.as_ref().map(|p| p.to_string_lossy().into_owned()),
    });
    Ok(RawDataset {
        name,
        source,
        src,
        dst,
        num_nodes: opts.num_nodes,
        x,
        y,
        y_ids,
        y_source: opts.labels.clone(),
        id_names,
        warnings,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn comma_with_header_and_named_columns() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "cora.csv",
            "weight,to,from\n0.5,1,0\n0.1,2,1\n0.9, 0 , 2\n",
        );
        let mut o = CsvOptions::new(&p);
        o.header = true;
        o.src_col = "from".parse().unwrap();
        o.dst_col = "to".parse().unwrap();
        let raw = read(&o).unwrap();
        assert_eq!(raw.name, "cora");
        assert_eq!(raw.src, vec![0, 1, 2]);
        assert_eq!(raw.dst, vec![1, 2, 0]);
        assert_eq!(raw.source["format"], "csv");
        assert_eq!(raw.source["input"], p.to_string_lossy().as_ref());
        assert_eq!(raw.source["src_col"], "from");
        // The weight column is named in a warning, not dropped silently.
        assert_eq!(raw.warnings.len(), 1, "{:?}", raw.warnings);
        assert!(
            raw.warnings[0].contains("\"weight\" (column 0)"),
            "{:?}",
            raw.warnings
        );
    }

    #[test]
    fn tsv_by_extension_and_comments() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "g.tsv",
            "# SNAP style\n# FromNodeId\tToNodeId\n0\t1\n\n1\t2\n# trailing\n2\t3\n",
        );
        let raw = read(&CsvOptions::new(&p)).unwrap();
        assert_eq!(raw.src, vec![0, 1, 2]);
        assert_eq!(raw.dst, vec![1, 2, 3]);
        assert_eq!(raw.source["delimiter"], "\t");
    }

    #[test]
    fn space_separated() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "g.txt", "0 1\n  1   2 \n2 0\n");
        let mut o = CsvOptions::new(&p);
        o.delimiter = Some(b' ');
        let raw = read(&o).unwrap();
        assert_eq!(raw.src, vec![0, 1, 2]);
        assert_eq!(raw.dst, vec![1, 2, 0]);
    }

    #[test]
    fn missing_field_names_the_line() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "e.csv", "0,1\n# c\n1,2\n3\n");
        let msg = read(&CsvOptions::new(&p)).unwrap_err().to_string();
        assert!(msg.contains("e.csv:4:"), "{msg}");
        assert!(msg.contains("dst"), "{msg}");
    }

    #[test]
    fn non_integer_id_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "e.csv", "0,1\n1,x2\n");
        let err = read(&CsvOptions::new(&p)).unwrap_err();
        assert!(matches!(err, DataError::Parse { line: 2, .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("\"x2\" is not an integer"), "{msg}");
        assert!(msg.contains("dst"), "{msg}");

        let p = write(d.path(), "f.csv", "0,1\n1.5,2\n");
        assert!(read(&CsvOptions::new(&p)).is_err());
    }

    #[test]
    fn bad_column_names() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "e.csv", "a,b\n0,1\n");
        let mut o = CsvOptions::new(&p);
        o.src_col = Column::Name("a".into());
        // Name without a header.
        let err = read(&o).unwrap_err();
        assert!(matches!(err, DataError::Invalid { .. }), "{err}");
        // Name not in the header.
        o.header = true;
        o.src_col = Column::Name("nope".into());
        let err = read(&o).unwrap_err();
        assert!(matches!(err, DataError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn node_files_and_ingest() {
        let d = tempfile::tempdir().unwrap();
        let e = write(d.path(), "tiny.csv", "0,1\n1,2\n2,0\n1,0\n");
        let x = write(d.path(), "x.csv", "1,0\n0,1\n1,1\n");
        let y = write(d.path(), "y.txt", "0\n1\n0\n");
        let mut o = CsvOptions::new(&e);
        o.features = Some(x);
        o.labels = Some(y);
        let raw = read(&o).unwrap();
        assert_eq!(raw.x.as_ref().unwrap().num_features, 2);
        assert!(matches!(&raw.y, Some(RawLabels::Classes(c)) if c == &vec![0, 1, 0]));
        let out = d.path().join("out");
        let m = crate::ingest(
            raw,
            &crate::IngestOptions {
                undirected: true,
                ..Default::default()
            },
            &out,
            &crate::NoProgress,
        )
        .unwrap();
        // {0-1, 1-2, 2-0} both ways; 1→0 duplicates the reverse of 0→1.
        assert_eq!(m.num_edges, 6);
        assert_eq!(m.num_nodes, 3);
    }
}
