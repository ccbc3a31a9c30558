//! Shared helpers for node tables: column selectors, feature matrices and class labels
//! read from `.npy`, CSV/TSV text (and Parquet feature tables via `readers::parquet`).

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use crate::{DataError, RawFeatures, Result};

/// Which column: by 0-based index or by header name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// 0-based position in the line.
    Index(usize),
    /// Name in the header line.
    Name(String),
}

impl std::str::FromStr for Column {
    type Err = String;

    /// `"0"` → `Index(0)`, `"src"` → `Name("src")`; an empty string is an error.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty column name".to_string());
        }
        Ok(match s.parse::<usize>() {
            Ok(i) => Column::Index(i),
            Err(_) => Column::Name(s.to_string()),
        })
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Column::Index(i) => write!(f, "column index {i}"),
            Column::Name(n) => write!(f, "column {n:?}"),
        }
    }
}

/// How the id fields of a table become the keys the edge list uses: integers as written, or
/// codes of strings (first seen, first coded), shared by the edge list and the node tables.
#[derive(Debug, Default)]
pub enum Keys {
    #[default]
    Ints,
    Strings(Interner),
}

/// String ids and their codes.
#[derive(Debug, Default)]
pub struct Interner {
    codes: std::collections::HashMap<Vec<u8>, i64>,
    /// `names[code]`: the string.
    pub names: Vec<String>,
}

impl Interner {
    /// The code of `field`, a new one for a string not seen before.
    pub fn code(&mut self, field: &[u8]) -> i64 {
        if let Some(&c) = self.codes.get(field) {
            return c;
        }
        let c = self.names.len() as i64;
        self.codes.insert(field.to_vec(), c);
        self.names.push(String::from_utf8_lossy(field).into_owned());
        c
    }

    /// The strings in sorted byte order, and `rank[code]`: each code's place in it. Codes are
    /// handed out in order of first appearance; renumbering by rank makes node k independent
    /// of the order of the input's lines (as integer ids are sorted numerically).
    pub fn into_sorted(self) -> (Vec<i64>, Vec<String>) {
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_unstable_by(|&a, &b| self.names[a].cmp(&self.names[b]));
        let mut rank = vec![0i64; order.len()];
        for (new, &old) in order.iter().enumerate() {
            rank[old] = new as i64;
        }
        let mut names = self.names;
        let sorted = order
            .iter()
            .map(|&k| std::mem::take(&mut names[k]))
            .collect();
        (rank, sorted)
    }
}

impl Keys {
    /// The key of an id field: its integer value, or its string's code (a new one for a
    /// string not seen before). `None`: not an integer where integers are expected.
    pub fn key(&mut self, field: &[u8]) -> Option<i64> {
        match self {
            Keys::Ints => parse_i64(field),
            Keys::Strings(t) => Some(t.code(field)),
        }
    }

    /// What ids are, for error messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Keys::Ints => "an integer node id",
            Keys::Strings(_) => "a node id",
        }
    }
}

/// How a node table (features or labels) is laid out.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// The first (non-comment) line is a header.
    pub header: bool,
    /// Column holding each row's node id; `None`: row k is node k.
    pub id_col: Option<Column>,
    /// Labels: the column holding the label (default: the one that is not the id).
    pub label_col: Option<Column>,
    /// Features: one `node, feature[, value]` row per non-zero (a sparse export) instead of
    /// one row per node; the node is in `id_col` (default column 0).
    pub pairs: bool,
}

/// Resolves `col` to a 0-based index, looking names up in `header` when there is one.
pub(crate) fn resolve(
    path: &Path,
    role: &str,
    col: &Column,
    header: Option<&csv::ByteRecord>,
    collapse: bool,
) -> Result<usize> {
    let name = match col {
        Column::Index(i) => return Ok(*i),
        Column::Name(n) => n,
    };
    let Some(h) = header else {
        return Err(DataError::invalid(
            path,
            format!(
                "{role} column {name:?} is given by name but the file is read without a header \
                 (give a 0-based index, or say the file has a header)"
            ),
        ));
    };
    let names: Vec<&[u8]> = if collapse {
        h.iter().filter(|f| !f.is_empty()).collect()
    } else {
        h.iter().collect()
    };
    names
        .iter()
        .position(|f| *f == name.as_bytes())
        .ok_or_else(|| {
            let have: Vec<String> = names
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            DataError::invalid(
                path,
                format!(
                    "{role} column {name:?} is not in the header (columns: {})",
                    have.join(", ")
                ),
            )
        })
}

