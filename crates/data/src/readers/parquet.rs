//! Parquet edge tables (two integer id columns) and node feature tables (numeric columns,
//! optional id and label columns), read column by column without arrow.

use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use parquet::basic::{ConvertedType, Type as PhysicalType};
use parquet::column::reader::ColumnReaderImpl;
use parquet::data_type::{
    BoolType, ByteArrayType, DataType, DoubleType, FloatType, Int32Type, Int64Type,
};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::schema::types::ColumnDescPtr;
use serde_json::json;

use super::parquet_guard::{self, Chunk, ValueWidth};
use super::table::Keys;
use crate::{DataError, RawDataset, RawFeatures, RawLabels, Result};

/// Where the tables are and which columns to use.
#[derive(Debug, Clone)]
pub struct ParquetOptions {
    /// The edge table.
    pub edges: PathBuf,
    /// Source id column (default "src").
    pub src_col: String,
    /// Destination id column (default "dst").
    pub dst_col: String,
    /// Feature table: every numeric column except `id_col` is a feature, in schema order; rows are nodes in order, or placed by `id_col` when given.
    pub features: Option<PathBuf>,
    /// Node id column of the feature table (ids `0..rows`, each once).
    pub id_col: Option<String>,
    /// Optional label column in the feature table (integer), excluded from features.
    pub label_col: Option<String>,
    /// Node count, for isolated nodes past the largest id.
    pub num_nodes: Option<usize>,
    /// Accept string (BYTE_ARRAY) id columns, numbered in sorted order (`--relabel`).
    pub string_ids: bool,
}

impl ParquetOptions {
    /// Options for `edges` with the defaults: columns "src" and "dst", no node table.
    pub fn new(edges: impl Into<PathBuf>) -> Self {
        ParquetOptions {
            edges: edges.into(),
            src_col: "src".to_string(),
            dst_col: "dst".to_string(),
            features: None,
            id_col: None,
            label_col: None,
            num_nodes: None,
            string_ids: false,
        }
    }
}

/// Node data of a feature table: features (None when only an id and a label column are
/// numeric) and labels, both in node order.
#[derive(Debug, Clone)]
pub(crate) struct NodeTable {
    pub x: Option<RawFeatures>,
    pub y: Option<Vec<i64>>,
    /// Each row's node id (the id column's values), when the table has one.
    pub ids: Option<Vec<i64>>,
    /// Columns not used, said to the user.
    pub warnings: Vec<String>,
    /// Names of the feature columns, in order.
    pub feature_columns: Vec<String>,
}

/// The parquet crate's reader, and a handle on the same open file for the page checks.
struct Reader {
    inner: SerializedFileReader<File>,
    file: File,
}

impl Reader {
    fn metadata(&self) -> &parquet::file::metadata::ParquetMetaData {
        self.inner.metadata()
    }

    fn num_row_groups(&self) -> usize {
        self.inner.num_row_groups()
    }
}

/// Records decoded per call into the column readers.
const BATCH: usize = 64 * 1024;

fn pq_err(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> DataError + '_ {
    move |e| DataError::invalid(path, e.to_string())
}

/// Runs `f`, turning a panic inside the parquet decoder (malformed input it does not
/// check) into an error naming the file.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown error".to_string());
        Err(DataError::invalid(
            path,
            format!("corrupt parquet file: the decoder failed ({msg})"),
        ))
    })
}

/// Opens a table: the footer is walked (`parquet_guard`) before the parquet crate decodes
/// it, and every column chunk's byte range is checked against the file.
fn open(path: &Path) -> Result<Reader> {
    let f = File::open(path).map_err(|e| DataError::io(path, e))?;
    let file_len = f.metadata().map_err(|e| DataError::io(path, e))?.len();
    parquet_guard::check_footer(&f, path, file_len)?;
    let file = f.try_clone().map_err(|e| DataError::io(path, e))?;
    let inner = SerializedFileReader::new(f).map_err(pq_err(path))?;
    let reader = Reader { inner, file };
    check_chunks(&reader, path, file_len)?;
    Ok(reader)
}

/// Walks the page headers of column `col` in row group `g` (`parquet_guard::check_pages`),
/// before the decoder reads them.
fn check_pages(reader: &Reader, path: &Path, g: usize, col: usize) -> Result<()> {
    let meta = reader.metadata().row_group(g).column(col);
    let descr = &columns(reader)[col];
    let start = meta
        .dictionary_page_offset()
        .unwrap_or_else(|| meta.data_page_offset());
    // check_chunks refused negative offsets and lengths already.
    let (Ok(start), Ok(len)) = (u64::try_from(start), u64::try_from(meta.compressed_size())) else {
        return Err(DataError::invalid(
            path,
            format!(
                "corrupt parquet file: column {col} of row group {g} has a negative byte range"
            ),
        ));
    };
    let name = format!("row group {g} column {:?}", descr.path().string());
    parquet_guard::check_pages(
        &reader.file,
        path,
        &Chunk {
            name: &name,
            start,
            len,
            width: ValueWidth::of(descr.physical_type(), descr.type_length()),
            uncompressed: meta.compression() == parquet::basic::Compression::UNCOMPRESSED,
            gzip: matches!(meta.compression(), parquet::basic::Compression::GZIP(_)),
        },
    )
}

