//! The one section executor: runs one section — the up or the down — of one migration.
//!
//! Every command that changes a schema comes through here: `apply` and its rehearsal,
//! `rollback` and its rehearsal, `test`, and drift's "against migrations" (which
//! applies). Direction is a parameter: the two directions differ only in what they
//! record ([`Bookkeeping`]) and how their errors read.
//!
//! - **Transactional**: `BEGIN`, the timeouts, the statements, the tracking write and
//!   `COMMIT` are sent together — one round trip (sections with COPY data go one
//!   statement at a time). A 55P03 (lock_timeout) rolls the whole transaction back and
//!   it is retried with backoff.
//! - **Statement by statement** (`transaction:false`): the tracking row says `running`
//!   before the first statement and carries the index of the one running; on an error
//!   it says `failed` with that index, which `status` reports and `repair` clears.
//!   Not retried: the statements before the failing one are in effect.
//! - **Rehearsal**: the statements only, inside a transaction the caller opened and
//!   will roll back; nothing is recorded.
//!
//! Server errors are positioned at file:line:col when the text that ran is a file's.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::error::{ErrorPosition, SqlState};

use crate::db::conn::{error_text, ServerError};
use crate::db::lock::{self, LockError, LOCK_LOST_SQLSTATE};
use crate::db::tracking::{AppliedRecord, RepeatableRecord, RollbackRecord, TrackingError};
use crate::db::Db;
use crate::engine::apply::RunOptions;
use crate::engine::session::{BlockerWatch, Session};
use crate::report::{Blocker, Direction, DownOrigin, Event, Location, Mode, Reporter};
use crate::sql::{self, LineIndex, Statement};

/// The file a section's text was taken from: `text` holds it at byte `start`.
#[derive(Clone, Copy)]
pub(crate) struct FileText<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    pub lines: &'a LineIndex,
    pub start: usize,
}

/// One section of one migration, ready to run.
pub(crate) struct Section<'a> {
    pub direction: Direction,
    pub version: &'a str,
    pub name: &'a str,
    /// The migration file, shown when an up starts.
    pub path: Option<&'a Path>,
    /// Where a down's SQL comes from.
    pub origin: Option<DownOrigin>,
    /// The text the statements' spans index into.
    pub source: &'a str,
    pub statements: Vec<&'a Statement>,
    pub no_transaction: bool,
    /// Set when `source` is (a byte-for-byte range of) a file, to position errors in it.
    pub file: Option<FileText<'a>>,
}

/// What running a section records in the tracking schema.
pub(crate) enum Bookkeeping<'a> {
    /// Dry run: inside the caller's open transaction; nothing is recorded.
    Rehearse,
    /// Apply: the tracking row, written by the prepared `insert`.
    Up {
        row: AppliedRecord<'a>,
        insert: &'a tokio_postgres::Statement,
    },
    /// A repeatable migration: its history row with the checksum it ran with.
    Repeatable {
        row: RepeatableRecord<'a>,
        insert: &'a tokio_postgres::Statement,
    },
    /// Roll back: the row's removal, by the prepared `delete`.
    Down {
        row: RollbackRecord<'a>,
        delete: &'a tokio_postgres::Statement,
    },
}

/// A section that ran to the end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ran {
    pub mode: Mode,
    pub duration: Duration,
}

/// A section that failed on the server, positioned in its file when it has one.
#[derive(Debug, Clone, Serialize)]
pub struct SectionError {
    pub direction: Direction,
    pub version: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<DownOrigin>,
    pub location: Option<Location>,
    /// Down only: the 1-based line within the down SQL that ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 0-based statement index within the section.
    pub statement_index: Option<usize>,
    #[serde(flatten)]
    pub server: ServerError,
    pub non_transactional: bool,
    pub attempts: u32,
    /// For a failed transaction:false section: indexes left INVALID.
    pub invalid_indexes: Vec<String>,
    /// Gave up on lock_timeout: the sessions last seen holding the locks it waited for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<Blocker>,
    /// A transaction:false section whose failure could not be recorded (the connection
    /// was lost): its row still says `running` at this statement.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unrecorded: bool,
}

impl SectionError {
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

