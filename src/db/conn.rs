//! Connections: parsing the URL, libpq `sslmode` semantics over native-tls, retry while
//! the server starts, and error messages that never carry the password.

use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use native_tls::{Certificate, TlsConnector};
use postgres_native_tls::MakeTlsConnector;
use tokio::runtime::Runtime;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_postgres::error::{DbError, SqlState};
use tokio_postgres::{AsyncMessage, Client, Config};

/// libpq's sslmode values (allow is treated as prefer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                "unknown sslmode `{other}`: use disable, prefer, require, verify-ca or verify-full"
            ))
            }
        })
    }
}

/// Where to connect, parsed once. Displays redacted.
#[derive(Clone)]
pub struct Target {
    config: Config,
    pub sslmode: SslMode,
    /// Path of a CA bundle, or `system` for the platform's trusted roots.
    pub sslrootcert: Option<String>,
    /// The URL with the password replaced by `***`: the only form ever shown.
    pub redacted: String,
    /// Secrets to mask in CI logs.
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("database URL is not valid: {0}")]
    BadUrl(String),
    #[error("connecting to {target}: {message}")]
    Failed { target: String, message: String },
}

impl Target {
    /// Parse a `postgres://user:pass@host:port/db?sslmode=…&sslrootcert=…` URL or a
    /// libpq `key=value` string. Error messages show only the redacted form.
    pub fn parse(input: &str) -> Result<Target, ConnectError> {
        let input = input.trim();
        let mut sslmode = SslMode::Prefer;
        let mut sslrootcert = None;
        let mut secrets = Vec::new();
        let (rest, redacted) =
            if input.starts_with("postgres://") || input.starts_with("postgresql://") {
                let mut url = url::Url::parse(input).map_err(|e| {
                    ConnectError::BadUrl(format!(
                        "{e} (the URL is not shown because it may contain a password)"
                    ))
                })?;
                if let Some(p) = url.password() {
                    let decoded = percent_decode(p);
                    secrets.push(decoded.clone());
                    if decoded != p {
                        secrets.push(p.to_string());
                    }
                }
                let mut kept: Vec<(String, String)> = Vec::new();
                for (k, v) in url.query_pairs() {
                    match k.as_ref() {
                        "sslmode" => sslmode = v.parse().map_err(ConnectError::BadUrl)?,
                        "sslrootcert" => sslrootcert = Some(v.into_owned()),
                        "password" => {
                            secrets.push(v.to_string());
                            kept.push((k.into_owned(), v.into_owned()));
                        }
                        _ => kept.push((k.into_owned(), v.into_owned())),
                    }
                }
                url.set_query(None);
                if !kept.is_empty() {
                    url.query_pairs_mut()
                        .extend_pairs(kept.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                }
                let rest = url.to_string();
                let mut shown = url.clone();
                if shown.password().is_some() {
                    let _ = shown.set_password(Some("***"));
                }
                let shown_pairs: Vec<(String, String)> = shown
                    .query_pairs()
                    .map(|(k, v)| {
                        let hide = k == "password";
                        (
                            k.into_owned(),
                            if hide { "***".into() } else { v.into_owned() },
                        )
                    })
                    .collect();
                shown.set_query(None);
                if !shown_pairs.is_empty() {
                    shown
                        .query_pairs_mut()
                        .extend_pairs(shown_pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                }
                (rest, shown.to_string())
            } else {
                let mut kept = Vec::new();
                let mut shown = Vec::new();
                for word in input.split_whitespace() {
                    let (k, v) = word.split_once('=').ok_or_else(|| {
                        ConnectError::BadUrl("expected postgres://… or key=value pairs".into())
                    })?;
                    match k {
                        "sslmode" => sslmode = v.parse().map_err(ConnectError::BadUrl)?,
                        "sslrootcert" => sslrootcert = Some(v.to_string()),
                        "password" => {
                            secrets.push(v.trim_matches('\'').to_string());
                            kept.push(word.to_string());
                            shown.push("password=***".to_string());
                            continue;
                        }
                        _ => kept.push(word.to_string()),
                    }
                    shown.push(word.to_string());
                }
                (kept.join(" "), shown.join(" "))
            };
        let mut config =
            Config::from_str(&rest).map_err(|e| ConnectError::BadUrl(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        secrets.retain(|s| !s.is_empty());
        Ok(Target {
            config,
            sslmode,
            sslrootcert,
            redacted,
            secrets,
        })
    }

    pub fn user(&self) -> Option<&str> {
        self.config.get_user()
    }

    pub fn dbname(&self) -> Option<&str> {
        self.config.get_dbname()
    }

    fn tls(&self) -> Result<MakeTlsConnector, String> {
        let mut b = TlsConnector::builder();
        // libpq: prefer and require encrypt without verifying the server — except that
        // require with a root certificate given behaves like verify-ca.
        let verify = match self.sslmode {
            SslMode::Disable | SslMode::Prefer => false,
            SslMode::Require => self.sslrootcert.is_some(),
            SslMode::VerifyCa | SslMode::VerifyFull => true,
        };
        if !verify {
            b.danger_accept_invalid_certs(true);
            b.danger_accept_invalid_hostnames(true);
        } else {
            match self.sslrootcert.as_deref() {
                None => {
                    return Err(format!(
                        "sslmode={} needs the CA certificate that signed the server's certificate: \
                         add sslrootcert=/path/to/ca.crt to the URL (or sslrootcert=system for the \
                         system's trusted roots), or use sslmode=require to encrypt without verifying",
                        if self.sslmode == SslMode::VerifyCa { "verify-ca" } else { "verify-full" }
                    ))
                }
                Some("system") => {}
                Some(path) => {
                    let pem = std::fs::read(path).map_err(|e| format!("reading sslrootcert {path}: {e}"))?;
                    b.disable_built_in_roots(true);
                    for cert in split_pem(&pem) {
                        let c = Certificate::from_pem(&cert).map_err(|e| format!("sslrootcert {path}: {e}"))?;
                        b.add_root_certificate(c);
                    }
                }
            }
            if self.sslmode != SslMode::VerifyFull {
                b.danger_accept_invalid_hostnames(true);
            }
        }
        let connector = b.build().map_err(|e| format!("setting up TLS: {e}"))?;
        Ok(MakeTlsConnector::new(connector))
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

fn split_pem(pem: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        cur.push_str(line);
        cur.push('\n');
        if line.starts_with("-----END CERTIFICATE") {
            out.push(std::mem::take(&mut cur).into_bytes());
        }
    }
    if out.is_empty() {
        out.push(pem.to_vec());
    }
    out
}

/// Run the connection on the session's runtime, forwarding NOTICEs to a channel.
fn drive<S, T>(
    rt: &Runtime,
    mut connection: tokio_postgres::Connection<S, T>,
) -> UnboundedReceiver<DbError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, notices) = unbounded_channel();
    rt.spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notice(n)) => {
                    let _ = tx.send(n);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    notices
}

/// One database session, driven synchronously. NOTICEs the server sends are kept for the
/// caller to report (they are untrusted text).
pub struct Db {
    rt: Runtime,
    client: Client,
    notices: UnboundedReceiver<DbError>,
    pub backend_pid: i32,
    pub server_version: String,
}

/// What a failed connection attempt was, for the retry decision and the message.
fn classify(target: &Target, e: &tokio_postgres::Error) -> (bool, String) {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let retry =
            *code == SqlState::CANNOT_CONNECT_NOW || *code == SqlState::TOO_MANY_CONNECTIONS;
        let hint = if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            "; check the user and password in the database URL"
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            "; create the database first, or fix the database name in the URL"
        } else {
            ""
        };
        return (
            retry,
            format!("{} (SQLSTATE {}){hint}", db.message(), code.code()),
        );
    }
    let mut chain = Vec::new();
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut refused = false;
    let mut tls = false;
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                refused = true;
            }
        }
        if s.downcast_ref::<native_tls::Error>().is_some() {
            tls = true;
        }
        let t = s.to_string();
        if !chain.iter().any(|c: &String| c.contains(&t)) {
            chain.push(t);
        }
        src = s.source();
    }
    let text = chain.join(": ");
    let lower = text.to_lowercase();
    if refused {
        return (true, format!("connection refused ({text}); is PostgreSQL running and listening on that host and port?"));
    }
    if lower.contains("failed to lookup address") || lower.contains("name or service not known") {
        return (
            false,
            format!("unknown host ({text}); check the host name in the database URL"),
        );
    }
    if lower.contains("server does not support tls") {
        return (false, format!("{text}; the server has TLS off: enable ssl on the server or use sslmode=prefer/disable"));
    }
    if tls || lower.contains("tls") || lower.contains("certificate") {
        let mode = match target.sslmode {
            SslMode::VerifyFull => " (sslmode=verify-full checks the certificate chain against sslrootcert and that the certificate names the host in the URL)",
            SslMode::VerifyCa => " (sslmode=verify-ca checks the certificate chain against sslrootcert)",
            _ => "",
        };
        return (false, format!("TLS handshake failed: {text}{mode}"));
    }
    if lower.contains("timed out") {
        return (
            false,
            format!("{text}; the host did not answer (firewall, wrong port, or server down)"),
        );
    }
    (false, text)
}

