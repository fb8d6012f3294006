//! Connections (DESIGN §8): libpq `sslmode` semantics against a TLS cluster whose
//! certificates are made here with `openssl`, passwords that never reach the output,
//! clear messages for refused and unknown hosts, waiting for a starting server, and the
//! refusal of a transaction-pooling PgBouncer in front of the database.
//!
//! Needs PostgreSQL, `openssl` and `pgbouncer` (all in `.ci/run`); a missing one fails
//! the tests that need it rather than skipping them.

use crate::common;

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use pgrollout::db::{Db, Target};
use pgrollout::ephemeral::{Cluster, ClusterOptions};

use crate::common::{
    exec, fresh_db, query_strings, quote_ident, wait_until, Pgrollout, Run, Stream,
};

/// The test role's password: every character that must be percent-encoded in a URL.
const PASSWORD: &str = "p@ss:w/rd%41";
/// The same, percent-encoded as it is written in the URL.
const PASSWORD_IN_URL: &str = "p%40ss%3Aw%2Frd%2541";

// ---------------------------------------------------------------------------------------
// Fixtures

/// Certificates made at test time: a CA, a server certificate it signed for `localhost`
/// only (no IP address), and an unrelated CA.
struct Certs {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
    server_crt: PathBuf,
    server_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running openssl (apt-get install openssl): {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        for (name, cn) in [("ca", "pgrollout test CA"), ("other_ca", "unrelated CA")] {
            let (key, crt, subj) = (
                format!("{name}.key"),
                format!("{name}.crt"),
                format!("/CN={cn}"),
            );
            let mut args = vec!["req", "-x509", "-nodes", "-days", "2"];
            args.extend(ec);
            args.extend(["-keyout", &key, "-out", &crt, "-subj", &subj]);
            args.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
            args.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
            openssl(d, &args);
        }
        let mut args = vec!["req", "-new", "-nodes"];
        args.extend(ec);
        args.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        openssl(d, &args);
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName = DNS:localhost\nextendedKeyUsage = serverAuth\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.crt",
            ],
        );
        Certs {
            ca: d.join("ca.crt"),
            other_ca: d.join("other_ca.crt"),
            server_crt: d.join("server.crt"),
            server_key: d.join("server.key"),
            _dir: dir,
        }
    })
}

/// A cluster with `ssl = on` and the test certificate, where role `app` must log in with
/// a SCRAM password over TCP (everyone else is trusted, as in every test cluster).
fn secure() -> &'static Cluster {
    static SECURE: OnceLock<Cluster> = OnceLock::new();
    SECURE.get_or_init(|| {
        let c = certs();
        let cluster = Cluster::start(&ClusterOptions {
            settings: vec![
                ("ssl".into(), "on".into()),
                ("ssl_cert_file".into(), "server.crt".into()),
                ("ssl_key_file".into(), "server.key".into()),
                ("password_encryption".into(), "scram-sha-256".into()),
            ],
            hba_lines: vec![
                "host all app 127.0.0.1/32 scram-sha-256".into(),
                "host all app ::1/128 scram-sha-256".into(),
            ],
            files: vec![
                (c.server_crt.clone(), "server.crt".into()),
                (c.server_key.clone(), "server.key".into()),
            ],
            ..common::cluster_options()
        })
        .unwrap_or_else(|e| panic!("these tests need PostgreSQL and none could be started: {e}"));
        exec(
            &cluster.url("postgres"),
            &format!(
                "CREATE ROLE app LOGIN PASSWORD '{}'",
                PASSWORD.replace('\'', "''")
            ),
        );
        cluster
    })
}

/// A database on the secure cluster owned by `app`, dropped afterwards.
struct SecureDb {
    name: String,
}

impl SecureDb {
    fn new() -> SecureDb {
        let name = format!("c_{}_{:08x}", std::process::id(), rand::random::<u32>());
        exec(
            &secure().url("postgres"),
            &format!("CREATE DATABASE {} OWNER app", quote_ident(&name)),
        );
        SecureDb { name }
    }

