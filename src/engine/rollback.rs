//! `rollback`: undo the newest applied migrations with their down SQL, newest first,
//! under the migration lock.
//!
//! The down SQL that runs is the one stored in the tracking row when the migration was
//! applied, so a rollback works even when the file has changed or is gone since. Each
//! migration's down runs in its own transaction together with the removal of its
//! tracking row and a `rollback` row in `migration_history`; a `transaction:false` down
//! runs statement by statement, like the up direction, and is recorded once its last
//! statement succeeded. Every migration to undo is checked before anything runs: if one
//! has no usable down SQL, nothing is rolled back.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::error::{ErrorPosition, SqlState};

use crate::db::conn::{error_text, ServerError};
use crate::db::tracking::{AppliedRow, RowStatus, RunContext, StoredDown, TrackingError};
use crate::db::{ConnectError, Target};
use crate::engine::apply::{backoff, run_statement, timeouts};
use crate::engine::{self, ApplyError, RunOptions, Session};
use crate::migration::{Migration, MigrationSet, Version};
use crate::report::{Event, Level, Location, Mode, Reporter};
use crate::sql::{self, Item, LineIndex, Statement, TxControl};

/// How far to roll back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTarget {
    /// The newest N applied migrations.
    Steps(u32),
    /// Every applied migration newer than this version; the version itself stays applied.
    To(Version),
}

#[derive(Debug, Clone)]
pub struct RollbackOptions {
    /// Connection, lock and timeout settings, as for `apply` (`run.plan` is unused).
    pub run: RunOptions,
    pub target: RollbackTarget,
    /// Show the plan and rehearse the transactional downs in a transaction that is
    /// rolled back; no lock, nothing written.
    pub dry_run: bool,
    /// Run generated rollbacks for migrations without down SQL.
    pub allow_generated: bool,
    /// When the file's down section differs from the stored one, run the file's.
    pub use_file_down: bool,
}

/// Where the down SQL that runs comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DownOrigin {
    /// Stored in the tracking row at apply time.
    Stored,
    /// The migration file's down section (nothing was stored, or `use_file_down`).
    File,
    /// Generated from the up section (see [`crate::sql::inverse`]).
    Generated,
}

impl DownOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            DownOrigin::Stored => "stored",
            DownOrigin::File => "file",
            DownOrigin::Generated => "generated",
        }
    }
}

/// One migration a rollback will undo, with the exact SQL.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedDown {
    pub version: String,
    pub name: String,
    pub origin: DownOrigin,
    pub sql: String,
    pub no_transaction: bool,
    pub statements: usize,
    /// Something the operator should know (the file's down differs from the stored one…).
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RolledBack {
    pub version: String,
    pub name: String,
    pub origin: DownOrigin,
    pub mode: Mode,
    pub duration_ms: u64,
}

/// What a rollback did (or, for a dry run, rehearsed). Returned on success and carried
/// by a failure.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RollbackReport {
    pub dry_run: bool,
    /// Newest first.
    pub planned: Vec<PlannedDown>,
    pub rolled_back: Vec<RolledBack>,
    /// Dry run: versions whose down could not be rehearsed (transaction:false, or after one).
    pub not_rehearsed: Vec<String>,
    pub server_version: String,
}

/// A down section that failed on the server.
#[derive(Debug, Clone, Serialize)]
pub struct DownError {
    pub version: String,
    pub name: String,
    pub origin: DownOrigin,
    /// In the migration file, when the SQL that ran is the file's down section.
    pub location: Option<Location>,
    /// 1-based line within the down SQL that ran.
    pub line: Option<u32>,
    /// 0-based statement index within the down SQL.
    pub statement_index: Option<usize>,
    #[serde(flatten)]
    pub server: ServerError,
    pub non_transactional: bool,
    pub attempts: u32,
}

