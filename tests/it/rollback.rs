//! `rollback`, generated rollbacks and `test`, against real PostgreSQL, mostly through
//! the real binary in a controlled environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{self, fresh_db, query_strings, sample_dir, wait_until, Pgrollout, Run};
use pgrollout::db::catalog;
use pgrollout::db::{Db, Target};
use pgrollout::schema::{diff, SchemaSnapshot};

fn pgrollout(url: &str, dir: &Path, args: &[&str]) -> Run {
    Pgrollout::new()
        .database_url(url)
        .migrations(dir)
        .args(args)
        .run()
}

fn ok(r: Run) -> Run {
    r.ok()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn one(url: &str, sql: &str) -> Option<String> {
    query_strings(url, sql)[0][0].clone()
}

fn exists(url: &str, relation: &str) -> bool {
    one(
        url,
        &format!("SELECT to_regclass('{relation}') IS NOT NULL"),
    )
    .as_deref()
        == Some("t")
}

fn applied(url: &str) -> Vec<String> {
    query_strings(
        url,
        "SELECT version_text || ':' || status FROM pgrollout.schema_migrations ORDER BY version",
    )
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect()
}

/// `action status version` of every history row except `started` ones, in order.
fn history(url: &str) -> Vec<String> {
    query_strings(
        url,
        "SELECT action || ' ' || status || ' ' || version_text FROM pgrollout.migration_history \
         WHERE status <> 'started' ORDER BY id",
    )
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect()
}

fn snapshot(url: &str) -> SchemaSnapshot {
    let t = Target::parse(url).unwrap();
    let mut db = Db::connect(
        &t,
        "test",
        std::time::Duration::from_secs(5),
        &mut |_, _, _| {},
    )
    .unwrap();
    catalog::read_all(&mut db, "pgrollout").unwrap()
}

fn three_tables(dir: &Path) {
    for (v, t) in [("1", "a"), ("2", "b"), ("3", "c")] {
        write(
            dir,
            &format!("{v}_create_{t}.sql"),
            &format!(
                "-- migrate:up\nCREATE TABLE {t} (id bigint PRIMARY KEY);\n-- migrate:down\nDROP TABLE {t};\n"
            ),
        );
    }
}

#[test]
fn rollback_one_then_n_then_to_a_version() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    three_tables(dir.path());
    write(
        dir.path(),
        "4_create_d.sql",
        "-- migrate:up\nCREATE TABLE d (id bigint);\n-- migrate:down\nDROP TABLE d;\n",
    );
    ok(pgrollout(&db.url, dir.path(), &["apply"]));

    let r = ok(pgrollout(
        &db.url,
        dir.path(),
        &["rollback", "--steps", "1"],
    ));
    assert!(
        r.stdout.contains("rolled back  4  create_d  (stored"),
        "{r:?}"
    );
    assert!(!exists(&db.url, "d") && exists(&db.url, "c"));
    assert_eq!(
        applied(&db.url),
        ["1:completed", "2:completed", "3:completed"]
    );

    ok(pgrollout(
        &db.url,
        dir.path(),
        &["rollback", "--steps", "2"],
    ));
    assert!(!exists(&db.url, "c") && !exists(&db.url, "b") && exists(&db.url, "a"));
    assert_eq!(applied(&db.url), ["1:completed"]);

    ok(pgrollout(&db.url, dir.path(), &["apply"]));
    let r = ok(pgrollout(&db.url, dir.path(), &["rollback", "--to", "2"]));
    assert!(r.stdout.contains("2 migration(s) rolled back"), "{r:?}");
    assert_eq!(applied(&db.url), ["1:completed", "2:completed"]);
    assert!(exists(&db.url, "b") && !exists(&db.url, "c"));

    // Asking for more than is applied, or a version that is not applied: nothing happens.
    let r = pgrollout(&db.url, dir.path(), &["rollback", "--steps", "5"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("only 2 migration(s) are applied"),
        "{r:?}"
    );
    let r = pgrollout(&db.url, dir.path(), &["rollback", "--to", "3"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("migration 3 is not applied"), "{r:?}");
    assert_eq!(applied(&db.url), ["1:completed", "2:completed"]);

    assert_eq!(
        history(&db.url),
        [
            "apply completed 1",
            "apply completed 2",
            "apply completed 3",
            "apply completed 4",
            "rollback completed 4",
            "rollback completed 3",
            "rollback completed 2",
            "apply completed 2",
            "apply completed 3",
            "apply completed 4",
            "rollback completed 4",
            "rollback completed 3",
        ]
    );
    // Neither --steps nor --to: a usage error.
    assert_eq!(pgrollout(&db.url, dir.path(), &["rollback"]).code, 2);
}

#[test]
fn transaction_false_down_runs_statement_by_statement() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "1_t.sql",
        "-- migrate:up\nCREATE TABLE t (a int);\n-- migrate:down\nDROP TABLE t;\n",
    );
    write(
        dir.path(),
        "2_idx.sql",
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);\n\
         -- migrate:down transaction:false\nDROP INDEX CONCURRENTLY IF EXISTS t_a;\n",
    );
    ok(pgrollout(&db.url, dir.path(), &["apply"]));
    assert!(exists(&db.url, "t_a"));
    let r = ok(pgrollout(
        &db.url,
        dir.path(),
        &["rollback", "--steps", "1"],
    ));
    assert!(r.stderr.contains("statement by statement"), "{r:?}");
    assert!(r.stderr.contains("DROP INDEX CONCURRENTLY"), "{r:?}");
    assert!(!exists(&db.url, "t_a"));
    assert_eq!(applied(&db.url), ["1:completed"]);
    assert_eq!(history(&db.url).last().unwrap(), "rollback completed 2");
    // And a dry run does not rehearse it.
    ok(pgrollout(&db.url, dir.path(), &["apply"]));
    let r = ok(pgrollout(
        &db.url,
        dir.path(),
        &["rollback", "--steps", "1", "--dry-run"],
    ));
    assert!(r.stdout.contains("not rehearsed  2"), "{r:?}");
    assert!(exists(&db.url, "t_a"));
}

