//! Node features as models read them (dense, or sparse for bag-of-words data), and a
//! layer's input on the tape.

use std::sync::Arc;

use rand::Rng;
use scalegnn_tensor::{Matrix, SparseMat, Tape, Var};

/// Node features as the model reads them.
#[derive(Debug, Clone)]
pub enum Features {
    Dense(Arc<Matrix>),
    /// Sparse rows (bag-of-words data such as Cora, 1.3 % non-zero): the first layer
    /// multiplies only the stored entries.
    Sparse(Arc<SparseMat>),
}

impl Features {
    /// Dense features, stored sparse when at most `max_density` of the entries are non-zero.
    pub fn from_dense(m: Matrix, max_density: f64) -> Features {
        let nnz = m.data.iter().filter(|v| **v != 0.0).count();
        if (nnz as f64) > max_density * m.data.len() as f64 {
            return Features::Dense(Arc::new(m));
        }
        let mut indptr = Vec::with_capacity(m.rows + 1);
        let mut indices = Vec::with_capacity(nnz);
        let mut weights = Vec::with_capacity(nnz);
        indptr.push(0);
        for i in 0..m.rows {
            for (j, &v) in m.row(i).iter().enumerate() {
                if v != 0.0 {
                    indices.push(j as u32);
                    weights.push(v);
                }
            }
            indptr.push(indices.len());
        }
        Features::Sparse(Arc::new(SparseMat::new(
            m.rows, m.cols, indptr, indices, weights,
        )))
    }

    /// The dense buffer back for reuse once nothing else holds it (a copy if something
    /// still does; empty for sparse features).
    pub fn into_buffer(self) -> Matrix {
        match self {
            Features::Dense(m) => Arc::try_unwrap(m).unwrap_or_else(|m| (*m).clone()),
            Features::Sparse(_) => Matrix::zeros(0, 0),
        }
    }

    /// The first `rows` rows (a copy; all of them when there are fewer).
    pub fn prefix_rows(&self, rows: usize) -> Features {
        match self {
            Features::Dense(m) => {
                let r = rows.min(m.rows);
                Features::Dense(Arc::new(Matrix::from_vec(
                    r,
                    m.cols,
                    m.data[..r * m.cols].to_vec(),
                )))
            }
            Features::Sparse(s) => {
                let r = rows.min(s.rows);
                let end = s.indptr[r];
                Features::Sparse(Arc::new(SparseMat::new(
                    r,
                    s.cols,
                    s.indptr[..=r].to_vec(),
                    s.indices[..end].to_vec(),
                    s.weights[..end].to_vec(),
                )))
            }
        }
    }

    /// Number of feature columns.
    pub fn cols(&self) -> usize {
        match self {
            Features::Dense(m) => m.cols,
            Features::Sparse(s) => s.cols,
        }
    }
}

/// A layer's input on the tape: dense activations, or sparse features with their
/// (dropped-out) entry values.
pub enum Input {
    Dense(Var),
    Sparse(Arc<SparseMat>, Var),
}

impl Input {
    /// `input · w`; for a sparse input only the stored entries are multiplied.
    pub fn matmul(&self, tape: &mut Tape, w: Var) -> Var {
        match self {
            Input::Dense(v) => tape.matmul(*v, w),
            Input::Sparse(s, vals) => tape.sparse_matmul(s, *vals, w),
        }
    }
}

impl Input {
    /// The model input after dropout `p` (dropout acts on stored entries of sparse features).
    pub fn from_features(tape: &mut Tape, x: &Features, p: f32, rng: &mut impl Rng) -> Input {
        match x {
            Features::Dense(m) => {
                let v = tape.constant(m);
                Input::Dense(tape.dropout(v, p, rng))
            }
            Features::Sparse(s) => Input::Sparse(s.clone(), tape.sparse_values(s, p, rng)),
        }
    }

    /// The input as a dense value (densifies sparse features; use `matmul` where possible).
    pub fn dense(&self, tape: &mut Tape) -> Var {
        match self {
            Input::Dense(v) => *v,
            Input::Sparse(s, vals) => {
                let v = tape.value(*vals);
                let mut d = Matrix::zeros(s.rows, s.cols);
                for i in 0..s.rows {
                    for k in s.indptr[i]..s.indptr[i + 1] {
                        d.data[i * s.cols + s.indices[k] as usize] = v.data[k];
                    }
                }
                tape.input(&d)
            }
        }
    }
}
