//! Migration directories in other tools' layouts (issue 13), read in place through the
//! real binary against real PostgreSQL: validate, plan, apply, rollback, test.

use std::path::{Path, PathBuf};

use crate::common::{self, fresh_db, query_strings, Pgrollout, Run};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/layouts")
        .join(name)
}

/// Runs the binary in an empty working directory (no pipeline file) with a clean
/// environment; `url` may be empty for file-only commands.
fn pgrollout(url: &str, dir: &Path, args: &[&str]) -> Run {
    let cwd = tempfile::tempdir().unwrap();
    let mut p = Pgrollout::new().cwd(cwd.path()).migrations(dir);
    if !url.is_empty() {
        p = p.database_url(url);
    }
    p.args(args).run()
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

// ---------------------------------------------------------------------------------------
// adopt: each tool's history table as that tool creates and fills it.

const FLYWAY_DDL: &str = r#"
CREATE TABLE "flyway_schema_history" (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INTEGER,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INTEGER NOT NULL,
    "success" BOOLEAN NOT NULL
);
ALTER TABLE "flyway_schema_history" ADD CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank");
CREATE INDEX "flyway_schema_history_s_idx" ON "flyway_schema_history" ("success");
INSERT INTO flyway_schema_history VALUES
  (1, '1', 'create users', 'SQL', 'V1__create_users.sql', 1034512, 'ci', now(), 7, true),
  (2, '1.2', 'add email', 'SQL', 'V1_2__add_email.sql', -88123, 'ci', now(), 4, true),
  (3, '1.10', 'index email', 'SQL', 'V1_10__index_email.sql', 55, 'ci', now(), 9, true),
  (4, '2', 'add orders', 'SQL', 'V2__add_orders.sql', 77, 'ci', now(), 3, true);
"#;

const GOLANG_DDL: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null primary key, dirty boolean not null);\n\
    INSERT INTO schema_migrations (version, dirty) VALUES (10, false);";

const DBMATE_DDL: &str = "create table if not exists schema_migrations (version varchar(128) primary key);\n\
    insert into schema_migrations (version) values ('20240101000000'), ('20240102000000'), ('20240103000000');";

const SQLX_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);
INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES
  (1, 'create users', true, '\x0123', 1200000),
  (2, 'add email', true, '\x4567', 900000),
  (10, 'index email', true, '\x89ab', 3100000);
"#;

const DIESEL_DDL: &str = "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (\
       version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);\n\
    INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101000000'), ('20240102000000'), ('20240103000000');";

const REFINERY_DDL: &str = "CREATE TABLE IF NOT EXISTS refinery_schema_history(\
       version int4 PRIMARY KEY, name VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255));\n\
    INSERT INTO refinery_schema_history VALUES \
       (1, 'create_users', '2024-01-01T00:00:00Z', '1234'), (2, 'add_email', '2024-01-02T00:00:00Z', '5678'), \
       (10, 'index_email', '2024-01-03T00:00:00Z', '9012');";

const SQITCH_DDL: &str = r#"
CREATE SCHEMA sqitch;
CREATE TABLE sqitch.projects (
    project         TEXT        PRIMARY KEY,
    uri             TEXT            NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    creator_name    TEXT        NOT NULL,
    creator_email   TEXT        NOT NULL
);
CREATE TABLE sqitch.changes (
    change_id       TEXT        PRIMARY KEY,
    script_hash     TEXT            NULL,
    change          TEXT        NOT NULL,
    project         TEXT        NOT NULL REFERENCES sqitch.projects(project) ON UPDATE CASCADE,
    note            TEXT        NOT NULL DEFAULT '',
    committed_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    committer_name  TEXT        NOT NULL,
    committer_email TEXT        NOT NULL,
    planned_at      TIMESTAMPTZ NOT NULL,
    planner_name    TEXT        NOT NULL,
    planner_email   TEXT        NOT NULL,
    UNIQUE(project, script_hash)
);
INSERT INTO sqitch.projects (project, creator_name, creator_email) VALUES ('shop', 'Ann', 'ann@example.com');
INSERT INTO sqitch.changes (change_id, script_hash, change, project, committed_at, committer_name, committer_email, planned_at, planner_name, planner_email) VALUES
  ('c1', 'h1', 'create_users', 'shop', '2024-02-01T00:00:01Z', 'Ann', 'ann@example.com', '2024-01-01', 'Ann', 'ann@example.com'),
  ('c2', 'h2', 'add_email', 'shop', '2024-02-01T00:00:02Z', 'Ann', 'ann@example.com', '2024-01-02', 'Ann', 'ann@example.com'),
  ('c3', 'h3', 'index_email', 'shop', '2024-02-01T00:00:03Z', 'Ann', 'ann@example.com', '2024-01-04', 'Ann', 'ann@example.com'),
  ('c4', 'h4', 'add_email', 'shop', '2024-02-01T00:00:04Z', 'Ann', 'ann@example.com', '2024-01-05', 'Ann', 'ann@example.com');
