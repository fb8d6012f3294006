//! `status --all` and `report` against real PostgreSQL; the HTML rendered by headless
//! Chromium; the JSON checked against its documented schema (docs/report.schema.json).

use std::path::Path;

use serde_json::Value;

use crate::common::{exec, sample_db, sample_dir, Pgrollout, Run, TestDb};

const CHROMIUM: &str = "/usr/bin/chromium";
/// An address nothing listens on.
const DEAD_URL: &str = "postgres://app@127.0.0.1:1/app";

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Staging fully migrated with a rollback and a repair in its history and a backup
/// marker; production three migrations behind.
fn environments() -> (TestDb, TestDb) {
    let staging = sample_db(None);
    exec(
        &staging.url,
        "INSERT INTO pgrollout.backup_markers (label, actor, environment, git_ref, wal_lsn, txid)
             VALUES ('before v1.4.0', 'release-bot', 'staging', 'refs/tags/v1.4.0', pg_current_wal_lsn(), txid_current());
         INSERT INTO pgrollout.migration_history (run_id, action, version, version_text, name, status, started_at,
             finished_at, duration_ms, actor, environment, tool_version, error, reason)
         VALUES ('r1', 'rollback', 20251118100000, '20251118100000', 'orders_country_fk', 'completed',
                 now() + interval '1 min', now() + interval '1 min', 12, 'alice', 'staging', '0.1.0', NULL, 'rehearsal'),
                ('r2', 'apply', 20251118100000, '20251118100000', 'orders_country_fk', 'failed',
                 now() + interval '2 min', now() + interval '2 min', 40, 'alice', 'staging', '0.1.0',
                 'lock timeout on orders <script>alert(1)</script>', NULL),
                ('r3', 'repair', NULL, NULL, NULL, 'completed', now() + interval '3 min', now() + interval '3 min',
                 0, 'alice', 'staging', '0.1.0', NULL, 'cleared failed row');",
    );
    let production = sample_db(Some("20251110083000"));
    exec(
        &production.url,
        "INSERT INTO pgrollout.backup_markers (label, actor, wal_lsn, txid)
             VALUES ('nightly', 'cron', pg_current_wal_lsn(), txid_current())",
    );
    (staging, production)
}

fn pgrollout(args: &[&str]) -> Run {
    Pgrollout::new()
        .migrations(sample_dir())
        .args(["--connect-timeout", "1s"])
        .args(args)
        .run()
}

fn env_args(staging: &TestDb, production: &TestDb) -> Vec<String> {
    vec![
        "--env-url".into(),
        format!("staging={}", staging.url),
        "--env-url".into(),
        format!("production={}", production.url),
        "--env-url".into(),
        format!("dev={DEAD_URL}"),
        "--env-url".into(),
        "qa=".into(),
    ]
}

#[test]
fn status_all_reports_every_readable_environment_and_names_the_unreachable_one() {
    let (staging, production) = environments();
    let mut args = vec!["status".to_string(), "--all".into()];
    args.extend(env_args(&staging, &production));
    let out = pgrollout(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = &out.stdout;
    assert_eq!(out.code, 1, "unreachable → exit 1\n{out}");
    let header = stdout.lines().next().unwrap();
    assert!(
        header.contains("staging") && header.contains("production"),
        "{stdout}"
    );
    assert!(!header.contains("dev"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("20251118100000"))
        .unwrap();
    assert!(row.contains("applied") && row.contains("pending"), "{row}");
    assert!(
        stdout.contains("dev: UNREACHABLE: connecting to postgres://app@127.0.0.1:1/app"),
        "{stdout}"
    );
    assert!(
        stdout.contains("qa: skipped: no database URL given"),
        "{stdout}"
    );
    assert!(
        stdout.contains("production: 7 applied, 4 pending"),
        "{stdout}"
    );

    args.extend(["--format".into(), "json".into()]);
    let out = pgrollout(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["environments"][2]["reach"], "unreachable");
    assert_eq!(v["environments"][3]["reach"], "skipped");
    let last = v["migrations"].as_array().unwrap().last().unwrap();
    assert_eq!(last["states"]["staging"], "applied");
    assert_eq!(last["states"]["production"], "pending");
    assert_eq!(last["consistent"], false);
}

/// A small validator for the JSON Schema subset docs/report.schema.json uses: type,
/// enum, required, properties, additionalProperties (false or a schema), items, $ref.
fn validate(root: &Value, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").expect("local $ref");
        return validate(root, &root["$defs"][name], v, path, errors);
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type in schema at {path}"),
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            other => panic!("unsupported type {other}"),
        });
        if !ok {
            errors.push(format!("{path}: expected {types:?}, got {v}"));
            return;
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            errors.push(format!("{path}: {v} is not one of {e:?}"));
        }
    }
    if let Some(obj) = v.as_object() {
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !obj.contains_key(r.as_str().unwrap()) {
                errors.push(format!("{path}: missing required {r}"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, x) in obj {
            match (
                props.and_then(|p| p.get(k)),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => validate(root, s, x, &format!("{path}.{k}"), errors),
                (None, Some(Value::Bool(false))) => {
                    errors.push(format!("{path}: undocumented field {k}"))
                }
                (None, Some(s @ Value::Object(_))) => {
                    validate(root, s, x, &format!("{path}.{k}"), errors)
                }
                _ => {}
            }
        }
    }
    if let (Some(items), Some(a)) = (schema.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            validate(root, items, x, &format!("{path}[{i}]"), errors);
        }
    }
}

