//! The one apply path: connect → read tracking state → (lock → ensure schema → re-read)
//! → plan → run each migration's up section through the [`executor`], emitting
//! events. On failure, the report of what did apply travels with the error.

use std::collections::HashMap;
use std::time::Duration;

use crate::db::conn::error_text;
use crate::db::lock::{LockError, LockGuard};
use crate::db::tracking::{
    applied_digest, AppliedRecord, RunContext, Summary, TrackingError, TrackingState,
    TRACKING_VERSION,
};
use crate::db::{ConnectError, Target};
use crate::engine::executor::{self, Bookkeeping, ExecError, FileText, LockLost, SectionError};
use crate::engine::repeatable;
use crate::engine::session::{connect, Session};
use crate::migration::{Migration, MigrationSet};
use crate::plan::{self, PlanOptions, Problem};
use crate::report::{Direction, Event, Level, Mode, Reporter};
use crate::sql::{Item, Statement};

/// Settings of a run (flags > environment > pipeline file > defaults, merged by the CLI).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub schema: String,
    pub lock_timeout: Duration,
    /// None: no limit.
    pub statement_timeout: Option<Duration>,
    /// How often a migration that hit lock_timeout (SQLSTATE 55P03) is retried.
    pub lock_retries: u32,
    /// How long to wait for another runner's migration lock.
    pub lock_wait: Duration,
    /// How long to keep retrying a connection while the server starts.
    pub connect_retry: Duration,
    pub plan: PlanOptions,
    pub dry_run: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            schema: "pgrollout".into(),
            lock_timeout: Duration::from_secs(5),
            statement_timeout: None,
            lock_retries: 5,
            lock_wait: Duration::from_secs(600),
            connect_retry: Duration::from_secs(30),
            plan: PlanOptions::default(),
            dry_run: false,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    pub version: String,
    pub name: String,
    pub mode: Mode,
    pub duration_ms: u64,
}

/// What a run did. Returned on success and carried by a failure.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ApplyReport {
    pub applied: Vec<Applied>,
    pub rehearsed: Vec<Applied>,
    pub not_rehearsed: Vec<Applied>,
    /// Rehearsed on a shadow database only: the target rehearsal was skipped for them
    /// (the pipeline's `dry-run` step; see the engine's `rehearse` module).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shadow_only: Vec<Applied>,
    /// Why no migration was rehearsed on the target (no shadow database could be
    /// built); those of `shadow_only` were then rehearsed nowhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_skipped: Option<String>,
    /// Pending migrations left after the run (beyond --target, or after a failure).
    pub pending: Vec<String>,
    pub server_version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{} problem(s) in the migration files", .0.iter().filter(|p| p.level == Level::Error).count())]
    Files(Vec<Problem>),
    #[error("{} problem(s) block this run", .0.iter().filter(|p| p.level == Level::Error).count())]
    Blocked(Vec<Problem>),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Tracking(#[from] TrackingError),
    #[error("{0}")]
    Migration(Box<SectionError>),
    #[error("{0}")]
    LockLost(Box<LockLost>),
    /// Ctrl-C or SIGTERM before the next migration: the ones listed as applied are.
    #[error("interrupted before the next migration: the migrations before it are applied, the rest still pending")]
    Cancelled,
    #[error("{what}: {}", error_text(.source))]
    Query {
        what: String,
        #[source]
        source: tokio_postgres::Error,
    },
}

/// A failed run: the error, and what had been done before it.
#[derive(Debug)]
pub struct ApplyFailure {
    pub report: ApplyReport,
    pub error: ApplyError,
}

// ApplyFailure carries the whole report by design (what applied before the error), so
// the Err side of apply() is large; it is built at most once per run.
impl<E: Into<ApplyError>> From<E> for ApplyFailure {
    fn from(e: E) -> Self {
        ApplyFailure {
            report: ApplyReport::default(),
            error: e.into(),
        }
    }
}

impl From<ExecError> for ApplyError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Section(s) => ApplyError::Migration(s),
            ExecError::LockLost(l) => ApplyError::LockLost(l),
            ExecError::Tracking(t) => ApplyError::Tracking(t),
            ExecError::Query { what, source } => ApplyError::Query { what, source },
            ExecError::NotApplied(v) => unreachable!("an up section removes no row ({v})"),
        }
    }
}

