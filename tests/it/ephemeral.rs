//! The throwaway-cluster module and the test harness built on it.

use crate::common;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pgrollout::ephemeral::{Cluster, ClusterOptions};

use crate::common::{exec, fresh_db, query_strings, wait_until, Pgrollout, Running, Stream};

fn start() -> Cluster {
    common::own_cluster()
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).is_ok()
}

fn one_value(url: &str, sql: &str) -> Option<String> {
    let rows = query_strings(url, sql);
    assert_eq!(rows.len(), 1, "{sql} returned {rows:?}");
    rows[0][0].clone()
}

#[test]
fn a_started_cluster_answers_queries() {
    let cluster = start();
    assert_eq!(cluster.host(), "127.0.0.1");
    assert!(cluster.url("postgres").starts_with(&format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        cluster.port()
    )));
    assert_eq!(
        query_strings(&cluster.url("postgres"), "select 1, null::text"),
        vec![vec![Some("1".to_string()), None]]
    );
    assert!(cluster.data_dir().join("PG_VERSION").is_file());
    assert!(cluster
        .socket_dir()
        .join(format!(".s.PGSQL.{}", cluster.port()))
        .exists());
    let max_connections: u32 = one_value(&cluster.url("postgres"), "show max_connections")
        .unwrap()
        .parse()
        .unwrap();
    assert!(max_connections >= 100);
    assert_eq!(
        one_value(&cluster.url("postgres"), "show fsync").as_deref(),
        Some("off")
    );
}

#[test]
fn two_clusters_run_side_by_side_on_different_ports() {
    let a = start();
    let b = start();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.data_dir(), b.data_dir());
    exec(&a.url("postgres"), "create table only_in_a (x int)");
    let in_b = one_value(
        &b.url("postgres"),
        "select count(*) from pg_class where relname = 'only_in_a'",
    );
    assert_eq!(in_b.as_deref(), Some("0"));
}

