//! One function per command. They return what to print and the exit code; `main`
//! prints it. Progress and diagnostics go through the reporter.

use std::path::PathBuf;

use crate::cli::ci::Ci;
use crate::cli::{exit, settings, Against, Command, EnvUrls, Format, Global, PlanFlags};
use crate::db::tracking::{RowStatus, TrackingState};
use crate::db::Target;
use crate::engine::drift::{self, DriftOptions};
use crate::engine::{self, ApplyError, ApplyFailure, RunOptions};
use crate::environments::{
    self, EnvResolver, Environment, HealthStatus, Listed, NoEnvironments, OverviewOptions, Reach,
};
use crate::ephemeral::{Cluster, ClusterOptions};
use crate::migration::{self, MigrationSet, Version};
use crate::plan::{self, PlanOptions, Problem};
use crate::render::{self, html, markdown, text};
use crate::report::{Event, Level, Reporter};

mod adopt_cmd;
mod apply_output;
mod backup_cmd;
mod new_cmd;
mod rollback_cmd;
mod serve_cmd;

/// What a command produced: text for stdout and the exit code.
#[derive(Debug)]
pub struct Outcome {
    pub code: u8,
    pub stdout: String,
}

impl Outcome {
    fn ok(stdout: String) -> Outcome {
        Outcome {
            code: exit::OK,
            stdout,
        }
    }
}

