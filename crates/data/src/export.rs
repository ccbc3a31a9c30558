//! Per-node results (predictions, probabilities, embeddings) written as a table keyed by the
//! ids the user gave at ingest (`node_ids.npy` / `node_ids.csv`), in CSV, Parquet or NumPy.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{DataError, Result};

/// The id of each node as the input wrote it.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKeys {
    /// No map: node k is id k.
    Index(usize),
    /// `--relabel` of integer ids.
    Ints(Vec<i64>),
    /// `--relabel` of string ids.
    Strings(Vec<String>),
}

impl NodeKeys {
    /// The keys of the dataset in `dir` with `num_nodes` nodes.
    pub fn of_dataset(dir: &Path, num_nodes: usize) -> Result<NodeKeys> {
        let npy = dir.join("node_ids.npy");
        let csv = dir.join("node_ids.csv");
        let keys = if npy.exists() {
            let (v, _) = scalegnn_npy::read_any_as_i64(&npy)?;
            NodeKeys::Ints(v)
        } else if csv.exists() {
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(true)
                .from_path(&csv)
                .map_err(|e| DataError::invalid(&csv, e.to_string()))?;
            let mut names = Vec::with_capacity(num_nodes);
            for rec in rdr.records() {
                let rec = rec.map_err(|e| DataError::invalid(&csv, e.to_string()))?;
                names.push(rec.get(0).unwrap_or_default().to_string());
            }
            NodeKeys::Strings(names)
        } else {
            return Ok(NodeKeys::Index(num_nodes));
        };
        if keys.len() != num_nodes {
            return Err(DataError::invalid(
                dir,
                format!(
                    "the node id map holds {} ids for {num_nodes} nodes",
                    keys.len()
                ),
            ));
        }
        Ok(keys)
    }

    /// The id node `row` had in the input to ingest.
    pub fn key(&self, row: usize) -> String {
        match self {
            NodeKeys::Index(_) => row.to_string(),
            NodeKeys::Ints(v) => v
                .get(row)
                .map_or_else(|| row.to_string(), |k| k.to_string()),
            NodeKeys::Strings(v) => v.get(row).cloned().unwrap_or_else(|| row.to_string()),
        }
    }

    /// Number of nodes the keys cover.
    pub fn num_nodes(&self) -> usize {
        self.len()
    }

    fn len(&self) -> usize {
        match self {
            NodeKeys::Index(n) => *n,
            NodeKeys::Ints(v) => v.len(),
            NodeKeys::Strings(v) => v.len(),
        }
    }
}

/// Values of a result table, row-major `[rows, columns.len()]`.
pub enum Values<'a> {
    Ints(&'a [i64]),
    Floats(&'a [f32]),
}

/// File format of an exported table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Npy,
    Csv,
    Parquet,
}

impl TableFormat {
    /// The format implied by a file name's extension (`None`: not one of ours).
    pub fn from_path(p: &Path) -> Option<TableFormat> {
        match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "npy" => Some(TableFormat::Npy),
            "csv" => Some(TableFormat::Csv),
            "parquet" | "pq" => Some(TableFormat::Parquet),
            _ => None,
        }
    }
}

/// Writes to a temp file beside `path` (created exclusively), fsyncs it and renames it into
/// place: a crash leaves the old file or the new one, never half of one.
fn atomic(path: &Path, fill: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| DataError::io(&tmp, e))?;
        fill(&mut f)?;
        f.sync_all().map_err(|e| DataError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| DataError::io(path, e))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Writes `values` (`[keys.len(), columns.len()]`) to `path`: an `.npy` array (no ids, row k
/// is node k), or a CSV/Parquet table whose first column `id` holds each node's key.
pub fn write_table(
    path: &Path,
    format: TableFormat,
    keys: &NodeKeys,
    columns: &[String],
    values: Values,
) -> Result<()> {
    let (rows, width) = (keys.len(), columns.len());
    let len = match &values {
        Values::Ints(v) => v.len(),
        Values::Floats(v) => v.len(),
    };
    if len != rows * width {
        return Err(DataError::invalid(
            path,
            format!("{len} values for {rows} rows of {width} columns"),
        ));
    }
    match format {
        TableFormat::Npy => {
            let shape: Vec<usize> = if width == 1 {
                vec![rows]
            } else {
                vec![rows, width]
            };
            match values {
                Values::Ints(v) => scalegnn_npy::write_array_atomic(path, &shape, v)?,
                Values::Floats(v) => scalegnn_npy::write_array_atomic(path, &shape, v)?,
            }
            Ok(())
        }
        TableFormat::Csv => atomic(path, |f| {
            let err = |e: csv::Error| DataError::invalid(path, e.to_string());
            let mut w = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, &mut *f));
            let mut head = vec!["id".to_string()];
            head.extend(columns.iter().cloned());
            w.write_record(&head).map_err(err)?;
            let mut rec: Vec<String> = Vec::with_capacity(width + 1);
            for r in 0..rows {
                rec.clear();
                rec.push(match keys {
                    NodeKeys::Index(_) => r.to_string(),
                    NodeKeys::Ints(v) => v[r].to_string(),
                    NodeKeys::Strings(v) => v[r].clone(),
                });
                match &values {
                    Values::Ints(v) => {
                        rec.extend(v[r * width..(r + 1) * width].iter().map(i64::to_string))
                    }
                    Values::Floats(v) => {
                        rec.extend(v[r * width..(r + 1) * width].iter().map(f32::to_string))
                    }
                }
                w.write_record(&rec).map_err(err)?;
            }
            let mut inner = w
                .into_inner()
                .map_err(|e| DataError::io(path, e.into_error()))?;
            inner.flush().map_err(|e| DataError::io(path, e))
        }),
        TableFormat::Parquet => atomic(path, |f| write_parquet(path, f, keys, columns, &values)),
    }
}

