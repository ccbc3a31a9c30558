//! Crafted inputs against the `scalegnn` binary: one test per finding of the security review
//! (issue 23). Each builds the crafted file here, runs the binary with an address-space limit,
//! and asserts a clean error: exit ≠ 0, no panic or abort, peak RSS under a cap, and nothing
//! outside the intended path touched (decoy files intact).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Peak RSS any of these refusals may reach (they must fail before allocating).
const RSS_CAP_KB: i64 = 400 * 1024;
/// Address space given to the child: a regression that allocates gigabytes aborts (and the
/// test says so) instead of taking the machine's memory.
const AS_LIMIT: u64 = 8 << 30;

struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    /// Peak resident set of the child, KiB (its own rusage, from wait4).
    rss_kb: i64,
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_scalegnn"));
    // The CI's server and any password of the developer's shell stay out of these runs.
    for k in [
        "SCALEGNN_PG_URL",
        "PGPASSWORD",
        "PGHOST",
        "PGPORT",
        "SCALEGNN_PG_TRUSTED_HOSTS",
    ] {
        c.env_remove(k);
    }
    c
}

/// Runs `cmd` under [`AS_LIMIT`] and a 60 s deadline (a hang fails the test, not CI).
fn run(cmd: &mut Command) -> Ran {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: AS_LIMIT,
                rlim_max: AS_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn scalegnn");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let pid = child.id() as libc::pid_t;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (status, rss_kb) = loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is valid; wait4 fills it.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our child; the pointers are valid for the call.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break (ExitStatus::from_raw(status), ru.ru_maxrss);
        }
        assert!(r == 0, "wait4 failed: {}", std::io::Error::last_os_error());
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("scalegnn hung for 60 s: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The child was reaped by wait4; std's handle must not wait for it again.
    std::mem::forget(child);
    Ran {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
        rss_kb,
    }
}

fn scalegnn(args: &[&str]) -> Ran {
    run(bin().args(args))
}

/// A clean refusal: exit 1 or 2 (not a signal: no abort), no panic, small RSS, and a
/// message holding every needle.
fn assert_refused(r: &Ran, needles: &[&str]) {
    let err = &r.stderr;
    assert!(
        !r.status.success(),
        "expected an error, got success; stderr: {err}"
    );
    assert!(
        r.status.signal().is_none(),
        "killed by signal {:?} (abort?): {err}",
        r.status.signal()
    );
    assert!(
        !err.contains("panicked") && !err.contains("memory allocation"),
        "panic or abort instead of an error: {err}"
    );
    assert!(
        r.rss_kb < RSS_CAP_KB,
        "peak RSS {} MiB over the cap {} MiB: {err}",
        r.rss_kb / 1024,
        RSS_CAP_KB / 1024
    );
    for n in needles {
        assert!(err.contains(n), "error should mention {n:?}: {err}");
    }
}

fn ok(r: &Ran) {
    assert!(r.status.success(), "failed: {}\n{}", r.stderr, r.stdout);
}

fn tiny(root: &Path) -> PathBuf {
    let out = root.join("tiny");
    ok(&scalegnn(&[
        "synth",
        "--preset",
        "tiny",
        "--seed",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]));
    out
}

fn manifest(ds: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(ds.join("manifest.json")).unwrap()).unwrap()
}

fn set_manifest(ds: &Path, m: &serde_json::Value) {
    std::fs::write(ds.join("manifest.json"), m.to_string()).unwrap();
}

/// Records `names` in the manifest with correct sizes and checksums, as a crafter would:
/// checksums are not signatures.
fn relist(ds: &Path, names: &[&str]) {
    let mut m = manifest(ds);
    for name in names {
        let p = ds.join(name);
        m["files"][*name] = serde_json::json!({
            "bytes": std::fs::metadata(&p).unwrap().len(),
            "xxh3": scalegnn_data::xxh3_file(&p).unwrap(),
        });
    }
    set_manifest(ds, &m);
}

