//! How many connections a pipeline run opens, counted by the server: the steps share
//! one work session, and the steps that take the migration lock share one lock session.

use std::time::Duration;

use crate::common::actions::{applied, dispatch, Workspace};
use crate::common::{fresh_db, query_strings, server, wait_until};

const PIPELINE: &str = r#"
migrations: migrations
environments:
  production:
    database_url_env: PROD_DATABASE_URL
    on: { dispatch: { confirm: MIGRATE-PRODUCTION } }
    steps:
      - health
      - validate
      - lint
      - backup-marker
      - dry-run
      - review-delay: 0s
      - apply
      - verify
      - smoke-test:
          - name: users readable
            sql: SELECT count(*) >= 0 FROM users
"#;

/// Sessions the server has counted for `db` (`pg_stat_database.sessions`, PostgreSQL
/// 14+), asked from the maintenance database so that asking adds none.
fn sessions(db: &str) -> i64 {
    let sql = format!(
        "SELECT (SELECT sessions FROM pg_stat_database WHERE datname = '{db}'), \
                (SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}')"
    );
    let row = &query_strings(server().admin_url(), &sql)[0];
    let open: i64 = row[1].as_deref().unwrap().parse().unwrap();
    if open > 0 {
        return -1;
    }
    row[0].as_deref().map_or(0, |v| v.parse().unwrap())
}

#[test]
fn a_production_pipeline_run_opens_one_work_session_and_one_lock_session() {
    let db = fresh_db();
    let ws = Workspace::new(
        PIPELINE,
        &[
            (
                "0001_users.sql",
                "CREATE TABLE users (id int PRIMARY KEY);\n",
            ),
            (
                "0002_orders.sql",
                "CREATE TABLE orders (id int PRIMARY KEY);\n",
            ),
        ],
    );
    let r = dispatch(
        &ws,
        &db.url,
        serde_json::json!({"environment": "production", "confirm": "MIGRATE-PRODUCTION", "dry_run": "false"}),
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    // Counted before this test connects to the database itself. One work session for
    // all nine steps and the summary, one lock session that backup-marker and then apply
    // take the lock on, and pg_dump's for the dry-run's shadow of the schema. A session
    // is counted when its backend has exited and flushed its statistics, a moment after
    // it leaves pg_stat_activity: wait for the count to reach the expected one (a run
    // that opened fewer fails here), then check it is not more.
    let expected = 3;
    let mut seen = 0;
    wait_until(
        &format!("the server to count {expected} sessions for the run"),
        Duration::from_secs(10),
        || {
            seen = sessions(&db.name);
            seen >= expected
        },
    );
    assert_eq!(
        seen,
        expected,
        "connections opened by the run:\n{}",
        r.debug()
    );
    assert_eq!(applied(&db.url), ["0001", "0002"]);
}

#[test]
fn a_shared_session_ended_by_the_server_during_the_review_delay_is_replaced() {
    let db = fresh_db();
    // The server ends any session idle for a second: the work session, idle through
    // the review delay, is gone when apply wants it.
    crate::common::exec(
        server().admin_url(),
        &format!(
            "ALTER DATABASE \"{}\" SET idle_session_timeout = '1s'",
            db.name
        ),
    );
    let ws = Workspace::new(
        &PIPELINE.replace("review-delay: 0s", "review-delay: 3s"),
        &[(
            "0001_users.sql",
            "CREATE TABLE users (id int PRIMARY KEY);\n",
        )],
    );
    let ev = ws.event(serde_json::json!({
        "inputs": {"environment": "production", "confirm": "MIGRATE-PRODUCTION", "dry_run": "false"},
        "ref": "refs/heads/main",
    }));
    let r = ws.run(
        &["pipeline", "run"],
        &[
            ("GITHUB_EVENT_NAME", "workflow_dispatch"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_EVENT_PATH", &ev),
            ("PROD_DATABASE_URL", &db.url),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    assert_eq!(applied(&db.url), ["0001"]);
}
