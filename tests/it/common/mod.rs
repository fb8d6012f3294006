//! The shared harness of the integration tests: one PostgreSQL server for the whole test
//! run and a fresh database per test, so tests run in parallel without seeing each
//! other's tables; [`run`], the one way to run the real binary; [`actions`], a simulated
//! GitHub Actions runner on top of it.
//!
//! The server is a throwaway [`Cluster`] unless `PGROLLOUT_TEST_DATABASE_URL` names an
//! existing one (a superuser URL; databases are created and dropped through it). When no
//! server is available the tests panic: a test that needs PostgreSQL must never pass by
//! skipping.

// Not every test module uses every helper.
#![allow(dead_code)]

pub mod actions;
pub mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use pgrollout::ephemeral::{Cluster, ClusterOptions};

pub use run::{Pgrollout, Run, Running, Stream};

/// Env var with the URL of an existing server to test against instead of a throwaway one.
pub const TEST_DATABASE_URL_ENV: &str = "PGROLLOUT_TEST_DATABASE_URL";

/// The server the tests of this binary use.
pub struct TestServer {
    admin_url: url::Url,
    cluster: Option<Cluster>,
}

impl TestServer {
    /// A superuser connection URL for the server's maintenance database.
    pub fn admin_url(&self) -> &str {
        self.admin_url.as_str()
    }

    /// The same server and credentials, connected to `dbname`.
    pub fn url(&self, dbname: &str) -> String {
        let mut url = self.admin_url.clone();
        url.set_path(dbname);
        url.into()
    }

    /// The throwaway cluster, or `None` when testing against `PGROLLOUT_TEST_DATABASE_URL`.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }
}

/// The server for this test run, started on first use.
pub fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var(TEST_DATABASE_URL_ENV) {
        Ok(given) => TestServer {
            admin_url: url::Url::parse(&given)
                .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL_ENV}={given:?} is not a URL: {e}")),
            cluster: None,
        },
        Err(_) => {
            let cluster = Cluster::start(&cluster_options()).unwrap_or_else(|e| {
                panic!(
                    "these tests need PostgreSQL and none could be started: {e}\n\
                     (or set {TEST_DATABASE_URL_ENV} to a superuser URL of an existing server)"
                )
            });
            TestServer {
                admin_url: url::Url::parse(&cluster.url("postgres"))
                    .expect("Cluster::url is a valid URL"),
                cluster: Some(cluster),
            }
        }
    })
}

/// Options for the clusters the harness and the tests start: the defaults, on a tmpfs
/// when the machine has one (`/dev/shm`): creating and dropping a database per test
/// writes and deletes a few hundred files, several times faster there than on disk.
pub fn cluster_options() -> ClusterOptions {
    let shm = Path::new("/dev/shm");
    ClusterOptions {
        parent_dir: shm.is_dir().then(|| shm.to_path_buf()),
        ..ClusterOptions::default()
    }
}

/// Starts a cluster of the test's own (for tests that kill or restart it), with
/// [`cluster_options`]; panics saying why when none can be started.
pub fn own_cluster() -> Cluster {
    Cluster::start(&cluster_options())
        .unwrap_or_else(|e| panic!("these tests need PostgreSQL and none could be started: {e}"))
}

/// The throwaway cluster of this test run. For tests that need the cluster itself
/// (its data dir, `kill`/`restart`); they cannot run against `PGROLLOUT_TEST_DATABASE_URL`.
pub fn cluster() -> &'static Cluster {
    server().cluster().unwrap_or_else(|| {
        panic!("this test needs its own throwaway cluster, so it cannot run with {TEST_DATABASE_URL_ENV} set")
    })
}

/// A database made for one test, dropped (forcibly) when the value is dropped.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Best effort: a failed drop only leaves a database in a server that is thrown
        // away or shared for testing anyway.
        if let Ok(mut client) = connect(server().admin_url()) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&self.name)
            ));
        }
    }
}

/// A database name unique across processes and runs.
fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    )
}

/// Creates an empty database for one test.
pub fn fresh_db() -> TestDb {
    db_from_template("template1")
}

/// Creates a database for one test as a copy of `template` (`CREATE DATABASE … TEMPLATE`,
/// a file copy: far cheaper than building the same schema again).
pub fn db_from_template(template: &str) -> TestDb {
    let name = unique_name("t");
    exec(
        server().admin_url(),
        &format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&name),
            quote_ident(template)
        ),
    );
    let url = server().url(&name);
    TestDb { name, url }
}

/// A temporary migrations directory holding `files` (name, text).
pub fn migrations_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("creating a migrations dir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("writing a migration");
    }
    dir
}

/// The repository's sample migrations (`migrations/`).
pub fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations")
}

/// A fresh database holding the sample migrations applied by pgrollout up to `upto`
/// (all when `None`), copied from a template that the first caller builds with the real
/// binary and every later one reuses. Tests that examine how a build itself turns out
/// build their own database instead.
pub fn sample_db(upto: Option<&str>) -> TestDb {
    // One slot per `upto`, so building one template does not hold up the others.
    static TEMPLATES: Mutex<BTreeMap<Option<String>, Arc<OnceLock<String>>>> =
        Mutex::new(BTreeMap::new());
    let slot = TEMPLATES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(upto.map(str::to_string))
        .or_default()
        .clone();
    let template = slot.get_or_init(|| {
        // Never dropped: it lives as long as the throwaway server (with
        // PGROLLOUT_TEST_DATABASE_URL, it stays behind like any crashed test's database).
        let name = unique_name("template");
        exec(
            server().admin_url(),
            &format!("CREATE DATABASE {}", quote_ident(&name)),
        );
        let mut apply = Pgrollout::new()
            .migrations(sample_dir())
            .database_url(&server().url(&name))
            .arg("apply");
        if let Some(version) = upto {
            apply = apply.args(["--target", version]);
        }
        apply.run().ok();
        name
    });
    db_from_template(template)
}

