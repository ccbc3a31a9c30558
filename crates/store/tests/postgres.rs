//! PostgresStore against a real server (`$SCALEGNN_PG_URL`, started by `.ci/run`): the shared
//! conformance suite per codec, a row changed or deleted in SQL, codec mismatch, atomic loads,
//! and a server that cannot be reached. Without the variable each test says so and returns.

use std::path::Path;
use std::time::Duration;

use scalegnn_store::conformance::{check_store, random_features, Tolerance};
use scalegnn_store::{
    drop_postgres_store, open_store, open_store_with, write_store, write_store_with, Codec,
    FeatureStore, NpyRows, PostgresStore, RetryPolicy, SliceRows, StoreError, StoreOptions,
    POSTGRES_FILE,
};

const N: usize = 5000;
const DIM: usize = 24;

/// The server URL, or `None` after printing why the test is skipped.
fn pg_url() -> Option<String> {
    match std::env::var("SCALEGNN_PG_URL") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            println!("skipping: SCALEGNN_PG_URL not set");
            None
        }
    }
}

fn dataset(name: &str) -> (tempfile::TempDir, std::path::PathBuf, Vec<f32>) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    let x = random_features(N, DIM, 42);
    scalegnn_npy::write_array(&dir.join("x.npy"), &[N, DIM], &x).unwrap();
    (root, dir, x)
}

fn write(dir: &Path, codec: Codec) {
    let src = NpyRows::open(&dir.join("x.npy")).unwrap();
    write_store(dir, "postgres", codec, &src).unwrap();
}

/// A plain client for changing the store behind its back.
fn sql(url: &str) -> postgres::Client {
    url.parse::<postgres::Config>()
        .unwrap()
        .connect(postgres::NoTls)
        .unwrap()
}

/// Drops the test's table (best effort).
fn cleanup(dir: &Path) {
    let _ = drop_postgres_store(dir, &StoreOptions::default());
}

#[test]
fn postgres_store_conforms_for_every_codec() {
    let Some(_) = pg_url() else { return };
    let (_root, dir, x) = dataset("conformance");
    for codec in Codec::ALL {
        write(&dir, codec);
        let store = open_store(&dir, "postgres", codec).unwrap();
        assert_eq!(store.kind(), "postgres");
        let tol = Tolerance::for_codec(codec, &x, DIM);
        check_store(&*store, &x, &tol);
        // One connection and small chunks: the pool's waiting path and many queries per batch.
        let narrow = PostgresStore::open(&dir, Some(codec), &StoreOptions::default())
            .unwrap()
            .with_pool_size(1)
            .with_chunk_rows(300);
        check_store(&narrow, &x, &tol);
    }
    cleanup(&dir);
}

#[test]
fn the_pointer_file_records_no_password_and_reopens() {
    let Some(url) = pg_url() else { return };
    let (_root, dir, x) = dataset("pointer");
    // The URL's own password, else a made-up one (trust auth, as in CI, ignores it).
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (user, host) = rest.rsplit_once('@').expect("a URL with a user");
    let (user, secret) = user.split_once(':').unwrap_or((user, "not-a-real-secret"));
    let with_pw = format!("{scheme}://{user}:{secret}@{host}");
    let opts = StoreOptions {
        pg_url: Some(with_pw),
        ..Default::default()
    };
    let src = SliceRows::new(&x, DIM).unwrap();
    write_store_with(&dir, "postgres", Codec::F16, &src, &opts).unwrap();
    let text = std::fs::read_to_string(dir.join(POSTGRES_FILE)).unwrap();
    assert!(!text.contains(secret), "{text}");
    assert!(text.contains(host.split('/').next().unwrap()), "{text}");
    assert!(text.contains("\"table\": \"scalegnn_pointer_"), "{text}");
    let store = open_store_with(&dir, "postgres", Codec::F16, &opts).unwrap();
    let mut out = vec![0f32; DIM];
    store.gather(&[N as u32 - 1], &mut out).unwrap();
    assert!((out[0] - x[(N - 1) * DIM]).abs() <= 1e-3 * x[(N - 1) * DIM].abs() + 1e-6);
    assert_eq!(
        scalegnn_store::store_files("postgres", Codec::F16).unwrap(),
        [POSTGRES_FILE]
    );
    cleanup(&dir);
}