fn write_npy_raw(path: &Path, dict: &str, payload: &[u8]) {
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    b.extend_from_slice(dict.as_bytes());
    b.extend_from_slice(payload);
    std::fs::write(path, b).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// 1 ------------------------------------------------------------------------------------------

/// A fake PostgreSQL server that asks for a cleartext password and records every byte a
/// client sends it.
fn fake_postgres() -> (u16, Arc<Mutex<Vec<u8>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in l.incoming() {
            let Ok(mut st) = stream else { continue };
            let sink = sink.clone();
            std::thread::spawn(move || {
                let _ = st.set_read_timeout(Some(Duration::from_secs(5)));
                let read_msg = |st: &mut std::net::TcpStream| -> Option<Vec<u8>> {
                    let mut len = [0u8; 4];
                    st.read_exact(&mut len).ok()?;
                    let n = (u32::from_be_bytes(len) as usize).clamp(4, 1 << 16);
                    let mut body = vec![0u8; n - 4];
                    st.read_exact(&mut body).ok()?;
                    sink.lock().unwrap().extend_from_slice(&body);
                    Some(body)
                };
                let Some(first) = read_msg(&mut st) else {
                    return;
                };
                if first.starts_with(&80877103u32.to_be_bytes()) {
                    // SSLRequest: no TLS here; then the startup message.
                    let _ = st.write_all(b"N");
                    if read_msg(&mut st).is_none() {
                        return;
                    }
                }
                // AuthenticationCleartextPassword.
                let _ = st.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]);
                let mut rest = Vec::new();
                let _ = st.read_to_end(&mut rest);
                sink.lock().unwrap().extend_from_slice(&rest);
            });
        }
    });
    (port, got)
}

#[test]
fn f01_password_never_goes_to_a_host_named_by_the_dataset() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path());
    let (port, got) = fake_postgres();
    let pointer = serde_json::json!({
        "format": "scalegnn-postgres-features/1",
        "url": format!("postgres://victim@127.0.0.1:{port}/feat"),
        "table": "feat", "codec": "f32", "num_nodes": 2000, "dim": 16,
    });
    std::fs::write(ds.join("x.postgres.json"), pointer.to_string()).unwrap();
    let mut m = manifest(&ds);
    m["feature_store"] = serde_json::json!({"kind": "postgres", "codec": "f32"});
    set_manifest(&ds, &m);
    relist(&ds, &["x.postgres.json"]);
    let secret = "s3cret-for-my-own-server";
    let train = |trusted: Option<String>| {
        let out = root.path().join(format!("run-{}", trusted.is_some()));
        let mut c = bin();
        c.args(["train", s(&ds), "--epochs", "1", "--out", s(&out)])
            .env("PGPASSWORD", secret);
        if let Some(t) = trusted {
            c.env("SCALEGNN_PG_TRUSTED_HOSTS", t);
        }
        run(&mut c)
    };
    let r = train(None);
    assert_refused(&r, &["PGPASSWORD was not sent", "x.postgres.json"]);
    let seen = String::from_utf8_lossy(&got.lock().unwrap()).into_owned();
    assert!(
        seen.contains("victim"),
        "the server saw no connection: {seen:?}"
    );
    assert!(
        !seen.contains(secret),
        "the password reached a host the dataset chose"
    );
    // The same run with the host named by the user does send it: the check above can fail.
    let r = train(Some(format!("127.0.0.1:{port}")));
    assert!(!r.status.success());
    let seen = String::from_utf8_lossy(&got.lock().unwrap()).into_owned();
    assert!(
        seen.contains(secret),
        "a trusted host did not get the password"
    );
}

// 2, 3 ---------------------------------------------------------------------------------------

