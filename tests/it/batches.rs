//! Runs as batches: `status --runs` lists what each run applied, and `rollback
//! --last-run` / `--run ID` undo exactly one run's migrations, newest first.

use std::path::Path;

use crate::common::{fresh_db, query_strings, Pgrollout};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn migration(dir: &Path, version: u32, table: &str) {
    write(
        dir,
        &format!("{version}_{table}.sql"),
        &format!(
            "-- migrate:up\nCREATE TABLE {table} (id int);\n-- migrate:down\nDROP TABLE {table};\n"
        ),
    );
}

fn cmd(dir: &Path, url: &str) -> Pgrollout {
    Pgrollout::new().migrations(dir).database_url(url)
}

fn runs(dir: &Path, url: &str) -> Vec<serde_json::Value> {
    let r = cmd(dir, url)
        .args(["--format", "json", "status", "--runs"])
        .run()
        .ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v["runs"].as_array().unwrap().clone()
}

fn applied(url: &str) -> Vec<String> {
    query_strings(
        url,
        "SELECT version_text FROM pgrollout.schema_migrations ORDER BY version",
    )
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect()
}

/// A database where one run applied 1 and 2, and a second run `second`.
fn two_runs(second: &[(u32, &str)]) -> (crate::common::TestDb, tempfile::TempDir) {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    migration(dir.path(), 1, "a");
    migration(dir.path(), 2, "b");
    cmd(dir.path(), &db.url).arg("apply").run().ok();
    for (v, t) in second {
        migration(dir.path(), *v, t);
    }
    cmd(dir.path(), &db.url).arg("apply").run().ok();
    (db, dir)
}

#[test]
fn status_runs_lists_batches_and_last_run_rolls_back_exactly_that_batch() {
    let (db, dir) = two_runs(&[(3, "c"), (4, "d")]);

    let list = runs(dir.path(), &db.url);
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(
        list[0]["applied"],
        serde_json::json!(["3", "4"]),
        "newest first: {list:?}"
    );
    assert_eq!(
        list[1]["applied"],
        serde_json::json!(["1", "2"]),
        "{list:?}"
    );
    let text = cmd(dir.path(), &db.url)
        .args(["status", "--runs"])
        .run()
        .ok();
    let first_run = list[1]["run_id"].as_str().unwrap();
    assert!(
        text.stdout.contains(first_run) && text.stdout.contains("applied 3, 4"),
        "{text}"
    );

    let rb = cmd(dir.path(), &db.url)
        .args(["rollback", "--last-run"])
        .run()
        .ok();
    assert_eq!(applied(&db.url), ["1", "2"], "{rb}");
    let order = query_strings(
        &db.url,
        "SELECT version_text FROM pgrollout.migration_history WHERE action = 'rollback' ORDER BY id",
    );
    assert_eq!(
        order,
        [[Some("4".to_string())], [Some("3".to_string())]],
        "newest first"
    );
    let after = runs(dir.path(), &db.url);
    assert_eq!(
        after[0]["rolled_back"],
        serde_json::json!(["4", "3"]),
        "{after:?}"
    );

    // Then the first batch, by id.
    cmd(dir.path(), &db.url)
        .args(["rollback", "--run", first_run])
        .run()
        .ok();
    assert!(applied(&db.url).is_empty());
}

#[test]
fn rollback_of_a_run_with_a_later_run_on_top_is_refused_and_changes_nothing() {
    let (db, dir) = two_runs(&[(3, "c")]);
    let list = runs(dir.path(), &db.url);
    let (older, newer) = (
        list[1]["run_id"].as_str().unwrap(),
        list[0]["run_id"].as_str().unwrap(),
    );
    let r = cmd(dir.path(), &db.url)
        .args(["rollback", "--run", older])
        .run();
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.all().contains(&format!("roll back run {newer} first")),
        "{r}"
    );
    assert_eq!(applied(&db.url), ["1", "2", "3"]);
    let unknown = cmd(dir.path(), &db.url)
        .args(["rollback", "--run", "feedfacefeedface"])
        .run();
    assert_eq!(unknown.code, 1, "{unknown}");
    assert!(
        unknown.all().contains("no migration that is still applied"),
        "{unknown}"
    );
    let both = cmd(dir.path(), &db.url)
        .args(["rollback", "--last-run", "--steps", "1"])
        .run();
    assert_eq!(both.code, 2, "{both}");
}