fn problems_event(problems: &[Problem], reporter: &mut dyn Reporter) {
    for p in problems {
        reporter.event(&Event::Diagnostic {
            level: p.level,
            location: p.location.as_ref(),
            message: &p.message,
        });
    }
}

/// The statements of a section that are sent, without a recognised BEGIN/COMMIT wrapper.
fn body(section: &crate::migration::Section) -> Vec<&Statement> {
    let wrapper = plan::wrapper(section);
    section
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Statement(s) => Some(s),
            Item::MetaCommand(_) => None,
        })
        .filter(|s| !wrapper.is_some_and(|(b, c)| std::ptr::eq(b, *s) || std::ptr::eq(c, *s)))
        .collect()
}

/// A migration's up section, for the executor.
pub(crate) fn up_section(m: &Migration) -> executor::Section<'_> {
    executor::Section {
        direction: Direction::Up,
        version: &m.version.text,
        name: &m.name,
        path: Some(&m.path),
        origin: None,
        source: &m.source,
        statements: body(&m.up),
        no_transaction: m.up.no_transaction,
        file: Some(FileText {
            path: &m.path,
            text: &m.source,
            lines: &m.lines,
            start: 0,
        }),
    }
}

fn up_to_date(
    report: ApplyReport,
    state: &TrackingState,
    reporter: &mut dyn Reporter,
) -> ApplyReport {
    reporter.event(&Event::UpToDate {
        applied: state.rows.len(),
    });
    report
}

/// `apply --dry-run`, and the rehearsal on the target of the pipeline's `dry-run` step,
/// which passes in `skip` (version → why) the migrations not to run on it (they are
/// listed in the report's `shadow_only`).
#[allow(clippy::result_large_err)]
pub(crate) fn rehearse_on_target(
    target: &Target,
    set: &MigrationSet,
    opts: &RunOptions,
    skip: &HashMap<String, String>,
    reporter: &mut dyn Reporter,
) -> Result<ApplyReport, ApplyFailure> {
    check_up_sections(set, reporter)?;
    let mut s = connect(target, &opts.schema, opts.connect_retry, reporter)?;
    rehearse_checked(&mut s, set, opts, skip, reporter)
}

/// [`rehearse_on_target`] on a connected session (the pipeline's).
#[allow(clippy::result_large_err)]
pub(crate) fn rehearse_in(
    s: &mut Session,
    set: &MigrationSet,
    opts: &RunOptions,
    skip: &HashMap<String, String>,
    reporter: &mut dyn Reporter,
) -> Result<ApplyReport, ApplyFailure> {
    check_up_sections(set, reporter)?;
    rehearse_checked(s, set, opts, skip, reporter)
}

/// [`rehearse_in`] once the up sections were checked ([`check_up_sections`]).
#[allow(clippy::result_large_err)]
pub(crate) fn rehearse_checked(
    s: &mut Session,
    set: &MigrationSet,
    opts: &RunOptions,
    skip: &HashMap<String, String>,
    reporter: &mut dyn Reporter,
) -> Result<ApplyReport, ApplyFailure> {
    let report = ApplyReport {
        server_version: s.db.server_version.clone(),
        ..Default::default()
    };
    let state = s.tracking.read(&mut s.db)?;
    dry_run(s, set, &state, opts, skip, report, reporter)
}

/// The up sections' problems that block any run (of the sections parsed already).
/// Down sections do not block the up: they are checked (and warned about) with the
/// migrations about to run, in `parse_pending`.
pub(crate) fn check_up_sections(
    set: &MigrationSet,
    reporter: &mut dyn Reporter,
) -> Result<(), ApplyError> {
    let file_problems = plan::check_ups(set);
    if file_problems.iter().any(|p| p.level == Level::Error) {
        problems_event(&file_problems, reporter);
        return Err(ApplyError::Files(file_problems));
    }
    Ok(())
}

/// The tracking rows' digest if every migration on disk were applied, unchanged.
fn files_digest(set: &MigrationSet) -> String {
    applied_digest(
        set.migrations
            .iter()
            .map(|m| (m.version.text.as_str(), m.checksum.as_str(), "completed")),
    )
}