"#;

/// The old tool "migrated" the database (its files' SQL run in its order, and its
/// history table filled); `adopt` takes over; `status` has nothing pending and `apply`
/// is a no-op; the old table is untouched.
fn adopt_case(fixture_name: &str, tool: &str, ddl: &str, ups: &[&str], versions: &[&str]) {
    let dir = fixture(fixture_name);
    let db = fresh_db();
    for up in ups {
        let sql = std::fs::read_to_string(dir.join(up)).unwrap();
        common::exec(&db.url, &sql);
    }
    common::exec(&db.url, ddl);
    let table = match tool {
        "flyway" => "flyway_schema_history",
        "golang-migrate" | "dbmate" => "schema_migrations",
        "sqlx" => "_sqlx_migrations",
        "diesel" => "__diesel_schema_migrations",
        "refinery" => "refinery_schema_history",
        _ => "sqitch.changes",
    };
    let before = query_strings(&db.url, &format!("SELECT * FROM {table} ORDER BY 1"));

    let dry = ok(pgrollout(
        &db.url,
        &dir,
        &["adopt", "--from", tool, "--dry-run"],
    ));
    assert!(
        dry.stdout
            .contains(&format!("would adopt {} migration(s)", versions.len())),
        "{dry:?}"
    );
    assert!(
        !schema_exists(&db.url, "pgrollout"),
        "dry run writes nothing"
    );

    let a = ok(pgrollout(&db.url, &dir, &["adopt", "--from", tool]));
    assert!(
        a.stdout.contains(&format!(
            "adopted {} migration(s) from {tool}",
            versions.len()
        )),
        "{a:?}"
    );
    assert_eq!(applied_versions(&db.url), versions);
    let history = query_strings(
        &db.url,
        "SELECT version_text, reason FROM pgrollout.migration_history WHERE action = 'adopt' ORDER BY id",
    );
    assert_eq!(history.len(), versions.len());
    assert!(history[0][1].as_deref().unwrap().contains(tool));
    assert_eq!(
        query_strings(&db.url, &format!("SELECT * FROM {table} ORDER BY 1")),
        before,
        "the old table is left untouched"
    );

    let s = ok(pgrollout(&db.url, &dir, &["status", "--format", "json"]));
    assert!(!s.stdout.contains("\"pending\""), "{s:?}");
    let applied = ok(pgrollout(&db.url, &dir, &["apply"]));
    assert_eq!(applied_versions(&db.url), versions, "{applied:?}");

    // A second adopt finds pgrollout's tracking populated.
    let again = pgrollout(&db.url, &dir, &["adopt", "--from", tool]);
    assert_ne!(again.code, 0, "{again:?}");
    assert!(
        again.stderr.contains("tracking already has migrations"),
        "{again:?}"
    );
}

#[test]
fn adopt_from_flyway() {
    adopt_case(
        "flyway",
        "flyway",
        FLYWAY_DDL,
        &[
            "V1__create_users.sql",
            "V1_2__add_email.sql",
            "V1_10__index_email.sql",
            "V2__add_orders.sql",
        ],
        &["1.0", "1.2", "1.10", "2.0"],
    );
}

