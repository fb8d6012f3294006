//! `pgrollout serve` through real sockets against real PostgreSQL: tokens, the overview,
//! actions and their audit rows, the confirmation phrase, concurrent applies, the live
//! event stream, escaping in a real browser, and a clean stop on SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use crate::common::{
    fresh_db, query_strings, sample_db, sample_dir, wait_until, Pgrollout, Running, Stream, TestDb,
};

const TOKEN: &str = "alice:0123456789abcdef0123";
const SECRET: &str = "0123456789abcdef0123";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A running `pgrollout serve` and where it listens.
pub struct Server {
    pub addr: String,
    pub running: Running,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}\n{}", self.status, self.head, self.body)
    }
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// One HTTP/1.0 request (the server closes the connection after the response, so the
/// body is everything up to EOF, whatever its framing).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn bearer() -> (&'static str, String) {
    ("Authorization", format!("Bearer {SECRET}"))
}

impl Server {
    pub fn get(&self, path: &str) -> Reply {
        let (k, v) = bearer();
        request(&self.addr, "GET", path, &[(k, &v)], "")
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        let (k, v) = bearer();
        request(&self.addr, "POST", path, &[(k, &v)], body)
    }

    /// Poll a run until it is no longer running; its final JSON.
    pub fn finished(&self, run_id: &str) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        wait_until(
            &format!("run {run_id} finished"),
            Duration::from_secs(60),
            || {
                last = self.get(&format!("/api/v1/runs/{run_id}")).json();
                last["status"] != "running"
            },
        );
        last
    }
}

/// The pipeline file of these tests: staging allows every action; production allows
/// apply behind its phrase; review allows nothing.
fn pipeline(migrations: &Path) -> String {
    format!(
        "migrations: {}\nenvironments:\n\
         \x20 staging:\n    database_url_env: STAGING_URL\n    steps: [apply]\n    serve: {{ actions: [dry-run, apply, rollback] }}\n\
         \x20 production:\n    database_url_env: PROD_URL\n    on: {{ dispatch: {{ confirm: MIGRATE-PRODUCTION }} }}\n    steps: [apply]\n    serve: {{ actions: [dry-run, apply] }}\n\
         \x20 review:\n    database_url_env: REVIEW_URL\n    steps: [apply]\n",
        migrations.display()
    )
}

/// Start `serve` on a free port with `args`, the environments' URLs and `tokens`.
pub fn start(
    migrations: &Path,
    urls: &[(&str, &str)],
    tokens: Option<&str>,
    args: &[&str],
) -> Server {
    start_with(&pipeline(migrations), urls, tokens, args)
}

/// [`start`] with a pipeline file of the test's own.
pub fn start_with(
    pipeline_file: &str,
    urls: &[(&str, &str)],
    tokens: Option<&str>,
    args: &[&str],
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pgrollout.yml");
    std::fs::write(&config, pipeline_file).unwrap();
    let mut p = Pgrollout::new()
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .envs(urls);
    if let Some(t) = tokens {
        p = p.env("PGROLLOUT_SERVE_TOKENS", t);
    }
    let mut running = p.spawn();
    let line = running.wait_for_line(Stream::Stderr, "the listening address", |l| {
        l.contains("serving the dashboard on http://")
    });
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Server {
        addr,
        running,
        _dir: dir,
    }
}

fn scalar(url: &str, sql: &str) -> String {
    query_strings(url, sql)[0][0].clone().unwrap_or_default()
}

/// Whether pgrollout's tracking schema exists in `url`'s database (anything was written).
fn tracked(url: &str) -> bool {
    scalar(
        url,
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgrollout'",
    ) != "0"
}

struct Envs {
    staging: TestDb,
    production: TestDb,
    review: TestDb,
}

fn envs() -> Envs {
    Envs {
        staging: fresh_db(),
        production: sample_db(Some("20251110083000")),
        review: fresh_db(),
    }
}

fn urls(e: &Envs) -> Vec<(&str, &str)> {
    vec![
        ("STAGING_URL", e.staging.url.as_str()),
        ("PROD_URL", e.production.url.as_str()),
        ("REVIEW_URL", e.review.url.as_str()),
    ]
}

