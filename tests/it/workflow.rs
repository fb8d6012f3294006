//! The Action as a real workflow runs it: a step in a subdirectory of the workspace,
//! exit codes and outputs a later step reads, the backup a later step uploads, smoke
//! commands' output, PL/pgSQL errors at their line, the example workflows and the sample
//! pipeline file, `report` given a URL in a directory with a pipeline file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::actions::{applied, dispatch, push_staging, tracking_schema_exists, Workspace};
use crate::common::{self, Pgrollout, Stream};

const PIPELINE: &str = r#"
migrations: migrations
environments:
  staging:
    database_url_env: STAGING_DATABASE_URL
    on: { branches: [staging] }
    steps: [validate, dry-run, apply, verify]
  production:
    database_url_env: PROD_DATABASE_URL
    on: { tags: ["v*.*.*"], dispatch: { confirm: MIGRATE-PRODUCTION } }
    steps: [health, backup-marker, dry-run, review-delay: 30s, apply, verify]
"#;

const USERS: &str = "CREATE TABLE users (id int PRIMARY KEY, email text);\n";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn yaml(path: &str) -> serde_yaml_ng::Value {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A push of the release tag v1.0.0 (production) with its URL set, no review delay.
fn release(ws: &Workspace, url: &str, vars: &[(&str, &str)]) -> common::Run {
    ws.command()
        .args(["pipeline", "run", "--review-delay", "0s"])
        .envs(&[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/tags/v1.0.0"),
            ("PROD_DATABASE_URL", url),
        ])
        .envs(vars)
        .run()
}

/// A workspace whose pipeline file and migrations live in `db/`, run by the action with
/// `working-directory: db` from the workspace root, as the runner starts the container.
fn in_subdirectory(
    pipeline: &str,
    migrations: &[(&str, &str)],
    vars: &[(&str, &str)],
) -> common::Run {
    let root = tempfile::tempdir().unwrap();
    let db_dir = root.path().join("db");
    std::fs::create_dir_all(db_dir.join("migrations")).unwrap();
    std::fs::write(db_dir.join("pgrollout.yml"), pipeline).unwrap();
    for (name, sql) in migrations {
        std::fs::write(db_dir.join("migrations").join(name), sql).unwrap();
    }
    Pgrollout::new()
        .cwd(root.path())
        .runner_files(root.path())
        .env("GITHUB_WORKSPACE", root.path())
        .env("PGROLLOUT_CONNECT_TIMEOUT", "5s")
        .env("INPUT_WORKING-DIRECTORY", "db")
        .arg("action")
        .envs(vars)
        .run()
}

/// Defect 1: with `working-directory: db`, annotations name `db/migrations/…` and
/// `db/pgrollout.yml`, as GitHub resolves them from the repository root.
#[test]
fn annotations_are_repository_relative_under_a_working_directory() {
    let db = common::fresh_db();
    let r = in_subdirectory(
        PIPELINE,
        &[
            ("0001_users.sql", USERS),
            ("0002_bad.sql", "\nSELECT no_such_column FROM users;\n"),
        ],
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/staging"),
            ("STAGING_DATABASE_URL", &db.url),
        ],
    );
    assert_eq!(r.code, 1, "{r}");
    let errors = r.annotations("error");
    assert_eq!(errors.len(), 1, "{r}");
    assert!(
        errors[0].contains(",file=db/migrations/0002_bad.sql,line=2,col=8::"),
        "{errors:?}"
    );
    assert!(
        r.summary.contains("db/migrations/0002_bad.sql:2:8"),
        "{}",
        r.summary
    );

    let r = in_subdirectory(
        "environments:\n  staging:\n    database_url_env: X\n    stpes: [apply]\n",
        &[],
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/staging"),
        ],
    );
    assert_eq!(r.code, 2, "{r}");
    let errors = r.annotations("error");
    assert!(
        errors[0].contains(",file=db/pgrollout.yml,line=4,col=5::"),
        "{errors:?}"
    );
}