    fn invalid_index_drops(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for i in &self.invalid_indexes {
            write!(
                f,
                "\n    DROP INDEX CONCURRENTLY IF EXISTS {i};  -- left INVALID by a failed CONCURRENTLY build"
            )?;
        }
        Ok(())
    }
}

impl std::fmt::Display for SectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(l) = &self.location {
            write!(f, "{l}: ")?;
        }
        match self.direction {
            Direction::Up => {
                write!(f, "migration {} {} failed", self.version, self.name)?;
                if let Some(i) = self.statement_index {
                    write!(f, " at statement {}", i + 1)?;
                }
                write!(f, ": {}", self.server)?;
            }
            Direction::Down => {
                let origin = self.origin.map_or("", DownOrigin::as_str);
                write!(
                    f,
                    "rolling back {} {} failed ({origin} down SQL",
                    self.version, self.name
                )?;
                if let Some(i) = self.statement_index {
                    write!(f, ", statement {}", i + 1)?;
                }
                if let (Some(l), None) = (self.line, &self.location) {
                    write!(f, ", line {l} of it")?;
                }
                write!(f, "): {}", self.server)?;
            }
        }
        if self.attempts > 1 {
            write!(f, "\n  gave up after {} attempts", self.attempts)?;
        }
        for b in &self.blockers {
            write!(f, "\n  it waited for {b}")?;
        }
        if self.non_transactional && self.unrecorded {
            let what = match self.direction {
                Direction::Up => "the migration",
                Direction::Down => "the rollback",
            };
            let at = self
                .statement_index
                .map_or(String::new(), |i| format!(" at statement {}", i + 1));
            return write!(
                f,
                "\n  the connection was lost, so {what} ran outside a transaction and is still recorded as \
                 running{at}: the statements before it are in effect, and whether that one took effect is \
                 not known. When the server is back, run `pgrollout status` (it says whether a runner is \
                 still at it), check the statement's effect, then run `pgrollout repair` and the command \
                 again (it reruns from its first statement)."
            );
        }
        match (self.direction, self.non_transactional) {
            (Direction::Up, true) => {
                write!(
                    f,
                    "\n  the migration ran outside a transaction: the statements before this one are in effect, \
                     and it is recorded as failed. Fix the cause"
                )?;
                self.invalid_index_drops(f)?;
                write!(f, "\n  then run `pgrollout repair` and apply again (the migration reruns from its first statement).")
            }
            (Direction::Up, false) => write!(
                f,
                "\n  the migration's transaction was rolled back: nothing of it was applied."
            ),
            (Direction::Down, true) => {
                write!(
                    f,
                    "\n  the down SQL ran outside a transaction: the statements before this one are in effect, \
                     and the rollback is recorded as failed. Fix the cause"
                )?;
                self.invalid_index_drops(f)?;
                write!(
                    f,
                    "\n  then run `pgrollout repair` (the migration is recorded as applied again) and roll back again \
                     (the down SQL reruns from its first statement: write it with IF EXISTS so a rerun is safe)."
                )
            }
            (Direction::Down, false) => write!(
                f,
                "\n  its transaction was rolled back: the migration is still applied, exactly as before."
            ),
        }
    }
}

/// The migration lock was found lost: where the run stopped, and what is in effect.
#[derive(Debug, thiserror::Error)]
#[error("{lost}\n  {stopped}")]
pub struct LockLost {
    pub lost: LockError,
    /// Where the run stopped and what to do, in words.
    pub stopped: String,
}

impl LockLost {
    fn before_section(sec: &Section<'_>, lost: LockError) -> Box<LockLost> {
        let what = match sec.direction {
            Direction::Up => format!("migration {} {}", sec.version, sec.name),
            Direction::Down => format!("the rollback of {} {}", sec.version, sec.name),
        };
        Box::new(LockLost {
            lost,
            stopped: format!(
                "stopped before {what}: it did not start, and what ran before it is recorded as done. \
                 Another runner may hold the lock now: see `pgrollout status`, then run the command again."
            ),
        })
    }

    fn in_transaction(sec: &Section<'_>, lost: LockError) -> Box<LockLost> {
        Box::new(LockLost {
            lost,
            stopped: format!(
                "stopped in migration {} {}: its transaction was rolled back, so nothing of it was applied. \
                 See `pgrollout status`, then run the command again.",
                sec.version, sec.name
            ),
        })
    }