impl std::fmt::Display for DownError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(l) = &self.location {
            write!(f, "{l}: ")?;
        }
        write!(
            f,
            "rolling back {} {} failed ({} down SQL",
            self.version,
            self.name,
            self.origin.as_str()
        )?;
        if let Some(i) = self.statement_index {
            write!(f, ", statement {}", i + 1)?;
        }
        if let (Some(l), None) = (self.line, &self.location) {
            write!(f, ", line {l} of it")?;
        }
        write!(f, "): {}", self.server)?;
        crate::engine::apply::write_attempts(f, self.attempts)?;
        if self.non_transactional {
            write!(
                f,
                "\n  the down SQL runs outside a transaction: the statements before this one are in effect. \
                 The migration is still recorded as applied; fix the cause and run the rollback again \
                 (write the down statements with IF EXISTS so a rerun is safe)."
            )
        } else {
            write!(
                f,
                "\n  its transaction was rolled back: the migration is still applied, exactly as before."
            )
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Lock(#[from] crate::db::lock::LockError),
    #[error(transparent)]
    Tracking(#[from] TrackingError),
    #[error("nothing to roll back: no migration is applied (tracking schema {0})")]
    NothingApplied(String),
    #[error(
        "--steps {requested}: only {applied} migration(s) are applied; nothing was rolled back"
    )]
    NotEnough { requested: u32, applied: usize },
    #[error("--to {0}: migration {0} is not applied, so it cannot be the version to roll back to; nothing was rolled back (see `pgrollout status`)")]
    NotApplied(String),
    #[error("{0}; nothing was rolled back")]
    Blocked(String),
    /// A migration to undo has no usable down SQL. Nothing was rolled back.
    #[error("{message}")]
    NoDown {
        version: String,
        name: String,
        message: String,
    },
    #[error("{0}")]
    Down(Box<DownError>),
    #[error("{what}: {}", error_text(.source))]
    Query {
        what: String,
        #[source]
        source: tokio_postgres::Error,
    },
}

impl From<ApplyError> for RollbackError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Connect(c) => RollbackError::Connect(c),
            ApplyError::Lock(l) => RollbackError::Lock(l),
            ApplyError::Tracking(t) => RollbackError::Tracking(t),
            other => RollbackError::Blocked(other.to_string()),
        }
    }
}

/// A failed rollback: the error, and what had been rolled back before it.
#[derive(Debug)]
pub struct RollbackFailure {
    pub report: RollbackReport,
    pub error: RollbackError,
}

impl<E: Into<RollbackError>> From<E> for RollbackFailure {
    fn from(e: E) -> Self {
        RollbackFailure {
            report: RollbackReport::default(),
            error: e.into(),
        }
    }
}

/// Text compared after normalising line endings and surrounding blank space: a CRLF
/// checkout or a trailing newline is not a different down section.
fn same_sql(a: &str, b: &str) -> bool {
    a.replace("\r\n", "\n").trim() == b.replace("\r\n", "\n").trim()
}

/// The statements of a down text, without a BEGIN … COMMIT wrapper; an error for
/// anything that cannot run as it is.
fn statements(text: &str, no_transaction: bool) -> Result<Vec<Statement>, String> {
    let lines = LineIndex::new(text);
    let items = sql::split(text, 0..text.len(), &lines).map_err(|e| {
        let (line, _) = lines.line_col(text, e.offset);
        format!("line {line}: {}", e.message)
    })?;
    let mut out = Vec::new();
    for item in items {
        match item {
            Item::MetaCommand(c) => {
                return Err(format!(
                    "line {}: psql meta-command `{}` is not SQL",
                    c.line,
                    c.text.trim()
                ))
            }
            Item::Statement(s) => {
                if let Some(e) = &s.syntax_error {
                    let (line, _) = lines.line_col(text, e.offset);
                    return Err(format!("line {line}: syntax error: {}", e.message));
                }
                if let (Some(label), false) = (s.non_transactional, no_transaction) {
                    return Err(format!(
                        "line {}: {label} cannot run inside a transaction block: mark the down section \
                         `-- migrate:down transaction:false`",
                        s.line
                    ));
                }
                out.push(s);
            }
        }
    }
    let wrapped = out.len() >= 2
        && out.first().and_then(|s| s.tx_control) == Some(TxControl::Begin)
        && out.last().and_then(|s| s.tx_control) == Some(TxControl::Commit);
    if wrapped {
        out.pop();
        out.remove(0);
    }
    if let Some(s) = out.iter().find(|s| s.tx_control.is_some()) {
        return Err(format!(
            "line {}: transaction control inside the down SQL would commit or abort half-way",
            s.line
        ));
    }
    Ok(out)
}

