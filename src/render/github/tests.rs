use super::*;
use std::time::Duration;

/// Output captured from a reporter.
#[derive(Clone, Default)]
struct Captured(Buffer);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0 .0.borrow().clone()).unwrap()
    }
}

fn reporter(secrets: &[&str], files: Files) -> (GitHub, Captured) {
    let c = Captured::default();
    let g = GitHub::new(
        Box::new(c.0.clone()),
        secrets.iter().map(|s| s.to_string()).collect(),
        files,
    );
    (g, c)
}

/// Lines the runner would treat as commands: first non-blank chars `::`, or `##[` anywhere.
fn commands(text: &str) -> Vec<String> {
    text.split(['\r', '\n'])
        .filter(|l| l.trim_start().starts_with("::") || l.contains("##["))
        .map(str::to_string)
        .collect()
}

// The expected strings are what @actions/core 3.0.1 emits for the same inputs
// (docs/reference: "Sample results").
#[test]
fn escaping_matches_actions_core() {
    assert_eq!(
        command("error", &[], "first line\nsecond line\r\nthird\rfourth"),
        "::error::first line%0Asecond line%0D%0Athird%0Dfourth"
    );
    assert_eq!(
        command(
            "error",
            &[],
            "100% done; literal %0A and %25 and %3A stay literal"
        ),
        "::error::100%25 done; literal %250A and %2525 and %253A stay literal"
    );
    assert_eq!(
        command(
            "error",
            &[
                ("title", "Build: failed, step 2\nnext :: end 50%".into()),
                ("file", "Cargo.toml".into()),
                ("line", "1".into())
            ],
            "deploy failed"
        ),
        "::error title=Build%3A failed%2C step 2%0Anext %3A%3A end 50%25,file=Cargo.toml,line=1::deploy failed"
    );
    assert_eq!(
        command(
            "error",
            &[
                ("file", "src/my dir/a,b c.rs".into()),
                ("line", "2".into()),
                ("col", "1".into())
            ],
            "path with spaces and commas"
        ),
        "::error file=src/my dir/a%2Cb c.rs,line=2,col=1::path with spaces and commas"
    );
    assert_eq!(
        command(
            "warning",
            &[("file", "C:\\Users\\me\\x.rs".into()), ("line", "1".into())],
            "drive letter colon is escaped"
        ),
        "::warning file=C%3A\\Users\\me\\x.rs,line=1::drive letter colon is escaped"
    );
    assert_eq!(
        command(
            "error",
            &[("file", "dir/100%=done;]x.rs".into()), ("line", "1".into())],
            "odd path"
        ),
        "::error file=dir/100%25=done;]x.rs,line=1::odd path"
    );
    assert_eq!(
        command("add-mask", &[], "p@ss%0Aword\nline2"),
        "::add-mask::p@ss%250Aword%0Aline2"
    );
    assert_eq!(
        command("group", &[], "Deploy: prod, eu-west-1 (50%)\nsecond"),
        "::group::Deploy: prod, eu-west-1 (50%25)%0Asecond"
    );
}

#[test]
fn lossy_property_edges_are_normalised() {
    assert_eq!(escape_property("trail  "), "trail");
    assert_eq!(escape_property("==x"), "x");
}

#[test]
fn untrusted_lines_are_neutralised() {
    for hostile in [
        "::error::pwned",
        "   ::add-mask::x",
        "text ##[error]legacy",
        "::stop-commands::abc",
    ] {
        let n = neutralise(hostile);
        assert!(commands(&n).is_empty(), "{n:?}");
    }
    assert_eq!(neutralise("plain: text"), "plain: text");
    let lines = safe_lines("ok\r::error::a\n::warning::b\r\n##[error]c");
    assert_eq!(lines.len(), 4);
    assert!(commands(&lines.join("\n")).is_empty());
}

