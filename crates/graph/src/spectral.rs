//! Low end of the spectrum of the symmetric-normalised Laplacian `L = I − D^-1/2 A D^-1/2`
//! (SAGMM's positional gate input), by Lanczos with full reorthogonalisation over the CSR:
//! time is `steps` sparse products plus the reorthogonalisation; memory is `steps` basis
//! vectors of n floats, kept on the heap or (for graphs where that does not fit the budget)
//! in a scratch file read back through the page cache, plus a few vectors of n values.
//! Reductions add in a fixed order, so a solve gives the same bits on any thread count.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nalgebra::{DMatrix, SymmetricEigen};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use scalegnn_npy::NpyError;

use crate::{Csr, GraphError, Neighbors};

/// Eigenpairs of `L`, smallest eigenvalue first.
#[derive(Debug, Clone)]
pub struct Spectrum {
    /// Eigenvalues of `L`, ascending.
    pub values: Vec<f64>,
    /// Eigenvectors, row-major `[n, k]` for the k asked, unit columns (a column past
    /// `values.len()`, when the Krylov space ran out first, is zero).
    pub vectors: Vec<f32>,
    /// `‖L v − λ v‖` of each pair (how converged it is).
    pub residuals: Vec<f64>,
}

/// Values per partial sum of a reduction. Fixed (not rayon's adaptive split, which depends on
/// work stealing) so every dot product adds in the same order and the solve is deterministic.
const RED: usize = 1 << 14;

/// `y = M x` with `M = (I + D^-1/2 A D^-1/2) / 2`: same eigenvectors as `L`, eigenvalue
/// `1 − λ/2`, all in [0, 1], so the wanted low end of `L` is the top end of `M` (Lanczos
/// converges on extremes; the shift keeps the bipartite end at −1 away from it). `z` is
/// scratch for `D^-1/2 x`: one 4-byte random read per edge instead of two arrays' (the
/// product is memory-latency bound: twice as fast on the products preset; the vectors are
/// f32 already, so rounding the products to f32 loses nothing they keep).
fn apply(g: &Csr, dis: &[f64], x: &[f32], z: &mut [f32], y: &mut [f32]) {
    z.par_iter_mut()
        .zip(x.par_iter())
        .zip(dis.par_iter())
        .with_min_len(4096)
        .for_each(|((z, &x), &d)| *z = (d * x as f64) as f32);
    let z = &*z;
    y.par_iter_mut()
        .enumerate()
        .with_min_len(1024)
        .for_each(|(v, out)| {
            let s: f64 = match g.neighbors(v) {
                Neighbors::I32(nb) => nb.iter().map(|&u| z[u as usize] as f64).sum(),
                Neighbors::I64(nb) => nb.iter().map(|&u| z[u as usize] as f64).sum(),
            };
            *out = (0.5 * x[v] as f64 + 0.5 * dis[v] * s) as f32;
        });
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    let parts: Vec<f64> = a
        .par_chunks(RED)
        .zip(b.par_chunks(RED))
        .map(|(a, b)| a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum())
        .collect();
    parts.iter().sum()
}

fn axpy(alpha: f64, x: &[f32], y: &mut [f32]) {
    let a = alpha as f32;
    y.par_iter_mut()
        .with_min_len(4096)
        .zip(x)
        .for_each(|(y, &x)| *y += a * x);
}

/// Squared norm of each column of row-major `v` (`[n, k]`), in a fixed order of addition.
fn col_sq_norms(v: &[f32], k: usize) -> Vec<f64> {
    let parts: Vec<Vec<f64>> = v
        .par_chunks((RED / k.max(1)).max(1) * k)
        .map(|blk| {
            let mut s = vec![0f64; k];
            for row in blk.chunks_exact(k) {
                for (s, &x) in s.iter_mut().zip(row) {
                    *s += x as f64 * x as f64;
                }
            }
            s
        })
        .collect();
    let mut total = vec![0f64; k];
    for p in &parts {
        for (t, s) in total.iter_mut().zip(p) {
            *t += s;
        }
    }
    total
}

/// The Lanczos basis: on the heap, or in an unlinked scratch file (positioned reads and
/// writes, so its pages sit in the page cache, which the kernel can reclaim, not in the
/// process's resident memory as a writable map's dirty pages would; and a killed solve
/// leaves no file behind).
enum Basis {
    Heap(Vec<Vec<f32>>),
    File {
        file: File,
        path: PathBuf,
        n: usize,
        len: usize,
        buf: Vec<f32>,
    },
}

