//! The migration lock under attack: its session cut off by idle timeouts or killed while
//! migrations run, and a second runner (or a `repair`) arriving meanwhile.

use std::path::Path;
use std::time::Duration;

use crate::common::{exec, fresh_db, query_strings, quote_ident, server, wait_until, Pgrollout};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write migration");
}

fn scalar(url: &str, sql: &str) -> String {
    query_strings(url, sql)[0][0].clone().unwrap_or_default()
}

fn cmd(dir: &Path, url: &str) -> Pgrollout {
    Pgrollout::new().migrations(dir).database_url(url)
}

/// Whether a session of `url`'s database runs a query starting with `prefix`.
fn runs(url: &str, prefix: &str) -> bool {
    scalar(
        url,
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND starts_with(query, '{prefix}') AND state = 'active'"
        ),
    ) != "0"
}

/// Ends the session that holds the migration lock (named `pgrollout lock since …`), as
/// an administrator's idle-session reaper would; returns how many it ended.
fn terminate_lock_session(url: &str) -> String {
    scalar(
        url,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name LIKE 'pgrollout lock since %'",
    )
}

/// A database whose sessions are ended after 1 s idle: the lock session, idle while the
/// migrations run, must not be one of them.
#[test]
fn lock_session_outlives_idle_session_timeout_and_a_second_runner_waits_for_it() {
    let db = fresh_db();
    exec(
        server().admin_url(),
        &format!(
            "ALTER DATABASE {} SET idle_session_timeout = '1s'",
            quote_ident(&db.name)
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "1_log.sql", "CREATE TABLE log (n int);\n");
    write(
        dir.path(),
        "2_slow.sql",
        "-- migrate:up transaction:false\nINSERT INTO log VALUES (2);\nSELECT pg_sleep(4);\nINSERT INTO log VALUES (22);\n",
    );
    let a = cmd(dir.path(), &db.url).arg("apply").spawn();
    wait_until(
        "runner A sleeps in migration 2",
        Duration::from_secs(60),
        || runs(&db.url, "SELECT pg_sleep(4)"),
    );
    // Past the idle timeout of A's lock session, which has been idle since 2 started.
    let b = cmd(dir.path(), &db.url).arg("apply").spawn();
    let (a, b) = (a.wait(), b.wait());
    assert_eq!(a.code, 0, "runner A keeps its lock and finishes:\n{a}");
    assert_eq!(
        b.code, 0,
        "runner B waits for the lock, then finds nothing to do:\n{b}"
    );
    assert_eq!(
        scalar(
            &db.url,
            "SELECT string_agg(n::text, ',' ORDER BY n) FROM log"
        ),
        "2,22",
        "migration 2 ran exactly once"
    );
    assert_eq!(
        scalar(
            &db.url,
            "SELECT count(*) FROM pgrollout.migration_history WHERE version = 2 AND status = 'completed'"
        ),
        "1"
    );
}

/// The lock session killed mid-way through a transaction:false migration: the runner
/// stops before its next statement, saying so; `repair` refuses while that runner's
/// statement still runs, and works once it stopped.
#[test]
fn runner_that_lost_its_lock_stops_before_the_next_statement_and_repair_waits_for_it() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "1_log.sql", "CREATE TABLE log (n int);\n");
    write(
        dir.path(),
        "2_slow.sql",
        "-- migrate:up transaction:false\nINSERT INTO log VALUES (2);\nSELECT pg_sleep(3);\nINSERT INTO log VALUES (22);\n",
    );
    let a = cmd(dir.path(), &db.url).arg("apply").spawn();
    wait_until(
        "runner A sleeps in migration 2",
        Duration::from_secs(60),
        || runs(&db.url, "SELECT pg_sleep(3)"),
    );
    let status = cmd(dir.path(), &db.url).arg("status").run();
    assert!(
        status
            .stdout
            .contains("migration 2 slow is recorded as running at statement 2")
            && status
                .stdout
                .contains("it is running now: its runner is connected as server process")
            && status.stdout.contains("SELECT pg_sleep(3)"),
        "status tells a live runner:\n{status}"
    );
    assert_eq!(terminate_lock_session(&db.url), "1");
    let repair = cmd(dir.path(), &db.url)
        .args(["--lock-wait", "30s", "repair"])
        .run();
    assert_eq!(
        repair.code, 3,
        "repair refuses while the runner of the interrupted migration is alive:\n{repair}"
    );
    assert!(
        repair.all().contains("still running"),
        "it says why:\n{repair}"
    );
    let a = a.wait();
    assert_eq!(a.code, 1, "runner A fails:\n{a}");
    let text = a.all();
    for needed in [
        "lost the migration lock",
        "has ended",
        "stopped before statement 3 of 3 of migration 2 slow",
        "pgrollout repair",
    ] {
        assert!(text.contains(needed), "{needed:?} missing:\n{a}");
    }
    assert_eq!(
        scalar(
            &db.url,
            "SELECT string_agg(n::text, ',' ORDER BY n) FROM log"
        ),
        "2",
        "statement 3 never ran"
    );
    assert_eq!(
        scalar(
            &db.url,
            "SELECT status || ' ' || statement_index FROM pgrollout.schema_migrations WHERE version = 2"
        ),
        "running 1"
    );
    let status = cmd(dir.path(), &db.url).arg("status").run();
    assert!(
        status.stdout.contains("it was interrupted: no session of that run is connected, and no runner holds the migration lock")
            && status.stdout.contains("`pgrollout repair`"),
        "status tells an interrupted runner, and what to do:\n{status}"
    );
    cmd(dir.path(), &db.url).arg("repair").run().ok();
}