#[test]
fn every_route_but_healthz_needs_a_valid_token() {
    let e = envs();
    let s = start(&sample_dir(), &urls(&e), Some(TOKEN), &[]);
    assert_eq!(request(&s.addr, "GET", "/healthz", &[], "").status, 200);
    for path in [
        "/",
        "/environments/staging",
        "/api/v1/environments",
        "/api/v1/environments/staging",
    ] {
        let none = request(&s.addr, "GET", path, &[], "");
        assert_eq!(none.status, 401, "{path} without a token: {none:?}");
        let wrong = request(
            &s.addr,
            "GET",
            path,
            &[("Authorization", "Bearer 0123456789abcdef0124")],
            "",
        );
        assert_eq!(wrong.status, 401, "{path} with a wrong token: {wrong:?}");
        let ok = s.get(path);
        assert_eq!(ok.status, 200, "{path} with the token: {ok:?}");
    }
    let post = request(
        &s.addr,
        "POST",
        "/api/v1/environments/staging/apply",
        &[],
        "{}",
    );
    assert_eq!(post.status, 401, "{post:?}");
    assert!(
        post.head
            .to_lowercase()
            .contains("www-authenticate: bearer"),
        "{post:?}"
    );
    // The login cookie signs the pages in, never an action.
    let cookie = format!("pgrollout_token={SECRET}");
    assert_eq!(
        request(&s.addr, "GET", "/", &[("Cookie", &cookie)], "").status,
        200
    );
    let by_cookie = request(
        &s.addr,
        "POST",
        "/api/v1/environments/staging/dry-run",
        &[("Cookie", &cookie)],
        "{}",
    );
    assert_eq!(by_cookie.status, 401, "{by_cookie:?}");
    // Nothing ran.
    assert!(!tracked(&e.staging.url), "nothing may be written");
}

#[test]
fn overview_and_api_list_each_environment_with_its_counts_and_no_password() {
    let e = envs();
    let s = start(&sample_dir(), &urls(&e), Some(TOKEN), &[]);
    let total = std::fs::read_dir(sample_dir()).unwrap().count() as u64;
    let api = s.get("/api/v1/environments").json();
    assert_eq!(api["api_version"], 1);
    let list = api["environments"].as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["staging", "production", "review"]);
    let prod = &list[1];
    assert_eq!(prod["counts"]["applied"], 7, "{prod}");
    assert_eq!(prod["counts"]["pending"], total - 7, "{prod}");
    assert_eq!(prod["health"]["status"], "warning");
    assert_eq!(prod["confirm_required"], true);
    assert_eq!(list[0]["counts"]["pending"], total, "{}", list[0]);
    assert_eq!(list[2]["actions"], serde_json::json!([]));
    let page = s.get("/");
    for expected in [
        "data-env=\"staging\"",
        "data-env=\"production\"",
        "data-env=\"review\"",
        "href=\"/environments/production\"",
    ] {
        assert!(
            page.body.contains(expected),
            "overview lacks {expected}: {}",
            page.body
        );
    }
    let one = s.get("/api/v1/environments/production").json();
    assert_eq!(one["migrations"].as_array().unwrap().len() as u64, total);
    assert_eq!(one["migrations"][0]["state"], "applied");
    // The test server's URL carries no password; a password given in a URL must not show.
    for body in [
        page.body,
        s.get("/environments/production").body,
        one.to_string(),
    ] {
        assert!(!body.contains(SECRET), "a token leaked");
    }
}

