//! `pgrollout lint` as users run it: the real binary in a temporary workspace (terminal,
//! `--format json`, GitHub mode with the runner's files simulated), a real PostgreSQL for
//! the pending-only default and live context, and the library on PostgreSQL's own
//! extension scripts.

use crate::common;

use std::path::{Path, PathBuf};

use crate::common::{Pgrollout, Run};

/// The "done when" migration: an index built without CONCURRENTLY (line 2), a
/// column type change (line 3), a foreign key without NOT VALID (line 4).
const UNSAFE: &str = "-- migrate:up\n\
CREATE INDEX orders_user ON orders (user_id);\n\
ALTER TABLE orders ALTER COLUMN total TYPE bigint;\n\
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);\n\
-- migrate:down\n\
ALTER TABLE orders DROP CONSTRAINT orders_user_fk;\n\
ALTER TABLE orders ALTER COLUMN total TYPE integer;\n\
DROP INDEX orders_user;\n";

/// Applied first in the database tests. `varchar(40)` is a hygiene finding, so linting
/// every file shows it and linting the pending ones does not.
const BASE: &str = "CREATE TABLE users (id bigint PRIMARY KEY, name varchar(40));\n\
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint, total integer);\n";

pub(crate) struct Workspace {
    pub(crate) dir: tempfile::TempDir,
}

impl Workspace {
    pub(crate) fn new(migrations: &[(&str, &str)]) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("migrations")).unwrap();
        for (name, sql) in migrations {
            std::fs::write(dir.path().join("migrations").join(name), sql).unwrap();
        }
        Workspace { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn write(&self, p: &str, text: &str) {
        std::fs::write(self.path(p), text).unwrap();
    }

    /// The binary in this workspace.
    fn command(&self) -> Pgrollout {
        Pgrollout::new()
            .cwd(self.dir.path())
            .env("PGROLLOUT_CONNECT_TIMEOUT", "5s")
    }

    /// The binary with a controlled environment: PATH, HOME and `vars` only.
    pub(crate) fn run(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        self.command().args(args).envs(vars).run()
    }

    /// As in a GitHub Actions step.
    fn github(&self, args: &[&str]) -> Run {
        self.command()
            .runner_files(self.dir.path())
            .args(args)
            .run()
    }
}

pub(crate) fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{}", r.debug()))
}