/// Polls `done` every few milliseconds until it holds; panics naming `what` if it still
/// does not after `timeout`. For waiting on another process (a server state, a file, an
/// exit), never a fixed sleep.
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "gave up after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a session of `url`'s database other than ours is waiting on a lock of the
/// given type (`advisory`, `relation`, …), as `pg_locks` shows it.
pub fn someone_waits_for_lock(url: &str, locktype: &str) -> bool {
    query_strings(
        url,
        &format!(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = '{locktype}' \
             AND pid <> pg_backend_pid() \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
    )[0][0]
        .as_deref()
        != Some("0")
}

/// The throwaway server a `pgrollout --ephemeral` run announces on stderr.
pub struct ThrowawayServer {
    pub port: u16,
    pub data_dir: PathBuf,
}

impl ThrowawayServer {
    /// Reads `running`'s stderr up to the line "throwaway PostgreSQL on HOST:PORT (data in
    /// DIR; removed on exit)" and returns what it names.
    #[track_caller]
    pub fn announced_by(running: &mut run::Running) -> ThrowawayServer {
        let line = running.wait_for_line(Stream::Stderr, "the throwaway server", |l| {
            l.contains("throwaway PostgreSQL on ")
        });
        let parse = || -> Option<ThrowawayServer> {
            let rest = line.split("throwaway PostgreSQL on ").nth(1)?;
            let (address, rest) = rest.split_once(" (data in ")?;
            let port = address.rsplit_once(':')?.1.parse().ok()?;
            let data_dir = PathBuf::from(rest.split_once(';')?.0);
            Some(ThrowawayServer { port, data_dir })
        };
        parse().unwrap_or_else(|| panic!("cannot read the throwaway server from {line:?}"))
    }

    /// The temp dir that holds the data dir, the socket and the log.
    pub fn root(&self) -> &Path {
        self.data_dir.parent().expect("the data dir has a parent")
    }

    /// Whether a session on the server is running a query that starts with `query`.
    pub fn runs(&self, query: &str) -> bool {
        let url = format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        );
        connect(&url)
            .and_then(|mut c| {
                c.query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE starts_with(query, $1)",
                    &[&query],
                )
            })
            .is_ok_and(|row| row.get::<_, i64>(0) > 0)
    }
}

/// How many pgrollout runners are polling for the migration lock of `url`'s database:
/// their lock sessions are named `pgrollout VERSION lock` (the holder renames its own once
/// it has the lock).
pub fn runners_waiting_for_the_lock(url: &str) -> usize {
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name = 'pgrollout {} lock'",
        env!("CARGO_PKG_VERSION")
    );
    query_strings(url, &waiting)[0][0]
        .as_deref()
        .and_then(|n| n.parse().ok())
        .expect("a count")
}

/// Runs `sql` (one or more statements) with the simple query protocol; panics on error.
pub fn exec(url: &str, sql: &str) {
    let mut client = connect(url).unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    client
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("running {sql:?}: {}", error_text(&e)));
}

/// Runs the file at `path` with the server's own psql (`-X`, `ON_ERROR_STOP=1`), as a
/// user would, for comparing with what pgrollout does. Panics with psql's error.
pub fn psql_file(url: &str, path: &std::path::Path) {
    let out = std::process::Command::new("/usr/lib/postgresql/15/bin/psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f"])
        .arg(path)
        .output()
        .expect("running psql");
    assert!(
        out.status.success(),
        "psql -f {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `sql` with the simple query protocol and returns every row as text (`None` for
/// NULL); rows of all statements are concatenated. Panics on error.
pub fn query_strings(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut client = connect(url).unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    let messages = client
        .simple_query(sql)
        .unwrap_or_else(|e| panic!("running {sql:?}: {}", error_text(&e)));
    messages
        .iter()
        .filter_map(|message| match message {
            postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// Connects with TLS available but unverified: the harness only needs to reach the test
/// server, whatever `sslmode` its URL asks for; verification is what the product's own
/// tests examine. The connector is built once: building one loads the system CA store,
/// which costs more CPU than the rest of a short connection.
pub fn connect(url: &str) -> Result<postgres::Client, postgres::Error> {
    static TLS: OnceLock<postgres_native_tls::MakeTlsConnector> = OnceLock::new();
    let tls = TLS.get_or_init(|| {
        let connector = native_tls::TlsConnector::builder()
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true)
            .build()
            .expect("building a TLS connector");
        postgres_native_tls::MakeTlsConnector::new(connector)
    });
    postgres::Client::connect(url, tls.clone())
}

/// Debian's Chromium, headless, with a fresh profile in `profile` and nothing that
/// reaches out to the network on its own: the tests' browser.
pub fn headless_chromium(profile: &Path) -> std::process::Command {
    let mut c = std::process::Command::new("/usr/bin/chromium");
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// A double-quoted SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The server's message and SQLSTATE when there is one; `Display` alone hides them.
fn error_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({}): {}", db.severity(), db.code().code(), db.message()),
        None => e.to_string(),
    }
}
