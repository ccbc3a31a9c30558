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