    fn before_statement(sec: &Section<'_>, index: usize, lost: LockError) -> Box<LockLost> {
        let what = match sec.direction {
            Direction::Up => format!("migration {} {}", sec.version, sec.name),
            Direction::Down => format!("the down SQL of {} {}", sec.version, sec.name),
        };
        Box::new(LockLost {
            lost,
            stopped: format!(
                "stopped before statement {} of {} of {what} (transaction:false): statements 1–{index} are \
                 in effect and it stays recorded as running. Wait until no runner holds the lock \
                 (`pgrollout status` says), check the statements can run again from the first, then run \
                 `pgrollout repair` and the command again.",
                index + 1,
                sec.statements.len(),
            ),
        })
    }
}

/// Why a section did not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{0}")]
    Section(Box<SectionError>),
    /// The migration lock is gone: nothing more may run.
    #[error("{0}")]
    LockLost(Box<LockLost>),
    #[error(transparent)]
    Tracking(#[from] TrackingError),
    #[error("{what}: {}", error_text(.source))]
    Query {
        what: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// The row to remove was gone when the rollback committed. Unreachable under the
    /// lock; said plainly rather than ignored.
    #[error("migration {0} was no longer recorded as applied when its rollback committed")]
    NotApplied(String),
}

/// Prepare a tracking statement once per run, so that executing it inside a pipeline
/// is sent in order with the rest (an unprepared one would send its Parse first and
/// its Execute after the COMMIT).
pub(crate) fn prepare(db: &mut Db, sql: &str) -> Result<tokio_postgres::Statement, ExecError> {
    db.run(|c| async move { c.prepare(sql).await })
        .map_err(|source| ExecError::Query {
            what: "preparing the tracking statement".into(),
            source,
        })
}

/// Watches a rehearsal statement by statement: called on the rehearsing session before
/// and after each statement, inside the statement's transaction, so what it reads from
/// the server (locks held, relation files, scan counters) is that statement's doing.
pub(crate) trait Observer {
    fn before(&mut self, db: &mut Db, index: usize) -> Result<(), tokio_postgres::Error>;
    fn after(&mut self, db: &mut Db, index: usize) -> Result<(), tokio_postgres::Error>;
    /// Statement `index` ran outside any transaction (`CREATE INDEX CONCURRENTLY` in a
    /// `transaction:false` section), where nothing can be read about it afterwards.
    fn unobserved(&mut self, index: usize);
}

/// Run one section. Emits `SectionStarted`, then `SectionFinished` or `SectionFailed`.
pub(crate) fn run(
    s: &mut Session,
    sec: &Section<'_>,
    book: &Bookkeeping<'_>,
    opts: &RunOptions,
    reporter: &mut dyn Reporter,
) -> Result<Ran, ExecError> {
    run_with(s, sec, book, None, opts, reporter)
}

/// Rehearse one section with `observer` watching each statement. Only ever run on a
/// throwaway shadow database: a transactional section runs inside the caller's open
/// transaction; a `transaction:false` one runs as it would in production, each
/// statement committed on its own (wrapped in its own transaction, to be observed,
/// unless it cannot run in one).
pub(crate) fn run_observed(
    s: &mut Session,
    sec: &Section<'_>,
    observer: &mut dyn Observer,
    opts: &RunOptions,
    reporter: &mut dyn Reporter,
) -> Result<Ran, ExecError> {
    run_with(
        s,
        sec,
        &Bookkeeping::Rehearse,
        Some(observer),
        opts,
        reporter,
    )
}

fn run_with(
    s: &mut Session,
    sec: &Section<'_>,
    book: &Bookkeeping<'_>,
    observer: Option<&mut dyn Observer>,
    opts: &RunOptions,
    reporter: &mut dyn Reporter,
) -> Result<Ran, ExecError> {
    let mode = match book {
        Bookkeeping::Rehearse => Mode::Rehearsal,
        _ if sec.no_transaction => Mode::NonTransactional,
        _ => Mode::Transactional,
    };
    reporter.event(&Event::SectionStarted {
        direction: sec.direction,
        version: sec.version,
        name: sec.name,
        path: sec.path,
        origin: sec.origin,
        mode,
        statements: sec.statements.len(),
    });
    // A transaction checks the lock inside itself, in the same round trip as its
    // statements (see `transactional`); a transaction:false section checks it first.
    if mode == Mode::NonTransactional {
        s.check_lock()
            .map_err(|lost| ExecError::LockLost(LockLost::before_section(sec, lost)))?;
    }
    let started = Instant::now();
    let result = match (mode, observer) {
        (Mode::Rehearsal, Some(o)) => observed(s, sec, o, reporter),
        (Mode::Rehearsal, None) => rehearse(s, sec, reporter),
        (Mode::NonTransactional, _) => stepwise(s, sec, book, opts, reporter),
        (Mode::Transactional, _) => transactional(s, sec, book, opts, reporter),
    };
    match result {
        Ok(()) => {
            let duration = started.elapsed();
            reporter.event(&Event::SectionFinished {
                direction: sec.direction,
                version: sec.version,
                name: sec.name,
                mode,
                duration,
            });
            Ok(Ran { mode, duration })
        }
        Err(ExecError::Section(e)) => {
            reporter.event(&Event::SectionFailed {
                direction: sec.direction,
                version: sec.version,
                name: sec.name,
                location: e.location.as_ref(),
                message: &e.body(),
            });
            Err(ExecError::Section(e))
        }
        Err(other) => Err(other),
    }
}

/// The statements of `sec` inside the caller's open transaction, with no events and
/// nothing recorded: for checks such as sqitch's verify scripts. After an error the
/// transaction has been rolled back.
pub(crate) fn check(
    s: &mut Session,
    sec: &Section<'_>,
    reporter: &mut dyn Reporter,
) -> Result<(), ExecError> {
    rehearse(s, sec, reporter)
}

/// A failure at statement `index` (None: the BEGIN, the tracking write or the COMMIT).
type Failure = (Option<usize>, tokio_postgres::Error);

/// Dry run: the statements, pipelined, inside the caller's open transaction. No retry:
/// after an error that transaction is aborted.
fn rehearse(
    s: &mut Session,
    sec: &Section<'_>,
    reporter: &mut dyn Reporter,
) -> Result<(), ExecError> {
    let outcome = if has_copy(&sec.statements) {
        one_by_one(&mut s.db, sec)
    } else {
        let results = s.db.run(|c| {
            let steps: Vec<Step> = sec
                .statements
                .iter()
                .map(|st| Box::pin(batch(c, &sec.source[st.span.clone()])) as Step)
                .collect();
            pipeline(steps)
        });
        first_error(results).map_or(Ok(()), |(i, e)| Err((Some(i), e)))
    };
    s.notices(Some(sec.version), reporter);
    outcome.map_err(|(idx, e)| {
        let _ = s.db.batch("ROLLBACK; RESET ALL");
        ExecError::Section(Box::new(section_error(sec, idx, &e, false, 1)))
    })
}

/// An observed rehearsal: one statement per round trip, the observer around each. No
/// retry, as in [`rehearse`].
fn observed(
    s: &mut Session,
    sec: &Section<'_>,
    observer: &mut dyn Observer,
    reporter: &mut dyn Reporter,
) -> Result<(), ExecError> {
    let observe_err = |source| ExecError::Query {
        what: "observing the rehearsal on the shadow database".into(),
        source,
    };
    for (i, st) in sec.statements.iter().enumerate() {
        let own_tx = sec.no_transaction && st.non_transactional.is_none();
        if sec.no_transaction && !own_tx {
            observer.unobserved(i);
            let r = run_statement(&mut s.db, sec.source, st);
            s.notices(Some(sec.version), reporter);
            r.map_err(|e| ExecError::Section(Box::new(section_error(sec, Some(i), &e, true, 1))))?;
            continue;
        }
        if own_tx {
            s.db.batch("BEGIN").map_err(observe_err)?;
        }
        observer.before(&mut s.db, i).map_err(observe_err)?;
        let r = run_statement(&mut s.db, sec.source, st);
        s.notices(Some(sec.version), reporter);
        if let Err(e) = r {
            let _ = s.db.batch("ROLLBACK; RESET ALL");
            return Err(ExecError::Section(Box::new(section_error(
                sec,
                Some(i),
                &e,
                sec.no_transaction,
                1,
            ))));
        }
        observer.after(&mut s.db, i).map_err(observe_err)?;
        if own_tx {
            s.db.batch("COMMIT").map_err(observe_err)?;
        }
    }
    Ok(())
}

/// One transaction: BEGIN, timeouts, the statements, the tracking write, COMMIT —
/// pipelined into one round trip when there is no COPY data. Retried on 55P03.
fn transactional(
    s: &mut Session,
    sec: &Section<'_>,
    book: &Bookkeeping<'_>,
    opts: &RunOptions,
    reporter: &mut dyn Reporter,
) -> Result<(), ExecError> {
    // The lock check runs first inside the transaction (see `check_in_transaction`).
    let begin = match s.held {
        Some(held) => format!(
            "BEGIN; {}; {}",
            timeouts(opts, true),
            held.check_in_transaction(s.tracking.commit_key())
        ),
        None => format!("BEGIN; {}", timeouts(opts, true)),
    };
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        // The last attempt is watched, so that giving up can say who it waited for.
        let watch = (attempt > opts.lock_retries)
            .then(|| BlockerWatch::start(&s.target, s.db.pid().unwrap_or(0)));
        let outcome: Result<u64, Failure> = if has_copy(&sec.statements) {
            s.db.batch(&begin)
                .map_err(|e| (None, e))
                .and_then(|_| one_by_one(&mut s.db, sec))
                .and_then(|_| {
                    let n = s.db.run(|c| record(c, book)).map_err(|e| (None, e))?;
                    s.db.batch(&format!("COMMIT; {}", reset(&s.db)))
                        .map_err(|e| (None, e))?;
                    Ok(n)
                })
        } else {
            let commit = format!("COMMIT; {}", reset(&s.db));
            let results = s.db.run(|c| {
                let mut steps: Vec<Step> = Vec::with_capacity(sec.statements.len() + 3);
                steps.push(Box::pin(batch(c, &begin)));
                for st in &sec.statements {
                    steps.push(Box::pin(batch(c, &sec.source[st.span.clone()])));
                }
                steps.push(Box::pin(record(c, book)));
                // RESET ALL: a SET in one section must not leak into the next.
                steps.push(Box::pin(batch(c, &commit)));
                pipeline(steps)
            });
            let recorded = results
                .get(sec.statements.len() + 1)
                .and_then(|r| r.as_ref().ok().copied());
            match first_error(results) {
                None => Ok(recorded.unwrap_or(0)),
                Some((i, e)) => Err(((1..=sec.statements.len()).contains(&i).then(|| i - 1), e)),
            }
        };
        let blockers = watch.map(BlockerWatch::finish).unwrap_or_default();
        s.notices(Some(sec.version), reporter);
        let (idx, e) = match outcome {
            Ok(0) if sec.direction == Direction::Down => {
                return Err(ExecError::NotApplied(sec.version.to_string()))
            }
            Ok(_) => return Ok(()),
            Err(f) => f,
        };
        // Make sure the session is out of the transaction whatever failed.
        let _ = s.db.batch(&format!("ROLLBACK; {}", reset(&s.db)));
        // That ROLLBACK warns "there is no transaction in progress" when the failed
        // COMMIT already ended the transaction: not news to anyone.
        let _ = s.db.take_notices();
        if idx.is_none() && e.code().map(SqlState::code) == Some(LOCK_LOST_SQLSTATE) {
            let lost = match s.check_lock() {
                Err(lost) => lost,
                // The lock session is fine: the check failed on the commit key, held by
                // a runner that no longer holds the session lock.
                Ok(()) => LockError::Query(e),
            };
            return Err(ExecError::LockLost(LockLost::in_transaction(sec, lost)));
        }
        if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) && attempt <= opts.lock_retries {
            let wait = backoff(attempt);
            let msg = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string());
            reporter.event(&Event::LockTimeoutRetry {
                version: sec.version,
                attempt,
                max: opts.lock_retries,
                wait,
                message: &msg,
            });
            // Backoff before the retry, not synchronisation: the lock holder is
            // someone else's transaction, which nothing here can observe.
            std::thread::sleep(wait);
            continue;
        }
        let mut se = section_error(sec, idx, &e, false, attempt);
        if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
            se.blockers = blockers;
        }
        failed_history(s, book, &se, started.elapsed());
        return Err(ExecError::Section(Box::new(se)));
    }
}

