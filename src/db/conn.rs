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

use super::libpq::{self, LibpqEnv};

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
    /// Secrets to mask in CI logs: the password as given, percent-decoded, and as the URL
    /// parser re-encodes it (longest first, so no part of one survives another's masking).
    pub secrets: Vec<String>,
    /// The effective libpq settings after defaults (password included), for child
    /// processes: see [`Target::child_conninfo`].
    settings: libpq::Pairs,
    /// What libpq would warn about while reading the settings (an ignored password file).
    pub warnings: Vec<String>,
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

/// Client-certificate and revocation options libpq knows but pgrollout does not implement:
/// refused by name rather than ignored, so a connection is never less checked than asked.
const UNSUPPORTED: &[&str] = &["sslcert", "sslkey", "sslpassword", "sslcrl", "sslcrldir"];

fn unsupported(key: &str, from_env: bool) -> ConnectError {
    let remove = match libpq::ENV_KEYWORDS.iter().find(|(_, k)| *k == key) {
        Some((var, _)) if from_env => format!("unset {var} (or the service file's `{key}`)"),
        _ => "remove it from the database URL".to_string(),
    };
    ConnectError::BadUrl(format!(
        "`{key}` is not supported (pgrollout does not present client certificates or check \
         revocation lists); {remove}"
    ))
}

impl Target {
    /// Parse a `postgres://user:pass@host:port/db?sslmode=…&sslrootcert=…` URL or a
    /// libpq `key=value` string. Error messages show only the redacted form.
    ///
    /// Follows libpq: the default sslmode is `prefer`; `sslrootcert=system` defaults to
    /// `verify-full` and refuses weaker modes (libpq 16), because the system's roots vouch
    /// for any host they signed a certificate for, so only a host name check means anything.
    /// Unlike libpq, `~/.postgresql/root.crt` is not looked for: verify-ca and verify-full
    /// need `sslrootcert`, so what is trusted is written in the URL.
    pub fn parse(input: &str) -> Result<Target, ConnectError> {
        Target::parse_with(input, &LibpqEnv::default())
    }

