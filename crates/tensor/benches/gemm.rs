//! GEMM throughput of the CPU backend (not a test): GFLOP/s on the shapes GNN layers use,
//! against an estimate of the machine's peak, as JSON lines.
//! Peak estimate: cores × clock × 32 f32 FLOP/cycle (two 256-bit FMA pipes per core, as on
//! AMD Zen 3/4: 2 pipes × 8 lanes × 2 FLOP per FMA); the clock is read from /proc/cpuinfo.

use std::time::Instant;

use scalegnn_tensor::{sgemm, Matrix};

fn clock_ghz() -> f64 {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("cpu MHz"))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |mhz| mhz / 1000.0)
}

fn main() {
    let threads: usize = std::env::var("MATMUL_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let peak = threads as f64 * clock_ghz() * 32.0;
    // (m, k, n, transpose a, transpose b): forward x·W, weight gradient xᵀ·g, input gradient g·Wᵀ.
    let shapes = [
        (100_000, 100, 16, false, false),
        (100, 100_000, 16, true, false),
        (100_000, 16, 100, false, true),
        (60_000, 256, 256, false, false),
        (256, 60_000, 256, true, false),
        (400_000, 100, 256, false, false),
    ];
    for (m, k, n, ta, tb) in shapes {
        let a = if ta {
            Matrix::from_vec(k, m, vec![0.5; m * k])
        } else {
            Matrix::from_vec(m, k, vec![0.5; m * k])
        };
        let b = if tb {
            Matrix::from_vec(n, k, vec![0.25; k * n])
        } else {
            Matrix::from_vec(k, n, vec![0.25; k * n])
        };
        let mut c = Matrix::zeros(m, n);
        sgemm(ta, tb, 1.0, &a, &b, 0.0, &mut c);
        let reps = 5;
        let t = Instant::now();
        for _ in 0..reps {
            sgemm(ta, tb, 1.0, &a, &b, 0.0, &mut c);
        }
        let s = t.elapsed().as_secs_f64() / reps as f64;
        let gflops = 2.0 * (m * k * n) as f64 / s / 1e9;
        println!(
            "{{\"metric\": \"gemm_gflops\", \"value\": {gflops:.1}, \"unit\": \"GFLOP/s\", \"engine\": \"scalegnn\", \"shape\": \"{m}x{k}x{n}\", \"ta\": {ta}, \"tb\": {tb}, \"ms\": {:.2}, \"peak_estimate_gflops\": {peak:.0}, \"fraction_of_peak\": {:.2}, \"threads\": {threads}}}",
            s * 1e3,
            gflops / peak
        );
    }
}
