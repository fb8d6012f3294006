//! `pgrollout lint`: choose the migrations, lint them with the pipeline file's rule
//! choices (and live context when a database is given), report every finding as an
//! event, print the count line or the JSON document.

use std::path::{Path, PathBuf};

use crate::cli::commands::{CliError, Context, Outcome};
use crate::cli::{exit, LintArgs};
use crate::config::Settings;
use crate::engine::lint::{self as engine_lint, LintSettings};
use crate::engine::rehearse::{Baseline, LintRehearsal, Shadow};
use crate::lint::{Counts, Finding};
use crate::migration::{FileError, Migration, MigrationSet};

/// Version of the `--format json` document; bumped on any incompatible change.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// The `--format json` document (docs/lint-rules.md, "JSON output"), fields in this order.
#[derive(serde::Serialize)]
struct JsonReport<'a> {
    format_version: u32,
    findings: &'a [&'a Finding],
    counts: Counts,
    /// How many migration files were linted.
    files: usize,
    fail_on: &'a str,
    /// Whether a finding is at or above `fail_on` (the exit code is then 1).
    failed: bool,
}

pub fn run(ctx: &mut Context, args: &LintArgs) -> Result<Outcome, CliError> {
    let settings = file_settings(ctx)?;
    let mut lint = LintSettings::from_settings(&settings);
    if let Some(f) = args.fail_on {
        lint.fail_on = f.into();
    }
    // Offline, the files are parsed as they are linted (memory stays flat in the set's
    // size); live context and rehearsals look at every pending migration's statements.
    let set = if ctx.target.is_none() && !args.rehearse {
        ctx.load_lazy()?
    } else {
        ctx.load()?
    };
    let chosen = resolve_files(&set, &args.files)?;

    let mut session = None;
    let mut pending: Vec<&Migration> = Vec::new();
    if let Some(target) = ctx.target.clone() {
        let mut s = crate::engine::connect(
            &target,
            &ctx.global.schema,
            ctx.global.timing.connect_timeout,
            ctx.reporter,
        )?;
        let state = s.tracking.read(&mut s.db)?;
        pending = engine_lint::pending(&set, &state.rows);
        session = Some(s);
    }
    let (selected, what): (Vec<&Migration>, &str) = if !args.files.is_empty() {
        (chosen, "")
    } else if args.all || session.is_none() {
        (set.migrations.iter().collect(), "")
    } else {
        (pending.clone(), " pending")
    };

    let mut linted = if args.rehearse {
        rehearsed(ctx, &set, &selected, &pending, &lint, session.as_mut())?
    } else {
        engine_lint::lint(&set, &selected, &lint.options)
            .map_err(|errors| file_errors(ctx, &set, &errors))?
    };
    if let Some(s) = &mut session {
        engine_lint::live_context(&mut s.db, &mut linted, &pending, lint.size_threshold).map_err(
            |e| {
                CliError::Failed(format!(
                    "reading table sizes for live context: {}",
                    crate::db::conn::error_text(&e)
                ))
            },
        )?;
    }
    engine_lint::emit(&linted, ctx.reporter);

    let findings: Vec<&Finding> = linted.iter().flat_map(|l| l.findings.iter()).collect();
    let counts = Counts::of(findings.iter().copied());
    let failing = engine_lint::failing(findings.iter().copied(), lint.fail_on);
    let fail_on = engine_lint::fail_on_str(lint.fail_on);
    let stdout = if ctx.json() {
        let doc = JsonReport {
            format_version: JSON_FORMAT_VERSION,
            findings: &findings,
            counts,
            files: selected.len(),
            fail_on,
            failed: failing > 0,
        };
        serde_json::to_string_pretty(&doc).expect("serialisable") + "\n"
    } else {
        count_line(&counts, selected.len(), what, failing, fail_on)
    };
    Ok(Outcome {
        code: if failing > 0 { exit::FAILED } else { exit::OK },
        stdout,
    })
}

