use super::trigger::is_semver_tag;
use super::*;
use std::path::Path;

const FILE: &str = r#"
environments:
  staging:
    database_url_env: STAGING_DATABASE_URL
    on: { branches: [staging] }
    steps: [validate, apply]
  production:
    database_url_env: PROD_DATABASE_URL
    on: { tags: ["v*.*.*"], dispatch: { confirm: MIGRATE-PRODUCTION } }
    steps: [apply]
"#;

fn file() -> PipelineFile {
    PipelineFile::parse(Path::new("pgrollout.yml"), FILE).unwrap()
}

fn push(git_ref: &str) -> GitHubEvent {
    GitHubEvent {
        name: Some("push".into()),
        git_ref: Some(git_ref.into()),
        ..Default::default()
    }
}

fn dispatch(inputs: serde_json::Value) -> GitHubEvent {
    GitHubEvent {
        name: Some("workflow_dispatch".into()),
        git_ref: Some("refs/heads/main".into()),
        payload: serde_json::json!({ "inputs": inputs }),
        ..Default::default()
    }
}

fn run_of(d: Decision) -> (String, bool) {
    match d {
        Decision::Run { env, dry_run, .. } => (env, dry_run),
        other => panic!("{other:?}"),
    }
}

#[test]
fn semver_tags() {
    for ok in [
        "v1.2.3",
        "v0.0.0",
        "v10.20.30",
        "v1.2.3-rc.1",
        "v1.2.3+build.5",
        "v1.0.0-alpha-1",
    ] {
        assert!(is_semver_tag(ok), "{ok}");
    }
    for bad in [
        "v1.2",
        "v1.2.3.4",
        "v01.2.3",
        "v1.02.3",
        "1.2.3",
        "vfoo.bar.baz",
        "v1.2.3-",
        "v1.2.3-01",
        "v1..3",
    ] {
        assert!(!is_semver_tag(bad), "{bad}");
    }
}

#[test]
fn staging_push_selects_staging() {
    let d = decide(&file(), &Request::default(), &push("refs/heads/staging"));
    assert_eq!(run_of(d), ("staging".into(), false));
}

#[test]
fn other_branch_selects_nothing() {
    let d = decide(&file(), &Request::default(), &push("refs/heads/main"));
    assert!(
        matches!(d, Decision::Skip { ref reason, .. } if reason.contains("on.branches")),
        "{d:?}"
    );
}

#[test]
fn semver_tag_selects_production() {
    let d = decide(&file(), &Request::default(), &push("refs/tags/v1.2.3"));
    assert_eq!(run_of(d), ("production".into(), false));
}

#[test]
fn bad_tags_are_refused() {
    for t in ["v1.2", "v1.2.3.4", "v01.2.3", "vfoo.bar.baz"] {
        let d = decide(
            &file(),
            &Request::default(),
            &push(&format!("refs/tags/{t}")),
        );
        assert!(matches!(d, Decision::Refuse { .. }), "{t}: {d:?}");
    }
    // An unrelated tag selects nothing.
    let d = decide(&file(), &Request::default(), &push("refs/tags/docs-2024"));
    assert!(matches!(d, Decision::Skip { .. }), "{d:?}");
}

#[test]
fn env_flag_from_unexpected_ref_is_refused() {
    let req = Request {
        env: Some("production".into()),
        ..Default::default()
    };
    let d = decide(&file(), &req, &push("refs/heads/staging"));
    assert!(matches!(d, Decision::Refuse { .. }), "{d:?}");
}

#[test]
fn dispatch_gates() {
    let f = file();
    let none = decide(
        &f,
        &Request::default(),
        &dispatch(serde_json::json!({"environment": "production"})),
    );
    assert!(matches!(none, Decision::Refuse { .. }), "{none:?}");
    let wrong = decide(
        &f,
        &Request::default(),
        &dispatch(
            serde_json::json!({"environment": "production", "confirm": "migrate-production"}),
        ),
    );
    assert!(matches!(wrong, Decision::Refuse { .. }), "{wrong:?}");
    let padded = decide(
        &f,
        &Request::default(),
        &dispatch(
            serde_json::json!({"environment": "production", "confirm": "MIGRATE-PRODUCTION "}),
        ),
    );
    assert!(matches!(padded, Decision::Refuse { .. }), "{padded:?}");
    let default_dry = decide(
        &f,
        &Request::default(),
        &dispatch(
            serde_json::json!({"environment": "production", "confirm": "MIGRATE-PRODUCTION"}),
        ),
    );
    assert_eq!(run_of(default_dry), ("production".into(), true));
    let real = decide(
        &f,
        &Request::default(),
        &dispatch(
            serde_json::json!({"environment": "production", "confirm": "MIGRATE-PRODUCTION", "dry_run": "false"}),
        ),
    );
    assert_eq!(run_of(real), ("production".into(), false));
}

