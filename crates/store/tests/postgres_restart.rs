//! PostgresStore while its server goes away: stopped mid-read (bounded retries, then an error
//! naming the server and the attempt count; never wrong rows) and restarted mid-read (retries
//! on fresh connections ride it out). This test stops and starts the server with
//! `$SCALEGNN_PG_CTL` (set by `.ci/run`), so it is alone in its own test binary: no other
//! test runs while the server is down.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use scalegnn_store::conformance::random_features;
use scalegnn_store::{
    drop_postgres_store, write_store, Codec, FeatureStore, PostgresStore, RetryPolicy, SliceRows,
    StoreError, StoreOptions,
};

const N: usize = 20_000;
const DIM: usize = 16;

fn pg_ctl(ctl: &str, args: &[&str]) {
    let out = Command::new(ctl).args(args).output().expect("run pg_ctl");
    assert!(
        out.status.success(),
        "{ctl} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts the server again if the test fails while it is down.
struct Restarter<'a>(&'a str);

impl Drop for Restarter<'_> {
    fn drop(&mut self) {
        let _ = Command::new(self.0).args(["start"]).output();
    }
}

/// Gathers `ids` and checks every value bit for bit; an error must be about the server.
fn gather_checked(store: &PostgresStore, ids: &[u32], x: &[f32]) -> Result<(), StoreError> {
    let mut out = vec![f32::NAN; ids.len() * DIM];
    store.gather(ids, &mut out)?;
    for (i, &id) in ids.iter().enumerate() {
        let want = &x[id as usize * DIM..(id as usize + 1) * DIM];
        let got = &out[i * DIM..(i + 1) * DIM];
        assert!(
            want.iter()
                .zip(got)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "node {id}: gather returned Ok with wrong values"
        );
    }
    Ok(())
}

fn batch(seed: u64) -> Vec<u32> {
    let mut s = seed;
    (0..6000)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % N as u64) as u32
        })
        .collect()
}

#[test]
fn server_stopped_or_restarted_mid_read() {
    let (Ok(url), Ok(ctl)) = (
        std::env::var("SCALEGNN_PG_URL"),
        std::env::var("SCALEGNN_PG_CTL"),
    ) else {
        println!("skipping: SCALEGNN_PG_URL not set (or SCALEGNN_PG_CTL, to stop and start it)");
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("restart");
    std::fs::create_dir(&dir).unwrap();
    let x = random_features(N, DIM, 3);
    write_store(
        &dir,
        "postgres",
        Codec::F32,
        &SliceRows::new(&x, DIM).unwrap(),
    )
    .unwrap();
    let host = url.rsplit_once('@').map(|(_, h)| h).unwrap_or(&url);
    let host = host.split('/').next().unwrap().to_string();

    // 1. Stopped mid-read: readers see exact rows or a server error, never wrong rows; with
    //    the server down a gather fails after exactly its 5 attempts, naming the server.
    let policy = RetryPolicy {
        attempts: 5,
        first_backoff: Duration::from_millis(50),
    };
    let store = PostgresStore::open(&dir, Some(Codec::F32), &StoreOptions::default())
        .unwrap()
        .with_retry(policy);
    gather_checked(&store, &batch(1), &x).unwrap();
    let guard = Restarter(&ctl);
    let done = AtomicBool::new(false);
    let (ok, failed) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let (mut ok, mut failed) = (0, 0);
            let mut k = 0;
            while !done.load(Ordering::Relaxed) {
                k += 1;
                match gather_checked(&store, &batch(k), &x) {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        assert!(
                            matches!(
                                e,
                                StoreError::PgUnavailable { .. } | StoreError::Postgres { .. }
                            ),
                            "{e}"
                        );
                        failed += 1;
                    }
                }
            }
            (ok, failed)
        });
        std::thread::sleep(Duration::from_millis(300));
        pg_ctl(&ctl, &["stop", "-m", "fast"]);
        std::thread::sleep(Duration::from_millis(1500));
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap()
    });
    println!("while stopping: {ok} gathers ok, {failed} failed");
    assert!(failed > 0, "no gather noticed the stopped server");
    let t0 = Instant::now();
    let e = gather_checked(&store, &batch(99), &x).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, StoreError::PgUnavailable { attempts: 5, .. }),
        "{msg}"
    );
    assert!(msg.contains(&host) && msg.contains("5 attempts"), "{msg}");
    // 50 + 100 + 200 + 400 ms of backoff: bounded.
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    // Back up: the same store reconnects by itself.
    pg_ctl(&ctl, &["start"]);
    std::mem::forget(guard);
    gather_checked(&store, &batch(100), &x).unwrap();

    // 2. Restarted mid-read: with a patient policy every gather succeeds, exactly.
    let patient = store.with_retry(RetryPolicy {
        attempts: 10,
        first_backoff: Duration::from_millis(50),
    });
    let done = AtomicBool::new(false);
    let slowest = std::thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (patient, done, x) = (&patient, &done, &x);
                s.spawn(move || {
                    let mut slowest = Duration::ZERO;
                    let mut k = 1000 * (r + 1);
                    while !done.load(Ordering::Relaxed) {
                        k += 1;
                        let t = Instant::now();
                        gather_checked(patient, &batch(k), x)
                            .unwrap_or_else(|e| panic!("gather across a restart failed: {e}"));
                        slowest = slowest.max(t.elapsed());
                    }
                    slowest
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let guard = Restarter(&ctl);
        pg_ctl(&ctl, &["restart", "-m", "fast"]);
        std::mem::forget(guard);
        std::thread::sleep(Duration::from_millis(500));
        done.store(true, Ordering::Relaxed);
        readers
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    });
    println!("slowest gather across the restart: {slowest:?}");
    let _ = drop_postgres_store(&dir, &StoreOptions::default());
}