#[test]
fn adopt_from_golang_migrate() {
    adopt_case(
        "golang-migrate",
        "golang-migrate",
        GOLANG_DDL,
        &[
            "1_create_users.up.sql",
            "2_add_email.up.sql",
            "10_index_email.up.sql",
        ],
        &["1", "2", "10"],
    );
}

#[test]
fn adopt_from_sqlx() {
    adopt_case(
        "golang-migrate",
        "sqlx",
        SQLX_DDL,
        &[
            "1_create_users.up.sql",
            "2_add_email.up.sql",
            "10_index_email.up.sql",
        ],
        &["1", "2", "10"],
    );
}

#[test]
fn adopt_from_dbmate() {
    adopt_case(
        "dbmate",
        "dbmate",
        DBMATE_DDL,
        &[],
        &["20240101000000", "20240102000000", "20240103000000"],
    );
}

#[test]
fn adopt_from_diesel() {
    adopt_case(
        "diesel",
        "diesel",
        DIESEL_DDL,
        &[
            "2024-01-01-000000_create_users/up.sql",
            "2024-01-02-000000_add_email/up.sql",
            "2024-01-03-000000_index_email/up.sql",
        ],
        &["20240101000000", "20240102000000", "20240103000000"],
    );
}

#[test]
fn adopt_from_refinery() {
    adopt_case(
        "refinery",
        "refinery",
        REFINERY_DDL,
        &[
            "V1__create_users.sql",
            "V2__add_email.sql",
            "U10__index_email.sql",
        ],
        &["1", "2", "10"],
    );
}

#[test]
fn adopt_from_sqitch() {
    adopt_case(
        "sqitch",
        "sqitch",
        SQITCH_DDL,
        &[
            "deploy/create_users.sql",
            "deploy/add_email@v1.0.sql",
            "deploy/index_email.sql",
            "deploy/add_email.sql",
        ],
        &["1", "2", "3", "4"],
    );
}