#[test]
fn a_failing_down_leaves_the_migration_applied_and_a_failed_history_row() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    three_tables(dir.path());
    write(
        dir.path(),
        "4_broken_down.sql",
        "-- migrate:up\nCREATE TABLE d (id bigint);\n\n-- migrate:down\nDROP TABLE d;\nDROP TABLE no_such_table;\n",
    );
    ok(pgrollout(&db.url, dir.path(), &["apply"]));
    let r = pgrollout(&db.url, dir.path(), &["rollback", "--steps", "2"]);
    assert_eq!(r.code, 1, "{r:?}");
    // Positioned in the file: line 6 is the failing statement.
    assert!(r.stderr.contains("4_broken_down.sql:6:1"), "{r:?}");
    assert!(r.stderr.contains("SQLSTATE 42P01"), "{r:?}");
    assert!(r.stderr.contains("still applied"), "{r:?}");
    // The transaction rolled back: d is still there, 3 was not touched.
    assert!(exists(&db.url, "d") && exists(&db.url, "c"));
    assert_eq!(applied(&db.url).len(), 4);
    assert_eq!(history(&db.url).last().unwrap(), "rollback failed 4");
    let err = one(
        &db.url,
        "SELECT error FROM pgrollout.migration_history WHERE action = 'rollback' ORDER BY id DESC LIMIT 1",
    )
    .unwrap();
    assert!(err.contains("no_such_table"), "{err}");
}