/// Refuses a node file whose type we do not read, before trying to parse it as text.
fn check_text_extension(path: &Path, what: &str, flag: &str) -> Result<()> {
    match extension(path).as_str() {
        "csv" | "tsv" | "tab" | "txt" | "dat" | "" => Ok(()),
        other => Err(DataError::invalid(
            path,
            format!(
                "{what} file type .{other} is not read: {flag} takes .npy, .parquet, or a \
                 CSV/TSV/text table (.csv, .tsv, .tab, .txt)"
            ),
        )),
    }
}

/// Lower-cased extension of `path` ("" when none).
pub(crate) fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Field delimiter implied by the extension: `.tsv`/`.tab` → tab, else comma.
pub(crate) fn delimiter_for(path: &Path) -> u8 {
    match extension(path).as_str() {
        "tsv" | "tab" => b'\t',
        _ => b',',
    }
}

/// Opens a delimited text file with the settings every table reader shares: comments
/// (`#`), trimmed fields, rows of any width (widths are checked by the caller).
pub(crate) fn open_csv(
    path: &Path,
    delimiter: u8,
    header: bool,
) -> Result<csv::Reader<BufReader<File>>> {
    let f = File::open(path).map_err(|e| DataError::io(path, e))?;
    Ok(csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(header)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(BufReader::with_capacity(1 << 20, f)))
}

/// Converts a `csv` error into ours: I/O errors keep their cause, others name the line.
pub(crate) fn csv_error(path: &Path, e: csv::Error) -> DataError {
    if e.is_io_error() {
        if let csv::ErrorKind::Io(io) = e.into_kind() {
            return DataError::io(path, io);
        }
        return DataError::invalid(path, "I/O error");
    }
    match e.position().map(|p| p.line()) {
        Some(line) => DataError::parse(path, line, e.to_string()),
        None => DataError::invalid(path, e.to_string()),
    }
}

/// 1-based line number of the record just read (0 when unknown).
pub(crate) fn line_of(rec: &csv::ByteRecord) -> u64 {
    rec.position().map_or(0, |p| p.line())
}

/// Whether a record is a blank (whitespace-only) line.
pub(crate) fn is_blank(rec: &csv::ByteRecord) -> bool {
    rec.iter().all(|f| f.iter().all(u8::is_ascii_whitespace))
}

/// Shows a field in an error message (lossy UTF-8, quoted, shortened).
pub(crate) fn show(field: &[u8]) -> String {
    let s = String::from_utf8_lossy(field);
    if s.chars().count() > 40 {
        format!("{:?}…", s.chars().take(40).collect::<String>())
    } else {
        format!("{s:?}")
    }
}

/// Reads node features from a `.npy` (any numeric dtype, shape `[N, F]` or `[N]`), a
/// `.parquet` table (every numeric column, see `readers::parquet`) or a CSV/TSV file (one
/// row per node, every column numeric; `header` says whether the first line is a header;
/// `.tsv`/`.tab` are tab-separated, anything else comma-separated). Errors name the
/// 1-based line and column. NaN/Inf are accepted here and rejected by `ingest`.
pub fn read_features(path: &Path, header: bool) -> Result<RawFeatures> {
    let layout = Layout {
        header,
        ..Default::default()
    };
    read_feature_table(path, &layout, &mut Keys::Ints, &mut Vec::new())
}