#[test]
fn f02_force_never_deletes_a_directory_scalegnn_did_not_write() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    std::fs::create_dir_all(home.join("docs")).unwrap();
    std::fs::write(home.join("docs/thesis.tex"), "years of work").unwrap();
    let r = scalegnn(&["synth", "--preset", "tiny", "--out", s(&home), "--force"]);
    assert_refused(&r, &["home", "not a scalegnn dataset"]);
    let edges = root.path().join("e.csv");
    std::fs::write(&edges, "0,1\n1,2\n").unwrap();
    let r = scalegnn(&[
        "ingest",
        "--format",
        "csv",
        s(&edges),
        "--out",
        s(&home),
        "--force",
    ]);
    assert_refused(&r, &["home"]);
    // A dataset a user added a file to is not replaced either.
    let ds = tiny(root.path());
    std::fs::write(ds.join("my-notes.md"), "keep").unwrap();
    let r = scalegnn(&["synth", "--preset", "tiny", "--out", s(&ds), "--force"]);
    assert_refused(&r, &["my-notes.md"]);
    assert_eq!(
        std::fs::read_to_string(home.join("docs/thesis.tex")).unwrap(),
        "years of work"
    );
    assert_eq!(
        std::fs::read_to_string(ds.join("my-notes.md")).unwrap(),
        "keep"
    );
    // What scalegnn wrote, it may replace.
    std::fs::remove_file(ds.join("my-notes.md")).unwrap();
    ok(&scalegnn(&[
        "synth",
        "--preset",
        "tiny",
        "--out",
        s(&ds),
        "--force",
    ]));
}

#[test]
fn f03_demo_keep_never_replaces_an_existing_directory() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path());
    std::fs::rename(&ds, root.path().join("small")).unwrap();
    let before = std::fs::read(root.path().join("small/manifest.json")).unwrap();
    let r = scalegnn(&["demo", "--keep", s(root.path()), "--epochs", "1"]);
    assert_refused(&r, &["small", "already exists"]);
    assert_eq!(
        std::fs::read(root.path().join("small/manifest.json")).unwrap(),
        before
    );
}

// 4 ------------------------------------------------------------------------------------------

#[test]
fn f04_run_directories_are_owned_locked_and_never_written_through_links() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path());
    let train = |out: &Path, extra: &[&str]| {
        let mut args = vec!["train", s(&ds), "--epochs", "2", "--out", s(out)];
        args.extend_from_slice(extra);
        scalegnn(&args)
    };
    // A directory holding the user's files is refused, and left as it was.
    let mine = root.path().join("mine");
    std::fs::create_dir_all(mine.join("checkpoint")).unwrap();
    std::fs::write(mine.join("checkpoint/weights.bin"), "mine").unwrap();
    std::fs::write(mine.join("summary.json"), "mine").unwrap();
    std::fs::write(mine.join("paper.pdf"), "mine").unwrap();
    for force in [&[][..], &["--force"][..]] {
        assert_refused(&train(&mine, force), &["paper.pdf"]);
    }
    assert_eq!(
        std::fs::read_to_string(mine.join("checkpoint/weights.bin")).unwrap(),
        "mine"
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("summary.json")).unwrap(),
        "mine"
    );
    // --runs twice into one --out: the second is refused before touching run-0.
    let out = root.path().join("runs");
    ok(&train(&out, &["--runs", "2"]));
    let first = std::fs::read(out.join("run-0/metrics.jsonl")).unwrap();
    assert_refused(&train(&out, &["--runs", "2"]), &["already holds a run"]);
    assert_eq!(
        std::fs::read(out.join("run-0/metrics.jsonl")).unwrap(),
        first
    );
    // Each run-N can be evaluated on its own (it has its config).
    ok(&scalegnn(&["eval", s(&out.join("run-1"))]));
    // A run holding the directory's lock keeps a second one out.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(out.join(".lock"))
        .unwrap();
    lock.try_lock().unwrap();
    assert_refused(&train(&out, &["--force"]), &["in use"]);
    drop(lock);
    // A symlink planted inside a run directory is never written through.
    let victim = root.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::remove_file(out.join("run-0/metrics.jsonl")).unwrap();
    std::os::unix::fs::symlink(&victim, out.join("run-0/metrics.jsonl")).unwrap();
    std::os::unix::fs::symlink(&victim, out.join("run-0/predictions.npy")).unwrap();
    let r = scalegnn(&["predict", s(&out.join("run-0"))]);
    assert_refused(&r, &["symlink"]);
    ok(&train(&out, &["--runs", "2", "--force"]));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    // A fresh directory with only a planted link is not scalegnn's.
    let planted = root.path().join("planted");
    std::fs::create_dir(&planted).unwrap();
    std::os::unix::fs::symlink(&victim, planted.join("metrics.jsonl")).unwrap();
    let r = train(&planted, &[]);
    assert!(!r.status.success() || std::fs::read_to_string(&victim).unwrap() == "precious");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

