//! Server connections: which URL to use (flag, env, or the one recorded beside the dataset),
//! who may receive a password (only a server the user named for this run, never unencrypted
//! across a network), TLS (`sslmode`), the URL as shown and recorded (never with its
//! password), connecting with timeouts, and the bounded retry with exponential backoff used
//! for transient failures.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::config::{Host, SslMode};
use postgres::{Client, Config, NoTls};

use crate::StoreError;

/// Environment variable read when no URL is passed explicitly.
pub const PG_URL_ENV: &str = "SCALEGNN_PG_URL";

/// Hosts (`host` or `host:port`, comma-separated) that may receive `$PGPASSWORD` when their
/// URL comes from a dataset's `x.postgres.json` rather than from the user.
pub const PG_TRUSTED_HOSTS_ENV: &str = "SCALEGNN_PG_TRUSTED_HOSTS";

/// Set to 1 to allow a password over an unencrypted connection to a non-local host.
pub const PG_ALLOW_PLAINTEXT_ENV: &str = "SCALEGNN_PG_ALLOW_PLAINTEXT_PASSWORD";

/// How long one connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed server address: the config to connect with, the URL to show (no password), and
/// how TLS checks the server.
#[derive(Clone)]
pub(crate) struct Server {
    pub config: Config,
    /// `postgres://user@host:port/db?...` without the password: used in messages and recorded
    /// in `x.postgres.json`.
    pub public: String,
    /// Where the URL came from (`--pg-url`, `SCALEGNN_PG_URL`, `x.postgres.json`).
    origin: String,
    /// The TLS connector: checks the server's certificate against `sslrootcert` /
    /// `$PGSSLROOTCERT` when given; without them TLS encrypts but, as libpq's `require`, does
    /// not authenticate the server. None with `sslmode=disable`.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// `$PGPASSWORD` was set but not given to this server (its URL came from a dataset and
    /// the user did not name its host): said in errors, so the user knows why.
    withheld: bool,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.public)
    }
}

