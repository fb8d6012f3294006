//! Schema snapshots and drift, against real PostgreSQL: one test per kind of difference.

use crate::common;

use std::path::Path;

use pgrollout::db::catalog;
use pgrollout::db::tracking::RunContext;
use pgrollout::db::{Db, Target};
use pgrollout::engine::drift::{self, DriftOptions};
use pgrollout::engine::{self, RunOptions};
use pgrollout::migration::MigrationSet;
use pgrollout::report::Silent;
use pgrollout::schema::{self, Difference, Kind, SchemaSnapshot, Severity, SnapshotOptions};

use crate::common::{exec, fresh_db, sample_db, Pgrollout, TestDb};

fn target(url: &str) -> Target {
    Target::parse(url).unwrap()
}

/// A fresh database with the sample migrations applied by pgrollout, built here rather
/// than copied from [`common::sample_db`]'s template: for the test of two builds.
fn built() -> TestDb {
    built_from(&common::sample_dir())
}

/// A fresh database with the migrations in `dir` applied by pgrollout.
fn built_from(dir: &Path) -> TestDb {
    let db = fresh_db();
    let set = MigrationSet::load(dir).unwrap();
    engine::apply(
        &target(&db.url),
        &set,
        &RunOptions::default(),
        &RunContext::scratch("test"),
        &mut Silent,
    )
    .unwrap_or_else(|f| panic!("{}", f.error));
    db
}

fn snap(url: &str, opts: &SnapshotOptions) -> SchemaSnapshot {
    let mut db = Db::connect(
        &target(url),
        "test",
        std::time::Duration::from_secs(5),
        &mut |_, _, _| {},
    )
    .unwrap();
    catalog::read(&mut db, opts).unwrap()
}

/// Two databases with the same base schema; `change` is run on the second.
fn diff_after(base: &str, change: &str) -> Vec<Difference> {
    diff_after_with(base, change, &SnapshotOptions::default())
}

fn diff_after_with(base: &str, change: &str, opts: &SnapshotOptions) -> Vec<Difference> {
    let a = fresh_db();
    let b = fresh_db();
    exec(&a.url, base);
    exec(&b.url, base);
    exec(&b.url, change);
    schema::diff(&snap(&a.url, opts), &snap(&b.url, opts))
}

#[track_caller]
fn only(diffs: &[Difference], kind: Kind, severity: Severity, object: &str) {
    assert_eq!(
        diffs.len(),
        1,
        "expected exactly one difference ({kind}), got {diffs:#?}"
    );
    assert_eq!(diffs[0].kind, kind, "{diffs:#?}");
    assert_eq!(diffs[0].severity, severity, "{diffs:#?}");
    assert!(
        diffs[0].object.contains(object),
        "object {:?} should name {object}",
        diffs[0].object
    );
    assert!(!diffs[0].fix.is_empty());
}

const BASE: &str = "
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL DEFAULT 'x', m mood,
                parent bigint, CONSTRAINT t_name_len CHECK (length(name) < 100));
CREATE INDEX t_name_idx ON t (name);
CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + 1';
CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER t_trg BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION trg();
CREATE VIEW v AS SELECT id, name FROM t;
CREATE SEQUENCE s;
ALTER TABLE t ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON t USING (id > 0);
";

#[test]
fn two_databases_built_from_the_same_files_show_no_drift() {
    let a = built();
    let b = built();
    let opts = SnapshotOptions::default();
    let (sa, sb) = (snap(&a.url, &opts), snap(&b.url, &opts));
    assert!(sa.tables.iter().any(|t| t.name == "orders"));
    assert!(sa.indexes.iter().any(|i| i.name == "orders_user_id_idx"));
    assert!(sa.enums.iter().any(
        |e| e.name == "order_status" && e.values == ["pending", "paid", "shipped", "cancelled"]
    ));
    assert!(sa
        .policies
        .iter()
        .any(|p| p.name == "orders_tenant_isolation"));
    assert!(
        !sa.schemas.iter().any(|s| s.name == "pgrollout"),
        "the tracking schema is left out"
    );
    assert!(!sa.tables.iter().any(|t| t.schema == "pgrollout"));
    assert_eq!(schema::diff(&sa, &sb), vec![]);
    // Stable: the same database reads to the same JSON.
    assert_eq!(
        serde_json::to_string(&sa).unwrap(),
        serde_json::to_string(&snap(&a.url, &opts)).unwrap()
    );
}