/// The history row of a failed transactional section, written after its transaction
/// rolled back. Best effort: the error being reported matters more than its audit row.
fn failed_history(s: &mut Session, book: &Bookkeeping<'_>, e: &SectionError, took: Duration) {
    let ms = Some(took.as_millis() as i64);
    let text = e.to_string();
    let applied = match book {
        Bookkeeping::Up { row, .. } => Some((row.ctx, row.version, row.name, row.checksum)),
        Bookkeeping::Repeatable { row, .. } => Some((row.ctx, "R", row.name, row.checksum)),
        _ => None,
    };
    let _ = match book {
        Bookkeeping::Rehearse => Ok(()),
        Bookkeeping::Up { .. } | Bookkeeping::Repeatable { .. } => {
            let (ctx, version, name, checksum) = applied.expect("an up or a repeatable");
            s.tracking.history(
                &mut s.db,
                ctx,
                "apply",
                Some(version),
                Some(name),
                Some(checksum),
                "failed",
                ms,
                Some(&text),
                None,
            )
        }
        Bookkeeping::Down { row, .. } => s.tracking.history(
            &mut s.db,
            row.ctx,
            "rollback",
            Some(row.version),
            Some(&e.name),
            None,
            "failed",
            ms,
            Some(&text),
            Some(row.reason),
        ),
    };
}