/// Defect 4: an unset URL variable and a URL that does not parse are configuration
/// errors (exit 2), and say so in the `status` output with the environment.
#[test]
fn an_unset_or_bad_database_url_exits_2_with_status_and_environment() {
    let ws = Workspace::new(PIPELINE, &[("0001_users.sql", USERS)]);
    let unset = ws.run(
        &["pipeline", "run"],
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/staging"),
        ],
    );
    let bad = push_staging(&ws, "postgres://app:pw@db.example:notaport/app");
    for r in [unset, bad] {
        assert_eq!(r.code, 2, "{r}");
        assert_eq!(r.outputs["status"], "config-error", "{r}");
        assert_eq!(r.outputs["environment"], "staging", "{r}");
    }
}

/// Defect 4: a pipeline-file error writes `status` too, with the environment the
/// action's input names.
#[test]
fn a_pipeline_file_error_writes_the_status_output() {
    let ws = Workspace::new("environments: [staging]\n", &[]);
    let r = ws.run(&["action"], &[("INPUT_ENVIRONMENT", "staging")]);
    assert_eq!(r.code, 2, "{r}");
    assert_eq!(
        r.outputs.get("status").map(String::as_str),
        Some("config-error"),
        "{r}"
    );
    assert_eq!(
        r.outputs.get("environment").map(String::as_str),
        Some("staging"),
        "{r}"
    );
}

/// Defect 4: a usage error in the action's inputs (before any command runs) writes
/// `status` too.
#[test]
fn a_usage_error_in_the_action_inputs_writes_the_status_output() {
    let ws = Workspace::new(PIPELINE, &[]);
    let r = ws.run(&["action"], &[("INPUT_ARGS", "status --no-such-flag")]);
    assert_eq!(r.code, 2, "{r}");
    assert_eq!(
        r.outputs.get("status").map(String::as_str),
        Some("config-error"),
        "{r}"
    );
    assert!(r.outputs["error"].contains("--no-such-flag"), "{r}");
}

/// Defect 4: a refused run names the refused environment and claims nothing it did
/// not check: no `pending-count=0`, no "Dry run: no".
#[test]
fn a_refused_run_reports_its_environment_and_nothing_unchecked() {
    let db = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &[("0001_users.sql", USERS)]);
    let r = dispatch(
        &ws,
        &db.url,
        serde_json::json!({"environment": "production", "dry_run": "false"}),
    );
    assert_eq!(r.code, 3, "{r}");
    assert_eq!(r.outputs["status"], "refused");
    assert_eq!(r.outputs["environment"], "production", "{r}");
    assert!(
        r.outputs.get("pending-count").is_none_or(|v| v.is_empty()),
        "{r}"
    );
    assert!(!r.summary.contains("**Dry run:** no"), "{}", r.summary);
    assert!(!r.summary.contains("**Pending:** 0"), "{}", r.summary);
    assert!(r.summary.contains("production"), "{}", r.summary);
    assert!(!tracking_schema_exists(&db.url));
}

/// Defect 4: the failed migration's version, file:line and error text are outputs.
#[test]
fn a_failed_migration_is_described_in_outputs() {
    let db = common::fresh_db();
    let ws = Workspace::new(
        PIPELINE,
        &[
            ("0001_users.sql", USERS),
            (
                "0002_dupe.sql",
                "INSERT INTO users VALUES (1, 'a');\nINSERT INTO users VALUES (1, 'b');\n",
            ),
        ],
    );
    let r = push_staging(&ws, &db.url);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(r.outputs["failed-version"], "0002", "{r}");
    assert_eq!(
        r.outputs["failed-location"], "migrations/0002_dupe.sql:2:1",
        "{r}"
    );
    assert!(
        r.outputs["error"].contains("duplicate key value violates unique constraint"),
        "{r}"
    );
    // A run that did not fail leaves them empty.
    let ok = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &[("0001_users.sql", USERS)]);
    let r = push_staging(&ws, &ok.url);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.outputs["failed-version"], "", "{r}");
    assert_eq!(r.outputs["error"], "", "{r}");
}