#[test]
fn table_on_one_side_only_is_critical() {
    only(
        &diff_after(BASE, "CREATE TABLE hotfix (x int)"),
        Kind::TableExtra,
        Severity::Critical,
        "public.hotfix",
    );
    let d = diff_after(BASE, "DROP VIEW v; DROP TABLE t");
    assert!(d
        .iter()
        .any(|x| x.kind == Kind::TableMissing && x.severity == Severity::Critical));
}

#[test]
fn column_on_one_side_only_is_critical() {
    only(
        &diff_after(BASE, "ALTER TABLE t ADD COLUMN extra text"),
        Kind::ColumnExtra,
        Severity::Critical,
        "public.t.extra",
    );
    only(
        &diff_after(BASE, "ALTER TABLE t DROP COLUMN parent"),
        Kind::ColumnMissing,
        Severity::Critical,
        "public.t.parent",
    );
}

#[test]
fn column_type_change_is_critical() {
    only(
        &diff_after(BASE, "ALTER TABLE t ALTER COLUMN parent TYPE integer"),
        Kind::ColumnType,
        Severity::Critical,
        "public.t.parent",
    );
}

#[test]
fn nullability_change_is_critical() {
    only(
        &diff_after(BASE, "ALTER TABLE t ALTER COLUMN parent SET NOT NULL"),
        Kind::ColumnNullability,
        Severity::Critical,
        "public.t.parent",
    );
}

#[test]
fn constraint_on_one_side_only_is_critical() {
    only(
        &diff_after(BASE, "ALTER TABLE t DROP CONSTRAINT t_name_len"),
        Kind::ConstraintMissing,
        Severity::Critical,
        "t_name_len",
    );
}

#[test]
fn index_on_one_side_only_is_critical_and_the_fix_recreates_it_concurrently() {
    let d = diff_after(BASE, "DROP INDEX t_name_idx");
    only(
        &d,
        Kind::IndexMissing,
        Severity::Critical,
        "public.t_name_idx",
    );
    assert!(
        d[0].fix
            .contains("CREATE INDEX CONCURRENTLY t_name_idx ON public.t"),
        "{}",
        d[0].fix
    );
}

#[test]
fn invalid_index_is_critical() {
    // A unique index built concurrently over duplicates fails and stays INVALID.
    let d = diff_after(BASE, "INSERT INTO t (name) VALUES ('dup'), ('dup');");
    assert!(d.is_empty(), "{d:#?}");
    let a = fresh_db();
    let b = fresh_db();
    for u in [&a.url, &b.url] {
        exec(u, BASE);
        exec(u, "CREATE UNIQUE INDEX t_name_uniq ON t (name)");
    }
    exec(
        &b.url,
        "DROP INDEX t_name_uniq; INSERT INTO t (name) VALUES ('dup'), ('dup');",
    );
    let mut c = common::connect(&b.url).unwrap();
    assert!(c
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY t_name_uniq ON t (name)")
        .is_err());
    let opts = SnapshotOptions::default();
    let d = schema::diff(&snap(&a.url, &opts), &snap(&b.url, &opts));
    only(
        &d,
        Kind::IndexInvalid,
        Severity::Critical,
        "public.t_name_uniq",
    );
    assert!(
        d[0].message.contains("INVALID in the target"),
        "{}",
        d[0].message
    );
}

#[test]
fn function_on_one_side_only_is_critical() {
    only(
        &diff_after(
            BASE,
            "CREATE FUNCTION f(a text) RETURNS text LANGUAGE sql AS 'SELECT a'",
        ),
        Kind::FunctionExtra,
        Severity::Critical,
        "public.f(a text)",
    );
}

#[test]
fn function_body_change_is_a_warning() {
    only(&diff_after(BASE, "CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + 2'"), Kind::FunctionBody, Severity::Warning, "public.f(a integer)");
}

#[test]
fn default_change_is_a_warning() {
    only(
        &diff_after(BASE, "ALTER TABLE t ALTER COLUMN name SET DEFAULT 'y'"),
        Kind::ColumnDefault,
        Severity::Warning,
        "public.t.name",
    );
}

