//! Max aggregation over a sparse pattern (GraphSAGE-pool, GIN/PNA-style max): per output row
//! and column, the largest value among the row's neighbours. Weighted mean and sum
//! aggregation are `Tape::spmm` with the weights in the matrix.
//!
//! The forward pass is parallel over output rows and records, per output entry, which
//! neighbour won. The backward pass routes each gradient to that winner as a gather over the
//! reversed pattern (parallel over source rows), so it needs neither atomics nor locks.

use std::sync::Arc;

use rayon::prelude::*;

use crate::tape::{Backward, Ctx, Pool};
use crate::{Matrix, SparseMat, Tape, Var};

/// Argmax of an output entry whose row has no neighbours (no gradient flows).
const NONE: u32 = u32::MAX;

struct MaxBack {
    a: Arc<SparseMat>,
    x: Var,
    /// Winning source row per output entry, as u32 bit patterns in a pooled f32 buffer: the
    /// pool reuses it across steps (a fresh activation-sized buffer costs first-touch page
    /// faults on every step), and the bits are only ever copied, never computed with.
    arg: Matrix,
}

impl Backward for MaxBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        if !cx.needs(self.x) {
            return;
        }
        let a = &*self.a;
        let c = g.cols;
        if c == 0 {
            return;
        }
        // Reversed pattern (source row → output rows), by a counting sort over output rows
        // in ascending order: O(nnz), and the order lets repeated edges be skipped below.
        let mut ptr = vec![0usize; a.cols + 1];
        for &j in &a.indices {
            ptr[j as usize + 1] += 1;
        }
        for j in 0..a.cols {
            ptr[j + 1] += ptr[j];
        }
        let mut cursor = ptr.clone();
        let mut dst = vec![0u32; a.nnz()];
        for i in 0..a.rows {
            for &j in &a.indices[a.indptr[i]..a.indptr[i + 1]] {
                dst[cursor[j as usize]] = i as u32;
                cursor[j as usize] += 1;
            }
        }
        let arg = &self.arg.data;
        cx.grad(self.x)
            .data
            .par_chunks_mut(c)
            .with_min_len(64)
            .enumerate()
            .for_each(|(j, d)| {
                let mut prev = NONE;
                for &i in &dst[ptr[j]..ptr[j + 1]] {
                    // An edge listed twice still won only once.
                    if i == prev {
                        continue;
                    }
                    prev = i;
                    let i = i as usize;
                    let (am, gi) = (&arg[i * c..(i + 1) * c], &g.data[i * c..(i + 1) * c]);
                    // A bit mask, not a branch, so the loop vectorises (adding +0 elsewhere).
                    for ((d, am), gv) in d.iter_mut().zip(am).zip(gi) {
                        let m = ((am.to_bits() == j as u32) as u32).wrapping_neg();
                        *d += f32::from_bits(gv.to_bits() & m);
                    }
                }
            });
    }

    fn release(self: Box<Self>, pool: &mut Pool) {
        pool.give(self.arg);
    }
}