// 5 ------------------------------------------------------------------------------------------

#[test]
fn f05_manifest_paths_stay_inside_the_dataset_and_verification_is_all_or_nothing() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path());
    let clean = manifest(&ds);
    let secret = root.path().join("secret.txt");
    std::fs::write(&secret, "password").unwrap();
    // Escaping names: relative, absolute, and a symlink leaving the directory.
    for name in [
        "../secret.txt".to_string(),
        s(&secret).to_string(),
        "sub/../../secret.txt".to_string(),
    ] {
        let mut m = clean.clone();
        m["files"][&name] = serde_json::json!({"bytes": 8, "xxh3": "0"});
        set_manifest(&ds, &m);
        assert_refused(&scalegnn(&["info", s(&ds)]), &["not a plain file name"]);
    }
    set_manifest(&ds, &clean);
    std::fs::remove_file(ds.join("y.npy")).unwrap();
    std::os::unix::fs::symlink(&secret, ds.join("y.npy")).unwrap();
    assert_refused(
        &scalegnn(&["info", s(&ds)]),
        &["y.npy", "outside the directory"],
    );
    std::fs::remove_file(ds.join("y.npy")).unwrap();
    // A FIFO named by the manifest: refused at once, no hang.
    let fifo = ds.join("y.npy");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert_refused(
        &scalegnn(&["info", s(&ds)]),
        &["y.npy", "not a regular file"],
    );
    std::fs::remove_file(&fifo).unwrap();
    // Unlisted: an index file the manifest does not cover, out of range; refused, no panic.
    let ds2 = tiny(&root.path().join("b"));
    let mut m = manifest(&ds2);
    m["files"].as_object_mut().unwrap().remove("indices.npy");
    set_manifest(&ds2, &m);
    let bad: Vec<i32> = vec![1_000_000; 40_000];
    scalegnn_npy::write_array(&ds2.join("indices.npy"), &[bad.len()], &bad).unwrap();
    assert_refused(
        &scalegnn(&["info", s(&ds2)]),
        &["indices.npy", "not listed"],
    );
    // Listed with a matching checksum (crafted): the range scan still refuses it.
    relist(&ds2, &["indices.npy"]);
    let mut m = manifest(&ds2);
    m["num_edges"] = serde_json::json!(bad.len());
    set_manifest(&ds2, &m);
    let r = scalegnn(&[
        "train",
        s(&ds2),
        "--epochs",
        "1",
        "--out",
        s(&root.path().join("r")),
    ]);
    assert_refused(&r, &["indices.npy"]);
}

// 6 ------------------------------------------------------------------------------------------

/// Writes one zip member's bytes.
type Body = Box<dyn Fn(&mut dyn Write)>;

/// Writes an .npz whose members are (name, body), deflated.
fn write_npz(path: &Path, members: &[(&str, Body)]) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(true);
    for (name, body) in members {
        z.start_file(*name, opts).unwrap();
        body(&mut z);
    }
    z.finish().unwrap();
}

fn npy_bytes(dict: &str, payload: &[u8]) -> Vec<u8> {
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    b.extend_from_slice(dict.as_bytes());
    b.extend_from_slice(payload);
    b
}