    /// `app`'s URL with the given (already percent-encoded) password.
    fn app_url(&self, password_in_url: &str) -> String {
        format!(
            "postgres://app:{password_in_url}@127.0.0.1:{}/{}?sslmode=require",
            secure().port(),
            self.name
        )
    }

    fn admin_url(&self) -> String {
        secure().url(&self.name)
    }
}

impl Drop for SecureDb {
    fn drop(&mut self) {
        if let Ok(mut c) = common::connect(&secure().url("postgres")) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&self.name)
            ));
        }
    }
}

/// A superuser URL to the secure cluster with the given host and query.
fn tls_url(host: &str, query: &str) -> String {
    format!(
        "postgres://postgres@{host}:{}/postgres?{query}",
        secure().port()
    )
}

/// A working directory with a migrations/ directory holding one migration.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/0001_create_things.sql"),
        "-- migrate:up\nCREATE TABLE things (id bigint PRIMARY KEY);\n\n-- migrate:down\nDROP TABLE things;\n",
    )
    .unwrap();
    dir
}

/// The real binary in a controlled environment, working in `dir`.
fn pgrollout(dir: &Path, args: &[&str]) -> Pgrollout {
    Pgrollout::new().cwd(dir).args(args)
}

/// Runs `args` with the URL in `--database-url`.
fn with_url(dir: &Path, url: &str, args: &[&str]) -> Run {
    pgrollout(dir, &["--database-url", url]).args(args).run()
}

/// Runs `args` with the URL in `DATABASE_URL`.
fn with_env_url(dir: &Path, url: &str, args: &[&str]) -> Run {
    pgrollout(dir, args).env("DATABASE_URL", url).run()
}