/// [`read_features`] with a layout: a CSV/TSV table may key its rows by an id column
/// (`layout.id_col`, keys made by `keys`). Suspicious input is noted in `warnings`.
pub fn read_feature_table(
    path: &Path,
    layout: &Layout,
    keys: &mut Keys,
    warnings: &mut Vec<String>,
) -> Result<RawFeatures> {
    match extension(path).as_str() {
        "npy" | "parquet" | "pq" if layout.id_col.is_some() => Err(DataError::invalid(
            path,
            "--node-id-col applies to CSV/TSV tables (a Parquet table names its id column with \
             --id-col; an .npy array has no id column)",
        )),
        "npy" | "parquet" | "pq" if layout.pairs => Err(DataError::invalid(
            path,
            "--features-pairs applies to CSV/TSV tables",
        )),
        "npy" => read_features_npy(path),
        "parquet" | "pq" => {
            let t = super::parquet::read_node_table(path, None, None)?;
            t.x.ok_or_else(|| DataError::invalid(path, "the table has no numeric feature column"))
        }
        _ => {
            check_text_extension(path, "feature", "--features")?;
            if layout.pairs {
                return read_feature_pairs(path, delimiter_for(path), layout, keys);
            }
            read_features_text(path, delimiter_for(path), layout, keys, warnings)
        }
    }
}

fn read_features_npy(path: &Path) -> Result<RawFeatures> {
    let (data, shape) = scalegnn_npy::read_any_as_f32(path)?;
    let num_features = match shape.as_slice() {
        [_] => 1,
        [_, f] => *f,
        s => {
            return Err(DataError::invalid(
                path,
                format!("feature array must have shape [N, F] or [N], found {s:?}"),
            ))
        }
    };
    if num_features == 0 {
        return Err(DataError::invalid(
            path,
            format!("feature array has no columns (shape {shape:?})"),
        ));
    }
    Ok(RawFeatures {
        data,
        num_features,
        source: path.to_path_buf(),
        ids: None,
        sparse: false,
    })
}

fn read_features_text(
    path: &Path,
    delimiter: u8,
    layout: &Layout,
    keys: &mut Keys,
    warnings: &mut Vec<String>,
) -> Result<RawFeatures> {
    let header = layout.header;
    let mut rdr = open_csv(path, delimiter, header)?;
    // Width fixed by the header when there is one, else by the first data row.
    let mut width: Option<(usize, u64)> = None;
    let mut head = None;
    if header {
        let h = rdr.byte_headers().map_err(|e| csv_error(path, e))?;
        if !h.is_empty() && !is_blank(h) {
            width = Some((h.len(), line_of(h)));
        }
        head = Some(h.clone());
    }
    let id_at = layout
        .id_col
        .as_ref()
        .map(|c| resolve(path, "node id", c, head.as_ref(), false))
        .transpose()?;
    let mut ids: Vec<i64> = Vec::new();
    let mut data: Vec<f32> = Vec::new();
    let mut rec = csv::ByteRecord::new();
    let mut first_line = true;
    while rdr
        .read_byte_record(&mut rec)
        .map_err(|e| csv_error(path, e))?
    {
        if is_blank(&rec) {
            continue;
        }
        let line = line_of(&rec);
        match width {
            None => width = Some((rec.len(), line)),
            Some((w, first)) if w != rec.len() => {
                return Err(DataError::parse(
                    path,
                    line,
                    format!("row has {} columns but line {first} has {w}", rec.len()),
                ))
            }
            Some(_) => {}
        }
        if let Some(c) = id_at {
            let f = rec.get(c).ok_or_else(|| {
                DataError::parse(path, line, format!("no node id column {}", c + 1))
            })?;
            ids.push(keys.key(f).ok_or_else(|| {
                DataError::parse(
                    path,
                    line,
                    format!("column {}: {} is not {}", c + 1, show(f), keys.describe()),
                )
            })?);
        }
        for (j, field) in rec.iter().enumerate() {
            if Some(j) == id_at {
                continue;
            }
            data.push(parse_f32(field).ok_or_else(|| {
                let mut reason = if field.is_empty() {
                    format!("column {}: missing value", j + 1)
                } else {
                    format!("column {}: {} is not a number", j + 1, show(field))
                };
                if first_line && !header {
                    reason.push_str(" (if this line is a header, pass --features-header)");
                }
                DataError::parse(path, line, reason)
            })?);
        }
        first_line = false;
    }
    let num_features = width.map_or(0, |(w, _)| w) - usize::from(id_at.is_some());
    if data.is_empty() || num_features == 0 {
        return Err(DataError::invalid(path, "feature table has no rows"));
    }
    if id_at.is_none() {
        note_id_like_column(path, &data, num_features, warnings);
    }
    Ok(RawFeatures {
        data,
        num_features,
        source: path.to_path_buf(),
        ids: id_at.map(|_| ids),
        sparse: false,
    })
}

