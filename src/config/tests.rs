use super::*;

const SAMPLE: &str = r#"
migrations: migrations
environments:
  staging:
    database_url_env: STAGING_DATABASE_URL
    on: { branches: [staging] }
    steps: [validate, lint, dry-run, apply, verify]
  production:
    database_url_env: PROD_DATABASE_URL
    on: { tags: ["v*.*.*"], dispatch: { confirm: MIGRATE-PRODUCTION } }
    settings: { lock_timeout: 5s, statement_timeout: 15m, lint_fail_on: warning }
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
"#;

fn parse(text: &str) -> Result<PipelineFile, ConfigError> {
    PipelineFile::parse(Path::new("pgrollout.yml"), text)
}

#[test]
fn design_sample_parses() {
    let f = parse(SAMPLE).unwrap();
    assert_eq!(f.names(), ["staging", "production"]);
    let p = f.environment("production").unwrap();
    assert_eq!(p.settings.lock_timeout, Some(Duration::from_secs(5)));
    assert_eq!(p.settings.statement_timeout, Some(Duration::from_secs(900)));
    assert_eq!(p.settings.lint_fail_on, Some(FailOn::Warning));
    assert_eq!(p.steps[1], Step::BackupMarker(BackupOptions::default()));
    assert_eq!(p.steps[3], Step::ReviewDelay(Duration::from_secs(30)));
    match &p.steps[6] {
        Step::SmokeTest(c) => assert_eq!(c[0].name, "users readable"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        p.confirm_phrase("production").as_deref(),
        Some("MIGRATE-PRODUCTION")
    );
    assert_eq!(
        f.environment("staging").unwrap().confirm_phrase("staging"),
        None
    );
}

#[test]
fn unknown_key_has_position_and_suggestion() {
    let text = "environments:\n  staging:\n    database_url_env: X\n    stpes: [apply]\n";
    let e = parse(text).unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with("pgrollout.yml:4:5: "), "{s}");
    assert!(s.contains("unknown field `stpes`"), "{s}");
    assert!(s.contains("did you mean `steps`?"), "{s}");
}

#[test]
fn unknown_step_suggests() {
    let text = "environments:\n  s:\n    database_url_env: X\n    steps: [helth]\n";
    let s = parse(text).unwrap_err().to_string();
    assert!(s.contains("pgrollout.yml:4:"), "{s}");
    assert!(s.contains("did you mean `health`?"), "{s}");
    let text = "environments:\n  s:\n    database_url_env: X\n    steps: [dryrun]\n";
    let s = parse(text).unwrap_err().to_string();
    assert!(s.contains("did you mean `dry-run`?"), "{s}");
}

#[test]
fn unknown_setting_suggests() {
    let text = "settings: { lock_timeot: 5s }\nenvironments:\n  s:\n    database_url_env: X\n    steps: [apply]\n";
    let s = parse(text).unwrap_err().to_string();
    assert!(s.starts_with("pgrollout.yml:1:"), "{s}");
    assert!(s.contains("did you mean `lock_timeout`?"), "{s}");
}

#[test]
fn bad_duration_is_positioned() {
    let text = "environments:\n  s:\n    database_url_env: X\n    steps:\n      - review-delay: 30 parsecs\n";
    let s = parse(text).unwrap_err().to_string();
    assert!(s.starts_with("pgrollout.yml:5:"), "{s}");
    assert!(s.contains("unknown unit"), "{s}");
}

#[test]
fn url_in_file_is_refused() {
    let text =
        "environments:\n  s:\n    database_url_env: postgres://u:pw@h/db\n    steps: [apply]\n";
    let e = parse(text).unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with("pgrollout.yml:3:23: "), "{s}");
    assert!(s.contains("database_url_env"), "{s}");
    assert!(!s.contains("pw@"), "{s}");
    // A URL in a comment is fine.
    let ok = "# e.g. postgres://localhost/db\nenvironments:\n  s:\n    database_url_env: X # postgres://x\n    steps: [apply]\n";
    parse(ok).unwrap();
}

#[test]
fn database_url_key_explained() {
    let text = "environments:\n  s:\n    database_url: X\n    steps: [apply]\n";
    let s = parse(text).unwrap_err().to_string();
    assert!(s.contains("database_url_env"), "{s}");
}

#[test]
fn bad_variable_name() {
    let text = "environments:\n  s:\n    database_url_env: my url\n    steps: [apply]\n";
    let s = parse(text).unwrap_err().to_string();
    assert!(s.contains("is not an environment variable name"), "{s}");
    assert!(s.starts_with("pgrollout.yml:3:"), "{s}");
}

#[test]
fn smoke_check_needs_one_kind() {
    let text = "environments:\n  s:\n    database_url_env: X\n    steps:\n      - smoke-test:\n          - name: both\n            sql: select true\n            command: 'true'\n";
    let s = parse(text).unwrap_err().to_string();
    assert!(s.contains("exactly one of"), "{s}");
}

#[test]
fn backup_options_and_expect() {
    let text = "environments:\n  s:\n    database_url_env: X\n    steps:\n      - backup-marker: { dump: true }\n      - backup-marker: { max_age: 24h }\n      - smoke-test:\n          - { name: n, sql: select 42, expect: 42 }\n";
    let f = parse(text).unwrap();
    let s = &f.environment("s").unwrap().steps;
    assert!(matches!(&s[0], Step::BackupMarker(b) if b.dump));
    assert!(
        matches!(&s[1], Step::BackupMarker(b) if b.max_age == Some(Duration::from_secs(86400)))
    );
    assert!(matches!(&s[2], Step::SmokeTest(c) if c[0].expect.as_deref() == Some("42")));
}