impl Server {
    /// Parses a `postgres://` URL or a `key=value` connection string. `origin` names where it
    /// came from, for the error message (the URL itself is never echoed: it may hold a password).
    /// Besides the options tokio-postgres knows, `sslmode=verify-full` and `sslrootcert=FILE`
    /// are accepted (TLS with the server's certificate checked against FILE).
    pub fn parse(url: &str, origin: &str) -> Result<Server, StoreError> {
        let bad = |reason: String| StoreError::PgUrl {
            origin: origin.to_string(),
            reason,
        };
        let (url, verify, rootcert) = take_tls_options(url);
        let mut config: Config = url
            .parse()
            .map_err(|e: postgres::Error| bad(crate::error::pg_detail(&e)))?;
        if config.get_hosts().is_empty() {
            return Err(bad("no host given".into()));
        }
        if config.get_user().is_none() {
            if let Ok(u) = std::env::var("USER") {
                config.user(&u);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // A dead peer is noticed in seconds, not after the kernel's two-hour default.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("scalegnn");
        }
        let roots = rootcert.or_else(|| std::env::var_os("PGSSLROOTCERT").map(PathBuf::from));
        if verify {
            if roots.is_none() {
                return Err(bad(
                    "sslmode=verify-full needs the CA certificate: sslrootcert=FILE in the URL \
                     or $PGSSLROOTCERT"
                        .into(),
                ));
            }
            config.ssl_mode(SslMode::Require);
        }
        let tls = match config.get_ssl_mode() {
            SslMode::Disable => None,
            _ => Some(tls_connector(roots.as_deref()).map_err(bad)?),
        };
        // The TLS choice is part of the address: a URL recorded with sslmode=require must be
        // read back with it.
        let mut tls_query = Vec::new();
        match (verify, config.get_ssl_mode()) {
            (true, _) => tls_query.push(("sslmode".to_string(), "verify-full".to_string())),
            (false, SslMode::Require) => tls_query.push(("sslmode".into(), "require".into())),
            (false, SslMode::Disable) => tls_query.push(("sslmode".into(), "disable".into())),
            _ => {}
        }
        if let (true, Some(r)) = (verify, &roots) {
            tls_query.push(("sslrootcert".into(), r.to_string_lossy().into_owned()));
        }
        let public = public_url(&config, tls_query);
        let server = Server {
            config,
            public,
            origin: origin.to_string(),
            tls,
            withheld: false,
        };
        server.check_password_transport()?;
        Ok(server)
    }

    /// Fills in a password from `PGPASSWORD` when the URL has none.
    pub fn with_env_password(mut self) -> Result<Server, StoreError> {
        if self.config.get_password().is_none() {
            if let Ok(p) = std::env::var("PGPASSWORD") {
                self.config.password(p);
                self.origin = format!("{} with $PGPASSWORD", self.origin);
                self.check_password_transport()?;
            }
        }
        Ok(self)
    }

    /// Refuses a password that would cross a network unencrypted: it needs TLS
    /// (`sslmode=require`), a local server (Unix socket or loopback), or the user's explicit
    /// permission (`SCALEGNN_PG_ALLOW_PLAINTEXT_PASSWORD=1`).
    fn check_password_transport(&self) -> Result<(), StoreError> {
        let allowed = std::env::var(PG_ALLOW_PLAINTEXT_ENV).is_ok_and(|v| v == "1");
        if password_may_travel(&self.config, allowed) {
            return Ok(());
        }
        Err(StoreError::PgUrl {
            origin: self.origin.clone(),
            reason: format!(
                "a password would go unencrypted to {}: add sslmode=require (or verify-full) \
                 to the URL for TLS, or set {PG_ALLOW_PLAINTEXT_ENV}=1 to send it anyway",
                self.public
            ),
        })
    }

    /// One connection attempt: TLS when `sslmode` asks for it (prefer, the default, uses it
    /// when the server offers it).
    pub fn connect(&self) -> Result<Client, postgres::Error> {
        match &self.tls {
            Some(tls) if self.config.get_ssl_mode() != SslMode::Disable => {
                self.config.connect(tls.clone())
            }
            _ => self.config.connect(NoTls),
        }
    }

    /// A PostgreSQL error about this server while doing `what`.
    pub fn error(&self, what: &str, err: postgres::Error) -> StoreError {
        let what = if self.withheld {
            format!(
                "{what} ($PGPASSWORD was not sent: this server comes from the dataset's \
                 x.postgres.json and you did not name it; pass --pg-url, or list its host in \
                 {PG_TRUSTED_HOSTS_ENV})"
            )
        } else {
            what.to_string()
        };
        StoreError::Postgres {
            server: self.public.clone(),
            what,
            err,
        }
    }
}

/// True when `c` holds no password, or its password goes encrypted (TLS required) or to a
/// local server, or the user allowed plaintext.
fn password_may_travel(c: &Config, plaintext_allowed: bool) -> bool {
    c.get_password().is_none()
        || c.get_ssl_mode() == SslMode::Require
        || c.get_hosts().iter().all(is_local)
        || plaintext_allowed
}

/// True for a Unix socket or a loopback address (nothing crosses a network).
fn is_local(h: &Host) -> bool {
    match h {
        #[cfg(unix)]
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    }
}

/// Removes `sslmode=verify-full|verify-ca` and `sslrootcert=FILE` (which tokio-postgres does
/// not parse) from a URL's query or a key=value string: (rest, verify, rootcert).
fn take_tls_options(url: &str) -> (String, bool, Option<PathBuf>) {
    let mut verify = false;
    let mut root = None;
    let mut keep = |k: &str, v: &str| -> bool {
        match (k, v) {
            ("sslmode", "verify-full" | "verify-ca") => {
                verify = true;
                false
            }
            ("sslrootcert", v) => {
                root = Some(PathBuf::from(pct_decode(v)));
                false
            }
            _ => true,
        }
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        keep(k, v)
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => url.to_string(),
        }
    } else {
        url.split_whitespace()
            .filter(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                keep(k, v)
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    (rest, verify, root)
}

/// Decodes %XX escapes (a certificate path in a URL query).
fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The rustls connector: the server's certificate checked against `roots` when given,
/// otherwise accepted unchecked (libpq's `sslmode=require`: encryption, no authentication).
fn tls_connector(
    roots: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?;
    let config = match roots {
        Some(path) => {
            let mut store = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("{}: holds no usable certificate", path.display()));
            }
            builder.with_root_certificates(store).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Accepts any server certificate but checks the handshake signatures: TLS as libpq's
/// `sslmode=require` does it, without `sslrootcert`.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// True when every host (and port) of `c` is one the user named for this run in the
/// environment: `$SCALEGNN_PG_TRUSTED_HOSTS` or libpq's `$PGHOST`/`$PGPORT`.
fn named_for_this_run(c: &Config) -> bool {
    let env = |k: &str| std::env::var(k).ok();
    named_in(
        c,
        env(PG_TRUSTED_HOSTS_ENV).as_deref(),
        env("PGHOST").as_deref(),
        env("PGPORT").as_deref(),
    )
}

/// [`named_for_this_run`] with the environment passed in.
fn named_in(c: &Config, trusted: Option<&str>, pghost: Option<&str>, pgport: Option<&str>) -> bool {
    let mut named: Vec<(String, Option<u16>)> = Vec::new();
    if let Some(list) = trusted {
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.rsplit_once(':').filter(|(h, _)| !h.ends_with(':')) {
                Some((h, p)) if p.parse::<u16>().is_ok() => {
                    named.push((h.trim_matches(['[', ']']).to_string(), p.parse().ok()))
                }
                _ => named.push((item.trim_matches(['[', ']']).to_string(), None)),
            }
        }
    }
    if let Some(h) = pghost {
        let port = pgport.and_then(|p| p.parse().ok());
        named.push((h.to_string(), Some(port.unwrap_or(5432))));
    }
    let ports = c.get_ports();
    c.get_hosts().iter().enumerate().all(|(i, h)| {
        let name = match h {
            Host::Tcp(n) => n.clone(),
            #[cfg(unix)]
            Host::Unix(p) => p.to_string_lossy().into_owned(),
        };
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        named
            .iter()
            .any(|(n, p)| *n == name && p.is_none_or(|p| p == port))
    })
}

/// The URL to use when writing: the explicit one, else `$SCALEGNN_PG_URL`.
pub(crate) fn url_for_write(explicit: Option<&str>) -> Result<Server, StoreError> {
    match explicit {
        Some(u) => Server::parse(u, "--pg-url"),
        None => match std::env::var(PG_URL_ENV) {
            Ok(u) if !u.trim().is_empty() => Server::parse(&u, PG_URL_ENV),
            _ => Err(StoreError::PgNoUrl),
        },
    }?
    .with_env_password()
}

/// The URL to use when reading: the explicit one, else `$SCALEGNN_PG_URL`, else the URL
/// recorded when the store was written. A dataset is data, not the user: the recorded URL
/// gets `$PGPASSWORD` only when its host is one the user named for this run
/// ([`PG_TRUSTED_HOSTS_ENV`], `$PGHOST`), so a crafted `x.postgres.json` cannot collect it.
pub(crate) fn url_for_read(explicit: Option<&str>, recorded: &str) -> Result<Server, StoreError> {
    match url_for_write(explicit) {
        Err(StoreError::PgNoUrl) => {
            let mut s = Server::parse(recorded, "x.postgres.json")?;
            if named_for_this_run(&s.config) {
                s.with_env_password()
            } else {
                s.withheld =
                    s.config.get_password().is_none() && std::env::var_os("PGPASSWORD").is_some();
                Ok(s)
            }
        }
        other => other,
    }
}

/// True for errors that a fresh connection may cure: the connection dropped, the server is
/// starting or shutting down, or it could not be reached at all.
pub(crate) fn is_transient(e: &postgres::Error) -> bool {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        // 08: connection exception; 57P01-03: admin/crash shutdown, cannot connect now;
        // 53300: too many connections.
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300");
    }
    if e.is_closed() {
        return true;
    }
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        if cause.is::<std::io::Error>() {
            return true;
        }
        src = cause.source();
    }
    let msg = e.to_string();
    msg.starts_with("error connecting to server")
        || msg.starts_with("timeout")
        || msg.starts_with("error communicating with the server")
}