fn assert_no_password(r: &Run) {
    for form in [PASSWORD, PASSWORD_IN_URL, &PASSWORD_IN_URL.to_lowercase()] {
        assert!(
            !r.stdout.contains(form) && !r.stderr.contains(form),
            "the password appears as {form:?}:\n{r}"
        );
    }
    // Its recognisable pieces too, whatever encoding an error might use.
    for piece in ["p@ss", "w/rd", "ss:w", "rd%41", "rd%2541"] {
        assert!(
            !r.stdout.contains(piece) && !r.stderr.contains(piece),
            "part of the password ({piece:?}) appears:\n{r}"
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn connect(url: &str) -> Result<Db, String> {
    let target = Target::parse(url).map_err(|e| e.to_string())?;
    Db::connect(
        &target,
        "pgrollout tests",
        Duration::ZERO,
        &mut |_, _, _| {},
    )
    .map_err(|e| e.to_string())
}

/// The message of a connection that must fail.
fn refused(url: &str) -> String {
    match connect(url) {
        Ok(_) => panic!("connected to {url}, which must be refused"),
        Err(e) => e,
    }
}

/// Whether the session is encrypted, as the server sees it.
fn encrypted(db: &mut Db) -> bool {
    db.query(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )
    .unwrap()[0]
        .get(0)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------
// TLS

#[test]
fn require_encrypts_without_a_ca() {
    let mut db = connect(&tls_url("127.0.0.1", "sslmode=require")).unwrap();
    assert!(encrypted(&mut db));
}

#[test]
fn prefer_encrypts_when_the_server_offers_tls() {
    let mut db = connect(&tls_url("127.0.0.1", "sslmode=prefer")).unwrap();
    assert!(encrypted(&mut db));
}

#[test]
fn verify_full_without_sslrootcert_is_refused_naming_sslrootcert() {
    let dir = project();
    let r = with_url(
        dir.path(),
        &tls_url("localhost", "sslmode=verify-full"),
        &["status"],
    );
    assert_eq!(
        r.code, 2,
        "a URL that cannot be used is a usage error:\n{r}"
    );
    assert!(r.stderr.contains("sslrootcert"), "{r}");
    assert!(r.stderr.contains("verify-full"), "{r}");
}

#[test]
fn verify_full_with_sslrootcert_connects_to_the_named_host() {
    let url = tls_url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", path(&certs().ca)),
    );
    let mut db = connect(&url).unwrap();
    assert!(encrypted(&mut db));
    // And through the binary.
    let dir = project();
    let r = with_url(dir.path(), &url, &["status"]);
    assert_eq!(r.code, 0, "{r}");
}

#[test]
fn verify_full_refuses_a_host_the_certificate_does_not_name() {
    // The certificate names DNS:localhost only, not the IP address.
    let url = tls_url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", path(&certs().ca)),
    );
    let e = refused(&url);
    assert!(e.contains("does not name the host 127.0.0.1"), "{e}");
    assert!(e.contains("verify-ca"), "{e}");
    let dir = project();
    let r = with_url(dir.path(), &url, &["status"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("TLS handshake"), "{r}");
    assert!(r.stderr.contains("does not name the host"), "{r}");
}

#[test]
fn verify_ca_accepts_a_host_the_certificate_does_not_name() {
    let url = tls_url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={}", path(&certs().ca)),
    );
    let mut db = connect(&url).unwrap();
    assert!(encrypted(&mut db));
}

#[test]
fn require_with_sslrootcert_verifies_the_ca_like_libpq() {
    let ok = tls_url(
        "127.0.0.1",
        &format!("sslmode=require&sslrootcert={}", path(&certs().ca)),
    );
    assert!(encrypted(&mut connect(&ok).unwrap()));
    let wrong = tls_url(
        "127.0.0.1",
        &format!("sslmode=require&sslrootcert={}", path(&certs().other_ca)),
    );
    let e = refused(&wrong);
    assert!(e.contains("not signed by a CA in sslrootcert"), "{e}");
}

#[test]
fn a_ca_that_did_not_sign_the_certificate_is_refused() {
    for mode in ["verify-ca", "verify-full"] {
        let url = tls_url(
            "localhost",
            &format!("sslmode={mode}&sslrootcert={}", path(&certs().other_ca)),
        );
        let e = refused(&url);
        assert!(e.contains("TLS handshake"), "{mode}: {e}");
        assert!(
            e.contains(&format!(
                "not signed by a CA in sslrootcert={}",
                path(&certs().other_ca)
            )),
            "{mode}: {e}"
        );
    }
}

#[test]
fn a_missing_or_empty_sslrootcert_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-ca.crt");
    let e = refused(&tls_url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", path(&missing)),
    ));
    assert!(
        e.contains(&format!("reading sslrootcert {}", path(&missing))),
        "{e}"
    );
    assert!(e.contains("No such file"), "{e}");

    let empty = dir.path().join("empty.crt");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let e = refused(&tls_url(
        "localhost",
        &format!("sslmode=verify-ca&sslrootcert={}", path(&empty)),
    ));
    assert!(e.contains("holds no PEM certificate"), "{e}");
}

#[test]
fn require_against_a_server_without_tls_fails_clearly() {
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=require",
        common::cluster().port()
    );
    let dir = project();
    let r = with_url(dir.path(), &url, &["status"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("does not accept TLS connections"), "{r}");
    assert!(r.stderr.contains("sslmode=prefer"), "{r}");
}

#[test]
fn prefer_and_disable_connect_in_plaintext_to_a_server_without_tls() {
    for mode in ["prefer", "disable"] {
        let url = format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode={mode}",
            common::cluster().port()
        );
        let mut db = connect(&url).unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(!encrypted(&mut db), "{mode}");
    }
    // prefer is the default.
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        common::cluster().port()
    );
    let dir = project();
    let r = with_url(dir.path(), &url, &["status"]);
    assert_eq!(r.code, 0, "{r}");
}

#[test]
fn disable_does_not_encrypt_even_when_the_server_offers_tls() {
    let mut db = connect(&tls_url("127.0.0.1", "sslmode=disable")).unwrap();
    assert!(!encrypted(&mut db));
}

// ---------------------------------------------------------------------------------------
// Passwords

