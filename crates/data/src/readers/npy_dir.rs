//! Reader for NumPy directories in the layout of `planetoid-npy/*` and `npz-npy/*`:
//! `edge_index.npy` [2, E], optional `x.npy` (or the sparse triple `x_indptr.npy`,
//! `x_indices.npy`, `x_data.npy`), `y.npy`, and splits as `*_mask.npy`/`*_masks.npy` (bool,
//! `[N]`, or `[S, N]`/`[N, S]` for S official splits) or `*_idx.npy` (`[len]` or `[S, len]`).

use std::path::Path;

use scalegnn_npy::{read_any_as_f32, read_any_as_i64};

use crate::{DataError, RawDataset, RawFeatures, RawLabels, RawSplits, Result};

/// Reads a NumPy-layout dataset directory (features and labels optional).
pub fn read(dir: &Path) -> Result<RawDataset> {
    let ei = dir.join("edge_index.npy");
    if !ei.exists() {
        return Err(DataError::invalid(
            &ei,
            "missing: a NumPy dataset directory needs edge_index.npy [2, E]",
        ));
    }
    let (edges, shape) = read_any_as_i64(&ei)?;
    if shape.len() != 2 || shape[0] != 2 {
        return Err(DataError::invalid(
            &ei,
            format!("shape {shape:?}, expected [2, E]"),
        ));
    }
    let e = shape[1];
    let mut raw = RawDataset {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "dataset".into()),
        source: serde_json::json!({"format": "npy", "input": dir.display().to_string()}),
        dst: edges[e..].to_vec(),
        src: edges[..e].to_vec(),
        ..Default::default()
    };
    // meta.json (when present) fixes N, so trailing isolated nodes are kept.
    let meta = dir.join("meta.json");
    if let Ok(text) = std::fs::read_to_string(&meta) {
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|err| DataError::Manifest {
                path: meta.clone(),
                reason: err.to_string(),
            })?;
        raw.num_nodes = v
            .get("num_nodes")
            .and_then(|n| n.as_u64())
            .map(|n| n as usize);
        if let Some(name) = v.get("name").and_then(|n| n.as_str()) {
            raw.name = name.to_string();
        }
    }
    let xp = dir.join("x.npy");
    if xp.exists() {
        let (data, shape) = read_any_as_f32(&xp)?;
        let f = match shape.as_slice() {
            [_, f] => *f,
            [_] => 1,
            _ => {
                return Err(DataError::invalid(
                    &xp,
                    format!("shape {shape:?}, expected [N, F]"),
                ))
            }
        };
        raw.x = Some(RawFeatures {
            data,
            num_features: f,
            source: xp,
            ids: None,
            sparse: false,
        });
    }
    let yp = dir.join("y.npy");
    if yp.exists() {
        let (y, shape) = read_any_as_i64(&yp)?;
        if shape.len() != 1 {
            return Err(DataError::invalid(
                &yp,
                format!("shape {shape:?}, expected [N] class ids"),
            ));
        }
        raw.y = Some(RawLabels::Classes(y));
    }
    if raw.x.is_none() {
        raw.x = read_sparse_features(dir, &mut raw.warnings)?;
    }
    // The node count masks are laid against: meta.json, else the node arrays, else the edges.
    let from_y = match &raw.y {
        Some(RawLabels::Classes(y)) => Some(y.len()),
        _ => None,
    };
    let from_x = raw.x.as_ref().map(|x| x.data.len() / x.num_features.max(1));
    let from_edges = raw
        .src
        .iter()
        .chain(&raw.dst)
        .copied()
        .max()
        .map_or(0, |m| m as usize + 1);
    let n = raw.num_nodes.or(from_x).or(from_y).unwrap_or(from_edges);
    // parts[k] = the splits' lists of one part; one entry per official split.
    let mut parts: Vec<Vec<Vec<i64>>> = Vec::new();
    for part in ["train", "val", "test"] {
        let candidates = [
            format!("{part}_mask.npy"),
            format!("{part}_masks.npy"),
            format!("{part}_idx.npy"),
        ];
        let present: Vec<&String> = candidates.iter().filter(|c| dir.join(c).exists()).collect();
        let mut read: Vec<(&str, Vec<Vec<i64>>)> = Vec::new();
        for name in &present {
            read.push((name.as_str(), read_part(&dir.join(name), name, n)?));
        }
        let lists = one_split_file(dir, part, read, &mut raw.warnings)?;
        parts.push(lists);
    }
    let counts: Vec<usize> = parts.iter().map(Vec::len).collect();
    let s = counts.iter().copied().max().unwrap_or(0);
    if s > 0 {
        if counts.iter().any(|&c| c != s && c != 0) {
            return Err(DataError::invalid(
                dir,
                format!("train, val and test hold {counts:?} splits: they must hold as many"),
            ));
        }
        let mut all: Vec<RawSplits> = (0..s)
            .map(|k| RawSplits {
                train: parts[0].get(k).cloned().unwrap_or_default(),
                val: parts[1].get(k).cloned().unwrap_or_default(),
                test: parts[2].get(k).cloned().unwrap_or_default(),
            })
            .collect();
        raw.splits = Some(all.remove(0));
        raw.more_splits = all;
    }
    // Every file is used or named.
    let used = [
        "edge_index.npy",
        "x.npy",
        "y.npy",
        "meta.json",
        "x_indptr.npy",
        "x_indices.npy",
        "x_data.npy",
        "x_shape.npy",
    ];
    let mut unused: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| {
            !used.contains(&f.as_str())
                && !["train", "val", "test"].iter().any(|p| {
                    [
                        format!("{p}_mask.npy"),
                        format!("{p}_masks.npy"),
                        format!("{p}_idx.npy"),
                    ]
                    .contains(f)
                })
        })
        .collect();
    unused.sort();
    for f in unused {
        raw.warnings.push(format!(
            "{} is not a file of the NumPy layout and is not used",
            dir.join(f).display()
        ));
    }
    Ok(raw)
}