#[test]
fn comment_change_is_a_warning() {
    only(
        &diff_after(BASE, "COMMENT ON TABLE t IS 'hand-written note'"),
        Kind::Comment,
        Severity::Warning,
        "public.t",
    );
}

#[test]
fn privileges_are_compared_when_asked_and_are_a_warning() {
    let opts = SnapshotOptions {
        owners_and_privileges: true,
        ..Default::default()
    };
    let change = "GRANT SELECT ON t TO PUBLIC";
    only(
        &diff_after_with(BASE, change, &opts),
        Kind::Privileges,
        Severity::Warning,
        "public.t",
    );
    assert!(
        diff_after(BASE, change).is_empty(),
        "privileges are off by default"
    );
}

#[test]
fn view_definition_change_is_a_warning() {
    only(
        &diff_after(
            BASE,
            "CREATE OR REPLACE VIEW v AS SELECT id, name || '!' AS name FROM t",
        ),
        Kind::ViewChanged,
        Severity::Warning,
        "public.v",
    );
}

#[test]
fn trigger_on_one_side_only_is_critical() {
    only(
        &diff_after(BASE, "DROP TRIGGER t_trg ON t"),
        Kind::TriggerMissing,
        Severity::Critical,
        "t_trg",
    );
}

#[test]
fn rls_disabled_and_policy_dropped_are_critical() {
    only(
        &diff_after(BASE, "ALTER TABLE t DISABLE ROW LEVEL SECURITY"),
        Kind::RlsEnabled,
        Severity::Critical,
        "public.t",
    );
    only(
        &diff_after(BASE, "ALTER TABLE t FORCE ROW LEVEL SECURITY"),
        Kind::RlsForced,
        Severity::Critical,
        "public.t",
    );
    only(
        &diff_after(BASE, "DROP POLICY p ON t"),
        Kind::PolicyMissing,
        Severity::Critical,
        "policy p",
    );
}

#[test]
fn enum_values_added_by_hand_are_critical() {
    only(
        &diff_after(BASE, "ALTER TYPE mood ADD VALUE 'meh' BEFORE 'ok'"),
        Kind::EnumValues,
        Severity::Critical,
        "public.mood",
    );
}

#[test]
fn domains_composite_and_range_types_are_compared() {
    let base = "CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');\n\
                CREATE TYPE money_pair AS (amount bigint, currency text);\n\
                CREATE TYPE num_span AS RANGE (subtype = numeric);\n";
    only(
        &diff_after(base, "ALTER DOMAIN email SET NOT NULL"),
        Kind::TypeChanged,
        Severity::Critical,
        "public.email",
    );
    only(
        &diff_after(base, "ALTER TYPE money_pair ADD ATTRIBUTE note text"),
        Kind::TypeChanged,
        Severity::Critical,
        "public.money_pair",
    );
    only(
        &diff_after(base, "DROP TYPE num_span"),
        Kind::TypeMissing,
        Severity::Critical,
        "public.num_span",
    );
    only(
        &diff_after(base, "CREATE DOMAIN code AS text"),
        Kind::TypeExtra,
        Severity::Critical,
        "public.code",
    );
}

#[test]
fn sequence_differences_are_found() {
    only(
        &diff_after(BASE, "ALTER SEQUENCE s INCREMENT BY 10"),
        Kind::SequenceChanged,
        Severity::Warning,
        "public.s",
    );
    only(
        &diff_after(BASE, "DROP SEQUENCE s"),
        Kind::SequenceMissing,
        Severity::Critical,
        "public.s",
    );
}

#[test]
fn extension_installed_by_hand_is_info_and_its_objects_are_not_listed() {
    let d = diff_after(BASE, "CREATE EXTENSION pgcrypto");
    only(&d, Kind::ExtensionExtra, Severity::Info, "pgcrypto");
}

#[test]
fn excluded_schemas_are_not_compared() {
    let opts = SnapshotOptions {
        exclude_schemas: vec!["scratch".into()],
        ..Default::default()
    };
    assert!(diff_after_with(
        BASE,
        "CREATE SCHEMA scratch; CREATE TABLE scratch.x (a int)",
        &opts
    )
    .is_empty());
    let opts = SnapshotOptions {
        include_schemas: vec!["public".into()],
        ..Default::default()
    };
    assert!(diff_after_with(
        BASE,
        "CREATE SCHEMA other; CREATE TABLE other.x (a int)",
        &opts
    )
    .is_empty());
}