#[test]
fn f06_npz_members_inflate_only_as_far_as_their_header_declares() {
    let root = tempfile::tempdir().unwrap();
    let p = root.path().join("bomb.npz");
    // A member declaring 3 int64 values that inflates to 1 GiB of zeros (a 1 MB file).
    let head = npy_bytes(
        "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
        &[],
    );
    write_npz(
        &p,
        &[(
            "adj_indptr.npy",
            Box::new(move |w: &mut dyn Write| {
                w.write_all(&head).unwrap();
                let zeros = vec![0u8; 1 << 20];
                for _ in 0..1024 {
                    w.write_all(&zeros).unwrap();
                }
            }),
        )],
    );
    assert!(std::fs::metadata(&p).unwrap().len() < 16 << 20);
    let r = scalegnn(&[
        "ingest",
        "--format",
        "npz",
        s(&p),
        "--out",
        s(&root.path().join("o")),
    ]);
    assert_refused(&r, &["bomb.npz", "adj_indptr"]);
    // A header declaring 2^40 elements is refused before reading its payload.
    let head = npy_bytes(
        "{'descr': '<i8', 'fortran_order': False, 'shape': (1099511627776,), }",
        &[],
    );
    write_npz(
        &p,
        &[(
            "adj_indptr.npy",
            Box::new(move |w: &mut dyn Write| w.write_all(&head).unwrap()),
        )],
    );
    let r = scalegnn(&[
        "ingest",
        "--format",
        "npz",
        s(&p),
        "--out",
        s(&root.path().join("o")),
    ]);
    assert_refused(&r, &["bomb.npz", "may be used"]);
    assert!(!root.path().join("o").exists());
}

// 7 ------------------------------------------------------------------------------------------

#[test]
fn f07_sqlite_store_files_cannot_run_their_own_sql() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path());
    ok(&scalegnn(&["store", s(&ds), "--store", "sqlite"]));
    // meta replaced by a view that never ends, the manifest's checksum kept consistent.
    let db = rusqlite::Connection::open(ds.join("x.sqlite")).unwrap();
    db.execute_batch(
        "ALTER TABLE meta RENAME TO m;
         CREATE VIEW meta AS WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM r)
           SELECT 'format' AS key, count(*) AS value FROM r;",
    )
    .unwrap();
    drop(db);
    relist(&ds, &["x.sqlite"]);
    let r = scalegnn(&[
        "train",
        s(&ds),
        "--epochs",
        "1",
        "--out",
        s(&root.path().join("r")),
    ]);
    assert_refused(&r, &["x.sqlite", "not a table"]);
}

// 8 ------------------------------------------------------------------------------------------