#[test]
fn duplicate_environment_refused() {
    let text = "environments:\n  s:\n    database_url_env: X\n    steps: [apply]\n  s:\n    database_url_env: Y\n    steps: [apply]\n";
    assert!(parse(text).is_err());
}

#[test]
fn patterns_follow_github_filters() {
    assert!(pattern_matches("staging", "staging"));
    assert!(!pattern_matches("staging", "staging2"));
    assert!(pattern_matches("release/*", "release/1"));
    assert!(!pattern_matches("release/*", "release/1/x"));
    assert!(pattern_matches("release/**", "release/1/x"));
    assert!(pattern_matches("v*.*.*", "v1.2.3"));
    assert!(pattern_matches("v*.*.*", "v1.2.3.4"));
}

#[test]
fn did_you_mean_is_conservative() {
    assert_eq!(did_you_mean("stpes", &["steps", "on"]), Some("steps"));
    assert_eq!(did_you_mean("zzzzzz", &["steps", "on"]), None);
}

#[test]
fn settings_merge_prefers_environment() {
    let base = Settings {
        lock_timeout: Some(Duration::from_secs(1)),
        lock_retries: Some(3),
        ..Default::default()
    };
    let env = Settings {
        lock_timeout: Some(Duration::from_secs(9)),
        ..Default::default()
    };
    let m = base.merged(&env);
    assert_eq!(m.lock_timeout, Some(Duration::from_secs(9)));
    assert_eq!(m.lock_retries, Some(3));
}

#[test]
fn migrations_dir_relative_to_file() {
    let f = parse(SAMPLE).unwrap();
    assert_eq!(
        f.migrations_dir(Path::new("deploy/pgrollout.yml")),
        Some(PathBuf::from("deploy/migrations"))
    );
    assert_eq!(
        f.migrations_dir(Path::new("pgrollout.yml")),
        Some(PathBuf::from("migrations"))
    );
}

#[test]
fn lint_settings_parse_and_merge() {
    let text = "settings:\n  lint_disable: [prefer-text-field]\n  lint_severity: { ban-drop-column: error }\n  lint_size_threshold: 500MB\nenvironments:\n  staging:\n    database_url_env: X\n    settings: { lint_size_threshold: 2GB }\n    steps: [lint]\n";
    let f = parse(text).unwrap();
    let merged = f
        .settings
        .merged(&f.environment("staging").unwrap().settings);
    let o = merged.lint_options();
    assert_eq!(o.disabled, ["prefer-text-field"]);
    assert_eq!(
        o.severity_overrides.get("ban-drop-column"),
        Some(&crate::lint::Severity::Error)
    );
    assert_eq!(merged.lint_size_threshold, Some(2 * 1024 * 1024 * 1024));
    assert_eq!(f.settings.lint_size_threshold, Some(500 * 1024 * 1024));
}

#[test]
fn unknown_lint_rule_is_positioned_with_suggestion() {
    let text = "settings:\n  lint_fail_on: error\nenvironments:\n  staging:\n    database_url_env: X\n    settings:\n      lint_severity:\n        prefer-timestamptz: info\n        prefer-timestamp: info\n    steps: [lint]\n";
    let s = parse(text).unwrap_err().to_string();
    assert!(
        s.starts_with("pgrollout.yml:9:9: environments.staging.settings: unknown lint rule `prefer-timestamp` (did you mean `prefer-timestamptz`?)"),
        "{s}"
    );
}

#[test]
fn sizes() {
    assert_eq!(parse_size("1GB").unwrap(), 1 << 30);
    assert_eq!(parse_size("500 MB").unwrap(), 500 << 20);
    assert_eq!(parse_size("1024").unwrap(), 1024);
    assert!(parse_size("5 parsecs").is_err());
    let e = parse("settings: { lint_size_threshold: lots }\nenvironments: {}\n").unwrap_err();
    assert!(e.to_string().contains("is not a size"), "{e}");
}

/// The YAML parser (serde_yaml_ng) still gives the line and column of a syntax error:
/// an unclosed quote and an unclosed flow sequence point into the file.
#[test]
fn malformed_yaml_is_positioned() {
    let text = "environments:\n  s:\n    database_url_env: \"X\n    steps: [apply]\n";
    let s = parse(text).unwrap_err().to_string();
    // The scanner reports where it gave up: the end of the file.
    assert!(s.starts_with("pgrollout.yml:5:1: "), "{s}");
    assert!(s.contains("quoted scalar"), "{s}");
    let text = "environments:\n  s:\n    database_url_env: X\n    steps: [apply, verify\n";
    let s = parse(text).unwrap_err().to_string();
    assert!(
        s.starts_with("pgrollout.yml:4:") || s.starts_with("pgrollout.yml:5:"),
        "{s}"
    );
}

#[test]
fn body_is_the_message_without_its_position() {
    let text = "environments:\n  staging:\n    database_url_env: X\n    stpes: [apply]\n";
    let e = parse(text).unwrap_err();
    assert!(e.to_string().starts_with("pgrollout.yml:4:5: "), "{e}");
    assert!(
        e.body()
            .starts_with("environments.staging: unknown field `stpes`"),
        "{}",
        e.body()
    );
}

#[test]
fn a_file_that_is_not_utf8_is_positioned_at_its_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pgrollout.yml");
    std::fs::write(&path, b"environments:\n  \xc3\xa9t\xffa:\n").unwrap();
    let e = PipelineFile::load(&path).unwrap_err();
    assert_eq!(e.position().map(|(_, l, c)| (l, c)), Some((2, 5)), "{e}");
    assert!(e.body().contains("not valid UTF-8 (byte 0xff)"), "{e}");
}