#[test]
fn an_apply_from_the_api_is_audited_under_the_tokens_name() {
    let e = envs();
    let s = start(&sample_dir(), &urls(&e), Some(TOKEN), &[]);
    let r = s.post("/api/v1/environments/staging/apply", r#"{}"#);
    assert_eq!(r.status, 202, "{r:?}");
    let id = r.json()["run_id"].as_str().unwrap().to_string();
    let done = s.finished(&id);
    assert_eq!(done["status"], "succeeded", "{done}");
    let total = std::fs::read_dir(sample_dir()).unwrap().count().to_string();
    assert_eq!(
        scalar(&e.staging.url, &format!(
            "SELECT count(*) FROM pgrollout.migration_history WHERE action = 'apply' AND status = 'completed' \
             AND actor = 'alice' AND run_id = '{id}' AND environment = 'staging'"
        )),
        total
    );
    assert_eq!(
        scalar(
            &e.staging.url,
            "SELECT count(DISTINCT actor) FROM pgrollout.migration_history"
        ),
        "1"
    );
    // A rollback from the API: the newest two, newest first, by alice.
    let rb = s.post("/api/v1/environments/staging/rollback", r#"{"steps": 2}"#);
    assert_eq!(rb.status, 202, "{rb:?}");
    let rb_id = rb.json()["run_id"].as_str().unwrap().to_string();
    let done = s.finished(&rb_id);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        scalar(&e.staging.url, &format!(
            "SELECT string_agg(version_text, ',' ORDER BY id) FROM pgrollout.migration_history \
             WHERE action = 'rollback' AND status = 'completed' AND actor = 'alice' AND run_id = '{rb_id}'"
        )),
        "20251118100500,20251118100000"
    );
    let reapply = s.post("/api/v1/environments/staging/apply", "{}");
    assert_eq!(
        s.finished(reapply.json()["run_id"].as_str().unwrap())["status"],
        "succeeded"
    );
    // The history filters.
    let rows = |q: &str| {
        s.get(&format!("/api/v1/environments/staging?{q}")).json()["history"]
            .as_array()
            .unwrap()
            .len()
    };
    let n: usize = total.parse().unwrap();
    assert_eq!(
        rows("actor=alice&action=apply&status=completed"),
        n + 2,
        "first apply, and the two re-applied"
    );
    assert_eq!(rows(&format!("batch={id}&status=completed")), n);
    assert_eq!(rows("actor=bob"), 0);
    assert_eq!(rows("action=rollback&status=completed"), 2);
    let filtered = s.get("/environments/staging?actor=bob");
    assert!(
        filtered.body.contains("No history recorded."),
        "{}",
        filtered.body
    );
    // A migration's page: its SQL, the stored down, its history.
    let m = s.get("/environments/staging/migrations/20251101090000");
    assert_eq!(m.status, 200, "{m:?}");
    for expected in ["CREATE TABLE", "id=\"stored-down\"", "alice", &id] {
        assert!(
            m.body.contains(expected),
            "the migration page lacks {expected}: {}",
            m.body
        );
    }
    assert_eq!(s.get("/environments/staging/migrations/99").status, 404);
    // The page shows them applied, by alice.
    let page = s.get("/environments/staging");
    assert!(page.body.contains("alice"), "{}", page.body);
    assert_eq!(
        s.get("/api/v1/environments/staging").json()["counts"]["pending"],
        0
    );
}

#[test]
fn actions_are_refused_where_serve_actions_does_not_allow_them() {
    let e = envs();
    let s = start(&sample_dir(), &urls(&e), Some(TOKEN), &[]);
    let r = s.post("/api/v1/environments/review/apply", "{}");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("serve.actions"),
        "{r:?}"
    );
    let r = s.post("/api/v1/environments/staging/explode", "{}");
    assert_eq!(r.status, 404, "{r:?}");
    let r = s.post(
        "/api/v1/environments/production/rollback",
        r#"{"confirm": "MIGRATE-PRODUCTION"}"#,
    );
    assert_eq!(r.status, 403, "rollback is not in production's list: {r:?}");
    assert!(!tracked(&e.review.url), "nothing may be written");
    // Read-only: nothing, anywhere.
    let ro = start(&sample_dir(), &urls(&e), Some(TOKEN), &["--read-only"]);
    let r = ro.post("/api/v1/environments/staging/dry-run", "{}");
    assert_eq!(r.status, 403, "{r:?}");
}