/// `--rehearse`: lint `selected` with what a shadow rehearsal observed.
fn rehearsed<'a>(
    ctx: &mut Context,
    set: &'a MigrationSet,
    selected: &[&'a Migration],
    pending: &[&'a Migration],
    lint: &LintSettings,
    mut session: Option<&mut crate::engine::Session>,
) -> Result<Vec<engine_lint::Linted<'a>>, CliError> {
    let Some(target) = ctx.target.clone() else {
        return Err(CliError::Usage(
            "lint --rehearse needs a database to take the schema from (--database-url URL, DATABASE_URL) \
             or --ephemeral to build it from the migrations"
                .into(),
        ));
    };
    let last = selected.iter().map(|m| m.version.value).max();
    let upto = |m: &&Migration| Some(m.version.value) <= last;
    let ephemeral = ctx.ephemeral_url.is_some();
    let plan_run: Vec<&Migration> = if ephemeral {
        set.migrations.iter().filter(upto).collect()
    } else {
        pending.iter().copied().filter(upto).collect()
    };
    if plan_run.is_empty() {
        // Nothing pending among the chosen files: nothing to rehearse.
        return engine_lint::lint(set, selected, &lint.options)
            .map_err(|errors| file_errors(ctx, set, &errors));
    }
    let (shadow, baseline) = if ephemeral {
        (Shadow::ephemeral(&target), Baseline::EachMigration)
    } else {
        let shadow = Shadow::of_target(
            &target,
            session.as_deref_mut().map(|s| &mut s.db),
            ctx.reporter,
        )
        .map_err(|e| CliError::Failed(format!("lint --rehearse: {e}")))?;
        (shadow, Baseline::Start)
    };
    let plan = LintRehearsal {
        run: plan_run,
        baseline,
        run_opts: ctx.run_options(None, false)?,
        threshold_bytes: lint.size_threshold,
    };
    let db = if ephemeral {
        None
    } else {
        session.map(|s| &mut s.db)
    };
    crate::engine::rehearse::lint_rehearsed(
        set,
        &shadow,
        &plan,
        selected,
        &lint.options,
        db,
        ctx.reporter,
    )
    .map_err(|e| CliError::Failed(format!("lint --rehearse: {e}")))
}

/// Files that could not be split, reported as reading them would have reported them.
fn file_errors(ctx: &mut Context, set: &MigrationSet, errors: &[FileError]) -> CliError {
    crate::cli::commands::report_file_errors(ctx.reporter, &set.dir, errors)
}

fn count_line(c: &Counts, files: usize, what: &str, failing: usize, fail_on: &str) -> String {
    if files == 0 && what.is_empty() {
        // `--all` (or no database) on an empty set: there is no file at all.
        return "✓ nothing to lint: the migrations directory has no migration files\n".into();
    }
    if files == 0 {
        return format!("✓ nothing to lint: no{what} migrations (pass --all to lint every file)\n");
    }
    let mark = if failing > 0 { "✗" } else { "✓" };
    let verdict = if failing > 0 {
        format!("; {failing} at or above --fail-on {fail_on}")
    } else {
        String::new()
    };
    format!(
        "{mark} {} finding(s) in {files}{what} migration file(s): {} error(s), {} warning(s), {} info{verdict}\n",
        c.total, c.error, c.warning, c.info
    )
}

/// The pipeline file's top-level `settings:`, merged with those of the `--env`
/// environment when one is named.
fn file_settings(ctx: &Context) -> Result<Settings, CliError> {
    let Some(loaded) = &ctx.global.pipeline else {
        return Ok(Settings::default());
    };
    let top = loaded.file.settings.clone();
    let Some(name) = ctx.global.env.as_deref().filter(|e| !e.is_empty()) else {
        return Ok(top);
    };
    match loaded.file.environment(name) {
        Some(env) => Ok(top.merged(&env.settings)),
        None => {
            let names = loaded.file.names();
            Err(CliError::Usage(format!(
                "--env {name}: {} has no such environment (it has: {}){}",
                loaded.path.display(),
                names.join(", "),
                crate::config::did_you_mean(name, &names)
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default()
            )))
        }
    }
}

/// The migrations `files` name, in version order. A path that is not the up file of
/// a migration of the set is a usage error naming it.
fn resolve_files<'a>(
    set: &'a MigrationSet,
    files: &[PathBuf],
) -> Result<Vec<&'a Migration>, CliError> {
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let known: Vec<(Option<PathBuf>, &Migration)> = set
        .migrations
        .iter()
        .map(|m| (canonical(&m.path), m))
        .collect();
    let mut out: Vec<&Migration> = Vec::new();
    for f in files {
        let Some(c) = canonical(f) else {
            return Err(CliError::Usage(format!(
                "{}: no such file (lint takes paths of migration files in {})",
                f.display(),
                set.dir.display()
            )));
        };
        match known.iter().find(|(k, _)| k.as_ref() == Some(&c)) {
            Some((_, m)) => {
                if !out.iter().any(|o| o.version == m.version) {
                    out.push(m)
                }
            }
            None => {
                return Err(CliError::Usage(format!(
                    "{} is not a migration file of {} (lint takes the up files of that directory; \
                     pass --migrations DIR for another one)",
                    f.display(),
                    set.dir.display()
                )))
            }
        }
    }
    out.sort_by_key(|m| m.version.value);
    Ok(out)
}