/// How often and how patiently transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (the first try included); at least 1.
    pub attempts: u32,
    /// Wait before the second attempt; doubles before each further one.
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, 50 ms doubling: up to 1.55 s of waiting, enough to ride out a fast restart.
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            first_backoff: Duration::from_millis(50),
        }
    }
}

/// Outcome of one attempt inside [`retry`].
pub(crate) enum Attempt<T> {
    Done(T),
    /// A transient PostgreSQL failure: wait and try again (on a fresh connection).
    Transient(postgres::Error),
    /// Anything else ends the retries at once.
    Fatal(StoreError),
}

/// Runs `f` until it succeeds, fails for good, or the policy's attempts are spent; the last
/// case is `PgUnavailable`, naming the server and the number of attempts.
pub(crate) fn retry<T>(
    server: &Server,
    policy: RetryPolicy,
    what: &str,
    mut f: impl FnMut(u32) -> Attempt<T>,
) -> Result<T, StoreError> {
    let start = Instant::now();
    let attempts = policy.attempts.max(1);
    let mut wait = policy.first_backoff;
    let mut last = String::new();
    for k in 0..attempts {
        if k > 0 {
            std::thread::sleep(wait);
            wait = wait.saturating_mul(2);
        }
        match f(k) {
            Attempt::Done(v) => return Ok(v),
            Attempt::Fatal(e) => return Err(e),
            Attempt::Transient(e) => last = crate::error::pg_detail(&e),
        }
    }
    Err(StoreError::PgUnavailable {
        server: server.public.clone(),
        what: what.to_string(),
        attempts,
        waited_ms: start.elapsed().as_millis() as u64,
        last,
    })
}

