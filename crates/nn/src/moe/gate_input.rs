//! SAGMM's gate input, computed once per dataset: `x_mix = (x + mean_1hop(x) + mean_2hop(x)) / 3`
//! concatenated with k Laplacian eigenvectors (the 2nd to (k+1)th smallest of the
//! symmetric-normalised Laplacian, random sign), rescaled so their mean |entry| equals
//! x_mix's: the gate sees both what a node's neighbourhood looks like and where it sits.
//! `gate_features` computes it in memory; the streaming builder of the derived table
//! (`scalegnn_loader::derived`) shares the pieces below so both give the same values.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use scalegnn_graph::{laplacian_eigenvectors, Csr, GraphError, Spectrum};
use scalegnn_tensor::Matrix;

/// Version of the gate input's definition: bump it whenever the values change (formula,
/// solver, order of summation), so tables keyed by it are rebuilt rather than reused.
pub const VERSION: u32 = 2;

/// Seed of the eigen-solve (its start vector) and of the eigenvectors' signs.
pub const DEFAULT_EIG_SEED: u64 = 0;

/// Lanczos steps for `k` eigenvectors: enough for the low end of graphs like the products
/// preset to converge to small residuals (reported), bounded so memory stays `steps · n`.
pub fn default_eig_steps(k: usize) -> usize {
    (4 * k + 40).max(64)
}

/// Adds to `acc` the sum of |value| over the first `cols` values of each row of `rows`
/// (`width` values each): each row summed in f64, then the rows added one after the other,
/// so the total does not depend on how the rows were split into chunks (the streaming
/// builder sees them a chunk at a time).
pub fn add_abs_sum(acc: &mut f64, rows: &[f32], width: usize, cols: usize) {
    if width == 0 {
        return;
    }
    let sums: Vec<f64> = rows
        .par_chunks(width)
        .with_min_len(1024)
        .map(|r| r[..cols].iter().map(|v| v.abs() as f64).sum())
        .collect();
    for s in sums {
        *acc += s;
    }
}

/// The factor giving the eigenvector columns x_mix's mean |entry|, from the sums of |value|
/// over x_mix (`mix_count` values) and over the eigenvectors (`eig_count` values).
pub fn eig_scale(mix_abs: f64, mix_count: usize, eig_abs: f64, eig_count: usize) -> f64 {
    let (mix, eig) = (
        mix_abs / mix_count.max(1) as f64,
        eig_abs / eig_count.max(1) as f64,
    );
    if eig > 0.0 {
        mix / eig
    } else {
        1.0
    }
}

/// The factor of each of `k_have` eigenvector columns: `scale` with a random sign.
pub fn eig_signs(seed: u64, k_have: usize, scale: f64) -> Vec<f64> {
    // An eigenvector's sign is arbitrary: draw it, so no run depends on the solver's choice.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5167);
    (0..k_have)
        .map(|_| if rng.random_bool(0.5) { scale } else { -scale })
        .collect()
}

/// Fills columns `first_col..first_col + factors.len()` of each row of `out` (rows of
/// `width`) with the matching row of `vectors` (`factors.len()` values a row) times the
/// column's factor.
pub fn put_eig_columns(
    out: &mut [f32],
    width: usize,
    first_col: usize,
    vectors: &[f32],
    factors: &[f64],
) {
    let k = factors.len();
    if width == 0 || k == 0 {
        return;
    }
    out.par_chunks_mut(width)
        .zip(vectors.par_chunks(k))
        .with_min_len(1024)
        .for_each(|(o, e)| {
            for ((o, &e), &s) in o[first_col..first_col + k].iter_mut().zip(e).zip(factors) {
                *o = (e as f64 * s) as f32;
            }
        });
}

/// Row v of the result is the mean of `x`'s rows over v's in-neighbours (zero when none).
fn mean_neighbours(g: &Csr, x: &Matrix) -> Matrix {
    let f = x.cols;
    let mut out = Matrix::zeros(x.rows, f);
    out.data
        .par_chunks_mut(f.max(1))
        .with_min_len(256)
        .enumerate()
        .for_each(|(v, o)| {
            let nb = g.neighbors(v);
            for u in nb.iter() {
                for (o, s) in o.iter_mut().zip(x.row(u)) {
                    *o += s;
                }
            }
            let inv = 1.0 / nb.len().max(1) as f32;
            o.iter_mut().for_each(|o| *o *= inv);
        });
    out
}

