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
    match extension(path).as_str() {
        "npy" => read_features_npy(path),
        "parquet" | "pq" => {
            let t = super::parquet::read_node_table(path, None, None)?;
            t.x.ok_or_else(|| DataError::invalid(path, "the table has no numeric feature column"))
        }
        _ => read_features_text(path, delimiter_for(path), header),
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
    })
}

fn read_features_text(path: &Path, delimiter: u8, header: bool) -> Result<RawFeatures> {
    let mut rdr = open_csv(path, delimiter, header)?;
    // Width fixed by the header when there is one, else by the first data row.
    let mut width: Option<(usize, u64)> = None;
    if header {
        let h = rdr.byte_headers().map_err(|e| csv_error(path, e))?;
        if !h.is_empty() && !is_blank(h) {
            width = Some((h.len(), line_of(h)));
        }
    }
    let mut data: Vec<f32> = Vec::new();
    let mut rec = csv::ByteRecord::new();
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
        for (j, field) in rec.iter().enumerate() {
            data.push(parse_f32(field).ok_or_else(|| {
                let reason = if field.is_empty() {
                    format!("column {}: missing value", j + 1)
                } else {
                    format!("column {}: {} is not a number", j + 1, show(field))
                };
                DataError::parse(path, line, reason)
            })?);
        }
    }
    let num_features = width.map_or(0, |(w, _)| w);
    if data.is_empty() || num_features == 0 {
        return Err(DataError::invalid(path, "feature table has no rows"));
    }
    Ok(RawFeatures {
        data,
        num_features,
        source: path.to_path_buf(),
    })
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
/// text/CSV file with one integer per line (`header` skips a first line).
pub fn read_labels(path: &Path, header: bool) -> Result<Vec<i64>> {
    if extension(path) == "npy" {
        let (v, shape) = scalegnn_npy::read_any_as_i64(path)?;
        return match shape.as_slice() {
            [_] | [_, 1] => Ok(v),
            s => Err(DataError::invalid(
                path,
                format!("label array must have shape [N], found {s:?}"),
            )),
        };
    }
    let mut rdr = open_csv(path, delimiter_for(path), header)?;
    if header {
        rdr.byte_headers().map_err(|e| csv_error(path, e))?;
    }
    let mut out = Vec::new();
    let mut rec = csv::ByteRecord::new();
    while rdr
        .read_byte_record(&mut rec)
        .map_err(|e| csv_error(path, e))?
    {
        if is_blank(&rec) {
            continue;
        }
        let line = line_of(&rec);
        if rec.len() != 1 {
            return Err(DataError::parse(
                path,
                line,
                format!(
                    "expected one integer label per line, found {} fields",
                    rec.len()
                ),
            ));
        }
        let field = &rec[0];
        out.push(parse_i64(field).ok_or_else(|| {
            DataError::parse(
                path,
                line,
                format!("label {} is not an integer", show(field)),
            )
        })?);
    }
    Ok(out)
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