fn io_err(path: &Path, err: std::io::Error) -> GraphError {
    GraphError::Npy(NpyError::Io {
        path: path.to_path_buf(),
        err,
    })
}

/// The bytes of an f32 slice.
fn as_bytes(v: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding; any f32 is 4 valid bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// The bytes of an f32 slice, writable.
fn as_bytes_mut(v: &mut [f32]) -> &mut [u8] {
    // SAFETY: as above, and every bit pattern is a valid f32, so any bytes written are too.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

impl Basis {
    fn file(path: &Path, n: usize) -> Result<Basis, GraphError> {
        // `create_new` never follows a link planted at the path; unlinking at once means the
        // space is freed however the process ends.
        let _ = std::fs::remove_file(path);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        std::fs::remove_file(path).map_err(|e| io_err(path, e))?;
        Ok(Basis::File {
            file,
            path: path.to_path_buf(),
            n,
            len: 0,
            buf: vec![0f32; n],
        })
    }

    fn len(&self) -> usize {
        match self {
            Basis::Heap(b) => b.len(),
            Basis::File { len, .. } => *len,
        }
    }

    fn push(&mut self, v: Vec<f32>) -> Result<(), GraphError> {
        match self {
            Basis::Heap(b) => b.push(v),
            Basis::File {
                file, path, n, len, ..
            } => {
                let at = (*len * *n * 4) as u64;
                file.write_all_at(as_bytes(&v), at)
                    .map_err(|e| io_err(path, e))?;
                *len += 1;
            }
        }
        Ok(())
    }

    /// Calls `f` with vector `i`.
    fn with(&mut self, i: usize, f: impl FnOnce(&[f32])) -> Result<(), GraphError> {
        match self {
            Basis::Heap(b) => f(&b[i]),
            Basis::File {
                file, path, n, buf, ..
            } => {
                file.read_exact_at(as_bytes_mut(buf), (i * *n * 4) as u64)
                    .map_err(|e| io_err(path, e))?;
                f(buf);
            }
        }
        Ok(())
    }

    /// Calls `f` with each vector, in order.
    fn for_each(&mut self, mut f: impl FnMut(usize, &[f32])) -> Result<(), GraphError> {
        for i in 0..self.len() {
            self.with(i, |b| f(i, b))?;
        }
        Ok(())
    }

    /// Removes from `w` its components along every basis vector, twice ("twice is enough"):
    /// without it the Ritz vectors of a long run pick up ghost copies of converged values.
    fn orthogonalise(&mut self, w: &mut [f32]) -> Result<(), GraphError> {
        for _ in 0..2 {
            self.for_each(|_, b| {
                let c = dot(b, w);
                axpy(-c, b, w);
            })?;
        }
        Ok(())
    }
}

/// The `k` eigenpairs of `L` after the smallest (its 2nd to (k+1)th smallest), from `steps`
/// Lanczos iterations (at least `k + 1`; more converge the pairs better, `residuals` says how
/// well). `A` is the in-neighbour CSR read as an undirected graph: exact for symmetric
/// graphs. Isolated nodes have eigenvalue 1 of `L` (their row of `A` is empty).
pub fn laplacian_eigenvectors(
    g: &Csr,
    k: usize,
    steps: usize,
    seed: u64,
) -> Result<Spectrum, GraphError> {
    Spectrum::lanczos(g, k, steps, seed, None)
}

impl Spectrum {
    /// Heap bytes [`Spectrum::lanczos`] takes at most for `n` nodes, with the basis on the
    /// heap or (`basis_in_file`) in its scratch file.
    pub fn lanczos_bytes(n: usize, k: usize, steps: usize, basis_in_file: bool) -> u64 {
        let m = steps.max(k + 1).min(n) as u64;
        let (n, k) = (n as u64, k as u64);
        // D^-1/2 (f64), then at most four vectors of n at once (q, w, D^-1/2 q, a read buffer
        // or a restart vector; or two residual buffers and D^-1/2 col), and the eigenvectors.
        let fixed = 8 * n + 4 * 4 * n + 4 * n * k;
        if basis_in_file {
            fixed
        } else {
            fixed + 4 * n * m
        }
    }

    /// [`laplacian_eigenvectors`] with the basis in a scratch file at `basis_file` when given
    /// (created there, unlinked at once, so nothing is left behind): `steps × n` floats of
    /// page cache instead of heap, for the same result bit for bit.
    pub fn lanczos(
        g: &Csr,
        k: usize,
        steps: usize,
        seed: u64,
        basis_file: Option<&Path>,
    ) -> Result<Spectrum, GraphError> {
        let n = g.num_nodes();
        if k + 1 > n {
            return Err(GraphError::BadNodeSet(format!(
                "{k} Laplacian eigenvectors after the first need at least {} nodes; the graph has {n}",
                k + 1
            )));
        }
        let m = steps.max(k + 1).min(n);
        let dis: Vec<f64> = (0..n)
            .into_par_iter()
            .with_min_len(4096)
            .map(|v| {
                let d = g.degree(v);
                if d > 0 {
                    1.0 / (d as f64).sqrt()
                } else {
                    0.0
                }
            })
            .collect();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut basis = match basis_file {
            Some(p) => Basis::file(p, n)?,
            None => Basis::Heap(Vec::with_capacity(m)),
        };
        let mut q: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let nq = dot(&q, &q).sqrt();
        q.iter_mut().for_each(|v| *v = (*v as f64 / nq) as f32);
        let (mut alpha, mut beta): (Vec<f64>, Vec<f64>) =
            (Vec::with_capacity(m), Vec::with_capacity(m));
        let mut w = vec![0f32; n];
        let mut z = vec![0f32; n];
        for j in 0..m {
            apply(g, &dis, &q, &mut z, &mut w);
            let a = dot(&q, &w);
            axpy(-a, &q, &mut w);
            if let Some(&b) = beta.last() {
                basis.with(j - 1, |prev| axpy(-b, prev, &mut w))?;
            }
            basis.push(std::mem::take(&mut q))?;
            alpha.push(a);
            basis.orthogonalise(&mut w)?;
            let b = dot(&w, &w).sqrt();
            if j + 1 == m {
                beta.push(b);
                break;
            }
            if b < 1e-8 {
                // An invariant subspace: restart with a fresh vector orthogonal to the basis.
                let mut r: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
                basis.orthogonalise(&mut r)?;
                let nr = dot(&r, &r).sqrt();
                if nr < 1e-8 {
                    beta.push(0.0);
                    break;
                }
                r.iter_mut().for_each(|v| *v = (*v as f64 / nr) as f32);
                beta.push(0.0);
                q = r;
            } else {
                beta.push(b);
                q = w.par_iter().map(|&v| (v as f64 / b) as f32).collect();
            }
        }
        drop((q, w));
        let m = basis.len();
        let mut t = DMatrix::<f64>::zeros(m, m);
        for i in 0..m {
            t[(i, i)] = alpha[i];
            if i + 1 < m {
                t[(i, i + 1)] = beta[i];
                t[(i + 1, i)] = beta[i];
            }
        }
        let eig = SymmetricEigen::new(t);
        let mut order: Vec<usize> = (0..m).collect();
        // Largest eigenvalues of M first = smallest of L.
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        // Fewer than k only when the Krylov space ran out early: the columns left are zero
        // (the row stride stays k, which callers index by).
        let picked: Vec<usize> = order.into_iter().skip(1).take(k).collect();
        if k == 0 {
            return Ok(Spectrum {
                values: Vec::new(),
                vectors: Vec::new(),
                residuals: Vec::new(),
            });
        }
        // Ritz vectors y_c = Σ_i s_c[i] b_i, all k at once so each basis vector is read once
        // (from the file: m reads, not k·m).
        let mut vectors = vec![0f32; n * k];
        basis.for_each(|i, b| {
            let mut s = vec![0f32; k];
            for (s, &idx) in s.iter_mut().zip(&picked) {
                *s = eig.eigenvectors[(i, idx)] as f32;
            }
            vectors
                .par_chunks_mut(k)
                .zip(b.par_iter())
                .with_min_len(1024)
                .for_each(|(row, &bv)| {
                    for (y, &s) in row.iter_mut().zip(&s) {
                        *y += s * bv;
                    }
                });
        })?;
        drop(basis);
        let norms: Vec<f64> = col_sq_norms(&vectors, k)
            .into_iter()
            .map(|s| s.sqrt().max(1e-30))
            .collect();
        vectors
            .par_chunks_mut(k)
            .with_min_len(1024)
            .for_each(|row| {
                for (y, &ny) in row.iter_mut().zip(&norms) {
                    *y = (*y as f64 / ny) as f32;
                }
            });
        let values: Vec<f64> = picked
            .iter()
            .map(|&idx| 2.0 * (1.0 - eig.eigenvalues[idx]))
            .collect();
        // Residuals measured directly: ‖L v − λ v‖ = 2‖M v − μ v‖.
        let mut residuals = Vec::with_capacity(k);
        let mut col = vec![0f32; n];
        let mut mv = vec![0f32; n];
        for (c, &lam) in values.iter().enumerate() {
            col.par_iter_mut()
                .enumerate()
                .with_min_len(4096)
                .for_each(|(v, x)| *x = vectors[v * k + c]);
            apply(g, &dis, &col, &mut z, &mut mv);
            let mu = 1.0 - lam / 2.0;
            axpy(-mu, &col, &mut mv);
            residuals.push(2.0 * dot(&mv, &mv).sqrt());
        }
        Ok(Spectrum {
            values,
            vectors,
            residuals,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CsrBuilder;

    /// Dense `L` of an undirected graph given by its CSR.
    fn dense_laplacian(g: &Csr) -> DMatrix<f64> {
        let n = g.num_nodes();
        let mut l = DMatrix::<f64>::identity(n, n);
        for v in 0..n {
            for u in g.neighbors(v).iter() {
                let d = (g.degree(v) as f64 * g.degree(u) as f64).sqrt();
                l[(v, u)] -= 1.0 / d;
            }
        }
        l
    }

    fn two_communities(n_half: usize, seed: u64) -> Csr {
        // Two dense random halves joined by a few edges: a clear spectral gap.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let (mut s, mut d) = (Vec::new(), Vec::new());
        for _ in 0..n_half * 6 {
            for base in [0, n_half] {
                let a = base + rng.random_range(0..n_half);
                let b = base + rng.random_range(0..n_half);
                if a != b {
                    s.push(a as u32);
                    d.push(b as u32);
                }
            }
        }
        for _ in 0..3 {
            s.push(rng.random_range(0..n_half) as u32);
            d.push((n_half + rng.random_range(0..n_half)) as u32);
        }
        CsrBuilder::new()
            .undirected(true)
            .dedup(true)
            .build(&s, &d)
            .unwrap()
            .csr
    }

    #[test]
    fn matches_a_dense_solver() {
        let g = two_communities(40, 1);
        let n = g.num_nodes();
        let dense = SymmetricEigen::new(dense_laplacian(&g));
        let mut want: Vec<f64> = dense.eigenvalues.iter().copied().collect();
        want.sort_by(f64::total_cmp);
        // Enough steps for an exact Krylov space, and fewer (a converged low end).
        for steps in [n, 60] {
            let sp = laplacian_eigenvectors(&g, 4, steps, 7).unwrap();
            for (c, (&got, &w)) in sp.values.iter().zip(&want[1..]).enumerate() {
                assert!(
                    (got - w).abs() < 1e-3,
                    "steps {steps}, pair {c}: {got} vs {w}"
                );
                assert!(
                    sp.residuals[c] < 1e-2,
                    "steps {steps}: residual {}",
                    sp.residuals[c]
                );
            }
        }
        // The Fiedler vector splits the two communities by sign.
        let sp = laplacian_eigenvectors(&g, 1, n, 3).unwrap();
        let side = |v: usize| sp.vectors[v] > 0.0;
        let agree = (0..40).filter(|&v| side(v) == side(0)).count()
            + (40..80).filter(|&v| side(v) != side(0)).count();
        assert!(agree >= 76, "{agree} of 80 nodes on their community's side");
    }

    #[test]
    fn basis_in_a_file_gives_the_same_bits_and_leaves_no_file() {
        let g = two_communities(300, 5);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("basis.f32");
        let heap = laplacian_eigenvectors(&g, 3, 40, 11).unwrap();
        let file = Spectrum::lanczos(&g, 3, 40, 11, Some(&path)).unwrap();
        assert_eq!(heap.vectors, file.vectors);
        assert_eq!(heap.values, file.values);
        assert_eq!(heap.residuals, file.residuals);
        assert!(!path.exists(), "the scratch file is unlinked");
        // Deterministic: a second solve (other thread interleavings) gives the same bits.
        let again = laplacian_eigenvectors(&g, 3, 40, 11).unwrap();
        assert_eq!(heap.vectors, again.vectors);
        let n = g.num_nodes();
        assert!(
            Spectrum::lanczos_bytes(n, 3, 40, true) + 4 * n as u64 * 40
                == Spectrum::lanczos_bytes(n, 3, 40, false)
        );
    }

    #[test]
    fn too_few_nodes_is_an_error() {
        let g = CsrBuilder::new()
            .undirected(true)
            .build(&[0u32], &[1u32])
            .unwrap()
            .csr;
        let e = laplacian_eigenvectors(&g, 4, 10, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 5 nodes"), "{e}");
    }
}