/// The URL of `c` without the password: `postgres://user@host:port,host2:port2/db?params`.
fn public_url(c: &Config, tls_query: Vec<(String, String)>) -> String {
    let mut s = String::from("postgres://");
    if let Some(u) = c.get_user() {
        s.push_str(&pct(u));
        s.push('@');
    }
    let ports = c.get_ports();
    let port_of = |i: usize| ports.get(i).or(ports.first()).copied();
    let mut query: Vec<(String, String)> = Vec::new();
    let tcp: Vec<String> = c
        .get_hosts()
        .iter()
        .enumerate()
        .filter_map(|(i, h)| match h {
            Host::Tcp(name) => {
                let host = if name.contains(':') {
                    format!("[{name}]")
                } else {
                    pct(name)
                };
                Some(match port_of(i) {
                    Some(p) => format!("{host}:{p}"),
                    None => host,
                })
            }
            #[cfg(unix)]
            Host::Unix(_) => None,
        })
        .collect();
    if tcp.len() == c.get_hosts().len() {
        s.push_str(&tcp.join(","));
    } else {
        // Unix sockets (or a mix): hosts and ports as query parameters.
        for (i, h) in c.get_hosts().iter().enumerate() {
            let name = match h {
                Host::Tcp(n) => n.clone(),
                #[cfg(unix)]
                Host::Unix(p) => p.to_string_lossy().into_owned(),
            };
            query.push(("host".into(), name));
            if let Some(p) = port_of(i) {
                query.push(("port".into(), p.to_string()));
            }
        }
    }
    s.push('/');
    if let Some(db) = c.get_dbname() {
        s.push_str(&pct(db));
    }
    if let Some(o) = c.get_options() {
        query.push(("options".into(), o.to_string()));
    }
    if let Some(a) = c.get_application_name().filter(|&a| a != "scalegnn") {
        query.push(("application_name".into(), a.to_string()));
    }
    query.extend(tls_query);
    for (i, (k, v)) in query.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(k);
        s.push('=');
        s.push_str(&pct(v));
    }
    s
}