#[test]
fn against_migrations_finds_a_column_added_by_hand() {
    let prod = sample_db(None);
    exec(
        &prod.url,
        "ALTER TABLE orders ADD COLUMN hotfix_flag boolean",
    );
    let set = MigrationSet::load(&common::sample_dir()).unwrap();
    let r = drift::against_migrations(
        &set,
        ("production", &target(&prod.url)),
        &DriftOptions::default(),
        &mut Silent,
    )
    .unwrap();
    assert_eq!(r.source.label, "migrations");
    assert_eq!(r.differences.len(), 1, "{:#?}", r.differences);
    assert_eq!(r.differences[0].kind, Kind::ColumnExtra);
    assert!(r.differences[0]
        .object
        .contains("public.orders.hotfix_flag"));
    assert!(r.has_critical());
}

/// The "done when": staging and production built from the sample, one index
/// dropped by hand in production → `drift` exits 1 naming that index.
#[test]
fn drift_cli_exits_1_naming_the_index_dropped_in_production() {
    let staging = sample_db(None);
    let production = sample_db(None);
    exec(&production.url, "DROP INDEX orders_user_id_idx");
    let r = Pgrollout::new()
        .args([
            "drift",
            "--source",
            &staging.url,
            "--target",
            &production.url,
        ])
        .run()
        .expect_code(1);
    assert!(
        r.stdout
            .contains("CRITICAL index public.orders_user_id_idx"),
        "{r}"
    );
    assert!(
        r.stdout
            .contains("CREATE INDEX CONCURRENTLY orders_user_id_idx"),
        "{r}"
    );

    // Same databases the other way round, as JSON: the index is extra in the target.
    let r = Pgrollout::new()
        .args([
            "drift",
            "--source",
            &production.url,
            "--target",
            &staging.url,
            "--format",
            "json",
        ])
        .run()
        .expect_code(1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["critical"], 1);
    assert_eq!(v["differences"][0]["kind"], "index_extra");
    assert_eq!(v["differences"][0]["severity"], "critical");

    // No drift: exit 0.
    let r = Pgrollout::new()
        .args([
            "drift",
            "--source",
            &staging.url,
            "--target",
            &sample_db(None).url,
        ])
        .run()
        .ok();
    assert!(r.stdout.contains("no drift"), "{r}");
}

#[test]
fn drift_cli_rejects_an_unknown_environment_name_and_same_sides() {
    // No pipeline file here: names cannot resolve.
    let empty = tempfile::tempdir().unwrap();
    let drift = |cwd: &Path, source: &str, target: &str| {
        Pgrollout::new()
            .cwd(cwd)
            .args(["drift", "--source", source, "--target", target])
            .run()
            .expect_code(2)
    };
    let r = drift(empty.path(), "staging", "postgres://u@127.0.0.1:1/x");
    assert!(r.stderr.contains("`staging` is not a database URL"), "{r}");
    drift(empty.path(), "postgres://u@h/x", "postgres://u@h/x");
    // With the repository's pgrollout.yml, `staging` is an environment whose URL
    // variable is unset.
    let r = drift(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        "staging",
        "postgres://u@127.0.0.1:1/x",
    );
    assert!(r.stderr.contains("STAGING_DATABASE_URL is not set"), "{r}");
}

/// Apply `migration` (one file) to a fresh database with the real binary, run `change` on
/// it by hand, then `drift --against migrations --format json` on the same files.
/// Returns the exit code and the parsed report.
fn cli_drift_against_migrations_after(
    migration: &str,
    change: &str,
) -> (Option<i32>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("20250101000000_function.sql"), migration).unwrap();
    let db = built_from(dir.path());
    exec(&db.url, change);
    let r = Pgrollout::new()
        .args(["drift", "--against", "migrations", "--format", "json"])
        .migrations(dir.path())
        .args(["--target", &db.url])
        .run();
    let report = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r}"));
    (Some(r.code), report)
}