/// The lock session killed while a transactional migration runs: that migration's
/// transaction had checked the lock when it began, so it commits; the next one's
/// transaction checks it first, finds it gone, and rolls back with nothing applied.
#[test]
fn runner_that_lost_its_lock_applies_no_further_migration() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "1_slow.sql",
        "CREATE TABLE t1 (n int);\nSELECT pg_sleep(2);\n",
    );
    write(dir.path(), "2_next.sql", "CREATE TABLE t2 (n int);\n");
    let a = cmd(dir.path(), &db.url).arg("apply").spawn();
    wait_until(
        "runner A sleeps in migration 1",
        Duration::from_secs(60),
        || runs(&db.url, "SELECT pg_sleep(2)"),
    );
    assert_eq!(terminate_lock_session(&db.url), "1");
    let a = a.wait();
    assert_eq!(a.code, 1, "runner A fails:\n{a}");
    assert!(
        a.all()
            .contains("stopped in migration 2 next: its transaction was rolled back, so nothing of it was applied"),
        "{a}"
    );
    assert_eq!(
        scalar(
            &db.url,
            "SELECT string_agg(version_text, ',' ORDER BY version) FROM pgrollout.schema_migrations"
        ),
        "1"
    );
    assert_eq!(scalar(&db.url, "SELECT to_regclass('t2') IS NULL"), "t");
    assert_eq!(
        scalar(
            &db.url,
            "SELECT count(*) FROM pgrollout.migration_history WHERE version_text = '2'"
        ),
        "0",
        "no history row for the migration that did not apply"
    );
}