/// (rule, line, col, severity) of each finding of a `--format json` run.
fn found(v: &serde_json::Value) -> Vec<(String, u64, u64, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
                f["col"].as_u64().unwrap(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn three_findings() -> Vec<(&'static str, u32, u32)> {
    vec![
        ("require-concurrent-index-creation", 2, 1),
        ("column-type-rewrite", 3, 44),
        ("require-not-valid-foreign-key", 4, 24),
    ]
}

/// The severity policy: on a table the migration did not create, an index build, a
/// rewrite and a validating scan are errors, so plain `lint` fails.
#[test]
fn unsafe_file_three_errors_at_their_lines_with_fixes() {
    let w = Workspace::new(&[("0002_unsafe.sql", UNSAFE)]);
    let r = w.run(&["lint"], &[]);
    assert_eq!(r.code, 1, "{}", r.debug());
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines[0], "migrations/0002_unsafe.sql", "{}", r.debug());
    for (i, (rule, line, col)) in three_findings().into_iter().enumerate() {
        let finding = lines[1 + 2 * i];
        let fix = lines[2 + 2 * i];
        assert!(
            finding.starts_with(&format!("  {line}:{col} ")) && finding.contains(rule),
            "{finding}\n{}",
            r.debug()
        );
        assert!(
            finding.contains("error"),
            "{finding}: the severity policy says error"
        );
        assert!(fix.trim_start().starts_with("fix: "), "{fix}");
    }
    assert!(lines[3].contains("ALTER COLUMN `total` TYPE int8 rewrites `orders`"));
    assert!(lines[6].contains("NOT VALID"), "{}", lines[6]);
    // Each fix names the pattern that writes the safe steps.
    assert!(
        lines[2].contains("pgrollout new --pattern add-index --table orders --column user_id"),
        "{}",
        lines[2]
    );
    assert!(
        lines[4].contains("--pattern change-column-type --table orders --column total --type int8"),
        "{}",
        lines[4]
    );
    assert!(
        lines[6].contains(
            "--pattern add-foreign-key --table orders --column user_id --references users"
        ),
        "{}",
        lines[6]
    );
    assert_eq!(
        r.stdout,
        "✗ 3 finding(s) in 1 migration file(s): 3 error(s), 0 warning(s), 0 info; 3 at or above --fail-on error\n"
    );

    // Only a choice to accept them lets them pass.
    let r = w.run(&["lint", "--fail-on", "never"], &[]);
    assert_eq!(r.code, 0, "{}", r.debug());
    assert!(r.stdout.starts_with("✓ 3 finding(s)"), "{}", r.debug());
}

#[test]
fn github_mode_annotates_the_statements_and_writes_a_summary_table() {
    let w = Workspace::new(&[("0002_unsafe.sql", UNSAFE)]);
    let r = w.github(&["lint"]);
    assert_eq!(r.code, 1, "{}", r.debug());
    let annotations: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("::warning ") || l.starts_with("::error "))
        .collect();
    assert_eq!(annotations.len(), 3, "{}", r.debug());
    for (a, (rule, line, col)) in annotations.iter().zip(three_findings()) {
        assert!(
            a.starts_with(&format!(
                "::error title=lint%3A {rule},file=migrations/0002_unsafe.sql,line={line},col={col}::"
            )),
            "{a}"
        );
        assert!(a.contains("%0AFix: "), "the fix travels with it: {a}");
    }
    assert!(
        r.summary
            .starts_with("## pgrollout lint — 3 error(s), 0 warning(s), 0 info"),
        "{}",
        r.summary
    );
    assert!(
        r.summary.contains(
            "| error | `column-type-rewrite` | `migrations/0002_unsafe.sql:3:44` | ALTER COLUMN"
        ),
        "{}",
        r.summary
    );
    // The findings are not listed a second time under "Problems".
    assert!(!r.summary.contains("### Problems"), "{}", r.summary);
}

#[test]
fn json_shape_is_versioned() {
    let w = Workspace::new(&[("0002_unsafe.sql", UNSAFE)]);
    let r = w.run(&["lint", "--format", "json"], &[]);
    assert_eq!(r.code, 1, "{}", r.debug());
    let v = json(&r);
    assert!(
        r.stdout
            .trim_start()
            .starts_with("{\n  \"format_version\": 1,"),
        "{}",
        r.stdout
    );
    assert_eq!(
        v["counts"],
        serde_json::json!({"error": 3, "warning": 0, "info": 0, "total": 3})
    );
    assert_eq!(v["files"], 1);
    assert_eq!(v["fail_on"], "error");
    assert_eq!(v["failed"], true);
    let f = &v["findings"][1];
    let keys: Vec<&String> = f.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["col", "fix", "line", "message", "path", "rule", "severity", "table"]
    );
    assert_eq!(f["path"], "migrations/0002_unsafe.sql");
    assert_eq!(f["table"], "orders");
    let got: Vec<_> = found(&v)
        .into_iter()
        .map(|(r, l, c, _)| (r, l as u32, c as u32))
        .collect();
    let want: Vec<_> = three_findings()
        .into_iter()
        .map(|(r, l, c)| (r.to_string(), l, c))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn files_are_resolved_against_the_set() {
    let w = Workspace::new(&[("0001_base.sql", BASE), ("0002_unsafe.sql", UNSAFE)]);
    let r = w.run(
        &["lint", "--format", "json", "./migrations/0002_unsafe.sql"],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.debug());
    assert_eq!(json(&r)["files"], 1);
    assert_eq!(json(&r)["counts"]["total"], 3);

    w.write("stray.sql", UNSAFE);
    let r = w.run(&["lint", "stray.sql"], &[]);
    assert_eq!(r.code, 2, "{}", r.debug());
    assert!(
        r.stderr
            .contains("error: stray.sql is not a migration file of migrations"),
        "{}",
        r.debug()
    );
    let r = w.run(&["lint", "migrations/0003_nope.sql"], &[]);
    assert_eq!(r.code, 2, "{}", r.debug());
    assert!(
        r.stderr.contains("migrations/0003_nope.sql: no such file"),
        "{}",
        r.debug()
    );
}