#[test]
fn production_refuses_without_its_phrase() {
    let e = envs();
    let s = start(&sample_dir(), &urls(&e), Some(TOKEN), &[]);
    let before = scalar(
        &e.production.url,
        "SELECT count(*) FROM pgrollout.migration_history",
    );
    for body in [
        "{}",
        r#"{"confirm": "migrate-production"}"#,
        r#"{"confirm": "MIGRATE-PRODUCTION "}"#,
    ] {
        let r = s.post("/api/v1/environments/production/apply", body);
        assert_eq!(r.status, 403, "{body}: {r:?}");
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .contains("confirmation phrase"),
            "{r:?}"
        );
    }
    let r = s.post("/api/v1/environments/production/apply", "{\"confirm\": 1");
    assert_eq!(r.status, 400, "{r:?}");
    let big = format!("{{\"confirm\": \"{}\"}}", "x".repeat(64 * 1024));
    let r = s.post("/api/v1/environments/production/apply", &big);
    assert_eq!(r.status, 413, "a large body is refused: {r:?}");
    assert_eq!(
        scalar(
            &e.production.url,
            "SELECT count(*) FROM pgrollout.migration_history"
        ),
        before
    );
    let r = s.post(
        "/api/v1/environments/production/apply",
        r#"{"confirm": "MIGRATE-PRODUCTION"}"#,
    );
    assert_eq!(r.status, 202, "{r:?}");
    let done = s.finished(r.json()["run_id"].as_str().unwrap());
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        s.get("/api/v1/environments/production").json()["counts"]["pending"],
        0
    );
}

#[test]
fn two_concurrent_applies_apply_each_migration_once() {
    let e = envs();
    let s = start(&sample_dir(), &urls(&e), Some(TOKEN), &[]);
    let addr = s.addr.clone();
    let both: Vec<String> = std::thread::scope(|scope| {
        let h: Vec<_> = (0..2)
            .map(|_| {
                let addr = addr.clone();
                scope.spawn(move || {
                    let (k, v) = bearer();
                    let r = request(
                        &addr,
                        "POST",
                        "/api/v1/environments/staging/apply",
                        &[(k, &v)],
                        "{}",
                    );
                    assert_eq!(r.status, 202, "{r:?}");
                    r.json()["run_id"].as_str().unwrap().to_string()
                })
            })
            .collect();
        h.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for id in &both {
        let done = s.finished(id);
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    let total = std::fs::read_dir(sample_dir()).unwrap().count().to_string();
    assert_eq!(
        scalar(&e.staging.url, "SELECT count(*) FROM pgrollout.migration_history WHERE action = 'apply' AND status = 'completed'"),
        total
    );
    assert_eq!(
        scalar(&e.staging.url, "SELECT count(*) FROM (SELECT version FROM pgrollout.migration_history \
               WHERE action = 'apply' AND status = 'completed' GROUP BY version HAVING count(*) > 1) d"),
        "0"
    );
}

#[test]
fn a_runs_events_stream_live_as_server_sent_events() {
    let e = envs();
    let s = start(&sample_dir(), &urls(&e), Some(TOKEN), &[]);
    let r = s.post("/api/v1/environments/staging/dry-run", "{}");
    assert_eq!(r.status, 202, "{r:?}");
    let id = r.json()["run_id"].as_str().unwrap().to_string();
    let stream = s.get(&format!("/api/v1/runs/{id}/events"));
    assert!(stream.head.contains("text/event-stream"), "{stream:?}");
    let events: Vec<serde_json::Value> = stream
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"connecting"), "{kinds:?}");
    assert_eq!(
        kinds.last(),
        Some(&"run_finished"),
        "the stream ends with the run: {kinds:?}"
    );
    assert!(kinds.contains(&"plan"), "{kinds:?}");
    let rehearsed = events
        .iter()
        .filter(|e| e["kind"] == "section_finished")
        .count();
    assert!(rehearsed >= 1, "{kinds:?}");
    assert_eq!(events.last().unwrap()["status"], "succeeded");
    // A dry run wrote nothing.
    assert!(!tracked(&e.staging.url), "nothing may be written");
}

#[test]
fn refuses_to_start_without_tokens_unless_read_only_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pgrollout.yml");
    std::fs::write(&config, pipeline(&sample_dir())).unwrap();
    let serve = |args: &[&str]| {
        Pgrollout::new()
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .args(args)
            .run()
    };
    let r = serve(&["--listen", "127.0.0.1:0"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("PGROLLOUT_SERVE_TOKENS"), "{r}");
    let r = serve(&["--listen", "0.0.0.0:0", "--read-only"]);
    assert_eq!(r.code, 2, "not loopback: {r}");
    let bad = Pgrollout::new()
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("PGROLLOUT_SERVE_TOKENS", "alice:short")
        .run();
    assert_eq!(bad.code, 2, "{bad}");
    assert!(
        !bad.all().contains("short") || bad.all().contains("shorter"),
        "{bad}"
    );
}

/// A throwaway migrations directory whose second migration's name is markup.
fn hostile_dir() -> tempfile::TempDir {
    crate::common::migrations_dir(&[
        ("1_create_t.sql", "CREATE TABLE t (id int);\n"),
        (
            "2_<img src=x onerror=document.title='pwned'>.sql",
            "-- migrate:up\nALTER TABLE t ADD COLUMN n int;\n-- migrate:down\nALTER TABLE t DROP COLUMN n;\n",
        ),
    ])
}

fn chromium_dom(url: &str, extra: &[&str]) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: this test renders the dashboard in Debian's Chromium; \
         install it with `apt-get install chromium`"
    );
    let profile = tempfile::tempdir().unwrap();
    let out = crate::common::headless_chromium(profile.path())
        .args(extra)
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_dashboard_renders_in_chromium_with_hostile_names_as_text() {
    let dir = hostile_dir();
    let staging = fresh_db();
    crate::common::Pgrollout::new()
        .migrations(dir.path())
        .database_url(&staging.url)
        .arg("apply")
        .run()
        .ok();
    let production = fresh_db();
    let review = fresh_db();
    let urls = [
        ("STAGING_URL", staging.url.as_str()),
        ("PROD_URL", production.url.as_str()),
        ("REVIEW_URL", review.url.as_str()),
    ];
    // Read-only on loopback: the one way a browser without a token reaches the pages.
    let s = start(dir.path(), &urls, None, &["--read-only"]);
    let dom = chromium_dom(&format!("http://{}/", s.addr), &[]);
    for expected in [
        "data-env=\"staging\"",
        "data-env=\"production\"",
        "data-env=\"review\"",
        "<title>pgrollout dashboard</title>",
    ] {
        assert!(
            dom.contains(expected),
            "the overview lacks {expected}: {dom}"
        );
    }
    let page = chromium_dom(&format!("http://{}/environments/staging", s.addr), &[]);
    assert!(
        page.contains("&lt;img src=x onerror=document.title='pwned'&gt;"),
        "the name is shown as text: {page}"
    );
    assert!(
        !page.contains("<img"),
        "an element was made from the name: {page}"
    );
    let m = chromium_dom(
        &format!("http://{}/environments/staging/migrations/2", s.addr),
        &[],
    );
    assert!(
        m.contains("&lt;img src=x onerror=") && !m.contains("<img"),
        "{m}"
    );
    assert!(
        page.contains("<title>pgrollout: staging</title>"),
        "the onerror ran: {page}"
    );
}

