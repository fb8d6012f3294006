//! Every entry of the migrations directory is read as a migration or refused, never
//! skipped; line endings are read as psql reads them.

use std::path::Path;
use std::process::Command;

use crate::common::{fresh_db, query_strings, Pgrollout};

fn cmd(dir: &Path) -> Pgrollout {
    Pgrollout::new().migrations(dir)
}

/// `2_b.SQL`, a directory `3_c.sql/` and a FIFO `4_d.sql` each get an error naming them —
/// `validate` no longer says "valid" — and the FIFO is not opened (which would hang).
#[test]
fn entries_named_like_migrations_that_cannot_be_read_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1_a.sql"), "CREATE TABLE a (n int);\n").unwrap();
    std::fs::write(dir.path().join("2_b.SQL"), "CREATE TABLE b (n int);\n").unwrap();
    std::fs::create_dir(dir.path().join("3_c.sql")).unwrap();
    let fifo = std::ffi::CString::new(dir.path().join("4_d.sql").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0, "mkfifo");
    let r = cmd(dir.path()).arg("validate").run();
    assert_ne!(r.code, 0, "{r}");
    let text = r.all();
    for needed in [
        "2_b.SQL: the extension must be lower-case `.sql`: rename it to 2_b.sql",
        "3_c.sql: a directory named like a migration file",
        "4_d.sql: not a regular file (a FIFO, socket or device): it is not opened",
    ] {
        assert!(text.contains(needed), "{needed:?} missing:\n{r}");
    }
}

/// A file with lone-CR line endings: psql runs it (its lexer ends a `--` comment at a
/// CR), and so does pgrollout, markers included.
#[test]
fn lone_cr_line_endings_are_read_as_psql_reads_them() {
    let text = "-- the table\rCREATE TABLE cr (n int);\rINSERT INTO cr VALUES (1);\r";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1_cr.sql"), text).unwrap();
    let by_psql = fresh_db();
    crate::common::psql_file(&by_psql.url, &dir.path().join("1_cr.sql"));
    let by_us = fresh_db();
    cmd(dir.path())
        .database_url(&by_us.url)
        .arg("apply")
        .run()
        .ok();
    for db in [&by_psql, &by_us] {
        assert_eq!(
            query_strings(&db.url, "SELECT n FROM cr")[0][0].as_deref(),
            Some("1")
        );
    }
    // With section markers, which psql reads as comments.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("1_cr.sql"),
        "-- migrate:up\rCREATE TABLE cr2 (n int);\r-- migrate:down\rDROP TABLE cr2;\r",
    )
    .unwrap();
    let db = fresh_db();
    cmd(dir.path())
        .database_url(&db.url)
        .arg("apply")
        .run()
        .ok();
    cmd(dir.path())
        .database_url(&db.url)
        .args(["rollback", "--steps", "1"])
        .run()
        .ok();
    assert_eq!(
        query_strings(&db.url, "SELECT to_regclass('cr2') IS NULL")[0][0].as_deref(),
        Some("t")
    );
}

/// `?options=-c%20search_path%3Dfoo` reaches the server percent-decoded and unchanged,
/// as psql passes it: the migration's table lands in schema `foo`.
#[test]
fn url_options_reach_the_server_as_psql_sends_them() {
    let db = fresh_db();
    crate::common::exec(&db.url, "CREATE SCHEMA foo");
    let sep = if db.url.contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}options=-c%20search_path%3Dfoo", db.url);
    let psql = Command::new("/usr/lib/postgresql/15/bin/psql")
        .args(["-X", "-At", "-d", &url, "-c", "SHOW search_path"])
        .output()
        .expect("running psql");
    assert!(
        psql.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&psql.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&psql.stdout).trim(), "foo");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1_t.sql"), "CREATE TABLE t (n int);\n").unwrap();
    cmd(dir.path()).database_url(&url).arg("apply").run().ok();
    assert_eq!(
        query_strings(&db.url, "SELECT to_regclass('foo.t') IS NOT NULL")[0][0].as_deref(),
        Some("t")
    );
}

/// A syntax error in a pending file stops `apply` before it takes the lock or creates
/// the tracking schema.
#[test]
fn syntax_error_in_a_pending_file_stops_apply_before_the_tracking_schema() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1_a.sql"), "CREATE TABLE a (n int);\n").unwrap();
    std::fs::write(dir.path().join("2_b.sql"), "CREATE TABLE b (n int;\n").unwrap();
    let r = cmd(dir.path()).database_url(&db.url).arg("apply").run();
    assert_eq!(r.code, 1, "{r}");
    assert!(r.all().contains("2_b.sql:1:"), "{r}");
    assert!(!r.all().contains("created tracking schema"), "{r}");
    assert_eq!(
        query_strings(&db.url, "SELECT to_regnamespace('pgrollout') IS NULL")[0][0].as_deref(),
        Some("t")
    );
}

