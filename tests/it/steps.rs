//! The `rollback` and `drift` pipeline steps, the rollback instructions of a failed run,
//! and the `backup` command: the real binary, a simulated Actions runner, real PostgreSQL.

use crate::common;

use crate::common::actions::{applied, dispatch, push_staging, Workspace};
use crate::common::Run;

const PIPELINE: &str = r#"
migrations: migrations
environments:
  staging:
    database_url_env: STAGING_DATABASE_URL
    on: { branches: [staging] }
    steps: [apply, drift]
  production:
    database_url_env: PROD_DATABASE_URL
    on: { dispatch: { confirm: MIGRATE-PRODUCTION } }
    steps: [apply]
  production-rollback:
    database_url_env: PROD_DATABASE_URL
    on: { dispatch: { confirm: ROLLBACK-PRODUCTION } }
    steps: [health, backup-marker, rollback: { steps: 1 }, verify]
"#;

const USERS: &str = "-- migrate:up\nCREATE TABLE users (id int PRIMARY KEY, email text);\n-- migrate:down\nDROP TABLE users;\n";
const ORDERS: &str = "-- migrate:up\nCREATE TABLE orders (id int PRIMARY KEY);\n-- migrate:down\nDROP TABLE orders;\n";

/// The JSON result: all of stdout, even in Actions (the workflow commands go to stderr
/// when the result is machine-read).
fn json_of(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.debug()))
}