/// The drift a hand-edited body must show: exactly one `function_body` warning naming
/// the function; warnings do not fail `drift` (exit 0), like any other body change.
#[track_caller]
fn assert_one_body_drift(code: Option<i32>, report: &serde_json::Value, function: &str) {
    let differences = report["differences"].as_array().unwrap();
    assert_eq!(differences.len(), 1, "{report:#}");
    assert_eq!(differences[0]["kind"], "function_body", "{report:#}");
    assert_eq!(differences[0]["severity"], "warning", "{report:#}");
    assert!(
        differences[0]["object"]
            .as_str()
            .unwrap()
            .contains(function),
        "{report:#}"
    );
    assert_eq!(report["warning"], 1);
    assert_eq!(code, Some(0), "{report:#}");
}

#[test]
fn hand_edited_sql_standard_return_body_is_drift_against_migrations() {
    let (code, report) = cli_drift_against_migrations_after(
        "-- migrate:up\nCREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql RETURN 1;\n\
         -- migrate:down\nDROP FUNCTION f();\n",
        "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql RETURN 2",
    );
    assert_one_body_drift(code, &report, "public.f()");
}

#[test]
fn hand_edited_begin_atomic_body_is_drift_against_migrations() {
    let (code, report) = cli_drift_against_migrations_after(
        "-- migrate:up\nCREATE FUNCTION g(a int) RETURNS int LANGUAGE sql\n\
         BEGIN ATOMIC\n  SELECT a + 1;\nEND;\n-- migrate:down\nDROP FUNCTION g(int);\n",
        "CREATE OR REPLACE FUNCTION g(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT a + 2; END",
    );
    assert_one_body_drift(code, &report, "public.g(a integer)");
}

#[test]
fn sql_standard_function_bodies_are_compared() {
    let base = "CREATE FUNCTION r() RETURNS int LANGUAGE sql RETURN 1;\n\
                CREATE FUNCTION a(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT x + 1; END;";
    only(
        &diff_after(
            base,
            "CREATE OR REPLACE FUNCTION r() RETURNS int LANGUAGE sql RETURN 2",
        ),
        Kind::FunctionBody,
        Severity::Warning,
        "public.r()",
    );
    only(
        &diff_after(
            base,
            "CREATE OR REPLACE FUNCTION a(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT x + 2; END",
        ),
        Kind::FunctionBody,
        Severity::Warning,
        "public.a(x integer)",
    );
    // The same body written differently deparses the same: no drift.
    assert_eq!(
        diff_after(
            base,
            "CREATE OR REPLACE FUNCTION r() RETURNS int LANGUAGE sql RETURN (1)"
        ),
        vec![]
    );
}

#[test]
fn function_attributes_beyond_the_body_are_compared() {
    for change in [
        "ALTER FUNCTION f(int) SET search_path = pg_catalog",
        "ALTER FUNCTION f(int) STRICT",
        "ALTER FUNCTION f(int) PARALLEL SAFE",
        "ALTER FUNCTION f(int) LEAKPROOF",
        "CREATE OR REPLACE FUNCTION f(a int DEFAULT 7) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + 1'",
    ] {
        let d = diff_after(BASE, change);
        only(&d, Kind::FunctionChanged, Severity::Warning, "public.f(a integer)");
    }
}

#[test]
fn an_aggregate_redefined_by_hand_is_a_body_change() {
    let base = "CREATE AGGREGATE total(int) (SFUNC = int4pl, STYPE = int, INITCOND = '0')";
    only(
        &diff_after(
            base,
            "DROP AGGREGATE total(int); CREATE AGGREGATE total(int) (SFUNC = int4pl, STYPE = int, INITCOND = '1')",
        ),
        Kind::FunctionBody,
        Severity::Warning,
        "aggregate public.total(integer)",
    );
}

#[test]
fn column_collation_and_identity_parameters_are_compared() {
    only(
        &diff_after(
            "CREATE TABLE c (a text)",
            "ALTER TABLE c ALTER COLUMN a TYPE text COLLATE \"C\"",
        ),
        Kind::ColumnCollation,
        Severity::Warning,
        "public.c.a",
    );
    let d = diff_after(BASE, "ALTER TABLE t ALTER COLUMN id SET INCREMENT BY 5");
    only(&d, Kind::ColumnIdentity, Severity::Warning, "public.t.id");
    assert!(d[0].message.contains("increment 5"), "{}", d[0].message);
}