#[test]
fn the_password_is_never_printed_on_success() {
    let db = SecureDb::new();
    let url = db.app_url(PASSWORD_IN_URL);
    let dir = project();
    let r = with_env_url(dir.path(), &url, &["status"]);
    assert_eq!(r.code, 0, "{r}");
    assert_no_password(&r);
    assert!(
        r.stderr.contains("app:***@"),
        "the URL is shown redacted:\n{r}"
    );

    let r = with_url(dir.path(), &url, &["apply"]);
    assert_eq!(r.code, 0, "{r}");
    assert_no_password(&r);
    let rows = query_strings(&db.admin_url(), "SELECT to_regclass('things')::text");
    assert_eq!(rows, vec![vec![Some("things".to_string())]]);

    let r = with_env_url(dir.path(), &url, &["validate"]);
    assert_eq!(r.code, 0, "{r}");
    assert_no_password(&r);

    let r = with_env_url(dir.path(), &url, &["--format", "json", "apply"]);
    assert_eq!(r.code, 0, "{r}");
    assert_no_password(&r);
}

#[test]
fn a_wrong_password_fails_naming_the_user_and_is_never_printed() {
    let db = SecureDb::new();
    let wrong = "n0t%40the:pw";
    let dir = project();
    for (cmd, via_env) in [("status", true), ("apply", false), ("validate", true)] {
        let url = db.app_url(wrong);
        let r = if via_env {
            with_env_url(dir.path(), &url, &[cmd])
        } else {
            with_url(dir.path(), &url, &[cmd])
        };
        assert_eq!(r.code, 1, "{cmd}:\n{r}");
        assert_no_password(&r);
        for form in ["n0t%40the:pw", "n0t@the:pw", "n0t"] {
            assert!(
                !r.stderr.contains(form) && !r.stdout.contains(form),
                "{cmd}: wrong password shown as {form:?}:\n{r}"
            );
        }
        assert!(
            r.stderr.contains("authentication failed for user app"),
            "{cmd}:\n{r}"
        );
        assert!(r.stderr.contains("28P01"), "{cmd}:\n{r}");
    }
    // Nothing was applied.
    let rows = query_strings(&db.admin_url(), "SELECT to_regclass('things')::text");
    assert_eq!(rows, vec![vec![None]]);

    // The right password, to prove the failure was the password's.
    let r = with_url(dir.path(), &db.app_url(PASSWORD_IN_URL), &["status"]);
    assert_eq!(r.code, 0, "{r}");
}