/// Defect 6: the backup marker is taken after the review delay, right before apply: a
/// write made during the delay is older than the marker (restoring to the marker keeps it).
#[test]
fn the_backup_marker_is_taken_after_the_review_delay() {
    let db = common::fresh_db();
    common::exec(&db.url, "CREATE TABLE orders (id int)");
    let ws = Workspace::new(PIPELINE, &[("0001_users.sql", USERS)]);
    let mut running = ws
        .command()
        .args(["pipeline", "run", "--review-delay", "5s"])
        .envs(&[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/tags/v1.0.0"),
            ("PROD_DATABASE_URL", &db.url),
        ])
        .spawn();
    running.wait_for_line(Stream::Stdout, "the countdown", |l| {
        l.contains("applying in")
    });
    let during = common::query_strings(
        &db.url,
        "INSERT INTO orders VALUES (1); SELECT txid_current()",
    )[0][0]
        .clone()
        .unwrap();
    let r = running.wait();
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(applied(&db.url), ["0001"]);
    let marker_txid = common::query_strings(
        &db.url,
        &format!(
            "SELECT txid FROM pgrollout.backup_markers WHERE id = {}",
            r.outputs["backup-marker"]
        ),
    )[0][0]
        .clone()
        .unwrap();
    assert!(
        marker_txid.parse::<i64>().unwrap() > during.parse::<i64>().unwrap(),
        "the marker (txid {marker_txid}) was taken before the write made during the delay (txid {during}):\n{r}"
    );
}

/// Defect 6: the dump is 0600, in the workspace where a later step can upload it, its
/// path an output; the summary's restore command names the file a download gives.
#[test]
fn the_dump_is_private_uploadable_and_an_output() {
    let db = common::fresh_db();
    let ws = Workspace::new(
        &PIPELINE.replace("backup-marker,", "backup-marker: { dump: true },"),
        &[("0001_users.sql", USERS)],
    );
    let r = release(
        &ws,
        &db.url,
        &[("GITHUB_WORKSPACE", ws.dir.path().to_str().unwrap())],
    );
    assert_eq!(r.code, 0, "{r}");
    let file = &r.outputs["backup-file"];
    assert!(
        !file.is_empty() && !file.starts_with('/'),
        "workspace-relative: {r}"
    );
    let path = ws.dir.path().join(file);
    let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}\n{r}", path.display()));
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "{}",
        path.display()
    );
    assert!(
        !path.starts_with(ws.path("runner_temp")),
        "{}",
        path.display()
    );
    let base = path.file_name().unwrap().to_str().unwrap();
    // The restore command names the file a download of the artifact gives.
    assert!(
        r.summary
            .contains(&format!("--no-owner -d \"$DATABASE_URL\" '{base}'")),
        "{}",
        r.summary
    );
}

/// Defect 6: a failure with nothing applied says "fix the data and re-run", with no
/// point-in-time recovery advice; PITR advice comes once something was applied.
#[test]
fn restore_advice_only_when_something_was_applied() {
    let db = common::fresh_db();
    common::exec(&db.url, "CREATE TABLE users (id int PRIMARY KEY, email text); INSERT INTO users VALUES (1, 'a'), (2, 'a')");
    let ws = Workspace::new(
        PIPELINE,
        &[(
            "0001_unique.sql",
            "CREATE UNIQUE INDEX users_email ON users (email);\n",
        )],
    );
    let r = release(&ws, &db.url, &[]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.summary.contains("fix the data and re-run"),
        "{}",
        r.summary
    );
    assert!(
        !r.summary.contains("Point-in-time recovery"),
        "{}",
        r.summary
    );

    // Without a rehearsal, 0001 is applied before 0002 fails.
    let db = common::fresh_db();
    let ws = Workspace::new(
        &PIPELINE.replace("dry-run, review-delay", "review-delay"),
        &[("0001_users.sql", USERS), ("0002_bad.sql", "SELECT 1/0;\n")],
    );
    let r = release(&ws, &db.url, &[]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.summary.contains("Point-in-time recovery"),
        "{}",
        r.summary
    );
    assert!(
        !r.summary.contains("fix the data and re-run"),
        "{}",
        r.summary
    );
}