/// The gate input `[n, F + k]` for features `x` (`[n, F]`) and the spectrum it used. A
/// graph with at most k nodes has fewer than k eigenvectors after the first: the missing
/// columns are zero, so the width (and the model built for it) does not depend on the graph.
pub fn gate_features(
    g: &Csr,
    x: &Matrix,
    k: usize,
    steps: usize,
    seed: u64,
) -> Result<(Matrix, Option<Spectrum>), GraphError> {
    let n = g.num_nodes();
    let f = x.cols;
    let m1 = mean_neighbours(g, x);
    let m2 = mean_neighbours(g, &m1);
    let mut out = Matrix::zeros(n, f + k);
    out.data
        .par_chunks_mut(f + k)
        .enumerate()
        .for_each(|(v, o)| {
            for (j, o) in o[..f].iter_mut().enumerate() {
                *o = (x.row(v)[j] + m1.row(v)[j] + m2.row(v)[j]) / 3.0;
            }
        });
    if k == 0 {
        return Ok((out, None));
    }
    let k_have = k.min(n.saturating_sub(1));
    if k_have == 0 {
        return Ok((out, None));
    }
    let sp = laplacian_eigenvectors(g, k_have, steps, seed)?;
    let (mut mix_abs, mut eig_abs) = (0.0, 0.0);
    add_abs_sum(&mut mix_abs, &out.data, f + k, f);
    add_abs_sum(&mut eig_abs, &sp.vectors, k_have, k_have);
    let scale = eig_scale(mix_abs, n * f, eig_abs, n * k_have);
    // Columns f + k_have.. stay zero when the graph is too small for k.
    put_eig_columns(
        &mut out.data,
        f + k,
        f,
        &sp.vectors,
        &eig_signs(seed, k_have, scale),
    );
    Ok((out, Some(sp)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use scalegnn_graph::CsrBuilder;

    #[test]
    fn mixes_one_and_two_hop_means_and_scales_the_eigenvectors() {
        // Path 0 - 1 - 2 - 3 - 4 - 5.
        let g = CsrBuilder::new()
            .undirected(true)
            .build(&[0u32, 1, 2, 3, 4], &[1u32, 2, 3, 4, 5])
            .unwrap()
            .csr;
        let x = Matrix::from_vec(6, 1, vec![6.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let (gi, sp) = gate_features(&g, &x, 2, 6, 1).unwrap();
        assert_eq!((gi.rows, gi.cols), (6, 3));
        // Node 0: x = 6; 1-hop mean = x1 = 0; 2-hop mean = mean over {1} of (mean of {0, 2}) = 3.
        assert!((gi.row(0)[0] - 3.0).abs() < 1e-6, "{:?}", gi.row(0));
        // Node 1: x = 0; 1-hop mean = (6 + 0)/2 = 3; 2-hop = mean(m1[0], m1[2]) = (0 + 0)/2.
        assert!((gi.row(1)[0] - 1.0).abs() < 1e-6);
        let mix: f64 = (0..6).map(|v| gi.row(v)[0].abs() as f64).sum::<f64>() / 6.0;
        let eig: f64 = (0..6)
            .flat_map(|v| gi.row(v)[1..].to_vec())
            .map(|e| e.abs() as f64)
            .sum::<f64>()
            / 12.0;
        assert!((mix - eig).abs() < 1e-4, "{mix} vs {eig}");
        // The path's Laplacian spectrum: 1 − cos(πj/5) for j = 1, 2.
        let sp = sp.unwrap();
        for (j, &l) in sp.values.iter().enumerate() {
            let want = 1.0 - (std::f64::consts::PI * (j + 1) as f64 / 5.0).cos();
            assert!((l - want).abs() < 1e-4, "{l} vs {want}");
        }
    }
}