#[test]
fn adopt_refuses_dirty_failed_or_fileless_history() {
    let gm = fixture("golang-migrate");
    let db = fresh_db();
    common::exec(
        &db.url,
        "CREATE TABLE schema_migrations (version bigint not null primary key, dirty boolean not null);\n\
         INSERT INTO schema_migrations VALUES (2, true);",
    );
    let r = pgrollout(&db.url, &gm, &["adopt", "--from", "golang-migrate"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("is dirty at version 2"), "{r:?}");
    assert!(applied_versions_or_none(&db.url).is_empty());

    let db = fresh_db();
    common::exec(
        &db.url,
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
           installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, \
           execution_time BIGINT NOT NULL);\n\
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES \
           (1, 'create users', true, '\\x01', 1), (2, 'add email', false, '\\x02', 1);",
    );
    let r = pgrollout(&db.url, &gm, &["adopt", "--from", "sqlx"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("records version 2 as failed"), "{r:?}");
    assert!(applied_versions_or_none(&db.url).is_empty());

    let db = fresh_db();
    common::exec(&db.url, FLYWAY_DDL);
    common::exec(
        &db.url,
        "INSERT INTO flyway_schema_history VALUES (5, '3', 'gone', 'SQL', 'V3__gone.sql', 1, 'ci', now(), 1, true)",
    );
    let r = pgrollout(&db.url, &fixture("flyway"), &["adopt", "--from", "flyway"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("records version 3 as applied, but no file"),
        "{r:?}"
    );
    assert!(
        applied_versions_or_none(&db.url).is_empty(),
        "all or nothing"
    );

    let db = fresh_db();
    let r = pgrollout(&db.url, &fixture("dbmate"), &["adopt", "--from", "dbmate"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("there is no schema_migrations table"),
        "{r:?}"
    );
}

fn applied_versions_or_none(url: &str) -> Vec<String> {
    if schema_exists(url, "pgrollout") {
        applied_versions(url)
    } else {
        Vec::new()
    }
}

/// Copy a fixture directory tree to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// sqitch's `verify/` scripts run in the pipeline's `verify` step for each applied
/// change, inside a transaction that is rolled back even when the script commits; a
/// failing one fails the step at its file:line. A dependency on another project's
/// change is reported by `status`, which cannot check it.
#[test]
fn sqitch_verify_scripts_run_in_the_verify_step_and_cross_project_dependencies_are_reported() {
    let pipeline = "migrations: migrations\nlayout: sqitch\nenvironments:\n  staging:\n    \
                    database_url_env: STAGING_DATABASE_URL\n    on: { branches: [staging] }\n    \
                    steps: [apply, verify]\n";
    let ws = common::actions::Workspace::new(pipeline, &[]);
    let dir = ws.path("migrations");
    copy_tree(&fixture("sqitch"), &dir);
    // A verify script that tries to leave something behind: its COMMIT is not sent.
    std::fs::write(
        dir.join("verify/create_users.sql"),
        "BEGIN;\nSELECT id FROM users WHERE false;\nCREATE TABLE verify_leak (n int);\nCOMMIT;\n",
    )
    .unwrap();
    let db = fresh_db();
    let r = common::actions::push_staging(&ws, &db.url);
    assert_eq!(r.code, 0, "{}", r.debug());
    assert!(
        r.all().contains("2 sqitch verify script(s) passed"),
        "{}",
        r.debug()
    );
    assert_eq!(
        query_strings(&db.url, "SELECT to_regclass('verify_leak')::text")[0][0],
        None,
        "a verify script changed the database"
    );

    // A verify script that fails: the step fails at the script's line.
    std::fs::write(
        dir.join("verify/index_email.sql"),
        "-- Verify shop:index_email\n\nSELECT no_such_column FROM users WHERE false;\n",
    )
    .unwrap();
    let r = common::actions::push_staging(&ws, &db.url);
    assert_ne!(r.code, 0, "{}", r.debug());
    let text = r.all();
    assert!(
        text.contains(
            "migrations/verify/index_email.sql:3:8: the verify script of change `index_email` failed"
        ),
        "{}",
        r.debug()
    );
    // One annotation, on the script's line.
    assert_eq!(text.matches("::error ").count(), 1, "{}", r.debug());
    assert!(
        text.contains("file=migrations/verify/index_email.sql,line=3,col=8::"),
        "{}",
        r.debug()
    );

    // Another project's change in a dependency list.
    let plan = std::fs::read_to_string(dir.join("sqitch.plan")).unwrap();
    std::fs::write(
        dir.join("sqitch.plan"),
        plan.replace(
            "index_email [add_email]",
            "index_email [add_email billing:accounts]",
        ),
    )
    .unwrap();
    let s = pgrollout(&db.url, &dir, &["status"]);
    assert!(
        s.stderr.contains(
            "change `index_email` requires `billing:accounts` from another sqitch project"
        ),
        "{s:?}"
    );
}

const RUNS: &str = "SELECT string_agg(what, ',' ORDER BY id) FROM runs";

/// Flyway's `R__` repeatables run after the versioned migrations, in description order,
/// and again only when their checksum changes; a dry run rehearses a changed one and
/// writes nothing; `status` lists them.
#[test]
fn flyway_repeatables_run_after_the_versioned_ones_and_again_when_changed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("V1__runs.sql"),
        "CREATE TABLE runs (id serial PRIMARY KEY, what text);\n",
    )
    .unwrap();
    std::fs::write(d.join("V2__t.sql"), "CREATE TABLE t (n int);\n").unwrap();
    // Named so that text order of the file names and description order agree, and both
    // depend on V2's table: they must run after every versioned migration.
    std::fs::write(
        d.join("R__b_report.sql"),
        "CREATE OR REPLACE VIEW report AS SELECT count(*) AS n FROM t;\nINSERT INTO runs (what) VALUES ('b');\n",
    )
    .unwrap();
    std::fs::write(
        d.join("R__a_grant.sql"),
        "INSERT INTO runs (what) SELECT 'a' FROM t LIMIT 0;\nINSERT INTO runs (what) VALUES ('a');\n",
    )
    .unwrap();
    let db = fresh_db();
    let first = ok(pgrollout(&db.url, d, &["apply"]));
    assert_eq!(first.stdout.matches("applied  ").count(), 4, "{first:?}");
    let runs = || {
        query_strings(&db.url, RUNS)[0][0]
            .clone()
            .unwrap_or_default()
    };
    assert_eq!(runs(), "a,b");

    let again = ok(pgrollout(&db.url, d, &["apply"]));
    assert!(again.stderr.contains("database is up to date"), "{again:?}");
    assert_eq!(runs(), "a,b");

    std::fs::write(
        d.join("R__b_report.sql"),
        "CREATE OR REPLACE VIEW report AS SELECT count(*) AS n, max(n) AS top FROM t;\nINSERT INTO runs (what) VALUES ('b');\n",
    )
    .unwrap();
    let dry = ok(pgrollout(&db.url, d, &["apply", "--dry-run"]));
    assert!(dry.stdout.contains("rehearsed  R  b_report"), "{dry:?}");
    assert_eq!(runs(), "a,b", "a dry run wrote");
    let st = ok(pgrollout(&db.url, d, &["status"]));
    assert!(st.stdout.contains("R        b_report  pending"), "{st:?}");
    assert!(st.stdout.contains("R        a_grant   applied"), "{st:?}");

    let changed = ok(pgrollout(&db.url, d, &["apply"]));
    assert!(
        changed.stdout.contains("applied  R  b_report"),
        "{changed:?}"
    );
    assert!(!changed.stdout.contains("a_grant"), "{changed:?}");
    assert_eq!(runs(), "a,b,b");
    assert_eq!(
        query_strings(&db.url, "SELECT count(*) FROM pgrollout.migration_history WHERE version_text = 'R' AND version IS NULL")[0][0].as_deref(),
        Some("3")
    );
}

/// Flyway's checksum of a file: CRC-32 of its lines without their line breaks.
fn flyway_checksum(text: &str) -> i32 {
    let joined: String = text.lines().collect();
    crc32fast::hash(joined.as_bytes()) as i32
}

/// `adopt --from flyway` takes over a repeatable whose file is as Flyway last ran it (so
/// `apply` after adopt does not run it again) and leaves a changed one due.
#[test]
fn adopt_from_flyway_takes_over_unchanged_repeatables_and_leaves_changed_ones_due() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = "CREATE TABLE runs (id serial PRIMARY KEY, what text);\n";
    let a = "INSERT INTO runs (what) VALUES ('a');\n";
    let b_now = "INSERT INTO runs (what) VALUES ('b2');\n";
    std::fs::write(d.join("V1__runs.sql"), v1).unwrap();
    std::fs::write(d.join("R__a.sql"), a).unwrap();
    std::fs::write(d.join("R__b.sql"), b_now).unwrap();
    let db = fresh_db();
    // What Flyway did: V1, then R__a and an older R__b.
    common::exec(&db.url, v1);
    common::exec(&db.url, "INSERT INTO runs (what) VALUES ('a'), ('b1');");
    common::exec(&db.url, FLYWAY_DDL.split("INSERT INTO").next().unwrap());
    common::exec(
        &db.url,
        &format!(
            "INSERT INTO flyway_schema_history VALUES \
             (1, '1', 'runs', 'SQL', 'V1__runs.sql', {}, 'ci', now(), 5, true), \
             (2, NULL, 'a', 'SQL', 'R__a.sql', {}, 'ci', now(), 1, true), \
             (3, NULL, 'b', 'SQL', 'R__b.sql', {}, 'ci', now(), 1, true)",
            flyway_checksum(v1),
            flyway_checksum(a),
            flyway_checksum("INSERT INTO runs (what) VALUES ('b1');\n"),
        ),
    );
    let adopted = ok(pgrollout(&db.url, d, &["adopt", "--from", "flyway"]));
    assert!(
        adopted
            .stdout
            .contains("adopted 2 migration(s) from flyway"),
        "{adopted:?}"
    );
    let st = ok(pgrollout(&db.url, d, &["status"]));
    assert!(st.stdout.contains("R        a     applied"), "{st:?}");
    assert!(st.stdout.contains("R        b     pending"), "{st:?}");
    ok(pgrollout(&db.url, d, &["apply"]));
    assert_eq!(
        query_strings(&db.url, RUNS)[0][0].as_deref(),
        Some("a,b1,b2"),
        "only the changed repeatable ran again"
    );
}