impl Tape {
    /// Max over neighbours: row `i` of the output is the columnwise max of the rows of `x`
    /// listed in row `i` of `a` (weights ignored), and 0 for a row without neighbours, as
    /// PyG's max aggregation. The gradient goes to the winning neighbour (the first on ties).
    pub fn spmm_max(&mut self, a: &Arc<SparseMat>, x: Var) -> Var {
        let xv = &self.nodes[x.0].value;
        assert_eq!(a.cols, xv.rows, "spmm_max: a.cols != x.rows");
        assert!(a.cols < NONE as usize, "spmm_max: too many source rows");
        let c = xv.cols;
        let mut out = self.pool.take(a.rows, c, false);
        let mut arg = self.pool.take(a.rows, c, false);
        if c > 0 {
            out.data
                .par_chunks_mut(c)
                .zip(arg.data.par_chunks_mut(c))
                .with_min_len(64)
                .enumerate()
                .for_each(|(i, (o, am))| {
                    let nb = &a.indices[a.indptr[i]..a.indptr[i + 1]];
                    let Some((&j0, rest)) = nb.split_first() else {
                        o.fill(0.0);
                        am.fill(f32::from_bits(NONE));
                        return;
                    };
                    o.copy_from_slice(xv.row(j0 as usize));
                    am.fill(f32::from_bits(j0));
                    for &j in rest {
                        // Bit masks rather than `if v > *o { .. }`: LLVM turns the branch (and
                        // even a select) into per-lane conditional stores, which made the
                        // forward ~2x slower than this form (maxps plus one blend).
                        for ((o, am), &v) in o.iter_mut().zip(am.iter_mut()).zip(xv.row(j as usize))
                        {
                            let m = ((v > *o) as u32).wrapping_neg();
                            *am = f32::from_bits((j & m) | (am.to_bits() & !m));
                            *o = f32::from_bits((v.to_bits() & m) | (o.to_bits() & !m));
                        }
                    }
                });
        }
        let ng = self.needs(x);
        self.push_custom(
            Box::new(MaxBack {
                a: a.clone(),
                x,
                arg,
            }),
            out,
            ng,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    use crate::tape::gradcheck::{check, rand_mat};
    use crate::{Matrix, ParamStore, SparseMat, Tape};

    /// Rows: 0 ← {1, 2}, 1 ← {} (empty), 2 ← {0, 0, 3} (a repeated edge), 3 ← {3}.
    fn pattern() -> Arc<SparseMat> {
        Arc::new(SparseMat::new(
            4,
            4,
            vec![0, 2, 2, 5, 6],
            vec![1, 2, 0, 0, 3, 3],
            vec![1.0; 6],
        ))
    }

    #[test]
    fn forward_matches_dense_max() {
        let a = pattern();
        let mut t = Tape::new(true);
        let x = t.input(&Matrix::from_vec(
            4,
            2,
            vec![1.0, -1.0, 2.0, -3.0, -5.0, 4.0, 0.5, 0.5],
        ));
        let y = t.spmm_max(&a, x);
        assert_eq!(
            t.value(y).data,
            vec![2.0, 4.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5]
        );
    }

    #[test]
    fn large_random_pattern_matches_serial() {
        // Enough rows for several parallel tasks; repeated edges and empty rows included.
        let (rows, src, c) = (700usize, 500usize, 7usize);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(13);
        let mut indptr = vec![0usize];
        let mut indices = Vec::new();
        for _ in 0..rows {
            for _ in 0..rng.random_range(0..6) {
                indices.push(rng.random_range(0..src as u32));
            }
            indptr.push(indices.len());
        }
        let w = vec![1.0; indices.len()];
        let a = Arc::new(SparseMat::new(rows, src, indptr, indices, w));
        let mut p = ParamStore::default();
        let xi = p.add("x", rand_mat(src, c, &mut rng));
        let r = rand_mat(rows, c, &mut rng);
        let mut t = Tape::new(true);
        let x = t.param(&p, xi);
        let y = t.spmm_max(&a, x);
        let l = t.weighted_sum(y, &r);
        t.backward(l, &mut p);
        let xv = &p.values[xi];
        let mut want_y = vec![0f32; rows * c];
        let mut want_g = vec![0f32; src * c];
        for i in 0..rows {
            let nb = &a.indices[a.indptr[i]..a.indptr[i + 1]];
            for k in 0..c {
                let Some(best) = nb.iter().map(|&j| j as usize).reduce(|b, j| {
                    if xv.data[j * c + k] > xv.data[b * c + k] {
                        j
                    } else {
                        b
                    }
                }) else {
                    continue;
                };
                want_y[i * c + k] = xv.data[best * c + k];
                want_g[best * c + k] += r.data[i * c + k];
            }
        }
        assert_eq!(t.value(y).data, want_y);
        for (a, b) in p.grads[xi].data.iter().zip(&want_g) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn gradients() {
        let a = pattern();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(12);
        // Distinct values 0.1 apart: no tie is within the finite-difference step.
        let mut vals: Vec<f32> = (0..12).map(|k| k as f32 * 0.1 - 0.6).collect();
        vals.shuffle(&mut rng);
        let mut p = ParamStore::default();
        let x = p.add("x", Matrix::from_vec(4, 3, vals));
        let r = rand_mat(4, 3, &mut rng);
        check(&mut p, &|t, ps| {
            let xv = t.param(ps, x);
            let h = t.spmm_max(&a, xv);
            t.weighted_sum(h, &r)
        });
    }
}
