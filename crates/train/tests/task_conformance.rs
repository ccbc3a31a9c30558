//! Task conformance: what every `Task` must give the trainer, checked on each node task
//! (single-label, binary, multi-label, regression). A new task adds one `case` here.

use std::sync::Arc;

use scalegnn_tensor::{Matrix, Tape};
use scalegnn_train::{Classification, MultiLabel, Prediction, Regression, Task};

/// A task, the number of items it has, and an output that predicts every item exactly.
struct Case {
    name: &'static str,
    task: Box<dyn Task>,
    items: usize,
    perfect: Matrix,
}

/// Deterministic pseudo-random values in [-2, 2).
fn noise(n: usize, salt: u64) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let h = (i ^ salt)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(29)
                .wrapping_mul(0xBF58_476D_1CE4_E5B9);
            (h >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
        })
        .collect()
}

fn cases() -> Vec<Case> {
    let n = 60;
    let mut out = Vec::new();
    for classes in [2usize, 5] {
        let labels: Vec<u32> = (0..n as u32)
            .map(|i| (i * 7 + 3) % classes as u32)
            .collect();
        let mut perfect = Matrix::zeros(n, classes);
        for (i, &y) in labels.iter().enumerate() {
            perfect.row_mut(i)[y as usize] = 6.0;
        }
        out.push(Case {
            name: if classes == 2 {
                "binary"
            } else {
                "multi-class"
            },
            task: Box::new(Classification {
                labels: Arc::new(labels),
                classes,
            }),
            items: n,
            perfect,
        });
    }
    let c = 3;
    let targets = Matrix::from_vec(
        n,
        c,
        (0..n * c)
            .map(|k| ((k * 5 + k / 7) % 3 == 0) as u8 as f32)
            .collect(),
    );
    let perfect = Matrix::from_vec(
        n,
        c,
        targets
            .data
            .iter()
            .map(|&t| if t > 0.5 { 6.0 } else { -6.0 })
            .collect(),
    );
    out.push(Case {
        name: "multi-label",
        task: Box::new(MultiLabel {
            targets: Arc::new(targets),
        }),
        items: n,
        perfect,
    });
    let y = Matrix::from_vec(
        n,
        2,
        noise(2 * n, 9).iter().map(|v| 100.0 + 30.0 * v).collect(),
    );
    let train: Vec<u32> = (0..n as u32).step_by(2).collect();
    let task = Regression::new(y.clone(), &train);
    // The standardised targets, recovered through predict's inverse: out = (y - mean) / std.
    let zero = Matrix::zeros(n, 2);
    let unit = Matrix::from_vec(n, 2, vec![1.0; 2 * n]);
    let (Prediction::Floats(mean, _), Prediction::Floats(one, _)) =
        (task.predict(&zero, false), task.predict(&unit, false))
    else {
        panic!("regression predicts values")
    };
    let perfect = Matrix::from_vec(
        n,
        2,
        (0..2 * n)
            .map(|k| (y.data[k] - mean[k]) / (one[k] - mean[k]))
            .collect(),
    );
    out.push(Case {
        name: "regression",
        task: Box::new(task),
        items: n,
        perfect,
    });
    out
}

fn get(scores: &[(&'static str, f64)], name: &str) -> Option<f64> {
    scores.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

#[test]
fn every_task_meets_the_contract() {
    for case in cases() {
        let (name, task) = (case.name, case.task.as_ref());
        let items: Vec<u32> = (0..case.items as u32).rev().collect();
        let out_dim = task.out_dim();
        assert!(out_dim > 0, "{name}: output width");
        assert_eq!(case.perfect.cols, out_dim, "{name}: fixture width");
        let metrics = task.metrics();
        assert!(!metrics.is_empty(), "{name}: a selection metric");

        let out = Matrix::from_vec(items.len(), out_dim, noise(items.len() * out_dim, 1));
        let scores = task.scores(&out, &items);
        for m in metrics.iter().chain(&["loss"]) {
            let v = get(&scores, m).unwrap_or_else(|| panic!("{name}: scores lack {m}"));
            assert!(v.is_finite(), "{name}: {m} = {v}");
        }
        for m in metrics {
            let e = task.epoch_scores(&out, &items, m);
            let (a, b) = (get(&e, m), get(&scores, m));
            assert_eq!(a, b, "{name}: epoch scores give the selection metric {m}");
            assert!(
                get(&e, "loss").is_some(),
                "{name}: epoch scores give the loss"
            );
        }

        // The tape's loss is the loss the scores report.
        let mut tape = Tape::new(true);
        let v = tape.input(&out);
        let loss = task.loss(&mut tape, v, &items);
        let l = tape.value(loss);
        assert_eq!((l.rows, l.cols), (1, 1), "{name}: scalar loss");
        let want = get(&scores, "loss").unwrap();
        assert!(
            (l.data[0] as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
            "{name}: tape loss {} vs scored loss {want}",
            l.data[0]
        );

        // Scores follow the items, not the row order: shuffling both together changes nothing.
        let order: Vec<usize> = (0..items.len()).map(|k| (k * 17) % items.len()).collect();
        let mut shuffled = Matrix::zeros(items.len(), out_dim);
        for (r, &k) in order.iter().enumerate() {
            shuffled.row_mut(r).copy_from_slice(out.row(k));
        }
        let sitems: Vec<u32> = order.iter().map(|&k| items[k]).collect();
        let again = task.scores(&shuffled, &sitems);
        for m in metrics {
            let (a, b) = (get(&again, m).unwrap(), get(&scores, m).unwrap());
            assert!((a - b).abs() < 1e-9, "{name}: {m} depends on row order");
        }

        // An output that predicts every item exactly scores as well as the metric allows.
        let all: Vec<u32> = (0..case.items as u32).collect();
        let best = task.scores(&case.perfect, &all);
        for m in metrics {
            let v = get(&best, m).unwrap();
            let ideal = match *m {
                "mse" | "mae" | "rmse" => 0.0,
                _ => 1.0,
            };
            assert!(
                (v - ideal).abs() < 1e-3,
                "{name}: perfect output gives {m} = {v}"
            );
        }
        assert!(
            get(&best, "loss").unwrap() < get(&scores, "loss").unwrap(),
            "{name}: a perfect output has the lower loss"
        );

        // Predictions: one per item (per label for multi-label), probabilities in [0, 1].
        let n = items.len();
        match task.predict(&out, false) {
            Prediction::Ints(v, shape) => {
                assert_eq!(shape.iter().product::<usize>(), v.len(), "{name}");
                assert_eq!(shape[0], n, "{name}: one prediction per item");
            }
            Prediction::Floats(v, shape) => {
                assert_eq!(shape, vec![n, out_dim], "{name}");
                assert_eq!(v.len(), n * out_dim);
            }
        }
        if task.has_probabilities() {
            let Prediction::Floats(p, shape) = task.predict(&out, true) else {
                panic!("{name}: probabilities are floats")
            };
            assert_eq!(shape, vec![n, out_dim], "{name}");
            assert!(p.iter().all(|v| (0.0..=1.0).contains(v)), "{name}");
        }
    }
}
