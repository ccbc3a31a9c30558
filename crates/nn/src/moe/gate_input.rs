//! SAGMM's gate input, computed once per dataset: `x_mix = (x + mean_1hop(x) + mean_2hop(x)) / 3`
//! concatenated with k Laplacian eigenvectors (the 2nd to (k+1)th smallest of the
//! symmetric-normalised Laplacian, random sign), rescaled so their mean |entry| equals
//! x_mix's: the gate sees both what a node's neighbourhood looks like and where it sits.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use scalegnn_graph::{laplacian_eigenvectors, Csr, GraphError, Spectrum};
use scalegnn_tensor::Matrix;

/// Lanczos steps for `k` eigenvectors: enough for the low end of graphs like the products
/// preset to converge to small residuals (reported), bounded so memory stays `steps · n`.
pub fn default_eig_steps(k: usize) -> usize {
    (4 * k + 40).max(64)
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
    let mean_abs = |it: &mut dyn Iterator<Item = f32>, count: usize| {
        it.map(|v| v.abs() as f64).sum::<f64>() / count.max(1) as f64
    };
    let mix_abs = mean_abs(&mut (0..n).flat_map(|v| out.row(v)[..f].to_vec()), n * f);
    let eig_abs = mean_abs(&mut sp.vectors.iter().copied(), n * k_have);
    let scale = if eig_abs > 0.0 {
        mix_abs / eig_abs
    } else {
        1.0
    };
    // An eigenvector's sign is arbitrary: draw it, so no run depends on the solver's choice.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5167);
    let signs: Vec<f64> = (0..k_have)
        .map(|_| if rng.random_bool(0.5) { scale } else { -scale })
        .collect();
    out.data
        .par_chunks_mut(f + k)
        .enumerate()
        .for_each(|(v, o)| {
            for c in 0..k_have {
                o[f + c] = (sp.vectors[v * k_have + c] as f64 * signs[c]) as f32;
            }
        });
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