#[test]
fn f08_sizes_taken_from_data_values_are_checked_before_allocating() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("o");
    let ingest_csv = |text: &str, extra: &[&str]| {
        let p = root.path().join("e.csv");
        std::fs::write(&p, text).unwrap();
        let mut args = vec!["ingest", "--format", "csv", s(&p), "--out", s(&out)];
        args.extend_from_slice(extra);
        scalegnn(&args)
    };
    assert_refused(&ingest_csv("0,1\n1,1000000000000\n", &[]), &["--relabel"]);
    assert_refused(
        &ingest_csv("0,1\n1,2\n", &["--num-nodes", "100000000000000"]),
        &["may be used"],
    );
    // Labels: a class id of 2^40 is not a class.
    let labels = root.path().join("y.txt");
    std::fs::write(&labels, "0\n1099511627776\n1\n").unwrap();
    assert_refused(
        &ingest_csv("0,1\n1,2\n", &["--labels", s(&labels)]),
        &["1099511627776", "classes"],
    );
    // Parquet: an id of 2^62.
    let pq = root.path().join("e.parquet");
    {
        use parquet::data_type::Int64Type;
        use parquet::file::writer::SerializedFileWriter;
        let schema = std::sync::Arc::new(
            parquet::schema::parser::parse_message_type(
                "message e { REQUIRED INT64 src; REQUIRED INT64 dst; }",
            )
            .unwrap(),
        );
        let f = std::fs::File::create(&pq).unwrap();
        let mut w = SerializedFileWriter::new(f, schema, Default::default()).unwrap();
        let mut g = w.next_row_group().unwrap();
        for col in [vec![0i64, 1], vec![1i64, 1 << 62]] {
            let mut c = g.next_column().unwrap().unwrap();
            c.typed::<Int64Type>()
                .write_batch(&col, None, None)
                .unwrap();
            c.close().unwrap();
        }
        g.close().unwrap();
        w.close().unwrap();
    }
    let r = scalegnn(&["ingest", "--format", "parquet", s(&pq), "--out", s(&out)]);
    assert_refused(&r, &["--relabel"]);
    // npz attr_shape: negative, huge, and wrapping widths.
    for shape in [vec![3i64, -1], vec![3, 1 << 40], vec![3, (1i64 << 62) + 1]] {
        let p = root.path().join("a.npz");
        let i64s = |v: Vec<i64>| {
            let d = format!(
                "{{'descr': '<i8', 'fortran_order': False, 'shape': ({},), }}",
                v.len()
            );
            npy_bytes(&d, bytemuck::cast_slice(&v))
        };
        let members: Vec<(&str, Vec<u8>)> = vec![
            ("adj_indptr.npy", i64s(vec![0, 1, 2, 3])),
            ("adj_indices.npy", i64s(vec![1, 2, 0])),
            ("adj_shape.npy", i64s(vec![3, 3])),
            ("attr_indptr.npy", i64s(vec![0, 1, 2, 3])),
            ("attr_indices.npy", i64s(vec![0, 1, 2])),
            ("attr_shape.npy", i64s(shape.clone())),
            (
                "attr_data.npy",
                npy_bytes(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                    bytemuck::cast_slice(&[1f32, 1., 1.]),
                ),
            ),
        ];
        write_npz(
            &p,
            &members
                .into_iter()
                .map(|(n, b)| {
                    let f: Body = Box::new(move |w: &mut dyn Write| w.write_all(&b).unwrap());
                    (n, f)
                })
                .collect::<Vec<_>>(),
        );
        let r = scalegnn(&["ingest", "--format", "npz", s(&p), "--out", s(&out)]);
        assert_refused(&r, &["a.npz", "attr_shape"]);
    }
    // An SQLite store whose meta claims 2^24 columns or 2^32 nodes.
    let ds = tiny(root.path());
    ok(&scalegnn(&["store", s(&ds), "--store", "sqlite"]));
    for (key, value) in [("dim", 16_777_216i64), ("num_nodes", 1 << 32)] {
        let db = rusqlite::Connection::open(ds.join("x.sqlite")).unwrap();
        db.execute(
            "UPDATE meta SET value = ?1 WHERE key = ?2",
            rusqlite::params![value, key],
        )
        .unwrap();
        drop(db);
        relist(&ds, &["x.sqlite"]);
        let r = scalegnn(&[
            "train",
            s(&ds),
            "--epochs",
            "1",
            "--out",
            s(&root.path().join("r")),
        ]);
        assert_refused(&r, &["x.sqlite"]);
        ok(&scalegnn(&["store", s(&ds), "--store", "sqlite"]));
    }
    assert!(!out.exists() && !root.path().join("r").exists());
}

// 9 ------------------------------------------------------------------------------------------

#[test]
fn f09_npy_shapes_whose_size_wraps_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("npy");
    std::fs::create_dir(&dir).unwrap();
    write_npy_raw(
        &dir.join("edge_index.npy"),
        "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 9223372036854775808), }",
        &[],
    );
    let r = scalegnn(&[
        "ingest",
        "--format",
        "npy",
        s(&dir),
        "--out",
        s(&root.path().join("o")),
    ]);
    assert_refused(&r, &["edge_index.npy", "larger than any file"]);
    // Inside a dataset, info refuses it too (no bogus feature count).
    let ds = tiny(root.path());
    write_npy_raw(
        &ds.join("x.npy"),
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2000, 9223372036854775808), }",
        &[],
    );
    relist(&ds, &["x.npy"]);
    assert_refused(&scalegnn(&["info", s(&ds)]), &["x.npy"]);
}

