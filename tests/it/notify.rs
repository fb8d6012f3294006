//! Notifications against a webhook receiver the test runs: what the body says (Slack
//! and JSON), that secrets are masked, that a 5xx is retried, and that a receiver that
//! never answers costs a bounded wait and a warning — never a failed run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{fresh_db, migrations_dir, server, Pgrollout};

/// How the receiver answers each request in turn (the last answer repeats).
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Read the request, then say nothing (the connection stays open).
    Silence,
}

/// A webhook receiver on a free port: records every request body.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start(answers: &[Answer]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/hooks/T000/B000/s3cr3tpath",
            listener.local_addr().unwrap()
        );
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let (seen, answers) = (bodies.clone(), answers.to_vec());
        std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            for (i, conn) in listener.incoming().enumerate() {
                let Ok(mut conn) = conn else { return };
                let body = read_request(&mut conn);
                seen.lock().unwrap().push(body);
                match answers[i.min(answers.len() - 1)] {
                    Answer::Status(code) => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                        );
                    }
                    Answer::Silence => held.push(conn),
                }
            }
        });
        Receiver { url, bodies }
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap_or_else(|e| panic!("not JSON ({e}): {b}")))
            .collect()
    }
}

fn read_request(conn: &mut TcpStream) -> String {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut len = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

/// Migrations: one that applies, then one that fails with the password in its error.
fn failing_dir(password: &str) -> tempfile::TempDir {
    migrations_dir(&[
        ("1_create_t.sql", "CREATE TABLE t (id int);\n"),
        (
            "2_boom.sql",
            &format!("-- a comment\nSELECT 1;\nDO $$ BEGIN RAISE EXCEPTION 'boom for %', '{password}'; END $$;\n"),
        ),
    ])
}

fn pipeline(dir: &Path, notify: &str) -> tempfile::TempDir {
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("pgrollout.yml"),
        format!(
            "migrations: {}\nenvironments:\n  staging:\n    database_url_env: STAGING_URL\n    steps: [apply]\n    notify: {notify}\n",
            dir.display()
        ),
    )
    .unwrap();
    cfg
}

/// The test server's URL for `db` with a password in it (the harness trusts local
/// connections, so any password connects — and must be masked everywhere).
fn url_with_password(db: &str, password: &str) -> String {
    let mut u = url::Url::parse(&server().url(db)).unwrap();
    u.set_password(Some(password)).unwrap();
    u.to_string()
}

fn run(cfg: &Path, url: &str, hook: &str) -> crate::common::Run {
    Pgrollout::new()
        .arg("--config")
        .arg(cfg.join("pgrollout.yml"))
        .args(["pipeline", "run", "--env", "staging"])
        .env("STAGING_URL", url)
        .env("HOOK_URL", hook)
        .envs(&[
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_RUN_ID", "4242"),
        ])
        .run()
}

#[test]
fn a_failed_run_is_notified_as_json_with_file_line_error_and_run_url_masked() {
    let db = fresh_db();
    let password = "pw-Zq9-unguessable";
    let dir = failing_dir(password);
    let cfg = pipeline(dir.path(), "{ webhook_url_env: HOOK_URL, format: json }");
    let hook = Receiver::start(&[Answer::Status(200)]);
    let r = run(
        cfg.path(),
        &url_with_password(&db.name, password),
        &hook.url,
    );
    assert_eq!(r.code, 1, "the run failed: {r}");
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}\n{r}");
    let b = &bodies[0];
    assert_eq!(b["environment"], "staging");
    assert_eq!(b["status"], "failed");
    assert_eq!(b["applied"], serde_json::json!(["1 create_t"]));
    let location = b["failure"]["location"]
        .as_str()
        .unwrap_or_else(|| panic!("{b}"));
    assert!(location.ends_with("2_boom.sql:3:1"), "{location}");
    let error = b["failure"]["error"].as_str().unwrap();
    assert!(error.contains("boom for ***"), "{error}");
    assert_eq!(
        b["run_url"],
        "https://github.com/acme/shop/actions/runs/4242"
    );
    let text = b.to_string();
    assert!(!text.contains(password), "the password leaked: {text}");
    assert!(
        !text.contains("s3cr3tpath"),
        "the webhook URL leaked: {text}"
    );
    assert!(!r.all().contains("s3cr3tpath"), "{r}");
}

