//! One function per command. They return what to print and the exit code; `main`
//! prints it. Progress and diagnostics go through the reporter.

use std::path::PathBuf;

use crate::cli::ci::Ci;
use crate::cli::{exit, Against, Command, EnvUrls, Format, Global, PlanFlags};
use crate::db::tracking::{RowStatus, TrackingState};
use crate::db::Target;
use crate::drift::{self, DriftOptions};
use crate::ephemeral::{Cluster, ClusterOptions};
use crate::execute::{self, ApplyError, ApplyFailure, RunOptions};
use crate::migration::{self, MigrationSet, Version};
use crate::overview::{
    self, EnvResolver, Environment, HealthStatus, Listed, NoEnvironments, OverviewOptions, Reach,
};
use crate::plan::{self, PlanOptions, Problem};
use crate::report::{compare, html, markdown, text, Event, Level, Reporter};

mod backup_cmd;
mod rollback_cmd;

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

/// An error that ends the command; its exit code says which kind.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    Refused(String),
}

impl CliError {
    pub fn code(&self) -> u8 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Failed(_) => exit::FAILED,
            CliError::Refused(_) => exit::REFUSED,
        }
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
        let mut cluster = None;
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
            let t =
                Target::parse(&c.url("postgres")).map_err(|e| CliError::Failed(e.to_string()))?;
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
        self.load_set(MigrationSet::load)
    }

    fn load_lazy(&mut self) -> Result<MigrationSet, CliError> {
        self.load_set(MigrationSet::load_lazy)
    }

    fn load_set(
        &mut self,
        load: fn(&std::path::Path) -> Result<MigrationSet, Vec<migration::FileError>>,
    ) -> Result<MigrationSet, CliError> {
        load(&self.migrations_dir).map_err(|errors| {
            for e in &errors {
                self.reporter.event(&Event::Diagnostic {
                    level: Level::Error,
                    location: None,
                    message: &e.to_string(),
                });
            }
            let dir_missing = errors
                .iter()
                .any(|e| matches!(e, migration::FileError::ReadDir { .. }));
            let msg = format!("{} problem(s) reading the migration files in {}", errors.len(), self.migrations_dir.display());
            if dir_missing {
                CliError::Usage(format!(
                    "{msg}; pass --migrations DIR (or set PGROLLOUT_MIGRATIONS) to point at the directory"
                ))
            } else {
                CliError::Failed(msg)
            }
        })
    }

    fn run_options(
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
        Ok(RunOptions {
            schema: self.global.schema.clone(),
            lock_timeout: t.lock_timeout,
            statement_timeout: (!t.statement_timeout.is_zero()).then_some(t.statement_timeout),
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
        Command::New { name } => new(ctx, &name),
        Command::Status { all: false, envs } if envs.env_url.is_empty() => status(ctx),
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
            dry_run,
            allow_generated,
            use_file_down,
        } => rollback_cmd::rollback(
            ctx,
            steps,
            to.as_deref(),
            dry_run,
            allow_generated,
            use_file_down,
        ),
        Command::Test {
            force,
            allow_generated,
        } => rollback_cmd::test(ctx, force, allow_generated),
        Command::Lint(args) => crate::cli::lint_cmd::run(ctx, &args),
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
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::Failed(format!("creating {}: {e}", dir.display())))?;
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
        .map_err(|e| CliError::Failed(format!("creating {}: {e}", path.display())))?;
    std::io::Write::write_all(&mut f, migration::template(name).as_bytes())
        .map_err(|e| CliError::Failed(format!("writing {}: {e}", path.display())))?;
    Ok(Outcome::ok(if ctx.json() {
        serde_json::json!({ "path": path }).to_string() + "\n"
    } else {
        format!("{}\n", path.display())
    }))
}