/// The check a migration transaction runs inside itself: it passes while the lock session
/// holds the lock and no other migration transaction is open, and fails with its own
/// SQLSTATE otherwise — so a migration whose runner lost the lock cannot commit.
#[test]
fn in_transaction_lock_check_fails_without_the_lock_or_beside_another_transaction() {
    use pgrollout::db::lock::{HeldLock, LOCK_LOST_SQLSTATE};
    let db = fresh_db();
    let (key, commit_key) = (4242_i64, 4243_i64);
    let mut lock = crate::common::connect(&db.url).unwrap();
    let row = lock
        .query_one(
            "SELECT pg_advisory_lock($1)::text, pg_backend_pid(), \
               (SELECT (extract(epoch FROM backend_start) * 1000000)::bigint FROM pg_stat_activity WHERE pid = pg_backend_pid())",
            &[&key],
        )
        .unwrap();
    let held = HeldLock {
        key,
        pid: row.get(1),
        backend_start_us: row.get(2),
    };
    let check = held.check_in_transaction(commit_key);
    let fails_with = |c: &mut postgres::Client| -> Option<String> {
        c.batch_execute("BEGIN").unwrap();
        let r = c.batch_execute(&check);
        c.batch_execute("ROLLBACK").unwrap();
        r.err().map(|e| {
            let d = e.as_db_error().expect("a server error");
            assert_eq!(d.code().code(), LOCK_LOST_SQLSTATE);
            d.message().to_string()
        })
    };
    let mut first = crate::common::connect(&db.url).unwrap();
    let mut second = crate::common::connect(&db.url).unwrap();
    assert_eq!(fails_with(&mut second), None, "the lock is held");
    first.batch_execute("BEGIN").unwrap();
    first.batch_execute(&check).unwrap();
    let beside = fails_with(&mut second).expect("fails beside an open migration transaction");
    assert!(
        beside.contains("another runner's migration transaction"),
        "{beside}"
    );
    first.batch_execute("COMMIT").unwrap();
    assert_eq!(fails_with(&mut second), None, "the other transaction ended");
    drop(lock);
    wait_until("the lock session ended", Duration::from_secs(30), || {
        scalar(
            &db.url,
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = {}",
                held.pid
            ),
        ) == "0"
    });
    let gone = fails_with(&mut second).expect("fails once the lock session ended");
    assert!(gone.contains("is gone"), "{gone}");
}

/// A lock_timeout PostgreSQL would read as "no limit" (0, or under 1 ms), or one over its
/// maximum, is a configuration error (exit 2) found before connecting — from a flag, the
/// environment or the pipeline file alike.
#[test]
fn lock_timeouts_the_server_would_misread_or_refuse_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "1_a.sql", "CREATE TABLE a (n int);\n");
    // Nothing listens on port 1: a run that got as far as connecting would exit 1.
    let nowhere = "postgres://u@127.0.0.1:1/x?connect_timeout=1";
    // Flags, environment, and what the message must say.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 6] = [
        (
            &["--lock-timeout", "0"],
            &[],
            "lock_timeout 0ns is under 1ms",
        ),
        (&["--lock-timeout", "0.5ms"], &[], "reads as no limit"),
        (
            &[],
            &[("PGROLLOUT_LOCK_TIMEOUT", "0s")],
            "lock_timeout 0ns is under 1ms",
        ),
        (
            &["--lock-timeout", "600h"],
            &[],
            "over PostgreSQL's maximum of 2147483647ms",
        ),
        (
            &["--statement-timeout", "0.2ms"],
            &[],
            "statement_timeout 200µs is under 1ms",
        ),
        (
            &["--statement-timeout", "99999999999999999999999999999h"],
            &[],
            "not a valid duration",
        ),
    ];
    for (args, env, needed) in cases {
        let r = cmd(dir.path(), nowhere)
            .args(args.iter().copied())
            .envs(env)
            .arg("apply")
            .run();
        assert_eq!(r.code, 2, "{args:?} {env:?}:\n{r}");
        assert!(r.all().contains(needed), "{needed:?} missing:\n{r}");
        assert!(!r.all().contains("panicked"), "{r}");
    }
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("pgrollout.yml"),
        "settings: { lock_timeout: 0s }\nenvironments:\n  staging:\n    database_url_env: STAGING_DATABASE_URL\n    steps: [apply]\n",
    )
    .unwrap();
    let r = Pgrollout::new()
        .cwd(project.path())
        .migrations(dir.path())
        .database_url(nowhere)
        .arg("apply")
        .run();
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.all().contains("`lock_timeout:` in the pipeline file"),
        "{r}"
    );
}