#[test]
fn message_cap_respects_char_boundaries() {
    let s = "é😀".repeat(3000);
    let c = cap_utf16(&s, MAX_MESSAGE_UTF16);
    assert!(c.encode_utf16().count() <= MAX_MESSAGE_UTF16);
    assert!(c.ends_with('…'));
    assert_eq!(cap_utf16("short", 10), "short");
}

#[test]
fn summary_is_bounded_with_a_note() {
    let big: String = (0..100_000)
        .map(|i| format!("| row {i} | ok |\n"))
        .collect();
    assert!(big.len() > SUMMARY_BUDGET);
    let b = bounded(big, SUMMARY_BUDGET);
    assert!(b.len() <= SUMMARY_BUDGET, "{}", b.len());
    assert!(b.contains("Summary truncated"));
    assert_eq!(bounded("small\n".into(), 100), "small\n");
}

#[test]
fn output_entries_use_random_delimiters_and_lf() {
    let e = output_entry("applied", "0001\r\n0002");
    let lines: Vec<&str> = e.split('\n').collect();
    assert!(lines[0].starts_with("applied<<ghadelimiter_"));
    let d = &lines[0]["applied<<".len()..];
    assert_eq!(d.len(), "ghadelimiter_".len() + 36);
    assert_eq!(&d[13 + 14..13 + 15], "4", "uuid v4: {d}");
    assert_eq!(lines[1], "0001");
    assert_eq!(lines[2], "0002");
    assert_eq!(lines[3], d);
    assert!(!e.contains('\r'));
    assert_ne!(delimiter(), delimiter());
}

#[test]
fn secrets_are_masked_before_anything_else() {
    let (mut g, c) = reporter(&["hunter2%x"], Files::default());
    g.event(&Event::Info {
        message: "password hunter2%x leaked?",
    });
    g.finish();
    let t = c.text();
    assert!(t.starts_with("::add-mask::hunter2%25x\n"), "{t}");
    assert!(!t[20..].contains("hunter2"), "{t}");
}

#[test]
fn at_most_ten_annotations_per_kind_most_severe_first() {
    let (mut g, c) = reporter(&[], Files::default());
    let loc = Location::new(Path::new("migrations/0001_a.sql"), 3, 7);
    for i in 0..4 {
        g.event(&Event::Diagnostic {
            level: Level::Warning,
            location: Some(&loc),
            message: &format!("warning {i}"),
        });
    }
    for i in 0..15 {
        g.event(&Event::Diagnostic {
            level: Level::Error,
            location: Some(&loc),
            message: &format!("error {i}"),
        });
    }
    g.finish();
    let t = c.text();
    let errors: Vec<&str> = t.lines().filter(|l| l.starts_with("::error ")).collect();
    let warnings: Vec<&str> = t.lines().filter(|l| l.starts_with("::warning ")).collect();
    let notices: Vec<&str> = t.lines().filter(|l| l.starts_with("::notice ")).collect();
    assert_eq!(errors.len(), 10, "{t}");
    assert_eq!(warnings.len(), 4);
    assert_eq!(notices.len(), 1);
    assert!(notices[0].contains("5 more problem(s)"), "{}", notices[0]);
    let first_error = t.find("::error ").unwrap();
    let first_warning = t.find("::warning ").unwrap();
    assert!(first_error < first_warning);
    assert!(
        errors[0].contains("file=migrations/0001_a.sql,line=3,col=7"),
        "{}",
        errors[0]
    );
}

#[test]
fn server_notice_cannot_inject() {
    let (mut g, c) = reporter(&[], Files::default());
    g.event(&Event::ServerNotice {
        version: Some("1"),
        severity: "NOTICE",
        message: "::error::owned\n##[warning]legacy\r::add-mask::x",
    });
    g.finish();
    assert!(commands(&c.text()).is_empty(), "{}", c.text());
}