/// transaction:false: `running` → each statement on its own, the index recorded →
/// `completed` (a down: the row removed) or `failed` at the index.
fn stepwise(
    s: &mut Session,
    sec: &Section<'_>,
    book: &Bookkeeping<'_>,
    opts: &RunOptions,
    reporter: &mut dyn Reporter,
) -> Result<(), ExecError> {
    let v = sec.version;
    match book {
        Bookkeeping::Rehearse => unreachable!("a rehearsal runs in a transaction"),
        Bookkeeping::Repeatable { .. } => {
            unreachable!("repeatables run in a transaction (refused otherwise before running)")
        }
        Bookkeeping::Up { row, .. } => s.tracking.start_non_transactional(
            &mut s.db,
            row.ctx,
            v,
            row.name,
            row.checksum,
            row.down_sql,
            row.down_no_transaction,
        )?,
        Bookkeeping::Down { row, .. } => s
            .tracking
            .start_rollback(&mut s.db, row.ctx, v, sec.name, row.reason)?,
    }
    let started = Instant::now();
    let ctx = match book {
        Bookkeeping::Up { row, .. } => row.ctx,
        Bookkeeping::Down { row, .. } => row.ctx,
        Bookkeeping::Rehearse | Bookkeeping::Repeatable { .. } => unreachable!(),
    };
    // Named for the run while the row says `running`: `repair` and `status` tell a live
    // runner from an interrupted one by it. `reset()` after the section undoes it.
    let name = lock::runner_name(&ctx.run_id);
    s.db.execute("SELECT set_config('application_name', $1, false)", &[&name])
        .map_err(|source| ExecError::Query {
            what: "naming the session".into(),
            source,
        })?;
    s.db.batch(&timeouts(opts, false))
        .map_err(|source| ExecError::Query {
            what: "setting timeouts".into(),
            source,
        })?;
    let total = sec.statements.len();
    for (i, st) in sec.statements.iter().enumerate() {
        if i > 0 {
            // Each statement is in effect at once: none may start without the lock.
            s.check_lock()
                .map_err(|lost| ExecError::LockLost(LockLost::before_statement(sec, i, lost)))?;
            s.tracking.set_statement_index(&mut s.db, v, i as i32)?;
        }
        let label = st
            .ast
            .as_deref()
            .map_or("statement", sql::statement_keyword);
        reporter.event(&Event::StatementStarted {
            version: v,
            index: i,
            total,
            line: st.line,
            label: st.non_transactional.unwrap_or(label),
        });
        let (r, blockers) = if st.non_transactional == Some("CREATE INDEX CONCURRENTLY") {
            concurrent_build(s, sec.source, st, opts)
        } else {
            (run_statement(&mut s.db, sec.source, st), Vec::new())
        };
        s.notices(Some(v), reporter);
        if let Err(e) = r {
            let mut se = section_error(sec, Some(i), &e, true, 1);
            se.blockers = blockers;
            se.invalid_indexes = s.tracking.invalid_indexes(&mut s.db).unwrap_or_default();
            let _ = s.db.batch(&reset(&s.db));
            let checksum = match book {
                Bookkeeping::Up { row, .. } => Some(row.checksum),
                _ => None,
            };
            let recorded = s.tracking.fail_non_transactional(
                &mut s.db,
                ctx,
                v,
                sec.name,
                checksum,
                i as i32,
                &se.server.to_string(),
                started.elapsed().as_millis() as i64,
            );
            match recorded {
                Ok(()) => {}
                // The connection is gone (a server crash, a restart): the error that
                // matters is the statement's, with the state it left.
                Err(_) if s.db.is_closed() => se.unrecorded = true,
                Err(e) => return Err(e.into()),
            }
            return Err(ExecError::Section(Box::new(se)));
        }
    }
    let _ = s.db.batch(&reset(&s.db));
    let ms = started.elapsed().as_millis() as i64;
    match book {
        Bookkeeping::Up { row, .. } => {
            s.tracking.finish_non_transactional(
                &mut s.db,
                row.ctx,
                v,
                row.name,
                row.checksum,
                ms,
            )?;
            Ok(())
        }
        Bookkeeping::Down { row, delete } => {
            let row = RollbackRecord {
                duration_ms: Some(ms),
                ..*row
            };
            // The removal and its history row commit together, after the last statement.
            let n = s.db.run(|c| async move {
                c.batch_execute("BEGIN").await?;
                let n = row.delete(c, delete).await?;
                c.batch_execute("COMMIT").await?;
                Ok(n)
            });
            if n.is_err() {
                let _ = s.db.batch("ROLLBACK");
            }
            let n = n.map_err(|source| ExecError::Tracking(s.tracking.write_err(source)));
            match n? {
                0 => Err(ExecError::NotApplied(v.to_string())),
                _ => Ok(()),
            }
        }
        Bookkeeping::Rehearse | Bookkeeping::Repeatable { .. } => unreachable!(),
    }
}

