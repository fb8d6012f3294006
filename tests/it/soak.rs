//! Soak test: crashes at random points, then `apply` again — asserting exactly-once and
//! a consistent tracking schema each time. Not in the default suite (it is slow and
//! random); run it with
//!
//! ```text
//! PGROLLOUT_SOAK_N=20 cargo test --test it soak -- --ignored --nocapture
//! ```
//!
//! Each of the N rounds adds ten migrations (transactional ones, and transaction:false
//! ones of several statements) and runs `apply` twice over: once killed with SIGKILL at a
//! random moment, once with the server shut down immediately (`pg_ctl stop -m
//! immediate`) at a random moment. Each crash is followed by `apply` (after `repair` when
//! a transaction:false migration was interrupted) until it succeeds. After each: every
//! migration's effect is in the ledger exactly once, every file has one `completed`
//! tracking row, no row is `running` or `failed`, and the history has one completed
//! apply per version.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{exec, own_cluster, query_strings, Pgrollout};

fn scalar(url: &str, sql: &str) -> String {
    query_strings(url, sql)[0][0].clone().unwrap_or_default()
}

/// Ten more migrations for round `round`: even ones transactional (a plain INSERT:
/// applied twice, it would show twice), odd ones transaction:false with three statements
/// (idempotent, as such migrations must be, since a rerun starts from the first).
fn add_round(dir: &Path, round: u32) {
    for i in 0..10u32 {
        let v = round * 100 + i + 1;
        let text = if i % 2 == 0 {
            format!("INSERT INTO ledger VALUES ({v}, 'tx');\nSELECT pg_sleep(0.02);\n")
        } else {
            format!(
                "-- migrate:up transaction:false\n\
                 INSERT INTO once VALUES ({v}) ON CONFLICT DO NOTHING;\n\
                 SELECT pg_sleep(0.03);\n\
                 INSERT INTO ledger SELECT {v}, 'step' WHERE NOT EXISTS (SELECT FROM ledger WHERE v = {v});\n"
            )
        };
        std::fs::write(dir.join(format!("{v:06}_m.sql")), text).unwrap();
    }
}

/// Apply until it succeeds, repairing an interrupted transaction:false migration;
/// returns how many repairs it took.
fn settle(dir: &Path, url: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut repairs = 0;
    loop {
        assert!(Instant::now() < deadline, "apply did not settle");
        let r = Pgrollout::new()
            .migrations(dir)
            .database_url(url)
            .arg("apply")
            .run();
        if r.code == 0 {
            return repairs;
        }
        repairs += 1;
        assert!(
            r.all().contains("pgrollout repair"),
            "apply after a crash failed for another reason:\n{r}"
        );
        Pgrollout::new()
            .migrations(dir)
            .database_url(url)
            .arg("repair")
            .run()
            .ok();
    }
}

fn check(url: &str, files: usize, what: &str) {
    let q = |sql: &str| scalar(url, sql);
    assert_eq!(
        q("SELECT count(*) FROM (SELECT v FROM ledger GROUP BY v HAVING count(*) > 1) AS d"),
        "0",
        "{what}: a migration's effect appears twice"
    );
    assert_eq!(
        q("SELECT count(*) FROM ledger"),
        files.to_string(),
        "{what}: ledger"
    );
    assert_eq!(
        q("SELECT count(*) FROM pgrollout.schema_migrations WHERE status = 'completed'"),
        files.to_string(),
        "{what}: completed rows"
    );
    assert_eq!(
        q("SELECT count(*) FROM pgrollout.schema_migrations WHERE status <> 'completed'"),
        "0",
        "{what}: running or failed rows left"
    );
    assert_eq!(
        q("SELECT count(*) FROM (SELECT version FROM pgrollout.migration_history \
           WHERE action = 'apply' AND status = 'completed' GROUP BY version HAVING count(*) <> 1) AS d"),
        "0",
        "{what}: a version with other than one completed apply in the history"
    );
}

#[test]
#[ignore = "soak: slow and random; PGROLLOUT_SOAK_N=20 cargo test --test it soak -- --ignored"]
fn soak_kill_and_crash_then_apply_is_exactly_once() {
    let n: u32 = std::env::var("PGROLLOUT_SOAK_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let cluster = own_cluster();
    exec(&cluster.url("postgres"), "CREATE DATABASE soak");
    let url = cluster.url("soak");
    exec(
        &url,
        "CREATE TABLE ledger (v int, kind text); CREATE TABLE once (v int PRIMARY KEY)",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut files = 0;
    for round in 0..n {
        for crash in ["kill -9", "immediate shutdown"] {
            add_round(dir.path(), round * 2 + u32::from(crash != "kill -9"));
            files += 10;
            let child = Pgrollout::new()
                .migrations(dir.path())
                .database_url(&url)
                .arg("apply")
                .spawn();
            // The crash point is random by design: it is fault injection, not waiting for
            // anything.
            std::thread::sleep(Duration::from_millis(rand::random_range(0..600)));
            if crash == "kill -9" {
                child.signal(libc::SIGKILL);
                child.wait();
            } else {
                cluster.kill().expect("immediate shutdown");
                child.wait();
                cluster.restart().expect("restart");
            }
            let before: usize = scalar(
                &url,
                "SELECT count(*) FROM pgrollout.schema_migrations WHERE status = 'completed'",
            )
            .parse()
            .unwrap_or(0);
            let repairs = settle(dir.path(), &url);
            check(&url, files, &format!("round {round}, after {crash}"));
            eprintln!(
                "soak: round {}/{n}: {crash} after {} of 10 new migrations, {repairs} repair(s), then apply: exactly once",
                round + 1,
                before.saturating_sub(files - 10)
            );
        }
    }
}
