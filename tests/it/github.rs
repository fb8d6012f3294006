//! The binary as GitHub Actions runs it: the runner's environment simulated (event
//! payload files, `GITHUB_OUTPUT` / `GITHUB_STEP_SUMMARY` temp files, `INPUT_*`), the
//! whole environment of the child controlled, real PostgreSQL behind it.

use crate::common;

use crate::common::actions::{applied, dispatch, tracking_schema_exists, Workspace};
use crate::common::Stream;

use std::path::Path;

const PIPELINE: &str = r#"
migrations: migrations
environments:
  staging:
    database_url_env: STAGING_DATABASE_URL
    on: { branches: [staging] }
    steps: [validate, lint, dry-run, apply, verify]
  production:
    database_url_env: PROD_DATABASE_URL
    on: { tags: ["v*.*.*"], dispatch: { confirm: MIGRATE-PRODUCTION } }
    steps:
      - health
      - backup-marker
      - dry-run
      - review-delay: 30s
      - apply
      - verify
      - smoke-test:
          - name: users readable
            sql: SELECT count(*) >= 0 FROM users
          - name: two users
            sql: SELECT count(*) FROM users
            expect: 2
          - name: shell check
            command: test -n "$DATABASE_URL"
"#;

const USERS: &str = "-- migrate:up\nCREATE TABLE users (id int PRIMARY KEY, email text);\nINSERT INTO users VALUES (1, 'a'), (2, 'b');\n-- migrate:down\nDROP TABLE users;\n";

fn users_migrations() -> Vec<(&'static str, &'static str)> {
    vec![("0001_users.sql", USERS)]
}

#[test]
fn staging_push_applies_with_groups_outputs_and_summary() {
    let db = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &users_migrations());
    let ev = ws.event(serde_json::json!({"ref": "refs/heads/staging", "deleted": false}));
    let r = ws.run(
        &["pipeline", "run"],
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/staging"),
            ("GITHUB_EVENT_PATH", &ev),
            ("STAGING_DATABASE_URL", &db.url),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    assert_eq!(applied(&db.url), ["0001"]);
    let groups: Vec<String> = r
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("::group::"))
        .collect();
    assert_eq!(
        groups,
        [
            "::group::pgrollout 1/5: validate",
            "::group::pgrollout 2/5: lint",
            "::group::pgrollout 3/5: dry-run",
            "::group::pgrollout 4/5: apply",
            "::group::pgrollout 5/5: verify"
        ]
    );
    assert_eq!(r.outputs["environment"], "staging");
    assert_eq!(r.outputs["status"], "success");
    assert_eq!(r.outputs["applied-count"], "1");
    assert_eq!(r.outputs["applied"], "0001");
    assert_eq!(r.outputs["pending-count"], "0");
    assert!(Path::new(&r.outputs["summary-file"]).exists());
    assert!(
        r.summary.contains("## pgrollout · staging — ✅ success"),
        "{}",
        r.summary
    );
    assert!(r.summary.contains("**Trigger:** push to branch staging"));
    assert!(
        r.summary.contains("| 0001 | users | applied |"),
        "{}",
        r.summary
    );
}

#[test]
fn push_to_another_branch_selects_nothing() {
    let db = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &users_migrations());
    let r = ws.run(
        &["pipeline", "run"],
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/feature/x"),
            ("STAGING_DATABASE_URL", &db.url),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    let notices = r.annotations("notice");
    assert!(notices[0].contains("no environment"), "{notices:?}");
    assert_eq!(r.outputs["status"], "skipped");
    assert!(!tracking_schema_exists(&db.url));
}