/// Decide what runs for each migration to undo, newest first. Pure: tracking rows,
/// stored downs and files in; the plan, or the reason there is none, out.
pub fn plan(
    rows: &[AppliedRow],
    stored: &[StoredDown],
    set: &MigrationSet,
    opts: &RollbackOptions,
) -> Result<Vec<PlannedDown>, RollbackError> {
    let mut rows: Vec<&AppliedRow> = rows.iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.value));
    if let Some(r) = rows
        .iter()
        .find(|r| matches!(r.status, RowStatus::Failed | RowStatus::Running))
    {
        return Err(RollbackError::Blocked(format!(
            "migration {} {} is recorded as {}: finish or clear it first (`pgrollout repair`), then roll back",
            r.version,
            r.name,
            if r.status == RowStatus::Failed { "failed" } else { "running" }
        )));
    }
    let selected: Vec<&AppliedRow> = match &opts.target {
        RollbackTarget::Steps(0) => {
            return Err(RollbackError::Blocked(
                "--steps 0 rolls back nothing".into(),
            ))
        }
        RollbackTarget::Steps(n) => {
            if rows.len() < *n as usize {
                return Err(RollbackError::NotEnough {
                    requested: *n,
                    applied: rows.len(),
                });
            }
            rows[..*n as usize].to_vec()
        }
        RollbackTarget::To(v) => {
            if !rows.iter().any(|r| r.value == v.value) {
                return Err(RollbackError::NotApplied(v.text.clone()));
            }
            rows.iter().copied().filter(|r| r.value > v.value).collect()
        }
    };
    let mut out = Vec::new();
    for r in selected {
        out.push(plan_one(r, stored, set, opts)?);
    }
    Ok(out)
}