/// Reads a `node, feature[, value]` table (one row per non-zero; value 1 when the column is
/// absent, as bag-of-words exports write it) into one dense row per node that has a pair.
/// The feature is a 0-based integer index; the width is the largest index + 1.
fn read_feature_pairs(
    path: &Path,
    delimiter: u8,
    layout: &Layout,
    keys: &mut Keys,
) -> Result<RawFeatures> {
    let mut rdr = open_csv(path, delimiter, layout.header)?;
    let head = if layout.header {
        Some(rdr.byte_headers().map_err(|e| csv_error(path, e))?.clone())
    } else {
        None
    };
    let id_at = match &layout.id_col {
        Some(c) => resolve(path, "node id", c, head.as_ref(), false)?,
        None => 0,
    };
    // Rows are numbered in order of first appearance; `ids` maps them back to node keys.
    let mut row_of: std::collections::HashMap<i64, u32> = Default::default();
    let mut ids: Vec<i64> = Vec::new();
    // (row, feature, value, line): the line names both copies of a repeated pair.
    let mut pairs: Vec<(u32, u32, f32, u64)> = Vec::new();
    let mut width = 0usize;
    let mut rec = csv::ByteRecord::new();
    let mut first = true;
    while rdr
        .read_byte_record(&mut rec)
        .map_err(|e| csv_error(path, e))?
    {
        if is_blank(&rec) {
            continue;
        }
        let line = line_of(&rec);
        let hint = |mut m: String| {
            if first && !layout.header {
                m.push_str(" (if this line is a header, pass --features-header)");
            }
            DataError::parse(path, line, m)
        };
        if !(2..=3).contains(&rec.len()) || id_at >= rec.len() {
            return Err(DataError::parse(
                path,
                line,
                format!(
                    "--features-pairs reads node, feature[, value] rows; this row has {} columns",
                    rec.len()
                ),
            ));
        }
        let mut rest = (0..rec.len()).filter(|&j| j != id_at);
        let (fj, vj) = (rest.next().unwrap_or(1), rest.next());
        let id_field = &rec[id_at];
        let id = keys.key(id_field).ok_or_else(|| {
            hint(format!(
                "column {}: {} is not {}",
                id_at + 1,
                show(id_field),
                keys.describe()
            ))
        })?;
        let f = &rec[fj];
        let feature = parse_i64(f)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&v| (v as usize) < MAX_PAIR_FEATURES)
            .ok_or_else(|| {
                hint(format!(
                    "column {}: {} is not a feature index (an integer 0..{MAX_PAIR_FEATURES})",
                    fj + 1,
                    show(f)
                ))
            })?;
        let value = match vj {
            None => 1.0,
            Some(j) => parse_f32(&rec[j]).ok_or_else(|| {
                hint(format!(
                    "column {}: {} is not a number",
                    j + 1,
                    show(&rec[j])
                ))
            })?,
        };
        let next = ids.len() as u32;
        let row = *row_of.entry(id).or_insert(next);
        if row == next {
            ids.push(id);
        }
        width = width.max(feature as usize + 1);
        pairs.push((row, feature, value, line));
        first = false;
    }
    if pairs.is_empty() {
        return Err(DataError::invalid(path, "feature table has no rows"));
    }
    let rows = ids.len();
    let cells = rows.checked_mul(width).filter(|&c| c <= MAX_PAIR_CELLS);
    let Some(cells) = cells else {
        return Err(DataError::invalid(
            path,
            format!(
                "{rows} nodes x {width} features would be {} dense values, more than this \
                 build holds in memory at ingest ({MAX_PAIR_CELLS})",
                rows as u128 * width as u128
            ),
        ));
    };
    // A pair given twice is an error, not a silent sum or overwrite.
    pairs.sort_unstable_by_key(|&(r, f, _, line)| (r, f, line));
    if let Some(w) = pairs
        .windows(2)
        .find(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1))
    {
        return Err(DataError::parse(
            path,
            w[1].3,
            format!(
                "this node and feature {} are also given on line {}",
                w[1].1, w[0].3
            ),
        ));
    }
    let mut data = vec![0f32; cells];
    for &(r, f, v, _) in &pairs {
        data[r as usize * width + f as usize] = v;
    }
    Ok(RawFeatures {
        data,
        num_features: width,
        source: path.to_path_buf(),
        ids: Some(ids),
        sparse: true,
    })
}