// 10 -----------------------------------------------------------------------------------------

#[test]
fn f10_model_sizes_threads_and_checkpoints_are_checked() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path());
    let out = root.path().join("r");
    for (flags, says) in [
        (&["--hidden", "1000000"][..], "may be used"),
        // Depth is bounded by the config check itself (it sizes per-layer lists).
        (
            &["--layers", "100000"][..],
            "layers: 100000 is more than 1024",
        ),
        (
            &["--model", "gat", "--heads", "100000000"][..],
            "may be used",
        ),
        (
            &["--model", "sagmm", "--hidden", "1000000"][..],
            "may be used",
        ),
    ] {
        let mut args = vec!["train", s(&ds), "--epochs", "1", "--out", s(&out)];
        args.extend_from_slice(flags);
        assert_refused(&scalegnn(&args), &[says]);
        assert!(!out.exists(), "{flags:?} left a run directory");
    }
    let t0 = Instant::now();
    let r = scalegnn(&["--threads", "100000", "info", s(&ds)]);
    assert_refused(&r, &["--threads", "100000"]);
    // Refused before any thread starts (starting them took 48 s).
    assert!(t0.elapsed() < Duration::from_secs(20));
    // Checkpoints: a claimed hidden width of 10^11, then NaN weights.
    ok(&scalegnn(&[
        "train",
        s(&ds),
        "--epochs",
        "2",
        "--out",
        s(&out),
    ]));
    let mj = out.join("checkpoint/model.json");
    let good = std::fs::read_to_string(&mj).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["config"]["hidden"] = serde_json::json!(100_000_000_000u64);
    std::fs::write(&mj, v.to_string()).unwrap();
    // The model is rebuilt from the checkpoint's own configuration: refused before any
    // weight is allocated.
    assert_refused(&scalegnn(&["eval", s(&out)]), &["may be used"]);
    std::fs::write(&mj, good).unwrap();
    let w = out.join("checkpoint/layer0.weight.npy");
    let a = scalegnn_npy::read_array::<f32>(&w).unwrap();
    let mut vals = a.to_vec();
    vals[7] = f32::NAN;
    scalegnn_npy::write_array(&w, a.shape(), &vals).unwrap();
    for cmd in ["eval", "predict"] {
        assert_refused(&scalegnn(&[cmd, s(&out)]), &["layer0.weight.npy", "NaN"]);
    }
    assert!(!out.join("predictions.npy").exists());
}

// 11 -----------------------------------------------------------------------------------------

#[test]
fn f11_messages_are_bounded_and_say_things_once() {
    let root = tempfile::tempdir().unwrap();
    let ds = tiny(root.path());
    let cfg = root.path().join("run.toml");
    for (key, needle) in [("hidden", "run.toml"), ("model", "unknown model")] {
        std::fs::write(&cfg, format!("{key} = \"{}\"\n", "x".repeat(10 << 20))).unwrap();
        let out = root.path().join("r");
        let r = scalegnn(&["train", s(&ds), "--config", s(&cfg), "--out", s(&out)]);
        assert_refused(&r, &[needle]);
        assert!(r.stderr.len() < 10_000, "{} bytes of error", r.stderr.len());
    }
    let r = scalegnn(&["info", s(&root.path().join("missing"))]);
    assert!(!r.status.success());
    let missing = std::fs::remove_dir_all(&ds).map(|_| ());
    missing.unwrap();
    let r2 = scalegnn(&[
        "ingest",
        "--format",
        "csv",
        s(&root.path().join("nope.csv")),
        "--out",
        s(&root.path().join("o")),
    ]);
    for r in [&r, &r2] {
        assert!(!r.status.success());
        let n = r.stderr.matches("No such file or directory").count()
            + r.stderr.matches("no such").count();
        assert!(n <= 1, "said {n} times: {}", r.stderr);
    }
}