fn plan_one(
    r: &AppliedRow,
    stored: &[StoredDown],
    set: &MigrationSet,
    opts: &RollbackOptions,
) -> Result<PlannedDown, RollbackError> {
    let no_down = |message: String| RollbackError::NoDown {
        version: r.version.clone(),
        name: r.name.clone(),
        message,
    };
    if r.status == RowStatus::Baseline {
        return Err(no_down(format!(
            "migration {} {} is covered by a baseline: pgrollout never ran it and has no down SQL for it; \
             nothing was rolled back",
            r.version, r.name
        )));
    }
    let file: Option<&Migration> = Version::parse(&r.version).and_then(|v| set.get(&v));
    let stored = stored
        .iter()
        .find(|s| Version::parse(&s.version).is_some_and(|v| v.value == r.value));
    let has_statements = |text: &str, no_tx: bool| statements(text, no_tx).map(|s| !s.is_empty());
    let stored_down = stored
        .and_then(|s| s.sql.as_deref().map(|t| (t, s.no_transaction)))
        .filter(|(t, no_tx)| has_statements(t, *no_tx).unwrap_or(true));
    let file_down = file.and_then(|m| {
        m.down_text()
            .map(|t| (t, m.down.as_ref().is_some_and(|d| d.section.no_transaction)))
    });
    let file_down = file_down.filter(|(t, no_tx)| has_statements(t, *no_tx).unwrap_or(true));
    let path = file.map(|m| m.path.display().to_string());

    let (origin, sql, no_tx, note) = match (stored_down, file_down) {
        (Some((s, s_tx)), Some((f, f_tx))) if !same_sql(s, f) || s_tx != f_tx => {
            let p = path.clone().unwrap_or_default();
            if opts.use_file_down {
                (
                    DownOrigin::File,
                    f,
                    f_tx,
                    Some(format!(
                        "the down section in {p} differs from the one stored when {} was applied; running the file's (--use-file-down)",
                        r.version
                    )),
                )
            } else {
                (
                    DownOrigin::Stored,
                    s,
                    s_tx,
                    Some(format!(
                        "the down section in {p} differs from the one stored when {} was applied; running the stored one \
                         (pass --use-file-down to run the file's instead)",
                        r.version
                    )),
                )
            }
        }
        (Some((s, s_tx)), _) => (DownOrigin::Stored, s, s_tx, None),
        (None, Some((f, f_tx))) => (
            DownOrigin::File,
            f,
            f_tx,
            Some(format!(
                "no down SQL was stored when {} was applied; running the down section now in {}",
                r.version,
                path.clone().unwrap_or_default()
            )),
        ),
        (None, None) => {
            let Some(m) = file else {
                return Err(no_down(format!(
                    "migration {} {} has no down SQL (none was stored when it was applied, and its file is gone): \
                     no rollback available; nothing was rolled back",
                    r.version, r.name
                )));
            };
            if m.checksum != r.checksum {
                return Err(no_down(format!(
                    "migration {} {} has no down section, and its file changed since it was applied, so a rollback \
                     cannot be generated from it: no rollback available; nothing was rolled back",
                    r.version, r.name
                )));
            }
            match crate::sql::inverse::generate(m) {
                Ok(g) if opts.allow_generated || opts.dry_run => {
                    let note = (!opts.allow_generated).then(|| {
                        format!(
                            "{} has no down section; this rollback is generated and runs only with --allow-generated",
                            r.version
                        )
                    });
                    let n = statements(&g.sql, g.no_transaction)
                        .map(|s| s.len())
                        .unwrap_or(0);
                    return Ok(PlannedDown {
                        version: r.version.clone(),
                        name: r.name.clone(),
                        origin: DownOrigin::Generated,
                        sql: g.sql,
                        no_transaction: g.no_transaction,
                        statements: n,
                        note,
                    });
                }
                Ok(g) => {
                    return Err(no_down(format!(
                        "migration {} {} ({}) has no down section. A rollback can be generated from its up section:\n{}\
                         Review it, then pass --allow-generated to run it (or add a `-- migrate:down` section). \
                         Nothing was rolled back.",
                        r.version,
                        r.name,
                        m.path.display(),
                        indent(&g.sql)
                    )))
                }
                Err(reasons) => {
                    return Err(no_down(format!(
                        "migration {} {} ({}) has no down section, and no rollback available: {}. \
                         Add a `-- migrate:down` section. Nothing was rolled back.",
                        r.version,
                        r.name,
                        m.path.display(),
                        reasons
                            .iter()
                            .map(|p| p.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )))
                }
            }
        }
    };
    let stmts = statements(sql, no_tx).map_err(|e| {
        no_down(format!(
            "the {} down SQL of migration {} {} cannot run: {e}; nothing was rolled back",
            origin.as_str(),
            r.version,
            r.name
        ))
    })?;
    Ok(PlannedDown {
        version: r.version.clone(),
        name: r.name.clone(),
        origin,
        sql: sql.to_string(),
        no_transaction: no_tx,
        statements: stmts.len(),
        note,
    })
}

fn indent(sql: &str) -> String {
    sql.lines().map(|l| format!("    {l}\n")).collect()
}

/// `rollback` and `rollback --dry-run`: the one entry point for the CLI, the pipeline's
/// `rollback` step and `pgrollout test`.
///
/// `set` supplies the files (for comparing down sections and generating rollbacks); it
/// may be empty — stored down SQL needs no file.
#[allow(clippy::result_large_err)]
pub fn rollback(
    target: &Target,
    set: &MigrationSet,
    opts: &RollbackOptions,
    ctx: &RunContext,
    reporter: &mut dyn Reporter,
) -> Result<RollbackReport, RollbackFailure> {
    let mut s = engine::connect(target, &opts.run.schema, opts.run.connect_retry, reporter)?;
    let mut report = RollbackReport {
        dry_run: opts.dry_run,
        server_version: s.db.server_version.clone(),
        ..Default::default()
    };
    let state = s.tracking.read(&mut s.db)?;
    if state.version.is_none() {
        return Err(RollbackError::NothingApplied(s.tracking.schema.clone()).into());
    }
    if opts.dry_run {
        // Read-only: no lock, nothing written.
        let stored = s.tracking.stored_downs(&mut s.db)?;
        report.planned = plan(&state.rows, &stored, set, opts)?;
        announce(&report.planned, true, reporter);
        return rehearse(&mut s, set, opts, report, reporter);
    }
    let (_guard, state) = s.lock(&opts.run, &state, reporter)?;
    let stored = s.tracking.stored_downs(&mut s.db)?;
    report.planned = plan(&state.rows, &stored, set, opts)?;
    announce(&report.planned, false, reporter);
    let planned = report.planned.clone();
    for p in &planned {
        let file = Version::parse(&p.version).and_then(|v| set.get(&v));
        match run_down(&mut s, p, file, opts, ctx, reporter) {
            Ok(done) => report.rolled_back.push(done),
            Err(error) => {
                if let RollbackError::Down(d) = &error {
                    reporter.event(&Event::RollbackFailed {
                        version: &d.version,
                        name: &d.name,
                        location: d.location.as_ref(),
                        message: &d.to_string(),
                    });
                }
                return Err(RollbackFailure { report, error });
            }
        }
    }
    Ok(report)
}

fn announce(planned: &[PlannedDown], dry_run: bool, reporter: &mut dyn Reporter) {
    for p in planned {
        if let Some(n) = &p.note {
            reporter.event(&Event::Diagnostic {
                level: Level::Warning,
                location: None,
                message: n,
            });
        }
    }
    let list: Vec<(String, String)> = planned
        .iter()
        .map(|p| (p.version.clone(), p.name.clone()))
        .collect();
    reporter.event(&Event::RollbackPlanned {
        migrations: &list,
        dry_run,
    });
}

/// The error for statement `index` of a down SQL text, positioned in the migration file
/// when the text is that file's down section.
#[allow(clippy::too_many_arguments)]
fn down_error(
    p: &PlannedDown,
    file: Option<&Migration>,
    stmts: &[Statement],
    index: Option<usize>,
    e: &tokio_postgres::Error,
    non_tx: bool,
    attempts: u32,
) -> DownError {
    let db = e.as_db_error();
    let offset = index.and_then(|i| stmts.get(i)).map(|s| {
        s.span.start
            + match db.and_then(|d| d.position()) {
                Some(ErrorPosition::Original(pos)) => {
                    sql::char_offset_to_byte(&p.sql[s.span.clone()], *pos as usize)
                }
                _ => 0,
            }
    });
    let line = offset.map(|o| LineIndex::new(&p.sql).line_col(&p.sql, o).0);
    // Positions map into the file only when the SQL that ran is its down section
    // byte for byte (`-- ROLLBACK:` lines are rebuilt text, not a range of the file).
    let location = offset.and_then(|o| {
        let m = file?;
        let d = m.down.as_ref()?;
        if p.origin == DownOrigin::Generated
            || d.source_kind == crate::migration::DownSource::RollbackComments
            || m.down_text() != Some(p.sql.as_str())
        {
            return None;
        }
        let (l, c) = d.lines.line_col(&d.source, d.section.range.start + o);
        Some(Location::new(&d.section.path, l, c))
    });
    DownError {
        version: p.version.clone(),
        name: p.name.clone(),
        origin: p.origin,
        location,
        line,
        statement_index: index,
        server: ServerError::from_error(e),
        non_transactional: non_tx,
        attempts,
    }
}

fn reason(p: &PlannedDown) -> String {
    format!(
        "{} down SQL{}",
        p.origin.as_str(),
        if p.no_transaction {
            ", transaction:false"
        } else {
            ""
        }
    )
}

fn run_down(
    s: &mut Session,
    p: &PlannedDown,
    file: Option<&Migration>,
    opts: &RollbackOptions,
    ctx: &RunContext,
    reporter: &mut dyn Reporter,
) -> Result<RolledBack, RollbackError> {
    let stmts = statements(&p.sql, p.no_transaction).map_err(RollbackError::Blocked)?;
    let mode = if p.no_transaction {
        Mode::NonTransactional
    } else {
        Mode::Transactional
    };
    reporter.event(&Event::RollbackStarted {
        version: &p.version,
        name: &p.name,
        origin: p.origin.as_str(),
        mode,
        statements: stmts.len(),
    });
    let started = Instant::now();
    let failed = |s: &mut Session, e: &DownError, ms: i64| {
        let _ = s.tracking.history(
            &mut s.db,
            ctx,
            "rollback",
            Some(&p.version),
            Some(&p.name),
            None,
            "failed",
            Some(ms),
            Some(&e.to_string()),
            Some(&reason(p)),
        );
    };
    if p.no_transaction {
        s.db.batch(&timeouts(&opts.run, false))
            .map_err(|source| RollbackError::Query {
                what: "setting timeouts".into(),
                source,
            })?;
        for (i, st) in stmts.iter().enumerate() {
            let label = st.ast.as_ref().map_or("statement", sql::statement_keyword);
            reporter.event(&Event::StatementStarted {
                version: &p.version,
                index: i,
                total: stmts.len(),
                line: st.line,
                label: st.non_transactional.unwrap_or(label),
            });
            let r = run_statement(&mut s.db, &p.sql, st);
            notices(s, &p.version, reporter);
            if let Err(e) = r {
                let _ = s.db.batch("RESET ALL");
                let de = down_error(p, file, &stmts, Some(i), &e, true, 1);
                failed(s, &de, started.elapsed().as_millis() as i64);
                return Err(RollbackError::Down(Box::new(de)));
            }
        }
        let _ = s.db.batch("RESET ALL");
        let ms = started.elapsed().as_millis() as i64;
        let schema = s.tracking.schema.clone();
        let write = |source| TrackingError::Write {
            schema: schema.clone(),
            source,
        };
        let record =
            s.db.batch("BEGIN")
                .map_err(write)
                .and_then(|_| {
                    s.tracking
                        .record_rollback(&mut s.db, ctx, &p.version, ms, &reason(p))
                })
                .and_then(|n| s.db.batch("COMMIT").map_err(write).map(|_| n));
        if record.is_err() {
            let _ = s.db.batch("ROLLBACK");
        }
        record?;
    } else {
        let begin = format!("BEGIN; {}", timeouts(&opts.run, true));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let t = Instant::now();
            let outcome: Result<u64, (Option<usize>, tokio_postgres::Error)> = (|| {
                s.db.batch(&begin).map_err(|e| (None, e))?;
                for (i, st) in stmts.iter().enumerate() {
                    run_statement(&mut s.db, &p.sql, st).map_err(|e| (Some(i), e))?;
                }
                let ms = t.elapsed().as_millis() as i64;
                let n = s
                    .tracking
                    .record_rollback(&mut s.db, ctx, &p.version, ms, &reason(p))
                    .map_err(|e| match e {
                        TrackingError::Write { source, .. }
                        | TrackingError::Read { source, .. } => (None, source),
                        other => unreachable!("record_rollback returns read/write errors: {other}"),
                    })?;
                s.db.batch("COMMIT; RESET ALL").map_err(|e| (None, e))?;
                Ok(n)
            })();
            notices(s, &p.version, reporter);
            match outcome {
                Ok(0) => {
                    // Unreachable under the lock; said plainly rather than ignored.
                    return Err(RollbackError::Blocked(format!(
                        "migration {} was no longer recorded as applied when its rollback committed",
                        p.version
                    )));
                }
                Ok(_) => break,
                Err((idx, e)) => {
                    let _ = s.db.batch("ROLLBACK; RESET ALL");
                    if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
                        && attempt <= opts.run.lock_retries
                    {
                        let wait = backoff(attempt);
                        let msg = e
                            .as_db_error()
                            .map_or_else(|| e.to_string(), |d| d.message().to_string());
                        reporter.event(&Event::LockTimeoutRetry {
                            version: &p.version,
                            attempt,
                            max: opts.run.lock_retries,
                            wait,
                            message: &msg,
                        });
                        std::thread::sleep(wait);
                        continue;
                    }
                    let de = down_error(p, file, &stmts, idx, &e, false, attempt);
                    failed(s, &de, started.elapsed().as_millis() as i64);
                    return Err(RollbackError::Down(Box::new(de)));
                }
            }
        }
    }
    let duration = started.elapsed();
    reporter.event(&Event::RolledBack {
        version: &p.version,
        name: &p.name,
        mode,
        duration,
    });
    Ok(RolledBack {
        version: p.version.clone(),
        name: p.name.clone(),
        origin: p.origin,
        mode,
        duration_ms: duration.as_millis() as u64,
    })
}