/// `apply` and `apply --dry-run`.
#[allow(clippy::result_large_err)]
pub fn apply(
    target: &Target,
    set: &MigrationSet,
    opts: &RunOptions,
    ctx: &RunContext,
    reporter: &mut dyn Reporter,
) -> Result<ApplyReport, ApplyFailure> {
    if opts.dry_run {
        return rehearse_on_target(target, set, opts, &HashMap::new(), reporter);
    }
    check_up_sections(set, reporter)?;
    let mut s = connect(target, &opts.schema, opts.connect_retry, reporter)?;
    let summary = s.tracking.summary(&mut s.db);
    apply_checked(&mut s, set, summary, opts, ctx, reporter)
}

/// [`apply`] on a connected session (the pipeline's, shared by its steps). The lock
/// is taken and released within.
#[allow(clippy::result_large_err)]
pub fn apply_in(
    s: &mut Session,
    set: &MigrationSet,
    opts: &RunOptions,
    ctx: &RunContext,
    reporter: &mut dyn Reporter,
) -> Result<ApplyReport, ApplyFailure> {
    check_up_sections(set, reporter)?;
    let summary = s.tracking.summary(&mut s.db);
    apply_checked(s, set, summary, opts, ctx, reporter)
}

/// [`apply_in`] once the up sections were checked ([`check_up_sections`]) and the
/// tracking summary read (by `session::Connecting`, while the files were read).
#[allow(clippy::result_large_err)]
pub(crate) fn apply_checked(
    s: &mut Session,
    set: &MigrationSet,
    summary: Result<Summary, TrackingError>,
    opts: &RunOptions,
    ctx: &RunContext,
    reporter: &mut dyn Reporter,
) -> Result<ApplyReport, ApplyFailure> {
    let mut report = ApplyReport {
        server_version: s.db.server_version.clone(),
        ..Default::default()
    };
    // Fast path: nothing to do costs one query returning one row, and no lock: the
    // server's digest of the tracking rows against the files' as completed rows.
    let summary = summary?;
    // Repeatables are recorded in the history, not in the digested rows.
    if summary.version == Some(TRACKING_VERSION)
        && summary.digest == Some(files_digest(set))
        && repeatable::due(s, set)?.is_empty()
    {
        reporter.event(&Event::UpToDate {
            applied: summary.rows,
        });
        return Ok(report);
    }
    let state = s.tracking.read(&mut s.db)?;

    if opts.dry_run {
        return dry_run(s, set, &state, opts, &HashMap::new(), report, reporter);
    }

    // Nothing to do by the plan's reckoning (a baseline, say; or only the digest
    // differs because repeatables exist): still no lock.
    if state.is_current() {
        let p = plan::plan(set, &state.rows, &opts.plan);
        if !p.blocked() && p.to_apply.is_empty() && repeatable::due(s, set)?.is_empty() {
            report.pending = pending_beyond(&p);
            return Ok(up_to_date(report, &state, reporter));
        }
    }

    // The files about to run are parsed before the lock is taken or the tracking schema
    // created: a syntax error in one is the author's to fix, and needs neither.
    let early = parse_pending(set, &plan::plan(set, &state.rows, &opts.plan), reporter)?;
    let (_guard, state, pending) = lock_and_plan(s, set, early, opts, reporter)?;
    let p = plan::plan(
        set,
        &state.rows,
        &PlanOptions {
            lock_held: true,
            ..opts.plan.clone()
        },
    );
    // Repeatables run after the versioned ones, so what is due is known under the lock.
    let repeatables = repeatable::parse(&repeatable::due(s, set)?, reporter)?;
    if pending.migrations.is_empty() && repeatables.is_empty() {
        report.pending = pending_beyond(&p);
        return Ok(up_to_date(report, &state, reporter));
    }
    let to_apply: Vec<&Migration> = pending.migrations.iter().collect();
    if !to_apply.is_empty() {
        announce(&to_apply, false, reporter);
    }
    // What is left when the run stops after `done` of them (they run in order).
    let beyond = pending_beyond(&p);
    let left = |done: usize| -> Vec<String> {
        to_apply[done..]
            .iter()
            .map(|m| m.version.text.clone())
            .chain(beyond.iter().cloned())
            .collect()
    };
    let insert = match executor::prepare(&mut s.db, &s.tracking.record_applied_sql()) {
        Ok(st) => st,
        Err(e) => {
            report.pending = left(0);
            return Err(ApplyError::from(e).into());
        }
    };
    for (done, m) in to_apply.iter().enumerate() {
        // Ctrl-C/SIGTERM between migrations: stop here, with what applied reported.
        if crate::cancelled() {
            report.pending = left(done);
            return Err(ApplyFailure {
                report,
                error: ApplyError::Cancelled,
            });
        }
        let book = Bookkeeping::Up {
            row: AppliedRecord {
                version: &m.version.text,
                name: &m.name,
                checksum: &m.checksum,
                down_sql: m.down_text(),
                down_no_transaction: m.down.as_ref().is_some_and(|d| d.section.no_transaction),
                ctx,
            },
            insert: &insert,
        };
        match executor::run(s, &up_section(m), &book, opts, reporter) {
            Ok(ran) => report.applied.push(Applied::new(m, ran.mode, ran.duration)),
            Err(e) => {
                report.pending = left(done);
                return Err(ApplyFailure {
                    report,
                    error: e.into(),
                });
            }
        }
    }
    if let Err(error) = repeatable::run(s, &repeatables, opts, ctx, &mut report, reporter) {
        report.pending = beyond;
        return Err(ApplyFailure { report, error });
    }
    report.pending = beyond;
    Ok(report)
}

