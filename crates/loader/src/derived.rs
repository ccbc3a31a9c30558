//! Derived per-node tables: SAGMM's gate input, kept as a memory-mapped feature store beside
//! the dataset so later runs (and every batch, which gathers its seeds' rows) read it instead
//! of solving again.

use std::path::{Path, PathBuf};

use scalegnn_graph::Csr;
use scalegnn_nn::moe::gate_input;
use scalegnn_store::{Codec, FeatureStore, MmapStore, StoreError};
use scalegnn_tensor::Matrix;

/// What can go wrong building a derived table.
#[derive(Debug, thiserror::Error)]
pub enum DerivedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Npy(#[from] scalegnn_npy::NpyError),
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("SAGMM gate input: {0}")]
    Gate(String),
}

/// Where the gate input of a dataset directory lives for `k` eigenvectors.
pub fn gate_dir(dataset_dir: &Path, k: usize) -> PathBuf {
    dataset_dir.join(format!("sagmm_gate_k{k}"))
}

/// The gate input of every node as a memory-mapped feature store in `dir` (`x.npy`,
/// `[N, F + k]`), computed from `store`'s features on first use and written atomically. A
/// file of the wrong shape (other features or k) is rebuilt. Also returns, when it solved,
/// the largest eigenpair residual `‖L v − λ v‖` (how converged the eigenvectors are).
pub fn gate_store(
    dir: &Path,
    graph: &Csr,
    store: &dyn FeatureStore,
    k: usize,
) -> Result<(MmapStore, Option<f64>), DerivedError> {
    let (n, f) = (store.num_nodes(), store.dim());
    if let Ok(s) = MmapStore::open(dir, Codec::F32) {
        if s.num_nodes() == n && s.dim() == f + k {
            return Ok((s, None));
        }
    }
    let mut x = Matrix::zeros(n, f);
    let ids: Vec<u32> = (0..n as u32).collect();
    // In chunks so a store with a connection pool or a cache sees ordinary batch sizes.
    for (c, chunk) in ids.chunks(1 << 16).enumerate() {
        let start = c << 16;
        store.gather(chunk, &mut x.data[start * f..(start + chunk.len()) * f])?;
    }
    let (g, sp) = gate_input::gate_features(graph, &x, k, gate_input::default_eig_steps(k), 0)
        .map_err(|e| DerivedError::Gate(e.to_string()))?;
    drop(x);
    let worst = sp
        .as_ref()
        .map(|sp| sp.residuals.iter().copied().fold(0.0f64, f64::max));
    std::fs::create_dir_all(dir).map_err(|err| DerivedError::Io {
        path: dir.to_path_buf(),
        err,
    })?;
    let path = dir.join("x.npy");
    scalegnn_npy::write_array_atomic(&path, &[n, f + k], &g.data)?;
    Ok((MmapStore::open(dir, Codec::F32)?, worst))
}