/// Defect 7: a failing smoke-test command shows the last lines of its stdout and
/// stderr (bounded, the password masked) in the log and the summary.
#[test]
fn a_failing_smoke_command_shows_the_end_of_its_output() {
    let db = common::fresh_db();
    let pipeline = r#"
environments:
  staging:
    database_url_env: STAGING_DATABASE_URL
    on: { branches: [staging] }
    steps:
      - apply
      - smoke-test:
          - name: api health
            command: 'echo "checking the api"; for i in $(seq 1 60); do echo "curl: line $i" >&2; done; echo "url was $DATABASE_URL" >&2; exit 22'
"#;
    let ws = Workspace::new(pipeline, &[("0001_users.sql", USERS)]);
    // Trust authentication ignores the password; it is there to be masked.
    let url = db.url.replacen("postgres@", "postgres:smoke-s3cret@", 1);
    assert_ne!(url, db.url);
    let r = push_staging(&ws, &url);
    assert_eq!(r.code, 1, "{r}");
    for text in [&r.stdout, &r.summary] {
        assert!(text.contains("curl: line 60"), "{r}");
        assert!(text.contains("checking the api"), "{r}");
        assert!(!text.contains("curl: line 1\n"), "bounded: {r}");
    }
    assert!(r.stdout.contains("url was postgres://postgres:***@"), "{r}");
    let leaks = |text: &str| {
        text.lines()
            .any(|l| l.contains("smoke-s3cret") && !l.starts_with("::add-mask::"))
    };
    assert!(!leaks(&r.all()) && !leaks(&r.summary), "{r}");
    // One annotation for the one failed check.
    assert_eq!(r.annotations("error").len(), 1, "{r}");
}

/// Defect 8: a RAISE inside a DO block, and a failing statement inside a function
/// body, are annotated at their own line in the file.
#[test]
fn plpgsql_errors_are_annotated_at_their_line() {
    let db = common::fresh_db();
    let ws = Workspace::new(
        PIPELINE,
        &[(
            "0001_do.sql",
            "CREATE TABLE t (n int);\n\
             DO $$\n\
             DECLARE\n  c int;\n\
             BEGIN\n\
             \x20 SELECT count(*) INTO c FROM t;\n\
             \x20 IF c = 0 THEN\n\
             \x20   RAISE EXCEPTION 'table t is empty';\n\
             \x20 END IF;\n\
             END\n$$;\n",
        )],
    );
    let r = push_staging(&ws, &db.url);
    assert_eq!(r.code, 1, "{r}");
    let errors = r.annotations("error");
    assert!(
        errors[0].contains(",file=migrations/0001_do.sql,line=8,"),
        "the RAISE is on line 8: {errors:?}"
    );

    let db = common::fresh_db();
    let ws = Workspace::new(
        PIPELINE,
        &[(
            "0001_fn.sql",
            "CREATE TABLE t (n int);\n\
             CREATE FUNCTION fill() RETURNS void LANGUAGE plpgsql AS $body$\n\
             BEGIN\n\
             \x20 INSERT INTO t VALUES (1);\n\
             \x20 INSERT INTO missing VALUES (2);\n\
             END\n\
             $body$;\n\
             SELECT fill();\n",
        )],
    );
    let r = push_staging(&ws, &db.url);
    assert_eq!(r.code, 1, "{r}");
    let errors = r.annotations("error");
    assert!(
        errors[0].contains(",file=migrations/0001_fn.sql,line=5,"),
        "the failing INSERT is on line 5: {errors:?}"
    );
}

/// Defect 10: the dispatch menu of db-production.yml offers only environments the
/// sample pipeline file accepts by dispatch.
#[test]
fn the_dispatch_menu_offers_only_environments_that_accept_dispatch() {
    let wf = yaml("examples/workflows/db-production.yml");
    let sample = yaml("pgrollout.yml");
    let options = wf["on"]["workflow_dispatch"]["inputs"]["environment"]["options"]
        .as_sequence()
        .expect("an environment menu");
    assert!(!options.is_empty());
    for o in options {
        let name = o.as_str().unwrap();
        let env = &sample["environments"][name];
        assert!(
            env["on"]["dispatch"]["confirm"].is_string(),
            "the menu offers {name}, which pgrollout.yml does not accept by dispatch"
        );
    }
    let rollback = yaml("examples/workflows/db-rollback.yml");
    let default = rollback["on"]["workflow_dispatch"]["inputs"]["environment"]["default"]
        .as_str()
        .unwrap();
    assert!(!default.is_empty());
}