#[test]
fn a_changed_row_is_an_error_naming_the_id() {
    let Some(url) = pg_url() else { return };
    let (_root, dir, _) = dataset("corrupt");
    write(&dir, Codec::F32);
    let store = PostgresStore::open(&dir, Some(Codec::F32), &StoreOptions::default()).unwrap();
    let t = store.table().to_string();
    let mut c = sql(&url);
    // Bytes flipped inside row 77; row 10's bytes and checksum copied onto row 11; row 12 cut.
    c.batch_execute(&format!(
        "UPDATE {t} SET v = overlay(v placing '\\xdeadbeef'::bytea from 5) WHERE id = 77;
         UPDATE {t} SET (v, xxh3) = (SELECT v, xxh3 FROM {t} WHERE id = 10) WHERE id = 11;
         UPDATE {t} SET v = substring(v from 1 for 8) WHERE id = 12;"
    ))
    .unwrap();
    for (bad, needle) in [(77u32, "checksum"), (11, "checksum"), (12, "holds 8 bytes")] {
        let mut out = vec![0f32; 3 * DIM];
        let e = store.gather(&[1, bad, 2], &mut out).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{msg}");
        assert!(
            msg.contains(&format!("node id {bad} ")) && msg.contains(needle) && msg.contains(&t),
            "{msg}"
        );
    }
    // Deep inside a large batch fetched in parallel, too (whichever chunk fails first).
    let mut ids: Vec<u32> = (0..N as u32).rev().collect();
    ids.retain(|&i| i != 11 && i != 12);
    let mut out = vec![0f32; ids.len() * DIM];
    let e = store.gather(&ids, &mut out).unwrap_err();
    assert!(
        e.to_string().contains("node id 77 fails its checksum"),
        "{e}"
    );
    let mut out = vec![0f32; DIM];
    store.gather(&[76], &mut out).unwrap();
    cleanup(&dir);
}

#[test]
fn a_missing_row_names_the_id() {
    let Some(url) = pg_url() else { return };
    let (_root, dir, _) = dataset("missing");
    write(&dir, Codec::U8);
    let store = PostgresStore::open(&dir, Some(Codec::U8), &StoreOptions::default()).unwrap();
    let t = store.table().to_string();
    let mut c = sql(&url);
    c.execute(&format!("DELETE FROM {t} WHERE id = 1234"), &[])
        .unwrap();
    let mut out = vec![0f32; 4 * DIM];
    let e = store.gather(&[5, 1234, 6, 1234], &mut out).unwrap_err();
    assert!(matches!(e, StoreError::MissingRow { id: 1234, .. }), "{e}");
    assert!(
        e.to_string().contains("1234") && e.to_string().contains(&t),
        "{e}"
    );
    // The last row gone: the open-time check notices.
    c.execute(&format!("DELETE FROM {t} WHERE id = {}", N - 1), &[])
        .unwrap();
    let e = open_store(&dir, "postgres", Codec::U8).err().unwrap();
    assert!(e.to_string().contains("largest id"), "{e}");
    // The table gone: the error names server and table.
    c.batch_execute(&format!("DROP TABLE {t}")).unwrap();
    let e = open_store(&dir, "postgres", Codec::U8).err().unwrap();
    let msg = e.to_string();
    assert!(msg.contains(&t) && msg.contains("postgres://"), "{msg}");
    cleanup(&dir);
}

#[test]
fn codec_mismatch_and_missing_pointer_are_errors() {
    let Some(_) = pg_url() else { return };
    let (_root, dir, _) = dataset("mismatch");
    let e = open_store(&dir, "postgres", Codec::F32).err().unwrap();
    assert!(e.to_string().contains(POSTGRES_FILE), "{e}");
    write(&dir, Codec::F16);
    let e = open_store(&dir, "postgres", Codec::F32).err().unwrap();
    assert!(matches!(e, StoreError::CodecMismatch { .. }), "{e}");
    cleanup(&dir);
}

#[test]
fn a_failed_load_leaves_the_previous_store_intact() {
    let Some(url) = pg_url() else { return };
    let (_root, dir, x) = dataset("atomic");
    write(&dir, Codec::F32);
    let before = std::fs::read(dir.join(POSTGRES_FILE)).unwrap();
    let mut bad = x.clone();
    bad[4321 * DIM + 7] = f32::NAN;
    let src = SliceRows::new(&bad, DIM).unwrap();
    // f32 and f16 fail mid-COPY (u8 fails earlier, in its min/max pass).
    for codec in [Codec::F32, Codec::F16, Codec::U8] {
        let e = write_store(&dir, "postgres", codec, &src).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::NonFinite {
                    row: 4321,
                    col: 7,
                    ..
                }
            ),
            "{e}"
        );
    }
    assert_eq!(std::fs::read(dir.join(POSTGRES_FILE)).unwrap(), before);
    let store = open_store(&dir, "postgres", Codec::F32).unwrap();
    check_store(&*store, &x, &Tolerance::Exact);
    let t = PostgresStore::open(&dir, None, &StoreOptions::default())
        .unwrap()
        .table()
        .to_string();
    let left: i64 = sql(&url)
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE $1",
            &[&format!("{t}_load%")],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "load tables left behind");
    cleanup(&dir);
}

