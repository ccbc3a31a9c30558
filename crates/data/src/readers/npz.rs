//! Reader for `.npz` archives in the layout of shchur/gnn-benchmark (`../shared/datasets/npz/`):
//! scipy CSR parts `adj_*` (edges) and `attr_*` (features), plus `labels`.

use std::fs::File;
use std::path::{Path, PathBuf};

use scalegnn_npy::{read_from, RawArray};

use crate::{DataError, RawDataset, RawFeatures, RawLabels, Result};

fn member(zip: &mut zip::ZipArchive<File>, path: &Path, key: &str) -> Result<Option<RawArray>> {
    let label = PathBuf::from(format!("{}[{key}]", path.display()));
    let mut f = match zip.by_name(&format!("{key}.npy")) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(DataError::invalid(&label, e.to_string())),
    };
    Ok(Some(read_from(&mut f, &label)?))
}

fn ints(a: &RawArray, path: &Path, key: &str) -> Result<Vec<i64>> {
    a.to_i64().ok_or_else(|| {
        DataError::invalid(
            path,
            format!(
                "{key}: expected an integer array, found {}",
                a.header.dtype.descr()
            ),
        )
    })
}

/// Reads a scipy-CSR `.npz` graph: `adj_{data,indices,indptr,shape}`, `attr_*`, `labels`.
pub fn read(path: &Path) -> Result<RawDataset> {
    let f = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut zip = zip::ZipArchive::new(f)
        .map_err(|e| DataError::invalid(path, format!("not a readable .npz (zip) file: {e}")))?;
    let need = |zip: &mut zip::ZipArchive<File>, key: &str| -> Result<RawArray> {
        member(zip, path, key)?
            .ok_or_else(|| DataError::invalid(path, format!("missing key {key}")))
    };
    let indptr = ints(&need(&mut zip, "adj_indptr")?, path, "adj_indptr")?;
    let indices = ints(&need(&mut zip, "adj_indices")?, path, "adj_indices")?;
    let shape = ints(&need(&mut zip, "adj_shape")?, path, "adj_shape")?;
    if shape.len() != 2
        || shape[0] != shape[1]
        || shape[0] < 0
        || Some(indptr.len() as i64) != shape[0].checked_add(1)
    {
        return Err(DataError::invalid(
            path,
            format!(
                "adj_shape {shape:?} does not match adj_indptr of length {}",
                indptr.len()
            ),
        ));
    }
    let n = shape[0] as usize;
    if indptr.windows(2).any(|w| w[1] < w[0])
        || indptr.last().copied() != Some(indices.len() as i64)
        || indptr[0] != 0
    {
        return Err(DataError::invalid(
            path,
            "adj_indptr is not a valid CSR row pointer for adj_indices",
        ));
    }
    // Row i of the adjacency lists the targets of edges i → j.
    let mut src = Vec::with_capacity(indices.len());
    for i in 0..n {
        src.extend(std::iter::repeat_n(
            i as i64,
            (indptr[i + 1] - indptr[i]) as usize,
        ));
    }
    let mut raw = RawDataset {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "dataset".into()),
        source: serde_json::json!({"format": "npz", "input": path.display().to_string()}),
        src,
        dst: indices,
        num_nodes: Some(n),
        ..Default::default()
    };
    if let Some(ad) = member(&mut zip, path, "attr_data")? {
        let ap = ints(&need(&mut zip, "attr_indptr")?, path, "attr_indptr")?;
        let ai = ints(&need(&mut zip, "attr_indices")?, path, "attr_indices")?;
        let ashape = ints(&need(&mut zip, "attr_shape")?, path, "attr_shape")?;
        if ashape.len() != 2
            || ashape[0] != n as i64
            || ashape[1] < 1
            || ap.len() != n + 1
            || ai.len() != ad.header.len()
        {
            return Err(DataError::invalid(
                path,
                format!("attr_* parts do not form an [N, F] CSR matrix (attr_shape {ashape:?}, {n} nodes)"),
            ));
        }
        let fdim = ashape[1] as usize;
        // The dense matrix is sized by attr_shape, a value in the file: checked (and its
        // product checked for overflow) before allocating.
        scalegnn_limits::check_array("the dense feature matrix", &[n, fdim], 4)
            .map_err(|e| DataError::invalid(path, format!("attr_shape {ashape:?}: {e}")))?;
        let vals = ad.to_f32();
        let mut x = vec![0f32; n * fdim];
        for r in 0..n {
            let (a, b) = (ap[r] as usize, ap[r + 1] as usize);
            if a > b || b > ai.len() {
                return Err(DataError::invalid(
                    path,
                    format!("attr_indptr is not monotone at row {r}"),
                ));
            }
            for k in a..b {
                let c = ai[k];
                if c < 0 || c as usize >= fdim {
                    return Err(DataError::invalid(
                        path,
                        format!("attr_indices[{k}] = {c} is out of range 0..{fdim}"),
                    ));
                }
                x[r * fdim + c as usize] = vals[k];
            }
        }
        raw.x = Some(RawFeatures {
            data: x,
            num_features: fdim,
            source: PathBuf::from(format!("{}[attr_data]", path.display())),
            ids: None,
            sparse: true,
        });
    }
    if let Some(l) = member(&mut zip, path, "labels")? {
        let y = ints(&l, path, "labels")?;
        if y.len() != n {
            return Err(DataError::invalid(
                path,
                format!("labels has {} entries for {n} nodes", y.len()),
            ));
        }
        raw.y = Some(RawLabels::Classes(y));
    }
    Ok(raw)
}