/// Rows per Parquet row group: bounds the memory a column chunk takes while written.
const ROW_GROUP: usize = 1 << 16;

fn write_parquet(
    path: &Path,
    f: &mut File,
    keys: &NodeKeys,
    columns: &[String],
    values: &Values,
) -> Result<()> {
    use parquet::data_type::{ByteArray, ByteArrayType, FloatType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    let err = |e: parquet::errors::ParquetError| DataError::invalid(path, e.to_string());
    let id_type = match keys {
        NodeKeys::Strings(_) => "REQUIRED BYTE_ARRAY id (UTF8);",
        _ => "REQUIRED INT64 id;",
    };
    let value_type = match values {
        Values::Ints(_) => "INT64",
        Values::Floats(_) => "FLOAT",
    };
    for c in columns {
        if !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
            return Err(DataError::invalid(
                path,
                format!("column name {c:?} is not a plain identifier"),
            ));
        }
    }
    let fields: String = columns
        .iter()
        .map(|c| format!(" REQUIRED {value_type} {c};"))
        .collect();
    let schema =
        parse_message_type(&format!("message result {{ {id_type}{fields} }}")).map_err(err)?;
    let props = Arc::new(WriterProperties::builder().build());
    let mut w = SerializedFileWriter::new(&mut *f, Arc::new(schema), props).map_err(err)?;
    let (rows, width) = (keys.len(), columns.len());
    let mut start = 0;
    while start < rows || (rows == 0 && start == 0) {
        let end = (start + ROW_GROUP).min(rows);
        let mut rg = w.next_row_group().map_err(err)?;
        // The id column, then one column per value.
        if let Some(mut cw) = rg.next_column().map_err(err)? {
            match keys {
                NodeKeys::Strings(v) => {
                    let ids: Vec<ByteArray> = v[start..end]
                        .iter()
                        .map(|s| ByteArray::from(s.as_str()))
                        .collect();
                    cw.typed::<ByteArrayType>()
                        .write_batch(&ids, None, None)
                        .map_err(err)?;
                }
                NodeKeys::Ints(v) => {
                    cw.typed::<Int64Type>()
                        .write_batch(&v[start..end], None, None)
                        .map_err(err)?;
                }
                NodeKeys::Index(_) => {
                    let ids: Vec<i64> = (start as i64..end as i64).collect();
                    cw.typed::<Int64Type>()
                        .write_batch(&ids, None, None)
                        .map_err(err)?;
                }
            }
            cw.close().map_err(err)?;
        }
        for j in 0..width {
            let Some(mut cw) = rg.next_column().map_err(err)? else {
                break;
            };
            match values {
                Values::Ints(v) => {
                    let col: Vec<i64> = (start..end).map(|r| v[r * width + j]).collect();
                    cw.typed::<Int64Type>()
                        .write_batch(&col, None, None)
                        .map_err(err)?;
                }
                Values::Floats(v) => {
                    let col: Vec<f32> = (start..end).map(|r| v[r * width + j]).collect();
                    cw.typed::<FloatType>()
                        .write_batch(&col, None, None)
                        .map_err(err)?;
                }
            }
            cw.close().map_err(err)?;
        }
        rg.close().map_err(err)?;
        if rows == 0 {
            break;
        }
        start = end;
    }
    w.close().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_parquet_tables_are_keyed_by_the_original_ids() {
        let d = tempfile::tempdir().unwrap();
        let keys = NodeKeys::Strings(vec!["alice".into(), "bob, jr".into()]);
        let cols = vec!["p0".to_string(), "p1".to_string()];
        let v = [0.25f32, 0.75, 1.0, 0.0];
        let p = d.path().join("out.csv");
        write_table(&p, TableFormat::Csv, &keys, &cols, Values::Floats(&v)).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "id,p0,p1\nalice,0.25,0.75\n\"bob, jr\",1,0\n"
        );
        // Parquet: read back through the ingest reader's node table.
        let p = d.path().join("out.parquet");
        let keys = NodeKeys::Ints(vec![145647315578475, 7]);
        let cols = vec!["prediction".to_string()];
        write_table(
            &p,
            TableFormat::Parquet,
            &keys,
            &cols,
            Values::Ints(&[3, 1]),
        )
        .unwrap();
        let t = crate::readers::parquet::read_node_table(&p, Some("id"), None).unwrap();
        assert_eq!(t.ids, Some(vec![145647315578475, 7]));
        assert_eq!(t.x.unwrap().data, vec![3.0, 1.0]);
        // A wrong value count is an error, and no file is left.
        let p = d.path().join("bad.csv");
        assert!(write_table(&p, TableFormat::Csv, &keys, &cols, Values::Ints(&[1])).is_err());
        assert!(!p.exists());
        assert_eq!(
            TableFormat::from_path(Path::new("a.PQ")),
            Some(TableFormat::Parquet)
        );
        assert_eq!(TableFormat::from_path(Path::new("a.json")), None);
    }
}