#[test]
fn pending_only_with_a_database_and_all_with_all() {
    let db = common::fresh_db();
    let w = Workspace::new(&[("0001_base.sql", BASE), ("0002_unsafe.sql", UNSAFE)]);
    let url = db.url.as_str();
    let r = w.run(&["apply", "--target", "0001"], &[("DATABASE_URL", url)]);
    assert_eq!(r.code, 0, "{}", r.debug());

    let r = w.run(&["lint", "--format", "json"], &[("DATABASE_URL", url)]);
    assert_eq!(r.code, 0, "{}", r.debug());
    let v = json(&r);
    assert_eq!(v["files"], 1, "only 0002 is pending");
    assert!(found(&v).iter().all(|f| f.0 != "prefer-text-field"));

    let r = w.run(
        &["lint", "--all", "--format", "json"],
        &[("DATABASE_URL", url)],
    );
    let v = json(&r);
    assert_eq!(v["files"], 2);
    assert!(
        found(&v)
            .iter()
            .any(|f| f.0 == "prefer-text-field" && f.1 == 1),
        "{}",
        r.stdout
    );

    // Without a database: every file.
    let r = w.run(&["lint", "--format", "json"], &[]);
    assert_eq!(json(&r)["files"], 2);

    // Everything applied: nothing to lint.
    let r = w.run(&["apply"], &[("DATABASE_URL", url)]);
    assert_eq!(r.code, 0, "{}", r.debug());
    let r = w.run(&["lint"], &[("DATABASE_URL", url)]);
    assert_eq!(r.code, 0, "{}", r.debug());
    assert_eq!(
        r.stdout,
        "✓ nothing to lint: no pending migrations (pass --all to lint every file)\n"
    );
}

#[test]
fn live_context_shows_sizes_raises_and_downgrades() {
    let db = common::fresh_db();
    let later = "CREATE TABLE later (id bigint PRIMARY KEY, x int);\n";
    let touches =
        "-- migrate:up\nCREATE INDEX later_x ON later (x);\nCREATE INDEX ghosts_x ON ghosts (x);\n";
    let w = Workspace::new(&[
        ("0001_base.sql", BASE),
        ("0002_unsafe.sql", UNSAFE),
        ("0003_later.sql", later),
        ("0004_touches.sql", touches),
    ]);
    let url = db.url.as_str();
    let r = w.run(&["apply", "--target", "0001"], &[("DATABASE_URL", url)]);
    assert_eq!(r.code, 0, "{}", r.debug());
    common::exec(
        url,
        "INSERT INTO users SELECT g, 'u' FROM generate_series(1, 100) g;\n\
         INSERT INTO orders SELECT g, 1 + g % 100, g FROM generate_series(1, 5000) g;\n\
         ANALYZE users; ANALYZE orders;",
    );
    // `later` exists now, yet 0003 (pending) creates it before 0004 runs.
    common::exec(url, "CREATE TABLE public.later (id int, x int);");

    let r = w.run(&["lint", "--format", "json"], &[("DATABASE_URL", url)]);
    assert_eq!(r.code, 0, "{}", r.debug());
    let v = json(&r);
    let msg = |file: &str, rule: &str, line: u64| -> (String, String) {
        let path = format!("migrations/{file}");
        let f = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path.as_str() && f["rule"] == rule && f["line"] == line)
            .unwrap_or_else(|| panic!("no {rule} at {file}:{line}: {}", r.stdout));
        (
            f["message"].as_str().unwrap().to_string(),
            f["severity"].as_str().unwrap().to_string(),
        )
    };
    let (m, sev) = msg("0002_unsafe.sql", "column-type-rewrite", 3);
    assert!(
        m.contains("rewrites `orders` (5 k rows, ") && m.contains("under ACCESS EXCLUSIVE"),
        "{m}"
    );
    assert_eq!(sev, "warning", "far below the default 1 GB threshold");
    let (m, sev) = msg("0004_touches.sql", "require-concurrent-index-creation", 3);
    assert!(m.contains("does not exist yet"), "ghosts: {m}");
    assert_eq!(sev, "info");
    let (m, sev) = msg("0004_touches.sql", "require-concurrent-index-creation", 2);
    assert!(m.contains("does not exist yet"), "later: {m}");
    assert_eq!(sev, "info");

    // A tiny threshold from the pipeline file turns the locking warning into an error.
    w.write(
        "pgrollout.yml",
        "settings:\n  lint_size_threshold: 8kB\nenvironments:\n  staging:\n    database_url_env: STAGING_URL\n    steps: [lint]\n",
    );
    let r = w.run(&["lint", "--format", "json"], &[("DATABASE_URL", url)]);
    assert_eq!(r.code, 1, "{}", r.debug());
    let v = json(&r);
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "column-type-rewrite")
        .unwrap();
    assert_eq!(f["severity"], "error", "{}", r.stdout);
}