    /// [`Target::parse`] with libpq's defaults from `env`: the service file, the `PG*`
    /// variables for whatever the URL leaves out, and the password file when no password
    /// is given. An empty `input` means "the environment alone", as `psql` with no
    /// arguments.
    pub fn parse_with(input: &str, env: &LibpqEnv) -> Result<Target, ConnectError> {
        let input = input.trim();
        let mut secrets = secrets_in(input);
        secrets.extend(env.vars.get("PGPASSWORD").cloned());
        let is_uri = input.starts_with("postgres://") || input.starts_with("postgresql://");
        let mut pairs = if is_uri {
            libpq::parse_uri(input).map_err(|e| {
                ConnectError::BadUrl(format!(
                    "{e} (the URL is not shown because it may contain a password)"
                ))
            })?
        } else {
            conninfo_pairs(input).map_err(ConnectError::BadUrl)?
        };
        let given: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
        let redacted = if input.is_empty() {
            String::new()
        } else if is_uri {
            redact_uri(input)
        } else {
            pairs
                .iter()
                .map(|(k, v)| match k.as_str() {
                    "password" => "password=***".to_string(),
                    _ => format!("{k}={}", conninfo_quote(v)),
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        libpq::add_defaults(&mut pairs, env).map_err(ConnectError::BadUrl)?;
        let mut warnings = Vec::new();
        if libpq::get(&pairs, "password").is_none() {
            let found = libpq::password_from_file(&pairs, env);
            warnings.extend(found.warning);
            if let Some(p) = found.password {
                pairs.push(("password".into(), p));
            }
        }
        let mut sslmode = None;
        let mut sslrootcert = None;
        let mut kept = libpq::Pairs::new();
        for (k, v) in &pairs {
            match k.as_str() {
                "sslmode" => sslmode = Some(v.parse().map_err(ConnectError::BadUrl)?),
                "sslrootcert" => sslrootcert = Some(v.clone()),
                // Consumed by `add_defaults` and the password-file lookup.
                "service" | "passfile" => {}
                key if UNSUPPORTED.contains(&key) => {
                    return Err(unsupported(key, !given.iter().any(|g| g == key)))
                }
                "password" => {
                    secrets.push(v.clone());
                    kept.push((k.clone(), v.clone()));
                }
                _ => kept.push((k.clone(), v.clone())),
            }
        }
        let redacted = if redacted.is_empty() {
            // Nothing was typed: show what the environment chose.
            kept.iter()
                .filter(|(k, _)| k != "password")
                .map(|(k, v)| format!("{k}={}", conninfo_quote(v)))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            redacted
        };
        let rest = kept
            .iter()
            .map(|(k, v)| format!("{k}={}", conninfo_quote(v)))
            .collect::<Vec<_>>()
            .join(" ");
        let config = Config::from_str(&rest)
            .map_err(|e| ConnectError::BadUrl(redact(&e.to_string(), &secrets)))?;
        let sslmode = match (sslmode, sslrootcert.as_deref()) {
            (None, Some("system")) => SslMode::VerifyFull,
            (None, _) => SslMode::Prefer,
            (Some(mode), _) => mode,
        };
        match (sslmode, sslrootcert.as_deref()) {
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
                return Err(ConnectError::BadUrl(format!(
                    "sslmode={} needs sslrootcert: add sslrootcert=/path/to/ca.crt (the CA \
                     certificate that signed the server's certificate, PEM) or \
                     sslrootcert=system (the system's trusted roots) to the URL, or use \
                     sslmode=require to encrypt without verifying the server",
                    sslmode.name()
                )))
            }
            (
                SslMode::Disable | SslMode::Prefer | SslMode::Require | SslMode::VerifyCa,
                Some("system"),
            ) => {
                return Err(ConnectError::BadUrl(format!(
                    "sslmode={} cannot be used with sslrootcert=system: the system's roots \
                     sign certificates for any host, so only sslmode=verify-full (which checks \
                     the host name too) protects the connection",
                    sslmode.name()
                )))
            }
            _ => {}
        }
        secrets.retain(|s| !s.is_empty());
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Ok(Target {
            config,
            sslmode,
            sslrootcert,
            redacted,
            secrets,
            settings: pairs,
            warnings,
        })
    }

    /// The settings as a libpq `key=value` string without the password, and the password:
    /// how a child process (pg_dump) is told where to connect. The password goes in its
    /// environment (PGPASSWORD), never on its command line, where `ps` shows it.
    pub fn child_conninfo(&self) -> (String, Option<String>) {
        let mut password = None;
        let mut words = Vec::new();
        for (k, v) in &self.settings {
            match k.as_str() {
                "password" => password = Some(v.clone()),
                "service" | "passfile" => {}
                _ => words.push(format!("{k}={}", conninfo_quote(v))),
            }
        }
        (words.join(" "), password)
    }

    pub fn user(&self) -> Option<&str> {
        self.config.get_user()
    }

    pub fn dbname(&self) -> Option<&str> {
        self.config.get_dbname()
    }

    /// The same server and credentials, another database (a scratch copy, the
    /// maintenance database). Shown as the original URL with the database named after it.
    pub fn with_dbname(&self, dbname: &str) -> Target {
        let mut t = self.clone();
        t.config.dbname(dbname);
        t.redacted = format!("{} (database {dbname})", self.redacted);
        t
    }

    /// `host:port` of every host in the URL, for messages (`[::1]:5432`, `/run/postgresql`).
    pub fn endpoints(&self) -> String {
        use tokio_postgres::config::Host;
        let ports = self.config.get_ports();
        let hosts = self.config.get_hosts();
        let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        let shown: Vec<String> = if hosts.is_empty() {
            self.config
                .get_hostaddrs()
                .iter()
                .enumerate()
                .map(|(i, a)| match a {
                    std::net::IpAddr::V6(_) => format!("[{a}]:{}", port(i)),
                    std::net::IpAddr::V4(_) => format!("{a}:{}", port(i)),
                })
                .collect()
        } else {
            hosts
                .iter()
                .enumerate()
                .map(|(i, h)| match h {
                    Host::Tcp(name) if name.contains(':') => format!("[{name}]:{}", port(i)),
                    Host::Tcp(name) => format!("{name}:{}", port(i)),
                    Host::Unix(dir) => {
                        format!("{} (unix socket .s.PGSQL.{})", dir.display(), port(i))
                    }
                })
                .collect()
        };
        shown.join(", ")
    }

    /// The host names a verify-full certificate must carry.
    fn tls_host_names(&self) -> String {
        use tokio_postgres::config::Host;
        let names: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .filter_map(|h| match h {
                Host::Tcp(name) => Some(name.clone()),
                Host::Unix(_) => None,
            })
            .collect();
        names.join(", ")
    }

    /// The TLS connector sslmode asks for; `Err` says what to fix in the URL or on disk.
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
                // `parse` refuses verify-ca/verify-full without sslrootcert.
                None => unreachable!("verification without sslrootcert"),
                Some("system") => {}
                Some(path) => {
                    let pem = std::fs::read(path).map_err(|e| {
                        format!(
                            "reading sslrootcert {path}: {e}; give the path of the CA \
                             certificate (PEM) that signed the server's certificate"
                        )
                    })?;
                    let certs = split_pem(&pem);
                    if certs.is_empty() {
                        return Err(format!(
                            "sslrootcert {path} holds no PEM certificate (no -----BEGIN \
                             CERTIFICATE----- block); give the CA certificate in PEM form"
                        ));
                    }
                    b.disable_built_in_roots(true);
                    for cert in certs {
                        let c = Certificate::from_pem(&cert)
                            .map_err(|e| format!("reading sslrootcert {path}: {e}"))?;
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

impl SslMode {
    /// The libpq spelling.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The password wherever it can be found in `input`, in every spelling that could be
/// echoed back: as typed and percent-decoded. Never fails, so even a URL too broken to
/// parse has its password masked in the error that says so.
pub fn secrets_in(input: &str) -> Vec<String> {
    let input = input.trim();
    let mut out = Vec::new();
    let mut add = |s: &str| {
        if !s.is_empty() {
            out.push(s.to_string());
            let decoded = percent_decode(s);
            if decoded != s {
                out.push(decoded);
            }
        }
    };
    if let Some(after) = input
        .strip_prefix("postgres://")
        .or_else(|| input.strip_prefix("postgresql://"))
    {
        // The user info ends at the last `@` before the query: a password with an
        // unencoded `/` or `@` is still caught.
        let authority = after.split('?').next().unwrap_or(after);
        if let Some(at) = authority.rfind('@') {
            if let Some((_, password)) = authority[..at].split_once(':') {
                add(password);
            }
        }
        if let Some((_, query)) = after.split_once('?') {
            for pair in query.split('&') {
                if let Some(v) = pair.strip_prefix("password=") {
                    add(v);
                }
            }
        }
    } else if let Ok(pairs) = conninfo_pairs(input) {
        for (k, v) in pairs {
            if k == "password" {
                add(&v);
            }
        }
    } else {
        for word in input.split_whitespace() {
            if let Some(v) = word.strip_prefix("password=") {
                add(v.trim_matches('\''));
            }
        }
    }
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

/// A URI as typed with its password (in the user info or a `password=` parameter)
/// replaced by `***`.
fn redact_uri(input: &str) -> String {
    let (head, query) = match input.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (input, None),
    };
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let (scheme, rest) = head.split_at(scheme_end);
    let mut out = scheme.to_string();
    match rest.find(['@', '/']) {
        Some(i) if rest.as_bytes()[i] == b'@' => {
            let userinfo = &rest[..i];
            match userinfo.split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:***")),
                None => out.push_str(userinfo),
            }
            out.push_str(&rest[i..]);
        }
        _ => out.push_str(rest),
    }
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if percent_decode(k) == "password" => format!("{k}=***"),
                _ => p.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// Splits a libpq `key=value …` string; a value may be single-quoted, with `\'` and `\\`
/// escapes inside (libpq's rules).
fn conninfo_pairs(input: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!(
                "expected postgres://… or key=value pairs, found `{key}` without `=`"
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("the value of `{key}` has no closing quote")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

/// A libpq conninfo value, quoted when it has to be.
fn conninfo_quote(value: &str) -> String {
    if !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\')
    {
        return value.to_string();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A percent-encoded URL component, decoded byte-exact (`+` stays `+`: in a URL's
/// userinfo and query values libpq does not read it as a space).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn split_pem(pem: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE") {
            inside = true;
            cur.clear();
        }
        if inside {
            cur.push_str(line);
            cur.push('\n');
        }
        if line.starts_with("-----END CERTIFICATE") && inside {
            out.push(std::mem::take(&mut cur).into_bytes());
            inside = false;
        }
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

/// Drive `work` on the session's runtime. If Ctrl-C/SIGTERM arrives while it runs, the
/// server is asked to cancel the running statement, as psql does: it fails with 57014,
/// its transaction rolls back, and the command stops with that error instead of
/// waiting for a long migration to finish. Work started after the signal (the command
/// recording how it stopped) runs to completion.
fn block_on<F: Future>(
    rt: &Runtime,
    client: &Client,
    tls: Option<&MakeTlsConnector>,
    work: F,
) -> F::Output {
    let mut signal = crate::cancel_receiver();
    rt.block_on(async move {
        let work = std::pin::pin!(work);
        let signal = std::pin::pin!(signal.changed());
        match futures_util::future::select(work, signal).await {
            futures_util::future::Either::Left((out, _)) => out,
            futures_util::future::Either::Right((_, work)) => {
                let token = client.cancel_token();
                // Best effort: if the request cannot be delivered the statement simply
                // runs on, and a second signal ends the process.
                let _ = match tls {
                    None => token.cancel_query(tokio_postgres::NoTls).await,
                    Some(tls) => token.cancel_query(tls.clone()).await,
                };
                work.await
            }
        }
    })
}

/// One database session, driven synchronously. NOTICEs the server sends are kept for the
/// caller to report (they are untrusted text).
pub struct Db {
    rt: Runtime,
    client: Client,
    /// For the cancel request on Ctrl-C (it opens a connection of its own).
    tls: Option<MakeTlsConnector>,
    notices: UnboundedReceiver<DbError>,
    /// The server process first seen serving this session; 0 until a statement asked
    /// (connecting does not: the start-up's process id is a pooler's own behind one, and
    /// a query for it would cost every run a round trip). See [`Db::pid`].
    pub backend_pid: i32,
    /// `server_version`, from the server's start-up ParameterStatus.
    pub server_version: String,
}

impl Db {
    /// The major version in `server_version` (`15` of `15.18 (Debian 15.18-0+deb12u1)`,
    /// `9` of `9.6.24`), if it starts with one.
    pub fn server_major(&self) -> Option<u32> {
        let digits: String = self
            .server_version
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }
}

/// The `server_version` a server announced at start-up.
fn version_of<S, T>(conn: &tokio_postgres::Connection<S, T>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    conn.parameter("server_version")
        .unwrap_or_default()
        .to_string()
}

/// What a failed connection attempt was: whether waiting may help (the server is still
/// starting), and a message that names what to check.
fn classify(target: &Target, e: &tokio_postgres::Error) -> (bool, String) {
    let at = target.endpoints();
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        // 57P03: starting up, shutting down, in recovery; 53300: too many connections.
        let retry =
            *code == SqlState::CANNOT_CONNECT_NOW || *code == SqlState::TOO_MANY_CONNECTIONS;
        let user = target.user().unwrap_or("(none given)");
        let hint = if *code == SqlState::INVALID_PASSWORD {
            format!(
                "; authentication failed for user {user}: check the user name and password in \
                 the database URL (percent-encode @ : / ? # % in the password)"
            )
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            if db.message().contains("pg_hba.conf") {
                format!(
                    "; the server's pg_hba.conf has no line admitting user {user} to this \
                     database from this address with sslmode={} (if the server only accepts \
                     hostssl, use sslmode=require or stronger)",
                    target.sslmode.name()
                )
            } else {
                format!("; authentication failed for user {user}: check the user name and password in the database URL")
            }
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            "; create the database first, or fix the database name in the URL".to_string()
        } else if retry {
            "; the server is not ready yet".to_string()
        } else {
            String::new()
        };
        return (
            retry,
            format!("{} (SQLSTATE {}){hint}", db.message(), code.code()),
        );
    }
    let mut chain = Vec::new();
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut io_kind = None;
    let mut tls = false;
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
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
    use std::io::ErrorKind;
    if io_kind == Some(ErrorKind::ConnectionRefused) {
        return (
            true,
            format!(
                "connection refused by {at}: is PostgreSQL running and listening on that \
                 host and port (listen_addresses, port)? ({text})"
            ),
        );
    }
    if lower.contains("failed to lookup address") || lower.contains("could not resolve") {
        // EAI_AGAIN is the resolver failing, not a verdict on the name: worth a retry.
        let temporary = lower.contains("temporary failure");
        return (
            temporary,
            format!(
                "unknown host: the host name in {at} could not be resolved{}; check the host \
                 name in the database URL ({text})",
                if temporary {
                    " (the DNS lookup failed)"
                } else {
                    ""
                }
            ),
        );
    }
    if lower.contains("server does not support tls") {
        return (
            false,
            format!(
                "the server at {at} does not accept TLS connections (ssl = off in its \
                 postgresql.conf) but sslmode={} requires TLS: turn ssl on in the server, or \
                 use sslmode=prefer to allow an unencrypted connection",
                target.sslmode.name()
            ),
        );
    }
    if tls || lower.contains("tls") || lower.contains("certificate") || lower.contains("ssl") {
        let rootcert = target.sslrootcert.as_deref().unwrap_or("(none)");
        let why = if lower.contains("hostname mismatch") || lower.contains("ip address mismatch") {
            format!(
                "the server's certificate does not name the host {} (checked by \
                 sslmode=verify-full against the certificate's subjectAltName/CN): connect \
                 with a host name the certificate lists, or use sslmode=verify-ca to check \
                 only that a trusted CA signed it",
                target.tls_host_names()
            )
        } else if lower.contains("certificate verify failed")
            || lower.contains("self-signed")
            || lower.contains("self signed")
            || lower.contains("unable to get local issuer")
            || lower.contains("certificate has expired")
        {
            format!(
                "the server's certificate is not signed by a CA in sslrootcert={rootcert} \
                 (or it has expired): point sslrootcert at the CA certificate that signed \
                 the server's certificate"
            )
        } else {
            format!(
                "TLS could not be negotiated with sslmode={}",
                target.sslmode.name()
            )
        };
        return (
            false,
            format!("TLS handshake with {at} failed: {why} ({text})"),
        );
    }
    if lower.contains("password missing") {
        return (
            false,
            format!(
                "the server asks for a password for user {} and the URL has none: write it \
                 as postgres://user:PASSWORD@host/db (percent-encoded)",
                target.user().unwrap_or("(none given)")
            ),
        );
    }
    if io_kind == Some(ErrorKind::TimedOut) || lower.contains("timed out") {
        return (
            false,
            format!(
                "{at} did not answer in time: a firewall, the wrong host or port, or a server \
                 that is down ({text})"
            ),
        );
    }
    // A server that is starting or shutting down may accept the TCP connection and close
    // it before answering.
    let dropped = e.is_closed()
        || matches!(
            io_kind,
            Some(ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe)
        );
    if dropped {
        return (
            true,
            format!("{at} closed the connection before it was set up ({text})"),
        );
    }
    (false, text)
}

/// What went wrong with a query, as every message shows it: the server's message,
/// SQLSTATE, detail, hint and context — or, for an error that is not the server's, the
/// error with its causes. `tokio_postgres::Error`'s own `Display` says only "db error".
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerError {
    pub sqlstate: Option<String>,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    pub context: Option<String>,
    /// Where in the statement the server found the error: a 1-based character
    /// position in the text it was sent. [`ServerError::line_col_in`] turns it into a
    /// line and column of that text.
    pub position: Option<u32>,
}

impl ServerError {
    /// The error's position as a 1-based line and column of `sql`, the text the server
    /// was sent.
    pub fn line_col_in(&self, sql: &str) -> Option<(u32, u32)> {
        let p = self.position? as usize;
        let byte = sql
            .char_indices()
            .nth(p.saturating_sub(1))
            .map_or(sql.len(), |(i, _)| i);
        Some(crate::sql::LineIndex::new(sql).line_col(sql, byte))
    }

    pub fn from_error(e: &tokio_postgres::Error) -> ServerError {
        let Some(db) = e.as_db_error() else {
            let mut message = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                let t = s.to_string();
                if !message.contains(&t) {
                    message.push_str(": ");
                    message.push_str(&t);
                }
                src = s.source();
            }
            return ServerError {
                message,
                ..ServerError::default()
            };
        };
        ServerError {
            sqlstate: Some(db.code().code().to_string()),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            hint: db.hint().map(str::to_string),
            context: db.where_().map(str::to_string),
            position: match db.position() {
                Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p),
                _ => None,
            },
        }
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(c) = &self.sqlstate {
            write!(f, " (SQLSTATE {c})")?;
        }
        if let Some(d) = &self.detail {
            write!(f, "\n  detail: {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        if let Some(c) = &self.context {
            write!(f, "\n  where: {c}")?;
        }
        Ok(())
    }
}

/// [`ServerError`] as text, for error messages built around a `tokio_postgres::Error`.
pub fn error_text(e: &tokio_postgres::Error) -> String {
    ServerError::from_error(e).to_string()
}

pub use crate::report::redact;

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
        // Ours is libpq's fallback_application_name: the URL's or PGAPPNAME wins.
        if config.get_application_name().is_none() {
            config.application_name(application_name);
        }
        // TCP keepalives after 60 s of silence, not the OS's 2 h: NAT and load-balancer
        // idle cut-offs (often 5–15 min) would otherwise drop the lock session, idle for
        // the whole run, and a work session waiting on a long statement. A URL's own
        // keepalives_idle is kept.
        if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            config
                .keepalives_idle(Duration::from_secs(60))
                .keepalives_interval(Duration::from_secs(10))
                .keepalives_retries(6);
        }
        config.ssl_mode(match target.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        // One attempt may not outlast the whole retry budget (a host that drops packets
        // would otherwise hold `--connect-timeout 1s` for the socket's own timeout).
        if config.get_connect_timeout().is_none() {
            config
                .connect_timeout(retry_for.clamp(Duration::from_secs(1), Duration::from_secs(10)));
        }
        let started = Instant::now();
        let mut attempt = 0u32;
        let mut wait = Duration::from_millis(100);
        // The server sends its version at start-up (ParameterStatus): no query for it.
        let (client, server_version, notices) = loop {
            attempt += 1;
            let result = match &tls {
                None => rt
                    .block_on(config.connect(tokio_postgres::NoTls))
                    .map(|(c, conn)| (c, version_of(&conn), drive(&rt, conn))),
                Some(tls) => rt
                    .block_on(config.connect(tls.clone()))
                    .map(|(c, conn)| (c, version_of(&conn), drive(&rt, conn))),
            };
            match result {
                Ok(pair) => break pair,
                Err(e) => {
                    let (retry, message) = classify(target, &e);
                    if !retry {
                        return Err(fail(message));
                    }
                    if started.elapsed() + wait > retry_for {
                        return Err(fail(format!(
                            "{message}; gave up after {attempt} attempt(s) in {:.1}s \
                             (--connect-timeout / PGROLLOUT_CONNECT_TIMEOUT sets how long to wait)",
                            started.elapsed().as_secs_f64()
                        )));
                    }
                    on_retry(attempt, wait, &redact(&message, &target.secrets));
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        };
        Ok(Db {
            rt,
            client,
            tls,
            notices,
            backend_pid: 0,
            server_version,
        })
    }

    /// The server process of this session, as the server reports it (behind a
    /// transaction pooler, the one that ran the statement that asked). Asked for the first
    /// time it is needed and kept: see [`Db::backend_pid`]'s field.
    pub fn pid(&mut self) -> Result<i32, tokio_postgres::Error> {
        if self.backend_pid == 0 {
            let rows = self.query("SELECT pg_backend_pid()", &[])?;
            self.backend_pid = rows[0].get(0);
        }
        Ok(self.backend_pid)
    }

    /// Run async client work to completion on this session's runtime.
    pub fn run<'a, F, T>(&'a mut self, f: impl FnOnce(&'a Client) -> F) -> T
    where
        F: Future<Output = T> + 'a,
    {
        let fut = f(&self.client);
        block_on(&self.rt, &self.client, self.tls.as_ref(), fut)
    }

    /// Simple-query protocol: one or more statements, no parameters.
    pub fn batch(&mut self, sql: &str) -> Result<(), tokio_postgres::Error> {
        block_on(
            &self.rt,
            &self.client,
            self.tls.as_ref(),
            self.client.batch_execute(sql),
        )
    }

    pub fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        block_on(
            &self.rt,
            &self.client,
            self.tls.as_ref(),
            self.client.query(sql, params),
        )
    }

    pub fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        block_on(
            &self.rt,
            &self.client,
            self.tls.as_ref(),
            self.client.execute(sql, params),
        )
    }

    /// `COPY … FROM STDIN` with the given data.
    pub fn copy_in(&mut self, sql: &str, data: &[u8]) -> Result<u64, tokio_postgres::Error> {
        use futures_util::SinkExt;
        let client = &self.client;
        block_on(&self.rt, client, self.tls.as_ref(), async move {
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

    #[test]
    fn verification_needs_a_root_certificate_named_in_the_url() {
        let e = Target::parse("postgres://u:pw123456@h/d?sslmode=verify-full").unwrap_err();
        assert!(e.to_string().contains("needs sslrootcert"), "{e}");
        assert!(e.to_string().contains("sslmode=require"), "{e}");
        let e = Target::parse("postgres://u@h/d?sslmode=verify-ca").unwrap_err();
        assert!(
            e.to_string()
                .contains("sslmode=verify-ca needs sslrootcert"),
            "{e}"
        );
    }

    #[test]
    fn sslrootcert_system_means_verify_full_as_in_libpq() {
        let t = Target::parse("postgres://u@h/d?sslrootcert=system").unwrap();
        assert_eq!(t.sslmode, SslMode::VerifyFull);
        for weak in ["disable", "prefer", "require", "verify-ca"] {
            let e = Target::parse(&format!(
                "postgres://u@h/d?sslrootcert=system&sslmode={weak}"
            ))
            .unwrap_err();
            assert!(
                e.to_string().contains("only sslmode=verify-full"),
                "{weak}: {e}"
            );
        }
    }

    #[test]
    fn client_certificate_options_are_refused_by_name() {
        let e = Target::parse("postgres://u@h/d?sslcert=/c.crt&sslkey=/c.key").unwrap_err();
        assert!(e.to_string().contains("`sslcert` is not supported"), "{e}");
        let e = Target::parse("host=h sslkey=/c.key").unwrap_err();
        assert!(e.to_string().contains("`sslkey` is not supported"), "{e}");
    }

    #[test]
    fn key_value_values_may_be_quoted() {
        let t = Target::parse(
            r"host=localhost user=u password='it\'s a secret' dbname='my db' sslmode=require",
        )
        .unwrap();
        assert_eq!(t.sslmode, SslMode::Require);
        assert_eq!(t.dbname(), Some("my db"));
        assert!(
            t.secrets.contains(&"it's a secret".to_string()),
            "{:?}",
            t.secrets
        );
        assert!(!t.redacted.contains("secret"), "{}", t.redacted);
        assert!(t.redacted.contains("dbname='my db'"), "{}", t.redacted);
        let e = Target::parse("host=h password='unterminated").unwrap_err();
        assert!(!e.to_string().contains("unterminated"), "{e}");
    }

    #[test]
    fn every_spelling_of_the_password_is_a_secret() {
        let t = Target::parse("postgres://app:p%40ss%3Aw%2Frd%2541@h:5432/d").unwrap();
        for form in ["p@ss:w/rd%41", "p%40ss%3Aw%2Frd%2541"] {
            assert!(
                t.secrets.contains(&form.to_string()),
                "{form}: {:?}",
                t.secrets
            );
        }
        let shown = redact("auth p%40ss%3Aw%2Frd%2541 and p@ss:w/rd%41", &t.secrets);
        assert_eq!(shown, "auth *** and ***");
        assert_eq!(t.redacted, "postgres://app:***@h:5432/d");
    }

    #[test]
    fn a_url_too_broken_to_parse_still_yields_its_password() {
        // An unencoded `/` and `@` in the password: the URL parser gives up.
        let input = "postgres://app:p@ss:w/rd%41@127.0.0.1:5432/db";
        assert!(Target::parse(input).is_err());
        let secrets = secrets_in(input);
        assert!(secrets.contains(&"p@ss:w/rd%41".to_string()), "{secrets:?}");
        assert!(secrets.contains(&"p@ss:w/rdA".to_string()), "{secrets:?}");
        assert_eq!(
            secrets_in("host=h password=hunter22"),
            vec!["hunter22".to_string()]
        );
    }

    #[test]
    fn endpoints_name_host_and_port() {
        let t = Target::parse("postgres://u@db.example:6543/d").unwrap();
        assert_eq!(t.endpoints(), "db.example:6543");
        let t = Target::parse("postgres://u@[::1]/d").unwrap();
        assert_eq!(t.endpoints(), "[::1]:5432");
    }
}