/// Under the lock: the state re-read, the plan, and the migrations to apply, parsed.
/// Blocked plans are errors; the problems are reported either way.
fn lock_and_plan(
    s: &mut Session,
    set: &MigrationSet,
    early: MigrationSet,
    opts: &RunOptions,
    reporter: &mut dyn Reporter,
) -> Result<(LockGuard, TrackingState, MigrationSet), ApplyError> {
    let (guard, state) = s.lock(opts, reporter)?;
    let locked = PlanOptions {
        lock_held: true,
        ..opts.plan.clone()
    };
    let mut p = plan::plan(set, &state.rows, &locked);
    // `early` was parsed (and reported) from the plan before the lock: reused unless
    // another runner changed what is pending meanwhile.
    let same = p.to_apply.len() == early.migrations.len()
        && p.to_apply
            .iter()
            .zip(&early.migrations)
            .all(|(a, b)| a.version == b.version);
    let pending = if same {
        early
    } else {
        parse_pending(set, &p, reporter)?
    };
    if p.entries
        .iter()
        .any(|e| matches!(e.state, plan::State::Failed | plan::State::Running))
    {
        let invalid = s.tracking.invalid_indexes(&mut s.db)?;
        if !invalid.is_empty() {
            p.problems.push(Problem {
                level: Level::Notice,
                version: None,
                location: None,
                message: format!(
                    "INVALID indexes in the database (left by a failed CONCURRENTLY build): drop them before `pgrollout repair`: {}",
                    invalid.iter().map(|i| format!("DROP INDEX CONCURRENTLY IF EXISTS {i};")).collect::<Vec<_>>().join(" ")
                ),
            });
        }
    }
    problems_event(&p.problems, reporter);
    if p.blocked() {
        return Err(ApplyError::Blocked(p.problems));
    }
    Ok((guard, state, pending))
}

fn announce(to_apply: &[&Migration], dry_run: bool, reporter: &mut dyn Reporter) {
    let list: Vec<(String, String)> = to_apply
        .iter()
        .map(|m| (m.version.text.clone(), m.name.clone()))
        .collect();
    reporter.event(&Event::PlanReady {
        direction: Direction::Up,
        migrations: &list,
        dry_run,
    });
}

impl Applied {
    pub(crate) fn new(m: &Migration, mode: Mode, duration: Duration) -> Applied {
        Applied {
            version: m.version.text.clone(),
            name: m.name.clone(),
            mode,
            duration_ms: duration.as_millis() as u64,
        }
    }
}

/// Copies of the migrations about to run, with their statements parsed (the set may
/// have been loaded without them) and checked. One at a time: each one's syntax trees
/// are dropped once it is checked (running needs the statements' spans and classes,
/// not the trees), so memory does not grow with the parse trees of thousands of
/// pending migrations.
pub(crate) fn parse_pending(
    set: &MigrationSet,
    p: &plan::Plan,
    reporter: &mut dyn Reporter,
) -> Result<MigrationSet, ApplyError> {
    let mut pending = MigrationSet {
        layout: set.layout,
        dir: set.dir.clone(),
        migrations: Vec::with_capacity(p.to_apply.len()),
        ..Default::default()
    };
    let mut errors = Vec::new();
    let mut one = MigrationSet {
        layout: set.layout,
        dir: set.dir.clone(),
        migrations: Vec::with_capacity(1),
        ..Default::default()
    };
    for m in &p.to_apply {
        let mut m = (*m).clone();
        if let Err(e) = m.parse_statements() {
            errors.push(Problem {
                level: Level::Error,
                version: Some(m.version.text.clone()),
                location: None,
                message: e.to_string(),
            });
        }
        one.migrations.push(m);
        errors.extend(plan::check_ups(&one));
        errors.extend(plan::down_warnings(&one));
        let mut m = one.migrations.pop().expect("pushed above");
        m.drop_syntax_trees();
        pending.migrations.push(m);
    }
    problems_event(&errors, reporter);
    if errors.iter().any(|p| p.level == Level::Error) {
        Err(ApplyError::Files(errors))
    } else {
        Ok(pending)
    }
}