#[test]
fn pipeline_file_disables_and_overrides_rules() {
    let w = Workspace::new(&[("0002_unsafe.sql", UNSAFE)]);
    w.write(
        "pgrollout.yml",
        "settings:\n  lint_disable: [require-concurrent-index-creation]\n  lint_severity: { column-type-rewrite: warning, require-not-valid-foreign-key: warning }\n\
         environments:\n  staging:\n    database_url_env: STAGING_URL\n    settings:\n      lint_severity: { require-not-valid-foreign-key: info }\n    steps: [lint]\n",
    );
    let r = w.run(&["lint", "--format", "json"], &[]);
    assert_eq!(r.code, 0, "warnings only now: {}", r.debug());
    let v = json(&r);
    let rules: Vec<_> = found(&v).into_iter().map(|(r, _, _, s)| (r, s)).collect();
    assert_eq!(
        rules,
        [
            ("column-type-rewrite".to_string(), "warning".to_string()),
            (
                "require-not-valid-foreign-key".to_string(),
                "warning".to_string()
            )
        ]
    );
    // --env merges the environment's settings over the top-level ones (a whole key
    // replaces the other).
    let r = w.run(&["lint", "--env", "staging", "--format", "json"], &[]);
    assert_eq!(r.code, 1, "{}", r.debug());
    let rules: Vec<_> = found(&json(&r))
        .into_iter()
        .map(|(r, _, _, s)| (r, s))
        .collect();
    assert_eq!(
        rules,
        [
            ("column-type-rewrite".to_string(), "error".to_string()),
            (
                "require-not-valid-foreign-key".to_string(),
                "info".to_string()
            )
        ]
    );
}

#[test]
fn typo_in_a_rule_id_is_a_config_error() {
    let w = Workspace::new(&[("0002_unsafe.sql", UNSAFE)]);
    w.write(
        "pgrollout.yml",
        "settings:\n  lint_disable:\n    - require-concurent-index-creation\nenvironments:\n  staging:\n    database_url_env: STAGING_URL\n    steps: [lint]\n",
    );
    let r = w.run(&["lint"], &[]);
    assert_eq!(r.code, 2, "{}", r.debug());
    // Once, with its position once.
    assert_eq!(
        r.stderr.trim_end(),
        "pgrollout.yml:3:7: error: settings: unknown lint rule `require-concurent-index-creation` (did you mean `require-concurrent-index-creation`?) (the rules are listed in docs/lint-rules.md)",
        "{}",
        r.debug()
    );
}