#[test]
fn options_reach_the_server_config() {
    let dir = tempfile::tempdir().unwrap();
    let parent = tempfile::tempdir().unwrap();
    // The server's own user must be able to reach the cluster inside it.
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let extra = dir.path().join("extra.txt");
    std::fs::write(&extra, "hello").unwrap();
    let cluster = Cluster::start(&ClusterOptions {
        settings: vec![
            ("work_mem".into(), "7MB".into()),
            ("application_name".into(), "it's quoted".into()),
        ],
        hba_lines: vec!["host all nobody 127.0.0.1/32 reject".into()],
        fast: false,
        files: vec![(extra, "extra.txt".into())],
        parent_dir: Some(parent.path().to_path_buf()),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.url("postgres");
    assert!(cluster.data_dir().starts_with(parent.path()));
    assert_eq!(one_value(&url, "show work_mem").as_deref(), Some("7MB"));
    assert_eq!(one_value(&url, "show fsync").as_deref(), Some("on"));
    let first_rule = query_strings(
        &url,
        "select user_name[1], auth_method from pg_hba_file_rules order by line_number limit 1",
    );
    assert_eq!(
        first_rule,
        vec![vec![Some("nobody".into()), Some("reject".into())]]
    );
    let copied = cluster.data_dir().join("extra.txt");
    assert_eq!(std::fs::read_to_string(&copied).unwrap(), "hello");
    let mode = std::fs::metadata(&copied).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn kill_loses_no_committed_data_and_restart_serves_it_again() {
    let cluster = start();
    let url = cluster.url("postgres");
    exec(
        &url,
        "create table kept (x int); insert into kept values (42)",
    );

    cluster.kill().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        common::connect(&url).is_err(),
        "connected to a killed server"
    );
    assert!(cluster.data_dir().is_dir());

    cluster.restart().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(one_value(&url, "select x from kept").as_deref(), Some("42"));
}

#[test]
fn a_failed_restart_reports_the_server_log() {
    let cluster = start();
    cluster.kill().unwrap_or_else(|e| panic!("{e}"));
    // A setting the server rejects at startup.
    let conf = cluster.data_dir().join("postgresql.conf");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&conf)
        .unwrap();
    writeln!(file, "shared_buffers = 'lots'").unwrap();
    drop(file);
    let message = cluster.restart().unwrap_err().to_string();
    assert!(
        message.starts_with("starting PostgreSQL on 127.0.0.1:"),
        "{message}"
    );
    assert!(message.contains("shared_buffers"), "{message}");
}

#[test]
fn stop_deletes_everything_and_closes_the_port() {
    let cluster = start();
    let port = cluster.port();
    let data_dir = cluster.data_dir().to_path_buf();
    let root = data_dir.parent().unwrap().to_path_buf();
    assert!(port_open(port));
    cluster.stop();
    assert!(!data_dir.exists());
    assert!(!root.exists());
    assert!(!port_open(port));
}

#[test]
fn fresh_dbs_are_separate_and_dropped_afterwards() {
    let a = fresh_db();
    let b = fresh_db();
    assert_ne!(a.name, b.name);
    exec(
        &a.url,
        "create table mine (x int); insert into mine values (1)",
    );
    assert_eq!(
        one_value(&a.url, "select count(*) from mine").as_deref(),
        Some("1")
    );
    let in_b = one_value(
        &b.url,
        "select count(*) from pg_class where relname = 'mine'",
    );
    assert_eq!(in_b.as_deref(), Some("0"));

    let name = a.name.clone();
    // Dropping must succeed even with a session still open on the database.
    let _open = common::connect(&a.url).unwrap();
    drop(a);
    let left = one_value(
        common::server().admin_url(),
        &format!("select count(*) from pg_database where datname = '{name}'"),
    );
    assert_eq!(left.as_deref(), Some("0"));
}

/// `pgrollout --ephemeral ARGS` started from the repository root, read until its
/// throwaway server is announced: the program, and the server's port and temp dir.
fn spawn_ephemeral(args: &[&str]) -> (Running, u16, PathBuf) {
    let mut running = Pgrollout::new()
        .cwd(env!("CARGO_MANIFEST_DIR"))
        .arg("--ephemeral")
        .args(args)
        .spawn();
    // "throwaway PostgreSQL on 127.0.0.1:PORT (data in DIR; removed on exit)"
    let line = running.wait_for_line(Stream::Stderr, "the throwaway server", |l| {
        l.contains("throwaway PostgreSQL on 127.0.0.1:")
    });
    let rest = line
        .split("throwaway PostgreSQL on 127.0.0.1:")
        .nth(1)
        .unwrap();
    let (port, rest) = rest.split_once(" (data in ").unwrap();
    let data_dir = rest.split_once("; removed on exit)").unwrap().0;
    let root = Path::new(data_dir).parent().unwrap().to_path_buf();
    (running, port.parse().unwrap(), root)
}

/// The sample's production pipeline on `--ephemeral`, waiting in a 30 s review delay.
fn spawn_in_review_delay() -> (Running, u16, PathBuf) {
    let (mut running, port, root) = spawn_ephemeral(&[
        "pipeline",
        "run",
        "--env",
        "production",
        "--confirm",
        "MIGRATE-PRODUCTION",
        "--review-delay",
        "30s",
    ]);
    running.wait_for_line(Stream::Stderr, "the review delay's countdown", |l| {
        l.contains("applying in")
    });
    (running, port, root)
}

/// Ctrl-C during the review delay: the run stops there, says nothing was applied, exits
/// 130, and the throwaway server is gone before the process exits.
#[test]
fn sigint_in_the_review_delay_stops_with_nothing_applied() {
    let (running, port, root) = spawn_in_review_delay();
    assert!(port_open(port));
    assert!(root.is_dir());
    running.signal(libc::SIGINT);
    let r = running.wait();
    assert_eq!(r.code, 130, "{r}");
    assert!(r.stderr.contains("nothing was applied"), "{r}");
    assert!(!root.exists(), "{} left behind", root.display());
    assert!(!port_open(port), "server on port {port} left running");
}

/// A first signal cancels the running statement and lets the command stop cleanly; a
/// second stops at once — and the throwaway server is still removed, by the handler,
/// before the process exits.
#[test]
fn a_second_signal_stops_at_once_and_removes_the_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1_slow.sql"), "SELECT pg_sleep(600);\n").unwrap();
    let migrations = dir.path().to_str().unwrap();
    let (running, port, root) = spawn_ephemeral(&["--migrations", migrations, "apply"]);
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    wait_until(
        "the migration's pg_sleep is running",
        Duration::from_secs(60),
        || {
            !query_strings(
                &url,
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(600)%'",
            )
            .is_empty()
        },
    );
    running.signal(libc::SIGINT);
    running.signal(libc::SIGTERM);
    let r = running.wait();
    assert_eq!(r.code, 130, "{r}");
    assert!(!root.exists(), "{} left behind", root.display());
    assert!(!port_open(port), "server on port {port} left running");
}

#[test]
fn sigkill_leaves_the_cleanup_to_the_watchdog() {
    let (running, port, root) = spawn_in_review_delay();
    assert!(port_open(port));
    running.signal(libc::SIGKILL);
    running.wait();
    // The watchdog works asynchronously after the owner is gone.
    wait_until(
        &format!(
            "the watchdog has removed {} and stopped the server on port {port}",
            root.display()
        ),
        Duration::from_secs(30),
        || !root.exists() && !port_open(port),
    );
}