#[test]
fn a_malformed_url_is_a_usage_error_without_the_password() {
    let dir = project();
    for url in [
        format!("postgres://app:{PASSWORD_IN_URL}@127.0.0.1:99999/db"),
        format!("postgres://app:{PASSWORD_IN_URL}@127.0.0.1/db?sslmode=bogus"),
        format!("postgres://app:{PASSWORD_IN_URL}@127.0.0.1/db?sslcert=/c.crt"),
        format!("postgres://app:{PASSWORD_IN_URL}@127.0.0.1/db?no_such_option=1"),
        // An unencoded password breaks the URL; the error still must not echo it.
        format!("postgres://app:{PASSWORD}@127.0.0.1:5432/db"),
    ] {
        for cmd in ["status", "apply", "validate"] {
            let r = with_env_url(dir.path(), &url, &[cmd]);
            assert_eq!(r.code, 2, "{cmd} {url}:\n{r}");
            assert!(r.stderr.contains("database URL is not valid"), "{r}");
            assert_no_password(&r);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Unreachable servers

#[test]
fn a_refused_connection_fails_fast_naming_the_host_and_port() {
    let port = free_port();
    let dir = project();
    let url = format!("postgres://app:{PASSWORD_IN_URL}@127.0.0.1:{port}/db");
    let r = with_url(dir.path(), &url, &["--connect-timeout", "1s", "status"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("connection refused"), "{r}");
    assert!(r.stderr.contains(&format!("127.0.0.1:{port}")), "{r}");
    // It gave up once its own 1s budget was spent, not the 30s default.
    let spent: f64 = r
        .stderr
        .split(" attempt(s) in ")
        .nth(1)
        .and_then(|rest| rest.split_once('s'))
        .and_then(|(secs, _)| secs.parse().ok())
        .unwrap_or_else(|| panic!("no \"gave up after N attempt(s) in S s\" in:\n{r}"));
    assert!(r.stderr.contains("gave up after"), "{r}");
    assert!(
        spent <= 1.05,
        "it waited {spent}s of a 1s --connect-timeout:\n{r}"
    );
    assert_no_password(&r);
}

#[test]
fn an_unknown_host_is_named() {
    let dir = project();
    let url = format!("postgres://app:{PASSWORD_IN_URL}@nonexistent.invalid:5432/db");
    let r = with_url(dir.path(), &url, &["--connect-timeout", "1s", "status"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("unknown host"), "{r}");
    assert!(r.stderr.contains("nonexistent.invalid:5432"), "{r}");
    // Not a condition that passes with time: it fails at once, without retrying.
    assert!(!r.stderr.contains("retrying in"), "{r}");
    assert_no_password(&r);
}

#[test]
fn a_starting_server_is_waited_for() {
    let cluster = common::own_cluster();
    cluster.kill().unwrap();
    let dir = project();
    let mut child = pgrollout(
        dir.path(),
        &[
            "--database-url",
            &cluster.url("postgres"),
            "--connect-timeout",
            "20s",
            "apply",
        ],
    )
    .spawn();
    // Start the server once the runner has found it not there and is waiting.
    child.wait_for_line(Stream::Stderr, "a retry", |l| l.contains("retrying in"));
    cluster.restart().unwrap();
    let r = child.wait();
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stderr.contains("server not ready"), "{r}");
    assert!(r.stderr.contains("retrying in"), "{r}");
    let rows = query_strings(
        &cluster.url("postgres"),
        "SELECT to_regclass('things')::text",
    );
    assert_eq!(rows, vec![vec![Some("things".to_string())]]);
}

// ---------------------------------------------------------------------------------------
// Poolers

/// PgBouncer in front of the shared test cluster, killed on drop.
struct Bouncer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Bouncer {
    fn start(pool_mode: &str) -> Bouncer {
        let backend = common::cluster();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path();
        std::fs::write(d.join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        std::fs::write(
            d.join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host=127.0.0.1 port={backend_port}\n\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
                 unix_socket_dir =\nauth_type = trust\nauth_file = {users}\n\
                 pool_mode = {pool_mode}\ndefault_pool_size = 4\n\
                 logfile = {log}\nignore_startup_parameters = extra_float_digits\n",
                backend_port = backend.port(),
                users = d.join("users.txt").display(),
                log = d.join("pgbouncer.log").display(),
            ),
        )
        .unwrap();
        // PgBouncer refuses to run as root: run it as the owner of the cluster's data.
        let owner = std::fs::metadata(backend.data_dir()).unwrap().uid();
        let mut cmd = Command::new(pgbouncer_program());
        if unsafe_geteuid() == 0 {
            for entry in [
                d.to_path_buf(),
                d.join("users.txt"),
                d.join("pgbouncer.ini"),
            ] {
                std::os::unix::fs::chown(&entry, Some(owner), None).unwrap();
            }
            cmd.args(["-u", &user_name(owner)]);
        }
        let child = cmd
            .arg(d.join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting pgbouncer: {e}"));
        let mut bouncer = Bouncer { child, port, dir };
        let log = bouncer.dir.path().join("pgbouncer.log");
        wait_until(
            &format!("pgbouncer listens on port {port} (log: {})", log.display()),
            Duration::from_secs(10),
            || {
                if let Ok(Some(status)) = bouncer.child.try_wait() {
                    panic!("pgbouncer exited with {status}:\n{}", bouncer.log());
                }
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            },
        );
        bouncer
    }

    fn url(&self, dbname: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{dbname}?sslmode=disable",
            self.port
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pgbouncer_program() -> PathBuf {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| which::which("pgbouncer").ok())
        .unwrap_or_else(|| {
            panic!("these tests need pgbouncer: apt-get install pgbouncer (listed in .ci/run)")
        })
}

fn unsafe_geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn user_name(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == uid.to_string())
        .map(|f| f[0].to_string())
        .unwrap_or_else(|| panic!("no user with uid {uid} in /etc/passwd"))
}

#[test]
fn a_transaction_pooler_is_refused_and_nothing_is_applied() {
    let db = fresh_db();
    let bouncer = Bouncer::start("transaction");
    let dir = project();
    let r = with_url(dir.path(), &bouncer.url(&db.name), &["apply"]);
    assert_eq!(r.code, 1, "{r}\npgbouncer log:\n{}", bouncer.log());
    assert!(r.stderr.contains("transaction-pooling"), "{r}");
    assert!(r.stderr.contains("Connect pgrollout directly"), "{r}");
    let rows = query_strings(
        &db.url,
        "SELECT to_regclass('things')::text, to_regnamespace('pgrollout')::text",
    );
    assert_eq!(rows, vec![vec![None, None]], "nothing may be applied:\n{r}");
}

#[test]
fn a_session_pooler_works() {
    let db = fresh_db();
    let bouncer = Bouncer::start("session");
    let dir = project();
    let r = with_url(dir.path(), &bouncer.url(&db.name), &["apply"]);
    assert_eq!(r.code, 0, "{r}\npgbouncer log:\n{}", bouncer.log());
    let rows = query_strings(&db.url, "SELECT to_regclass('things')::text");
    assert_eq!(rows, vec![vec![Some("things".to_string())]]);
}

#[test]
fn the_same_lock_held_in_other_databases_is_not_mistaken_for_pooling() {
    // Advisory locks are per database: runners migrating other databases of the same
    // server hold the same key, and neither the pooler check nor the holder report may
    // take them for this database's holder.
    let key = pgrollout::db::tracking::Tracking::new("pgrollout").lock_key();
    let others: Vec<_> = (0..3).map(|_| fresh_db()).collect();
    let mut holders: Vec<_> = others
        .iter()
        .map(|o| {
            let mut c = common::connect(&o.url).unwrap();
            let got: bool = c
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .unwrap()
                .get(0);
            assert!(got);
            c
        })
        .collect();
    let db = fresh_db();
    let dir = project();
    let r = with_url(dir.path(), &db.url, &["--lock-wait", "2s", "apply"]);
    assert_eq!(r.code, 0, "{r}");
    holders.clear();
}

// ---------------------------------------------------------------------------------------
// libpq conventions: the same settings given to psql and to pgrollout must reach (or be
// refused by) the same server.

/// psql in the same controlled environment as [`pgrollout`]: `-w` (never prompt), the
/// given `PG*` variables, and `conninfo` as its database argument when not empty.
/// Returns whether it connected, and what it printed for `SELECT current_user, …`.
fn psql(dir: &Path, envs: &[(&str, &str)], conninfo: &str) -> (bool, String) {
    let mut cmd = Command::new("/usr/bin/psql");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .current_dir(dir)
        .envs(envs.iter().copied())
        .args(["-X", "-w", "-A", "-t", "-c"])
        .arg("SELECT current_user || ' ' || current_database() || ' ' || inet_server_port()")
        .stdin(Stdio::null());
    if !conninfo.is_empty() {
        cmd.arg(conninfo);
    }
    let out = cmd.output().expect("running psql");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string()
            + &String::from_utf8_lossy(&out.stderr),
    )
}

/// `pgrollout status` with the given variables, and `--database-url` when not empty.
fn status_with(dir: &Path, envs: &[(&str, &str)], url: &str) -> Run {
    let mut args = Vec::new();
    if !url.is_empty() {
        args.extend(["--database-url", url]);
    }
    args.push("status");
    pgrollout(dir, &args).envs(envs).run()
}

/// The session pgrollout's library opens with these settings: user, database, port, SSL
/// and application_name as the server sees them.
fn session_with(envs: &[(&str, &str)], url: &str) -> Result<Vec<Option<String>>, String> {
    let env = pgrollout::db::LibpqEnv::from_lookup(|k| {
        envs.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    });
    let target = Target::parse_with(url, &env).map_err(|e| e.to_string())?;
    let mut db = Db::connect(
        &target,
        "pgrollout tests",
        Duration::ZERO,
        &mut |_, _, _| {},
    )
    .map_err(|e| e.to_string())?;
    let rows = db
        .query(
            "SELECT current_user::text, current_database()::text, inet_server_port()::text, \
             (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())::text, \
             current_setting('application_name')",
            &[],
        )
        .map_err(|e| e.to_string())?;
    Ok((0..5).map(|i| rows[0].get(i)).collect())
}

#[test]
fn pgsslmode_require_refuses_a_server_without_tls_as_psql_does() {
    let dir = project();
    let port = common::cluster().port().to_string();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let env = [("PGSSLMODE", "require")];
    let (ok, said) = psql(dir.path(), &env, &url);
    assert!(!ok, "psql refuses: {said}");
    let r = status_with(dir.path(), &env, &url);
    assert_eq!(
        r.code, 1,
        "PGSSLMODE=require must not fall back to plaintext:\n{r}"
    );
    assert!(r.stderr.contains("does not accept TLS connections"), "{r}");
    // The URL's own sslmode wins over the variable, as in libpq.
    let r = status_with(dir.path(), &env, &format!("{url}?sslmode=disable"));
    assert_eq!(r.code, 0, "{r}");
}

#[test]
fn pg_variables_alone_reach_the_database_psql_reaches() {
    let db = SecureDb::new();
    let dir = project();
    let port = secure().port().to_string();
    let env = [
        ("PGHOST", "127.0.0.1"),
        ("PGPORT", port.as_str()),
        ("PGUSER", "app"),
        ("PGDATABASE", db.name.as_str()),
        ("PGPASSWORD", PASSWORD),
        ("PGSSLMODE", "require"),
        ("PGAPPNAME", "deploy-bot"),
        ("PGCONNECT_TIMEOUT", "5"),
    ];
    let (ok, said) = psql(dir.path(), &env, "");
    assert!(ok, "{said}");
    assert_eq!(said, format!("app {} {port}", db.name));
    let session = session_with(&env, "").unwrap();
    assert_eq!(
        session,
        ["app", db.name.as_str(), port.as_str(), "true", "deploy-bot"]
            .map(|s| Some(s.to_string()))
            .to_vec()
    );
    let r = status_with(dir.path(), &env, "");
    assert_eq!(r.code, 0, "{r}");
    assert_no_password(&r);
    // Under a URL the variables only fill what it leaves out: here the password and
    // sslmode.
    let url = format!("postgres://app@127.0.0.1:{port}/{}", db.name);
    let defaults = [("PGPASSWORD", PASSWORD), ("PGSSLMODE", "require")];
    assert!(psql(dir.path(), &defaults, &url).0);
    let r = status_with(dir.path(), &defaults, &url);
    assert_eq!(r.code, 0, "{r}");
    assert_no_password(&r);
}

#[test]
fn the_password_file_is_read_with_libpqs_wildcards_escapes_and_permission_check() {
    use std::os::unix::fs::PermissionsExt;
    let db = SecureDb::new();
    let dir = project();
    let port = secure().port().to_string();
    // The password holds `:`, escaped as `\:`; host, port and database are wildcards.
    let passfile = dir.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!(
            "# comment\n127.0.0.1:*:*:nobody:wrong\n*:*:*:app:{}\n",
            PASSWORD.replace('\\', "\\\\").replace(':', "\\:")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let url = format!(
        "postgres://app@127.0.0.1:{port}/{}?sslmode=require",
        db.name
    );
    let env = [("PGPASSFILE", path(&passfile))];
    let (ok, said) = psql(dir.path(), &env, &url);
    assert!(ok, "{said}");
    let r = status_with(dir.path(), &env, &url);
    assert_eq!(r.code, 0, "{r}");
    assert_no_password(&r);

    // ~/.pgpass is the default file.
    std::fs::copy(&passfile, dir.path().join(".pgpass")).unwrap();
    std::fs::set_permissions(
        dir.path().join(".pgpass"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let r = status_with(dir.path(), &[("HOME", path(dir.path()))], &url);
    assert_eq!(r.code, 0, "{r}");

    // Readable by others: psql ignores it with a warning, and so does pgrollout.
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, said) = psql(dir.path(), &env, &url);
    assert!(!ok, "{said}");
    assert!(said.contains("group or world access"), "{said}");
    let r = status_with(dir.path(), &env, &url);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("group or world access"), "{r}");
}

#[test]
fn a_socket_directory_in_the_uri_query_connects_as_psql_does() {
    let dir = project();
    let c = common::cluster();
    let url = format!(
        "postgres://postgres@/postgres?host={}&port={}",
        c.socket_dir().display(),
        c.port()
    );
    let (ok, said) = psql(dir.path(), &[], &url);
    assert!(ok, "{said}");
    let session = session_with(&[], &url).unwrap();
    assert_eq!(session[0].as_deref(), Some("postgres"));
    // A socket connection has no server port.
    assert_eq!(session[2], None);
    let r = status_with(dir.path(), &[], &url);
    assert_eq!(r.code, 0, "{r}");
}

#[test]
fn a_multi_host_uri_finds_the_writable_server_as_psql_does() {
    let dir = project();
    let port = common::cluster().port();
    // The first host refuses connections; libpq (and pgrollout) go on to the next.
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{port}/postgres?target_session_attrs=read-write",
        free_port()
    );
    let (ok, said) = psql(dir.path(), &[], &url);
    assert!(ok, "{said}");
    assert_eq!(said, format!("postgres postgres {port}"));
    let session = session_with(&[], &url).unwrap();
    assert_eq!(session[2], Some(port.to_string()));
    let r = status_with(dir.path(), &[], &url);
    assert_eq!(r.code, 0, "{r}");
}

#[test]
fn a_service_from_pg_service_conf_is_used_as_psql_uses_it() {
    let dir = project();
    let port = common::cluster().port();
    let file = dir.path().join("services.conf");
    std::fs::write(
        &file,
        format!("[other]\nhost=nowhere.invalid\n\n[main]\nhost=127.0.0.1\nport={port}\nuser=postgres\ndbname=postgres\n"),
    )
    .unwrap();
    let env = [("PGSERVICEFILE", path(&file))];
    for (envs, conninfo) in [
        (vec![env[0]], "service=main"),
        (vec![env[0], ("PGSERVICE", "main")], ""),
    ] {
        let (ok, said) = psql(dir.path(), &envs, conninfo);
        assert!(ok, "{conninfo}: {said}");
        let r = status_with(dir.path(), &envs, conninfo);
        assert_eq!(r.code, 0, "{conninfo}: {r}");
    }
    let (ok, _) = psql(dir.path(), &env, "service=missing");
    assert!(!ok);
    let r = status_with(dir.path(), &env, "service=missing");
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("service `missing` not found"), "{r}");
}

#[test]
fn backup_gives_pg_dump_no_password_on_its_command_line() {
    use std::os::unix::fs::PermissionsExt;
    let db = SecureDb::new();
    let dir = project();
    // A pg_dump that records the arguments and environment it was started with (what
    // `ps` would show) and writes an empty dump where it was asked to.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("pg_dump.log");
    std::fs::write(
        bin.join("pg_dump"),
        format!(
            "#!/bin/sh\nprintf 'argv: %s\\n' \"$*\" > '{log}'\nprintf 'PGPASSWORD: %s\\n' \"$PGPASSWORD\" >> '{log}'\nfor a; do case \"$a\" in --file=*) : > \"${{a#--file=}}\";; esac; done\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("pg_dump"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let path_var = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dsns = [
        format!(
            "host=127.0.0.1 port={} user=app password='{PASSWORD}' dbname={} sslmode=require",
            secure().port(),
            db.name
        ),
        db.app_url(PASSWORD_IN_URL),
    ];
    for dsn in &dsns {
        let cmd = pgrollout(
            dir.path(),
            &[
                "--database-url",
                dsn,
                "backup",
                "--dump",
                "--output-dir",
                path(&out),
            ],
        );
        let r = cmd.env("PATH", &path_var).run();
        assert_eq!(r.code, 0, "{r}");
        let seen = std::fs::read_to_string(&log).unwrap();
        let argv = seen.lines().next().unwrap();
        assert!(argv.contains(&db.name), "{seen}");
        for piece in [PASSWORD, PASSWORD_IN_URL, "p@ss", "ss:w"] {
            assert!(
                !argv.contains(piece),
                "the password is in pg_dump's argv: {seen}"
            );
        }
        assert!(seen.contains(&format!("PGPASSWORD: {PASSWORD}")), "{seen}");
    }
}
