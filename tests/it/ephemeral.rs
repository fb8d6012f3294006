//! The throwaway-cluster module and the test harness built on it.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use pgrollout::ephemeral::{install_signal_cleanup, Cluster, ClusterOptions};

use crate::common::{exec, fresh_db, query_strings, wait_until};

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

/// Set in the child process that [`spawn_holder`] starts.
const HOLD_ENV: &str = "PGROLLOUT_TEST_HOLD_CLUSTER";

/// In the child process [`spawn_holder`] starts, a signal test's body is this instead: a
/// program that owns a cluster through the library, as `pgrollout --ephemeral` does.
/// Returns whether this process is that child (the test then ends when its parent
/// closes stdin); in the parent it does nothing and the test goes on to test.
fn hold_cluster_if_child() -> bool {
    if std::env::var_os(HOLD_ENV).is_none() {
        return false;
    }
    install_signal_cleanup().unwrap();
    install_signal_cleanup().expect("installing twice is a no-op");
    let cluster = start();
    // Straight to the stdout handle: print! would be captured by the test runner.
    let mut out = std::io::stdout();
    // On a line of its own: the runner has already printed "test … " without a newline.
    writeln!(
        out,
        "\nHOLD {} {}",
        cluster.port(),
        cluster.data_dir().display()
    )
    .unwrap();
    out.flush().unwrap();
    // Hold the cluster until the parent signals us, or until it is gone (stdin closes), so
    // a failing parent does not leave this process running forever.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    true
}

/// This test binary run again for just `test` (a module path in this crate), as a
/// cluster holder: the child, its stdin (the child holds the cluster until that closes),
/// the port and the temp dir.
fn spawn_holder(test: &str) -> (Child, ChildStdin, u16, PathBuf) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(HOLD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("HOLD ") {
            let (port, data_dir) = rest.split_once(' ').unwrap();
            let root = Path::new(data_dir).parent().unwrap().to_path_buf();
            return (child, stdin, port.parse().unwrap(), root);
        }
    }
    panic!(
        "the child exited without starting a cluster: {:?}",
        child.wait()
    );
}

fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "sending signal {signal}");
}

#[test]
fn sigterm_stops_and_deletes_the_cluster() {
    if hold_cluster_if_child() {
        return;
    }
    // stdin stays open, so the child can only end through the signal.
    let (mut child, _stdin, port, root) =
        spawn_holder("ephemeral::sigterm_stops_and_deletes_the_cluster");
    assert!(port_open(port));
    assert!(root.is_dir());
    signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    // The handler finished before the process exited, so no waiting is needed.
    assert!(!root.exists(), "{} left behind", root.display());
    assert!(!port_open(port), "server on port {port} left running");
}

#[test]
fn sigkill_leaves_the_cleanup_to_the_watchdog() {
    if hold_cluster_if_child() {
        return;
    }
    let (mut child, _stdin, port, root) =
        spawn_holder("ephemeral::sigkill_leaves_the_cleanup_to_the_watchdog");
    assert!(port_open(port));
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
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
