//! The fuzz smoke run CI does on every change: each target replays its seed corpus and every
//! regression input (inputs that once crashed, hung or stalled a reader: each must finish
//! within [`REGRESSION_DEADLINE`], and those in [`REFUSED`] must be refused with the error
//! named there), then runs a seeded, count-bounded mutation loop around the corpus. A panic
//! anywhere, caught by a reader or not (save the parquet decoder's, which the Parquet reader
//! contains by design), fails the test and saves the input under the target's temp dir; an
//! allocation above the limit aborts the binary, printing the input (`scalegnn_fuzz::alloc`).
//!
//! Coverage-guided runs of the same targets (libFuzzer, millions of executions) live in
//! `fuzz/`; figures and commands in `docs/reliability.md`.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::Duration;

use scalegnn_fuzz::alloc::CappedAlloc;
use scalegnn_fuzz::mutate::Mutator;
use scalegnn_fuzz::{Target, TARGETS};

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

thread_local! {
    /// Panics raised on this thread so far, counted by the hook even when a reader catches
    /// them.
    static PANICS: Cell<u64> = const { Cell::new(0) };
}

/// Panics raised inside the parquet decoder and caught by the Parquet reader.
static CONTAINED: AtomicU64 = AtomicU64::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Decoder panics the Parquet reader catches by design are contained, not
            // findings (`scalegnn_fuzz::raised_in_parquet`); counted for the summary line.
            if scalegnn_fuzz::raised_in_parquet(info.location()) {
                CONTAINED.fetch_add(1, Ordering::Relaxed);
                return;
            }
            PANICS.with(|p| p.set(p.get() + 1));
            default(info);
        }));
    });
}

/// Longest a regression input may take: they run in milliseconds once fixed, while the hangs
/// among them never end (a thread runs each, so a hang fails the test instead of stalling it).
const REGRESSION_DEADLINE: Duration = Duration::from_secs(30);

/// Regression inputs a reader must refuse, with a phrase of the error it must give: target,
/// file name, phrase. A finding that came back as a slow accept or a different error fails.
const REFUSED: &[(&str, &str, &str)] = &[
    (
        "parquet",
        "negative-chunk-offset.parquet",
        "claims bytes -276..+50, outside the file",
    ),
    (
        "parquet",
        "slow-footer-list-of-bools.parquet",
        "footer metadata (bytes 821..2090) at byte 1007: field 3 of ColumnMetaData is a list \
         of bool",
    ),
    (
        "parquet",
        "hang-page-header-skip-at-eof.parquet",
        "row group 0 column \"src\": page header at byte 4 runs past the end of the column chunk",
    ),
    (
        "parquet",
        "dictionary-page-num-values-alloc.parquet",
        "row group 0 column \"dst\": page header at byte 63 declares a dictionary of 853920663 \
         values",
    ),
];

/// Files of `dir` (sorted by name; none when it does not exist), README files aside.
fn inputs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = rd
        .map(|e| e.expect("read corpus dir").path())
        .filter(|p| p.is_file() && p.file_name().is_none_or(|n| n != "README.md"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).expect("read corpus file");
            (p, b)
        })
        .collect()
}

/// Runs `data` through `target`; a panic (even one a reader caught) is a finding, returned as
/// the path the input was saved to.
fn run(target: &Target, data: &[u8]) -> Result<scalegnn_fuzz::Outcome, PathBuf> {
    let before = PANICS.with(Cell::get);
    let r = std::panic::catch_unwind(|| (target.run)(data));
    if r.is_ok() && PANICS.with(Cell::get) == before {
        return Ok(r.unwrap_or(Ok(())));
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("fuzz-findings")
        .join(target.name);
    std::fs::create_dir_all(&dir).expect("create findings dir");
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let p = dir.join(format!("panic-{hash:016x}"));
    std::fs::write(&p, data).expect("save finding");
    Err(p)
}

/// [`run`] on a thread of its own, failing when it does not finish within
/// [`REGRESSION_DEADLINE`] (the thread of a hang is left running; the test fails anyway).
fn run_with_deadline(
    target: &'static Target,
    data: Vec<u8>,
) -> Result<scalegnn_fuzz::Outcome, PathBuf> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(run(target, &data));
    });
    rx.recv_timeout(REGRESSION_DEADLINE).unwrap_or_else(|_| {
        panic!(
            "{}: a regression input did not finish within {REGRESSION_DEADLINE:?}",
            target.name
        )
    })
}