/// A failing repeatable stops the run at its file and line, leaves a `failed` history
/// row, and runs once it is fixed; the versioned migrations before it stay applied.
#[test]
fn a_failing_flyway_repeatable_is_reported_at_its_line_and_runs_once_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("V1__t.sql"), "CREATE TABLE t (n int);\n").unwrap();
    std::fs::write(
        d.join("R__v.sql"),
        "-- the report view\nCREATE OR REPLACE VIEW v AS SELECT missing FROM t;\n",
    )
    .unwrap();
    let db = fresh_db();
    let r = pgrollout(&db.url, d, &["apply"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.all()
            .contains(&format!("{}:2:", d.join("R__v.sql").display())),
        "{r:?}"
    );
    assert_eq!(applied_versions(&db.url), ["1.0"]);
    assert_eq!(
        query_strings(
            &db.url,
            "SELECT status FROM pgrollout.migration_history WHERE version_text = 'R' AND version IS NULL"
        ),
        [[Some("failed".to_string())]]
    );
    std::fs::write(
        d.join("R__v.sql"),
        "-- the report view\nCREATE OR REPLACE VIEW v AS SELECT n FROM t;\n",
    )
    .unwrap();
    ok(pgrollout(&db.url, d, &["apply"]));
    assert_eq!(
        query_strings(&db.url, "SELECT to_regclass('v')::text")[0][0].as_deref(),
        Some("v")
    );
}