/// A migration that gives up on lock_timeout names who held the lock it waited for, and
/// a retry prints no spurious "there is no transaction in progress" warning.
#[test]
fn lock_timeout_give_up_names_the_blocking_session() {
    let db = fresh_db();
    exec(&db.url, "CREATE TABLE busy (n int)");
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "1_alter.sql",
        "ALTER TABLE busy ADD COLUMN m int;\n",
    );
    let mut blocker = crate::common::connect(&db.url).unwrap();
    blocker
        .batch_execute("SET application_name = 'blocker-app'")
        .unwrap();
    let pid: i32 = blocker
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    blocker
        .batch_execute("BEGIN; LOCK TABLE busy IN ACCESS SHARE MODE")
        .unwrap();
    let r = cmd(dir.path(), &db.url)
        .args(["--lock-timeout", "200ms", "--lock-retries", "1", "apply"])
        .run();
    blocker.batch_execute("ROLLBACK").unwrap();
    assert_eq!(r.code, 1, "{r}");
    let text = r.all();
    for needed in [
        "gave up after 2 attempts".to_string(),
        format!(
            "it waited for pid {pid} (application_name 'blocker-app', idle in transaction for "
        ),
        "holding locks on busy): BEGIN; LOCK TABLE busy IN ACCESS SHARE MODE".to_string(),
    ] {
        assert!(text.contains(&needed), "{needed:?} missing:\n{r}");
    }
    assert!(!text.contains("no transaction in progress"), "{r}");
}

/// `CREATE INDEX CONCURRENTLY` waits for every older transaction, and lock_timeout used
/// to fail it there (leaving an INVALID index) although its lock blocks no traffic: it
/// now waits them out, and under statement_timeout it fails naming whom it waited for.
#[test]
fn concurrent_index_build_outwaits_an_old_transaction_beyond_lock_timeout() {
    let db = fresh_db();
    exec(
        &db.url,
        "CREATE TABLE t (n int); CREATE TABLE other (n int)",
    );
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "1_idx.sql",
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY t_n ON t (n);\n",
    );
    let mut report = crate::common::connect(&db.url).unwrap();
    report
        .batch_execute("SET application_name = 'long-report'; BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM other")
        .unwrap();
    let pid: i32 = report
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);

    // With a statement_timeout, the build gives up there and says whom it waited for.
    let r = cmd(dir.path(), &db.url)
        .args([
            "--lock-timeout",
            "100ms",
            "--statement-timeout",
            "1s",
            "apply",
        ])
        .run();
    assert_eq!(r.code, 1, "{r}");
    let text = r.all();
    assert!(text.contains("statement timeout"), "{r}");
    assert!(
        text.contains(&format!(
            "it waited for pid {pid} (application_name 'long-report'"
        )),
        "{r}"
    );
    exec(&db.url, "DROP INDEX t_n");
    cmd(dir.path(), &db.url).arg("repair").run().ok();

    // Without one, it waits past lock_timeout until the old transaction ends.
    let a = cmd(dir.path(), &db.url)
        .args(["--lock-timeout", "100ms", "apply"])
        .spawn();
    wait_until(
        "the build has waited for the old transaction for over 1 s",
        Duration::from_secs(30),
        || {
            scalar(
                &db.url,
                "SELECT count(*) FROM pg_stat_activity WHERE starts_with(query, 'CREATE INDEX CONCURRENTLY') \
                 AND wait_event_type = 'Lock' AND now() - query_start > interval '1 second'",
            ) == "1"
        },
    );
    report.batch_execute("COMMIT").unwrap();
    let a = a.wait();
    assert_eq!(a.code, 0, "{a}");
    assert_eq!(
        scalar(
            &db.url,
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_n'::regclass"
        ),
        "t"
    );
}