#[test]
fn pipeline_lint_step_reports_the_same_way() {
    let db = common::fresh_db();
    let w = Workspace::new(&[("0001_base.sql", BASE), ("0002_unsafe.sql", UNSAFE)]);
    w.write(
        "pgrollout.yml",
        "environments:\n  staging:\n    database_url_env: STAGING_URL\n    settings: { lint_fail_on: warning }\n    steps: [lint]\n",
    );
    let r = w.run(
        &["apply", "--target", "0001"],
        &[("DATABASE_URL", db.url.as_str())],
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    let r = w
        .command()
        .runner_files(w.dir.path())
        .args(["pipeline", "run", "--env", "staging"])
        .env("STAGING_URL", &db.url)
        .run();
    assert_eq!(r.code, 1, "{}", r.debug());
    let annotations: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("::warning title=lint%3A "))
        .collect();
    assert_eq!(annotations.len(), 3, "only the pending 0002: {}", r.debug());
    assert!(
        annotations[1].contains("file=migrations/0002_unsafe.sql,line=3,col=44::"),
        "{}",
        annotations[1]
    );
    assert!(
        annotations[1].contains("`orders` (row count unknown, "),
        "live context in the step too: {}",
        annotations[1]
    );
    assert!(r.summary.contains("### Lint findings"), "{}", r.summary);
    assert!(
        r.summary
            .contains("3 finding(s) at or above lint_fail_on (warning)"),
        "{}",
        r.summary
    );
}

/// Every statement of every extension script PostgreSQL 15 ships parses with the
/// linter's parser; the psql meta-commands (`\echo Use "CREATE EXTENSION …"`) are
/// reported, once each; nothing panics.
#[test]
fn lints_postgresql_extension_scripts_without_parse_failures() {
    use pgrollout::lint::{lint_migration, LintOptions};
    use pgrollout::migration::{Migration, Version};
    let dir = Path::new("/usr/share/postgresql/15/extension");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (install the Debian package postgresql-15)",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    assert!(files.len() >= 100, "{} scripts", files.len());
    let (mut statements, mut findings, mut meta, mut meta_lines) = (0, 0, 0, 0);
    // `@extowner@` and `@extschema@` are substituted by CREATE EXTENSION before the
    // server parses the script: statements holding them are not valid SQL as written.
    let mut placeholders = Vec::new();
    let mut syntax = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let text = std::fs::read_to_string(path).unwrap();
        meta_lines += text
            .lines()
            .filter(|l| l.trim_start().starts_with('\\'))
            .count();
        let version = Version {
            text: format!("{i}"),
            value: i as u128,
        };
        let m = Migration::load(version, "ext".into(), path, None)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        statements += m.statements().count();
        // Extension scripts have no down SQL by design; `require-down` is not what
        // this test is about.
        let opts = LintOptions {
            disabled: vec!["require-down".into()],
            ..LintOptions::default()
        };
        let f = lint_migration(&m, &opts);
        findings += f.len();
        meta += f.iter().filter(|f| f.rule == "psql-meta-command").count();
        for f in f.iter().filter(|f| f.rule == "syntax-error") {
            let line = text.lines().nth(f.line as usize - 1).unwrap_or("");
            let at = format!("{}:{}: {}", f.path.display(), f.line, f.message);
            if line.contains("@extowner@") || line.contains("@extschema@") {
                placeholders.push(at);
            } else {
                syntax.push(at);
            }
        }
    }
    eprintln!(
        "{} scripts, {statements} statements, {findings} findings, {meta} meta-commands",
        files.len()
    );
    assert!(
        syntax.is_empty(),
        "valid SQL failed to parse:\n{}",
        syntax.join("\n")
    );
    assert_eq!(
        placeholders,
        ["/usr/share/postgresql/15/extension/plpgsql--1.0.sql:18: syntax error at or near \"@\""]
    );
    assert_eq!(meta, meta_lines, "one finding per psql meta-command");
    // The counts of the postgresql-15 package's scripts: only the meta-commands and the
    // placeholder statement are findings (extension scripts create what they touch).
    assert_eq!(
        (files.len(), statements, meta, findings),
        (152, 3083, 151, 152)
    );
}

