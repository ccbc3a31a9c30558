//! Low end of the spectrum of the symmetric-normalised Laplacian `L = I − D^-1/2 A D^-1/2`
//! (SAGMM's positional gate input), by Lanczos with full reorthogonalisation over the CSR:
//! memory is `steps` vectors of n floats, time `steps` sparse products plus the
//! reorthogonalisation, so it runs on graphs with millions of nodes.

use nalgebra::{DMatrix, SymmetricEigen};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::{Csr, GraphError};

/// Eigenpairs of `L`, smallest eigenvalue first.
#[derive(Debug, Clone)]
pub struct Spectrum {
    /// Eigenvalues of `L`, ascending.
    pub values: Vec<f64>,
    /// Eigenvectors, row-major `[n, values.len()]`, unit columns.
    pub vectors: Vec<f32>,
    /// `‖L v − λ v‖` of each pair (how converged it is).
    pub residuals: Vec<f64>,
}

/// `y = M x` with `M = (I + D^-1/2 A D^-1/2) / 2`: same eigenvectors as `L`, eigenvalue
/// `1 − λ/2`, all in [0, 1], so the wanted low end of `L` is the top end of `M` (Lanczos
/// converges on extremes; the shift keeps the bipartite end at −1 away from it).
fn apply(g: &Csr, dis: &[f64], x: &[f32], y: &mut [f32]) {
    y.par_iter_mut()
        .enumerate()
        .with_min_len(1024)
        .for_each(|(v, out)| {
            let s: f64 = g.neighbors(v).iter().map(|u| dis[u] * x[u] as f64).sum();
            *out = (0.5 * x[v] as f64 + 0.5 * dis[v] * s) as f32;
        });
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.par_iter()
        .with_min_len(4096)
        .zip(b)
        .map(|(&x, &y)| x as f64 * y as f64)
        .sum()
}

fn axpy(alpha: f64, x: &[f32], y: &mut [f32]) {
    let a = alpha as f32;
    y.par_iter_mut()
        .with_min_len(4096)
        .zip(x)
        .for_each(|(y, &x)| *y += a * x);
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
    let n = g.num_nodes();
    if k + 1 > n {
        return Err(GraphError::BadNodeSet(format!(
            "{k} Laplacian eigenvectors after the first need at least {} nodes; the graph has {n}",
            k + 1
        )));
    }
    let m = steps.max(k + 1).min(n);
    let dis: Vec<f64> = (0..n)
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
    let mut basis: Vec<Vec<f32>> = Vec::with_capacity(m);
    let mut q: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let nq = dot(&q, &q).sqrt();
    q.iter_mut().for_each(|v| *v = (*v as f64 / nq) as f32);
    let (mut alpha, mut beta): (Vec<f64>, Vec<f64>) =
        (Vec::with_capacity(m), Vec::with_capacity(m));
    let mut w = vec![0f32; n];
    for j in 0..m {
        apply(g, &dis, &q, &mut w);
        let a = dot(&q, &w);
        axpy(-a, &q, &mut w);
        if let (Some(prev), Some(&b)) = (basis.last(), beta.last()) {
            axpy(-b, prev, &mut w);
        }
        basis.push(std::mem::take(&mut q));
        alpha.push(a);
        // Full reorthogonalisation, twice ("twice is enough"): without it the Ritz vectors
        // of a long run pick up ghost copies of converged eigenvalues.
        for _ in 0..2 {
            for b in &basis {
                let c = dot(b, &w);
                axpy(-c, b, &mut w);
            }
        }
        let b = dot(&w, &w).sqrt();
        if j + 1 == m {
            beta.push(b);
            break;
        }
        if b < 1e-8 {
            // An invariant subspace: restart with a fresh vector orthogonal to the basis.
            let mut r: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            for _ in 0..2 {
                for bv in &basis {
                    let c = dot(bv, &r);
                    axpy(-c, bv, &mut r);
                }
            }
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
            q = w.iter().map(|&v| (v as f64 / b) as f32).collect();
        }
    }
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
    let picked: Vec<usize> = order.into_iter().skip(1).take(k).collect();
    let mut vectors = vec![0f32; n * k];
    let mut values = Vec::with_capacity(k);
    for (c, &idx) in picked.iter().enumerate() {
        let s = eig.eigenvectors.column(idx);
        let mut y = vec![0f32; n];
        for (i, b) in basis.iter().enumerate() {
            axpy(s[i], b, &mut y);
        }
        let ny = dot(&y, &y).sqrt().max(1e-30);
        for (v, yv) in y.iter().enumerate() {
            vectors[v * k + c] = (*yv as f64 / ny) as f32;
        }
        values.push(2.0 * (1.0 - eig.eigenvalues[idx]));
    }
    // Residuals measured directly: ‖L v − λ v‖ = 2‖M v − μ v‖.
    let mut residuals = Vec::with_capacity(k);
    let mut col = vec![0f32; n];
    let mut mv = vec![0f32; n];
    for (c, &lam) in values.iter().enumerate() {
        for v in 0..n {
            col[v] = vectors[v * k + c];
        }
        apply(g, &dis, &col, &mut mv);
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
