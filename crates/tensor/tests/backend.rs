//! One conformance suite for every `Backend`: each kernel against a naive host reference.
//! A future device backend runs the same `conformance` function.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::backend::{Act, AdamStep};
use scalegnn_tensor::{Backend, CpuBackend, Matrix, SparseMat};

fn rand(r: usize, c: usize, rng: &mut Xoshiro256PlusPlus) -> Matrix {
    Matrix::from_vec(
        r,
        c,
        (0..r * c).map(|_| rng.random_range(-1.0..1.0)).collect(),
    )
}

fn close(a: &Matrix, b: &Matrix, tol: f32, what: &str) {
    assert_eq!((a.rows, a.cols), (b.rows, b.cols), "{what}: shape");
    for (k, (x, y)) in a.data.iter().zip(&b.data).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{k}]: {x} vs {y}"
        );
    }
}

fn check_sgemm<B: Backend>(be: &B, rng: &mut Xoshiro256PlusPlus) {
    let (m, k, n) = (37, 19, 23);
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = if ta { rand(k, m, rng) } else { rand(m, k, rng) };
        let b = if tb { rand(n, k, rng) } else { rand(k, n, rng) };
        let c0 = rand(m, n, rng);
        let mut want = c0.clone();
        for i in 0..m {
            for j in 0..n {
                let s: f32 = (0..k)
                    .map(|t| {
                        let av = if ta {
                            a.data[t * m + i]
                        } else {
                            a.data[i * k + t]
                        };
                        let bv = if tb {
                            b.data[j * k + t]
                        } else {
                            b.data[t * n + j]
                        };
                        av * bv
                    })
                    .sum();
                want.data[i * n + j] = 0.5 * s + 2.0 * c0.data[i * n + j];
            }
        }
        let mut c = be.upload(&c0);
        be.sgemm(ta, tb, 0.5, &be.upload(&a), &be.upload(&b), 2.0, &mut c);
        close(&be.download(&c), &want, 1e-4, "sgemm");
    }
}

fn check_sparse_and_rows<B: Backend>(be: &B, rng: &mut Xoshiro256PlusPlus) {
    let a = SparseMat::new(
        3,
        4,
        vec![0, 2, 2, 5],
        vec![0, 3, 1, 2, 3],
        vec![0.5, -1.0, 2.0, 1.0, 0.25],
    );
    let x = rand(4, 5, rng);
    let dense = a.to_dense();
    let mut want = Matrix::zeros(3, 5);
    for i in 0..3 {
        for j in 0..5 {
            want.data[i * 5 + j] = (0..4)
                .map(|t| dense.data[i * 4 + t] * x.data[t * 5 + j])
                .sum();
        }
    }
    let mut out = be.alloc(3, 5);
    be.spmm(&a, &be.upload(&x), &mut out, false);
    close(&be.download(&out), &want, 1e-5, "spmm");
    be.spmm(&a, &be.upload(&x), &mut out, true);
    let twice = Matrix::from_vec(3, 5, want.data.iter().map(|v| 2.0 * v).collect());
    close(&be.download(&out), &twice, 1e-5, "spmm accumulate");

    let src = rand(6, 3, rng);
    let idx = [4, 0, 4, 5];
    let mut g = be.alloc(4, 3);
    be.gather_rows(&be.upload(&src), &idx, &mut g);
    let g = be.download(&g);
    for (r, &i) in idx.iter().enumerate() {
        assert_eq!(g.row(r), src.row(i), "gather_rows row {r}");
    }
    let mut s = be.alloc(6, 3);
    be.scatter_add_rows(&be.upload(&g), &idx, &mut s);
    let s = be.download(&s);
    for j in 0..3 {
        assert!(
            (s.data[12 + j] - 2.0 * src.data[12 + j]).abs() < 1e-6,
            "scatter_add_rows"
        );
        assert_eq!(s.data[3 + j], 0.0, "scatter_add_rows: untouched row");
    }
}

