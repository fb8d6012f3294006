//! Migration directories in other tools' layouts (issue 13), read in place through the
//! real binary against real PostgreSQL: validate, plan, apply, rollback, test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fresh_db, query_strings};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/layouts")
        .join(name)
}

/// Runs the binary in an empty working directory (no pipeline file) with a clean
/// environment; `url` may be empty for file-only commands.
fn pgrollout(url: &str, dir: &Path, args: &[&str]) -> Run {
    let cwd = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgrollout"));
    cmd.current_dir(cwd.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .arg("--migrations")
        .arg(dir);
    if !url.is_empty() {
        cmd.arg("--database-url").arg(url);
    }
    let out = cmd.args(args).output().expect("running pgrollout");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(r: Run) -> Run {
    assert_eq!(r.code, 0, "{r:?}");
    r
}

fn one(url: &str, sql: &str) -> Option<String> {
    query_strings(url, sql)
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten())
}

fn applied_versions(url: &str) -> Vec<String> {
    query_strings(
        url,
        "SELECT version_text FROM pgrollout.schema_migrations ORDER BY version",
    )
    .into_iter()
    .map(|r| r[0].clone().unwrap_or_default())
    .collect()
}

/// One layout's whole cycle. `versions` is the expected apply order; `extra` are the
/// flags the layout needs (`--allow-generated` where it has no downs).
fn cycle(dir: &Path, args: &[&str], layout: &str, versions: &[&str], rollback_extra: &[&str]) {
    let with =
        |rest: &[&str]| -> Vec<String> { args.iter().chain(rest).map(|s| s.to_string()).collect() };
    let run = |url: &str, rest: &[&str]| {
        let a = with(rest);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        pgrollout(url, dir, &a)
    };
    let v = ok(run("", &["validate"]));
    assert!(
        v.stdout
            .contains(&format!("✓ {} migration file(s) valid", versions.len())),
        "{v:?}"
    );

    let db = fresh_db();
    let p = ok(run(&db.url, &["plan"]));
    assert!(
        p.stderr.contains(&format!(
            "{} migration(s) in the {layout} layout",
            versions.len()
        )),
        "{p:?}"
    );
    for ver in versions {
        assert!(p.stdout.contains(ver), "plan lists {ver}: {p:?}");
    }
    ok(run(&db.url, &["apply"]));
    assert_eq!(applied_versions(&db.url), versions);
    // The non-transactional migration built its index concurrently, valid.
    assert_eq!(
        one(
            &db.url,
            "SELECT i.indisvalid::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.relname = 'users_email_idx'"
        )
        .as_deref(),
        Some("true")
    );
    let s = ok(run(&db.url, &["status", "--format", "json"]));
    assert!(!s.stdout.contains("\"pending\""), "{s:?}");
    // Applying again is a no-op.
    ok(run(&db.url, &["apply"]));
    assert_eq!(applied_versions(&db.url), versions);

    let mut rb = vec!["rollback", "--steps", "1"];
    rb.extend(rollback_extra);
    ok(run(&db.url, &rb));
    assert_eq!(
        applied_versions(&db.url),
        &versions[..versions.len() - 1],
        "the newest one was rolled back"
    );
    let s = ok(run(&db.url, &["status", "--format", "json"]));
    assert!(s.stdout.contains("\"pending\""), "{s:?}");

    let fresh = fresh_db();
    let mut t = vec!["test"];
    t.extend(rollback_extra);
    ok(run(&fresh.url, &t));
}

#[test]
fn flyway_versions_are_integer_lists() {
    // Text order would put 1.10 before 1.2; the index of 1.10 needs 1.2's column.
    cycle(
        &fixture("flyway"),
        &[],
        "flyway",
        &["1.0", "1.2", "1.10", "2.0"],
        &[],
    );
}

#[test]
fn golang_migrate_pairs() {
    cycle(
        &fixture("golang-migrate"),
        &[],
        "golang-migrate",
        &["1", "2", "10"],
        &[],
    );
}

#[test]
fn dbmate_sections() {
    cycle(
        &fixture("dbmate"),
        &[],
        "dbmate",
        &["20240101000000", "20240102000000", "20240103000000"],
        &[],
    );
}

#[test]
fn diesel_directories() {
    cycle(
        &fixture("diesel"),
        &[],
        "diesel",
        &["20240101000000", "20240102000000", "20240103000000"],
        &[],
    );
}

#[test]
fn refinery_versioned_and_unversioned() {
    // refinery has no downs: rollback and test use generated ones.
    cycle(
        &fixture("refinery"),
        &[],
        "refinery",
        &["1", "2", "10"],
        &["--allow-generated"],
    );
}

#[test]
fn sqitch_plan_order_with_a_rework() {
    cycle(
        &fixture("sqitch"),
        &[],
        "sqitch",
        &["1", "2", "3", "4"],
        &[],
    );
}

#[test]
fn dashed_names_with_a_declared_separator() {
    cycle(
        &fixture("dashed"),
        &["--version-separator", "-"],
        "dbmate",
        &["0001", "0002", "0010"],
        &["--allow-generated"],
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn schema_exists(url: &str, schema: &str) -> bool {
    one(
        url,
        &format!("SELECT count(*)::text FROM pg_namespace WHERE nspname = '{schema}'"),
    )
    .as_deref()
        == Some("1")
}

#[test]
fn sql_files_read_as_nothing_are_an_error_naming_the_layout() {
    // diesel's directories declared as dbmate: never "0 migrations valid".
    let r = pgrollout("", &fixture("diesel"), &["--layout", "dbmate", "validate"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("6 .sql file(s)")
            && r.stderr
                .contains("none was read as a migration in the dbmate layout")
            && r.stderr.contains("--layout diesel"),
        "{r:?}"
    );
    assert!(!r.stdout.contains("valid"), "{r:?}");
    // The same for `<digits>-<name>.sql` without the separator: the hint names it.
    let db = fresh_db();
    let r = pgrollout(&db.url, &fixture("dashed"), &["plan"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("--version-separator -"), "{r:?}");
    assert!(!schema_exists(&db.url, "pgrollout"));
}

#[test]
fn two_layouts_in_one_directory_are_refused_unless_one_is_declared() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "V1__a.sql", "CREATE TABLE a ();\n");
    write(dir.path(), "20240101000000_b.sql", "CREATE TABLE b ();\n");
    let r = pgrollout("", dir.path(), &["validate"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("files of more than one layout")
            && r.stderr.contains("V1__a.sql (flyway/refinery)")
            && r.stderr
                .contains("20240101000000_b.sql (dbmate/golang-migrate)"),
        "{r:?}"
    );
    // Declared, the other layout's file is named as not belonging.
    let r = pgrollout("", dir.path(), &["--layout", "flyway", "validate"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("20240101000000_b.sql: not a migration name in the flyway layout"),
        "{r:?}"
    );
}

#[test]
fn names_are_checked_before_ephemeral_starts_a_server_or_a_connection_is_made() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "V1__a.sql", "CREATE TABLE a ();\n");
    write(dir.path(), "notes.sql", "SELECT 1;\n");
    let r = pgrollout("", dir.path(), &["--ephemeral", "apply"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("notes.sql: not a migration name"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("throwaway PostgreSQL"), "{r:?}");
    // With a real database, nothing is created in it either.
    let db = fresh_db();
    let r = pgrollout(&db.url, dir.path(), &["apply"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!schema_exists(&db.url, "pgrollout"), "{r:?}");
}

#[test]
fn a_broken_down_section_does_not_block_the_up() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "1_a.sql",
        "-- migrate:up\nCREATE TABLE a (id int);\n\n-- migrate:down\nDROP TABLE a;\n",
    );
    write(
        dir.path(),
        "2_b.sql",
        "-- migrate:up\nCREATE TABLE b (id int);\n\n-- migrate:down\nDROP TABLE b;\nDROP TABL c;\n",
    );
    // Unterminated quote: the down cannot even be split into statements.
    write(
        dir.path(),
        "3_c.sql",
        "-- migrate:up\nCREATE TABLE c (id int);\n\n-- migrate:down\nDROP TABLE c; SELECT 'oops;\n",
    );
    let v = pgrollout("", dir.path(), &["validate"]);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(
        v.stderr.contains("2_b.sql:6:6")
            && v.stderr.contains("syntax error in the down section")
            && v.stderr.contains("3_c.sql:5:")
            && v.stderr.contains("in the down section: "),
        "{v:?}"
    );

    let db = fresh_db();
    let a = ok(pgrollout(&db.url, dir.path(), &["apply"]));
    assert_eq!(applied_versions(&db.url), ["1", "2", "3"], "{a:?}");
    assert_eq!(
        a.stderr.matches("migration 2: ").count(),
        1,
        "warned once: {a:?}"
    );
    assert!(
        a.stderr
            .contains("`rollback` of this migration will refuse"),
        "{a:?}"
    );

    let r = pgrollout(&db.url, dir.path(), &["rollback", "--steps", "1"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("down SQL of migration 3"), "{r:?}");
    assert_eq!(
        applied_versions(&db.url),
        ["1", "2", "3"],
        "nothing rolled back"
    );
}