fn read_state(ctx: &mut Context, target: &Target) -> Result<TrackingState, CliError> {
    let mut s = execute::connect(
        target,
        &ctx.global.schema,
        ctx.global.timing.connect_timeout,
        ctx.reporter,
    )
    .map_err(|e| CliError::Failed(e.to_string()))?;
    s.tracking
        .read(&mut s.db)
        .map_err(|e| CliError::Failed(e.to_string()))
}

fn status(ctx: &mut Context) -> Result<Outcome, CliError> {
    let target = ctx.need_target("status")?;
    let set = ctx.load()?;
    let state = read_state(ctx, &target)?;
    let entries = plan::status(&set, &state.rows);
    let problems = plan::plan(&set, &state.rows, &PlanOptions::default()).problems;
    let out = if ctx.json() {
        text::status_json(&entries, state.version.is_some())
    } else {
        text::status_table(&entries, state.version.is_none())
    };
    let bad = problems.iter().any(|p| p.level == Level::Error);
    Ok(Outcome {
        code: if bad { exit::FAILED } else { exit::OK },
        stdout: out,
    })
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
    let opts = ctx.run_options(Some(flags), false)?;
    let state = read_state(ctx, &target)?;
    let mut problems = plan::check_files(&set);
    let p = plan::plan(&set, &state.rows, &opts.plan);
    problems.extend(p.problems.iter().cloned());
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
    // Statements are parsed only for the migrations that will run.
    let set = ctx.load_lazy()?;
    let opts = ctx.run_options(Some(flags), dry_run)?;
    let run = ctx.ci.run_context(None);
    match execute::apply(&target, &set, &opts, &run, ctx.reporter) {
        Ok(report) => Ok(Outcome::ok(if ctx.json() {
            text::apply_json(&report, None)
        } else {
            text::apply_text(&report, dry_run)
        })),
        Err(ApplyFailure { report, error }) => failure(ctx, &report, error, dry_run),
    }
}

fn failure(
    ctx: &mut Context,
    report: &execute::ApplyReport,
    error: ApplyError,
    dry_run: bool,
) -> Result<Outcome, CliError> {
    let code = exit::FAILED;
    let message = error.to_string();
    if ctx.json() {
        return Ok(Outcome {
            code,
            stdout: text::apply_json(report, Some(&error)),
        });
    }
    let did_something = !report.applied.is_empty()
        || !report.rehearsed.is_empty()
        || !report.not_rehearsed.is_empty();
    let mut stdout = if did_something {
        text::apply_text(report, dry_run)
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

fn with_lock<T>(
    ctx: &mut Context,
    command: &str,
    f: impl FnOnce(&mut execute::Session, &TrackingState, &mut dyn Reporter) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let target = ctx.need_target(command)?;
    let opts = ctx.run_options(None, false)?;
    let mut s = execute::connect(&target, &opts.schema, opts.connect_retry, ctx.reporter)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let found = s
        .tracking
        .read(&mut s.db)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let (_guard, state) = s
        .lock(&opts, &found, ctx.reporter)
        .map_err(|e| CliError::Failed(e.to_string()))?;
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
            .map_err(|e| CliError::Failed(e.to_string()))
    })?;
    Ok(Outcome::ok(format!(
        "baseline at {v}: {covered} migration file(s) up to it are treated as applied; later ones are pending\n"
    )))
}