/// `plan` names each pending migration that locks several existing tables in one
/// transaction, where lock waits add up while earlier locks are held: the tables, their
/// lock modes and the bound for the given lock_timeout, at the line of the second lock.
/// One table locked twice, tables the migration creates, and CONCURRENTLY builds do not
/// count.
#[test]
fn plan_states_the_real_lock_bound_of_a_migration_that_locks_several_tables() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "1_tables.sql",
        "CREATE TABLE t1 (id int PRIMARY KEY);\nCREATE TABLE t2 (id int PRIMARY KEY, t1_id int);\n",
    );
    cmd(dir.path(), &db.url).arg("apply").run().ok();
    write(
        dir.path(),
        "2_one_table.sql",
        "ALTER TABLE t1 ADD COLUMN a int;\nALTER TABLE t1 ADD COLUMN b int;\n\
         CREATE TABLE fresh (i int);\nALTER TABLE fresh ADD COLUMN j int;\n",
    );
    write(
        dir.path(),
        "3_two_tables.sql",
        "-- a comment\nALTER TABLE t2 ADD COLUMN c int;\n\
         ALTER TABLE t2 ADD CONSTRAINT f FOREIGN KEY (t1_id) REFERENCES t1 (id);\n",
    );
    write(
        dir.path(),
        "4_concurrently.sql",
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i1 ON t1 (a);\n\
         CREATE INDEX CONCURRENTLY i2 ON t2 (c);\n",
    );
    let r = cmd(dir.path(), &db.url)
        .args(["--lock-timeout", "2s", "plan"])
        .run();
    assert_eq!(r.code, 0, "{r}");
    let warning = format!(
        "{}:3:1: warning: migration 3 (two_tables) locks 2 existing tables in one transaction: \
         t2 (ACCESS EXCLUSIVE), t1 (SHARE ROW EXCLUSIVE)",
        dir.path().join("3_two_tables.sql").display()
    );
    assert!(r.stderr.contains(&warning), "{warning:?} missing:\n{r}");
    assert!(
        r.stderr
            .contains("traffic on t2 can wait up to 1 × lock_timeout = 2s"),
        "{r}"
    );
    assert_eq!(
        r.stderr
            .matches("existing tables in one transaction")
            .count(),
        1,
        "{r}"
    );
}

/// A run that takes the migration lock twice — a pipeline's backup-marker, then its
/// apply — takes it the second time on the session it released it on (one connection,
/// not two), unlocked in between; and on a new session if that one ended meanwhile.
#[test]
fn a_second_lock_reuses_the_released_lock_session_or_replaces_an_ended_one() {
    use pgrollout::engine::{connect, RunOptions};
    use pgrollout::report::Silent;
    let db = fresh_db();
    let target = pgrollout::db::Target::parse(&db.url).unwrap();
    let opts = RunOptions::default();
    let mut s = connect(&target, &opts.schema, Duration::from_secs(5), &mut Silent).unwrap();
    let advisory_held = || {
        scalar(
            server().admin_url(),
            &format!(
                "SELECT count(*) FROM pg_locks AS l JOIN pg_stat_activity AS a USING (pid) \
                 WHERE l.locktype = 'advisory' AND l.granted AND a.datname = '{}'",
                db.name
            ),
        )
    };

    let (guard, _) = s.lock(&opts, &mut Silent).unwrap();
    let first = guard.backend_pid();
    assert_eq!(advisory_held(), "1");
    drop(guard);
    assert_eq!(
        advisory_held(),
        "0",
        "released: a kept session holds nothing"
    );

    let (guard, _) = s.lock(&opts, &mut Silent).unwrap();
    assert_eq!(
        guard.backend_pid(),
        first,
        "the released session is taken again"
    );
    drop(guard);

    exec(
        server().admin_url(),
        &format!("SELECT pg_terminate_backend({first})"),
    );
    wait_until(
        "the kept lock session ended",
        Duration::from_secs(30),
        || {
            scalar(
                server().admin_url(),
                &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {first}"),
            ) == "0"
        },
    );
    let (guard, _) = s.lock(&opts, &mut Silent).unwrap();
    assert_ne!(
        guard.backend_pid(),
        first,
        "a new session for the ended one"
    );
    assert_eq!(advisory_held(), "1");
}