fn pending_beyond(p: &plan::Plan) -> Vec<String> {
    let running: std::collections::HashSet<&str> =
        p.to_apply.iter().map(|m| m.version.text.as_str()).collect();
    p.entries
        .iter()
        .filter(|e| e.state == plan::State::Pending)
        .filter(|e| !running.contains(e.version.as_str()))
        .map(|e| e.version.clone())
        .collect()
}

/// Dry run: read-only — no lock, no tracking schema created, nothing written. Every
/// pending transactional migration runs, in order, inside one transaction that is
/// rolled back: later migrations see the earlier ones' changes, as they would when
/// applied. A tight lock_timeout keeps the rehearsal from queueing behind traffic.
#[allow(clippy::result_large_err)]
fn dry_run(
    s: &mut Session,
    set: &MigrationSet,
    state: &TrackingState,
    opts: &RunOptions,
    skip: &HashMap<String, String>,
    mut report: ApplyReport,
    reporter: &mut dyn Reporter,
) -> Result<ApplyReport, ApplyFailure> {
    let p = plan::plan(set, &state.rows, &opts.plan);
    problems_event(&p.problems, reporter);
    if p.blocked() {
        return Err(ApplyError::Blocked(p.problems).into());
    }
    let repeatables = repeatable::parse(&repeatable::due(s, set)?, reporter)?;
    if p.to_apply.is_empty() && repeatables.is_empty() {
        return Ok(up_to_date(report, state, reporter));
    }
    let pending = parse_pending(set, &p, reporter)?;
    let to_apply: Vec<&Migration> = pending.migrations.iter().collect();
    if !to_apply.is_empty() {
        announce(&to_apply, true, reporter);
    }
    if !repeatables.is_empty() {
        repeatable::announce(&repeatables, reporter);
    }
    let rehearsal = rehearsal_options(opts);
    if let Err(source) =
        s.db.batch(&format!("BEGIN; {}", executor::timeouts(&rehearsal, true)))
    {
        return Err(ApplyFailure {
            report,
            error: ApplyError::Query {
                what: "starting the rehearsal transaction".into(),
                source,
            },
        });
    }
    // Repeatables are rehearsed after the versioned migrations, as they run.
    for m in to_apply.into_iter().chain(&repeatables) {
        // The caller says where these were rehearsed instead, and why.
        if skip.contains_key(&m.version.text) {
            report
                .shadow_only
                .push(Applied::new(m, Mode::Rehearsal, Duration::ZERO));
            continue;
        }
        if m.up.no_transaction {
            reporter.event(&Event::SectionNotRehearsed {
                direction: Direction::Up,
                version: &m.version.text,
                name: &m.name,
                reason:
                    "transaction:false: it runs outside a transaction, so it cannot be rolled back",
            });
            report
                .not_rehearsed
                .push(Applied::new(m, Mode::NonTransactional, Duration::ZERO));
            continue;
        }
        match executor::run(
            s,
            &up_section(m),
            &Bookkeeping::Rehearse,
            &rehearsal,
            reporter,
        ) {
            Ok(ran) => report
                .rehearsed
                .push(Applied::new(m, ran.mode, ran.duration)),
            Err(e) => {
                return Err(ApplyFailure {
                    report,
                    error: e.into(),
                })
            }
        }
    }
    let _ = s.db.batch("ROLLBACK; RESET ALL");
    Ok(report)
}

/// A rehearsal waits at most 2 s for a lock: it must not queue behind traffic.
pub(crate) fn rehearsal_options(opts: &RunOptions) -> RunOptions {
    let mut r = opts.clone();
    r.lock_timeout = opts.lock_timeout.min(Duration::from_secs(2));
    r
}