#[test]
fn semver_tag_runs_production_with_backup_marker_and_smoke_tests() {
    let db = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &users_migrations());
    let r = ws.run(
        &["pipeline", "run", "--review-delay", "1s"],
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/tags/v1.2.3"),
            ("GITHUB_SHA", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "octo/app"),
            ("GITHUB_RUN_ID", "42"),
            ("PROD_DATABASE_URL", &db.url),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    assert_eq!(applied(&db.url), ["0001"]);
    assert_eq!(r.outputs["status"], "success");
    let marker = &r.outputs["backup-marker"];
    let row = &common::query_strings(
        &db.url,
        &format!("SELECT wal_lsn IS NOT NULL, txid > 0, git_ref, actor, ci_run_url FROM pgrollout.backup_markers WHERE id = {marker}"),
    )[0];
    assert_eq!(row[0].as_deref(), Some("t"));
    assert_eq!(row[1].as_deref(), Some("t"));
    assert_eq!(row[2].as_deref(), Some("refs/tags/v1.2.3"));
    assert_eq!(row[3].as_deref(), Some("mona"));
    assert_eq!(
        row[4].as_deref(),
        Some("https://github.com/octo/app/actions/runs/42")
    );
    assert!(r.stdout.contains("applying in 1.0 s"), "{}", r.debug());
    assert!(
        r.summary.contains("| smoke-test | ✅ passed |"),
        "{}",
        r.summary
    );
}

#[test]
fn bad_tags_are_refused_before_touching_the_database() {
    for tag in ["v1.2", "v1.2.3.4", "v01.2.3"] {
        let db = common::fresh_db();
        let ws = Workspace::new(PIPELINE, &users_migrations());
        let git_ref = format!("refs/tags/{tag}");
        let r = ws.run(
            &["pipeline", "run"],
            &[
                ("GITHUB_EVENT_NAME", "push"),
                ("GITHUB_REF", &git_ref),
                ("PROD_DATABASE_URL", &db.url),
            ],
        );
        assert_eq!(r.code, 3, "{tag}: {}", r.debug());
        let errors = r.annotations("error");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("not a semantic version"),
            "{}",
            errors[0]
        );
        assert_eq!(r.outputs["status"], "refused");
        assert!(
            !tracking_schema_exists(&db.url),
            "{tag}: the database was touched"
        );
    }
}

#[test]
fn dispatch_without_confirmation_is_refused() {
    let db = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &users_migrations());
    let r = dispatch(
        &ws,
        &db.url,
        serde_json::json!({"environment": "production", "dry_run": "false"}),
    );
    assert_eq!(r.code, 3, "{}", r.debug());
    assert!(r.annotations("error")[0].contains("confirmation phrase"));
    assert!(!tracking_schema_exists(&db.url));
}

#[test]
fn dispatch_with_wrong_confirmation_is_refused() {
    let db = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &users_migrations());
    let r = dispatch(
        &ws,
        &db.url,
        serde_json::json!({"environment": "production", "confirm": "MIGRATE-PRODUCTION ", "dry_run": "false"}),
    );
    assert_eq!(r.code, 3, "{}", r.debug());
    assert!(r.annotations("error")[0].contains("does not match"));
    assert_eq!(r.outputs["status"], "refused");
    assert!(!tracking_schema_exists(&db.url));
}

#[test]
fn dispatch_confirmed_with_dry_run_left_at_default_writes_nothing() {
    let db = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &users_migrations());
    let r = dispatch(
        &ws,
        &db.url,
        serde_json::json!({"environment": "production", "confirm": "MIGRATE-PRODUCTION"}),
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    assert_eq!(r.outputs["status"], "dry-run");
    assert_eq!(r.outputs["applied-count"], "0");
    assert_eq!(r.outputs["pending-count"], "1");
    assert!(
        !tracking_schema_exists(&db.url),
        "a dry run wrote to the database"
    );
    assert!(
        r.summary.contains("| 0001 | users | rehearsed |"),
        "{}",
        r.summary
    );
    assert!(
        r.summary.contains("| backup-marker | ⏭️ skipped |"),
        "{}",
        r.summary
    );
}