/// The schema of `url` as pg_dump prints it, without pgrollout's tracking schema and
/// the per-run `\restrict` keys.
fn schema_dump(url: &str) -> String {
    let out = std::process::Command::new("/usr/lib/postgresql/15/bin/pg_dump")
        .args([
            "--schema-only",
            "--no-owner",
            "--exclude-schema=pgrollout",
            "-d",
            url,
        ])
        .output()
        .expect("running pg_dump");
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each layout whose files are plain up scripts builds, through pgrollout, the same
/// schema as psql running the same files in that tool's own order (Flyway's integer
/// order, diesel's directories, sqitch's plan with its reworked script, …). dbmate's
/// single files hold their down section too, which psql would run, so they are left out.
#[test]
fn each_layout_builds_the_schema_psql_builds_from_the_same_files() {
    let cases: &[(&str, &[&str])] = &[
        (
            "flyway",
            &[
                "V1__create_users.sql",
                "V1_2__add_email.sql",
                "V1_10__index_email.sql",
                "V2__add_orders.sql",
            ],
        ),
        (
            "golang-migrate",
            &[
                "1_create_users.up.sql",
                "2_add_email.up.sql",
                "10_index_email.up.sql",
            ],
        ),
        (
            "diesel",
            &[
                "2024-01-01-000000_create_users/up.sql",
                "2024-01-02-000000_add_email/up.sql",
                "2024-01-03-000000_index_email/up.sql",
            ],
        ),
        (
            "refinery",
            &[
                "V1__create_users.sql",
                "V2__add_email.sql",
                "U10__index_email.sql",
            ],
        ),
        (
            "sqitch",
            &[
                "deploy/create_users.sql",
                "deploy/add_email@v1.0.sql",
                "deploy/index_email.sql",
                "deploy/add_email.sql",
            ],
        ),
    ];
    for (layout, files) in cases {
        let dir = fixture(layout);
        let by_psql = fresh_db();
        for f in *files {
            let path = dir.join(f);
            assert!(path.is_file(), "{layout}: no {}", path.display());
            common::psql_file(&by_psql.url, &path);
        }
        let by_us = fresh_db();
        ok(pgrollout(&by_us.url, &dir, &["apply"]));
        let (ours, theirs) = (schema_dump(&by_us.url), schema_dump(&by_psql.url));
        assert!(ours.contains("CREATE TABLE"), "{layout}: empty dump");
        assert_eq!(ours, theirs, "{layout}: schemas differ");
    }
}