#[test]
fn sigterm_lets_a_running_migration_end_cleanly_and_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1_a.sql"), "CREATE TABLE a (id int);\n").unwrap();
    std::fs::write(
        dir.path().join("2_slow.sql"),
        "SELECT pg_sleep(30);\nCREATE TABLE b (id int);\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("3_c.sql"), "CREATE TABLE c (id int);\n").unwrap();
    let e = envs();
    let s = start(dir.path(), &urls(&e), Some(TOKEN), &[]);
    let r = s.post("/api/v1/environments/staging/apply", "{}");
    assert_eq!(r.status, 202, "{r:?}");
    let url = e.staging.url.clone();
    wait_until("the slow migration runs", Duration::from_secs(30), || {
        scalar(&url, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND state = 'active' AND pid <> pg_backend_pid()") != "0"
    });
    s.running.signal(libc::SIGTERM);
    let run = s.running.wait();
    assert!(run.stderr.contains("stopping"), "{run}");
    // The migration in progress was cancelled and rolled back whole; the next never started.
    assert_eq!(
        scalar(
            &url,
            "SELECT count(*) FROM pgrollout.schema_migrations WHERE status = 'completed'"
        ),
        "1",
        "{run}"
    );
    assert_eq!(
        scalar(
            &url,
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('b', 'c')"
        ),
        "0",
        "{run}"
    );
    assert_eq!(scalar(&url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"), "0", "{run}");
}

#[test]
fn the_dashboard_signs_in_by_form_and_its_buttons_need_the_form_token() {
    let e = envs();
    let s = start(&sample_dir(), &urls(&e), Some(TOKEN), &[]);
    let form = |body: &str| {
        let mut st = TcpStream::connect(&s.addr).unwrap();
        write!(
            st,
            "POST /login HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        st.read_to_string(&mut out).unwrap();
        out
    };
    assert!(form("token=wrongwrongwrongwrong").starts_with("HTTP/1.0 401"));
    let ok = form(&format!("token={SECRET}"));
    let cookie = ok
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap_or_else(|| panic!("no cookie: {ok}"));
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_string();
    let page = request(
        &s.addr,
        "GET",
        "/environments/staging",
        &[("Cookie", &cookie)],
        "",
    );
    let token = page
        .body
        .split("name=\"form_token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no form token: {}", page.body))
        .to_string();
    let post = |body: &str| {
        request(
            &s.addr,
            "POST",
            "/environments/staging/actions",
            &[
                ("Cookie", &cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body,
        )
    };
    let forged = post("action=apply&form_token=0000");
    assert_eq!(forged.status, 403, "{forged:?}");
    assert!(!tracked(&e.staging.url), "a forged form ran nothing");
    let r = post(&format!("action=apply&form_token={token}"));
    assert_eq!(r.status, 303, "{r:?}");
    let location = r
        .head
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap_or_else(|| panic!("{r:?}"));
    let id = location.split("run=").nth(1).unwrap().trim().to_string();
    assert_eq!(s.finished(&id)["status"], "succeeded");
    assert_eq!(
        scalar(
            &e.staging.url,
            "SELECT DISTINCT actor FROM pgrollout.migration_history"
        ),
        "alice"
    );
    let watch = request(&s.addr, "GET", location.trim(), &[("Cookie", &cookie)], "");
    assert!(
        watch.body.contains("/assets/live.js")
            && watch.body.contains(&format!("/api/v1/runs/{id}/events")),
        "{}",
        watch.body
    );
}

/// Headless Chromium driven over the DevTools protocol on a pipe
/// (`--remote-debugging-pipe`: JSON messages, each ended by a NUL byte, in on fd 3 and
/// out on fd 4), so a test can sign in, press a button and watch the DOM change.
struct Browser {
    child: std::process::Child,
    to: std::fs::File,
    from: std::io::BufReader<std::fs::File>,
    next: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        use std::os::fd::FromRawFd;
        use std::os::unix::process::CommandExt;
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} not found: apt-get install chromium"
        );
        let pipe = || {
            let mut fds = [0; 2];
            // SAFETY: pipe2(2) fills two descriptors this process then owns; close-on-exec
            // keeps them out of every other child (dup2 below clears it on fds 3 and 4).
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
            (fds[0], fds[1])
        };
        let ((in_read, in_write), (out_read, out_write)) = (pipe(), pipe());
        let profile = tempfile::tempdir().unwrap();
        let mut cmd = crate::common::headless_chromium(profile.path());
        cmd.arg("--remote-debugging-pipe")
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: only an async-signal-safe call (dup2) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(in_read, 3) < 0 || libc::dup2(out_write, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        // SAFETY: the parent's ends, owned from here on; the child's ends are closed.
        let (to, from) = unsafe {
            libc::close(in_read);
            libc::close(out_write);
            (
                std::fs::File::from_raw_fd(in_write),
                std::fs::File::from_raw_fd(out_read),
            )
        };
        let mut b = Browser {
            child,
            to,
            from: std::io::BufReader::new(from),
            next: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = b.call(
            "Target.createTarget",
            serde_json::json!({"url": "about:blank"}),
        );
        let attached = b.call(
            "Target.attachToTarget",
            serde_json::json!({"targetId": target["targetId"], "flatten": true}),
        );
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        b
    }

    /// One command and its result (events in between are skipped).
    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        use std::io::BufRead;
        self.next += 1;
        let mut msg = serde_json::json!({"id": self.next, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = serde_json::json!(self.session);
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        loop {
            let mut buf = Vec::new();
            let n = self.from.read_until(0, &mut buf).unwrap();
            assert!(n > 0, "Chromium closed the DevTools pipe");
            buf.pop();
            let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            if v["id"] == self.next {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&mut self, expression: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": expression, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    fn open(&mut self, url: &str) {
        self.call("Page.navigate", serde_json::json!({"url": url}));
        self.wait_for(
            &format!("{url} loaded"),
            &format!(
                "location.href === {} && document.readyState === 'complete'",
                serde_json::json!(url)
            ),
        );
    }

    #[track_caller]
    fn wait_for(&mut self, what: &str, expression: &str) {
        let mut ok = false;
        wait_until(what, Duration::from_secs(60), || {
            ok = self.eval(expression) == serde_json::json!(true);
            ok
        });
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_apply_started_from_the_page_shows_its_migrations_appearing_live() {
    let dir = crate::common::migrations_dir(&[
        ("1_create_a.sql", "CREATE TABLE a (id int);\n"),
        // Waits for an advisory lock the test holds: the run is caught half-way.
        (
            "2_gate.sql",
            "SELECT pg_advisory_xact_lock(4242);\nCREATE TABLE b (id int);\n",
        ),
        ("3_create_c.sql", "CREATE TABLE c (id int);\n"),
    ]);
    let e = envs();
    let mut gate = crate::common::connect(&e.staging.url).unwrap();
    gate.execute("SELECT pg_advisory_lock(4242)", &[]).unwrap();
    let file = pipeline(dir.path()).replace(
        "environments:",
        "settings: { lock_timeout: 2min }\nenvironments:",
    );
    let server = start_with(&file, &urls(&e), Some(TOKEN), &[]);
    let base = format!("http://{}", server.addr);

    let mut b = Browser::start();
    b.open(&format!("{base}/login"));
    b.eval(&format!(
        "document.querySelector('input[name=token]').value = '{SECRET}'; document.querySelector('form').submit(); true"
    ));
    b.wait_for(
        "signed in",
        &format!("location.href === '{base}/' && document.readyState === 'complete'"),
    );
    assert_eq!(b.eval("document.querySelectorAll('[data-env]').length"), 3);
    b.open(&format!("{base}/environments/staging"));
    b.eval("document.querySelector('select[name=action]').value = 'apply'; document.getElementById('run').click(); true");
    // The first migration shows up while the run is still going.
    b.wait_for(
        "migration 1 appears as applied while the run waits",
        "!!document.querySelector('#live li[data-kind=section_finished][data-version=\"1\"]')",
    );
    assert_eq!(
        b.eval("document.getElementById('live').getAttribute('data-state')"),
        "running"
    );
    assert_eq!(
        b.eval(
            "!!document.querySelector('#live li[data-kind=section_finished][data-version=\"3\"]')"
        ),
        false
    );
    gate.execute("SELECT pg_advisory_unlock(4242)", &[])
        .unwrap();
    b.wait_for(
        "the run succeeds",
        "document.getElementById('live').getAttribute('data-state') === 'succeeded'",
    );
    let finished = b.eval(
        "Array.from(document.querySelectorAll('#live li[data-kind=section_finished]')).map(li => li.getAttribute('data-version')).join(',')",
    );
    assert_eq!(finished, "1,2,3");
    assert_eq!(
        scalar(
            &e.staging.url,
            "SELECT string_agg(DISTINCT actor, ',') FROM pgrollout.migration_history"
        ),
        "alice"
    );
}

#[test]
fn pending_migrations_lint_findings_are_listed() {
    let dir = crate::common::migrations_dir(&[
        ("1_create_t.sql", "CREATE TABLE t (id int);\n"),
        (
            "2_index.sql",
            "-- the index\nCREATE INDEX t_id ON t (id);\n",
        ),
    ]);
    let e = envs();
    let s = start(dir.path(), &urls(&e), Some(TOKEN), &[]);
    let v = s.get("/api/v1/environments/staging").json();
    let lint = v["lint"].as_array().unwrap_or_else(|| panic!("{v}"));
    let f = lint
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("2_index.sql"))
        .unwrap_or_else(|| panic!("no finding on 2_index.sql: {lint:?}"));
    assert_eq!(f["line"], 2, "{f}");
    let rule = f["rule"].as_str().unwrap();
    let page = s.get("/environments/staging");
    assert!(
        page.body.contains("id=\"lint\"") && page.body.contains(rule),
        "{}",
        page.body
    );
}