#[test]
fn an_unreachable_server_fails_after_bounded_retries() {
    // Needs no server: nothing listens on port 1.
    let root = tempfile::tempdir().unwrap();
    let x = random_features(10, 3, 1);
    let src = SliceRows::new(&x, 3).unwrap();
    let opts = StoreOptions {
        pg_url: Some("postgres://someone:hunter2@127.0.0.1:1/nowhere".into()),
        pg_retry: RetryPolicy {
            attempts: 4,
            first_backoff: Duration::from_millis(10),
        },
        ..StoreOptions::default()
    };
    let t0 = std::time::Instant::now();
    let e = write_store_with(root.path(), "postgres", Codec::F32, &src, &opts).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, StoreError::PgUnavailable { attempts: 4, .. }),
        "{msg}"
    );
    assert!(
        msg.contains("postgres://someone@127.0.0.1:1/nowhere")
            && msg.contains("4 attempts")
            && !msg.contains("hunter2"),
        "{msg}"
    );
    // 10 + 20 + 40 ms of backoff, well under a second.
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    let e = format!("{:?}", opts);
    assert!(!e.contains("hunter2"), "{e}");
}

/// A role with a password that may log in only over TLS, with the CI's CA
/// (`$SCALEGNN_PG_TLS_URL`, set by `.ci/run` when it could make certificates).
fn pg_tls_url() -> Option<String> {
    match std::env::var("SCALEGNN_PG_TLS_URL") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            println!("skipping: SCALEGNN_PG_TLS_URL not set");
            None
        }
    }
}

#[test]
fn tls_carries_the_password_and_checks_the_certificate() {
    let Some(url) = pg_tls_url() else { return };
    let (_root, dir, x) = dataset("tls");
    let opts = |u: &str| StoreOptions {
        pg_url: Some(u.to_string()),
        ..Default::default()
    };
    // verify-full: the server's certificate is checked against the CA; scram over TLS.
    let src = SliceRows::new(&x, DIM).unwrap();
    write_store_with(&dir, "postgres", Codec::F32, &src, &opts(&url)).unwrap();
    let pointer = std::fs::read_to_string(dir.join(POSTGRES_FILE)).unwrap();
    assert!(
        pointer.contains("sslmode=verify-full") && !pointer.contains("tls-secret"),
        "{pointer}"
    );
    // Encrypt-only (libpq's require) reads it too.
    let (base, _) = url.split_once('?').unwrap();
    for u in [url.clone(), format!("{base}?sslmode=require")] {
        let store = open_store_with(&dir, "postgres", Codec::F32, &opts(&u)).unwrap();
        let mut out = vec![0f32; DIM];
        store.gather(&[7], &mut out).unwrap();
        assert_eq!(out, x[7 * DIM..8 * DIM]);
    }
    // Without TLS the server refuses this role (its pg_hba allows it only over TLS).
    let e = open_store_with(
        &dir,
        "postgres",
        Codec::F32,
        &opts(&format!("{base}?sslmode=disable")),
    )
    .err()
    .expect("a plaintext login of a TLS-only role");
    assert!(e.to_string().contains("127.0.0.1"), "{e}");
    // A CA that did not sign the server's certificate: refused.
    let other = dir.join("other-ca.pem");
    let leaf = server_cert(&url);
    std::fs::write(&other, leaf).unwrap();
    let wrong = format!("{base}?sslmode=verify-full&sslrootcert={}", other.display());
    assert!(open_store_with(&dir, "postgres", Codec::F32, &opts(&wrong)).is_err());
    let _ = drop_postgres_store(&dir, &opts(&url));
}

/// The server's own certificate: signed by the CI's CA but not a CA itself, so as the only
/// root it cannot anchor the server's chain.
fn server_cert(url: &str) -> String {
    let ca = url.split("sslrootcert=").nth(1).unwrap_or_default();
    let dir = std::path::Path::new(ca).parent().unwrap();
    std::fs::read_to_string(dir.join("server.crt")).unwrap_or_default()
}
