//! Readers: each turns one input format into a `RawDataset` that `ingest` writes out.

pub mod csv;
pub mod graphbolt;
pub mod npy_dir;
pub mod npz;
pub mod ogb;
pub mod parquet;
mod parquet_guard;
pub mod table;
pub mod tu;

/// The split `ingest` makes for input of `format` (`npz`, `csv`, `parquet`, `npy`, `tu`, …):
/// `given`, else the format's convention (Shchur et al.'s 20/30 per class for npz, a random
/// 60/20/20 for tables, none for formats that bring their own). A `given` split that the
/// input's own splits override is named in `raw`'s warnings (`flag` is how the caller calls it).
pub fn split_to_make(
    format: &str,
    raw: &mut crate::RawDataset,
    given: Option<crate::SplitSpec>,
    flag: &str,
    input: &std::path::Path,
) -> Option<crate::SplitSpec> {
    use crate::SplitSpec;
    if given.is_some() && raw.splits.is_some() {
        raw.warnings.push(format!(
            "{flag} is not used: {} has its own splits, which are kept",
            input.display()
        ));
    }
    given.or(match format {
        "npz" => Some(SplitSpec::PerClass { train: 20, val: 30 }),
        "csv" | "parquet" => Some(SplitSpec::Random {
            train: 0.6,
            val: 0.2,
        }),
        _ => None,
    })
}

/// How to read an edge table (CSV or Parquet) and its node tables, as the CLI's flags and the
/// Python package's keywords give it: columns by 0-based index or header name, the delimiter
/// by name (`tab`, `space`, `comma`, `;`, `|`) or as one character.
#[derive(Debug, Clone, Default)]
pub struct TableInput {
    pub delimiter: Option<String>,
    pub header: bool,
    pub features_header: bool,
    pub labels_header: bool,
    pub features_pairs: bool,
    pub src_col: Option<String>,
    pub dst_col: Option<String>,
    pub node_id_col: Option<String>,
    /// Parquet: the features table's node id column (`node_id_col` when unset).
    pub id_col: Option<String>,
    pub label_col: Option<String>,
    pub features: Option<std::path::PathBuf>,
    pub labels: Option<std::path::PathBuf>,
    pub num_nodes: Option<usize>,
    /// Ids need not be integers: any string is a node id (ingest relabels them).
    pub string_ids: bool,
}

/// Why a [`TableInput`] does not fit its format: the option (by its Python keyword; the
/// CLI flag is the same with dashes), and the formats that read it (empty: the option
/// describes a file that is not given; `None`: it clashes with another option).
#[derive(Debug, Clone, PartialEq)]
pub struct UnreadOption {
    pub option: &'static str,
    pub read_by: Option<&'static [&'static str]>,
}

impl TableInput {
    /// Each option: its name, whether it is set, and the formats that read it.
    fn options(&self) -> [(&'static str, bool, &'static [&'static str]); 13] {
        const CSV: &[&str] = &["csv"];
        const BOTH: &[&str] = &["csv", "parquet"];
        [
            ("delimiter", self.delimiter.is_some(), CSV),
            ("header", self.header, CSV),
            ("features_header", self.features_header, CSV),
            ("labels_header", self.labels_header, CSV),
            ("features_pairs", self.features_pairs, CSV),
            ("node_id_col", self.node_id_col.is_some(), BOTH),
            ("src_col", self.src_col.is_some(), BOTH),
            ("dst_col", self.dst_col.is_some(), BOTH),
            ("features", self.features.is_some(), BOTH),
            ("labels", self.labels.is_some(), CSV),
            ("id_col", self.id_col.is_some(), &["parquet"]),
            ("label_col", self.label_col.is_some(), BOTH),
            ("num_nodes", self.num_nodes.is_some(), BOTH),
        ]
    }

    /// The first option set that `format` (`csv`, `parquet`, or any other format, which reads
    /// none) would not read, so that no option silently does nothing.
    pub fn unread(&self, format: &str) -> Option<UnreadOption> {
        if let Some((option, _, read_by)) = self
            .options()
            .into_iter()
            .find(|(_, set, by)| *set && !by.contains(&format))
        {
            return Some(UnreadOption {
                option,
                read_by: Some(read_by),
            });
        }
        let without_file = |option| {
            Some(UnreadOption {
                option,
                read_by: Some(&[]),
            })
        };
        if (self.features_header || self.features_pairs) && self.features.is_none() {
            return without_file(if self.features_header {
                "features_header"
            } else {
                "features_pairs"
            });
        }
        if self.labels_header && self.labels.is_none() {
            return without_file("labels_header");
        }
        if self.node_id_col.is_some() && self.id_col.is_some() {
            return Some(UnreadOption {
                option: "id_col",
                read_by: None,
            });
        }
        None
    }

    /// Reads the CSV/TSV edge list `edges` with these options.
    pub fn read_csv(&self, edges: &std::path::Path) -> crate::Result<crate::RawDataset> {
        let bad = |reason: String| crate::DataError::Invalid {
            path: edges.to_path_buf(),
            reason,
        };
        let column = |key: &str, s: &Option<String>, default: usize| match s {
            None => Ok(table::Column::Index(default)),
            Some(s) => s
                .parse::<table::Column>()
                .map_err(|e| bad(format!("{key} {s:?}: {e}"))),
        };
        let mut o = csv::CsvOptions::new(edges);
        o.delimiter = self
            .delimiter
            .as_deref()
            .map(delimiter)
            .transpose()
            .map_err(bad)?;
        o.header = self.header;
        o.features_header = self.features_header;
        o.features_pairs = self.features_pairs;
        o.labels_header = self.labels_header;
        o.node_id_col = match &self.node_id_col {
            Some(_) => Some(column("node id column", &self.node_id_col, 0)?),
            None => None,
        };
        o.label_col = match &self.label_col {
            Some(_) => Some(column("label column", &self.label_col, 0)?),
            None => None,
        };
        o.string_ids = self.string_ids;
        o.src_col = column("source column", &self.src_col, 0)?;
        o.dst_col = column("destination column", &self.dst_col, 1)?;
        o.features.clone_from(&self.features);
        o.labels.clone_from(&self.labels);
        o.num_nodes = self.num_nodes;
        csv::read(&o)
    }

    /// Reads the Parquet edge table `edges` with these options (columns by name).
    pub fn read_parquet(&self, edges: &std::path::Path) -> crate::Result<crate::RawDataset> {
        parquet::read(&parquet::ParquetOptions {
            edges: edges.to_path_buf(),
            src_col: self.src_col.clone().unwrap_or_else(|| "src".into()),
            dst_col: self.dst_col.clone().unwrap_or_else(|| "dst".into()),
            features: self.features.clone(),
            id_col: self.id_col.clone().or_else(|| self.node_id_col.clone()),
            label_col: self.label_col.clone(),
            num_nodes: self.num_nodes,
            string_ids: self.string_ids,
        })
    }
}

/// A delimiter by name (`tab`, `space`, `comma`, `semicolon`) or as one character.
pub fn delimiter(s: &str) -> Result<u8, String> {
    Ok(match s {
        "tab" | "\\t" | "\t" => b'\t',
        "space" | " " => b' ',
        "comma" | "," => b',',
        ";" | "semicolon" => b';',
        "|" => b'|',
        other if other.len() == 1 => other.as_bytes()[0],
        other => {
            return Err(format!(
                "delimiter {other:?}: use one character, tab, space or comma"
            ))
        }
    })
}
