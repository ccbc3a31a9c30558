//! Reader for NumPy directories in the layout of `planetoid-npy/*` and `npz-npy/*`:
//! `edge_index.npy` [2, E], optional `x.npy`, `y.npy`, `*_mask.npy` (bool) or `*_idx.npy`.

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
    let mut splits = RawSplits::default();
    let mut found = false;
    for (part, out) in [
        ("train", &mut splits.train),
        ("val", &mut splits.val),
        ("test", &mut splits.test),
    ] {
        let mask = dir.join(format!("{part}_mask.npy"));
        let idx = dir.join(format!("{part}_idx.npy"));
        if mask.exists() {
            let (m, shape) = read_any_as_i64(&mask)?;
            if shape.len() != 1 {
                return Err(DataError::invalid(
                    &mask,
                    format!("shape {shape:?}, expected [N] bool"),
                ));
            }
            *out = m
                .iter()
                .enumerate()
                .filter(|(_, &b)| b != 0)
                .map(|(i, _)| i as i64)
                .collect();
            found = true;
        } else if idx.exists() {
            *out = read_any_as_i64(&idx)?.0;
            found = true;
        }
    }
    if found {
        raw.splits = Some(splits);
    }
    Ok(raw)
}