fn repair(
    ctx: &mut Context,
    accept: Option<&str>,
    reason: Option<&str>,
    force: bool,
) -> Result<Outcome, CliError> {
    let run = ctx.ci.run_context(None);
    if let Some(version) = accept {
        let v = parse_version(version)?;
        let reason = reason
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                CliError::Usage(
                    "--accept needs --reason TEXT: say why the edited file is safe to accept"
                        .into(),
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
                .accept_checksum(&mut s.db, &m.version.text, &m.checksum)
                .map_err(|e| CliError::Failed(e.to_string()))?
                .ok_or_else(|| {
                    CliError::Failed(format!(
                        "migration {v} is not applied: there is nothing to accept"
                    ))
                })?;
            s.tracking
                .history(
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
                )
                .map_err(|e| CliError::Failed(e.to_string()))?;
            Ok(old)
        })?;
        return Ok(Outcome::ok(format!(
            "accepted the edited {}: checksum {} → {}\n",
            m.path.display(),
            &old[..12.min(old.len())],
            &m.checksum[..12]
        )));
    }
    let cleared = with_lock(ctx, "repair", |s, state, _| {
        let failing = state
            .rows
            .iter()
            .any(|r| matches!(r.status, RowStatus::Failed | RowStatus::Running));
        if failing && !force {
            let invalid = s
                .tracking
                .invalid_indexes(&mut s.db)
                .map_err(|e| CliError::Failed(e.to_string()))?;
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
        let cleared = s
            .tracking
            .clear_failed(&mut s.db)
            .map_err(|e| CliError::Failed(e.to_string()))?;
        for (version, name, status, idx) in &cleared {
            let why = format!(
                "cleared {status} row{}; the migration will run again from its first statement",
                idx.map(|i| format!(" (stopped at statement {})", i + 1))
                    .unwrap_or_default()
            );
            s.tracking
                .history(
                    &mut s.db,
                    &run,
                    "repair",
                    Some(version),
                    Some(name),
                    None,
                    "completed",
                    Some(0),
                    None,
                    Some(&why),
                )
                .map_err(|e| CliError::Failed(e.to_string()))?;
        }
        Ok(cleared)
    })?;
    if cleared.is_empty() {
        return Ok(Outcome::ok(
            "nothing to repair: no failed or interrupted migration\n".into(),
        ));
    }
    let mut out = String::new();
    for (version, name, status, _) in &cleared {
        out.push_str(&format!(
            "cleared {status} migration {version} {name}: `pgrollout apply` will run it again\n"
        ));
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
        .map(|s| overview::parse_env_url(s))
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
fn environments(ctx: &Context, envs: &EnvUrls, all: bool) -> Result<Vec<Environment>, CliError> {
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
    let o = overview::gather(&set, &dir, &list, &opts, ctx.reporter);
    let bad = o
        .environments
        .iter()
        .any(|e| e.reach == Reach::Unreachable || e.health.status == HealthStatus::Error);
    Ok(Outcome {
        code: if bad { exit::FAILED } else { exit::OK },
        stdout: if ctx.json() {
            compare::status_all_json(&o)
        } else {
            compare::status_all_text(&o)
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
        Some(spec) => overview::resolve_side(spec, resolver.as_ref()).map_err(CliError::Usage)?,
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
                overview::resolve_side(spec, resolver.as_ref()).map_err(CliError::Usage)?;
            drift::compare((&s_label, &s), (&t_label, &t), &opts, ctx.reporter)
        }
        (None, None) => {
            return Err(CliError::Usage(
                "`drift` needs --source ENV|URL or --against migrations".into(),
            ))
        }
    }
    .map_err(|e| CliError::Failed(e.to_string()))?;
    Ok(Outcome {
        code: if report.has_critical() {
            exit::FAILED
        } else {
            exit::OK
        },
        stdout: if ctx.json() {
            compare::drift_json(&report)
        } else {
            compare::drift_text(&report)
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
    let o = overview::gather(&set, &dir, &list, &opts, ctx.reporter);
    let body = match ctx.global.format {
        Format::Html => html::render(&o),
        Format::Json => compare::report_json(&o),
        Format::Markdown | Format::Text => markdown::report(&o),
    };
    let health = serde_json::to_value(o.health)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match output {
        Some(path) => {
            std::fs::write(path, body)
                .map_err(|e| CliError::Failed(format!("writing {}: {e}", path.display())))?;
            Ok(Outcome::ok(format!(
                "wrote {} (overall health: {health}, {} environment(s))\n",
                path.display(),
                o.environments.len()
            )))
        }
        None => Ok(Outcome::ok(body)),
    }
}
