//! The one apply path: connect → read tracking state → (lock → ensure schema → re-read)
//! → plan → run each migration, emitting events. On failure, the report of what did
//! apply travels with the error.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio_postgres::error::{ErrorPosition, SqlState};

use crate::db::conn::{error_text, ServerError};
use crate::db::lock::{self, LockError, LockGuard, LockHolder, LockWaitObserver};
use crate::db::tracking::{
    AppliedRecord, RunContext, Tracking, TrackingError, TrackingState, TRACKING_VERSION,
};
use crate::db::{ConnectError, Db, Target};
use crate::migration::{Migration, MigrationSet};
use crate::plan::{self, PlanOptions, Problem};
use crate::report::{Event, Level, Location, Mode, Reporter};
use crate::sql::{self, Item, Statement};

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
    /// Pending migrations left after the run (beyond --target, or after a failure).
    pub pending: Vec<String>,
    pub server_version: String,
}

/// A migration that failed on the server, positioned in its file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationError {
    pub version: String,
    pub name: String,
    pub location: Option<Location>,
    /// 0-based statement index within the section.
    pub statement_index: Option<usize>,
    #[serde(flatten)]
    pub server: ServerError,
    pub non_transactional: bool,
    pub attempts: u32,
    /// For a failed transaction:false migration: indexes left INVALID.
    pub invalid_indexes: Vec<String>,
}

/// "gave up after N attempts", when a 55P03 retry loop ran more than once.
pub(crate) fn write_attempts(f: &mut std::fmt::Formatter<'_>, attempts: u32) -> std::fmt::Result {
    if attempts > 1 {
        write!(f, "\n  gave up after {attempts} attempts")?;
    }
    Ok(())
}

impl MigrationError {
    /// The message without the location, for reporters that show the location apart.
    pub fn body(&self) -> String {
        let full = self.to_string();
        match &self.location {
            Some(l) => full
                .strip_prefix(&format!("{l}: "))
                .unwrap_or(&full)
                .to_string(),
            None => full,
        }
    }
}

impl std::fmt::Display for MigrationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = self
            .location
            .as_ref()
            .map(|l| format!("{l}: "))
            .unwrap_or_default();
        write!(f, "{at}migration {} {} failed", self.version, self.name)?;
        if let Some(i) = self.statement_index {
            write!(f, " at statement {}", i + 1)?;
        }
        write!(f, ": {}", self.server)?;
        write_attempts(f, self.attempts)?;
        if self.non_transactional {
            write!(
                f,
                "\n  the migration ran outside a transaction: the statements before this one are in effect, \
                 and it is recorded as failed. Fix the cause"
            )?;
            for i in &self.invalid_indexes {
                write!(f, "\n    DROP INDEX CONCURRENTLY IF EXISTS {i};  -- left INVALID by a failed CONCURRENTLY build")?;
            }
            write!(f, "\n  then run `pgrollout repair` and apply again (the migration reruns from its first statement).")?;
        } else {
            write!(
                f,
                "\n  the migration's transaction was rolled back: nothing of it was applied."
            )?;
        }
        Ok(())
    }
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
    Migration(Box<MigrationError>),
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

/// A connected work session with its tracking schema.
pub struct Session {
    pub db: Db,
    pub tracking: Tracking,
    pub target: Target,
}

pub fn connect(
    target: &Target,
    schema: &str,
    retry: Duration,
    reporter: &mut dyn Reporter,
) -> Result<Session, ConnectError> {
    reporter.event(&Event::Connecting {
        target: &target.redacted,
    });
    let app = format!("pgrollout {}", env!("CARGO_PKG_VERSION"));
    let db = Db::connect(target, &app, retry, &mut |attempt, wait, reason| {
        reporter.event(&Event::ConnectRetry {
            attempt,
            wait,
            reason,
        })
    })?;
    reporter.event(&Event::Connected {
        target: &target.redacted,
        server_version: &db.server_version,
    });
    Ok(Session {
        db,
        tracking: Tracking::new(schema),
        target: target.clone(),
    })
}

struct Waiter<'r> {
    reporter: &'r mut dyn Reporter,
}

impl LockWaitObserver for Waiter<'_> {
    fn waiting(&mut self, waited: Duration, holder: Option<&LockHolder>) {
        self.reporter.event(&Event::LockWaiting { waited, holder });
    }
    fn cancelled(&mut self) -> bool {
        crate::cancelled()
    }
}

