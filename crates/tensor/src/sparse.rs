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
    assert_eq!(a.cols, x.rows, "spmm: a.cols != x.rows");
    assert_eq!((out.rows, out.cols), (a.rows, x.cols), "spmm: output shape");
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
            for k in a.indptr[i]..a.indptr[i + 1] {
                let w = a.weights[k];
                let src = &x.data[a.indices[k] as usize * f..(a.indices[k] as usize + 1) * f];
                for (d, s) in o.iter_mut().zip(src) {
                    *d += w * s;
                }
            }
        });
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
    }
}