/// Replays the corpus (every seed must be accepted: a seed the reader refuses no longer
/// reaches the code behind the check that refused it) and the regressions, then `mutants`
/// mutated inputs.
fn smoke(name: &str, mutants: usize) {
    count_panics();
    let target = TARGETS
        .iter()
        .find(|t| t.name == name)
        .expect("target listed in TARGETS");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = inputs(&root.join("corpus").join(name));
    assert!(!corpus.is_empty(), "no seed corpus for {name}");
    let mut findings = Vec::new();
    for (p, data) in &corpus {
        match run(target, data) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{name}: seed {} is refused: {e}", p.display()),
            Err(saved) => findings.push(saved),
        }
    }
    for (p, data) in inputs(&root.join("regressions").join(name)) {
        let file = p.file_name().map(|n| n.to_string_lossy().into_owned());
        let outcome = match run_with_deadline(target, data) {
            Ok(outcome) => outcome,
            Err(saved) => {
                findings.push(saved);
                continue;
            }
        };
        let expected = REFUSED
            .iter()
            .find(|(t, f, _)| *t == name && Some(*f) == file.as_deref());
        if let Some((_, _, phrase)) = expected {
            match outcome {
                Err(e) if e.contains(phrase) => {}
                other => panic!(
                    "{name}: regression {} should be refused with \"{phrase}\", got {other:?}",
                    p.display()
                ),
            }
        }
    }
    let seeds: Vec<Vec<u8>> = corpus.into_iter().map(|(_, d)| d).collect();
    let seed = name
        .bytes()
        .fold(23u64, |h, b| h.wrapping_mul(31) ^ b as u64);
    let mut m = Mutator::new(seed);
    let mut accepted = 0;
    for _ in 0..mutants {
        let data = m.mutant(&seeds);
        match run(target, &data) {
            Ok(r) => accepted += usize::from(r.is_ok()),
            Err(saved) => findings.push(saved),
        }
    }
    eprintln!(
        "{name}: {mutants} mutants, {accepted} accepted by the reader; parquet decoder panics \
         contained so far in this process: {}",
        CONTAINED.load(Ordering::Relaxed)
    );
    assert!(
        findings.is_empty(),
        "{name}: {} input(s) panicked, saved as {findings:?}",
        findings.len()
    );
}

#[test]
fn npy_header() {
    smoke("npy_header", 30_000);
}

#[test]
fn npz() {
    smoke("npz", 40_000);
}

#[test]
fn tu() {
    smoke("tu", 25_000);
}

#[test]
fn csv() {
    smoke("csv", 25_000);
}

#[test]
fn parquet() {
    smoke("parquet", 25_000);
}

#[test]
fn manifest() {
    smoke("manifest", 20_000);
}

#[test]
fn checkpoint() {
    smoke("checkpoint", 25_000);
}

#[test]
fn config() {
    smoke("config", 100_000);
}

#[test]
fn every_target_has_a_test_and_a_corpus() {
    let listed = [
        "npy_header",
        "npz",
        "tu",
        "csv",
        "parquet",
        "manifest",
        "checkpoint",
        "config",
    ];
    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(names, listed);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for t in TARGETS {
        assert!(root.join("corpus").join(t.name).is_dir(), "{}", t.name);
        let libfuzzer = root
            .join("../../fuzz/fuzz_targets")
            .join(format!("{}.rs", t.name));
        assert!(libfuzzer.is_file(), "{} has no libFuzzer target", t.name);
    }
    for (target, file, _) in REFUSED {
        let p = root.join("regressions").join(target).join(file);
        assert!(
            p.is_file(),
            "{} is listed in REFUSED but missing",
            p.display()
        );
    }
}