fn count(url: &str, sql: &str) -> i64 {
    common::query_strings(url, sql)[0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

/// Both migrations applied to production through the pipeline.
fn production_with_two(db: &str) -> Workspace {
    let ws = Workspace::new(
        PIPELINE,
        &[("0001_users.sql", USERS), ("0002_orders.sql", ORDERS)],
    );
    let r = dispatch(
        &ws,
        db,
        serde_json::json!({"environment": "production", "confirm": "MIGRATE-PRODUCTION", "dry_run": "false"}),
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    assert_eq!(applied(db), ["0001", "0002"]);
    ws
}

#[test]
fn rollback_step_on_confirmed_dispatch_rolls_back_one() {
    let db = common::fresh_db();
    let ws = production_with_two(&db.url);
    let r = dispatch(
        &ws,
        &db.url,
        serde_json::json!({"environment": "production-rollback", "confirm": "ROLLBACK-PRODUCTION", "dry_run": "false"}),
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    assert_eq!(applied(&db.url), ["0001"]);
    assert_eq!(r.outputs["status"], "success");
    assert_eq!(r.outputs["rolled-back"], "0002");
    assert_eq!(r.outputs["rolled-back-count"], "1");
    assert_eq!(r.outputs["applied-count"], "0");
    assert!(!r.outputs["backup-marker"].is_empty(), "{}", r.debug());
    assert!(
        r.stdout.contains("::group::pgrollout 3/4: rollback"),
        "{}",
        r.debug()
    );
    assert!(r.summary.contains("### Rolled back"), "{}", r.summary);
    assert!(
        r.summary
            .contains("| 0002 | orders | stored | rolled back |"),
        "{}",
        r.summary
    );
    assert!(
        r.summary.contains("| verify | ✅ passed |"),
        "{}",
        r.summary
    );
    assert!(
        r.summary.contains("1 migration(s) rolled back: 0002"),
        "{}",
        r.summary
    );
    assert_eq!(
        count(
            &db.url,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'orders'"
        ),
        0
    );
}

#[test]
fn rollback_step_in_a_dry_run_rehearses_and_writes_nothing() {
    let db = common::fresh_db();
    let ws = production_with_two(&db.url);
    let history = "SELECT count(*) FROM pgrollout.migration_history";
    let markers = "SELECT count(*) FROM pgrollout.backup_markers";
    let (h, m) = (count(&db.url, history), count(&db.url, markers));
    let r = dispatch(
        &ws,
        &db.url,
        serde_json::json!({"environment": "production-rollback", "confirm": "ROLLBACK-PRODUCTION"}),
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    assert_eq!(r.outputs["status"], "dry-run");
    assert_eq!(r.outputs["rolled-back-count"], "0");
    assert_eq!(r.outputs["rolled-back"], "");
    assert_eq!(applied(&db.url), ["0001", "0002"]);
    assert_eq!(count(&db.url, history), h);
    assert_eq!(count(&db.url, markers), m);
    assert!(
        r.summary.contains("| 0002 | orders | stored | rehearsed |"),
        "{}",
        r.summary
    );
    assert!(
        r.summary.contains("| rollback | ✅ passed |"),
        "{}",
        r.summary
    );
}

#[test]
fn rollback_step_needs_exactly_one_of_steps_or_to() {
    let db = common::fresh_db();
    for (step, says) in [
        (
            "rollback: { steps: 1, to: '0001' }",
            "exactly one of `steps: N` or `to: VERSION`",
        ),
        ("rollback: {}", "exactly one of"),
        ("rollback", "`rollback` needs how far to go"),
        ("rollback: { step: 1 }", "unknown field `step`"),
    ] {
        let file = format!(
            "environments:\n  prod:\n    database_url_env: PROD_DATABASE_URL\n    steps:\n      - {step}\n"
        );
        let ws = Workspace::new(&file, &[("0001_users.sql", USERS)]);
        let r = ws.run(
            &["pipeline", "run", "--env", "prod"],
            &[("PROD_DATABASE_URL", &db.url)],
        );
        assert_eq!(r.code, 2, "{step}: {}", r.debug());
        assert!(
            r.stderr.contains(says) || r.stdout.contains(says),
            "{step}: {}",
            r.debug()
        );
        assert!(
            r.stderr.contains("pgrollout.yml:") || r.stdout.contains("pgrollout.yml:"),
            "{step}: no file:line:col\n{}",
            r.debug()
        );
    }
}

#[test]
fn failed_run_names_the_rollback_command_and_shows_generated_sql() {
    let db = common::fresh_db();
    let ws = Workspace::new(
        "environments:\n  staging:\n    database_url_env: STAGING_DATABASE_URL\n    on: { branches: [staging] }\n    steps: [apply]\n",
        &[("0001_users.sql", USERS)],
    );
    let r = push_staging(&ws, &db.url);
    assert_eq!(r.code, 0, "{}", r.debug());
    ws.add("0002_orders.sql", ORDERS);
    ws.add(
        "0003_audit.sql",
        "-- migrate:up\nCREATE TABLE audit (id int);\n",
    );
    ws.add(
        "0004_broken.sql",
        "-- migrate:up\nSELECT 1/0;\n-- migrate:down\nSELECT 1;\n",
    );
    let r = push_staging(&ws, &db.url);
    assert_eq!(r.code, 1, "{}", r.debug());
    assert_eq!(applied(&db.url), ["0001", "0002", "0003"]);
    assert!(
        r.summary
            .contains("pgrollout rollback --steps 2 --allow-generated"),
        "{}",
        r.summary
    );
    assert!(
        r.summary
            .contains("pgrollout rollback --to 0001 --allow-generated"),
        "{}",
        r.summary
    );
    assert!(
        r.summary
            .contains("**Generated rollback of 0003** (GENERATED"),
        "{}",
        r.summary
    );
    assert!(r.summary.contains("DROP TABLE"), "{}", r.summary);
    assert!(r.summary.contains("audit"), "{}", r.summary);
    assert!(
        r.summary
            .contains("Applied by this run (newest first): 0003, 0002."),
        "{}",
        r.summary
    );
    if std::env::var_os("SHOW_SUMMARY").is_some() {
        eprintln!("{}", r.summary);
    }

    // With down sections for all of them, no flag and no generated SQL.
    let db = common::fresh_db();
    let ws = Workspace::new(
        "environments:\n  staging:\n    database_url_env: STAGING_DATABASE_URL\n    on: { branches: [staging] }\n    steps: [apply]\n",
        &[
            ("0001_users.sql", USERS),
            ("0002_orders.sql", ORDERS),
            ("0004_broken.sql", "-- migrate:up\nSELECT 1/0;\n"),
        ],
    );
    let r = push_staging(&ws, &db.url);
    assert_eq!(r.code, 1, "{}", r.debug());
    assert!(
        r.summary.contains("pgrollout rollback --steps 2`"),
        "{}",
        r.summary
    );
    assert!(!r.summary.contains("GENERATED"), "{}", r.summary);
    if std::env::var_os("SHOW_SUMMARY").is_some() {
        eprintln!("{}", r.summary);
    }
}

#[test]
fn drift_step_passes_when_clean_and_fails_on_a_column_added_by_hand() {
    let db = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &[("0001_users.sql", USERS)]);
    let r = push_staging(&ws, &db.url);
    assert_eq!(r.code, 0, "{}", r.debug());
    assert!(r.summary.contains("| drift | ✅ passed |"), "{}", r.summary);

    common::exec(&db.url, "ALTER TABLE users ADD COLUMN hotfix_flag boolean");
    let r = push_staging(&ws, &db.url);
    assert_eq!(r.code, 1, "{}", r.debug());
    let errors = r.annotations("error");
    assert!(
        errors.iter().any(|a| a.contains("hotfix_flag")),
        "{errors:#?}\n{}",
        r.debug()
    );
    assert!(r.summary.contains("| drift | ❌ failed |"), "{}", r.summary);
    assert!(r.summary.contains("hotfix_flag"), "{}", r.summary);
}

#[test]
fn drift_step_against_another_environment() {
    let staging = common::fresh_db();
    let prod = common::fresh_db();
    let file = "environments:\n  staging:\n    database_url_env: STAGING_DATABASE_URL\n    steps: [apply]\n  production:\n    database_url_env: PROD_DATABASE_URL\n    steps: [apply, drift: { source: staging }]\n";
    let ws = Workspace::new(file, &[("0001_users.sql", USERS)]);
    let vars = [
        ("STAGING_DATABASE_URL", staging.url.as_str()),
        ("PROD_DATABASE_URL", prod.url.as_str()),
    ];
    let r = ws.run(&["pipeline", "run", "--env", "staging"], &vars);
    assert_eq!(r.code, 0, "{}", r.debug());
    let r = ws.run(&["pipeline", "run", "--env", "production"], &vars);
    assert_eq!(r.code, 0, "{}", r.debug());
    common::exec(&prod.url, "CREATE INDEX users_email_idx ON users (email)");
    common::exec(&prod.url, "ALTER TABLE users DROP COLUMN email");
    let r = ws.run(&["pipeline", "run", "--env", "production"], &vars);
    assert_eq!(r.code, 1, "{}", r.debug());
    assert!(
        r.annotations("error").iter().any(|a| a.contains("email")),
        "{}",
        r.debug()
    );
    assert!(r.summary.contains("staging"), "{}", r.summary);
}

#[test]
fn drift_step_without_server_binaries_says_what_to_do() {
    let db = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &[("0001_users.sql", USERS)]);
    let r = ws.run(
        &["pipeline", "run"],
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/staging"),
            ("STAGING_DATABASE_URL", &db.url),
            // An empty directory: as in the container image, no initdb/pg_ctl.
            ("PGROLLOUT_PG_BIN", ws.path("runner_temp").to_str().unwrap()),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.debug());
    assert!(
        r.summary.contains(
            "drift against migrations needs the PostgreSQL server binaries (initdb/pg_ctl" // Messages are inert in the summary: their backticks are escaped.
        ) && r.summary.contains("use \\`drift: { source: staging }\\`"),
        "{}",
        r.summary
    );
}

#[test]
fn backup_command_records_a_marker_and_a_verified_dump() {
    let db = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &[("0001_users.sql", USERS)]);
    let r = ws.run(
        &[
            "--database-url",
            &db.url,
            "--format",
            "json",
            "backup",
            "--label",
            "before the split",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    let v: serde_json::Value = json_of(&r);
    let id = v["id"].as_i64().unwrap();
    assert!(v["wal_lsn"].is_string() && v["txid"].is_i64(), "{v}");
    assert_eq!(
        common::query_strings(
            &db.url,
            &format!("SELECT label FROM pgrollout.backup_markers WHERE id = {id}")
        )[0][0]
            .as_deref(),
        Some("before the split")
    );

    if which::which("pg_dump").is_err() {
        eprintln!("skipping --dump: no pg_dump on PATH");
        return;
    }
    let out = ws.path("dumps");
    std::fs::create_dir(&out).unwrap();
    let r = ws.run(
        &[
            "--database-url",
            &db.url,
            "--format",
            "json",
            "backup",
            "--dump",
            "--output-dir",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    let v: serde_json::Value = json_of(&r);
    let path = v["dump"]["path"].as_str().unwrap();
    assert!(path.starts_with(out.to_str().unwrap()), "{path}");
    let bytes = std::fs::read(path).unwrap();
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    assert_eq!(v["dump"]["sha256"].as_str(), Some(sha.as_str()));
    assert_eq!(v["dump"]["size_bytes"].as_u64(), Some(bytes.len() as u64));
    let stored = common::query_strings(
        &db.url,
        &format!(
            "SELECT dump_sha256, dump_size_bytes::text FROM pgrollout.backup_markers WHERE id = {}",
            v["id"]
        ),
    );
    assert_eq!(stored[0][0].as_deref(), Some(sha.as_str()));
    assert_eq!(stored[0][1], Some(bytes.len().to_string()));
}

/// A smoke-test query the server rejects: the log and the summary say where in the
/// query, with the server's SQLSTATE and its hint — not a bare "db error".
#[test]
fn a_failing_smoke_query_shows_sqlstate_hint_and_position() {
    let db = common::fresh_db();
    let ws = Workspace::new(
        r#"
migrations: migrations
environments:
  staging:
    database_url_env: STAGING_DATABASE_URL
    on: { branches: [staging] }
    steps:
      - apply
      - smoke-test:
          - name: users exist
            sql: "SELECT count(*)\n  FROM users WHERE emial IS NULL"
"#,
        &[("0001_users.sql", USERS)],
    );
    let r = push_staging(&ws, &db.url);
    assert_eq!(r.code, 1, "{}", r.debug());
    let all = format!("{}{}", r.stdout, r.summary);
    assert!(
        all.contains("smoke test `users exist` failed"),
        "{}",
        r.debug()
    );
    assert!(
        all.contains("at line 2, column 20 of its sql"),
        "{}",
        r.debug()
    );
    assert!(
        all.contains("column \"emial\" does not exist (SQLSTATE 42703)"),
        "{}",
        r.debug()
    );
    assert!(
        all.contains("hint: Perhaps you meant to reference the column \"users.email\""),
        "{}",
        r.debug()
    );
}