#[test]
fn a_failed_transaction_false_down_is_failed_state_that_status_names_and_repair_clears() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "1_t.sql",
        "-- migrate:up\nCREATE TABLE t (a int);\n-- migrate:down\nDROP TABLE t;\n",
    );
    let broken =
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);\n\
                  -- migrate:down transaction:false\nDROP INDEX CONCURRENTLY IF EXISTS t_a;\n\
                  DROP INDEX CONCURRENTLY no_such_index;\n";
    write(dir.path(), "2_idx.sql", broken);
    ok(pgrollout(&db.url, dir.path(), &["apply"]));

    let r = pgrollout(&db.url, dir.path(), &["rollback", "--steps", "1"]);
    assert_eq!(r.code, 1, "{r:?}");
    // Positioned in the file (line 5 is the failing statement), statement 2 of the down.
    assert!(r.stderr.contains("2_idx.sql:5:1"), "{r:?}");
    assert!(r.stderr.contains("statement 2"), "{r:?}");
    assert!(r.stderr.contains("recorded as failed"), "{r:?}");
    // The first statement is in effect; the row says failed at statement index 1.
    assert!(!exists(&db.url, "t_a"));
    assert_eq!(applied(&db.url), ["1:completed", "2:failed"]);
    assert_eq!(
        one(
            &db.url,
            "SELECT statement_index::text || ' ' || direction FROM pgrollout.schema_migrations WHERE version = 2"
        )
        .as_deref(),
        Some("1 down")
    );
    assert_eq!(history(&db.url).last().unwrap(), "rollback failed 2");

    // status exits 1 and names the failed rollback; apply and rollback refuse to go on.
    let r = pgrollout(&db.url, dir.path(), &["status"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("2        idx   ROLLBACK FAILED"), "{r:?}");
    assert!(r.stdout.contains("1 failed"), "{r:?}");
    let r = pgrollout(&db.url, dir.path(), &["apply"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("the rollback of migration 2 idx failed at statement 2"),
        "{r:?}"
    );
    let r = pgrollout(&db.url, dir.path(), &["rollback", "--steps", "1"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("pgrollout repair"), "{r:?}");

    // repair returns the row to completed: the migration is applied (in part undone).
    let r = ok(pgrollout(&db.url, dir.path(), &["repair"]));
    assert!(
        r.stdout
            .contains("cleared failed rollback of migration 2 idx"),
        "{r:?}"
    );
    assert_eq!(applied(&db.url), ["1:completed", "2:completed"]);
    assert_eq!(history(&db.url).last().unwrap(), "repair completed 2");
    ok(pgrollout(&db.url, dir.path(), &["status"]));

    // With the down fixed, the rollback reruns from its first statement and completes.
    write(
        dir.path(),
        "2_idx.sql",
        &broken.replace("DROP INDEX CONCURRENTLY no_such_index;\n", ""),
    );
    ok(pgrollout(
        &db.url,
        dir.path(),
        &["rollback", "--steps", "1", "--use-file-down"],
    ));
    assert_eq!(applied(&db.url), ["1:completed"]);
    assert_eq!(history(&db.url).last().unwrap(), "rollback completed 2");
}

#[test]
fn a_down_edited_or_deleted_after_apply_uses_the_stored_one() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    three_tables(dir.path());
    ok(pgrollout(&db.url, dir.path(), &["apply"]));
    // Edit the down section: the up (and so the checksum) is unchanged.
    write(
        dir.path(),
        "3_create_c.sql",
        "-- migrate:up\nCREATE TABLE c (id bigint PRIMARY KEY);\n-- migrate:down\nDROP TABLE does_not_exist;\n",
    );
    let r = pgrollout(
        &db.url,
        dir.path(),
        &["rollback", "--steps", "1", "--dry-run"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("differs from the one stored"), "{r:?}");
    assert!(r.stdout.contains("DROP TABLE c;"), "{r:?}");
    // --use-file-down runs the file's, which fails here.
    let r = pgrollout(
        &db.url,
        dir.path(),
        &["rollback", "--steps", "1", "--use-file-down"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("does_not_exist"), "{r:?}");
    assert!(exists(&db.url, "c"));
    let r = ok(pgrollout(
        &db.url,
        dir.path(),
        &["rollback", "--steps", "1"],
    ));
    assert!(r.stderr.contains("running the stored one"), "{r:?}");
    assert!(!exists(&db.url, "c"));
    // The file is gone altogether: the stored down SQL still works.
    std::fs::remove_file(dir.path().join("2_create_b.sql")).unwrap();
    ok(pgrollout(
        &db.url,
        dir.path(),
        &["rollback", "--steps", "1"],
    ));
    assert!(!exists(&db.url, "b"));
    assert_eq!(applied(&db.url), ["1:completed"]);
}

#[test]
fn a_migration_without_down_stops_the_rollback_before_anything_runs() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    three_tables(dir.path());
    write(
        dir.path(),
        "2_create_b.sql",
        "CREATE TABLE b (id bigint);\nINSERT INTO b VALUES (1);\n",
    );
    ok(pgrollout(&db.url, dir.path(), &["apply"]));
    let r = pgrollout(&db.url, dir.path(), &["rollback", "--steps", "2"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("no rollback available"), "{r:?}");
    assert!(r.stderr.contains("INSERT changes data"), "{r:?}");
    assert!(r.stderr.contains("Nothing was rolled back"), "{r:?}");
    assert!(exists(&db.url, "c"), "3 must not have been rolled back");
    assert_eq!(applied(&db.url).len(), 3);
    // --allow-generated changes nothing for a data change.
    let r = pgrollout(
        &db.url,
        dir.path(),
        &["rollback", "--steps", "2", "--allow-generated"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(applied(&db.url).len(), 3);
}

#[test]
fn generated_rollback_is_shown_and_runs_only_when_allowed() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "1_t.sql",
        "CREATE TABLE t (id bigint PRIMARY KEY, a int);\nCREATE INDEX t_a ON t (a);\n",
    );
    let r = ok(pgrollout(&db.url, dir.path(), &["plan"]));
    assert!(r.stdout.contains("generated"), "{r:?}");
    assert!(r.stdout.contains("DROP INDEX \"t_a\";"), "{r:?}");
    ok(pgrollout(&db.url, dir.path(), &["apply"]));

    let r = pgrollout(&db.url, dir.path(), &["rollback", "--steps", "1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("--allow-generated"), "{r:?}");
    assert!(r.stderr.contains("DROP TABLE \"t\";"), "{r:?}");
    let r = ok(pgrollout(
        &db.url,
        dir.path(),
        &["rollback", "--steps", "1", "--dry-run"],
    ));
    assert!(r.stdout.contains("generated rollback"), "{r:?}");
    assert!(r.stdout.contains("rehearsed  1"), "{r:?}");
    assert!(exists(&db.url, "t"));

    let r = ok(pgrollout(
        &db.url,
        dir.path(),
        &["rollback", "--steps", "1", "--allow-generated"],
    ));
    assert!(r.stdout.contains("with this generated rollback"), "{r:?}");
    assert!(!exists(&db.url, "t"));
    assert_eq!(
        one(
            &db.url,
            "SELECT reason FROM pgrollout.migration_history WHERE action = 'rollback'"
        )
        .as_deref(),
        Some("generated down SQL")
    );
}

/// Every statement kind the generator supports, applied and undone on PostgreSQL: the
/// schema is back to what it was.
#[test]
fn generated_rollbacks_undo_every_supported_statement() {
    let db = fresh_db();
    let empty = snapshot(&db.url);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "1_base.sql",
        "-- migrate:up\nCREATE TABLE base (id bigint PRIMARY KEY);\n-- migrate:down\nDROP TABLE base;\n",
    );
    ok(pgrollout(&db.url, dir.path(), &["apply"]));
    let before = snapshot(&db.url);
    write(
        dir.path(),
        "2_everything.sql",
        "CREATE SCHEMA app;\n\
         CREATE EXTENSION citext;\n\
         CREATE TYPE app.mood AS ENUM ('ok', 'meh');\n\
         CREATE TYPE pair AS (a int, b text);\n\
         CREATE TYPE floatrange AS RANGE (subtype = float8);\n\
         CREATE SEQUENCE app.counter;\n\
         CREATE TABLE app.t (id bigint PRIMARY KEY, m app.mood, e citext);\n\
         CREATE INDEX t_m_idx ON app.t (m);\n\
         CREATE VIEW app.v AS SELECT id FROM app.t;\n\
         CREATE MATERIALIZED VIEW app.mv AS SELECT id FROM app.t;\n\
         CREATE FUNCTION app.add(a int, b int DEFAULT 1, OUT c int) LANGUAGE sql AS 'select a + b';\n\
         CREATE PROCEDURE app.noop(int) LANGUAGE sql AS 'select 1';\n\
         CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS 'begin return new; end';\n\
         CREATE TRIGGER touch BEFORE UPDATE ON app.t FOR EACH ROW EXECUTE FUNCTION app.touch();\n\
         CREATE POLICY \"Own rows\" ON app.t USING (true);\n\
         ALTER TABLE base ADD COLUMN note text, ADD COLUMN n int DEFAULT 0;\n",
    );
    ok(pgrollout(&db.url, dir.path(), &["apply"]));
    assert_ne!(snapshot(&db.url), before);
    ok(pgrollout(
        &db.url,
        dir.path(),
        &["rollback", "--steps", "1", "--allow-generated"],
    ));
    let after = snapshot(&db.url);
    assert!(
        diff(&before, &after).is_empty(),
        "{:?}",
        diff(&before, &after)
    );
    assert_ne!(before, empty);
}

#[test]
fn test_reports_a_down_that_forgets_a_domain() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "1_email.sql",
        "-- migrate:up\nCREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');\nCREATE TABLE contacts (id bigint, e email);\n-- migrate:down\nDROP TABLE contacts;\n",
    );
    let r = pgrollout(&db.url, dir.path(), &["test"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("1        email  broken"), "{r:?}");
    assert!(
        r.stdout.contains("domain type public.email (text CHECK ((VALUE ~~ '%@%'::text))) exists only in the target"),
        "{r:?}"
    );
}

#[test]
fn test_reports_a_down_that_forgets_an_index_and_one_that_fails() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "1_t.sql",
        "-- migrate:up\nCREATE TABLE t (id bigint, a int);\n-- migrate:down\nDROP TABLE t;\n",
    );
    write(
        dir.path(),
        "2_idx.sql",
        "-- migrate:up\nCREATE INDEX t_a_idx ON t (a);\n-- migrate:down\nSELECT 1;\n",
    );
    let r = pgrollout(&db.url, dir.path(), &["test"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("2        idx   broken"), "{r:?}");
    assert!(
        r.stdout.contains(
            "index public.t_a_idx on public.t exists only in the target: CREATE INDEX t_a_idx ON public.t USING btree (a)"
        ),
        "{r:?}"
    );
    // The broken down of 2 no longer hides 1: it is tested on its own copy.
    assert!(r.stdout.contains("1        t     reversible"), "{r:?}");

    // The tests ran on copies: the database itself is as it was.
    assert!(!exists(&db.url, "t"));
    // A database with objects of its own is refused (--force overrides).
    common::exec(&db.url, "CREATE TABLE mine (id int)");
    let r = pgrollout(&db.url, dir.path(), &["test"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("scratch database"), "{r:?}");
    // A down that errors.
    let db = fresh_db();
    write(
        dir.path(),
        "2_idx.sql",
        "-- migrate:up\nCREATE INDEX t_a_idx ON t (a);\n-- migrate:down\nDROP INDEX no_such_index;\n",
    );
    let r = pgrollout(&db.url, dir.path(), &["test", "--format", "json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["migrations"][0]["verdict"], "broken");
    let detail = v["migrations"][0]["details"][0].as_str().unwrap();
    assert!(
        detail.contains("the rollback fails") && detail.contains("no_such_index"),
        "{detail}"
    );

    // No down at all: irreversible, not broken (exit 0), unless generated ones are allowed.
    let db = fresh_db();
    write(dir.path(), "2_idx.sql", "CREATE INDEX t_a_idx ON t (a);\n");
    let r = pgrollout(&db.url, dir.path(), &["test"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("irreversible"), "{r:?}");
    let db = fresh_db();
    let r = pgrollout(&db.url, dir.path(), &["test", "--allow-generated"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("2 reversible"), "{r:?}");
    assert!(
        r.stdout.contains("reversible (generated rollback)"),
        "{r:?}"
    );
}

#[test]
fn test_gives_every_migration_a_verdict_when_one_in_the_middle_leaks() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    for (v, t) in [("1", "a"), ("2", "b"), ("4", "d"), ("5", "e"), ("6", "f")] {
        write(
            dir.path(),
            &format!("{v}_{t}.sql"),
            &format!(
                "-- migrate:up\nCREATE TABLE {t} (id bigint PRIMARY KEY);\n-- migrate:down\nDROP TABLE {t};\n"
            ),
        );
    }
    // 3's down forgets its index; 4..6 come after it and must still be tested.
    write(
        dir.path(),
        "3_c.sql",
        "-- migrate:up\nCREATE TABLE c (id bigint PRIMARY KEY, x int);\nCREATE INDEX c_x ON b (id);\n\
         -- migrate:down\nDROP TABLE c;\n",
    );
    let r = pgrollout(&db.url, dir.path(), &["test", "--format", "json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let verdicts: Vec<(String, String)> = v["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["version"].as_str().unwrap().to_string(),
                m["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect: Vec<(String, String)> = [
        ("6", "reversible"),
        ("5", "reversible"),
        ("4", "reversible"),
        ("3", "broken"),
        ("2", "reversible"),
        ("1", "reversible"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(verdicts, expect, "{r:?}");
    let details = v["migrations"][3]["details"].to_string();
    assert!(details.contains("c_x"), "{details}");
    // This run's copies are gone (other tests' runs may be at work on the cluster),
    // and the database itself was only ever a template.
    let left = query_strings(
        &db.url,
        "SELECT count(*)::text FROM pg_database WHERE starts_with(datname, current_database() || '_pgrt_')",
    );
    assert_eq!(left[0][0].as_deref(), Some("0"));
    assert!(!exists(&db.url, "a"));
}

#[test]
fn rollback_and_a_concurrent_apply_take_turns_under_the_lock() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "1_a.sql",
        "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n",
    );
    ok(pgrollout(&db.url, dir.path(), &["apply"]));
    write(
        dir.path(),
        "2_slow.sql",
        "-- migrate:up\nSELECT count(*) FROM gate;\nCREATE TABLE b (id int);\n-- migrate:down\nDROP TABLE b;\n",
    );
    // Migration 2 reads a table the test holds locked: the apply stays inside it, holding
    // the migration lock, until the rollback is seen waiting for that lock.
    common::exec(&db.url, "CREATE TABLE gate (id int)");
    let mut gate = common::connect(&db.url).unwrap();
    let mut held = gate.transaction().unwrap();
    held.batch_execute("LOCK TABLE gate IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let apply = Pgrollout::new()
        .database_url(&db.url)
        .migrations(dir.path())
        .args(["--lock-timeout", "120s", "apply"])
        .spawn();
    wait_until(
        "the apply is inside migration 2, waiting for the test's lock on `gate`",
        Duration::from_secs(60),
        || common::someone_waits_for_lock(&db.url, "relation"),
    );
    let rollback = Pgrollout::new()
        .database_url(&db.url)
        .migrations(dir.path())
        .args(["rollback", "--steps", "1"])
        .spawn();
    wait_until(
        "the rollback waits for the migration lock",
        Duration::from_secs(60),
        || common::runners_waiting_for_the_lock(&db.url) == 1,
    );
    held.rollback().unwrap();
    let r = ok(rollback.wait());
    let a = ok(apply.wait());
    assert!(a.stdout.contains("applied  2"), "{a:?}");
    // The rollback waited for the apply and then undid exactly what it applied.
    assert!(r.stdout.contains("rolled back  2  slow"), "{r:?}");
    assert_eq!(applied(&db.url), ["1:completed"]);
    assert!(!exists(&db.url, "b") && exists(&db.url, "a"));
    assert_eq!(
        history(&db.url),
        [
            "apply completed 1",
            "apply completed 2",
            "rollback completed 2"
        ]
    );
}

/// The "done when" of the sample: apply, roll back 3, apply again: the same schema, and
/// the history tells the story.
#[test]
fn sample_apply_rollback_three_apply_restores_the_schema() {
    let db = fresh_db();
    let dir = sample_dir();
    ok(pgrollout(&db.url, &dir, &["apply"]));
    let first = snapshot(&db.url);
    assert!(first
        .tables
        .iter()
        .any(|t| t.name == "orders" && t.rls_enabled));
    assert!(first.enums.iter().any(|e| e.name == "order_status"));
    let r = ok(pgrollout(&db.url, &dir, &["rollback", "--steps", "4"]));
    assert!(r.stdout.contains("4 migration(s) rolled back"), "{r:?}");
    assert!(!exists(&db.url, "countries"));
    ok(pgrollout(&db.url, &dir, &["apply"]));
    let again = snapshot(&db.url);
    assert!(
        diff(&first, &again).is_empty(),
        "{:?}",
        diff(&first, &again)
    );
    let h = history(&db.url);
    assert_eq!(h.len(), 19, "{h:?}");
    assert_eq!(
        h[11..],
        [
            "rollback completed 20251118100500",
            "rollback completed 20251118100000",
            "rollback completed 20251115140000",
            "rollback completed 20251112090000",
            "apply completed 20251112090000",
            "apply completed 20251115140000",
            "apply completed 20251118100000",
            "apply completed 20251118100500",
        ]
    );
}

#[test]
fn ephemeral_test_reports_every_sample_migration_reversible() {
    let r = Pgrollout::new()
        .arg("--ephemeral")
        .migrations(sample_dir())
        .arg("test")
        .run();
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout
            .contains("11 reversible, 0 irreversible, 0 broken, 0 untested"),
        "{r}"
    );
}