/// An error that ends the command. It keeps its source — the engine's and the
/// database's errors with their context (SQLSTATE, file:line, the lock holder) — and
/// knows its exit code: 2 for usage and configuration, 3 for a safety gate, 1 for work
/// that failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad flags or settings the command checked itself (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The work failed, in the command's own words (exit 1).
    #[error("{0}")]
    Failed(String),
    /// A safety gate said no (exit 3).
    #[error("{0}")]
    Refused(String),
    /// Connecting, or a database URL that does not parse (exit 2 for the URL).
    #[error(transparent)]
    Connect(#[from] crate::db::ConnectError),
    #[error(transparent)]
    Tracking(#[from] crate::db::tracking::TrackingError),
    #[error(transparent)]
    Lock(#[from] crate::db::lock::LockError),
    /// The pipeline file or a setting in it (exit 2).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Ephemeral(#[from] crate::ephemeral::EphemeralError),
    #[error(transparent)]
    Drift(#[from] crate::engine::drift::DriftError),
    /// Connecting, the lock or a migration, from the apply path.
    #[error(transparent)]
    Apply(Box<ApplyError>),
    /// Reading or writing a file the command was asked to.
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    pub fn code(&self) -> u8 {
        match self {
            CliError::Usage(_)
            | CliError::Config(_)
            | CliError::Connect(crate::db::ConnectError::BadUrl(_)) => exit::USAGE,
            CliError::Refused(_) => exit::REFUSED,
            CliError::Failed(_)
            | CliError::Connect(_)
            | CliError::Tracking(_)
            | CliError::Lock(_)
            | CliError::Ephemeral(_)
            | CliError::Drift(_)
            | CliError::Apply(_)
            | CliError::Io { .. } => exit::FAILED,
        }
    }

    /// An I/O error on `path` while `what` ("creating", "writing").
    pub(crate) fn io(
        what: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> CliError {
        let path = path.to_path_buf();
        move |source| CliError::Io { what, path, source }
    }
}

impl From<ApplyError> for CliError {
    fn from(e: ApplyError) -> CliError {
        CliError::Apply(Box::new(e))
    }
}

/// Everything a command needs: merged options, the database (if any), the reporter.
pub struct Context<'r> {
    pub global: Global,
    pub migrations_dir: PathBuf,
    pub target: Option<Target>,
    pub reporter: &'r mut dyn Reporter,
    /// Kept alive for the whole command; dropped (stopped, deleted) at the end.
    pub _cluster: Option<Cluster>,
    /// `--ephemeral`: the throwaway server's URL, which replaces every environment's.
    pub ephemeral_url: Option<String>,
    /// The CI context, read once by `main`.
    pub ci: Ci,
    /// How to read the migrations directory (`--layout`, `--version-separator`).
    pub layout: migration::LayoutOptions,
}

impl<'r> Context<'r> {
    /// Resolve flags > environment > defaults; start the ephemeral server if asked.
    pub fn new(
        global: Global,
        ci: Ci,
        reporter: &'r mut dyn Reporter,
    ) -> Result<Context<'r>, CliError> {
        let migrations_dir = global
            .migrations
            .clone()
            .unwrap_or_else(|| PathBuf::from("migrations"));
        let layout = migration::LayoutOptions {
            layout: global.layout,
            separator: global.version_separator,
        };
        let mut cluster = None;
        if global.ephemeral {
            preflight(&migrations_dir, &layout, reporter)?;
        }
        let target = if global.ephemeral {
            reporter.event(&Event::Info {
                message: "starting a throwaway PostgreSQL (--ephemeral)…",
            });
            let c = Cluster::start(&ClusterOptions::default())
                .map_err(|e| CliError::Failed(format!("--ephemeral: {e}")))?;
            reporter.event(&Event::Info {
                message: &format!(
                    "throwaway PostgreSQL on {}:{} (data in {}; removed on exit)",
                    c.host(),
                    c.port(),
                    c.data_dir().display()
                ),
            });
            let t = Target::parse(&c.url("postgres"))?;
            cluster = Some(c);
            Some(t)
        } else {
            // As psql: a URL with PG* defaults under it, or PGHOST/PGDATABASE/PGSERVICE…
            // alone when no URL is given.
            let url = global
                .database_url
                .as_deref()
                .filter(|u| !u.trim().is_empty());
            match url {
                Some(u) => Some(u),
                None if ci.libpq.names_a_database() => Some(""),
                None => None,
            }
            .map(|u| Target::parse_with(u, &ci.libpq).map_err(|e| CliError::Usage(e.to_string())))
            .transpose()?
        };
        for w in target.iter().flat_map(|t| &t.warnings) {
            reporter.event(&Event::Diagnostic {
                level: Level::Warning,
                location: None,
                message: w,
            });
        }
        Ok(Context {
            global,
            migrations_dir,
            target,
            reporter,
            ephemeral_url: cluster.as_ref().map(|c| c.url("postgres")),
            _cluster: cluster,
            ci,
            layout,
        })
    }

    fn need_target(&self, command: &str) -> Result<Target, CliError> {
        self.target.clone().ok_or_else(|| {
            CliError::Usage(format!(
                "`{command}` needs a database: pass --database-url URL, set DATABASE_URL, or use --ephemeral"
            ))
        })
    }

    pub(crate) fn load(&mut self) -> Result<MigrationSet, CliError> {
        load_set(
            &self.migrations_dir,
            &self.layout,
            true,
            self.reporter,
            true,
        )
    }

    /// Say which layout the directory was read in (`status`, `plan`).
    fn report_layout(&mut self, set: &MigrationSet) {
        let how = if self.layout.layout.is_some() {
            "declared"
        } else {
            "detected"
        };
        self.reporter.event(&Event::Info {
            message: &format!(
                "{}: {} migration(s){} in the {} layout ({how})",
                self.migrations_dir.display(),
                set.migrations.len(),
                if set.repeatables.is_empty() {
                    String::new()
                } else {
                    format!(" and {} repeatable(s)", set.repeatables.len())
                },
                set.layout
            ),
        });
        for note in &set.notes {
            self.reporter.event(&Event::Info { message: note });
        }
    }

    pub(crate) fn load_lazy(&mut self) -> Result<MigrationSet, CliError> {
        load_set(
            &self.migrations_dir,
            &self.layout,
            false,
            self.reporter,
            true,
        )
    }

    pub(crate) fn run_options(
        &self,
        flags: Option<&PlanFlags>,
        dry_run: bool,
    ) -> Result<RunOptions, CliError> {
        let t = &self.global.timing;
        let plan = match flags {
            Some(f) => PlanOptions {
                target: f.target.as_deref().map(parse_version).transpose()?,
                allow_out_of_order: f.allow_out_of_order,
                allow_missing: f.allow_missing,
                lock_held: false,
            },
            None => PlanOptions::default(),
        };
        let (lock_timeout, statement_timeout) =
            settings::server_timeouts(t).map_err(CliError::Usage)?;
        Ok(RunOptions {
            schema: self.global.schema.clone(),
            lock_timeout,
            statement_timeout,
            lock_retries: t.lock_retries,
            lock_wait: t.lock_wait,
            connect_retry: t.connect_timeout,
            plan,
            dry_run,
        })
    }

    pub(crate) fn json(&self) -> bool {
        self.global.format == Format::Json
    }
}

/// Report every problem reading the files of `dir`; the error that ends the command.
pub(crate) fn report_file_errors(
    reporter: &mut dyn Reporter,
    dir: &std::path::Path,
    errors: &[migration::FileError],
) -> CliError {
    for e in errors {
        reporter.event(&Event::Diagnostic {
            level: Level::Error,
            location: None,
            message: &e.to_string(),
        });
    }
    let dir_missing = errors
        .iter()
        .any(|e| matches!(e, migration::FileError::ReadDir { .. }));
    let msg = format!(
        "{} problem(s) reading the migration files in {}",
        errors.len(),
        dir.display()
    );
    if dir_missing {
        CliError::Usage(format!(
            "{msg}; pass --migrations DIR (or set PGROLLOUT_MIGRATIONS) to point at the directory"
        ))
    } else {
        CliError::Failed(msg)
    }
}

/// Read the migrations directory, reporting every file problem.
pub(crate) fn load_set(
    dir: &std::path::Path,
    layout: &migration::LayoutOptions,
    split: bool,
    reporter: &mut dyn Reporter,
    warn_stray: bool,
) -> Result<MigrationSet, CliError> {
    let set = MigrationSet::load_in(dir, layout, split)
        .map_err(|errors| report_file_errors(reporter, dir, &errors))?;
    if warn_stray {
        for p in &set.stray {
            reporter.event(&Event::Diagnostic {
                level: Level::Warning,
                location: None,
                message: &format!(
                    "{}: not a migration ({}); it is ignored — move it out of the migrations directory to silence this",
                    p.display(),
                    if p.is_dir() { "a directory" } else { "no migration file name" }
                ),
            });
        }
    }
    Ok(set)
}

/// Files are read and their names checked before `--ephemeral` starts a server: a
/// directory pgrollout cannot read must not cost an initdb first. A missing default
/// directory is left to the command (`drift --source`, `report` need none).
fn preflight(
    dir: &std::path::Path,
    layout: &migration::LayoutOptions,
    reporter: &mut dyn Reporter,
) -> Result<(), CliError> {
    if !dir.exists() {
        return Ok(());
    }
    load_set(dir, layout, false, reporter, false).map(|_| ())
}

fn parse_version(s: &str) -> Result<Version, CliError> {
    Version::parse(s).ok_or_else(|| {
        CliError::Usage(format!(
            "`{s}` is not a migration version (digits, at most 38)"
        ))
    })
}

pub fn run(command: Command, ctx: &mut Context) -> Result<Outcome, CliError> {
    if matches!(ctx.global.format, Format::Html | Format::Markdown)
        && !matches!(command, Command::Report { .. })
    {
        return Err(CliError::Usage(
            "--format html and --format markdown are for `report`; use text or json here".into(),
        ));
    }
    match command {
        Command::New { name, pattern } => match pattern.pattern.as_deref() {
            Some(p) => new_cmd::pattern(ctx, p, &pattern),
            None => match pattern.first_given() {
                Some(flag) => Err(CliError::Usage(format!(
                    "{flag} is a parameter of --pattern: add --pattern NAME (listed in `pgrollout new --help`)"
                ))),
                None => new(ctx, name.as_deref().unwrap_or_default()),
            },
        },
        Command::Status { runs: true, .. } => status_runs(ctx),
        Command::Status {
            all: false, envs, ..
        } if envs.env_url.is_empty() => status(ctx),
        Command::Status { envs, .. } => status_all(ctx, &envs),
        Command::Drift {
            source,
            target,
            against,
            include_schema,
            exclude_schema,
            privileges,
        } => drift(
            ctx,
            source.as_deref(),
            target.as_deref(),
            against,
            crate::schema::SnapshotOptions {
                include_schemas: include_schema,
                exclude_schemas: exclude_schema,
                tracking_schema: ctx.global.schema.clone(),
                owners_and_privileges: privileges,
            },
        ),
        Command::Report {
            output,
            all,
            envs,
            history,
        } => report(ctx, output.as_deref(), all, &envs, history),
        Command::Validate { plan } => validate(ctx, &plan),
        Command::Plan { plan } => plan_cmd(ctx, &plan),
        Command::Apply { dry_run, plan } => apply(ctx, &plan, dry_run),
        Command::Baseline { version } => baseline(ctx, &version),
        Command::Repair {
            accept,
            reason,
            force,
        } => repair(ctx, accept.as_deref(), reason.as_deref(), force),
        Command::Pipeline { command } => crate::cli::pipeline_cmd::run(ctx, command),
        Command::Rollback {
            steps,
            to,
            last_run,
            run,
            dry_run,
            allow_generated,
            use_file_down,
        } => rollback_cmd::rollback(
            ctx,
            rollback_cmd::Which {
                steps,
                to: to.as_deref(),
                last_run,
                run: run.as_deref(),
            },
            dry_run,
            allow_generated,
            use_file_down,
        ),
        Command::Test {
            force,
            allow_generated,
        } => rollback_cmd::test(ctx, force, allow_generated),
        Command::Serve { listen, read_only } => serve_cmd::serve(ctx, listen, read_only),
        Command::Lint(args) => crate::cli::lint_cmd::run(ctx, &args),
        Command::Adopt { from, dry_run } => adopt_cmd::adopt(ctx, from, dry_run),
        Command::Backup {
            dump,
            label,
            output_dir,
        } => backup_cmd::backup(ctx, dump, label.as_deref(), output_dir.as_deref()),
    }
}

fn new(ctx: &mut Context, name: &str) -> Result<Outcome, CliError> {
    let snake = migration::snake_case(name);
    if snake.is_empty() {
        return Err(CliError::Usage(format!(
            "`{name}` has no letters or digits to make a file name from"
        )));
    }
    let dir = &ctx.migrations_dir;
    std::fs::create_dir_all(dir).map_err(CliError::io("creating", dir))?;
    let version = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let path = dir.join(format!("{version}_{snake}.sql"));
    if let Ok(set) = MigrationSet::load(dir) {
        let v = Version::parse(&version).expect("timestamp is digits");
        if let Some(existing) = set.get(&v) {
            return Err(CliError::Failed(format!(
                "{} already has version {version}; wait a second and run `new` again",
                existing.path.display()
            )));
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(CliError::io("creating", &path))?;
    std::io::Write::write_all(&mut f, migration::template(name).as_bytes())
        .map_err(CliError::io("writing", &path))?;
    Ok(Outcome::ok(if ctx.json() {
        serde_json::json!({ "path": path }).to_string() + "\n"
    } else {
        format!("{}\n", path.display())
    }))
}

fn read_state(ctx: &mut Context, target: &Target) -> Result<TrackingState, CliError> {
    Ok(read_session(ctx, target)?.1)
}

/// A session on `target` and the tracking state it read (no lock).
fn read_session(
    ctx: &mut Context,
    target: &Target,
) -> Result<(engine::Session, TrackingState), CliError> {
    let mut s = engine::connect(
        target,
        &ctx.global.schema,
        ctx.global.timing.connect_timeout,
        ctx.reporter,
    )?;
    let state = s.tracking.read(&mut s.db)?;
    Ok((s, state))
}

fn status(ctx: &mut Context) -> Result<Outcome, CliError> {
    let target = ctx.need_target("status")?;
    let set = ctx.load()?;
    ctx.report_layout(&set);
    let (mut s, state) = read_session(ctx, &target)?;
    let running = s.running_rows(&state)?;
    let mut entries = plan::status(&set, &state.rows);
    if !set.repeatables.is_empty() {
        let ran = s.tracking.read_repeatables(&mut s.db)?;
        entries.extend(plan::repeatable_status(&set, &ran));
    }
    let problems = plan::plan(&set, &state.rows, &PlanOptions::default()).problems;
    let out = if ctx.json() {
        text::status_json(&entries, state.version.is_some())
    } else {
        text::status_table(&entries, state.version.is_none()) + &text::running_notes(&running)
    };
    let bad = problems.iter().any(|p| p.level == Level::Error);
    Ok(Outcome {
        code: if bad { exit::FAILED } else { exit::OK },
        stdout: out,
    })
}

/// `status --runs`: the runs as batches.
fn status_runs(ctx: &mut Context) -> Result<Outcome, CliError> {
    let target = ctx.need_target("status --runs")?;
    let (mut s, _) = read_session(ctx, &target)?;
    let schema = ctx.global.schema.clone();
    let runs = crate::db::history::runs(&mut s.db, &schema, 20).map_err(|source| {
        CliError::Failed(format!(
            "reading the runs in {schema}.migration_history: {}",
            crate::db::conn::error_text(&source)
        ))
    })?;
    Ok(Outcome::ok(if ctx.json() {
        serde_json::to_string_pretty(&serde_json::json!({ "runs": runs })).expect("serialisable")
            + "\n"
    } else {
        text::runs_table(&runs)
    }))
}

fn report_problems(ctx: &mut Context, problems: &[Problem]) {
    for p in problems {
        ctx.reporter.event(&Event::Diagnostic {
            level: p.level,
            location: p.location.as_ref(),
            message: &p.message,
        });
    }
}

fn validate(ctx: &mut Context, flags: &PlanFlags) -> Result<Outcome, CliError> {
    let set = ctx.load()?;
    let mut problems = plan::check_files(&set);
    let checked_db = if let Some(target) = ctx.target.clone() {
        let state = read_state(ctx, &target)?;
        let opts = ctx.run_options(Some(flags), false)?;
        problems.extend(plan::plan(&set, &state.rows, &opts.plan).problems);
        true
    } else {
        false
    };
    report_problems(ctx, &problems);
    let errors = problems.iter().filter(|p| p.level == Level::Error).count();
    let stdout = if ctx.json() {
        serde_json::to_string_pretty(&serde_json::json!({
            "ok": errors == 0,
            "migrations": set.migrations.len(),
            "checked_database": checked_db,
            "problems": problems,
        }))
        .expect("serialisable")
            + "\n"
    } else if errors == 0 {
        format!(
            "✓ {} migration file(s) valid{}\n",
            set.migrations.len(),
            if checked_db {
                ", consistent with the database"
            } else {
                " (files only: give a database to check checksums and history)"
            }
        )
    } else {
        format!(
            "✗ {errors} error(s) in {} migration file(s)\n",
            set.migrations.len()
        )
    };
    Ok(Outcome {
        code: if errors == 0 { exit::OK } else { exit::FAILED },
        stdout,
    })
}

fn plan_cmd(ctx: &mut Context, flags: &PlanFlags) -> Result<Outcome, CliError> {
    let target = ctx.need_target("plan")?;
    let set = ctx.load()?;
    ctx.report_layout(&set);
    let opts = ctx.run_options(Some(flags), false)?;
    let (mut s, state) = read_session(ctx, &target)?;
    let ran = if set.repeatables.is_empty() {
        Default::default()
    } else {
        s.tracking.read_repeatables(&mut s.db)?
    };
    drop(s);
    let mut problems = plan::check_files(&set);
    let p = plan::plan(&set, &state.rows, &opts.plan);
    let due = engine::repeatable::changed(&set, &ran);
    if !due.is_empty() {
        ctx.reporter.event(&Event::Info {
            message: &format!(
                "{} repeatable migration(s) would run after the versioned ones (new or changed since they last ran): {}",
                due.len(),
                due.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    problems.extend(p.problems.iter().cloned());
    problems.extend(plan::lock_waits(&p.to_apply, opts.lock_timeout));
    report_problems(ctx, &problems);
    let errors = problems.iter().any(|p| p.level == Level::Error);
    let stdout = if ctx.json() {
        text::plan_json(&p, &problems)
    } else {
        text::plan_text(&p)
    };
    Ok(Outcome {
        code: if errors { exit::FAILED } else { exit::OK },
        stdout,
    })
}

fn apply(ctx: &mut Context, flags: &PlanFlags, dry_run: bool) -> Result<Outcome, CliError> {
    let target = ctx.need_target("apply")?;
    let opts = ctx.run_options(Some(flags), dry_run)?;
    // The connection opens while the files are read. Statements are parsed only for the
    // migrations that will run.
    let connecting = engine::session::Connecting::start(&target, &opts.schema, opts.connect_retry);
    let set = ctx.load_lazy()?;
    let run = ctx.ci.run_context(None);
    let applied = apply_connecting(ctx, &set, connecting, &opts, &run, dry_run);
    // Thousands of migrations are freed by the process's exit, not one by one.
    std::mem::forget(set);
    match applied {
        Ok(report) => Ok(Outcome::ok(if ctx.json() {
            apply_output::apply_json(&report, None)
        } else {
            apply_output::apply_text(&report, dry_run)
        })),
        Err(ApplyFailure { report, error }) => failure(ctx, &report, error, dry_run),
    }
}

/// `apply` once the files are read: the connection opened meanwhile, then the run.
#[allow(clippy::result_large_err)]
fn apply_connecting(
    ctx: &mut Context,
    set: &MigrationSet,
    connecting: engine::session::Connecting,
    opts: &engine::RunOptions,
    run: &crate::db::tracking::RunContext,
    dry_run: bool,
) -> Result<engine::ApplyReport, ApplyFailure> {
    engine::apply::check_up_sections(set, ctx.reporter)?;
    let (mut s, summary) = connecting.finish(ctx.reporter)?;
    if dry_run {
        engine::apply::rehearse_checked(&mut s, set, opts, &Default::default(), ctx.reporter)
    } else {
        engine::apply::apply_checked(&mut s, set, summary, opts, run, ctx.reporter)
    }
}

fn failure(
    ctx: &mut Context,
    report: &engine::ApplyReport,
    error: ApplyError,
    dry_run: bool,
) -> Result<Outcome, CliError> {
    let code = exit::FAILED;
    let message = error.to_string();
    if ctx.json() {
        return Ok(Outcome {
            code,
            stdout: apply_output::apply_json(report, Some(&error)),
        });
    }
    let did_something = !report.applied.is_empty()
        || !report.rehearsed.is_empty()
        || !report.not_rehearsed.is_empty();
    let mut stdout = if did_something {
        apply_output::apply_text(report, dry_run)
    } else {
        String::new()
    };
    if !matches!(error, ApplyError::Migration(_)) {
        ctx.reporter.event(&Event::Diagnostic {
            level: Level::Error,
            location: None,
            message: &message,
        });
    }
    stdout.push_str(&format!(
        "✗ {}\n",
        if dry_run {
            "rehearsal failed"
        } else {
            "apply failed"
        }
    ));
    Ok(Outcome { code, stdout })
}

/// The webhook of an environment's `notify:`, or None — with a warning when it is set
/// up but cannot be used (its variable is unset, or not a URL).
pub(crate) fn webhook(
    ctx: &mut Context,
    name: &str,
    env: &crate::config::Environment,
) -> Option<crate::notify::Webhook> {
    let n = env.notify.as_ref()?;
    match crate::notify::Webhook::from_config(n, name, &|k| std::env::var(k).ok()) {
        Ok(w) => Some(w),
        Err(message) => {
            ctx.reporter.event(&Event::Diagnostic {
                level: Level::Warning,
                location: None,
                message: &message,
            });
            None
        }
    }
}

pub(crate) fn with_lock<T>(
    ctx: &mut Context,
    command: &str,
    f: impl FnOnce(&mut engine::Session, &TrackingState, &mut dyn Reporter) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let target = ctx.need_target(command)?;
    let opts = ctx.run_options(None, false)?;
    let mut s = engine::connect(&target, &opts.schema, opts.connect_retry, ctx.reporter)?;
    let (_guard, state) = s.lock(&opts, ctx.reporter)?;
    f(&mut s, &state, ctx.reporter)
}

fn baseline(ctx: &mut Context, version: &str) -> Result<Outcome, CliError> {
    let v = parse_version(version)?;
    let set = ctx.load()?;
    let run = ctx.ci.run_context(None);
    let (name, checksum) = set
        .get(&v)
        .map_or(("<< baseline >>".to_string(), String::new()), |m| {
            (m.name.clone(), m.checksum.clone())
        });
    let covered = set.migrations.iter().filter(|m| m.version <= v).count();
    with_lock(ctx, "baseline", |s, state, _| {
        if let Some(r) = state.rows.first() {
            return Err(CliError::Failed(format!(
                "the tracking schema already has migrations (first: {} {}): baseline is only for a database pgrollout has never migrated",
                r.version, r.name
            )));
        }
        s.tracking
            .insert_baseline(&mut s.db, &run, &v.text, &name, &checksum)
            .map_err(CliError::from)
    })?;
    Ok(Outcome::ok(format!(
        "baseline at {v}: {covered} migration file(s) up to it are treated as applied; later ones are pending\n"
    )))
}

/// `repair`: clear failed or interrupted migrations after their cause is fixed, or with
/// `--accept` take an edited file's checksum.
fn repair(
    ctx: &mut Context,
    accept: Option<&str>,
    reason: Option<&str>,
    force: bool,
) -> Result<Outcome, CliError> {
    match accept {
        Some(version) => repair_accept(ctx, version, reason),
        None => repair_failed(ctx, force),
    }
}

/// `repair --accept V --reason TEXT`: the applied migration's checksum becomes the
/// edited file's, with the reason in the history.
fn repair_accept(
    ctx: &mut Context,
    version: &str,
    reason: Option<&str>,
) -> Result<Outcome, CliError> {
    let run = ctx.ci.run_context(None);
    let v = parse_version(version)?;
    let reason = reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            CliError::Usage(
                "--accept needs --reason TEXT: say why the edited file is safe to accept".into(),
            )
        })?;
    let set = ctx.load()?;
    let m = set
        .get(&v)
        .ok_or_else(|| {
            CliError::Failed(format!(
                "no migration file has version {v} in {}",
                ctx.migrations_dir.display()
            ))
        })?
        .clone();
    let old = with_lock(ctx, "repair", |s, _, _| {
        let old = s
            .tracking
            .accept_checksum(&mut s.db, &m.version.text, &m.checksum)?
            .ok_or_else(|| {
                CliError::Failed(format!(
                    "migration {v} is not applied: there is nothing to accept"
                ))
            })?;
        s.tracking.history(
            &mut s.db,
            &run,
            "accept",
            Some(&m.version.text),
            Some(&m.name),
            Some(&m.checksum),
            "completed",
            Some(0),
            None,
            Some(&format!("{reason} (checksum {old} → {})", m.checksum)),
        )?;
        Ok(old)
    })?;
    Ok(Outcome::ok(format!(
        "accepted the edited {}: checksum {} → {}\n",
        m.path.display(),
        &old[..12.min(old.len())],
        &m.checksum[..12]
    )))
}

/// `repair`: remove the tracking rows of failed or interrupted `transaction:false`
/// migrations so they run again — refused while INVALID indexes they left remain.
fn repair_failed(ctx: &mut Context, force: bool) -> Result<Outcome, CliError> {
    let run = ctx.ci.run_context(None);
    let cleared = with_lock(ctx, "repair", |s, state, _| {
        let failing = state
            .rows
            .iter()
            .any(|r| matches!(r.status, RowStatus::Failed | RowStatus::Running));
        // Holding the lock is not enough: a runner whose lock session was cut off may
        // still be running a statement of the migration its row says is running.
        for r in s.running_rows(state)? {
            if let Some(live) = r.runner {
                return Err(CliError::Refused(format!(
                    "migration {} {} is still running: its runner (run {}) is connected as {live}. \
                     Clearing it now would let it run twice. Wait for that runner to stop (or end it \
                     with SELECT pg_terminate_backend({})), then run `pgrollout repair` again",
                    r.version, r.name, r.run_id, live.pid
                )));
            }
        }
        if failing && !force {
            let invalid = s.tracking.invalid_indexes(&mut s.db)?;
            if !invalid.is_empty() {
                let drops: Vec<String> = invalid
                    .iter()
                    .map(|i| format!("  DROP INDEX CONCURRENTLY IF EXISTS {i};"))
                    .collect();
                return Err(CliError::Failed(format!(
                    "the database still has INVALID indexes, as a failed CREATE INDEX CONCURRENTLY leaves behind; \
                     a rerun with IF NOT EXISTS would keep them, unusable. Drop them first:\n{}\n\
                     then run `pgrollout repair` again (or pass --force if they are unrelated)",
                    drops.join("\n")
                )));
            }
        }
        let cleared = s.tracking.clear_failed(&mut s.db)?;
        for c in &cleared {
            let stopped = c
                .statement_index
                .map(|i| format!(" (stopped at statement {})", i + 1))
                .unwrap_or_default();
            let why = if c.down {
                format!(
                    "cleared {} rollback{stopped}; the migration is recorded as applied again and its down SQL \
                     will run again from its first statement",
                    c.status
                )
            } else {
                format!(
                    "cleared {} row{stopped}; the migration will run again from its first statement",
                    c.status
                )
            };
            s.tracking.history(
                &mut s.db,
                &run,
                "repair",
                Some(&c.version),
                Some(&c.name),
                None,
                "completed",
                Some(0),
                None,
                Some(&why),
            )?;
        }
        Ok(cleared)
    })?;
    if cleared.is_empty() {
        return Ok(Outcome::ok(
            "nothing to repair: no failed or interrupted migration\n".into(),
        ));
    }
    let mut out = String::new();
    for c in &cleared {
        out.push_str(&if c.down {
            format!(
                "cleared {} rollback of migration {} {}: it is recorded as applied again; `pgrollout rollback` will run its down SQL again\n",
                c.status, c.version, c.name
            )
        } else {
            format!(
                "cleared {} migration {} {}: `pgrollout apply` will run it again\n",
                c.status, c.version, c.name
            )
        });
    }
    Ok(Outcome::ok(out))
}

// ---------------------------------------------------------------------------------------
// Several environments: drift, status --all, report.

/// Where environment names resolve: `--env-url NAME=URL` ones first, then the pipeline
/// file's environments, each read from its `database_url_env` variable (unset: listed
/// as skipped, with the reason).
fn env_resolver(ctx: &Context, envs: &EnvUrls) -> Result<Box<dyn EnvResolver>, CliError> {
    let mut listed = envs
        .env_url
        .iter()
        .map(|s| environments::parse_env_url(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::Usage)?;
    if let Some(loaded) = &ctx.global.pipeline {
        for (name, env) in &loaded.file.environments {
            if listed.iter().any(|e| &e.name == name) {
                continue;
            }
            let var = &env.database_url_env;
            let (target, skipped) = match std::env::var(var).ok().filter(|u| !u.trim().is_empty()) {
                None => (None, Some(format!("{var} is not set"))),
                Some(url) => match Target::parse_with(&url, &ctx.ci.libpq) {
                    Ok(t) => (Some(t), None),
                    Err(e) => (None, Some(format!("{var}: {e}"))),
                },
            };
            listed.push(Environment {
                name: name.clone(),
                target,
                skipped,
            });
        }
    }
    if listed.is_empty() {
        Ok(Box::new(NoEnvironments))
    } else {
        Ok(Box::new(Listed(listed)))
    }
}

/// The environments a multi-environment command reads.
fn environments(
    ctx: &mut Context,
    envs: &EnvUrls,
    all: bool,
) -> Result<Vec<Environment>, CliError> {
    // A database named on the command line (or by DATABASE_URL, or --ephemeral) wins
    // over the pipeline file's environments: it is what the user asked to read.
    let explicit = match (&ctx.ephemeral_url, ctx.global.database_url_from) {
        (Some(_), _) => Some("--ephemeral"),
        (None, from) => from.filter(|_| ctx.target.is_some()),
    };
    if let (Some(from), true, false) = (explicit, envs.env_url.is_empty(), all) {
        let target = ctx.need_target("report")?;
        if let Some(loaded) = &ctx.global.pipeline {
            let message = format!(
                "reading the database given by {from} ({}), not the environments of {}",
                target.redacted,
                loaded.path.display()
            );
            ctx.reporter.event(&Event::Info { message: &message });
        }
        return Ok(vec![Environment {
            name: target.dbname().unwrap_or("database").to_string(),
            target: Some(target),
            skipped: None,
        }]);
    }
    let listed = env_resolver(ctx, envs)?.all();
    if !listed.is_empty() {
        return Ok(listed);
    }
    if all {
        return Err(CliError::Usage(
            "--all needs environments: name each with --env-url NAME=URL".into(),
        ));
    }
    let target = ctx.need_target("report")?;
    Ok(vec![Environment {
        name: target.dbname().unwrap_or("database").to_string(),
        target: Some(target),
        skipped: None,
    }])
}

fn overview_options(ctx: &Context, history: i64) -> OverviewOptions {
    OverviewOptions {
        schema: ctx.global.schema.clone(),
        // Reports read several environments: a dead one must not hold up the rest long.
        connect_retry: ctx
            .global
            .timing
            .connect_timeout
            .min(std::time::Duration::from_secs(5)),
        history_limit: history,
        slowest: 5,
    }
}

fn status_all(ctx: &mut Context, envs: &EnvUrls) -> Result<Outcome, CliError> {
    let set = ctx.load()?;
    let list = environments(ctx, envs, true)?;
    let opts = overview_options(ctx, 0);
    let dir = ctx.migrations_dir.display().to_string();
    let o = environments::gather(&set, &dir, &list, &opts, ctx.reporter);
    let bad = o
        .environments
        .iter()
        .any(|e| e.reach == Reach::Unreachable || e.health.status == HealthStatus::Error);
    Ok(Outcome {
        code: if bad { exit::FAILED } else { exit::OK },
        stdout: if ctx.json() {
            render::environments::status_all_json(&o)
        } else {
            render::environments::status_all_text(&o)
        },
    })
}

fn drift(
    ctx: &mut Context,
    source: Option<&str>,
    target: Option<&str>,
    against: Option<Against>,
    snapshot: crate::schema::SnapshotOptions,
) -> Result<Outcome, CliError> {
    let resolver = env_resolver(ctx, &EnvUrls::default())?;
    let (t_label, t) = match target {
        Some(spec) => {
            environments::resolve_side(spec, resolver.as_ref()).map_err(CliError::Usage)?
        }
        None => {
            let t = ctx.target.clone().ok_or_else(|| {
                CliError::Usage(
                    "`drift` needs a target: pass --target ENV|URL (or --database-url)".into(),
                )
            })?;
            (t.redacted.clone(), t)
        }
    };
    let opts = DriftOptions {
        snapshot,
        connect_retry: ctx.global.timing.connect_timeout,
    };
    let report = match (source, against) {
        (_, Some(Against::Migrations)) => {
            let set = ctx.load()?;
            drift::against_migrations(&set, (&t_label, &t), &opts, ctx.reporter)
        }
        (Some(spec), None) => {
            if Some(spec.trim()) == target.map(str::trim) {
                return Err(CliError::Usage(
                    "--source and --target are the same: nothing to compare".into(),
                ));
            }
            let (s_label, s) =
                environments::resolve_side(spec, resolver.as_ref()).map_err(CliError::Usage)?;
            drift::compare((&s_label, &s), (&t_label, &t), &opts, ctx.reporter)
        }
        (None, None) => {
            return Err(CliError::Usage(
                "`drift` needs --source ENV|URL or --against migrations".into(),
            ))
        }
    }?;
    Ok(Outcome {
        code: if report.has_critical() {
            exit::FAILED
        } else {
            exit::OK
        },
        stdout: if ctx.json() {
            render::environments::drift_json(&report)
        } else {
            render::environments::drift_text(&report)
        },
    })
}

fn report(
    ctx: &mut Context,
    output: Option<&std::path::Path>,
    all: bool,
    envs: &EnvUrls,
    history: i64,
) -> Result<Outcome, CliError> {
    let set = ctx.load()?;
    let list = environments(ctx, envs, all)?;
    let opts = overview_options(ctx, history.max(0));
    let dir = ctx.migrations_dir.display().to_string();
    let o = environments::gather(&set, &dir, &list, &opts, ctx.reporter);
    let body = match ctx.global.format {
        Format::Html => html::render(&o),
        Format::Json => render::environments::report_json(&o),
        Format::Markdown | Format::Text => markdown::report(&o),
    };
    let health = serde_json::to_value(o.health)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match output {
        Some(path) => {
            std::fs::write(path, body).map_err(CliError::io("writing", path))?;
            Ok(Outcome::ok(format!(
                "wrote {} (overall health: {health}, {} environment(s))\n",
                path.display(),
                o.environments.len()
            )))
        }
        None => Ok(Outcome::ok(body)),
    }
}