/// Issue 12's first "done when", offline: 001 creates the tables, 002 changes three
/// column types (two rewrite, `varchar(20) → text` does not), builds an index without
/// CONCURRENTLY and adds a foreign key without NOT VALID. `lint` reports exactly the two
/// rewrites, the index and the foreign key, each at its line, and exits 1 — linting
/// every file, or only 002 (whose earlier migrations are read for the model).
#[test]
fn done_when_offline_model_knows_the_old_types() {
    let base = "CREATE TABLE customers (id uuid PRIMARY KEY, name text NOT NULL);\n\
CREATE TABLE orders (id bigint primary key, total numeric, label varchar(20), customer_id uuid);\n";
    let change = "-- migrate:up\n\
ALTER TABLE orders ALTER COLUMN total TYPE text;\n\
ALTER TABLE orders ALTER COLUMN customer_id TYPE text;\n\
ALTER TABLE orders ALTER COLUMN label TYPE text;\n\
CREATE INDEX orders_customer ON orders (customer_id);\n\
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);\n\
-- migrate:down\n\
SELECT 1;\n";
    let w = Workspace::new(&[("001_base.sql", base), ("002_change.sql", change)]);
    let want = vec![
        (
            "column-type-rewrite".to_string(),
            2,
            44,
            "error".to_string(),
        ),
        (
            "column-type-rewrite".to_string(),
            3,
            50,
            "error".to_string(),
        ),
        (
            "require-concurrent-index-creation".to_string(),
            5,
            1,
            "error".to_string(),
        ),
        (
            "require-not-valid-foreign-key".to_string(),
            6,
            24,
            "error".to_string(),
        ),
    ];
    for args in [
        &["lint", "--format", "json"][..],
        &["lint", "--all", "--format", "json"][..],
        &["lint", "--format", "json", "migrations/002_change.sql"][..],
    ] {
        let r = w.run(args, &[]);
        assert_eq!(r.code, 1, "{args:?}: {}", r.debug());
        let v = json(&r);
        // 001's own findings (no down section, `varchar(20)`) are not what this is about.
        let got: Vec<_> = found(&v)
            .into_iter()
            .filter(|f| f.0 != "require-down" && f.0 != "prefer-text-field")
            .collect();
        assert_eq!(got, want, "{args:?}: {}", r.stdout);
        let msgs: Vec<&str> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "column-type-rewrite")
            .map(|f| f["message"].as_str().unwrap())
            .collect();
        assert!(
            msgs[0].ends_with("numeric → text is not binary-coercible"),
            "{}",
            msgs[0]
        );
        assert!(
            msgs[1].ends_with("uuid → text is not binary-coercible"),
            "{}",
            msgs[1]
        );
    }
}

/// The false-positive record the severity policy keeps: nothing is reported for a table
/// created earlier in the same migration, for widenings the model can prove
/// binary-coercible, or — as a missing NOT VALID — for a UNIQUE constraint, which cannot
/// be NOT VALID. A table from an earlier migration is an existing one.
#[test]
fn no_findings_for_new_tables_widenings_and_unique() {
    let base = "CREATE TABLE customers (id bigint PRIMARY KEY, name varchar(40), code varchar(8), amount numeric(10,2));\n";
    let safe = "-- migrate:up\n\
CREATE TABLE invoices (id bigint PRIMARY KEY, customer_id bigint, total numeric);\n\
CREATE INDEX invoices_customer ON invoices (customer_id);\n\
ALTER TABLE invoices ADD CONSTRAINT invoices_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);\n\
ALTER TABLE invoices ALTER COLUMN total TYPE bigint;\n\
ALTER TABLE customers ALTER COLUMN name TYPE varchar(80);\n\
ALTER TABLE customers ALTER COLUMN name TYPE text;\n\
ALTER TABLE customers ALTER COLUMN code TYPE varchar;\n\
ALTER TABLE customers ALTER COLUMN amount TYPE numeric(14,2);\n\
-- migrate:down\n\
SELECT 1;\n";
    let unique = "-- migrate:up\n\
ALTER TABLE customers ADD CONSTRAINT customers_code_key UNIQUE (code);\n\
CREATE INDEX customers_name ON customers (name);\n\
-- migrate:down\n\
SELECT 1;\n";
    let w = Workspace::new(&[
        ("001_base.sql", base),
        ("002_safe.sql", safe),
        ("003_unique.sql", unique),
    ]);
    let r = w.run(&["lint", "--format", "json"], &[]);
    let v = json(&r);
    let got: Vec<_> = found(&v)
        .into_iter()
        .filter(|f| f.0 != "require-down" && f.0 != "prefer-text-field")
        .map(|(rule, line, _, sev)| (rule, line, sev))
        .collect();
    assert_eq!(
        got,
        [
            (
                "require-unique-using-index".to_string(),
                2,
                "error".to_string()
            ),
            (
                "require-concurrent-index-creation".to_string(),
                3,
                "error".to_string()
            ),
        ],
        "{}",
        r.stdout
    );
    assert_eq!(r.code, 1, "{}", r.debug());
}