#[test]
fn dispatch_confirmed_with_dry_run_false_applies() {
    let db = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &users_migrations());
    let r = dispatch(
        &ws,
        &db.url,
        serde_json::json!({"environment": "production", "confirm": "MIGRATE-PRODUCTION", "dry_run": "false"}),
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    assert_eq!(applied(&db.url), ["0001"]);
    assert!(
        r.summary.contains("**Trigger:** workflow_dispatch by mona"),
        "{}",
        r.summary
    );
}

#[test]
fn action_inputs_drive_a_dispatch() {
    // Inputs arrive as INPUT_<NAME> with hyphens kept; the payload has none here.
    let db = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &users_migrations());
    let ev = ws.event(serde_json::json!({"inputs": {}}));
    let r = ws.run(
        &["action"],
        &[
            ("GITHUB_EVENT_NAME", "workflow_dispatch"),
            ("GITHUB_EVENT_PATH", &ev),
            ("INPUT_ENVIRONMENT", "production"),
            ("INPUT_CONFIRM", "MIGRATE-PRODUCTION"),
            ("INPUT_DRY-RUN", "false"),
            ("INPUT_CONFIG", "pgrollout.yml"),
            ("INPUT_DATABASE-URL", &db.url),
            ("PGROLLOUT_REVIEW_DELAY", "0s"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    assert_eq!(applied(&db.url), ["0001"]);
    assert_eq!(r.outputs["environment"], "production");
}

#[test]
fn the_args_input_is_split_like_a_shell_command_line() {
    // A quoted reason with spaces is one argument: the repair is recorded with it.
    let db = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &users_migrations());
    let r = ws.run(&["apply"], &[("DATABASE_URL", &db.url)]);
    assert_eq!(r.code, 0, "{}", r.debug());
    ws.add("0001_users.sql", &format!("{USERS}-- an edited comment\n"));
    let r = ws.run(
        &["action"],
        &[
            (
                "INPUT_ARGS",
                "repair --accept 0001 --reason \"fixed a typo\"",
            ),
            ("INPUT_DATABASE-URL", &db.url),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    let reasons = common::query_strings(
        &db.url,
        "SELECT reason FROM pgrollout.migration_history WHERE action = 'accept'",
    );
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    let reason = reasons[0][0].as_deref().unwrap_or_default();
    assert!(reason.starts_with("fixed a typo ("), "{reason}");
}

#[test]
fn a_usage_error_in_action_mode_is_annotated() {
    let ws = Workspace::new(PIPELINE, &[]);
    for (args, says) in [
        ("status --no-such-flag", "--no-such-flag"),
        ("repair --reason \"unclosed", "quote is not closed"),
    ] {
        let r = ws.run(&["action"], &[("INPUT_ARGS", args)]);
        assert_eq!(r.code, 2, "{args}: {}", r.debug());
        let errors = r.annotations("error");
        assert_eq!(errors.len(), 1, "{args}: {}", r.debug());
        assert!(
            errors[0]
                .starts_with("::error title=pgrollout%3A usage error in the action's inputs::"),
            "{errors:?}"
        );
        assert!(errors[0].contains(says), "{errors:?}");
    }
}

#[test]
fn pipeline_file_error_is_annotated_at_line_and_column() {
    let ws = Workspace::new(
        "environments:\n  staging:\n    database_url_env: X\n    stpes: [apply]\n",
        &[],
    );
    let r = ws.run(&["pipeline", "run", "--env", "staging"], &[]);
    assert_eq!(r.code, 2, "{}", r.debug());
    let errors = r.annotations("error");
    assert!(
        errors[0].starts_with("::error title=pgrollout error,file=pgrollout.yml,line=4,col=5::"),
        "{errors:?}"
    );
    assert!(errors[0].contains("did you mean `steps`?"));
}

#[test]
fn password_is_masked_first_and_never_printed() {
    let db = common::fresh_db();
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_password(Some("Sup3r%Secret,pw")).unwrap();
    let url = url.to_string();
    let ws = Workspace::new(PIPELINE, &users_migrations());
    let r = ws.run(
        &["pipeline", "run"],
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/staging"),
            ("STAGING_DATABASE_URL", &url),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    let first = r.stdout.lines().next().unwrap();
    assert!(
        first.starts_with("::add-mask::Sup3r%25Secret,pw"),
        "{first}"
    );
    let rest: String = r.stdout.lines().skip(2).collect::<Vec<_>>().join("\n");
    assert!(!rest.contains("Sup3r"), "{}", r.debug());
    assert!(!r.stderr.contains("Sup3r"));
    assert!(!r.summary.contains("Sup3r"));
}

#[test]
fn json_results_keep_stdout_to_themselves_in_actions() {
    let db = common::fresh_db();
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_password(Some("Sup3r%Secret,pw")).unwrap();
    let ws = Workspace::new(PIPELINE, &users_migrations());
    let r = ws.run(
        &["--database-url", url.as_str(), "status", "--format", "json"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    let v: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout must be the JSON alone: {e}\n{}", r.debug()));
    assert_eq!(v["format_version"], 1);
    // The workflow commands went to stderr, the mask first.
    let first = r.stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with("::add-mask::"), "{}", r.debug());
    let rest: String = r.stderr.lines().skip(2).collect::<Vec<_>>().join("\n");
    assert!(
        !rest.contains("Sup3r") && !r.stdout.contains("Sup3r"),
        "{}",
        r.debug()
    );
}

#[test]
fn server_notice_cannot_inject_commands() {
    let db = common::fresh_db();
    let ws = Workspace::new(
        PIPELINE,
        &[(
            "0001_noisy.sql",
            // A down section, so the lint step has nothing to annotate: every workflow
            // command in the output must then be a log group.
            "-- migrate:up\nDO $$ BEGIN RAISE NOTICE E'::error file=x::pwned\\n##[warning]legacy\\r::add-mask::x'; END $$;\n-- migrate:down\nSELECT 1;\n",
        )],
    );
    let r = ws.run(
        &["pipeline", "run", "--env", "staging"],
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/staging"),
            ("STAGING_DATABASE_URL", &db.url),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    assert!(
        r.stdout.contains("pwned"),
        "the notice should still be shown"
    );
    for c in r.commands() {
        assert!(
            c.starts_with("::group::") || c == "::endgroup::",
            "injected command: {c}\n{}",
            r.debug()
        );
    }
}

#[test]
fn hostile_file_name_and_multiline_error_stay_escaped() {
    let db = common::fresh_db();
    let name = "0001_a,b:c%d e.sql";
    let ws = Workspace::new(
        PIPELINE,
        &[(
            name,
            "CREATE TABLE t (id int);\nDO $$ BEGIN RAISE EXCEPTION E'first\\n::error::second\\r##[error]third'; END $$;\n",
        )],
    );
    let r = ws.run(&["apply"], &[("DATABASE_URL", &db.url)]);
    assert_eq!(r.code, 1, "{}", r.debug());
    let errors = r.annotations("error");
    assert!(!errors.is_empty(), "{}", r.debug());
    let e = &errors[0];
    assert!(
        e.starts_with("::error title=migration 0001 a%2Cb%3Ac%25d e failed,file=migrations/0001_a%2Cb%3Ac%25d e.sql,line=2,col=1::"),
        "{e}"
    );
    // The CR arrives as a line break: the runner would show a CR as U+FFFD.
    assert!(
        e.contains("first%0A::error::second%0A##[error]third"),
        "{e}"
    );
    assert!(!e.contains("%0D"), "{e}");
    // Every command line is one of ours: the annotation, and the apply's log groups.
    for c in r.commands() {
        assert!(
            c.starts_with("::error title=migration 0001")
                || c.starts_with("::group::")
                || c == "::endgroup::",
            "injected: {c}\n{}",
            r.debug()
        );
    }
    assert!(
        r.summary.contains("## pgrollout ❌ failed"),
        "{}",
        r.summary
    );
    assert_eq!(r.outputs["status"], "failed");
}

#[test]
fn database_and_file_name_text_is_inert_in_the_job_summary() {
    let db = common::fresh_db();
    let name = "0001_a<b>`c.sql";
    let ws = Workspace::new(
        PIPELINE,
        &[(
            name,
            "CREATE TABLE t (id int);\nDO $$ BEGIN RAISE EXCEPTION '[click here](https://evil.example/x) ![p](https://evil.example/p.png) www.evil.example **bold**'; END $$;\n",
        )],
    );
    let r = ws.run(&["apply"], &[("DATABASE_URL", &db.url)]);
    assert_eq!(r.code, 1, "{}", r.debug());
    // No link, image, autolink or emphasis can form: every metacharacter is escaped.
    for live in ["[click here](", "![p](", "https://", "www.evil", "**bold**"] {
        assert!(!r.summary.contains(live), "{live} is live:\n{}", r.summary);
    }
    assert!(
        r.summary
            .contains("\\[click here\\](https\\://evil.example/x) \\!\\[p\\]"),
        "{}",
        r.summary
    );
    // The location is a code span the backtick in the name cannot close, showing `<`
    // as itself.
    assert!(
        r.summary.contains("``migrations/0001_a<b>`c.sql:2:1``"),
        "{}",
        r.summary
    );
    assert!(!r.summary.contains("&lt;b&gt;`c.sql:"), "{}", r.summary);
}

#[test]
fn more_than_ten_errors_are_capped_with_a_notice() {
    let db = common::fresh_db();
    let files: Vec<(String, String)> = (1..=13)
        .map(|i| {
            (
                format!("{i:04}_broken.sql"),
                "CREATE TABLE (;\n".to_string(),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let ws = Workspace::new(PIPELINE, &refs);
    let r = ws.run(
        &["pipeline", "run", "--env", "staging"],
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/staging"),
            ("STAGING_DATABASE_URL", &db.url),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.debug());
    assert_eq!(r.annotations("error").len(), 10, "{}", r.debug());
    let notices = r.annotations("notice");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains("see the job summary") || notices[0].contains("job summary"));
    // The summary lists all of them.
    assert!(
        r.summary.matches("0013_broken.sql").count() >= 1,
        "{}",
        r.summary
    );
    assert!(r.summary.contains("### Rollback instructions"));
}

#[test]
fn summary_stays_under_one_mebibyte() {
    // Another tool of the same step already wrote most of the budget: ours is cut,
    // visibly, so GitHub does not drop the whole summary.
    let db = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &users_migrations());
    let summary = ws.path("earlier_summary");
    // (Leaves less room than the shortest pipeline summary needs.)
    std::fs::write(&summary, "x".repeat(999_700) + "\n").unwrap();
    ws.command()
        .args(["pipeline", "run", "--env", "staging"])
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_REF", "refs/heads/staging")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("STAGING_DATABASE_URL", &db.url)
        .run()
        .ok();
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.len() < 1024 * 1024, "{}", text.len());
    assert!(text.contains("Summary truncated"));
}

#[test]
fn action_yml_matches_the_code() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml")).unwrap();
    let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let keys = |k: &str| -> Vec<String> {
        let mut v: Vec<String> = y[k]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let mut inputs: Vec<String> = pgrollout::cli::action::INPUTS
        .iter()
        .map(|s| s.to_string())
        .collect();
    inputs.sort();
    assert_eq!(keys("inputs"), inputs);
    let mut outputs: Vec<String> = pgrollout::render::github::OUTPUTS
        .iter()
        .map(|s| s.to_string())
        .collect();
    outputs.sort();
    assert_eq!(keys("outputs"), outputs);
    assert_eq!(y["runs"]["using"].as_str(), Some("docker"));
    assert!(y["branding"]["icon"].is_string());
    for (name, def) in y["inputs"].as_mapping().unwrap() {
        assert!(
            def["description"].is_string(),
            "{name:?} has no description"
        );
    }
}

#[test]
fn sigterm_during_review_delay_applies_nothing() {
    let db = common::fresh_db();
    let ws = Workspace::new(PIPELINE, &users_migrations());
    let mut running = ws
        .command()
        .args(["pipeline", "run", "--review-delay", "60s"])
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_REF", "refs/tags/v2.0.0")
        .env("PROD_DATABASE_URL", &db.url)
        .spawn();
    // Wait until the countdown has started, then cancel the job the way the runner does.
    running.wait_for_line(Stream::Stdout, "the countdown", |l| {
        l.contains("applying in")
    });
    running.signal(libc::SIGTERM);
    let r = running.wait();
    // 130: interrupted, the exit-code contract's word for a cancelled job.
    assert_eq!(r.code, 130, "{r}");
    assert_eq!(applied(&db.url), Vec::<String>::new());
    assert_eq!(r.outputs["status"], "cancelled", "{r}");
}

/// One failure, one annotation: the migration's error at its line — not again from the
/// step that ran it or from the command's closing error. A 10 000-character server
/// message appears in the job summary once, cut to a bounded length.
#[test]
fn a_failure_is_annotated_once_and_its_long_message_shown_once_bounded() {
    let db = common::fresh_db();
    let long = "x".repeat(10_000);
    let ws = Workspace::new(
        PIPELINE,
        &[(
            "0001_boom.sql",
            &format!("CREATE TABLE t (id int);\nDO $$ BEGIN RAISE EXCEPTION '{long}'; END $$;\n"),
        )],
    );
    let r = common::actions::push_staging(&ws, &db.url);
    assert_eq!(r.code, 1, "{}", r.debug());
    let errors = r.annotations("error");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains("file=migrations/0001_boom.sql,line=2"),
        "{}",
        errors[0]
    );
    let run_of_x = "x".repeat(2_500);
    assert!(
        !r.summary.contains(&run_of_x),
        "the summary shows the message unbounded"
    );
    assert_eq!(
        r.summary.matches(&"x".repeat(1_000)).count(),
        1,
        "{}",
        r.summary
    );
}

/// Over GitHub's 1 MiB the summary loses table rows, never the failure: with 3 001
/// pending migrations and a failing first one, the status, the failure with its
/// location and the problems stay; the migrations table ends with "… and N more".
#[test]
fn a_summary_over_the_limit_keeps_the_failure_and_summarises_the_tables() {
    let db = common::fresh_db();
    let pad = "p".repeat(200);
    let mut files: Vec<(String, String)> = vec![(
        "0001_boom.sql".to_string(),
        "DO $$ BEGIN RAISE EXCEPTION 'the first one fails'; END $$;\n".to_string(),
    )];
    for i in 2..=3001 {
        files.push((format!("{i:04}_{pad}_{i}.sql"), "SELECT 1;\n".to_string()));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let ws = Workspace::new(PIPELINE, &refs);
    let r = common::actions::push_staging(&ws, &db.url);
    assert_eq!(r.code, 1, "{}", r.debug());
    assert!(r.summary.len() < 1_000_000, "{} bytes", r.summary.len());
    assert!(r.summary.contains("❌ failed"), "{}", &r.summary[..2000]);
    assert!(
        r.summary.contains("the first one fails"),
        "{}",
        &r.summary[..2000]
    );
    assert!(
        r.summary.contains("0001_boom.sql:1:"),
        "{}",
        &r.summary[..2000]
    );
    let tail = &r.summary[r.summary.len().saturating_sub(3000)..];
    assert!(tail.contains("more (not shown"), "{tail}");
}