/// Redact secrets from any text about to leave the process.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.len() >= 2 {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

impl Db {
    /// Connect, retrying with backoff for up to `retry_for` while the server is starting
    /// or refuses connections (a database container that is still booting). `on_retry`
    /// hears about each wait.
    pub fn connect(
        target: &Target,
        application_name: &str,
        retry_for: Duration,
        on_retry: &mut dyn FnMut(u32, Duration, &str),
    ) -> Result<Db, ConnectError> {
        let fail = |message: String| ConnectError::Failed {
            target: target.redacted.clone(),
            message: redact(&message, &target.secrets),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail(format!("starting the I/O runtime: {e}")))?;
        // Building a TLS connector loads the system's CA store: skip it when TLS is off.
        let tls = match target.sslmode {
            SslMode::Disable => None,
            _ => Some(target.tls().map_err(fail)?),
        };
        let mut config = target.config.clone();
        config.application_name(application_name);
        config.ssl_mode(match target.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let started = Instant::now();
        let mut attempt = 0u32;
        let mut wait = Duration::from_millis(100);
        let (client, notices) = loop {
            attempt += 1;
            let result = match &tls {
                None => rt
                    .block_on(config.connect(tokio_postgres::NoTls))
                    .map(|(c, conn)| (c, drive(&rt, conn))),
                Some(tls) => rt
                    .block_on(config.connect(tls.clone()))
                    .map(|(c, conn)| (c, drive(&rt, conn))),
            };
            match result {
                Ok(pair) => break pair,
                Err(e) => {
                    let (retry, message) = classify(target, &e);
                    if !retry || started.elapsed() + wait > retry_for {
                        return Err(fail(message));
                    }
                    on_retry(attempt, wait, &redact(&message, &target.secrets));
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        };
        let mut db = Db {
            rt,
            client,
            notices,
            backend_pid: 0,
            server_version: String::new(),
        };
        // Simple protocol: one round trip (the extended protocol would add a Parse).
        let rows = db
            .run(|c| async move {
                c.simple_query("SELECT pg_backend_pid(), current_setting('server_version')")
                    .await
            })
            .map_err(|e| fail(format!("first query failed: {e}")))?;
        for m in rows {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                db.backend_pid = r.get(0).and_then(|v| v.parse().ok()).unwrap_or(0);
                db.server_version = r.get(1).unwrap_or_default().to_string();
            }
        }
        Ok(db)
    }

    /// Run async client work to completion on this session's runtime.
    pub fn run<'a, F, T>(&'a mut self, f: impl FnOnce(&'a Client) -> F) -> T
    where
        F: Future<Output = T> + 'a,
    {
        let fut = f(&self.client);
        self.rt.block_on(fut)
    }

    /// Simple-query protocol: one or more statements, no parameters.
    pub fn batch(&mut self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.rt.block_on(self.client.batch_execute(sql))
    }

    pub fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        self.rt.block_on(self.client.query(sql, params))
    }

    pub fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        self.rt.block_on(self.client.execute(sql, params))
    }

    /// `COPY … FROM STDIN` with the given data.
    pub fn copy_in(&mut self, sql: &str, data: &[u8]) -> Result<u64, tokio_postgres::Error> {
        use futures_util::SinkExt;
        let client = &self.client;
        self.rt.block_on(async move {
            let sink = client.copy_in::<_, bytes::Bytes>(sql).await?;
            futures_util::pin_mut!(sink);
            sink.send(bytes::Bytes::copy_from_slice(data)).await?;
            sink.finish().await
        })
    }

    /// NOTICE/WARNING messages received since the last call.
    pub fn take_notices(&mut self) -> Vec<DbError> {
        // Let the connection task forward anything already read.
        self.rt.block_on(tokio::task::yield_now());
        let mut out = Vec::new();
        while let Ok(n) = self.notices.try_recv() {
            out.push(n);
        }
        out
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_redacted_and_ssl_params_taken_out() {
        let t = Target::parse("postgres://app:s3cr%40t@db.example:5433/app?sslmode=verify-full&sslrootcert=/ca.pem&application_name=x").unwrap();
        assert_eq!(t.sslmode, SslMode::VerifyFull);
        assert_eq!(t.sslrootcert.as_deref(), Some("/ca.pem"));
        assert!(!t.redacted.contains("s3cr"), "{}", t.redacted);
        assert!(t.redacted.contains("***"));
        assert!(t.secrets.contains(&"s3cr@t".to_string()));
        assert_eq!(t.dbname(), Some("app"));
        assert_eq!(t.user(), Some("app"));
    }

    #[test]
    fn key_value_form_redacted() {
        let t = Target::parse("host=localhost user=u password=hunter22 dbname=d sslmode=disable")
            .unwrap();
        assert_eq!(t.sslmode, SslMode::Disable);
        assert!(!t.redacted.contains("hunter22"));
        assert_eq!(redact("oops hunter22", &t.secrets), "oops ***");
    }

    #[test]
    fn bad_sslmode_and_url_never_echo_secret() {
        let e = Target::parse("postgres://u:pw123456@h/d?sslmode=bogus").unwrap_err();
        assert!(e.to_string().contains("unknown sslmode"));
        let e = Target::parse("postgres://u:pw123456@h:notaport/d").unwrap_err();
        assert!(!e.to_string().contains("pw123456"), "{e}");
    }
}
