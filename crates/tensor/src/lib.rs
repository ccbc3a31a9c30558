//! The compute core: row-major f32 matrices, strided GEMM, sparse aggregation kernels,
//! a reverse-mode tape whose buffers are reused across steps, and optimizers.

pub mod backend;
mod gemm;
mod matrix;
mod ops;
mod optim;
mod sparse;
mod tape;

pub use backend::{Backend, CpuBackend};
pub use gemm::sgemm;
pub use matrix::Matrix;
pub use ops::attention::EdgeIndex;
pub use optim::{Adam, ParamStore, Sgd};
pub use sparse::{spmm, spmm_t_with, spmm_with, SparseMat};
pub use tape::{Tape, Var};