/// Defect 10: an environment that sets `lint_fail_on` has a `lint` step.
#[test]
fn lint_fail_on_comes_with_a_lint_step() {
    let sample = yaml("pgrollout.yml");
    for (name, env) in sample["environments"].as_mapping().unwrap() {
        if env["settings"]["lint_fail_on"].is_null() {
            continue;
        }
        let steps = env["steps"].as_sequence().unwrap();
        assert!(
            steps
                .iter()
                .any(|s| s.as_str() == Some("lint") || !s["lint"].is_null()),
            "{name:?} sets lint_fail_on but has no lint step"
        );
    }
}

/// Defect 10: db-production.yml grants write only to the job that needs it, its
/// `always()` steps do not connect to production when the gate refused the run, and
/// it uploads the dump.
#[test]
fn the_production_workflow_limits_writes_and_connections() {
    for file in [
        "examples/workflows/db-production.yml",
        "examples/workflows/db-staging.yml",
        "examples/workflows/db-rollback.yml",
    ] {
        let wf = yaml(file);
        let top = &wf["permissions"];
        if let Some(map) = top.as_mapping() {
            for (k, v) in map {
                assert_ne!(
                    v.as_str(),
                    Some("write"),
                    "{file}: workflow-level {k:?}: write"
                );
            }
        }
        for (job, def) in wf["jobs"].as_mapping().unwrap() {
            let steps = def["steps"].as_sequence().unwrap();
            for s in steps {
                let uses_pgrollout = s["uses"].as_str().is_some_and(|u| u.contains("pgrollout"));
                let is_main = s["id"].as_str() == Some("pgrollout");
                let cond = s["if"].as_str().unwrap_or_default();
                if uses_pgrollout && !is_main && cond.contains("always()") {
                    assert!(
                        cond.contains("steps.pgrollout.outputs.status") && cond.contains("refused"),
                        "{file}: job {job:?}: a step that connects after the gate must not run when it refused: if: {cond}"
                    );
                }
            }
        }
    }
    let wf = yaml("examples/workflows/db-production.yml");
    let migrate = &wf["jobs"]["migrate"];
    assert!(
        migrate["permissions"]["contents"].as_str() != Some("write"),
        "the migrate job needs no write access"
    );
    assert_eq!(
        wf["jobs"]["release"]["permissions"]["contents"].as_str(),
        Some("write")
    );
    let uploads_backup = migrate["steps"].as_sequence().unwrap().iter().any(|s| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/upload-artifact"))
            && s["with"]["path"]
                .as_str()
                .is_some_and(|p| p.contains("steps.pgrollout.outputs.backup-file"))
    });
    assert!(uploads_backup, "db-production.yml must upload the dump");
    let sample = yaml("pgrollout.yml");
    let dumps = sample["environments"]["production"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|s| s["backup-marker"]["dump"].as_bool() == Some(true));
    assert!(
        dumps,
        "the sample production environment takes the dump the workflow uploads"
    );
}

/// Defect 11: `report --database-url URL` (or DATABASE_URL) in a directory with a
/// pipeline file reads that database, and says so.
#[test]
fn report_with_an_explicit_url_reads_that_database() {
    let db = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &[("0001_users.sql", USERS)]);
    ws.run(&["apply"], &[("DATABASE_URL", &db.url)]).ok();
    for by_flag in [true, false] {
        let mut cmd = Pgrollout::new().cwd(ws.dir.path());
        cmd = if by_flag {
            cmd.database_url(&db.url)
        } else {
            cmd.env("DATABASE_URL", &db.url)
        };
        let r = cmd.args(["--format", "json", "report"]).run();
        assert_eq!(r.code, 0, "{r}");
        let v: serde_json::Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r}"));
        let envs = v["environments"].as_array().unwrap();
        assert_eq!(envs.len(), 1, "{r}");
        assert_eq!(envs[0]["name"].as_str(), Some(db.name.as_str()), "{r}");
        assert_eq!(envs[0]["reach"].as_str(), Some("ok"), "{r}");
        let said = if by_flag {
            "--database-url"
        } else {
            "DATABASE_URL"
        };
        assert!(
            r.stderr.contains(said) && r.stderr.contains("pgrollout.yml"),
            "{r}"
        );
    }
}
