//! The throwaway-cluster module and the test harness built on it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pgrollout::ephemeral::{Cluster, ClusterOptions};

use common::{exec, fresh_db, query_strings};

fn start() -> Cluster {
    Cluster::start(&ClusterOptions::default()).unwrap_or_else(|e| panic!("{e}"))
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
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.url("postgres");
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

/// The real binary running the sample's production pipeline on `--ephemeral`, stopped in
/// its review delay: the child, the port and temp dir of its throwaway server, and the
/// stderr lines read so far (the reader keeps draining stderr so the child never blocks).
struct Holder {
    child: Child,
    port: u16,
    root: PathBuf,
    lines: std::sync::mpsc::Receiver<String>,
}

/// Start `pgrollout --ephemeral ARGS` from the repository root and read its stderr until
/// `ready` appears, noting the server's port and data directory on the way.
fn spawn_binary(args: &[&str], ready: &str) -> Holder {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgrollout"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--ephemeral")
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut server = None;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).unwrap_or_else(|_| {
            panic!(
                "no `{ready}` within 120 s; stderr so far:\n{}\nexit: {:?}",
                seen.join("\n"),
                child.try_wait()
            )
        });
        // "throwaway PostgreSQL on 127.0.0.1:PORT (data in DIR; removed on exit)"
        if let Some(rest) = line.split("throwaway PostgreSQL on 127.0.0.1:").nth(1) {
            let (port, rest) = rest.split_once(" (data in ").unwrap();
            let data_dir = rest.split_once("; removed on exit)").unwrap().0;
            let root = Path::new(data_dir).parent().unwrap().to_path_buf();
            server = Some((port.parse().unwrap(), root));
        }
        let done = line.contains(ready);
        seen.push(line);
        if done {
            break;
        }
    }
    let (port, root) =
        server.unwrap_or_else(|| panic!("no throwaway server announced:\n{}", seen.join("\n")));
    Holder {
        child,
        port,
        root,
        lines,
    }
}

/// The sample's production pipeline, waiting in a 30 s review delay.
fn spawn_in_review_delay() -> Holder {
    spawn_binary(
        &[
            "pipeline",
            "run",
            "--env",
            "production",
            "--confirm",
            "MIGRATE-PRODUCTION",
            "--review-delay",
            "30s",
        ],
        "applying in",
    )
}

impl Holder {
    /// Wait for the child to exit; its status and every stderr line it printed after
    /// the ready line.
    fn finish(mut self) -> (std::process::ExitStatus, String, u16, PathBuf) {
        let status = self.child.wait().unwrap();
        let rest: Vec<String> = self.lines.iter().collect();
        (status, rest.join("\n"), self.port, self.root)
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "sending signal {signal}");
}

/// Ctrl-C during the review delay: the run stops there, says nothing was applied, exits
/// 130, and the throwaway server is gone before the process exits.
#[test]
fn sigint_in_the_review_delay_stops_with_nothing_applied() {
    let h = spawn_in_review_delay();
    assert!(port_open(h.port));
    assert!(h.root.is_dir());
    signal(&h.child, libc::SIGINT);
    let (status, stderr, port, root) = h.finish();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("nothing was applied"), "{stderr}");
    assert!(!root.exists(), "{} left behind", root.display());
    assert!(!port_open(port), "server on port {port} left running");
}

/// A first signal lets the current migration finish; a second stops at once — and the
/// throwaway server is still removed, by the handler, before the process exits.
#[test]
fn a_second_signal_stops_at_once_and_removes_the_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1_slow.sql"), "SELECT pg_sleep(600);\n").unwrap();
    let migrations = dir.path().to_str().unwrap();
    let h = spawn_binary(&["--migrations", migrations, "apply"], "removed on exit)");
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", h.port);
    let deadline = Instant::now() + Duration::from_secs(60);
    while query_strings(
        &url,
        "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(600)%'",
    )
    .is_empty()
    {
        assert!(Instant::now() < deadline, "the migration never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&h.child, libc::SIGINT);
    signal(&h.child, libc::SIGTERM);
    let (status, stderr, port, root) = h.finish();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(!root.exists(), "{} left behind", root.display());
    assert!(!port_open(port), "server on port {port} left running");
}

#[test]
fn sigkill_leaves_the_cleanup_to_the_watchdog() {
    let h = spawn_in_review_delay();
    assert!(port_open(h.port));
    signal(&h.child, libc::SIGKILL);
    let (_, _, port, root) = h.finish();
    // The watchdog works asynchronously after the owner is gone: poll for its result.
    let deadline = Instant::now() + Duration::from_secs(30);
    while (root.exists() || port_open(port)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!root.exists(), "{} left behind", root.display());
    assert!(!port_open(port), "server on port {port} left running");
}
