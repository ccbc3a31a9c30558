//! Server connections: which URL to use (flag, env, or the one recorded beside the dataset),
//! the URL as shown and recorded (never with its password), connecting with timeouts, and the
//! bounded retry with exponential backoff used for transient failures.

use std::time::{Duration, Instant};

use postgres::config::Host;
use postgres::{Client, Config, NoTls};

use crate::StoreError;

/// Environment variable read when no URL is passed explicitly.
pub const PG_URL_ENV: &str = "SCALEGNN_PG_URL";

/// How long one connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed server address: the config to connect with and the URL to show (no password).
#[derive(Clone)]
pub(crate) struct Server {
    pub config: Config,
    /// `postgres://user@host:port/db?...` without the password: used in messages and recorded
    /// in `x.postgres.json`.
    pub public: String,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.public)
    }
}

impl Server {
    /// Parses a `postgres://` URL or a `key=value` connection string. `origin` names where it
    /// came from, for the error message (the URL itself is never echoed: it may hold a password).
    pub fn parse(url: &str, origin: &str) -> Result<Server, StoreError> {
        let mut config: Config = url
            .parse()
            .map_err(|e: postgres::Error| StoreError::PgUrl {
                origin: origin.to_string(),
                reason: crate::error::pg_detail(&e),
            })?;
        if config.get_hosts().is_empty() {
            return Err(StoreError::PgUrl {
                origin: origin.to_string(),
                reason: "no host given".into(),
            });
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
        let public = public_url(&config);
        Ok(Server { config, public })
    }

    /// Fills in a password from `PGPASSWORD` when the URL has none.
    pub fn with_env_password(mut self) -> Server {
        if self.config.get_password().is_none() {
            if let Ok(p) = std::env::var("PGPASSWORD") {
                self.config.password(p);
            }
        }
        self
    }

    /// One connection attempt.
    pub fn connect(&self) -> Result<Client, postgres::Error> {
        self.config.connect(NoTls)
    }

    /// A PostgreSQL error about this server while doing `what`.
    pub fn error(&self, what: &str, err: postgres::Error) -> StoreError {
        StoreError::Postgres {
            server: self.public.clone(),
            what: what.to_string(),
            err,
        }
    }
}

/// The URL to use when writing: the explicit one, else `$SCALEGNN_PG_URL`.
pub(crate) fn url_for_write(explicit: Option<&str>) -> Result<Server, StoreError> {
    match explicit {
        Some(u) => Server::parse(u, "--pg-url"),
        None => match std::env::var(PG_URL_ENV) {
            Ok(u) if !u.trim().is_empty() => Server::parse(&u, PG_URL_ENV),
            _ => Err(StoreError::PgNoUrl),
        },
    }
    .map(Server::with_env_password)
}

/// The URL to use when reading: the explicit one, else `$SCALEGNN_PG_URL`, else the URL
/// recorded when the store was written (which carries no password: `PGPASSWORD` supplies it).
pub(crate) fn url_for_read(explicit: Option<&str>, recorded: &str) -> Result<Server, StoreError> {
    match url_for_write(explicit) {
        Err(StoreError::PgNoUrl) => {
            Server::parse(recorded, "x.postgres.json").map(Server::with_env_password)
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
fn public_url(c: &Config) -> String {
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
            "postgres://alice:s3cret@db.example:5433/feat?options=-c%20search_path%3Dgnn",
            "test",
        )
        .unwrap();
        assert_eq!(
            s.public,
            "postgres://alice@db.example:5433/feat?options=-c%20search_path%3Dgnn"
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