fn check_elementwise<B: Backend>(be: &B, rng: &mut Xoshiro256PlusPlus) {
    let x = rand(5, 4, rng);
    let bias = rand(1, 4, rng);
    for act in [Act::Identity, Act::Relu] {
        let mut y = be.upload(&x);
        be.bias_act(&mut y, &be.upload(&bias), act);
        let want: Vec<f32> = (0..20)
            .map(|t| {
                let v = x.data[t] + bias.data[t % 4];
                if act == Act::Relu {
                    v.max(0.0)
                } else {
                    v
                }
            })
            .collect();
        close(
            &be.download(&y),
            &Matrix::from_vec(5, 4, want),
            1e-6,
            "bias_act",
        );
    }

    let x = rand(200, 100, rng);
    let (mut o1, mut m1) = (be.alloc(200, 100), be.alloc(200, 100));
    let (mut o2, mut m2) = (be.alloc(200, 100), be.alloc(200, 100));
    be.dropout(&be.upload(&x), 0.3, 42, &mut o1, &mut m1);
    be.dropout(&be.upload(&x), 0.3, 42, &mut o2, &mut m2);
    let (o1, m1) = (be.download(&o1), be.download(&m1));
    assert_eq!(
        m1.data,
        be.download(&m2).data,
        "dropout: same seed, same mask"
    );
    let kept = m1.data.iter().filter(|&&v| v != 0.0).count() as f64 / m1.data.len() as f64;
    assert!((kept - 0.7).abs() < 0.02, "dropout keep rate {kept}");
    for ((o, x), m) in o1.data.iter().zip(&x.data).zip(&m1.data) {
        assert!(
            *m == 0.0 || (*m - 1.0 / 0.7).abs() < 1e-6,
            "dropout mask value {m}"
        );
        assert!((o - x * m).abs() < 1e-6, "dropout output");
    }

    let x = rand(4, 6, rng);
    let mut lp = be.alloc(4, 6);
    be.log_softmax(&be.upload(&x), &mut lp);
    let lp = be.download(&lp);
    for i in 0..4 {
        let z: f32 = x.row(i).iter().map(|v| v.exp()).sum();
        for j in 0..6 {
            let want = x.data[i * 6 + j] - z.ln();
            assert!((lp.data[i * 6 + j] - want).abs() < 1e-5, "log_softmax");
        }
    }
    let labels = [1, 5, 0, 2];
    let loss = be.nll(&be.upload(&lp), &[0, 2, 3], &labels);
    let want = -(lp.data[1] + lp.data[12] + lp.data[20]) / 3.0;
    assert!((loss - want).abs() < 1e-6, "nll {loss} vs {want}");
}

fn check_adam<B: Backend>(be: &B, rng: &mut Xoshiro256PlusPlus) {
    let (w0, g) = (rand(3, 3, rng), rand(3, 3, rng));
    let h = AdamStep {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.1,
        decoupled: false,
        bias_correction1: 0.1,
        bias_correction2: 0.001,
    };
    let (mut w, mut m, mut v) = (be.upload(&w0), be.alloc(3, 3), be.alloc(3, 3));
    be.adam_step(&mut w, &be.upload(&g), &mut m, &mut v, &h);
    let w = be.download(&w);
    for t in 0..9 {
        let gk = g.data[t] + 0.1 * w0.data[t];
        let (mk, vk) = (0.1 * gk, 0.001 * gk * gk);
        let want = w0.data[t] - 0.01 * (mk / 0.1) / ((vk / 0.001).sqrt() + 1e-8);
        assert!(
            (w.data[t] - want).abs() < 1e-5,
            "adam: {} vs {want}",
            w.data[t]
        );
    }
}

/// The suite a backend must pass.
fn conformance<B: Backend>(be: &B) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    check_sgemm(be, &mut rng);
    check_sparse_and_rows(be, &mut rng);
    check_elementwise(be, &mut rng);
    check_adam(be, &mut rng);
}

#[test]
fn cpu_backend_conforms() {
    conformance(&CpuBackend);
}
