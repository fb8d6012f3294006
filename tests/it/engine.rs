//! The core engine, end to end: the real binary against a real PostgreSQL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{
    self, exec, fresh_db, query_strings, sample_dir, wait_until, Pgrollout, Run, Stream,
};

/// A migrations directory of its own.
struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().expect("temp dir"),
        }
    }
    fn path(&self) -> &Path {
        self.tmp.path()
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).expect("write migration");
        p
    }
    fn write_bytes(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path().join(name), bytes).expect("write migration");
    }
}

/// The binary on `dir`'s migrations, connected to `url` when one is given.
fn cmd(dir: &Path, url: Option<&str>) -> Pgrollout {
    let p = Pgrollout::new().migrations(dir);
    match url {
        Some(u) => p.database_url(u),
        None => p,
    }
}

fn run(dir: &Path, url: Option<&str>, args: &[&str]) -> Run {
    cmd(dir, url).args(args).run()
}

fn scalar(url: &str, sql: &str) -> String {
    query_strings(url, sql)[0][0].clone().unwrap_or_default()
}

#[test]
fn sample_applies_once_then_is_a_no_op() {
    let db = fresh_db();
    let first = run(&sample_dir(), Some(&db.url), &["apply"]);
    assert_eq!(first.code, 0, "{}", first.all());
    assert!(
        first.stdout.contains("11 migration(s) applied"),
        "{}",
        first.stdout
    );
    assert_eq!(
        scalar(
            &db.url,
            "SELECT count(*) FROM pgrollout.schema_migrations WHERE status = 'completed'"
        ),
        "11"
    );
    assert_eq!(scalar(&db.url, "SELECT count(*) FROM countries"), "6");
    assert_eq!(
        scalar(
            &db.url,
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_user_id_idx'::regclass"
        ),
        "t"
    );

    let second = run(&sample_dir(), Some(&db.url), &["apply"]);
    assert_eq!(second.code, 0, "{}", second.all());
    assert!(
        second.stdout.contains("nothing to apply"),
        "{}",
        second.stdout
    );
    // Nothing more in the audit log: 10 transactional rows + started/completed for the CONCURRENTLY one.
    assert_eq!(
        scalar(&db.url, "SELECT count(*) FROM pgrollout.migration_history"),
        "12"
    );

    let status = run(
        &sample_dir(),
        Some(&db.url),
        &["status", "--format", "json"],
    );
    assert_eq!(status.code, 0, "{}", status.all());
    let v: serde_json::Value = serde_json::from_str(&status.stdout).expect("status json");
    assert_eq!(v["format_version"], 1);
    let states: Vec<&str> = v["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["applied"; 11]);
}

/// Many runners at once: every migration applied exactly once, every runner succeeds.
///
/// The overlap is made, not hoped for: migration 1 reads a table the test holds locked,
/// so the first runner to take the migration lock stays inside it until the test has
/// seen, in `pg_locks` and `pg_stat_activity`, that runner waiting there and every other
/// runner waiting for the migration lock. Only then is the table released.
fn concurrent_apply(n: usize) {
    let db = fresh_db();
    exec(&db.url, "CREATE TABLE gate (id int)");
    let dir = Dir::new();
    dir.write(
        "001_t1.sql",
        "CREATE TABLE t1 (id int);\nSELECT count(*) FROM gate;\n",
    );
    for i in 2..=6 {
        dir.write(
            &format!("{i:03}_t{i}.sql"),
            &format!("CREATE TABLE t{i} (id int);\n"),
        );
    }
    dir.write("007_idx.sql", "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t1_id ON t1 (id);\n");
    let mut gate = common::connect(&db.url).expect("connect");
    let mut held = gate.transaction().unwrap();
    held.batch_execute("LOCK TABLE gate IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    // A lock_timeout longer than the test's hold, so the wait on `gate` is not retried.
    let runners: Vec<_> = (0..n)
        .map(|_| {
            cmd(dir.path(), Some(&db.url))
                .args(["--lock-timeout", "120s", "apply"])
                .spawn()
        })
        .collect();
    wait_until(
        "one runner is inside migration 1, waiting for the test's lock on `gate`",
        Duration::from_secs(60),
        || common::someone_waits_for_lock(&db.url, "relation"),
    );
    wait_until(
        &format!("the other {} runner(s) wait for the migration lock", n - 1),
        Duration::from_secs(60),
        || common::runners_waiting_for_the_lock(&db.url) == n - 1,
    );
    held.rollback().unwrap();
    for runner in runners {
        runner.wait().ok();
    }
    assert_eq!(
        scalar(
            &db.url,
            "SELECT count(*) FROM pgrollout.schema_migrations WHERE status = 'completed'"
        ),
        "7"
    );
    let per_version = query_strings(
        &db.url,
        "SELECT version_text, count(*) FROM pgrollout.migration_history WHERE action = 'apply' AND status = 'completed' GROUP BY 1 ORDER BY 1",
    );
    assert_eq!(per_version.len(), 7);
    for row in per_version {
        assert_eq!(
            row[1].as_deref(),
            Some("1"),
            "version {:?} applied more than once",
            row[0]
        );
    }
}

#[test]
fn two_concurrent_runners_apply_each_migration_once() {
    concurrent_apply(2);
}

#[test]
fn eight_concurrent_runners_apply_each_migration_once() {
    concurrent_apply(8);
}

#[test]
fn server_crash_during_non_transactional_migration_then_repair() {
    // A cluster of its own: this test kills the server.
    let cluster = common::own_cluster();
    let url = cluster.url("postgres");
    let dir = Dir::new();
    dir.write(
        "1_t.sql",
        "CREATE TABLE t (id int);\nINSERT INTO t SELECT generate_series(1, 1000);\n",
    );
    dir.write(
        "2_slow.sql",
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id);\nSELECT pg_sleep(30);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_id2 ON t (id);\n",
    );
    let child = cmd(dir.path(), Some(&url)).arg("apply").spawn();
    // Wait until statement 2 (the sleep) is running, then crash the server.
    let statement_2_runs = || {
        common::connect(&url)
            .and_then(|mut c| {
                c.query_one(
                    "SELECT (SELECT statement_index FROM pgrollout.schema_migrations WHERE version = 2) = 1 \
                     AND EXISTS (SELECT FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%')",
                    &[],
                )
            })
            .is_ok_and(|row| row.get::<_, Option<bool>>(0) == Some(true))
    };
    wait_until(
        "statement 2 (the sleep) of migration 2 runs",
        Duration::from_secs(60),
        statement_2_runs,
    );
    cluster.kill().expect("kill");
    let r = child.wait();
    assert_eq!(r.code, 1, "the runner must fail when the server dies:\n{r}");
    // The message names the migration, the statement, the state it left and the step.
    for needed in [
        "migration 2 slow failed at statement 2",
        "still recorded as running at statement 2",
        "pgrollout repair",
    ] {
        assert!(r.all().contains(needed), "{needed:?} missing:\n{r}");
    }
    cluster.restart().expect("restart");

    assert_eq!(scalar(&url, "SELECT status || ':' || statement_index FROM pgrollout.schema_migrations WHERE version = 2"), "running:1");
    let refused = run(dir.path(), Some(&url), &["apply"]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused
            .stderr
            .contains("was interrupted at statement 2 (line 3)"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("pgrollout repair"),
        "{}",
        refused.stderr
    );

    // The first statement did run; the fix is to let the migration run again.
    dir.write(
        "2_slow.sql",
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id);\nSELECT pg_sleep(30);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_id2 ON t (id);\n",
    );
    let repair = run(dir.path(), Some(&url), &["repair"]);
    assert_eq!(repair.code, 0, "{}", repair.all());
    assert!(
        repair.stdout.contains("cleared running migration 2 slow"),
        "{}",
        repair.stdout
    );
    // Rerun, without the long sleep: an edit of a cleared migration is its new content.
    dir.write(
        "2_slow.sql",
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id);\nSELECT pg_sleep(0);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_id2 ON t (id);\n",
    );
    let again = run(dir.path(), Some(&url), &["apply"]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(
        scalar(
            &url,
            "SELECT status FROM pgrollout.schema_migrations WHERE version = 2"
        ),
        "completed"
    );
    assert_eq!(
        scalar(
            &url,
            "SELECT count(*) FROM pg_indexes WHERE indexname IN ('t_id', 't_id2')"
        ),
        "2"
    );
    let story = query_strings(&url, "SELECT action || ':' || status FROM pgrollout.migration_history WHERE version = 2 ORDER BY id");
    let story: Vec<String> = story.into_iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(
        story,
        vec![
            "apply:started",
            "repair:completed",
            "apply:started",
            "apply:completed"
        ]
    );
}

#[test]
fn failed_concurrent_index_build_is_recorded_and_blocks_until_repair() {
    let db = fresh_db();
    let dir = Dir::new();
    dir.write(
        "1_t.sql",
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (1);\n",
    );
    dir.write(
        "2_idx.sql",
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_plain ON t (id);\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_unique ON t (id);\n",
    );
    let r = run(dir.path(), Some(&db.url), &["apply"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("2_idx.sql:3:1"), "{}", r.stderr);
    assert!(r.stderr.contains("SQLSTATE 23505"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("DROP INDEX CONCURRENTLY IF EXISTS t_unique"),
        "{}",
        r.stderr
    );
    assert_eq!(
        scalar(&db.url, "SELECT status || ':' || statement_index FROM pgrollout.schema_migrations WHERE version = 2"),
        "failed:1"
    );

    let blocked = run(dir.path(), Some(&db.url), &["apply"]);
    assert_eq!(blocked.code, 1);
    assert!(
        blocked.stderr.contains("failed at statement 2 (line 3)"),
        "{}",
        blocked.stderr
    );
    // repair refuses while the INVALID index is there: a rerun would keep it.
    let refused = run(dir.path(), Some(&db.url), &["repair"]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused
            .stderr
            .contains("DROP INDEX CONCURRENTLY IF EXISTS t_unique"),
        "{}",
        refused.stderr
    );

    exec(
        &db.url,
        "DROP INDEX t_unique; DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t)",
    );
    let repaired = run(dir.path(), Some(&db.url), &["repair"]);
    assert_eq!(repaired.code, 0, "{}", repaired.all());
    let applied = run(dir.path(), Some(&db.url), &["apply"]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_eq!(
        scalar(
            &db.url,
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_unique'::regclass"
        ),
        "t"
    );
}

#[test]
fn transactional_failure_rolls_back_and_reports_line_and_column() {
    let db = fresh_db();
    let dir = Dir::new();
    dir.write(
        "1_bad.sql",
        "-- a comment\nCREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\n\nSELECT id,\n       nosuchcol\nFROM b;\n",
    );
    let r = run(dir.path(), Some(&db.url), &["apply"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("1_bad.sql:6:8"),
        "position must map to line 6, column 8:\n{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("column \"nosuchcol\" does not exist (SQLSTATE 42703)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("rolled back"), "{}", r.stderr);
    assert_eq!(
        scalar(
            &db.url,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'b'"
        ),
        "0"
    );
    assert_eq!(
        scalar(&db.url, "SELECT count(*) FROM pgrollout.schema_migrations"),
        "0"
    );
    assert_eq!(
        scalar(
            &db.url,
            "SELECT status FROM pgrollout.migration_history WHERE version = 1"
        ),
        "failed"
    );
}

#[test]
fn syntax_error_on_line_8_is_reported_without_a_database() {
    let dir = Dir::new();
    dir.write("1_ok.sql", "CREATE TABLE a (id int);\n");
    dir.write("2_bad.sql", "-- header\n\nCREATE TABLE b (\n  id int,\n  x text\n);\n\nSELECT * FROM b WHERE x = = 1;\n");
    let r = run(dir.path(), None, &["validate"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("2_bad.sql:8:27: error: syntax error"),
        "{}",
        r.stderr
    );
}

#[test]
fn changed_file_after_apply_is_refused_but_crlf_is_not_a_change() {
    let db = fresh_db();
    let dir = Dir::new();
    dir.write(
        "1_a.sql",
        "CREATE TABLE a (id int);\nCREATE TABLE a2 (id int);\n",
    );
    assert_eq!(run(dir.path(), Some(&db.url), &["apply"]).code, 0);

    // The same file checked out with CRLF line endings (and a BOM): not modified.
    dir.write_bytes(
        "1_a.sql",
        b"\xef\xbb\xbfCREATE TABLE a (id int);\r\nCREATE TABLE a2 (id int);\r\n",
    );
    let v = run(dir.path(), Some(&db.url), &["validate"]);
    assert_eq!(v.code, 0, "CRLF must not look modified:\n{}", v.all());

    let path = dir.write(
        "1_a.sql",
        "CREATE TABLE a (id bigint);\nCREATE TABLE a2 (id int);\n",
    );
    dir.write("2_b.sql", "CREATE TABLE b (id int);\n");
    for args in [&["validate"][..], &["apply"][..]] {
        let r = run(dir.path(), Some(&db.url), args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.all());
        assert!(
            r.stderr.contains(&path.display().to_string()),
            "{args:?} must name the file: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("changed after it was applied"),
            "{}",
            r.stderr
        );
    }
    // Nothing after the modified file was applied.
    assert_eq!(
        scalar(
            &db.url,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'b'"
        ),
        "0"
    );

    let accepted = run(
        dir.path(),
        Some(&db.url),
        &[
            "repair",
            "--accept",
            "1",
            "--reason",
            "type widened by hand in prod",
        ],
    );
    assert_eq!(accepted.code, 0, "{}", accepted.all());
    assert_eq!(run(dir.path(), Some(&db.url), &["apply"]).code, 0);
    let reason = scalar(
        &db.url,
        "SELECT reason FROM pgrollout.migration_history WHERE action = 'accept'",
    );
    assert!(
        reason.starts_with("type widened by hand in prod"),
        "{reason}"
    );
}

#[test]
fn file_forms_psql_accepts_are_applied() {
    let db = fresh_db();
    let dir = Dir::new();
    dir.write(
        "1_bodies.sql",
        "/* a /* nested */ comment; with a semicolon */\n\
         CREATE TABLE notes (id int, body text);\n\
         INSERT INTO notes VALUES (1, 'a; b'), (2, 'it''s; fine'), (3, E'tab\\there;');\n\
         CREATE FUNCTION add_note(t text) RETURNS void LANGUAGE plpgsql AS $body$\n\
         BEGIN\n  INSERT INTO notes VALUES ((SELECT count(*) + 1 FROM notes), t); -- ; in a comment\n  RAISE NOTICE 'added; %', $q$quoted $$ body$q$;\nEND;\n$body$;\n\
         SELECT add_note('via function')",
    );
    dir.write(
        "2_copy.sql",
        "CREATE TABLE codes (code text, label text);\nCOPY codes (code, label) FROM stdin;\nA\tfirst; with semicolon\nB\tsecond 'quoted'\nC\t\\N\n\\.\nUPDATE codes SET label = 'none' WHERE label IS NULL;\n",
    );
    dir.write(
        "3_wrapped.sql",
        "BEGIN;\nCREATE TABLE w1 (id int);\nCREATE TABLE w2 (id int);\nCOMMIT;\n",
    );
    dir.write("4_empty.sql", "");
    let r = run(dir.path(), Some(&db.url), &["apply"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        scalar(
            &db.url,
            "SELECT string_agg(body, '|' ORDER BY id) FROM notes"
        ),
        "a; b|it's; fine|tab\there;|via function"
    );
    assert_eq!(
        scalar(
            &db.url,
            "SELECT string_agg(code || '=' || label, ',' ORDER BY code) FROM codes"
        ),
        "A=first; with semicolon,B=second 'quoted',C=none"
    );
    assert_eq!(
        scalar(
            &db.url,
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('w1', 'w2')"
        ),
        "2"
    );
    assert_eq!(
        scalar(&db.url, "SELECT count(*) FROM pgrollout.schema_migrations"),
        "4"
    );
    assert!(
        r.stderr.contains("notice: added; quoted $$ body"),
        "the NOTICE is shown: {}",
        r.stderr
    );
    assert!(r.stderr.contains("3_wrapped.sql:1:1: note: the file's own BEGIN (line 1) … COMMIT (line 4) wrapper is recognised"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("4_empty.sql:1:1: warning: the up section has no SQL statement"),
        "{}",
        r.stderr
    );
}

#[test]
fn wrapper_with_a_failing_statement_commits_nothing() {
    let db = fresh_db();
    let dir = Dir::new();
    dir.write(
        "1_w.sql",
        "BEGIN;\nCREATE TABLE w1 (id int);\nINSERT INTO w1 VALUES ('x');\nCOMMIT;\n",
    );
    let r = run(dir.path(), Some(&db.url), &["apply"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("1_w.sql:3:"), "{}", r.stderr);
    assert_eq!(
        scalar(
            &db.url,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'w1'"
        ),
        "0"
    );
}

#[test]
fn commit_in_the_middle_is_refused_before_anything_runs() {
    let db = fresh_db();
    let dir = Dir::new();
    dir.write(
        "1_half.sql",
        "CREATE TABLE h1 (id int);\nCOMMIT;\nCREATE TABLE h2 (id int);\n",
    );
    let r = run(dir.path(), Some(&db.url), &["apply"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("1_half.sql:2:1"), "{}", r.stderr);
    assert!(r.stderr.contains("half-way"), "{}", r.stderr);
    assert_eq!(
        scalar(
            &db.url,
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'h_'"
        ),
        "0"
    );
}

#[test]
fn meta_commands_and_non_transactional_statements_are_reported_at_their_line() {
    let dir = Dir::new();
    dir.write(
        "1_meta.sql",
        "CREATE TABLE m (id int);\n\\set ON_ERROR_STOP on\nSELECT 1;\n",
    );
    dir.write(
        "2_cic.sql",
        "CREATE TABLE c (id int);\n\nCREATE INDEX CONCURRENTLY c_id ON c (id);\n",
    );
    let r = run(dir.path(), None, &["validate"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr
            .contains("1_meta.sql:2:1: error: psql meta-command `\\set ON_ERROR_STOP on`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "2_cic.sql:3:1: error: CREATE INDEX CONCURRENTLY cannot run inside a transaction block"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("transaction:false"), "{}", r.stderr);

    // And apply sends nothing.
    let db = fresh_db();
    let a = run(dir.path(), Some(&db.url), &["apply"]);
    assert_eq!(a.code, 1, "{}", a.all());
    assert_eq!(
        scalar(
            &db.url,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'm'"
        ),
        "0"
    );
}

#[test]
fn bad_files_are_errors_never_skipped() {
    let dir = Dir::new();
    dir.write("1_a.sql", "SELECT 1;\n");
    dir.write("01_b.sql", "SELECT 2;\n");
    dir.write("create_users.sql", "SELECT 3;\n");
    dir.write_bytes("2_latin1.sql", b"SELECT 1;\nSELECT 'caf\xe9';\n");
    dir.write("README.md", "not a migration");
    let r = run(dir.path(), None, &["validate"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("both have version 1"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("create_users.sql: file name is not a migration name"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("2_latin1.sql:2:12: not valid UTF-8"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("README"), "{}", r.stderr);
}

#[test]
fn last_statement_without_semicolon_runs() {
    let db = fresh_db();
    let dir = Dir::new();
    dir.write(
        "1_a.sql",
        "CREATE TABLE a (id int);\nINSERT INTO a VALUES (42)",
    );
    let r = run(dir.path(), Some(&db.url), &["apply"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(scalar(&db.url, "SELECT id FROM a"), "42");
}

#[test]
fn dry_run_writes_nothing() {
    let db = fresh_db();
    let r = run(&sample_dir(), Some(&db.url), &["apply", "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("rehearsed  20251118100000"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("skipped    20251105120000"),
        "{}",
        r.stdout
    );
    assert_eq!(
        scalar(
            &db.url,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgrollout'"
        ),
        "0"
    );
    assert_eq!(
        scalar(
            &db.url,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0"
    );

    let dir = Dir::new();
    dir.write(
        "1_bad.sql",
        "CREATE TABLE x (id int);\nINSERT INTO x VALUES ('not a number');\n",
    );
    let bad = run(dir.path(), Some(&db.url), &["apply", "--dry-run"]);
    assert_eq!(bad.code, 1, "{}", bad.all());
    assert!(bad.stderr.contains("1_bad.sql:2:"), "{}", bad.stderr);
}

#[test]
fn lock_wait_timeout_names_the_holder() {
    let db = fresh_db();
    let key = pgrollout::db::tracking::Tracking::new("pgrollout").lock_key();
    let mut holder = common::connect(&db.url).expect("connect");
    holder
        .batch_execute("SET application_name = 'the-other-runner'")
        .unwrap();
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    assert!(holder
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .unwrap()
        .get::<_, bool>(0));

    let r = run(
        &sample_dir(),
        Some(&db.url),
        &["--lock-wait", "1s", "apply"],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    // It gave up once its own 1s lock_wait was spent (not the 10 min default).
    assert!(r.stderr.contains("waited 1s (lock_wait)"), "{r}");
    assert!(r.stderr.contains(&format!("pid {pid}")), "{}", r.stderr);
    assert!(r.stderr.contains("the-other-runner"), "{}", r.stderr);
    assert!(
        r.stderr.contains("waiting for the migration lock"),
        "{}",
        r.stderr
    );

    // Released: the same command now goes through.
    holder
        .query_one("SELECT pg_advisory_unlock($1)", &[&key])
        .unwrap();
    assert_eq!(
        run(
            &sample_dir(),
            Some(&db.url),
            &["--lock-wait", "1s", "apply"]
        )
        .code,
        0
    );
}

#[test]
fn lock_timeout_is_retried_with_backoff() {
    let db = fresh_db();
    exec(&db.url, "CREATE TABLE busy (id int)");
    let dir = Dir::new();
    dir.write("1_alter.sql", "ALTER TABLE busy ADD COLUMN note text;\n");
    // Another session holds an ACCESS EXCLUSIVE lock until the runner has retried once.
    let mut c = common::connect(&db.url).expect("connect");
    let mut tx = c.transaction().unwrap();
    tx.batch_execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let mut child = cmd(dir.path(), Some(&db.url))
        .args(["--lock-timeout", "100ms", "--lock-retries", "10", "apply"])
        .spawn();
    child.wait_for_line(Stream::Stderr, "retry 1/10", |l| l.contains("retry 1/10"));
    tx.commit().unwrap();
    let r = child.wait();
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("lock timeout"), "{}", r.stderr);
    assert!(r.stderr.contains("retry 1/10"), "{}", r.stderr);
    assert_eq!(scalar(&db.url, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'busy' AND column_name = 'note'"), "1");

    // With no retries left it fails, rolled back, saying so.
    exec(&db.url, "CREATE TABLE busy2 (id int)");
    dir.write("2_alter.sql", "ALTER TABLE busy2 ADD COLUMN note text;\n");
    let mut c = common::connect(&db.url).unwrap();
    let mut tx = c.transaction().unwrap();
    tx.batch_execute("LOCK TABLE busy2 IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let r = run(
        dir.path(),
        Some(&db.url),
        &["--lock-timeout", "50ms", "--lock-retries", "1", "apply"],
    );
    tx.rollback().unwrap();
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("SQLSTATE 55P03"), "{}", r.stderr);
    assert!(
        r.stderr.contains("gave up after 2 attempts"),
        "{}",
        r.stderr
    );
}

#[test]
fn out_of_order_missing_and_target() {
    let db = fresh_db();
    let dir = Dir::new();
    dir.write("1_a.sql", "CREATE TABLE a (id int);\n");
    dir.write("3_c.sql", "CREATE TABLE c (id int);\n");
    assert_eq!(run(dir.path(), Some(&db.url), &["apply"]).code, 0);

    dir.write("2_b.sql", "CREATE TABLE b (id int);\n");
    let r = run(dir.path(), Some(&db.url), &["apply"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("older than the newest applied migration"),
        "{}",
        r.stderr
    );
    assert_eq!(
        run(
            dir.path(),
            Some(&db.url),
            &["apply", "--allow-out-of-order"]
        )
        .code,
        0
    );

    std::fs::remove_file(dir.path().join("1_a.sql")).unwrap();
    let r = run(dir.path(), Some(&db.url), &["validate"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr
            .contains("migration 1 a is applied but its file is not in"),
        "{}",
        r.stderr
    );
    assert_eq!(
        run(dir.path(), Some(&db.url), &["validate", "--allow-missing"]).code,
        0
    );

    dir.write("4_d.sql", "CREATE TABLE d (id int);\n");
    dir.write("5_e.sql", "CREATE TABLE e (id int);\n");
    let r = run(
        dir.path(),
        Some(&db.url),
        &["apply", "--target", "4", "--allow-missing"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("1 still pending: 5"), "{}", r.stdout);
    assert_eq!(
        scalar(
            &db.url,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'e'"
        ),
        "0"
    );
}

#[test]
fn baseline_adopts_an_existing_database() {
    let db = fresh_db();
    exec(&db.url, "CREATE TABLE a (id int); CREATE TABLE b (id int);");
    let dir = Dir::new();
    dir.write("1_a.sql", "CREATE TABLE a (id int);\n");
    dir.write("2_b.sql", "CREATE TABLE b (id int);\n");
    dir.write("3_c.sql", "CREATE TABLE c (id int);\n");
    let r = run(dir.path(), Some(&db.url), &["baseline", "--version", "2"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let r = run(dir.path(), Some(&db.url), &["apply"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("applied  3  c"), "{}", r.stdout);
    assert!(!r.stdout.contains("applied  1"), "{}", r.stdout);
    let again = run(dir.path(), Some(&db.url), &["baseline", "--version", "2"]);
    assert_eq!(
        again.code,
        1,
        "baseline twice must be refused: {}",
        again.all()
    );
}

#[test]
fn new_writes_a_timestamped_file_with_up_and_down() {
    let dir = Dir::new();
    let r = run(
        &dir.path().join("migrations"),
        None,
        &["new", "Add users email"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let path = PathBuf::from(r.stdout.trim());
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.ends_with("_add_users_email.sql"), "{name}");
    assert_eq!(name.split('_').next().unwrap().len(), 14);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("-- migrate:up") && text.contains("-- migrate:down"),
        "{text}"
    );
    let v = run(&dir.path().join("migrations"), None, &["validate"]);
    assert_eq!(v.code, 0, "{}", v.all());
}

#[test]
fn usage_errors_exit_2() {
    let dir = Dir::new();
    let r = run(dir.path(), None, &["apply"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("needs a database"), "{}", r.stderr);
    let r = run(dir.path(), None, &["apply", "--no-such-flag"]);
    assert_eq!(r.code, 2);
    let r = run(&dir.path().join("nope"), None, &["validate"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--migrations"), "{}", r.stderr);
}

#[test]
fn ephemeral_runs_the_sample_and_cleans_up() {
    let r = Pgrollout::new()
        .cwd(env!("CARGO_MANIFEST_DIR"))
        .args(["--ephemeral", "apply"])
        .run();
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("11 migration(s) applied"), "{}", r.stdout);
}

#[test]
fn ephemeral_cluster_is_removed_on_ctrl_c() {
    let dir = Dir::new();
    dir.write("1_slow.sql", "SELECT pg_sleep(60);\n");
    let mut child = cmd(dir.path(), None).args(["--ephemeral", "apply"]).spawn();
    let server = common::ThrowawayServer::announced_by(&mut child);
    assert!(server.data_dir.exists());
    child.wait_for_line(Stream::Stderr, "migration 1 starting", |l| {
        l.contains("→ 1 slow")
    });
    wait_until(
        "the migration's sleep runs on the throwaway server",
        Duration::from_secs(60),
        || server.runs("SELECT pg_sleep(60)"),
    );
    child.signal(libc::SIGINT);
    let r = child.wait();
    assert_eq!(r.code, 130, "{r}");
    assert!(
        !server.data_dir.exists(),
        "{} left behind",
        server.data_dir.display()
    );
}

#[test]
fn server_errors_say_what_the_server_said() {
    // tokio-postgres displays a server error as "db error"; every message must carry the
    // server's own text and SQLSTATE instead.
    let db = fresh_db();
    assert_eq!(run(&sample_dir(), Some(&db.url), &["apply"]).code, 0);
    let role = format!("reader_{}", db.name);
    exec(&db.url, &format!("CREATE ROLE {role} LOGIN"));
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username(&role).unwrap();
    let r = run(&sample_dir(), Some(url.as_str()), &["status"]);
    exec(&db.url, &format!("DROP OWNED BY {role}; DROP ROLE {role}"));
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("reading the tracking schema pgrollout: permission denied for schema pgrollout (SQLSTATE 42501)"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("db error"), "{}", r.stderr);
}