/// The split lists of one part from the files that hold it (none: no lists). Several files
/// (WebKB's train_mask.npy is row 0 of train_masks.npy): the first with the most splits is
/// used when the others only repeat its splits, said in a warning; else an error.
fn one_split_file(
    dir: &Path,
    part: &str,
    mut read: Vec<(&str, Vec<Vec<i64>>)>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Vec<i64>>> {
    let Some(most) = read.iter().map(|(_, ls)| ls.len()).max() else {
        return Ok(Vec::new());
    };
    let main = read
        .iter()
        .position(|(_, ls)| ls.len() == most)
        .unwrap_or(0);
    let (main_name, main_ls) = read.swap_remove(main);
    for (name, ls) in read {
        let at: Option<Vec<String>> = ls
            .iter()
            .map(|l| main_ls.iter().position(|m| m == l).map(|k| k.to_string()))
            .collect();
        let Some(at) = at else {
            return Err(DataError::invalid(
                dir,
                format!("{name} and {main_name} give different {part} splits: keep one"),
            ));
        };
        warnings.push(format!(
            "{name} repeats split{} {} of {main_name}: {main_name} is used ({most} split{})",
            if at.len() == 1 { "" } else { "s" },
            at.join(", "),
            if most == 1 { "" } else { "s" }
        ));
    }
    Ok(main_ls)
}

/// One split part's node lists from a mask (`[N]`, `[S, N]`, `[N, S]`) or index (`[len]`,
/// `[S, len]` padded with -1) file: one list per official split.
fn read_part(p: &Path, name: &str, n: usize) -> Result<Vec<Vec<i64>>> {
    let (v, shape) = read_any_as_i64(p)?;
    if !name.ends_with("_idx.npy") {
        return masks(p, &v, &shape, n);
    }
    match shape.as_slice() {
        [_] => Ok(vec![v]),
        // [S, len] padded with -1, as the training core reads them.
        [_, w] => Ok(v
            .chunks((*w).max(1))
            .map(|row| row.iter().copied().filter(|&i| i >= 0).collect())
            .collect()),
        s => Err(DataError::invalid(
            p,
            format!("shape {s:?}, expected [len] or [S, len]"),
        )),
    }
}

/// The splits of a boolean mask file: `[N]` is one split, `[S, N]` or `[N, S]` are S.
fn masks(p: &Path, v: &[i64], shape: &[usize], n: usize) -> Result<Vec<Vec<i64>>> {
    let on = |it: &mut dyn Iterator<Item = i64>| -> Vec<i64> {
        it.enumerate()
            .filter(|(_, b)| *b != 0)
            .map(|(i, _)| i as i64)
            .collect()
    };
    match *shape {
        [_] => Ok(vec![on(&mut v.iter().copied())]),
        [s, m] if m == n && s != n => Ok(v.chunks(m).map(|r| on(&mut r.iter().copied())).collect()),
        [m, s] if m == n && s != n => Ok((0..s)
            .map(|k| on(&mut (0..m).map(|i| v[i * s + k])))
            .collect()),
        _ => Err(DataError::invalid(
            p,
            format!("shape {shape:?}: a mask is [N], [S, N] or [N, S] with N = {n} nodes"),
        )),
    }
}

/// Features stored as a CSR triple (`x_indptr.npy`, `x_indices.npy`, `x_data.npy`, and
/// `x_shape.npy` = [N, F] or F = the largest column + 1), as scipy saves a sparse matrix's
/// parts. Read into a dense matrix: the dataset format holds dense features today.
fn read_sparse_features(dir: &Path, warnings: &mut Vec<String>) -> Result<Option<RawFeatures>> {
    let (ip, ix, dp) = (
        dir.join("x_indptr.npy"),
        dir.join("x_indices.npy"),
        dir.join("x_data.npy"),
    );
    let have = [&ip, &ix, &dp].iter().filter(|p| p.exists()).count();
    if have == 0 {
        return Ok(None);
    }
    if have < 3 {
        return Err(DataError::invalid(
            dir,
            "sparse features need x_indptr.npy, x_indices.npy and x_data.npy together",
        ));
    }
    let (indptr, _) = read_any_as_i64(&ip)?;
    let (indices, _) = read_any_as_i64(&ix)?;
    let (data, _) = read_any_as_f32(&dp)?;
    if indptr.is_empty() || indices.len() != data.len() {
        return Err(DataError::invalid(
            &ix,
            format!(
                "{} column indices for {} values, {} row pointers",
                indices.len(),
                data.len(),
                indptr.len()
            ),
        ));
    }
    let rows = indptr.len() - 1;
    let sp = dir.join("x_shape.npy");
    let cols = if sp.exists() {
        let (shape, _) = read_any_as_i64(&sp)?;
        match shape.as_slice() {
            [r, c] if *r as usize == rows && *c > 0 => *c as usize,
            s => {
                return Err(DataError::invalid(
                    &sp,
                    format!("{s:?} is not [N, F] with N = {rows} rows"),
                ))
            }
        }
    } else {
        indices.iter().copied().max().map_or(0, |m| m as usize + 1)
    };
    let ok_ptr = indptr[0] == 0
        && indptr.windows(2).all(|w| w[0] <= w[1])
        && indptr[rows] as usize == indices.len();
    if !ok_ptr {
        return Err(DataError::invalid(
            &ip,
            "row pointers must start at 0, never decrease, and end at the value count",
        ));
    }
    if let Some(bad) = indices.iter().find(|&&c| c < 0 || c as usize >= cols) {
        return Err(DataError::invalid(
            &ix,
            format!("column index {bad} is outside 0..{cols}"),
        ));
    }
    scalegnn_limits::check_array("the dense feature matrix", &[rows, cols], 4)
        .map_err(|e| DataError::invalid(&dp, e.to_string()))?;
    let mut dense = vec![0f32; rows * cols];
    for r in 0..rows {
        for k in indptr[r] as usize..indptr[r + 1] as usize {
            dense[r * cols + indices[k] as usize] += data[k];
        }
    }
    let density = data.len() as f64 / (rows * cols).max(1) as f64;
    warnings.push(format!(
        "sparse features ({:.2} % non-zero) are made dense in memory while ingesting ({} MiB)",
        100.0 * density,
        (rows * cols * 4) >> 20
    ));
    Ok(Some(RawFeatures {
        data: dense,
        num_features: cols,
        source: dp,
        ids: None,
        sparse: true,
    }))
}