impl Session {
    /// Take the migration lock, bring the tracking schema up to date, and re-read the state.
    pub fn lock(
        &mut self,
        opts: &RunOptions,
        found: &TrackingState,
        reporter: &mut dyn Reporter,
    ) -> Result<(LockGuard, TrackingState), ApplyError> {
        let guard = lock::acquire(
            &self.target,
            &self.tracking.schema,
            self.tracking.lock_key(),
            opts.lock_wait,
            &mut Waiter { reporter },
        )?;
        reporter.event(&Event::LockAcquired {
            waited: guard.waited,
        });
        lock::verify_from(&mut self.db, &guard)?;
        // Re-read under the lock: another runner may have created or upgraded it meanwhile.
        let state = self.tracking.read(&mut self.db)?;
        if !state.is_current() {
            let from = self.tracking.ensure(&mut self.db, state.version)?;
            reporter.event(&Event::TrackingSchemaReady {
                schema: &self.tracking.schema,
                from,
                to: TRACKING_VERSION,
            });
            let _ = found;
            return Ok((guard, self.tracking.read(&mut self.db)?));
        }
        Ok((guard, state))
    }

    fn notices(&mut self, version: Option<&str>, reporter: &mut dyn Reporter) {
        for n in self.db.take_notices() {
            reporter.event(&Event::ServerNotice {
                version,
                severity: n.severity(),
                message: n.message(),
            });
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

/// `apply` and `apply --dry-run`.
#[allow(clippy::result_large_err)]
pub fn apply(
    target: &Target,
    set: &MigrationSet,
    opts: &RunOptions,
    ctx: &RunContext,
    reporter: &mut dyn Reporter,
) -> Result<ApplyReport, ApplyFailure> {
    // Down sections do not block the up: they are checked (and warned about) with the
    // migrations about to run, in `parse_pending`.
    let file_problems = plan::check_ups(set);
    if file_problems.iter().any(|p| p.level == Level::Error) {
        problems_event(&file_problems, reporter);
        return Err(ApplyError::Files(file_problems).into());
    }
    let mut s = connect(target, &opts.schema, opts.connect_retry, reporter)?;
    let mut report = ApplyReport {
        server_version: s.db.server_version.clone(),
        ..Default::default()
    };
    let state = s.tracking.read(&mut s.db)?;

    if opts.dry_run {
        // Read-only: no lock, no tracking schema created, nothing written.
        let p = plan::plan(set, &state.rows, &opts.plan);
        problems_event(&p.problems, reporter);
        if p.blocked() {
            return Err(ApplyError::Blocked(p.problems).into());
        }
        if p.to_apply.is_empty() {
            reporter.event(&Event::UpToDate {
                applied: state.rows.len(),
            });
            return Ok(report);
        }
        let pending = parse_pending(set, &p, reporter)?;
        let to_apply: Vec<&Migration> = pending.migrations.iter().collect();
        return rehearse(&mut s, &to_apply, opts, report, reporter);
    }

    // Fast path: nothing to do costs one query, and no lock.
    if state.is_current() {
        let p = plan::plan(set, &state.rows, &opts.plan);
        if !p.blocked() && p.to_apply.is_empty() {
            report.pending = pending_beyond(&p);
            reporter.event(&Event::UpToDate {
                applied: state.rows.len(),
            });
            return Ok(report);
        }
    }

    let (_guard, state) = s.lock(opts, &state, reporter)?;
    let locked = PlanOptions {
        lock_held: true,
        ..opts.plan.clone()
    };
    let p = plan::plan(set, &state.rows, &locked);
    let pending = parse_pending(set, &p, reporter)?;
    let mut p = plan::Plan {
        to_apply: pending.migrations.iter().collect(),
        ..p
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
        return Err(ApplyError::Blocked(p.problems).into());
    }
    report.pending = p.to_apply.iter().map(|m| m.version.text.clone()).collect();
    if p.to_apply.is_empty() {
        report.pending = pending_beyond(&p);
        reporter.event(&Event::UpToDate {
            applied: state.rows.len(),
        });
        return Ok(report);
    }
    let list: Vec<(String, String)> = p
        .to_apply
        .iter()
        .map(|m| (m.version.text.clone(), m.name.clone()))
        .collect();
    reporter.event(&Event::PlanReady {
        pending: &list,
        dry_run: false,
    });
    let record = match s.db.run(|c| {
        let sql = s.tracking.record_applied_sql();
        async move { c.prepare(&sql).await }
    }) {
        Ok(st) => st,
        Err(source) => {
            return Err(ApplyError::Query {
                what: "preparing the tracking insert".into(),
                source,
            }
            .into())
        }
    };
    for m in &p.to_apply {
        let result = if m.up.no_transaction {
            apply_non_transactional(&mut s, m, opts, ctx, reporter)
        } else {
            apply_transactional(&mut s, m, opts, ctx, &record, reporter)
        };
        match result {
            Ok(a) => {
                report.pending.retain(|v| v != &a.version);
                report.applied.push(a);
            }
            Err(error) => {
                if let ApplyError::Migration(me) = &error {
                    reporter.event(&Event::MigrationFailed {
                        version: &me.version,
                        name: &me.name,
                        location: me.location.as_ref(),
                        message: &me.body(),
                    });
                }
                return Err(ApplyFailure { report, error });
            }
        }
    }
    report.pending.extend(pending_beyond(&p));
    Ok(report)
}

/// Copies of the migrations about to run, with their statements parsed (the set may
/// have been loaded without them) and checked.
fn parse_pending(
    set: &MigrationSet,
    p: &plan::Plan,
    reporter: &mut dyn Reporter,
) -> Result<MigrationSet, ApplyError> {
    let mut pending = MigrationSet {
        layout: set.layout,
        dir: set.dir.clone(),
        migrations: p.to_apply.iter().map(|m| (*m).clone()).collect(),
    };
    let mut errors = Vec::new();
    for m in pending.migrations.iter_mut() {
        if let Err(e) = m.parse_statements() {
            errors.push(Problem {
                level: Level::Error,
                version: Some(m.version.text.clone()),
                location: None,
                message: e.to_string(),
            });
        }
    }
    errors.extend(plan::check_ups(&pending));
    errors.extend(plan::down_warnings(&pending));
    problems_event(&errors, reporter);
    if errors.iter().any(|p| p.level == Level::Error) {
        Err(ApplyError::Files(errors))
    } else {
        Ok(pending)
    }
}

fn pending_beyond(p: &plan::Plan) -> Vec<String> {
    p.entries
        .iter()
        .filter(|e| e.state == plan::State::Pending)
        .filter(|e| !p.to_apply.iter().any(|m| m.version.text == e.version))
        .map(|e| e.version.clone())
        .collect()
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// `SET [LOCAL] lock_timeout …; … statement_timeout …` for a migration (or a down).
pub(crate) fn timeouts(opts: &RunOptions, local: bool) -> String {
    let kw = if local { "SET LOCAL" } else { "SET" };
    format!(
        "{kw} lock_timeout = {}; {kw} statement_timeout = {}",
        ms(opts.lock_timeout),
        opts.statement_timeout.map_or(0, ms)
    )
}

type Step<'a> = Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + 'a>>;

/// Send every step before awaiting any answer, so the whole list costs one round trip;
/// the server runs them in order and stops at the first error (the rest fail with
/// "current transaction is aborted", and a COMMIT then answers ROLLBACK).
async fn pipeline(mut steps: Vec<Step<'_>>) -> Vec<Result<(), tokio_postgres::Error>> {
    let mut results: Vec<Option<Result<(), tokio_postgres::Error>>> =
        Vec::with_capacity(steps.len());
    for step in steps.iter_mut() {
        results.push(match futures_util::poll!(step.as_mut()) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        });
    }
    let mut out = Vec::with_capacity(steps.len());
    for (step, r) in steps.iter_mut().zip(results) {
        out.push(match r {
            Some(r) => r,
            None => step.await,
        });
    }
    out
}

fn statement_text<'m>(m_source: &'m str, s: &Statement) -> &'m str {
    &m_source[s.span.clone()]
}

fn has_copy(stmts: &[&Statement]) -> bool {
    stmts.iter().any(|s| s.copy_data.is_some())
}

/// Build the error for statement `index` of `m` from a server error.
fn migration_error(
    m: &Migration,
    stmts: &[&Statement],
    index: Option<usize>,
    e: &tokio_postgres::Error,
    non_tx: bool,
    attempts: u32,
) -> MigrationError {
    let db = e.as_db_error();
    let stmt = index.and_then(|i| stmts.get(i));
    let location = stmt.map(|s| {
        let offset = match db.and_then(|d| d.position()) {
            Some(ErrorPosition::Original(p)) => {
                s.span.start + sql::char_offset_to_byte(statement_text(&m.source, s), *p as usize)
            }
            _ => s.span.start,
        };
        let (line, col) = m.line_col(offset);
        Location::new(&m.path, line, col)
    });
    MigrationError {
        version: m.version.text.clone(),
        name: m.name.clone(),
        location,
        statement_index: index,
        server: ServerError::from_error(e),
        non_transactional: non_tx,
        attempts,
        invalid_indexes: Vec::new(),
    }
}

fn is_lock_timeout(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
}

/// Exponential backoff with jitter for 55P03 retries: ~0.5 s, 1 s, 2 s … capped at 10 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let base = 500u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(5))
        .min(10_000);
    Duration::from_millis(base / 2 + rand::rng().random_range(0..=base / 2))
}

