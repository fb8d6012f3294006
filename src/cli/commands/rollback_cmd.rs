//! `rollback` and `test`.

use super::{exit, parse_version, CliError, Context, Outcome};
use crate::engine::rollback::{
    self, DownOrigin, RollbackError, RollbackFailure, RollbackOptions, RollbackReport,
    RollbackTarget,
};
use crate::engine::test::{self, TestError, TestOptions, TestReport, Verdict};
use crate::migration::MigrationSet;
use crate::report::{Event, Level};

/// What to roll back: exactly one of these is given (clap checks it).
pub(super) struct Which<'a> {
    pub steps: Option<u32>,
    pub to: Option<&'a str>,
    pub last_run: bool,
    pub run: Option<&'a str>,
}

pub(super) fn rollback(
    ctx: &mut Context,
    which: Which,
    dry_run: bool,
    allow_generated: bool,
    use_file_down: bool,
) -> Result<Outcome, CliError> {
    let target = match which {
        Which {
            steps: Some(n),
            to: None,
            last_run: false,
            run: None,
        } => RollbackTarget::Steps(n),
        Which {
            steps: None,
            to: Some(v),
            last_run: false,
            run: None,
        } => RollbackTarget::To(parse_version(v)?),
        Which {
            steps: None,
            to: None,
            last_run: true,
            run: None,
        } => RollbackTarget::Run(None),
        Which {
            steps: None,
            to: None,
            last_run: false,
            run: Some(id),
        } => RollbackTarget::Run(Some(id.trim().to_string())),
        _ => {
            return Err(CliError::Usage(
                "rollback needs exactly one of --steps N, --to VERSION, --last-run or --run ID"
                    .into(),
            ))
        }
    };
    let db = ctx.need_target("rollback")?;
    // The down SQL is stored in the database: unreadable files must not stop an
    // emergency rollback. They only serve comparisons and generated rollbacks.
    let set = match MigrationSet::load_in(&ctx.migrations_dir, &ctx.layout, true) {
        Ok(set) => set,
        Err(errors) => {
            let msg = format!(
                "the migration files in {} could not all be read ({}): rolling back with the down SQL stored in the database only",
                ctx.migrations_dir.display(),
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            ctx.reporter.event(&Event::Diagnostic {
                level: Level::Warning,
                location: None,
                message: &msg,
            });
            MigrationSet {
                dir: ctx.migrations_dir.clone(),
                ..MigrationSet::default()
            }
        }
    };
    let opts = RollbackOptions {
        run: ctx.run_options(None, dry_run)?,
        target,
        dry_run,
        allow_generated,
        use_file_down,
    };
    let run = ctx.ci.run_context(None);
    match rollback::rollback(&db, &set, &opts, &run, ctx.reporter) {
        Ok(report) => Ok(Outcome::ok(if ctx.json() {
            rollback_json(&report, None)
        } else {
            rollback_text(&report)
        })),
        Err(RollbackFailure { report, error }) => {
            if ctx.json() {
                return Ok(Outcome {
                    code: exit::FAILED,
                    stdout: rollback_json(&report, Some(&error)),
                });
            }
            if !matches!(error, RollbackError::Down(_)) {
                ctx.reporter.event(&Event::Diagnostic {
                    level: Level::Error,
                    location: None,
                    message: &error.to_string(),
                });
            }
            let mut stdout = if report.rolled_back.is_empty() {
                String::new()
            } else {
                rollback_text(&report)
            };
            stdout.push_str(if dry_run {
                "✗ rollback rehearsal failed\n"
            } else {
                "✗ rollback failed\n"
            });
            Ok(Outcome {
                code: exit::FAILED,
                stdout,
            })
        }
    }
}

fn how(origin: DownOrigin, no_tx: bool) -> String {
    format!(
        "{} down SQL{}",
        origin.as_str(),
        if no_tx { ", transaction:false" } else { "" }
    )
}

fn indented(sql: &str) -> String {
    sql.trim_end()
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect()
}

pub fn rollback_text(r: &RollbackReport) -> String {
    let mut out = String::new();
    if r.dry_run {
        for p in &r.planned {
            out.push_str(&format!(
                "would roll back  {}  {}  ({})\n",
                p.version,
                p.name,
                how(p.origin, p.no_transaction)
            ));
            if p.origin == DownOrigin::Generated {
                out.push_str(
                    "  generated rollback (review it; it runs only with --allow-generated):\n",
                );
            }
            out.push_str(&indented(&p.sql));
        }
        for d in &r.rolled_back {
            out.push_str(&format!(
                "rehearsed  {}  {}  ({} ms, rolled back)\n",
                d.version, d.name, d.duration_ms
            ));
        }
        for v in &r.not_rehearsed {
            out.push_str(&format!("not rehearsed  {v}  (transaction:false)\n"));
        }
        out.push_str("dry run: nothing was written\n");
        return out;
    }
    for d in &r.rolled_back {
        out.push_str(&format!(
            "rolled back  {}  {}  ({}, {} ms)\n",
            d.version,
            d.name,
            d.origin.as_str(),
            d.duration_ms
        ));
        if d.origin == DownOrigin::Generated {
            if let Some(p) = r.planned.iter().find(|p| p.version == d.version) {
                out.push_str("  with this generated rollback:\n");
                out.push_str(&indented(&p.sql));
            }
        }
    }
    out.push_str(&format!(
        "{} migration(s) rolled back\n",
        r.rolled_back.len()
    ));
    out
}

pub fn rollback_json(r: &RollbackReport, error: Option<&RollbackError>) -> String {
    let err = error.map(|e| match e {
        RollbackError::Down(d) => serde_json::to_value(d).expect("serialisable"),
        other => serde_json::json!({ "message": other.to_string() }),
    });
    serde_json::to_string_pretty(&serde_json::json!({
        "format_version": 1,
        "status": if error.is_some() { "failed" } else { "ok" },
        "dry_run": r.dry_run,
        "planned": r.planned,
        "rolled_back": r.rolled_back,
        "not_rehearsed": r.not_rehearsed,
        "server_version": r.server_version,
        "error": err,
    }))
    .expect("serialisable")
        + "\n"
}

pub(super) fn test(
    ctx: &mut Context,
    force: bool,
    allow_generated: bool,
) -> Result<Outcome, CliError> {
    let db = ctx.need_target("test")?;
    let set = ctx.load()?;
    let problems = crate::plan::check_files(&set);
    if problems.iter().any(|p| p.level == Level::Error) {
        super::report_problems(ctx, &problems);
        return Err(CliError::Failed(
            "the migration files have errors: fix them first (`pgrollout validate`)".into(),
        ));
    }
    let opts = TestOptions {
        run: ctx.run_options(None, false)?,
        allow_generated,
        force,
    };
    let run = ctx.ci.run_context(None);
    let report = test::test(&db, &set, &opts, &run, ctx.reporter).map_err(|e| match e {
        TestError::Refused(m) => CliError::Refused(m),
        other => CliError::Failed(other.to_string()),
    })?;
    let stdout = if ctx.json() {
        serde_json::to_string_pretty(&serde_json::json!({
            "format_version": 1,
            "status": if report.broken() > 0 { "failed" } else { "ok" },
            "migrations": report.migrations,
        }))
        .expect("serialisable")
            + "\n"
    } else {
        test_text(&report)
    };
    Ok(Outcome {
        code: if report.broken() > 0 {
            exit::FAILED
        } else {
            exit::OK
        },
        stdout,
    })
}

pub fn test_text(r: &TestReport) -> String {
    let wv = r
        .migrations
        .iter()
        .map(|t| t.version.len())
        .max()
        .unwrap_or(0)
        .max(7);
    let wn = r
        .migrations
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!("{:<wv$}  {:<wn$}  RESULT\n", "VERSION", "NAME");
    for t in &r.migrations {
        let verdict = if t.generated {
            format!("{} (generated rollback)", t.verdict.as_str())
        } else {
            t.verdict.as_str().to_string()
        };
        out.push_str(&format!("{:<wv$}  {:<wn$}  {verdict}\n", t.version, t.name));
        if t.verdict != Verdict::Reversible {
            for d in &t.details {
                out.push_str(&format!("    {d}\n"));
            }
        }
    }
    out.push_str(&format!(
        "\n{} reversible, {} irreversible, {} broken, {} untested\n",
        r.count(Verdict::Reversible),
        r.count(Verdict::Irreversible),
        r.count(Verdict::Broken),
        r.count(Verdict::Untested)
    ));
    out
}
