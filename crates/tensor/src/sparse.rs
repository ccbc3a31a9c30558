//! Weighted sparse matrices (CSR) and SpMM: forward parallel over output rows, backward as
//! the same kernel over the transpose (CSC), so neither direction needs atomics or locks.

use rayon::prelude::*;

use crate::Matrix;

/// A weighted CSR matrix `[rows, cols]`: row i holds `(indices[k], weights[k])` for k in its range.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseMat {
    pub rows: usize,
    pub cols: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub weights: Vec<f32>,
}

impl SparseMat {
    /// Wraps CSR arrays (checked: row pointers monotone and ending at nnz, columns in range).
    pub fn new(
        rows: usize,
        cols: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        weights: Vec<f32>,
    ) -> SparseMat {
        assert_eq!(indptr.len(), rows + 1, "indptr length");
        assert_eq!(indptr[rows], indices.len(), "indptr end");
        assert_eq!(indices.len(), weights.len(), "weights length");
        assert!(indptr.windows(2).all(|w| w[0] <= w[1]), "indptr monotone");
        assert!(
            indices.iter().all(|&c| (c as usize) < cols),
            "column in range"
        );
        SparseMat {
            rows,
            cols,
            indptr,
            indices,
            weights,
        }
    }

    /// The dense form.
    pub fn to_dense(&self) -> Matrix {
        let mut m = Matrix::zeros(self.rows, self.cols);
        for i in 0..self.rows {
            for k in self.indptr[i]..self.indptr[i + 1] {
                m.data[i * self.cols + self.indices[k] as usize] += self.weights[k];
            }
        }
        m
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// The transpose as CSR (i.e. this matrix in CSC), by a counting sort.
    pub fn transpose(&self) -> SparseMat {
        let mut count = vec![0usize; self.cols + 1];
        for &c in &self.indices {
            count[c as usize + 1] += 1;
        }
        for j in 0..self.cols {
            count[j + 1] += count[j];
        }
        let indptr = count.clone();
        let mut cursor = count;
        let mut indices = vec![0u32; self.nnz()];
        let mut weights = vec![0f32; self.nnz()];
        for i in 0..self.rows {
            for k in self.indptr[i]..self.indptr[i + 1] {
                let c = self.indices[k] as usize;
                indices[cursor[c]] = i as u32;
                weights[cursor[c]] = self.weights[k];
                cursor[c] += 1;
            }
        }
        SparseMat {
            rows: self.cols,
            cols: self.rows,
            indptr,
            indices,
            weights,
        }
    }
}

/// `out = a · x` (or `out += a · x` when `accumulate`), rows of `out` computed in parallel.
pub fn spmm(a: &SparseMat, x: &Matrix, out: &mut Matrix, accumulate: bool) {
    spmm_with(a, &a.weights, x, out, accumulate);
}

/// `spmm` with `weights` (one per stored entry) in place of `a.weights`.
pub fn spmm_with(a: &SparseMat, weights: &[f32], x: &Matrix, out: &mut Matrix, accumulate: bool) {
    assert_eq!(a.cols, x.rows, "spmm: a.cols != x.rows");
    assert_eq!((out.rows, out.cols), (a.rows, x.cols), "spmm: output shape");
    assert_eq!(weights.len(), a.nnz(), "spmm: one weight per entry");
    let f = x.cols;
    if f == 0 {
        return;
    }
    out.data
        .par_chunks_mut(f)
        .with_min_len(64)
        .enumerate()
        .for_each(|(i, o)| {
            if !accumulate {
                o.fill(0.0);
            }
            let (lo, hi) = (a.indptr[i], a.indptr[i + 1]);
            for (&j, &w) in a.indices[lo..hi].iter().zip(&weights[lo..hi]) {
                let j = j as usize;
                let src = &x.data[j * f..(j + 1) * f];
                for (d, s) in o.iter_mut().zip(src) {
                    *d += w * s;
                }
            }
        });
}

/// `out += aᵀ · g` without building the transpose: each task scatters its rows of `a` into a
/// private partial, then the partials are summed. For a small `out` (a weight gradient).
pub fn spmm_t_with(a: &SparseMat, weights: &[f32], g: &Matrix, out: &mut Matrix) {
    assert_eq!(a.rows, g.rows, "spmm_t: a.rows != g.rows");
    assert_eq!(
        (out.rows, out.cols),
        (a.cols, g.cols),
        "spmm_t: output shape"
    );
    let f = g.cols;
    let tasks = rayon::current_num_threads().max(1);
    let rows_per = a.rows.div_ceil(tasks).max(1);
    let partials: Vec<Vec<f32>> = (0..tasks)
        .into_par_iter()
        .map(|t| {
            let mut part = vec![0f32; out.data.len()];
            for i in (t * rows_per)..((t + 1) * rows_per).min(a.rows) {
                let gi = &g.data[i * f..(i + 1) * f];
                let (lo, hi) = (a.indptr[i], a.indptr[i + 1]);
                for (&j, &w) in a.indices[lo..hi].iter().zip(&weights[lo..hi]) {
                    let j = j as usize;
                    for (d, s) in part[j * f..(j + 1) * f].iter_mut().zip(gi) {
                        *d += w * s;
                    }
                }
            }
            part
        })
        .collect();
    for p in partials {
        for (d, s) in out.data.iter_mut().zip(&p) {
            *d += s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spmm_and_transpose_match_dense() {
        // [[0, 2, 0], [1, 0, 3]]
        let a = SparseMat::new(2, 3, vec![0, 1, 3], vec![1, 0, 2], vec![2.0, 1.0, 3.0]);
        let x = Matrix::from_vec(3, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let mut out = Matrix::zeros(2, 2);
        spmm(&a, &x, &mut out, false);
        assert_eq!(out.data, vec![6.0, 8.0, 16.0, 20.0]);
        spmm(&a, &x, &mut out, true);
        assert_eq!(out.data, vec![12.0, 16.0, 32.0, 40.0]);
        let t = a.transpose();
        assert_eq!((t.rows, t.cols), (3, 2));
        assert_eq!(t.transpose(), a);
        let y = Matrix::from_vec(2, 1, vec![1.0, 10.0]);
        let mut o = Matrix::zeros(3, 1);
        spmm(&t, &y, &mut o, false);
        assert_eq!(o.data, vec![10.0, 2.0, 30.0]);
        // aᵀ·y without the transpose, accumulating.
        let mut o2 = Matrix::from_vec(3, 1, vec![1.0, 1.0, 1.0]);
        spmm_t_with(&a, &a.weights, &y, &mut o2);
        assert_eq!(o2.data, vec![11.0, 3.0, 31.0]);
    }
}