/// Run one transactional migration: BEGIN, timeouts, its statements, its tracking row,
/// COMMIT — pipelined into one round trip when it has no COPY data.
fn apply_transactional(
    s: &mut Session,
    m: &Migration,
    opts: &RunOptions,
    ctx: &RunContext,
    record: &tokio_postgres::Statement,
    reporter: &mut dyn Reporter,
) -> Result<Applied, ApplyError> {
    let stmts = body(&m.up);
    reporter.event(&Event::MigrationStarted {
        version: &m.version.text,
        name: &m.name,
        path: &m.path,
        mode: Mode::Transactional,
        statements: stmts.len(),
    });
    let begin = format!("BEGIN; {}", timeouts(opts, true));
    let row = AppliedRecord {
        version: &m.version.text,
        name: &m.name,
        checksum: &m.checksum,
        down_sql: m.down_text(),
        down_no_transaction: m.down.as_ref().is_some_and(|d| d.section.no_transaction),
        ctx,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let started = Instant::now();
        let outcome: Result<(), (Option<usize>, tokio_postgres::Error)> = if has_copy(&stmts) {
            run_stepwise(&mut s.db, &begin, m, &stmts, Some((record, &row)))
        } else {
            let results = s.db.run(|c| {
                let mut steps: Vec<Step> = Vec::with_capacity(stmts.len() + 3);
                steps.push(Box::pin(c.batch_execute(begin.as_str())));
                for st in &stmts {
                    steps.push(Box::pin(c.batch_execute(statement_text(&m.source, st))));
                }
                let rec = &row;
                steps.push(Box::pin(
                    async move { rec.insert(c, record).await.map(|_| ()) },
                ));
                // RESET ALL: a SET in one migration must not leak into the next.
                steps.push(Box::pin(c.batch_execute("COMMIT; RESET ALL")));
                pipeline(steps)
            });
            match results
                .into_iter()
                .enumerate()
                .find_map(|(i, r)| r.err().map(|e| (i, e)))
            {
                None => Ok(()),
                Some((i, e)) => {
                    let idx = (1..=stmts.len()).contains(&i).then(|| i - 1);
                    Err((idx, e))
                }
            }
        };
        s.notices(Some(&m.version.text), reporter);
        match outcome {
            Ok(()) => {
                let duration = started.elapsed();
                reporter.event(&Event::MigrationApplied {
                    version: &m.version.text,
                    name: &m.name,
                    mode: Mode::Transactional,
                    duration,
                });
                return Ok(Applied {
                    version: m.version.text.clone(),
                    name: m.name.clone(),
                    mode: Mode::Transactional,
                    duration_ms: duration.as_millis() as u64,
                });
            }
            Err((idx, e)) => {
                // Make sure the session is out of the transaction whatever failed.
                let _ = s.db.batch("ROLLBACK; RESET ALL");
                if is_lock_timeout(&e) && attempt <= opts.lock_retries {
                    let wait = backoff(attempt);
                    let msg = e
                        .as_db_error()
                        .map_or_else(|| e.to_string(), |d| d.message().to_string());
                    reporter.event(&Event::LockTimeoutRetry {
                        version: &m.version.text,
                        attempt,
                        max: opts.lock_retries,
                        wait,
                        message: &msg,
                    });
                    std::thread::sleep(wait);
                    continue;
                }
                let me = migration_error(m, &stmts, idx, &e, false, attempt);
                let _ = s.tracking.history(
                    &mut s.db,
                    ctx,
                    "apply",
                    Some(&m.version.text),
                    Some(&m.name),
                    Some(&m.checksum),
                    "failed",
                    Some(started.elapsed().as_millis() as i64),
                    Some(&me.to_string()),
                    None,
                );
                return Err(ApplyError::Migration(Box::new(me)));
            }
        }
    }
}