/// Percent-encodes everything but unreserved URL characters.
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_drops_the_password() {
        let s = Server::parse(
            "postgres://alice:s3cret@db.example:5433/feat?options=-c%20search_path%3Dgnn&sslmode=require",
            "test",
        )
        .unwrap();
        assert_eq!(
            s.public,
            "postgres://alice@db.example:5433/feat?options=-c%20search_path%3Dgnn&sslmode=require"
        );
        assert_eq!(s.config.get_password(), Some(&b"s3cret"[..]));
        let again = Server::parse(&s.public, "test").unwrap();
        assert_eq!(again.public, s.public);
        assert!(again.config.get_password().is_none());
        let kv = Server::parse(
            "host=/run/postgresql port=5432 user=bob password=x dbname=d",
            "t",
        )
        .unwrap();
        assert_eq!(
            kv.public,
            "postgres://bob@/d?host=%2Frun%2Fpostgresql&port=5432"
        );
        assert!(!kv.public.contains("x&") && !kv.public.contains("password"));
        let e = Server::parse("postgres://u:hunter2@h:notaport/d", "--pg-url")
            .err()
            .unwrap();
        let msg = e.to_string();
        assert!(
            msg.contains("--pg-url") && !msg.contains("hunter2"),
            "{msg}"
        );
    }

    #[test]
    fn passwords_go_only_where_the_user_said_and_never_in_clear() {
        let cfg = |u: &str| Server::parse(u, "t").map(|s| s.config);
        // Over TLS, or to a local server: allowed. Remote and unencrypted: refused.
        let remote = cfg("postgres://u@db.example:5432/d").unwrap();
        assert!(password_may_travel(&remote, false));
        let mut with_pw = remote.clone();
        with_pw.password("x");
        assert!(!password_may_travel(&with_pw, false));
        assert!(password_may_travel(&with_pw, true));
        let e = Server::parse("postgres://u:hunter2@db.example:5432/d", "--pg-url")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("unencrypted") && !e.contains("hunter2"), "{e}");
        Server::parse("postgres://u:pw@db.example/d?sslmode=require", "t").unwrap();
        Server::parse("postgres://u:pw@127.0.0.1:5/d", "t").unwrap();
        Server::parse("postgres://u:pw@localhost:5/d", "t").unwrap();
        Server::parse("host=/run/postgresql user=u password=pw dbname=d", "t").unwrap();
        // A recorded URL's host must be named by the user for this run.
        let rec = cfg("postgres://victim@127.0.0.1:54329/feat").unwrap();
        assert!(!named_in(&rec, None, None, None));
        assert!(!named_in(&rec, Some("127.0.0.1:5432"), None, None));
        assert!(!named_in(&rec, None, Some("127.0.0.1"), None));
        assert!(named_in(&rec, Some("db, 127.0.0.1:54329"), None, None));
        assert!(named_in(&rec, Some("127.0.0.1"), None, None));
        assert!(named_in(&rec, None, Some("127.0.0.1"), Some("54329")));
    }

    #[test]
    fn tls_options_and_certificates() {
        let (rest, verify, root) = take_tls_options(
            "postgres://u@h/d?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x",
        );
        assert_eq!(rest, "postgres://u@h/d?application_name=x");
        assert!(verify);
        assert_eq!(root, Some(PathBuf::from("/tmp/ca.pem")));
        let (rest, verify, _) = take_tls_options("host=h sslmode=verify-ca dbname=d");
        assert_eq!((rest.as_str(), verify), ("host=h dbname=d", true));
        let s = Server::parse("postgres://u@h/d?sslmode=require", "t").unwrap();
        assert!(s.tls.is_some());
        assert!(Server::parse("postgres://u@h/d?sslmode=disable", "t")
            .unwrap()
            .tls
            .is_none());
        // A certificate file that is not one is named in the error.
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("ca.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        let url = format!(
            "postgres://u@h/d?sslmode=verify-full&sslrootcert={}",
            bad.display()
        );
        let e = Server::parse(&url, "t").err().unwrap().to_string();
        assert!(e.contains("ca.pem"), "{e}");
    }

    #[test]
    fn retry_gives_up_naming_server_and_attempts() {
        let s = Server::parse("postgres://u@127.0.0.1:1/d", "t").unwrap();
        let policy = RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(1),
        };
        let mut calls = 0;
        let e = retry::<()>(&s, policy, "reading", |_| {
            calls += 1;
            match s.connect() {
                Ok(_) => Attempt::Done(()),
                Err(e) if is_transient(&e) => Attempt::Transient(e),
                Err(e) => Attempt::Fatal(s.error("connecting", e)),
            }
        })
        .unwrap_err();
        assert_eq!(calls, 3);
        let msg = e.to_string();
        assert!(
            msg.contains("postgres://u@127.0.0.1:1/d") && msg.contains("3 attempts"),
            "{msg}"
        );
    }
}