fn notices(s: &mut Session, version: &str, reporter: &mut dyn Reporter) {
    for n in s.db.take_notices() {
        reporter.event(&Event::ServerNotice {
            version: Some(version),
            severity: n.severity(),
            message: n.message(),
        });
    }
}

/// Dry run: the planned downs, newest first, inside one transaction that is rolled
/// back, so each sees the previous ones' effect. Stops rehearsing at the first
/// transaction:false down (it cannot run in a transaction; what follows depends on it).
#[allow(clippy::result_large_err)]
fn rehearse(
    s: &mut Session,
    set: &MigrationSet,
    opts: &RollbackOptions,
    mut report: RollbackReport,
    reporter: &mut dyn Reporter,
) -> Result<RollbackReport, RollbackFailure> {
    let mut run = opts.run.clone();
    run.lock_timeout = run.lock_timeout.min(Duration::from_secs(2));
    if let Err(source) = s.db.batch(&format!("BEGIN; {}", timeouts(&run, true))) {
        return Err(RollbackFailure {
            report,
            error: RollbackError::Query {
                what: "starting the rehearsal transaction".into(),
                source,
            },
        });
    }
    let planned = report.planned.clone();
    let mut stopped = false;
    for p in &planned {
        if stopped || p.no_transaction {
            stopped = true;
            report.not_rehearsed.push(p.version.clone());
            reporter.event(&Event::MigrationNotRehearsable {
                version: &p.version,
                name: &p.name,
                reason: if p.no_transaction {
                    "its down SQL is transaction:false: it cannot be rolled back, so it is not rehearsed"
                } else {
                    "it comes after a transaction:false down that was not rehearsed"
                },
            });
            continue;
        }
        let stmts = match statements(&p.sql, false) {
            Ok(s) => s,
            Err(e) => {
                let _ = s.db.batch("ROLLBACK");
                return Err(RollbackFailure {
                    report,
                    error: RollbackError::Blocked(e),
                });
            }
        };
        reporter.event(&Event::RollbackStarted {
            version: &p.version,
            name: &p.name,
            origin: p.origin.as_str(),
            mode: Mode::Rehearsal,
            statements: stmts.len(),
        });
        let t = Instant::now();
        let mut failure = None;
        for (i, st) in stmts.iter().enumerate() {
            if let Err(e) = run_statement(&mut s.db, &p.sql, st) {
                failure = Some((i, e));
                break;
            }
        }
        notices(s, &p.version, reporter);
        if let Some((i, e)) = failure {
            let _ = s.db.batch("ROLLBACK; RESET ALL");
            let file = Version::parse(&p.version).and_then(|v| set.get(&v));
            let de = down_error(p, file, &stmts, Some(i), &e, false, 1);
            reporter.event(&Event::RollbackFailed {
                version: &de.version,
                name: &de.name,
                location: de.location.as_ref(),
                message: &de.to_string(),
            });
            return Err(RollbackFailure {
                report,
                error: RollbackError::Down(Box::new(de)),
            });
        }
        let duration = t.elapsed();
        reporter.event(&Event::RolledBack {
            version: &p.version,
            name: &p.name,
            mode: Mode::Rehearsal,
            duration,
        });
        report.rolled_back.push(RolledBack {
            version: p.version.clone(),
            name: p.name.clone(),
            origin: p.origin,
            mode: Mode::Rehearsal,
            duration_ms: duration.as_millis() as u64,
        });
    }
    let _ = s.db.batch("ROLLBACK; RESET ALL");
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_text_is_split_without_wrapper_and_checked() {
        let s = statements("BEGIN;\nDROP TABLE a;\nDROP TABLE b;\nCOMMIT;\n", false).unwrap();
        assert_eq!(s.len(), 2);
        assert!(statements("DROP INDEX CONCURRENTLY i;", false)
            .unwrap_err()
            .contains("transaction:false"));
        assert_eq!(
            statements("DROP INDEX CONCURRENTLY i;", true)
                .unwrap()
                .len(),
            1
        );
        assert!(statements("\\i other.sql\n", false).is_err());
        assert!(statements("-- nothing here\n", false).unwrap().is_empty());
    }

    #[test]
    fn crlf_and_trailing_blank_lines_are_the_same_down() {
        assert!(same_sql("DROP TABLE a;\r\n\r\n", "DROP TABLE a;\n"));
        assert!(!same_sql("DROP TABLE a;", "DROP TABLE b;"));
    }
}