type Record<'a> = (&'a tokio_postgres::Statement, &'a AppliedRecord<'a>);

/// One round trip per statement, for sections with COPY data. With `record`, the
/// tracking row is written and the transaction committed; without, it is left open
/// (rehearsal rolls it back).
fn run_stepwise(
    db: &mut Db,
    begin: &str,
    m: &Migration,
    stmts: &[&Statement],
    record: Option<Record>,
) -> Result<(), (Option<usize>, tokio_postgres::Error)> {
    if !begin.is_empty() {
        db.batch(begin).map_err(|e| (None, e))?;
    }
    for (i, st) in stmts.iter().enumerate() {
        run_statement(db, &m.source, st).map_err(|e| (Some(i), e))?;
    }
    if let Some((stmt, row)) = record {
        db.run(|c| async move { row.insert(c, stmt).await })
            .map_err(|e| (None, e))?;
        db.batch("COMMIT; RESET ALL").map_err(|e| (None, e))?;
    }
    Ok(())
}

/// One statement of `source` (a file's text): a simple query, or COPY with its inline data.
pub(crate) fn run_statement(
    db: &mut Db,
    source: &str,
    st: &Statement,
) -> Result<(), tokio_postgres::Error> {
    let sql = &source[st.span.clone()];
    match &st.copy_data {
        Some(data) => db
            .copy_in(
                sql.trim_end().trim_end_matches(';'),
                source[data.clone()].as_bytes(),
            )
            .map(|_| ()),
        None => db.batch(sql),
    }
}