#[test]
fn report_json_validates_against_its_documented_schema() {
    let (staging, production) = environments();
    let mut args = vec![
        "report".to_string(),
        "--format".into(),
        "json".into(),
        "--all".into(),
    ];
    args.extend(env_args(&staging, &production));
    let out = pgrollout(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.code, 0, "{out}");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(manifest().join("docs/report.schema.json")).unwrap(),
    )
    .unwrap();
    let mut errors = Vec::new();
    validate(&schema, &schema, &v, "$", &mut errors);
    assert!(errors.is_empty(), "{errors:#?}");
    // And the validator does reject what the schema does not allow.
    let mut bad = v.clone();
    bad["environments"][0]["health"]["status"] = "fine".into();
    bad["surprise"] = 1.into();
    let mut errors = Vec::new();
    validate(&schema, &schema, &bad, "$", &mut errors);
    assert_eq!(errors.len(), 2, "{errors:#?}");

    assert_eq!(
        v["health"], "error",
        "an unreachable environment is an error"
    );
    let envs = v["environments"].as_array().unwrap();
    assert_eq!(envs[0]["health"]["status"], "healthy");
    assert_eq!(envs[1]["health"]["status"], "warning");
    assert_eq!(envs[1]["counts"]["pending"], 4);
    assert_eq!(envs[0]["backups"][0]["label"], "before v1.4.0");
    assert_eq!(envs[0]["history"][0]["action"], "repair");
    assert_eq!(envs[0]["slowest"].as_array().unwrap().len(), 5);
}

#[test]
fn markdown_report_has_the_summary_table_and_escapes_database_text() {
    let (staging, production) = environments();
    let mut args = vec![
        "report".to_string(),
        "--format".into(),
        "markdown".into(),
        "--all".into(),
    ];
    args.extend(env_args(&staging, &production));
    let out = pgrollout(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let md = &out.stdout;
    assert!(md.starts_with("# Migration report: 🔴 error"), "{md}");
    assert!(
        md.contains("| staging | 🟢 healthy | 11 | 0 | 0 | 0 |"),
        "{md}"
    );
    assert!(md.contains("| production | 🟡 warning | 7 | 4 |"), "{md}");
    assert!(md.contains("| dev | 🔴 unreachable |"), "{md}");
    assert!(!md.contains("<script>"), "database text must be escaped");
}

/// Renders the HTML report in Debian's headless Chromium and checks what a reader sees.
/// Set PGROLLOUT_SAVE_REPORT=DIR to keep report.html and report.png (the README's
/// screenshot is made this way).
#[test]
fn html_report_renders_in_headless_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: this test renders the HTML report in Debian's Chromium; \
         install it with `apt-get install chromium` (.ci/run does)"
    );
    let (staging, production) = environments();
    let dir = tempfile::tempdir().unwrap();
    let html_path = dir.path().join("report.html");
    let mut args = vec![
        "report".to_string(),
        "--format".into(),
        "html".into(),
        "--output".into(),
        html_path.display().to_string(),
        "--all".into(),
    ];
    args.extend(env_args(&staging, &production));
    let out = pgrollout(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("overall health: error"), "{out}");
    let html = std::fs::read_to_string(&html_path).unwrap();
    // Self-contained: no scripts, no external resources.
    assert!(
        !html.contains("<script"),
        "escaped: the hostile error text stays text"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    for external in ["<link", " src=", "@import", "url("] {
        assert!(!html.contains(external), "external resource: {external}");
    }

    let chromium = |extra: &[String]| {
        let profile = tempfile::tempdir().unwrap();
        crate::common::headless_chromium(profile.path())
            .args(extra)
            .arg(format!("file://{}", html_path.display()))
            .output()
            .unwrap()
    };
    let dom = chromium(&["--dump-dom".into()]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    for expected in [
        "<title>Migration report</title>",
        "data-health=\"error\"",
        "Action required",
        "data-env=\"staging\"",
        "data-env=\"production\"",
        "unreachable",
        "skipped: no database URL given",
        "Migrations across environments",
        "orders_country_fk",
        "Slowest migrations",
        "before v1.4.0",
        "rollback",
        "4 pending migration(s)",
    ] {
        assert!(dom.contains(expected), "rendered page lacks {expected:?}");
    }

    let png = dir.path().join("report.png");
    let shot = chromium(&[
        format!("--screenshot={}", png.display()),
        "--window-size=1280,1600".into(),
        "--hide-scrollbars".into(),
    ]);
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "screenshot is {} bytes",
        bytes.len()
    );

    if let Ok(keep) = std::env::var("PGROLLOUT_SAVE_REPORT") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&html_path, Path::new(&keep).join("report.html")).unwrap();
        std::fs::copy(&png, Path::new(&keep).join("report.png")).unwrap();
    }
}
