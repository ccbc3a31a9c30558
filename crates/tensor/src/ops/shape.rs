//! Shape ops: column concatenation (JK, MixHop) and scaling by a constant.

use rayon::prelude::*;

use crate::tape::{Backward, Ctx};
use crate::{Matrix, Tape, Var};

struct ConcatBack {
    parts: Vec<Var>,
}

impl Backward for ConcatBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        let mut off = 0;
        for &p in &self.parts {
            let w = cx.value(p).cols;
            if cx.needs(p) {
                let gp = cx.grad(p);
                gp.data
                    .par_chunks_mut(w.max(1))
                    .zip(g.data.par_chunks(g.cols.max(1)))
                    .for_each(|(d, s)| {
                        for (d, s) in d.iter_mut().zip(&s[off..off + w]) {
                            *d += s;
                        }
                    });
            }
            off += w;
        }
    }
}

struct ScaleBack {
    x: Var,
    alpha: f32,
}

impl Backward for ScaleBack {
    fn backward(&self, _out: Var, g: &Matrix, cx: &mut Ctx<'_>) {
        if cx.needs(self.x) {
            let a = self.alpha;
            cx.grad(self.x)
                .data
                .par_iter_mut()
                .zip(&g.data)
                .for_each(|(d, s)| *d += a * s);
        }
    }
}

impl Tape {
    /// Concatenates matrices with the same row count along columns.
    pub fn concat_cols(&mut self, parts: &[Var]) -> Var {
        let rows = self.value(parts[0]).rows;
        assert!(
            parts.iter().all(|&p| self.value(p).rows == rows),
            "concat_cols: row counts differ"
        );
        let cols: usize = parts.iter().map(|&p| self.value(p).cols).sum();
        let mut out = self.pool.take(rows, cols, false);
        let mut off = 0;
        for &p in parts {
            let v = &self.nodes[p.0].value;
            let w = v.cols;
            out.data
                .par_chunks_mut(cols.max(1))
                .zip(v.data.par_chunks(w.max(1)))
                .for_each(|(d, s)| {
                    d[off..off + w].copy_from_slice(s);
                });
            off += w;
        }
        let ng = parts.iter().any(|&p| self.needs(p));
        self.push_custom(
            Box::new(ConcatBack {
                parts: parts.to_vec(),
            }),
            out,
            ng,
        )
    }

    /// `alpha · x`.
    pub fn scale(&mut self, x: Var, alpha: f32) -> Var {
        let v = &self.nodes[x.0].value;
        let mut out = self.pool.take(v.rows, v.cols, false);
        out.data
            .par_iter_mut()
            .zip(&v.data)
            .for_each(|(o, s)| *o = alpha * s);
        let ng = self.needs(x);
        self.push_custom(Box::new(ScaleBack { x, alpha }), out, ng)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    use crate::tape::gradcheck::{check, rand_mat};
    use crate::ParamStore;

    #[test]
    fn concat_and_scale_gradients() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut p = ParamStore::default();
        let a = p.add("a", rand_mat(3, 2, &mut rng));
        let b = p.add("b", rand_mat(3, 4, &mut rng));
        let r = rand_mat(3, 6, &mut rng);
        check(&mut p, &|t, ps| {
            let (av, bv) = (t.param(ps, a), t.param(ps, b));
            let s = t.scale(bv, -1.5);
            let c = t.concat_cols(&[av, s]);
            t.weighted_sum(c, &r)
        });
    }
}
