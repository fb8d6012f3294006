//! Shared harness for the integration tests: one PostgreSQL server per test binary and a
//! fresh database per test, so tests run in parallel without seeing each other's tables.
//!
//! The server is a throwaway [`Cluster`] unless `PGROLLOUT_TEST_DATABASE_URL` names an
//! existing one (a superuser URL; databases are created and dropped through it). When no
//! server is available the tests panic: a test that needs PostgreSQL must never pass by
//! skipping.

// Each test binary compiles its own copy of this module and uses only part of it.
#![allow(dead_code)]

pub mod actions;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use pgrollout::ephemeral::{Cluster, ClusterOptions};

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

/// The server for this test binary, started on first use.
pub fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var(TEST_DATABASE_URL_ENV) {
        Ok(given) => TestServer {
            admin_url: url::Url::parse(&given)
                .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL_ENV}={given:?} is not a URL: {e}")),
            cluster: None,
        },
        Err(_) => {
            let cluster = Cluster::start(&ClusterOptions::default()).unwrap_or_else(|e| {
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

/// The throwaway cluster of this test binary. For tests that need the cluster itself
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

/// Creates a database with a name unique across processes and runs.
pub fn fresh_db() -> TestDb {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "t_{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    );
    exec(
        server().admin_url(),
        &format!("CREATE DATABASE {}", quote_ident(&name)),
    );
    let url = server().url(&name);
    TestDb { name, url }
}

/// Runs `sql` (one or more statements) with the simple query protocol; panics on error.
pub fn exec(url: &str, sql: &str) {
    let mut client = connect(url).unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    client
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("running {sql:?}: {}", error_text(&e)));
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
/// tests examine.
pub fn connect(url: &str) -> Result<postgres::Client, postgres::Error> {
    let tls = native_tls::TlsConnector::builder()
        .danger_accept_invalid_certs(true)
        .danger_accept_invalid_hostnames(true)
        .build()
        .expect("building a TLS connector");
    postgres::Client::connect(url, postgres_native_tls::MakeTlsConnector::new(tls))
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