/// `CREATE INDEX CONCURRENTLY` waits for every transaction older than it, on any table,
/// and lock_timeout applies to those waits: one long report query would fail the build
/// (leaving an INVALID index) although nothing waits behind it — the SHARE UPDATE
/// EXCLUSIVE lock it holds and waits for blocks no reads or writes. So it runs without
/// lock_timeout, bounded by statement_timeout when one is set, and watched, so that a
/// build that fails says which sessions it waited for.
fn concurrent_build(
    s: &mut Session,
    source: &str,
    st: &Statement,
    opts: &RunOptions,
) -> (Result<(), tokio_postgres::Error>, Vec<Blocker>) {
    if let Err(e) = s.db.batch("SET lock_timeout = 0") {
        return (Err(e), Vec::new());
    }
    let watch = BlockerWatch::start(&s.target, s.db.pid().unwrap_or(0));
    let r = run_statement(&mut s.db, source, st);
    let blockers = watch.finish();
    let restored = s.db.batch(&format!(
        "SET lock_timeout = {}",
        opts.lock_timeout.as_millis()
    ));
    (r.and(restored), blockers)
}

/// The section's statements, one round trip each (COPY data needs its own exchange).
fn one_by_one(db: &mut Db, sec: &Section<'_>) -> Result<(), Failure> {
    for (i, st) in sec.statements.iter().enumerate() {
        run_statement(db, sec.source, st).map_err(|e| (Some(i), e))?;
    }
    Ok(())
}