/// Entries that are not migrations at all (a README, a directory of old scripts) are
/// warned about by name in every layout — not skipped in silence — while hidden files
/// and a layout's own companions (Flyway's `.sql.conf`) are not; the run still succeeds.
#[test]
fn stray_entries_are_warned_about_by_name_in_every_layout() {
    let native = tempfile::tempdir().unwrap();
    std::fs::write(native.path().join("1_a.sql"), "CREATE TABLE a (n int);\n").unwrap();
    std::fs::write(native.path().join("README.md"), "notes\n").unwrap();
    std::fs::write(native.path().join(".gitkeep"), "").unwrap();
    std::fs::create_dir(native.path().join("old")).unwrap();

    let flyway = tempfile::tempdir().unwrap();
    std::fs::write(flyway.path().join("V1__a.sql"), "CREATE TABLE a (n int);\n").unwrap();
    std::fs::write(
        flyway.path().join("V1__a.sql.conf"),
        "executeInTransaction=true\n",
    )
    .unwrap();
    std::fs::write(flyway.path().join("notes.txt"), "x\n").unwrap();

    for (dir, stray, quiet) in [
        (native.path(), &["README.md", "old"][..], &[".gitkeep"][..]),
        (flyway.path(), &["notes.txt"][..], &["V1__a.sql.conf"][..]),
    ] {
        let r = cmd(dir).arg("validate").run();
        assert_eq!(r.code, 0, "{r}");
        for name in stray {
            let line = format!("warning: {}: not a migration", dir.join(name).display());
            assert!(r.stderr.contains(&line), "{line:?} missing:\n{r}");
        }
        for name in quiet {
            assert!(!r.stderr.contains(name), "{name} warned about:\n{r}");
        }
        // Warned once, though the files are read before and after `--ephemeral` checks.
        assert_eq!(
            r.stderr.matches("not a migration (").count(),
            stray.len(),
            "{r}"
        );
    }
}

/// Flyway and refinery directories refuse an upper-case `.SQL` and a directory named
/// like a migration, as the native layout does, instead of skipping them.
#[test]
fn flyway_and_refinery_refuse_unreadable_migration_like_entries() {
    for (layout, good, upper) in [
        ("flyway", "V1__a.sql", "V2__b.SQL"),
        ("refinery", "V1__a.sql", "V2__b.SQL"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(good), "CREATE TABLE a (n int);\n").unwrap();
        std::fs::write(dir.path().join(upper), "CREATE TABLE b (n int);\n").unwrap();
        std::fs::create_dir(dir.path().join("V3__c.sql")).unwrap();
        let r = cmd(dir.path()).args(["--layout", layout, "validate"]).run();
        assert_ne!(r.code, 0, "{layout}: {r}");
        let text = r.all();
        for needed in [
            format!("{upper}: the extension must be lower-case `.sql`"),
            "V3__c.sql: a directory named like a migration file".to_string(),
        ] {
            assert!(text.contains(&needed), "{layout}: {needed:?} missing:\n{r}");
        }
    }
}

/// A pipeline-file error says its location once (`pgrollout.yml:2:6: error: …`, not the
/// location again inside the message), and a non-UTF-8 pipeline file is named at the
/// line and column of the bad byte.
#[test]
fn pipeline_file_errors_say_their_location_once_and_non_utf8_has_a_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    let run = |text: &[u8]| {
        std::fs::write(dir.path().join("pgrollout.yml"), text).unwrap();
        Pgrollout::new()
            .cwd(dir.path())
            .args(["pipeline", "run"])
            .run()
    };
    let r = run(b"environments:\n  staging: [\n");
    assert_eq!(r.code, 2, "{r}");
    let first = r.stderr.lines().next().unwrap_or_default().to_string();
    assert!(first.starts_with("pgrollout.yml:2:"), "{r}");
    assert_eq!(first.matches("pgrollout.yml").count(), 1, "{r}");

    let r = run(b"environments:\n  st\xffaging: {}\n");
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr
            .contains("pgrollout.yml:2:5: error: the pipeline file is not valid UTF-8 (byte 0xff)"),
        "{r}"
    );
}

/// `apply` opens its connection while it reads the files. When the files are wrong (two
/// files with one version) the run ends on that at once: no connection attempt is
/// reported or waited for, even with a server that refuses connections and 30 s to retry.
#[test]
fn file_problems_end_apply_before_the_connection_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1_a.sql"), "CREATE TABLE a (n int);\n").unwrap();
    std::fs::write(dir.path().join("1_b.sql"), "CREATE TABLE b (n int);\n").unwrap();
    let r = cmd(dir.path())
        .args([
            "--database-url",
            "postgres://u:hunter2@127.0.0.1:1/x",
            "apply",
        ])
        .env("PGROLLOUT_CONNECT_TIMEOUT", "30s")
        .run();
    assert_eq!(r.code, 1, "{r}");
    let text = r.all();
    assert!(text.contains("both have version 1"), "{r}");
    assert!(
        !text.contains("connecting to") && !text.contains("server not ready"),
        "no connection is reported:\n{r}"
    );
    assert!(!text.contains("hunter2"), "{r}");
}

/// Dump names have second resolution. A dump whose name is taken (another dump in the
/// same second) gets the next free numbered name: never an error, never over the other.
#[test]
fn a_dump_never_fails_or_overwrites_when_its_name_is_taken() {
    use std::os::unix::fs::PermissionsExt;
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // Every name the run may pick in the next minute is taken already.
    let start = chrono::Utc::now();
    let taken: Vec<std::path::PathBuf> = (0..60)
        .map(|s| {
            let at = start + chrono::Duration::seconds(s);
            out.join(format!(
                "pgrollout-{}-{}.dump",
                db.name,
                at.format("%Y%m%dT%H%M%SZ")
            ))
        })
        .collect();
    for t in &taken {
        std::fs::write(t, "someone else's dump").unwrap();
    }
    let r = Pgrollout::new()
        .migrations(dir.path())
        .args([
            "--database-url",
            &db.url,
            "backup",
            "--dump",
            "--output-dir",
        ])
        .arg(out.to_str().unwrap())
        .run();
    assert_eq!(r.code, 0, "{r}");
    for t in &taken {
        assert_eq!(std::fs::read_to_string(t).unwrap(), "someone else's dump");
    }
    let new: Vec<std::path::PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !taken.contains(p))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}\n{r}");
    let name = new[0].file_name().unwrap().to_str().unwrap();
    assert!(name.ends_with("-2.dump"), "{name}");
    let meta = std::fs::metadata(&new[0]).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(meta.len() > 0, "pg_dump wrote into it");
}
