//! `U8Scale`: the per-column affine map of the u8 codec, `x = min_c + q * step_c` with
//! `step_c = (max_c - min_c) / 255`, and the streaming min/max pass that builds it.

use std::path::Path;

use crate::StoreError;

/// Per-column minimum and step of the u8 codec (stored as `x.scale.npy`, f32 `[2, dim]`).
#[derive(Debug, Clone, PartialEq)]
pub struct U8Scale {
    min: Vec<f32>,
    step: Vec<f32>,
    /// `1 / step` (0 for constant columns), so quantising multiplies instead of dividing.
    inv_step: Vec<f32>,
}

impl U8Scale {
    /// The scale mapping each column's `[min, max]` onto `0..=255`.
    pub fn from_min_max(min: &[f32], max: &[f32]) -> U8Scale {
        let step: Vec<f32> = min
            .iter()
            .zip(max)
            // f64 so that max - min cannot overflow for finite inputs.
            .map(|(&lo, &hi)| ((hi as f64 - lo as f64).max(0.0) / 255.0) as f32)
            .collect();
        Self::build(min.to_vec(), step)
    }

    /// Rebuilds a stored scale, rejecting values no writer produces (names `path`).
    pub(crate) fn from_parts(
        min: &[f32],
        step: &[f32],
        path: &Path,
    ) -> Result<U8Scale, StoreError> {
        if let Some(c) =
            (0..min.len()).find(|&c| !min[c].is_finite() || !step[c].is_finite() || step[c] < 0.0)
        {
            return Err(StoreError::corrupt(
                path,
                format!(
                    "u8 scale of column {c} is invalid (min {}, step {})",
                    min[c], step[c]
                ),
            ));
        }
        Ok(Self::build(min.to_vec(), step.to_vec()))
    }

    /// Parses the `[min..., step...]` little-endian f32 blob kept in SQLite's meta table.
    pub(crate) fn from_bytes(bytes: &[u8], dim: usize, path: &Path) -> Result<U8Scale, StoreError> {
        if bytes.len() != 2 * dim * 4 {
            return Err(StoreError::corrupt(
                path,
                format!(
                    "table meta: u8_scale holds {} bytes, expected {} for {dim} columns",
                    bytes.len(),
                    2 * dim * 4
                ),
            ));
        }
        let v: Vec<f32> = bytemuck::pod_collect_to_vec(bytes);
        Self::from_parts(&v[..dim], &v[dim..], path)
    }

    fn build(min: Vec<f32>, step: Vec<f32>) -> U8Scale {
        let inv_step = step
            .iter()
            .map(|&s| if s > 0.0 { 1.0 / s } else { 0.0 })
            .collect();
        U8Scale {
            min,
            step,
            inv_step,
        }
    }

    /// Number of columns.
    pub fn dim(&self) -> usize {
        self.min.len()
    }

    /// Per-column minimum.
    pub fn min(&self) -> &[f32] {
        &self.min
    }

    /// Per-column step (`(max - min) / 255`); a decoded value is within `step / 2` of the input.
    pub fn step(&self) -> &[f32] {
        &self.step
    }

    /// `[min..., step...]`, the row-major payload of `x.scale.npy` and of the SQLite blob.
    pub fn to_rows(&self) -> Vec<f32> {
        let mut v = self.min.clone();
        v.extend_from_slice(&self.step);
        v
    }

    /// Quantises one row to the nearest level.
    pub(crate) fn quantize_row(&self, x: &[f32], q: &mut [u8]) {
        let params = self.min.iter().zip(&self.inv_step);
        for ((q, &x), (&m, &inv)) in q.iter_mut().zip(x).zip(params) {
            // `as u8` saturates, which also clamps rounding spill just outside [0, 255].
            *q = ((x - m) * inv).round() as u8;
        }
    }

    /// Decodes one row.
    pub(crate) fn dequantize_row(&self, q: &[u8], out: &mut [f32]) {
        // Zipped iterators: no bounds checks, so the loop vectorises.
        let params = self.min.iter().zip(&self.step);
        for ((o, &q), (&m, &s)) in out.iter_mut().zip(q).zip(params) {
            *o = m + q as f32 * s;
        }
    }
}

/// Running per-column minimum and maximum over streamed rows (the u8 codec's first pass).
pub(crate) struct ColumnRange {
    min: Vec<f32>,
    max: Vec<f32>,
}

impl ColumnRange {
    /// An empty range over `dim` columns.
    pub(crate) fn new(dim: usize) -> Self {
        ColumnRange {
            min: vec![f32::INFINITY; dim],
            max: vec![f32::NEG_INFINITY; dim],
        }
    }

    /// Widens the range by whole rows (already checked finite).
    pub(crate) fn update(&mut self, rows: &[f32]) {
        let dim = self.min.len();
        if dim == 0 {
            return;
        }
        for row in rows.chunks_exact(dim) {
            let bounds = self.min.iter_mut().zip(self.max.iter_mut());
            for ((lo, hi), &x) in bounds.zip(row) {
                *lo = lo.min(x);
                *hi = hi.max(x);
            }
        }
    }

    /// The u8 scale of the range seen (all zeros when no row was seen).
    pub(crate) fn scale(&self) -> U8Scale {
        let fix = |v: &[f32]| -> Vec<f32> {
            v.iter()
                .map(|&x| if x.is_finite() { x } else { 0.0 })
                .collect()
        };
        U8Scale::from_min_max(&fix(&self.min), &fix(&self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantise_within_half_a_step() {
        let rows = [-1.0f32, 5.0, 0.0, 5.0, 1.0, 5.0, 0.3, 5.0];
        let mut r = ColumnRange::new(2);
        r.update(&rows);
        let s = r.scale();
        assert_eq!(s.min(), &[-1.0, 5.0]);
        assert_eq!(s.step()[1], 0.0);
        let mut q = [0u8; 2];
        let mut back = [0f32; 2];
        for row in rows.chunks(2) {
            s.quantize_row(row, &mut q);
            s.dequantize_row(&q, &mut back);
            for c in 0..2 {
                assert!((row[c] - back[c]).abs() <= s.step()[c] / 2.0 + 1e-6);
            }
        }
        let bytes: Vec<u8> = bytemuck::cast_slice(&s.to_rows()).to_vec();
        assert_eq!(U8Scale::from_bytes(&bytes, 2, Path::new("m")).unwrap(), s);
        assert!(U8Scale::from_bytes(&bytes[1..], 2, Path::new("m")).is_err());
    }
}