/// The tracking write that commits with a transactional section; resolves to the rows
/// written (a rehearsal writes none).
async fn record(
    c: &tokio_postgres::Client,
    book: &Bookkeeping<'_>,
) -> Result<u64, tokio_postgres::Error> {
    match book {
        Bookkeeping::Rehearse => Ok(0),
        Bookkeeping::Up { row, insert } => row.insert(c, insert).await,
        Bookkeeping::Repeatable { row, insert } => row.insert(c, insert).await,
        Bookkeeping::Down { row, delete } => row.delete(c, delete).await,
    }
}

async fn batch(c: &tokio_postgres::Client, sql: &str) -> Result<u64, tokio_postgres::Error> {
    c.batch_execute(sql).await.map(|_| 0)
}

/// Build the error for statement `index` of `sec` from a server error: the server's
/// character position inside the statement becomes a byte offset in the section's
/// text, then a line and column in its file when it has one.
fn section_error(
    sec: &Section<'_>,
    index: Option<usize>,
    e: &tokio_postgres::Error,
    non_tx: bool,
    attempts: u32,
) -> SectionError {
    let db = e.as_db_error();
    let offset = index.and_then(|i| sec.statements.get(i)).map(|st| {
        match db.and_then(|d| d.position()) {
            Some(ErrorPosition::Original(p)) => {
                st.span.start + sql::char_offset_to_byte(&sec.source[st.span.clone()], *p as usize)
            }
            // Raised inside PL/pgSQL (a DO block, a function this section creates): the
            // CONTEXT's "line N" counted from where the body starts.
            _ => db
                .and_then(|d| d.where_())
                .and_then(|context| {
                    let spans: Vec<_> = sec.statements.iter().map(|s| s.span.clone()).collect();
                    sql::plpgsql::error_offset(sec.source, &spans, index?, context)
                })
                .unwrap_or(st.span.start),
        }
    });
    let location = offset.and_then(|o| {
        let f = sec.file?;
        let (line, col) = f.lines.line_col(f.text, f.start + o);
        Some(Location::new(f.path, line, col))
    });
    let line = match sec.direction {
        Direction::Down => offset.map(|o| LineIndex::new(sec.source).line_col(sec.source, o).0),
        Direction::Up => None,
    };
    SectionError {
        direction: sec.direction,
        version: sec.version.to_string(),
        name: sec.name.to_string(),
        origin: sec.origin,
        location,
        line,
        statement_index: index,
        server: ServerError::from_error(e),
        non_transactional: non_tx,
        attempts,
        invalid_indexes: Vec::new(),
        blockers: Vec::new(),
        unrecorded: false,
    }
}