#[test]
fn partition_bounds_and_inheritance_are_critical() {
    let base = "CREATE TABLE m (k int) PARTITION BY RANGE (k);\n\
                CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (10);\n\
                CREATE TABLE parent (x int); CREATE TABLE child (y int);";
    let d = diff_after(
        base,
        "ALTER TABLE m DETACH PARTITION m1; ALTER TABLE m ATTACH PARTITION m1 FOR VALUES FROM (0) TO (20)",
    );
    only(
        &d,
        Kind::PartitionChanged,
        Severity::Critical,
        "table public.m1",
    );
    assert!(
        d[0].message.contains("FOR VALUES FROM (0) TO (20)"),
        "{}",
        d[0].message
    );
    let d = diff_after(
        base,
        "ALTER TABLE child ADD COLUMN x int; ALTER TABLE child INHERIT parent",
    );
    assert!(
        d.iter()
            .any(|x| x.kind == Kind::PartitionChanged && x.object == "table public.child"),
        "{d:#?}"
    );
}

#[test]
fn table_and_view_options_are_compared() {
    only(
        &diff_after(BASE, "ALTER TABLE t SET (fillfactor = 70)"),
        Kind::TableOptions,
        Severity::Warning,
        "table public.t",
    );
    only(
        &diff_after("CREATE TABLE u (a int)", "ALTER TABLE u SET UNLOGGED"),
        Kind::TableOptions,
        Severity::Warning,
        "table public.u",
    );
    let d = diff_after(BASE, "ALTER VIEW v SET (security_barrier = true)");
    only(&d, Kind::ViewChanged, Severity::Warning, "view public.v");
    assert!(
        d[0].message.contains("security_barrier=true"),
        "{}",
        d[0].message
    );
}

#[test]
fn sequence_cache_and_ownership_are_compared() {
    only(
        &diff_after(BASE, "ALTER SEQUENCE s CACHE 10"),
        Kind::SequenceChanged,
        Severity::Warning,
        "sequence public.s",
    );
    let d = diff_after(BASE, "ALTER SEQUENCE s OWNED BY t.parent");
    only(
        &d,
        Kind::SequenceChanged,
        Severity::Warning,
        "sequence public.s",
    );
    assert!(d[0].message.contains("public.t.parent"), "{}", d[0].message);
}

#[test]
fn rules_statistics_and_event_triggers_are_compared() {
    only(
        &diff_after(
            BASE,
            "CREATE RULE t_keep AS ON DELETE TO t DO INSTEAD NOTHING",
        ),
        Kind::RuleExtra,
        Severity::Critical,
        "rule t_keep on public.t",
    );
    only(
        &diff_after(BASE, "CREATE STATISTICS t_stats ON id, parent FROM t"),
        Kind::StatisticsExtra,
        Severity::Warning,
        "statistics public.t_stats",
    );
    let base = format!(
        "{BASE}\nCREATE FUNCTION no_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;\n\
         CREATE EVENT TRIGGER guard ON ddl_command_start WHEN TAG IN ('DROP TABLE') EXECUTE FUNCTION no_ddl();"
    );
    let d = diff_after(&base, "ALTER EVENT TRIGGER guard DISABLE");
    only(
        &d,
        Kind::EventTriggerChanged,
        Severity::Warning,
        "event trigger guard",
    );
    assert!(
        d[0].message.contains("WHEN TAG IN (DROP TABLE)"),
        "{}",
        d[0].message
    );
    only(
        &diff_after(
            BASE,
            "CREATE FUNCTION no_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$",
        ),
        Kind::FunctionExtra,
        Severity::Critical,
        "no_ddl",
    );
}

#[test]
fn column_privileges_are_compared_when_asked() {
    let opts = SnapshotOptions {
        owners_and_privileges: true,
        ..SnapshotOptions::default()
    };
    let d = diff_after_with(BASE, "GRANT SELECT (name) ON t TO PUBLIC", &opts);
    only(
        &d,
        Kind::Privileges,
        Severity::Warning,
        "column public.t.name",
    );
    assert!(d[0].message.contains("PUBLIC:SELECT"), "{}", d[0].message);
}