/// Largest feature index + 1 accepted in a pairs table (bag-of-words vocabularies fit).
const MAX_PAIR_FEATURES: usize = 1 << 24;
/// Dense values a pairs table may expand to at ingest (16 GiB of f32).
const MAX_PAIR_CELLS: usize = 1 << 32;

/// Warns when the first column counts 0..R-1 or 1..R: a node id read as a feature.
fn note_id_like_column(path: &Path, data: &[f32], width: usize, warnings: &mut Vec<String>) {
    let rows = data.len() / width.max(1);
    if width < 2 || rows < 3 {
        return;
    }
    let first = data[0];
    let counts =
        (first == 0.0 || first == 1.0) && (0..rows).all(|r| data[r * width] == first + r as f32);
    if counts {
        warnings.push(format!(
            "column 1 of {} runs {}..{} like a node id; it is kept as a feature (pass \
             --node-id-col 0 if it is the id)",
            path.display(),
            first,
            first as usize + rows - 1
        ));
    }
}

/// Parses a trimmed field as f32 (accepts `nan`, `inf`, exponents).
fn parse_f32(field: &[u8]) -> Option<f32> {
    std::str::from_utf8(field).ok()?.parse::<f32>().ok()
}

/// Parses a trimmed field as i64.
pub(crate) fn parse_i64(field: &[u8]) -> Option<i64> {
    std::str::from_utf8(field).ok()?.parse::<i64>().ok()
}

/// Reads integer class labels from `.npy` (integer dtype, shape `[N]` or `[N, 1]`) or a
/// text/CSV file with one integer per line (`header` skips a first line); `-1` or an empty
/// field marks an unlabelled node.
pub fn read_labels(path: &Path, header: bool) -> Result<Vec<i64>> {
    let layout = Layout {
        header,
        ..Default::default()
    };
    Ok(read_label_table(path, &layout, &mut Keys::Ints)?.0)
}