type Step<'a> = Pin<Box<dyn Future<Output = Result<u64, tokio_postgres::Error>> + 'a>>;

/// Send every step before awaiting any answer, so the whole list costs one round trip;
/// the server runs them in order and stops at the first error (the rest fail with
/// "current transaction is aborted", and a COMMIT then answers ROLLBACK).
async fn pipeline(mut steps: Vec<Step<'_>>) -> Vec<Result<u64, tokio_postgres::Error>> {
    let mut results: Vec<Option<Result<u64, tokio_postgres::Error>>> =
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

fn first_error(
    results: Vec<Result<u64, tokio_postgres::Error>>,
) -> Option<(usize, tokio_postgres::Error)> {
    results
        .into_iter()
        .enumerate()
        .find_map(|(i, r)| r.err().map(|e| (i, e)))
}

fn has_copy(stmts: &[&Statement]) -> bool {
    stmts.iter().any(|s| s.copy_data.is_some())
}

/// One statement of `source`: a simple query, or COPY with its inline data.
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

/// After a section: its `SET`s undone (`RESET ALL`), and the idle timeouts off again,
/// which `RESET ALL` would restore to the database's setting: the session may wait
/// between sections (a lock-timeout backoff, the lock of another runner).
fn reset(db: &Db) -> String {
    format!("RESET ALL; {}", lock::no_idle_timeout(db))
}

/// `SET [LOCAL] lock_timeout …; … statement_timeout …` for a section.
pub(crate) fn timeouts(opts: &RunOptions, local: bool) -> String {
    let kw = if local { "SET LOCAL" } else { "SET" };
    format!(
        "{kw} lock_timeout = {}; {kw} statement_timeout = {}",
        opts.lock_timeout.as_millis(),
        opts.statement_timeout.map_or(0, |d| d.as_millis())
    )
}

/// Exponential backoff with jitter for 55P03 retries: ~0.5 s, 1 s, 2 s … capped at 10 s.
fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let base = 500u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(5))
        .min(10_000);
    Duration::from_millis(base / 2 + rand::rng().random_range(0..=base / 2))
}