/// Offline, `lint` parses each file as it lints it, a few files ahead on every core: the
/// schema model still sees every earlier file in version order (a type change in the
/// last of 60 files knows the column's type from the first), and the findings come out
/// in file order.
#[test]
fn files_parsed_as_they_are_linted_keep_the_model_and_the_order() {
    let mut files: Vec<(String, String)> = vec![(
        "0001_accounts.sql".into(),
        "CREATE TABLE accounts (id bigint PRIMARY KEY, token uuid NOT NULL);\n".into(),
    )];
    for i in 2..60 {
        files.push((
            format!("{i:04}_t{i}.sql"),
            format!("CREATE TABLE t{i} (id bigint PRIMARY KEY, v text);\nCREATE INDEX t{i}_v ON accounts (id);\n"),
        ));
    }
    files.push((
        "0060_token_text.sql".into(),
        "ALTER TABLE accounts ALTER COLUMN token TYPE text;\n".into(),
    ));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    let w = Workspace::new(&refs);
    let r = w.run(&["lint", "--all", "--format", "json"], &[]);
    assert_eq!(r.code, 1, "{}", r.debug());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap();
    let paths: Vec<&str> = findings
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "findings in file order");
    // Each of files 2–59 indexes a table it did not create: that finding once each.
    for i in 2..60 {
        let name = format!("{i:04}_t{i}.sql");
        let index = findings
            .iter()
            .filter(|f| f["path"].as_str().unwrap().ends_with(&name))
            .filter(|f| f["rule"] == "require-concurrent-index-creation")
            .count();
        assert_eq!(index, 1, "{name}: {}", r.stdout);
    }
    let last: Vec<_> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"].as_str().unwrap().ends_with("0060_token_text.sql"))
        .collect();
    assert!(
        last.iter().any(|f| f["rule"] == "column-type-rewrite"),
        "uuid → text is a rewrite, known from file 1: {last:?}"
    );
}

/// A file that cannot be split (an unterminated quote), found while linting: every such
/// file is named, at its line, and no findings are reported — as when they were read.
#[test]
fn a_file_that_cannot_be_split_stops_lint_naming_each_one() {
    let mut files: Vec<(String, String)> = (1..30)
        .map(|i| {
            (
                format!("{i:04}_t{i}.sql"),
                format!("CREATE TABLE t{i} (id bigint PRIMARY KEY);\n"),
            )
        })
        .collect();
    files[4].1 = "CREATE TABLE bad5 (v text DEFAULT 'oops);\n".into();
    files[20].1 = "SELECT 1;\nSELECT $x$ never closed;\n".into();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    let w = Workspace::new(&refs);
    for format in ["text", "json"] {
        let r = w.run(&["lint", "--all", "--format", format], &[]);
        assert_eq!(r.code, 1, "{}", r.debug());
        assert!(r.stderr.contains("0005_t5.sql"), "{}", r.debug());
        assert!(r.stderr.contains("0021_t21.sql"), "{}", r.debug());
        assert!(
            r.stderr
                .contains("2 problem(s) reading the migration files"),
            "{}",
            r.debug()
        );
        assert!(!r.stdout.contains("finding"), "{}", r.debug());
    }
}