/// [`read_labels`] with a layout: a table of several columns names its id column
/// (`layout.id_col`) and, beyond two columns, its label column. Returns the labels and, for
/// a keyed table, each row's node key.
pub fn read_label_table(
    path: &Path,
    layout: &Layout,
    keys: &mut Keys,
) -> Result<(Vec<i64>, Option<Vec<i64>>)> {
    if extension(path) == "npy" {
        if layout.id_col.is_some() {
            return Err(DataError::invalid(
                path,
                "--node-id-col applies to CSV/TSV tables; an .npy array has no id column",
            ));
        }
        let (v, shape) = scalegnn_npy::read_any_as_i64(path)?;
        return match shape.as_slice() {
            [_] | [_, 1] => Ok((v, None)),
            s => Err(DataError::invalid(
                path,
                format!("label array must have shape [N], found {s:?}"),
            )),
        };
    }
    check_text_extension(path, "label", "--labels")?;
    let header = layout.header;
    let mut rdr = open_csv(path, delimiter_for(path), header)?;
    let head = if header {
        Some(rdr.byte_headers().map_err(|e| csv_error(path, e))?.clone())
    } else {
        None
    };
    let id_at = layout
        .id_col
        .as_ref()
        .map(|c| resolve(path, "node id", c, head.as_ref(), false))
        .transpose()?;
    let label_at = layout
        .label_col
        .as_ref()
        .map(|c| resolve(path, "label", c, head.as_ref(), false))
        .transpose()?;
    let mut out = Vec::new();
    let mut ids = Vec::new();
    let mut rec = csv::ByteRecord::new();
    let mut first_line = true;
    while rdr
        .read_byte_record(&mut rec)
        .map_err(|e| csv_error(path, e))?
    {
        if is_blank(&rec) {
            continue;
        }
        let line = line_of(&rec);
        let li = match (id_at, label_at, rec.len()) {
            (_, Some(l), _) => l,
            (None, None, 1) => 0,
            (Some(i), None, 2) => 1 - i.min(1),
            (None, None, n) => {
                return Err(DataError::parse(
                    path,
                    line,
                    format!(
                        "{n} fields: a label file holds one label per line, or is keyed by \
                         node id (pass --node-id-col, and --label-col beyond two columns)"
                    ),
                ))
            }
            (Some(_), None, n) => {
                return Err(DataError::parse(
                    path,
                    line,
                    format!("{n} fields: pass --label-col to say which one is the label"),
                ))
            }
        };
        if let Some(c) = id_at {
            let f = rec.get(c).ok_or_else(|| {
                DataError::parse(path, line, format!("no node id column {}", c + 1))
            })?;
            ids.push(keys.key(f).ok_or_else(|| {
                DataError::parse(
                    path,
                    line,
                    format!("column {}: {} is not {}", c + 1, show(f), keys.describe()),
                )
            })?);
        }
        let field = rec
            .get(li)
            .ok_or_else(|| DataError::parse(path, line, format!("no label column {}", li + 1)))?;
        // An empty field is an unlabelled node, as -1 is.
        let label = if field.is_empty() {
            Some(-1)
        } else {
            parse_i64(field)
        };
        let label = label.ok_or_else(|| {
            let mut reason = format!("label {} is not an integer", show(field));
            if first_line && !header {
                reason.push_str(" (if this line is a header, pass --labels-header)");
            }
            DataError::parse(path, line, reason)
        })?;
        if !(-1..crate::ingest::MAX_CLASSES).contains(&label) {
            return Err(DataError::parse(
                path,
                line,
                format!(
                    "label {label}: class ids run 0..C-1 with at most {} classes, and -1 or an \
                     empty field marks an unlabelled node",
                    crate::ingest::MAX_CLASSES
                ),
            ));
        }
        out.push(label);
        first_line = false;
    }
    Ok((out, id_at.map(|_| ids)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn column_from_str() {
        assert_eq!("0".parse::<Column>().unwrap(), Column::Index(0));
        assert_eq!("12".parse::<Column>().unwrap(), Column::Index(12));
        assert_eq!("src".parse::<Column>().unwrap(), Column::Name("src".into()));
        assert!("".parse::<Column>().is_err());
    }

    #[test]
    fn feature_pairs_become_dense_rows_keyed_by_node() {
        let d = tempfile::tempdir().unwrap();
        let pairs = Layout {
            pairs: true,
            ..Default::default()
        };
        // No value column: each pair is a 1 (bag of words); rows in order of first node.
        let p = write(d.path(), "x.csv", "7,2\n3,0\n7,0\n");
        let x = read_feature_table(&p, &pairs, &mut Keys::Ints, &mut Vec::new()).unwrap();
        assert_eq!(x.num_features, 3);
        assert_eq!(x.ids, Some(vec![7, 3]));
        assert_eq!(x.data, vec![1.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        // Node in another column, with values.
        let layout = Layout {
            pairs: true,
            header: true,
            id_col: Some(Column::Name("node".into())),
            ..Default::default()
        };
        let p = write(d.path(), "v.csv", "feature,node,value\n1,5,0.5\n0,5,-2\n");
        let x = read_feature_table(&p, &layout, &mut Keys::Ints, &mut Vec::new()).unwrap();
        assert_eq!((x.num_features, x.data), (2, vec![-2.0, 0.5]));
        // A pair given twice names both lines; a header not declared is hinted at.
        let p = write(d.path(), "dup.csv", "1,0,1\n2,0,1\n1,0,3\n");
        let e = read_feature_table(&p, &pairs, &mut Keys::Ints, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("dup.csv:3") && e.contains("line 1"), "{e}");
        let p = write(d.path(), "h.csv", "node,feature\n1,0\n");
        let e = read_feature_table(&p, &pairs, &mut Keys::Ints, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("h.csv:1") && e.contains("--features-header"),
            "{e}"
        );
        let p = write(d.path(), "w.csv", "1,0,1,9\n");
        let e = read_feature_table(&p, &pairs, &mut Keys::Ints, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("w.csv:1") && e.contains("4 columns"), "{e}");
        let p = write(d.path(), "neg.csv", "1,-1\n");
        let e = read_feature_table(&p, &pairs, &mut Keys::Ints, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a feature index"), "{e}");
    }

    #[test]
    fn features_csv_with_header() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "x.csv",
            "a,b,c\n1,2,3\n# comment\n\n4.5, -6e1 ,nan\n",
        );
        let x = read_features(&p, true).unwrap();
        assert_eq!(x.num_features, 3);
        assert_eq!(&x.data[..5], &[1.0, 2.0, 3.0, 4.5, -60.0]);
        assert!(x.data[5].is_nan());
        assert_eq!(x.source, p);
    }

    #[test]
    fn features_tsv_without_header() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "x.tsv", "1\t2\n3\tinf\n");
        let x = read_features(&p, false).unwrap();
        assert_eq!(x.num_features, 2);
        assert_eq!(x.data, vec![1.0, 2.0, 3.0, f32::INFINITY]);
    }

    #[test]
    fn features_npy() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.npy");
        scalegnn_npy::write_array(&p, &[3, 2], &[1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let x = read_features(&p, false).unwrap();
        assert_eq!(x.num_features, 2);
        assert_eq!(x.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);

        let p1 = d.path().join("x1.npy");
        scalegnn_npy::write_array(&p1, &[3], &[7i32, 8, 9]).unwrap();
        let x = read_features(&p1, false).unwrap();
        assert_eq!(x.num_features, 1);
        assert_eq!(x.data, vec![7.0, 8.0, 9.0]);
    }

    #[test]
    fn labels_text_and_npy() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "y.txt", "label\n0\n2\n\n1\n");
        assert_eq!(read_labels(&p, true).unwrap(), vec![0, 2, 1]);
        let p = write(d.path(), "y2.txt", "3\n4\n");
        assert_eq!(read_labels(&p, false).unwrap(), vec![3, 4]);
        let p = d.path().join("y.npy");
        scalegnn_npy::write_array(&p, &[3], &[5i64, 6, 7]).unwrap();
        assert_eq!(read_labels(&p, false).unwrap(), vec![5, 6, 7]);
        let p = d.path().join("yf.npy");
        scalegnn_npy::write_array(&p, &[1], &[0.5f32]).unwrap();
        assert!(read_labels(&p, false).is_err());
    }

    #[test]
    fn labels_bad_line() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "y.txt", "0\n1\nx\n");
        let msg = read_labels(&p, false).unwrap_err().to_string();
        assert!(msg.contains("y.txt:3:"), "{msg}");
    }

    #[test]
    fn non_numeric_field_names_line_and_column() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "feat.csv", "a,b,c\n1,2,3\n4,5,abc\n");
        let msg = read_features(&p, true).unwrap_err().to_string();
        assert!(msg.contains("feat.csv:3:"), "{msg}");
        assert!(msg.contains("column 3: \"abc\" is not a number"), "{msg}");
    }

    #[test]
    fn missing_field_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "feat.csv", "1,2\n3,\n");
        let msg = read_features(&p, false).unwrap_err().to_string();
        assert!(msg.contains("feat.csv:2:"), "{msg}");
        assert!(msg.contains("column 2"), "{msg}");
    }

    #[test]
    fn ragged_rows_are_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "feat.csv", "1,2,3\n4,5,6\n7,8\n");
        let msg = read_features(&p, false).unwrap_err().to_string();
        assert!(msg.contains("feat.csv:3:"), "{msg}");
        assert!(msg.contains("2 columns"), "{msg}");

        // A header fixes the width too.
        let p = write(d.path(), "feat2.csv", "a,b\n1,2,3\n");
        let msg = read_features(&p, true).unwrap_err().to_string();
        assert!(msg.contains("feat2.csv:2:"), "{msg}");
    }

    #[test]
    fn empty_table_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "feat.csv", "a,b\n");
        assert!(read_features(&p, true).is_err());
    }
}