#[test]
fn hostile_file_name_stays_in_its_property() {
    let (mut g, c) = reporter(&[], Files::default());
    let loc = Location::new(Path::new("migrations/0001_a,b:c%d e\n::error::x.sql"), 1, 1);
    g.event(&Event::SectionFailed {
        direction: Direction::Up,
        version: "0001",
        name: "a",
        location: Some(&loc),
        message: "syntax error\nat or near \"x\"",
    });
    g.finish();
    let t = c.text();
    let cmds = commands(&t);
    assert_eq!(cmds.len(), 1, "{t}");
    assert!(
        cmds[0].contains("file=migrations/0001_a%2Cb%3Ac%25d e%0A%3A%3Aerror%3A%3Ax.sql,line=1,col=1::syntax error%0Aat or near \"x\""),
        "{}",
        cmds[0]
    );
}

#[test]
fn steps_are_log_groups() {
    let (mut g, c) = reporter(&[], Files::default());
    g.event(&Event::StepStarted {
        step: "validate",
        index: 0,
        total: 2,
    });
    g.event(&Event::Info {
        message: "checking",
    });
    g.event(&Event::StepFinished {
        step: "validate",
        status: summary::StepStatus::Passed,
        duration: Duration::from_millis(5),
        detail: "ok",
    });
    g.finish();
    let t = c.text();
    let cmds = commands(&t);
    assert_eq!(
        cmds,
        ["::group::pgrollout 1/2: validate", "::endgroup::"],
        "{t}"
    );
}

#[test]
fn summary_and_outputs_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sum = dir.path().join("sum");
    std::fs::write(&out, "").unwrap();
    let files = Files {
        output: Some(out.clone()),
        step_summary: Some(sum.clone()),
        runner_temp: Some(dir.path().to_path_buf()),
        workspace: None,
        cwd_in_workspace: None,
    };
    let (mut g, _c) = reporter(&["s3cret"], files);
    let mut s = RunSummary::early(
        RunStatus::Failed,
        "push to branch staging".into(),
        "apply failed: s3cret".into(),
    );
    s.environment = Some("staging".into());
    s.applied = vec!["0001".into(), "0002".into()];
    s.pending = vec!["0003".into()];
    s.database_read = true;
    s.migrations.push(MigrationRow {
        version: "0003".into(),
        name: "a|b<c>".into(),
        status: "failed".into(),
        duration_ms: None,
        checksum: "0123456789abcdef".into(),
    });
    s.rollback = Some(summary::Rollback {
        reversible: vec!["0002".into(), "0001".into()],
        command: Some("pgrollout rollback --steps 2".into()),
        failed: Some("0003".into()),
        url_variable: Some("STAGING_DATABASE_URL".into()),
        ..Default::default()
    });
    g.event(&Event::PipelineFinished { summary: &s });
    g.finish();
    let md = std::fs::read_to_string(&sum).unwrap();
    assert!(md.contains("## pgrollout · staging — ❌ failed"), "{md}");
    assert!(md.contains("### Rollback instructions"));
    assert!(md.contains("pgrollout rollback --steps 2"));
    assert!(
        md.contains("| 0003 | a\\|b&lt;c&gt; | failed | — | `0123456789ab` |"),
        "{md}"
    );
    assert!(!md.contains("s3cret"));
    let o = std::fs::read_to_string(&out).unwrap();
    let values = parse_outputs(&o);
    assert_eq!(values["environment"], "staging");
    assert_eq!(values["status"], "failed");
    assert_eq!(values["applied-count"], "2");
    assert_eq!(values["applied"], "0001\n0002");
    assert_eq!(values["pending-count"], "1");
    assert_eq!(values["backup-marker"], "");
    assert!(std::path::Path::new(&values["summary-file"]).exists());
}

/// Parse `$GITHUB_OUTPUT` the way the runner does (heredoc form).
pub(crate) fn parse_outputs(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut lines = text.split('\n');
    while let Some(l) = lines.next() {
        if l.is_empty() {
            continue;
        }
        let (name, d) = l.split_once("<<").expect("heredoc form");
        let mut v = Vec::new();
        for x in lines.by_ref() {
            if x == d {
                break;
            }
            v.push(x);
        }
        out.insert(name.to_string(), v.join("\n"));
    }
    out
}