/// A transaction:false migration: recorded `running`, then each statement on its own.
fn apply_non_transactional(
    s: &mut Session,
    m: &Migration,
    opts: &RunOptions,
    ctx: &RunContext,
    reporter: &mut dyn Reporter,
) -> Result<Applied, ApplyError> {
    let stmts = body(&m.up);
    reporter.event(&Event::MigrationStarted {
        version: &m.version.text,
        name: &m.name,
        path: &m.path,
        mode: Mode::NonTransactional,
        statements: stmts.len(),
    });
    let v = m.version.text.as_str();
    let down_no_tx = m.down.as_ref().is_some_and(|d| d.section.no_transaction);
    s.tracking.start_non_transactional(
        &mut s.db,
        ctx,
        v,
        &m.name,
        &m.checksum,
        m.down_text(),
        down_no_tx,
    )?;
    let started = Instant::now();
    s.db.batch(&timeouts(opts, false))
        .map_err(|source| ApplyError::Query {
            what: "setting timeouts".into(),
            source,
        })?;
    for (i, st) in stmts.iter().enumerate() {
        if i > 0 {
            s.tracking.set_statement_index(&mut s.db, v, i as i32)?;
        }
        let label = st.ast.as_ref().map_or("statement", sql::statement_keyword);
        reporter.event(&Event::StatementStarted {
            version: v,
            index: i,
            total: stmts.len(),
            line: st.line,
            label: st.non_transactional.unwrap_or(label),
        });
        let r = run_statement(&mut s.db, &m.source, st);
        s.notices(Some(v), reporter);
        if let Err(e) = r {
            let mut me = migration_error(m, &stmts, Some(i), &e, true, 1);
            me.invalid_indexes = s.tracking.invalid_indexes(&mut s.db).unwrap_or_default();
            let _ = s.db.batch("RESET ALL");
            s.tracking.fail_non_transactional(
                &mut s.db,
                ctx,
                v,
                &m.name,
                &m.checksum,
                i as i32,
                &me.server.to_string(),
                started.elapsed().as_millis() as i64,
            )?;
            return Err(ApplyError::Migration(Box::new(me)));
        }
    }
    let _ = s.db.batch("RESET ALL");
    let duration = started.elapsed();
    s.tracking.finish_non_transactional(
        &mut s.db,
        ctx,
        v,
        &m.name,
        &m.checksum,
        duration.as_millis() as i64,
    )?;
    reporter.event(&Event::MigrationApplied {
        version: v,
        name: &m.name,
        mode: Mode::NonTransactional,
        duration,
    });
    Ok(Applied {
        version: v.to_string(),
        name: m.name.clone(),
        mode: Mode::NonTransactional,
        duration_ms: duration.as_millis() as u64,
    })
}

