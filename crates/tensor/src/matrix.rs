//! `Matrix`: a dense, row-major f32 matrix that owns its buffer.

use rand::Rng;

/// Dense row-major matrix.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    /// A zero matrix.
    pub fn zeros(rows: usize, cols: usize) -> Matrix {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// Wraps a buffer of `rows * cols` values.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Matrix {
        assert_eq!(data.len(), rows * cols, "buffer does not match shape");
        Matrix { rows, cols, data }
    }

    /// Glorot (Xavier) uniform initialisation, as PyG's layers use.
    pub fn glorot(rows: usize, cols: usize, rng: &mut impl Rng) -> Matrix {
        let a = (6.0 / (rows + cols) as f32).sqrt();
        Matrix::from_vec(
            rows,
            cols,
            (0..rows * cols).map(|_| rng.random_range(-a..a)).collect(),
        )
    }

    /// Row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Row `i`, mutable.
    #[inline]
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Index of the largest entry of each row.
    pub fn argmax_rows(&self) -> Vec<usize> {
        (0..self.rows)
            .map(|i| {
                let r = self.row(i);
                (0..self.cols).fold(0, |b, j| if r[j] > r[b] { j } else { b })
            })
            .collect()
    }
}