#[test]
fn slack_format_success_only_when_asked_and_a_5xx_is_retried() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("1_create_t.sql"),
        "CREATE TABLE t (id int);\n",
    )
    .unwrap();
    // Without on_success, a success sends nothing.
    let quiet = pipeline(dir.path(), "{ webhook_url_env: HOOK_URL }");
    let hook = Receiver::start(&[Answer::Status(200)]);
    run(quiet.path(), &db.url, &hook.url).ok();
    assert!(hook.bodies().is_empty());

    std::fs::write(
        dir.path().join("2_create_u.sql"),
        "CREATE TABLE u (id int);\n",
    )
    .unwrap();
    let loud = pipeline(
        dir.path(),
        "{ webhook_url_env: HOOK_URL, format: slack, on_success: true, retries: 2 }",
    );
    let hook = Receiver::start(&[Answer::Status(503), Answer::Status(200)]);
    let r = run(loud.path(), &db.url, &hook.url).ok();
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 2, "one 503, then delivered: {bodies:?}");
    assert_eq!(bodies[0], bodies[1], "the same message each time");
    let text = bodies[1]["text"].as_str().unwrap();
    assert!(
        text.contains("*staging*") && text.contains("*success*"),
        "{text}"
    );
    assert!(text.contains("2 create_u"), "{text}");
    assert!(
        text.contains("<https://github.com/acme/shop/actions/runs/4242|Run log>"),
        "{text}"
    );
    assert!(!r.all().contains("not delivered"), "{r}");
}

#[test]
fn an_unanswering_receiver_costs_a_bounded_wait_and_a_warning_not_the_run() {
    let db = fresh_db();
    let dir = failing_dir("x");
    let cfg = pipeline(
        dir.path(),
        "{ webhook_url_env: HOOK_URL, timeout: 1s, retries: 1 }",
    );
    let hook = Receiver::start(&[Answer::Silence]);
    let started = Instant::now();
    let r = run(cfg.path(), &db.url, &hook.url);
    let took = started.elapsed();
    assert_eq!(
        r.code, 1,
        "the migration's failure decides the exit code: {r}"
    );
    assert_eq!(hook.bodies().len(), 2, "one attempt and one retry");
    assert!(r.stderr.contains("was not delivered"), "{r}");
    assert!(took < Duration::from_secs(20), "took {took:?}");

    // A receiver that cannot be reached at all: a warning, and a successful run stays 0.
    let ok = tempfile::tempdir().unwrap();
    std::fs::write(
        ok.path().join("1_create_t.sql"),
        "CREATE TABLE t (id int);\n",
    )
    .unwrap();
    let cfg = pipeline(
        ok.path(),
        "{ webhook_url_env: HOOK_URL, on_success: true, retries: 0 }",
    );
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let fresh = fresh_db();
    let r = run(cfg.path(), &fresh.url, &dead);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stderr.contains("was not delivered"), "{r}");
}

#[test]
fn a_run_started_from_the_dashboard_is_notified_with_its_actor() {
    let db = fresh_db();
    let dir = migrations_dir(&[("1_create_t.sql", "CREATE TABLE t (id int);\n")]);
    let hook = Receiver::start(&[Answer::Status(200)]);
    let file = format!(
        "migrations: {}\nenvironments:\n  staging:\n    database_url_env: STAGING_URL\n    steps: [apply]\n    \
         serve: {{ actions: [apply] }}\n    notify: {{ webhook_url_env: HOOK_URL, format: json, on_success: true }}\n",
        dir.path().display()
    );
    let s = crate::serve::start_with(
        &file,
        &[("STAGING_URL", &db.url), ("HOOK_URL", &hook.url)],
        Some("alice:0123456789abcdef0123"),
        &[],
    );
    let r = s.post("/api/v1/environments/staging/apply", "{}");
    assert_eq!(r.status, 202, "{r:?}");
    let id = r.json()["run_id"].as_str().unwrap().to_string();
    assert_eq!(s.finished(&id)["status"], "succeeded");
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let b = &bodies[0];
    assert_eq!(b["action"], "apply");
    assert_eq!(b["actor"], "alice");
    assert_eq!(b["run_id"], id.as_str());
    assert_eq!(b["status"], "success");
    assert_eq!(b["applied"], serde_json::json!(["1 create_t"]));
}