/// Dry run: every pending transactional migration, in order, inside one transaction
/// that is rolled back — later migrations see the earlier ones' changes, as they would
/// when applied. A tight lock_timeout keeps the rehearsal from queueing behind traffic.
#[allow(clippy::result_large_err)]
fn rehearse(
    s: &mut Session,
    to_apply: &[&Migration],
    opts: &RunOptions,
    mut report: ApplyReport,
    reporter: &mut dyn Reporter,
) -> Result<ApplyReport, ApplyFailure> {
    let list: Vec<(String, String)> = to_apply
        .iter()
        .map(|m| (m.version.text.clone(), m.name.clone()))
        .collect();
    reporter.event(&Event::PlanReady {
        pending: &list,
        dry_run: true,
    });
    let mut rehearsal = opts.clone();
    rehearsal.lock_timeout = opts.lock_timeout.min(Duration::from_secs(2));
    if let Err(source) =
        s.db.batch(&format!("BEGIN; {}", timeouts(&rehearsal, true)))
    {
        return Err(ApplyFailure {
            report,
            error: ApplyError::Query {
                what: "starting the rehearsal transaction".into(),
                source,
            },
        });
    }
    for m in to_apply {
        if m.up.no_transaction {
            let reason =
                "transaction:false: it runs outside a transaction, so it cannot be rolled back";
            reporter.event(&Event::MigrationNotRehearsable {
                version: &m.version.text,
                name: &m.name,
                reason,
            });
            report.not_rehearsed.push(Applied {
                version: m.version.text.clone(),
                name: m.name.clone(),
                mode: Mode::NonTransactional,
                duration_ms: 0,
            });
            continue;
        }
        let stmts = body(&m.up);
        reporter.event(&Event::MigrationStarted {
            version: &m.version.text,
            name: &m.name,
            path: &m.path,
            mode: Mode::Rehearsal,
            statements: stmts.len(),
        });
        let started = Instant::now();
        let outcome = if has_copy(&stmts) {
            run_stepwise(&mut s.db, "", m, &stmts, None)
        } else {
            let results = s.db.run(|c| {
                let steps: Vec<Step> = stmts
                    .iter()
                    .map(|st| Box::pin(c.batch_execute(statement_text(&m.source, st))) as Step)
                    .collect();
                pipeline(steps)
            });
            match results
                .into_iter()
                .enumerate()
                .find_map(|(i, r)| r.err().map(|e| (i, e)))
            {
                None => Ok(()),
                Some((i, e)) => Err((Some(i), e)),
            }
        };
        s.notices(Some(&m.version.text), reporter);
        match outcome {
            Ok(()) => {
                let duration = started.elapsed();
                reporter.event(&Event::MigrationApplied {
                    version: &m.version.text,
                    name: &m.name,
                    mode: Mode::Rehearsal,
                    duration,
                });
                report.rehearsed.push(Applied {
                    version: m.version.text.clone(),
                    name: m.name.clone(),
                    mode: Mode::Rehearsal,
                    duration_ms: duration.as_millis() as u64,
                });
            }
            Err((idx, e)) => {
                let _ = s.db.batch("ROLLBACK; RESET ALL");
                let me = migration_error(m, &stmts, idx, &e, false, 1);
                reporter.event(&Event::MigrationFailed {
                    version: &me.version,
                    name: &me.name,
                    location: me.location.as_ref(),
                    message: &me.body(),
                });
                return Err(ApplyFailure {
                    report,
                    error: ApplyError::Migration(Box::new(me)),
                });
            }
        }
    }
    let _ = s.db.batch("ROLLBACK; RESET ALL");
    Ok(report)
}