#[test]
fn dispatch_without_environment_is_skipped_and_without_dispatch_refused() {
    let f = file();
    let d = decide(&f, &Request::default(), &dispatch(serde_json::json!({})));
    assert!(matches!(d, Decision::Skip { .. }), "{d:?}");
    let d = decide(
        &f,
        &Request::default(),
        &dispatch(serde_json::json!({"environment": "staging", "confirm": "x"})),
    );
    assert!(
        matches!(d, Decision::Refuse { ref reason, .. } if reason.contains("manual")),
        "{d:?}"
    );
}

#[test]
fn inputs_are_read_when_the_payload_has_none() {
    let mut gh = dispatch(serde_json::json!({}));
    gh.input_environment = Some("production".into());
    gh.input_confirm = Some("MIGRATE-PRODUCTION".into());
    gh.input_dry_run = Some("false".into());
    assert_eq!(
        run_of(decide(&file(), &Request::default(), &gh)),
        ("production".into(), false)
    );
    gh.input_dry_run = Some("maybe".into());
    assert!(matches!(
        decide(&file(), &Request::default(), &gh),
        Decision::Usage(_)
    ));
}

#[test]
fn local_runs_need_env_and_phrase() {
    let f = file();
    let gh = GitHubEvent::default();
    assert!(matches!(
        decide(&f, &Request::default(), &gh),
        Decision::Usage(_)
    ));
    let req = Request {
        env: Some("staging".into()),
        ..Default::default()
    };
    assert_eq!(run_of(decide(&f, &req, &gh)), ("staging".into(), false));
    let req = Request {
        env: Some("production".into()),
        ..Default::default()
    };
    assert!(matches!(decide(&f, &req, &gh), Decision::Refuse { .. }));
    let req = Request {
        env: Some("production".into()),
        confirm: Some("MIGRATE-PRODUCTION".into()),
        ..Default::default()
    };
    assert_eq!(run_of(decide(&f, &req, &gh)), ("production".into(), false));
    let req = Request {
        env: Some("prodution".into()),
        ..Default::default()
    };
    assert!(
        matches!(decide(&f, &req, &gh), Decision::Usage(ref m) if m.contains("did you mean")),
        "{:?}",
        decide(&f, &req, &gh)
    );
}

#[test]
fn other_events_select_nothing() {
    let gh = GitHubEvent {
        name: Some("pull_request".into()),
        ..Default::default()
    };
    assert!(matches!(
        decide(&file(), &Request::default(), &gh),
        Decision::Skip { .. }
    ));
}

#[test]
fn deleted_tag_selects_nothing() {
    let mut gh = push("refs/tags/v1.2.3");
    gh.payload = serde_json::json!({ "deleted": true });
    assert!(matches!(
        decide(&file(), &Request::default(), &gh),
        Decision::Skip { .. }
    ));
}

#[test]
fn backup_marker_runs_after_the_review_delay_right_before_apply() {
    let f = PipelineFile::parse(
        Path::new("pgrollout.yml"),
        "environments:\n  p:\n    database_url_env: X\n    steps: [health, backup-marker, dry-run, review-delay: 30s, apply, verify]\n  q:\n    database_url_env: X\n    steps: [backup-marker, apply, review-delay: 1s, verify]\n  r:\n    database_url_env: X\n    steps: [backup-marker: { max_age: 1h }, review-delay: 1s, apply]\n",
    )
    .unwrap();
    let keys = |env: &str| -> Vec<&'static str> {
        run_order(&f.environment(env).unwrap().steps)
            .iter()
            .map(|s| s.key())
            .collect()
    };
    assert_eq!(
        keys("p"),
        [
            "health",
            "dry-run",
            "review-delay",
            "backup-marker",
            "apply",
            "verify"
        ]
    );
    // No delay before apply, or a check that writes nothing: as written.
    assert_eq!(
        keys("q"),
        ["backup-marker", "apply", "review-delay", "verify"]
    );
    assert_eq!(keys("r"), ["backup-marker", "review-delay", "apply"]);
}