/// Refuses column chunks whose byte range (from the footer) is negative or past the end of
/// the file: the decoder asserts the offsets are not negative, a panic.
fn check_chunks(reader: &Reader, path: &Path, file_len: u64) -> Result<()> {
    for (g, rg) in reader.metadata().row_groups().iter().enumerate() {
        for (c, col) in rg.columns().iter().enumerate() {
            let start = col
                .dictionary_page_offset()
                .unwrap_or_else(|| col.data_page_offset());
            let len = col.compressed_size();
            let inside = u64::try_from(start)
                .ok()
                .zip(u64::try_from(len).ok())
                .and_then(|(s, l)| s.checked_add(l))
                .is_some_and(|end| end <= file_len);
            if !inside {
                return Err(DataError::invalid(
                    path,
                    format!(
                        "corrupt parquet file: column {c} of row group {g} claims bytes \
                         {start}..+{len}, outside the file ({file_len} bytes)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn columns(reader: &Reader) -> &[ColumnDescPtr] {
    reader.metadata().file_metadata().schema_descr().columns()
}

/// Total rows, summed over the row groups.
fn num_rows(reader: &Reader, path: &Path) -> Result<usize> {
    reader
        .metadata()
        .row_groups()
        .iter()
        .try_fold(0usize, |acc, g| {
            usize::try_from(g.num_rows())
                .ok()
                .and_then(|n| acc.checked_add(n))
        })
        .ok_or_else(|| DataError::invalid(path, "corrupt parquet file: bad row count"))
}

/// Refuses an allocation sized by the file's row count (a footer can claim 2^40 rows).
fn check_rows(path: &Path, what: &str, dims: &[usize], elem: usize) -> Result<()> {
    scalegnn_limits::check_array(what, dims, elem)
        .map_err(|e| DataError::invalid(path, format!("the footer's row count: {e}")))
}

/// Index of the leaf column called `name` (dotted path for nested columns).
fn find_column(reader: &Reader, path: &Path, name: &str, role: &str) -> Result<usize> {
    let cols = columns(reader);
    let i = cols
        .iter()
        .position(|c| c.path().string() == name)
        .ok_or_else(|| {
            let have: Vec<String> = cols.iter().map(|c| c.path().string()).collect();
            DataError::invalid(
                path,
                format!(
                    "no column {name:?} ({role}) in the table (columns: {})",
                    have.join(", ")
                ),
            )
        })?;
    if cols[i].max_rep_level() > 0 {
        return Err(DataError::invalid(
            path,
            format!("column {name} ({role}) is a list; expected one value per row"),
        ));
    }
    Ok(i)
}

/// Streams column `col` (not repeated) in row order: `sink(first_row, values)` per batch.
/// A null is an error naming the row.
fn scan<T: DataType>(
    reader: &Reader,
    path: &Path,
    col: usize,
    mut sink: impl FnMut(usize, &[T::T]),
) -> Result<()> {
    let descr = &columns(reader)[col];
    let name = descr.path().string();
    let max_def = descr.max_def_level();
    let mut vals: Vec<T::T> = Vec::with_capacity(BATCH);
    let mut defs: Vec<i16> = Vec::with_capacity(BATCH);
    let mut row = 0usize;
    for g in 0..reader.num_row_groups() {
        check_pages(reader, path, g, col)?;
        let rg = reader.inner.get_row_group(g).map_err(pq_err(path))?;
        let group_rows = usize::try_from(rg.metadata().num_rows())
            .map_err(|_| DataError::invalid(path, "corrupt parquet file: bad row count"))?;
        let untyped = rg.get_column_reader(col).map_err(pq_err(path))?;
        let mut cr: ColumnReaderImpl<T> = T::get_column_reader(untyped).ok_or_else(|| {
            DataError::invalid(path, format!("column {name}: unexpected physical type"))
        })?;
        let mut done = 0usize;
        while done < group_rows {
            vals.clear();
            defs.clear();
            let want = BATCH.min(group_rows - done);
            let (records, values, _levels) = cr
                .read_records(want, Some(&mut defs), None, &mut vals)
                .map_err(pq_err(path))?;
            if records == 0 {
                break;
            }
            if max_def > 0 {
                if let Some(k) = defs.iter().take(records).position(|&d| d < max_def) {
                    return Err(DataError::invalid(
                        path,
                        format!("row {}: null in column {name}", row + k),
                    ));
                }
            }
            if records > group_rows - done || values != records || vals.len() < values {
                return Err(DataError::invalid(
                    path,
                    format!("corrupt parquet file: column {name} has a bad value count in row group {g}"),
                ));
            }
            sink(row, &vals[..values]);
            row += records;
            done += records;
        }
        if done != group_rows {
            return Err(DataError::invalid(
                path,
                format!(
                    "corrupt parquet file: column {name} has {done} values in row group {g}, expected {group_rows}"
                ),
            ));
        }
    }
    Ok(())
}

/// Reads an INT32/INT64 column as i64 (UINT_32 annotated columns zero-extended).
fn read_ints(reader: &Reader, path: &Path, col: usize, role: &str) -> Result<Vec<i64>> {
    let descr = columns(reader)[col].clone();
    let rows = num_rows(reader, path)?;
    check_rows(path, role, &[rows], 8)?;
    let mut out = Vec::with_capacity(rows);
    match descr.physical_type() {
        PhysicalType::INT32 if descr.converted_type() == ConvertedType::UINT_32 => {
            scan::<Int32Type>(reader, path, col, |_, v| {
                out.extend(v.iter().map(|&x| x as u32 as i64))
            })?
        }
        PhysicalType::INT32 => scan::<Int32Type>(reader, path, col, |_, v| {
            out.extend(v.iter().map(|&x| x as i64))
        })?,
        PhysicalType::INT64 => {
            scan::<Int64Type>(reader, path, col, |_, v| out.extend_from_slice(v))?
        }
        t => {
            return Err(DataError::invalid(
                path,
                format!(
                    "column {} ({role}) holds {t} values, not integers (INT32 or INT64)",
                    descr.path().string()
                ),
            ))
        }
    }
    Ok(out)
}

/// Whether a column holds strings (BYTE_ARRAY: UTF8/STRING or unannotated bytes).
fn is_string(reader: &Reader, col: usize) -> bool {
    columns(reader)[col].physical_type() == PhysicalType::BYTE_ARRAY
}

/// Reads an id column through `keys`: integers as they are under integer keys; under string
/// keys every value is keyed by its text (an integer column's values by their decimal text,
/// so a node table with integer ids still finds the edge table's string ids).
fn read_ids(
    reader: &Reader,
    path: &Path,
    col: usize,
    role: &str,
    keys: &mut Keys,
) -> Result<Vec<i64>> {
    let Keys::Strings(t) = keys else {
        if is_string(reader, col) {
            return Err(DataError::invalid(
                path,
                format!(
                    "column {} ({role}) holds strings, but the edge table's ids are integers",
                    columns(reader)[col].path().string()
                ),
            ));
        }
        return read_ints(reader, path, col, role);
    };
    if !is_string(reader, col) {
        let ints = read_ints(reader, path, col, role)?;
        return Ok(ints
            .iter()
            .map(|v| t.code(v.to_string().as_bytes()))
            .collect());
    }
    let rows = num_rows(reader, path)?;
    check_rows(path, role, &[rows], 8)?;
    let mut out = Vec::with_capacity(rows);
    scan::<ByteArrayType>(reader, path, col, |_, v| {
        out.extend(v.iter().map(|b| t.code(b.data())))
    })?;
    Ok(out)
}

/// Whether a column can be a feature (and the physical types we convert to f32).
fn is_numeric(c: &ColumnDescPtr) -> bool {
    c.max_rep_level() == 0
        && matches!(
            c.physical_type(),
            PhysicalType::BOOLEAN
                | PhysicalType::INT32
                | PhysicalType::INT64
                | PhysicalType::FLOAT
                | PhysicalType::DOUBLE
        )
}

/// Streams a numeric column converted to f32: `put(row, value)`.
fn scan_f32(
    reader: &Reader,
    path: &Path,
    col: usize,
    mut put: impl FnMut(usize, f32),
) -> Result<()> {
    let descr = columns(reader)[col].clone();
    macro_rules! each {
        ($t:ty, $conv:expr) => {
            scan::<$t>(reader, path, col, |row, v| {
                for (k, x) in v.iter().enumerate() {
                    put(row + k, $conv(*x));
                }
            })
        };
    }
    match descr.physical_type() {
        PhysicalType::BOOLEAN => each!(BoolType, |x: bool| if x { 1.0 } else { 0.0 }),
        PhysicalType::INT32 if descr.converted_type() == ConvertedType::UINT_32 => {
            each!(Int32Type, |x: i32| x as u32 as f32)
        }
        PhysicalType::INT32 => each!(Int32Type, |x: i32| x as f32),
        PhysicalType::INT64 => each!(Int64Type, |x: i64| x as f32),
        PhysicalType::FLOAT => each!(FloatType, |x: f32| x),
        PhysicalType::DOUBLE => each!(DoubleType, |x: f64| x as f32),
        t => Err(DataError::invalid(
            path,
            format!(
                "column {} holds {t} values, not numbers",
                descr.path().string()
            ),
        )),
    }
}

/// Whether a column is a list of numbers (`list<float>` and the like): one vector per row.
fn is_numeric_list(c: &ColumnDescPtr) -> bool {
    c.max_rep_level() == 1
        && matches!(
            c.physical_type(),
            PhysicalType::INT32 | PhysicalType::INT64 | PhysicalType::FLOAT | PhysicalType::DOUBLE
        )
}

/// Reads a list column whose every row holds the same number of non-null values: the
/// row-major values and that width. A null, an empty list or a ragged row is an error
/// naming the row.
fn read_list_f32(reader: &Reader, path: &Path, col: usize) -> Result<(Vec<f32>, usize)> {
    let descr = columns(reader)[col].clone();
    let name = descr.path().string();
    let max_def = descr.max_def_level();
    let rows = num_rows(reader, path)?;
    let mut out: Vec<f32> = Vec::new();
    let mut width: Option<usize> = None;
    let mut row = 0usize;
    let mut in_row = 0usize;
    let mut defs: Vec<i16> = Vec::with_capacity(BATCH);
    let mut reps: Vec<i16> = Vec::with_capacity(BATCH);
    // Ends the current row: its value count must be the table's width.
    let close = |in_row: usize, row: usize, width: &mut Option<usize>| -> Result<()> {
        match *width {
            None if in_row == 0 => Err(DataError::invalid(
                path,
                format!("row {row}: column {name} holds an empty or null list"),
            )),
            None => {
                check_rows(path, "the list feature column", &[rows, in_row], 4)?;
                *width = Some(in_row);
                Ok(())
            }
            Some(w) if w != in_row => Err(DataError::invalid(
                path,
                format!("row {row}: column {name} holds {in_row} values but row 0 holds {w}"),
            )),
            Some(_) => Ok(()),
        }
    };
    macro_rules! each {
        ($t:ty, $conv:expr) => {{
            let mut vals: Vec<<$t as DataType>::T> = Vec::with_capacity(BATCH);
            for g in 0..reader.num_row_groups() {
                check_pages(reader, path, g, col)?;
                let rg = reader.inner.get_row_group(g).map_err(pq_err(path))?;
                let group_rows = usize::try_from(rg.metadata().num_rows())
                    .map_err(|_| DataError::invalid(path, "corrupt parquet file: bad row count"))?;
                let untyped = rg.get_column_reader(col).map_err(pq_err(path))?;
                let mut cr: ColumnReaderImpl<$t> =
                    <$t>::get_column_reader(untyped).ok_or_else(|| {
                        DataError::invalid(path, format!("column {name}: unexpected physical type"))
                    })?;
                let mut done = 0usize;
                while done < group_rows {
                    vals.clear();
                    defs.clear();
                    reps.clear();
                    let want = BATCH.min(group_rows - done);
                    let (records, values, levels) = cr
                        .read_records(want, Some(&mut defs), Some(&mut reps), &mut vals)
                        .map_err(pq_err(path))?;
                    if records == 0 {
                        break;
                    }
                    if levels > defs.len() || levels > reps.len() || values > vals.len() {
                        return Err(DataError::invalid(
                            path,
                            format!("corrupt parquet file: column {name} has a bad level count"),
                        ));
                    }
                    let mut v = 0usize;
                    for k in 0..levels {
                        // Repetition level 0 starts a row; the first row has nothing to end.
                        if reps[k] == 0 && in_row > 0 {
                            close(in_row, row, &mut width)?;
                            row += 1;
                            in_row = 0;
                        }
                        if defs[k] < max_def {
                            return Err(DataError::invalid(
                                path,
                                format!("row {row}: column {name} holds a null or empty list"),
                            ));
                        }
                        let x = *vals.get(v).ok_or_else(|| {
                            DataError::invalid(
                                path,
                                format!("corrupt parquet file: column {name} has too few values"),
                            )
                        })?;
                        v += 1;
                        in_row += 1;
                        if width.is_some_and(|w| in_row > w) {
                            return Err(DataError::invalid(
                                path,
                                format!("row {row}: column {name} holds more values than row 0"),
                            ));
                        }
                        if width.is_none() && in_row > 1 << 24 {
                            return Err(DataError::invalid(
                                path,
                                format!("row {row}: column {name} holds over 2^24 values"),
                            ));
                        }
                        out.push($conv(x));
                    }
                    done += records;
                }
            }
            if rows > 0 {
                close(in_row, row, &mut width)?;
                row += 1;
            }
        }};
    }
    match descr.physical_type() {
        PhysicalType::INT32 => each!(Int32Type, |x: i32| x as f32),
        PhysicalType::INT64 => each!(Int64Type, |x: i64| x as f32),
        PhysicalType::FLOAT => each!(FloatType, |x: f32| x),
        PhysicalType::DOUBLE => each!(DoubleType, |x: f64| x as f32),
        t => {
            return Err(DataError::invalid(
                path,
                format!("column {name} holds {t} values, not numbers"),
            ))
        }
    }
    if row != rows {
        return Err(DataError::invalid(
            path,
            format!("corrupt parquet file: column {name} has {row} rows, expected {rows}"),
        ));
    }
    Ok((out, width.unwrap_or(0)))
}

/// Reads a node table: every numeric non-list column other than `id_col` and `label_col`
/// becomes a feature (schema order); rows are nodes in order, or placed by `id_col`.
pub(crate) fn read_node_table(
    path: &Path,
    id_col: Option<&str>,
    label_col: Option<&str>,
) -> Result<NodeTable> {
    read_node_table_keyed(path, id_col, label_col, &mut Keys::Ints)
}

/// [`read_node_table`] with the edge table's `keys`: string ids in the id column.
fn read_node_table_keyed(
    path: &Path,
    id_col: Option<&str>,
    label_col: Option<&str>,
    keys: &mut Keys,
) -> Result<NodeTable> {
    guarded(path, || {
        let reader = open(path)?;
        let rows = num_rows(&reader, path)?;
        let id_idx = id_col
            .map(|n| find_column(&reader, path, n, "node id"))
            .transpose()?;
        let label_idx = label_col
            .map(|n| find_column(&reader, path, n, "label"))
            .transpose()?;
        if id_idx.is_some() && id_idx == label_idx {
            return Err(DataError::invalid(
                path,
                "the id column and the label column are the same column",
            ));
        }
        // Each row's node id; ingest places the rows (ids as the edge list has them, so a
        // relabelled graph's tables can be keyed by the original 64-bit ids).
        let ids = id_idx
            .map(|c| read_ids(&reader, path, c, "node id", keys))
            .transpose()?;
        let mut warnings = Vec::new();
        let mut feats: Vec<usize> = Vec::new();
        // List columns (a vector per row) are read whole first: their width is in the data.
        let mut lists: Vec<(usize, Vec<f32>, usize)> = Vec::new();
        for (i, c) in columns(&reader).iter().enumerate() {
            if Some(i) == id_idx || Some(i) == label_idx {
                continue;
            }
            if is_numeric(c) {
                feats.push(i);
            } else if is_numeric_list(c) {
                let (v, w) = read_list_f32(&reader, path, i)?;
                lists.push((i, v, w));
                feats.push(i);
            } else {
                warnings.push(format!(
                    "column {} of {} ({}) is not numeric and is not used",
                    c.path().string(),
                    path.display(),
                    c.physical_type()
                ));
            }
        }
        let width_of = |c: usize| {
            lists
                .iter()
                .find(|(i, _, _)| *i == c)
                .map_or(1, |(_, _, w)| *w)
        };
        let f: usize = feats.iter().map(|&c| width_of(c)).sum();
        if f == 0 && label_idx.is_none() {
            return Err(DataError::invalid(
                path,
                "the table has no numeric feature column (BOOLEAN, INT32, INT64, FLOAT or DOUBLE, or a list of numbers)",
            ));
        }
        let x = if f > 0 {
            check_rows(path, "the feature table", &[rows, f], 4)?;
            let mut data = vec![0f32; rows * f];
            let mut j = 0;
            for &c in &feats {
                match lists.iter().find(|(i, _, _)| *i == c) {
                    Some((_, v, w)) => {
                        for (r, chunk) in v.chunks(*w).enumerate() {
                            data[r * f + j..r * f + j + w].copy_from_slice(chunk);
                        }
                        j += w;
                    }
                    None => {
                        scan_f32(&reader, path, c, |r, v| data[r * f + j] = v)?;
                        j += 1;
                    }
                }
            }
            Some(RawFeatures {
                data,
                num_features: f,
                source: path.to_path_buf(),
                ids: ids.clone(),
                sparse: false,
            })
        } else {
            None
        };
        let y = label_idx
            .map(|c| read_ints(&reader, path, c, "label"))
            .transpose()?;
        let feature_columns = feats
            .iter()
            .map(|&c| columns(&reader)[c].path().string())
            .collect();
        Ok(NodeTable {
            x,
            y,
            ids,
            feature_columns,
            warnings,
        })
    })
}

/// Reads the edge table (and the node table when given) into a `RawDataset`.
pub fn read(opts: &ParquetOptions) -> Result<RawDataset> {
    let path = opts.edges.as_path();
    let mut keys = Keys::Ints;
    let mut unused = Vec::new();
    let (mut src, mut dst) = guarded(path, || {
        let reader = open(path)?;
        let s = find_column(&reader, path, &opts.src_col, "src")?;
        let d = find_column(&reader, path, &opts.dst_col, "dst")?;
        unused = columns(&reader)
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != s && i != d)
            .map(|(_, c)| c.path().string())
            .collect();
        if let Some(c) = [s, d].into_iter().find(|&c| is_string(&reader, c)) {
            if !opts.string_ids {
                return Err(DataError::invalid(
                    path,
                    format!(
                        "column {} holds strings: ids that are not integers need --relabel \
                         (they are numbered 0..N-1 in sorted order and kept in node_ids.csv)",
                        columns(&reader)[c].path().string()
                    ),
                ));
            }
            keys = Keys::Strings(Default::default());
        }
        Ok((
            read_ids(&reader, path, s, "src", &mut keys)?,
            read_ids(&reader, path, d, "dst", &mut keys)?,
        ))
    })?;
    let mut table = match &opts.features {
        Some(f) => Some(read_node_table_keyed(
            f,
            opts.id_col.as_deref(),
            opts.label_col.as_deref(),
            &mut keys,
        )?),
        None if opts.id_col.is_some() || opts.label_col.is_some() => {
            return Err(DataError::invalid(
                path,
                "an id or label column is given but no feature table",
            ))
        }
        None => None,
    };
    let id_names = match keys {
        Keys::Strings(t) => {
            // Numbered in sorted order, as the CSV reader numbers string ids.
            let (rank, sorted) = t.into_sorted();
            let recode = |v: &mut [i64]| v.iter_mut().for_each(|c| *c = rank[*c as usize]);
            recode(&mut src);
            recode(&mut dst);
            if let Some(t) = table.as_mut() {
                if let Some(ids) = t.ids.as_mut() {
                    recode(ids);
                }
                if let Some(ids) = t.x.as_mut().and_then(|x| x.ids.as_mut()) {
                    recode(ids);
                }
            }
            Some(sorted)
        }
        Keys::Ints => None,
    };
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".to_string());
    let source = json!({
        "format": "parquet",
        "string_ids": id_names.is_some(),
        "input": path.to_string_lossy(),
        "src_col": opts.src_col,
        "dst_col": opts.dst_col,
        "features": opts.features.as_ref().map(|p| p.to_string_lossy().into_owned()),
        "id_col": opts.id_col,
        "label_col": opts.label_col,
        "feature_columns": table.as_ref().map(|t| t.feature_columns.clone()),
    });
    let mut warnings = table.as_ref().map_or_else(Vec::new, |t| t.warnings.clone());
    if !unused.is_empty() {
        // Weights, timestamps and types of the edges are not kept: named, not dropped
        // silently.
        warnings.insert(
            0,
            format!(
                "{}: columns {} not read: an edge table gives the graph its two id columns \
                 only (edge weights and attributes from Parquet are not kept)",
                path.display(),
                unused.join(", ")
            ),
        );
    }
    let (x, y, y_ids) = match table {
        Some(t) => {
            let y_ids = t.y.as_ref().and(t.ids);
            (t.x, t.y.map(RawLabels::Classes), y_ids)
        }
        None => (None, None, None),
    };
    Ok(RawDataset {
        name,
        source,
        src,
        dst,
        num_nodes: opts.num_nodes,
        x,
        y,
        y_ids,
        y_source: opts.features.clone(),
        id_names,
        warnings,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::data_type::{ByteArray, ByteArrayType};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;

    /// One column's values (and definition levels for OPTIONAL columns).
    enum Col<'a> {
        I32(&'a [i32], Option<&'a [i16]>),
        I64(&'a [i64], Option<&'a [i16]>),
        F64(&'a [f64]),
        F32(&'a [f32]),
        Bool(&'a [bool]),
        Str(&'a [&'a str]),
        /// A list<float> column: values, definition and repetition levels.
        ListF32(&'a [f32], &'a [i16], &'a [i16]),
    }

    /// Writes one row group per entry of `groups`, columns in schema order.
    fn write_table(path: &Path, schema: &str, groups: &[Vec<Col>]) {
        let schema = Arc::new(parse_message_type(schema).unwrap());
        let props = Arc::new(WriterProperties::builder().build());
        let file = File::create(path).unwrap();
        let mut w = SerializedFileWriter::new(file, schema, props).unwrap();
        for cols in groups {
            let mut rg = w.next_row_group().unwrap();
            for c in cols {
                let mut cw = rg.next_column().unwrap().unwrap();
                match c {
                    Col::I32(v, d) => {
                        cw.typed::<Int32Type>().write_batch(v, *d, None).unwrap();
                    }
                    Col::I64(v, d) => {
                        cw.typed::<Int64Type>().write_batch(v, *d, None).unwrap();
                    }
                    Col::F64(v) => {
                        cw.typed::<DoubleType>().write_batch(v, None, None).unwrap();
                    }
                    Col::F32(v) => {
                        cw.typed::<FloatType>().write_batch(v, None, None).unwrap();
                    }
                    Col::Bool(v) => {
                        cw.typed::<BoolType>().write_batch(v, None, None).unwrap();
                    }
                    Col::ListF32(v, d, r) => {
                        cw.typed::<FloatType>()
                            .write_batch(v, Some(d), Some(r))
                            .unwrap();
                    }
                    Col::Str(v) => {
                        let v: Vec<ByteArray> = v.iter().map(|s| ByteArray::from(*s)).collect();
                        cw.typed::<ByteArrayType>()
                            .write_batch(&v, None, None)
                            .unwrap();
                    }
                }
                cw.close().unwrap();
            }
            rg.close().unwrap();
        }
        w.close().unwrap();
    }

    const EDGE_SCHEMA: &str = "message edges { REQUIRED INT64 src; REQUIRED INT32 dst; }";

    #[test]
    fn edge_table_int64_and_int32() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("g.parquet");
        write_table(
            &p,
            EDGE_SCHEMA,
            &[
                vec![Col::I64(&[0, 1, 2], None), Col::I32(&[1, 2, 0], None)],
                vec![Col::I64(&[3], None), Col::I32(&[0], None)],
            ],
        );
        let raw = read(&ParquetOptions::new(&p)).unwrap();
        assert_eq!(raw.name, "g");
        assert_eq!(raw.src, vec![0, 1, 2, 3]);
        assert_eq!(raw.dst, vec![1, 2, 0, 0]);
        assert_eq!(raw.source["format"], "parquet");
        assert!(raw.x.is_none() && raw.y.is_none());
        assert!(raw.warnings.is_empty(), "{:?}", raw.warnings);
    }

    #[test]
    fn edge_columns_besides_the_ids_are_named() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("g.parquet");
        write_table(
            &p,
            "message edges { REQUIRED INT64 src; REQUIRED DOUBLE weight; REQUIRED INT32 dst; }",
            &[vec![
                Col::I64(&[0, 1], None),
                Col::F64(&[0.5, 2.0]),
                Col::I32(&[1, 0], None),
            ]],
        );
        let raw = read(&ParquetOptions::new(&p)).unwrap();
        assert_eq!((raw.src.clone(), raw.dst.clone()), (vec![0, 1], vec![1, 0]));
        assert_eq!(raw.warnings.len(), 1, "{:?}", raw.warnings);
        assert!(raw.warnings[0].contains("weight"), "{:?}", raw.warnings);
    }

    #[test]
    fn feature_table_placed_by_id() {
        let d = tempfile::tempdir().unwrap();
        let e = d.path().join("g.parquet");
        write_table(
            &e,
            EDGE_SCHEMA,
            &[vec![Col::I64(&[0, 1, 2], None), Col::I32(&[1, 2, 0], None)]],
        );
        let f = d.path().join("nodes.parquet");
        write_table(
            &f,
            "message nodes { REQUIRED INT64 id; REQUIRED DOUBLE a; REQUIRED DOUBLE b; \
             REQUIRED INT64 label; }",
            &[vec![
                Col::I64(&[2, 0, 1], None),
                Col::F64(&[20.0, 0.0, 10.0]),
                Col::F64(&[21.0, 1.0, 11.0]),
                Col::I64(&[5, 3, 4], None),
            ]],
        );
        let mut o = ParquetOptions::new(&e);
        o.features = Some(f.clone());
        o.id_col = Some("id".into());
        o.label_col = Some("label".into());
        let raw = read(&o).unwrap();
        let x = raw.x.as_ref().unwrap();
        assert_eq!(x.num_features, 2);
        // Rows in file order with their ids; ingest places them.
        assert_eq!(x.data, vec![20.0, 21.0, 0.0, 1.0, 10.0, 11.0]);
        assert_eq!(x.ids, Some(vec![2, 0, 1]));
        assert_eq!(raw.y_ids, Some(vec![2, 0, 1]));
        assert_eq!(x.source, f);
        assert!(matches!(&raw.y, Some(RawLabels::Classes(c)) if c == &vec![5, 3, 4]));
        assert_eq!(raw.source["feature_columns"], json!(["a", "b"]));
        let out = d.path().join("ds");
        crate::ingest(raw, &Default::default(), &out, &crate::NoProgress).unwrap();
        let placed: Vec<f32> = scalegnn_npy::read_array(&out.join("x.npy"))
            .unwrap()
            .to_vec();
        assert_eq!(placed, vec![0.0, 1.0, 10.0, 11.0, 20.0, 21.0]);
        let y: Vec<i64> = scalegnn_npy::read_array(&out.join("y.npy"))
            .unwrap()
            .to_vec();
        assert_eq!(y, vec![3, 4, 5]);

        // Without id_col the id column is a feature and rows stay in file order.
        let t = read_node_table(&f, None, None).unwrap();
        let x = t.x.unwrap();
        assert_eq!(x.num_features, 4);
        assert_eq!(&x.data[..4], &[2.0, 20.0, 21.0, 5.0]);

        // The same table through table::read_features.
        let x = super::super::table::read_features(&f, false).unwrap();
        assert_eq!(x.num_features, 4);
    }

    #[test]
    fn feature_types_row_groups_and_skipped_strings() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("n.parquet");
        write_table(
            &f,
            "message n { REQUIRED BOOLEAN flag; REQUIRED BINARY name (UTF8); \
             REQUIRED INT32 k; REQUIRED FLOAT w; }",
            &[
                vec![
                    Col::Bool(&[true, false]),
                    Col::Str(&["a", "b"]),
                    Col::I32(&[1, 2], None),
                    Col::F32(&[0.5, 1.5]),
                ],
                vec![
                    Col::Bool(&[true]),
                    Col::Str(&["c"]),
                    Col::I32(&[3], None),
                    Col::F32(&[2.5]),
                ],
            ],
        );
        let t = read_node_table(&f, None, None).unwrap();
        assert_eq!(t.feature_columns, vec!["flag", "k", "w"]);
        let x = t.x.unwrap();
        assert_eq!(x.num_features, 3);
        assert_eq!(x.data, vec![1.0, 1.0, 0.5, 0.0, 2.0, 1.5, 1.0, 3.0, 2.5]);
    }

    /// A feature vector per row in one `list<float>` column (as pandas/pyarrow write an
    /// embedding column) is read as that many features; strings are named, not dropped.
    #[test]
    fn list_columns_are_features_and_skipped_columns_are_named() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("n.parquet");
        let schema = "message n { REQUIRED INT64 id; REQUIRED BYTE_ARRAY name (UTF8); \
             OPTIONAL GROUP feat (LIST) { REPEATED GROUP list { OPTIONAL FLOAT element; } } \
             REQUIRED DOUBLE extra; }";
        // Three rows of three values: definition level 3 = a present element.
        let (vals, defs, reps) = (
            [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
            [3i16; 9],
            [0i16, 1, 1, 0, 1, 1, 0, 1, 1],
        );
        write_table(
            &f,
            schema,
            &[vec![
                Col::I64(&[10, 11, 12], None),
                Col::Str(&["a", "b", "c"]),
                Col::ListF32(&vals, &defs, &reps),
                Col::F64(&[0.5, 0.25, 0.125]),
            ]],
        );
        let t = read_node_table(&f, Some("id"), None).unwrap();
        let x = t.x.unwrap();
        assert_eq!(x.num_features, 4);
        assert_eq!(&x.data[..4], &[1.0, 2.0, 3.0, 0.5]);
        assert_eq!(&x.data[8..], &[7.0, 8.0, 9.0, 0.125]);
        assert_eq!(t.ids, Some(vec![10, 11, 12]));
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("name") && w.contains("not used")),
            "{:?}",
            t.warnings
        );

        // A ragged row and a null list are errors naming the row.
        let ragged = [0i16, 1, 1, 0, 1, 0, 1, 1, 1];
        write_table(
            &f,
            schema,
            &[vec![
                Col::I64(&[10, 11, 12], None),
                Col::Str(&["a", "b", "c"]),
                Col::ListF32(&vals, &defs, &ragged),
                Col::F64(&[0.5, 0.25, 0.125]),
            ]],
        );
        let msg = read_node_table(&f, Some("id"), None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("row 1") && msg.contains("2 values"), "{msg}");
        let (vals, defs, reps) = (
            [1.0f32, 2.0, 5.0, 6.0],
            [3i16, 3, 0, 3, 3],
            [0i16, 1, 0, 0, 1],
        );
        write_table(
            &f,
            schema,
            &[vec![
                Col::I64(&[10, 11, 12], None),
                Col::Str(&["a", "b", "c"]),
                Col::ListF32(&vals, &defs, &reps),
                Col::F64(&[0.5, 0.25, 0.125]),
            ]],
        );
        let msg = read_node_table(&f, Some("id"), None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("row 1") && msg.contains("null"), "{msg}");
    }

    #[test]
    fn bad_ids_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let e = d.path().join("g.parquet");
        write_table(
            &e,
            EDGE_SCHEMA,
            &[vec![Col::I64(&[0, 1], None), Col::I32(&[1, 0], None)]],
        );
        let f = d.path().join("n.parquet");
        let schema = "message n { REQUIRED INT64 id; REQUIRED DOUBLE a; }";
        let ingest = |num_nodes: Option<usize>| {
            let mut o = ParquetOptions::new(&e);
            o.features = Some(f.clone());
            o.id_col = Some("id".into());
            o.num_nodes = num_nodes;
            let raw = read(&o).unwrap();
            let out = d.path().join("ds");
            crate::ingest(
                raw,
                &crate::IngestOptions {
                    force: true,
                    ..Default::default()
                },
                &out,
                &crate::NoProgress,
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
        };
        write_table(
            &f,
            schema,
            &[vec![Col::I64(&[0, 0], None), Col::F64(&[1.0, 2.0])]],
        );
        let msg = ingest(None).unwrap_err();
        assert!(
            msg.contains("row 2") && msg.contains("earlier row"),
            "{msg}"
        );
        write_table(
            &f,
            schema,
            &[vec![Col::I64(&[0, 5], None), Col::F64(&[1.0, 2.0])]],
        );
        let msg = ingest(Some(2)).unwrap_err();
        assert!(msg.contains("not a node of the graph"), "{msg}");
        // Without a node count, the table's largest id sets it: nodes 2..=4 are isolated.
        ingest(None).unwrap();
    }

    #[test]
    fn missing_column_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("g.parquet");
        write_table(
            &p,
            EDGE_SCHEMA,
            &[vec![Col::I64(&[0], None), Col::I32(&[1], None)]],
        );
        let mut o = ParquetOptions::new(&p);
        o.dst_col = "target".into();
        let err = read(&o).unwrap_err();
        assert!(matches!(err, DataError::Invalid { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("g.parquet") && msg.contains("\"target\""),
            "{msg}"
        );
    }

    #[test]
    fn non_integer_and_null_ids_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("g.parquet");
        write_table(
            &p,
            "message e { REQUIRED DOUBLE src; REQUIRED INT32 dst; }",
            &[vec![Col::F64(&[0.0]), Col::I32(&[1], None)]],
        );
        let msg = read(&ParquetOptions::new(&p)).unwrap_err().to_string();
        assert!(msg.contains("src") && msg.contains("not integers"), "{msg}");

        // Row 2 of src is null (definition level 0).
        write_table(
            &p,
            "message e { OPTIONAL INT64 src; REQUIRED INT32 dst; }",
            &[vec![
                Col::I64(&[0, 1], Some(&[1, 1, 0])),
                Col::I32(&[1, 2, 0], None),
            ]],
        );
        let msg = read(&ParquetOptions::new(&p)).unwrap_err().to_string();
        assert!(msg.contains("row 2: null in column src"), "{msg}");
    }

    /// A Thrift compact protocol writer, for files built byte by byte.
    struct Thrift {
        out: Vec<u8>,
        /// Last field id of each open struct, innermost last.
        last: Vec<i16>,
    }

    impl Thrift {
        fn new() -> Self {
            Thrift {
                out: Vec::new(),
                last: vec![0],
            }
        }

        fn varint(&mut self, mut v: u64) -> &mut Self {
            while v >= 0x80 {
                self.out.push(v as u8 | 0x80);
                v >>= 7;
            }
            self.out.push(v as u8);
            self
        }

        fn zigzag(&mut self, v: i64) -> &mut Self {
            self.varint(((v << 1) ^ (v >> 63)) as u64)
        }

        fn field(&mut self, id: i16, t: u8) -> &mut Self {
            let last = self.last.last_mut().unwrap();
            let delta = id - *last;
            *last = id;
            if (1..=15).contains(&delta) {
                self.out.push((delta as u8) << 4 | t);
                self
            } else {
                self.out.push(t);
                self.zigzag(i64::from(id))
            }
        }

        fn i32(&mut self, id: i16, v: i32) -> &mut Self {
            self.field(id, 5).zigzag(i64::from(v))
        }

        fn i64(&mut self, id: i16, v: i64) -> &mut Self {
            self.field(id, 6).zigzag(v)
        }

        fn bin(&mut self, id: i16, b: &[u8]) -> &mut Self {
            self.field(id, 8).varint(b.len() as u64);
            self.out.extend_from_slice(b);
            self
        }

        /// A struct field; fields follow until `end`.
        fn begin(&mut self, id: i16) -> &mut Self {
            self.field(id, 12);
            self.last.push(0);
            self
        }

        /// A struct element of a list; fields follow until `end`.
        fn element(&mut self) -> &mut Self {
            self.last.push(0);
            self
        }

        fn end(&mut self) -> &mut Self {
            self.out.push(0);
            self.last.pop();
            self
        }

        /// A list field of `n` elements of type `elem`, which follow.
        fn list(&mut self, id: i16, elem: u8, n: usize) -> &mut Self {
            self.field(id, 9);
            if n < 15 {
                self.out.push((n as u8) << 4 | elem);
                self
            } else {
                self.out.push(0xf0 | elem);
                self.varint(n as u64)
            }
        }

        fn done(mut self) -> Vec<u8> {
            self.end();
            self.out
        }
    }

    /// An uncompressed data page of PLAIN i64 values.
    fn plain_page(values: &[i64]) -> Vec<u8> {
        let size = (values.len() * 8) as i32;
        let mut t = Thrift::new();
        t.i32(1, 0).i32(2, size).i32(3, size).begin(5);
        t.i32(1, values.len() as i32)
            .i32(2, 0)
            .i32(3, 3)
            .i32(4, 3)
            .end();
        let mut page = t.done();
        page.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        page
    }

    /// A dictionary page holding `values` whose header declares `declared` values.
    fn dictionary_page(values: &[i64], declared: i32) -> Vec<u8> {
        let size = (values.len() * 8) as i32;
        let mut t = Thrift::new();
        t.i32(1, 2).i32(2, size).i32(3, size).begin(7);
        t.i32(1, declared).i32(2, 0).end();
        let mut page = t.done();
        page.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        page
    }

    /// A data page of dictionary indices (< 4), one RLE run each.
    fn indices_page(indices: &[u8]) -> Vec<u8> {
        let mut data = vec![2u8];
        for &i in indices {
            data.extend([2, i]);
        }
        let mut t = Thrift::new();
        t.i32(1, 0)
            .i32(2, data.len() as i32)
            .i32(3, data.len() as i32)
            .begin(5);
        t.i32(1, indices.len() as i32)
            .i32(2, 8)
            .i32(3, 3)
            .i32(4, 3)
            .end();
        let mut page = t.done();
        page.extend(data);
        page
    }

    /// A file of one row group and REQUIRED INT64 columns `src` and `dst`, each chunk given
    /// as its pages and whether the first is a dictionary page. Built byte by byte, so a
    /// test can declare what no writer would.
    fn crafted(rows: i64, chunks: [(Vec<u8>, bool); 2]) -> Vec<u8> {
        let mut file = b"PAR1".to_vec();
        let mut placed = Vec::new();
        for (pages, dictionary) in &chunks {
            placed.push((file.len() as i64, pages.len() as i64, *dictionary));
            file.extend_from_slice(pages);
        }
        let mut t = Thrift::new();
        t.i32(1, 1).list(2, 12, 3);
        t.element().bin(4, b"schema").i32(5, 2).end();
        for name in ["src", "dst"] {
            t.element()
                .i32(1, 2)
                .i32(3, 0)
                .bin(4, name.as_bytes())
                .end();
        }
        t.i64(3, rows).list(4, 12, 1).element().list(1, 12, 2);
        for ((start, len, dictionary), name) in placed.into_iter().zip(["src", "dst"]) {
            t.element().i64(2, start).begin(3);
            t.i32(1, 2).list(2, 5, 3).zigzag(0).zigzag(3).zigzag(8);
            t.list(3, 8, 1).varint(3);
            t.out.extend_from_slice(name.as_bytes());
            t.i32(4, 0).i64(5, rows).i64(6, len).i64(7, len);
            if dictionary {
                t.i64(9, start + len - indices_page(&[0; 3]).len() as i64)
                    .i64(11, start);
            } else {
                t.i64(9, start);
            }
            t.end().end();
        }
        t.i64(2, 0).i64(3, rows).end();
        let footer = t.done();
        file.extend_from_slice(&footer);
        file.extend_from_slice(&(footer.len() as u32).to_le_bytes());
        file.extend_from_slice(b"PAR1");
        file
    }

    #[test]
    fn crafted_files_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.parquet");
        let dict = [dictionary_page(&[7, 8, 9], 3), indices_page(&[2, 0, 1])].concat();
        std::fs::write(
            &p,
            crafted(3, [(plain_page(&[0, 1, 2]), false), (dict, true)]),
        )
        .unwrap();
        let raw = read(&ParquetOptions::new(&p)).unwrap();
        assert_eq!((raw.src, raw.dst), (vec![0, 1, 2], vec![9, 7, 8]));
    }

    /// Finding 6 (docs/reliability.md): a dictionary page header declaring ~854 M values
    /// made parquet 60.1 allocate 3.4 GB before decoding the 24 bytes the page holds.
    #[test]
    fn dictionary_declaring_more_values_than_its_page_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("dict.parquet");
        let dict = [
            dictionary_page(&[7, 8, 9], 853_920_663),
            indices_page(&[2, 0, 1]),
        ]
        .concat();
        std::fs::write(
            &p,
            crafted(3, [(plain_page(&[0, 1, 2]), false), (dict, true)]),
        )
        .unwrap();
        let msg = read(&ParquetOptions::new(&p)).unwrap_err().to_string();
        assert!(
            msg.contains("dict.parquet: corrupt parquet file: row group 0 column \"dst\": page header at byte")
                && msg.contains("a dictionary of 853920663 values (6831365304 bytes at least), more than the page's 24 bytes"),
            "{msg}"
        );
    }

    /// Finding 3: a dictionary-encoded data page without a dictionary page made parquet
    /// 60.1 panic ("Decoder for dict should have been set"); now refused before decoding.
    #[test]
    fn dictionary_encoded_page_without_dictionary_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("nodict.parquet");
        let chunks = [
            (plain_page(&[0, 1, 2]), false),
            (indices_page(&[2, 0, 1]), false),
        ];
        std::fs::write(&p, crafted(3, chunks)).unwrap();
        let msg = read(&ParquetOptions::new(&p)).unwrap_err().to_string();
        assert!(
            msg.contains("column \"dst\"") && msg.contains("no dictionary page precedes it"),
            "{msg}"
        );
    }

    /// A valid file written by the parquet crate, its bytes and its metadata.
    fn written(d: &Path) -> (PathBuf, Vec<u8>, parquet::file::metadata::ParquetMetaData) {
        let p = d.join("w.parquet");
        write_table(
            &p,
            EDGE_SCHEMA,
            &[vec![Col::I64(&[0, 1, 2], None), Col::I32(&[1, 2, 0], None)]],
        );
        let meta = open(&p).unwrap().metadata().clone();
        (p.clone(), std::fs::read(&p).unwrap(), meta)
    }

    /// Finding 4: an unknown footer field holding a list of ~2^31 booleans took parquet
    /// 60.1 one loop turn per declared element (it skips them without reading a byte).
    #[test]
    fn footer_list_of_booleans_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let (p, mut bytes, _) = written(d.path());
        let n = bytes.len();
        let meta_len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
        // Before FileMetaData's stop byte: field 100 (long form), a list (header 0xf1: size
        // as a varint, booleans) of 2^31 - 1 elements.
        let field = [0x09, 0xc8, 0x01, 0xf1, 0xff, 0xff, 0xff, 0xff, 0x07];
        let stop = n - 9;
        assert_eq!(bytes[stop], 0);
        bytes.splice(stop..stop, field);
        let n = bytes.len();
        bytes[n - 8..n - 4].copy_from_slice(&((meta_len + field.len()) as u32).to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
        let msg = read(&ParquetOptions::new(&p)).unwrap_err().to_string();
        assert!(
            msg.contains("w.parquet: corrupt parquet file: footer metadata")
                && msg.contains("a list of 2147483647 booleans"),
            "{msg}"
        );
    }

    /// Finding 5: a page header declaring billions of fixed-size elements in an unknown
    /// field made parquet 60.1 "skip" them past the end of the file forever.
    #[test]
    fn page_header_list_past_the_chunk_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let (p, mut bytes, meta) = written(d.path());
        let (start, len) = meta.row_group(0).column(0).byte_range();
        // The chunk's first page header becomes field 100, a list of 2^31 - 1 doubles.
        let field = [0x09, 0xc8, 0x01, 0xf7, 0xff, 0xff, 0xff, 0xff, 0x07];
        let start = start as usize;
        bytes[start..start + field.len()].copy_from_slice(&field);
        std::fs::write(&p, &bytes).unwrap();
        let msg = read(&ParquetOptions::new(&p)).unwrap_err().to_string();
        let expect = format!(
            "row group 0 column \"src\": page header at byte {start} (byte 3 of it): a list of \
             2147483647 elements of at least 8 byte(s) each, more than the {} bytes left",
            len as usize - field.len()
        );
        assert!(msg.contains(&expect), "{msg}");
    }

    /// A footer whose schema nests 10,000 groups (80 KB) overflowed the stack of parquet
    /// 60.1's recursive schema conversion, an abort; refused past 128 levels.
    #[test]
    fn deeply_nested_schema_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("deep.parquet");
        let depth = 10_000;
        let mut t = Thrift::new();
        t.i32(1, 1).list(2, 12, depth + 2);
        t.element().bin(4, b"root").i32(5, 1).end();
        for _ in 0..depth {
            t.element().i32(3, 0).bin(4, b"g").i32(5, 1).end();
        }
        t.element().i32(1, 2).i32(3, 0).bin(4, b"x").end();
        t.i64(3, 0).list(4, 12, 0);
        let footer = t.done();
        let mut file = b"PAR1".to_vec();
        file.extend_from_slice(&footer);
        file.extend_from_slice(&(footer.len() as u32).to_le_bytes());
        file.extend_from_slice(b"PAR1");
        std::fs::write(&p, &file).unwrap();
        let msg = read(&ParquetOptions::new(&p)).unwrap_err().to_string();
        assert!(
            msg.contains("a schema nested deeper than 128 levels"),
            "{msg}"
        );
    }

    /// Page sizes past the chunk and negative counts are refused with the column named.
    #[test]
    fn page_sizes_are_held_to_the_chunk() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sizes.parquet");
        let mut page = plain_page(&[0, 1, 2]);
        // compressed_page_size 24 -> 25 (zigzag 48 -> 50): one byte past the chunk.
        let at = page.iter().position(|&b| b == 48).unwrap();
        page[at + 2] = 50;
        std::fs::write(
            &p,
            crafted(3, [(page, false), (plain_page(&[1, 2, 0]), false)]),
        )
        .unwrap();
        let msg = read(&ParquetOptions::new(&p)).unwrap_err().to_string();
        assert!(
            msg.contains("column \"src\"") && msg.contains("declares 25 bytes of page data"),
            "{msg}"
        );
        let mut t = Thrift::new();
        t.i32(1, 0).i32(2, 24).i32(3, 24).begin(5);
        t.i32(1, -3).i32(2, 0).i32(3, 3).i32(4, 3).end();
        let mut page = t.done();
        page.extend([0u8; 24]);
        std::fs::write(
            &p,
            crafted(3, [(plain_page(&[0, 1, 2]), false), (page, false)]),
        )
        .unwrap();
        let msg = read(&ParquetOptions::new(&p)).unwrap_err().to_string();
        assert!(
            msg.contains("column \"dst\"") && msg.contains("declares -3 values"),
            "{msg}"
        );
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bad.parquet");
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let bytes: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(&p, &bytes).unwrap();
        let err = read(&ParquetOptions::new(&p)).unwrap_err();
        assert!(matches!(err, DataError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains("bad.parquet"));

        // Valid magic at both ends, garbage in between.
        let mut framed = b"PAR1".to_vec();
        framed.extend_from_slice(&bytes);
        framed.extend_from_slice(&64u32.to_le_bytes());
        framed.extend_from_slice(b"PAR1");
        std::fs::write(&p, &framed).unwrap();
        assert!(read(&ParquetOptions::new(&p)).is_err());

        // A real file cut short.
        let good = d.path().join("good.parquet");
        write_table(
            &good,
            EDGE_SCHEMA,
            &[vec![Col::I64(&[0, 1, 2], None), Col::I32(&[1, 2, 0], None)]],
        );
        let all = std::fs::read(&good).unwrap();
        std::fs::write(&p, &all[..all.len() / 2]).unwrap();
        assert!(read(&ParquetOptions::new(&p)).is_err());
        assert!(read_node_table(&p, None, None).is_err());

        // Missing file: an I/O error.
        let err = read(&ParquetOptions::new(d.path().join("nope.parquet"))).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }), "{err}");
    }
}
