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

use serde::Serialize;

use crate::db::conn::error_text;
use crate::db::tracking::{
    AppliedRow, RollbackRecord, RowStatus, RunContext, StoredDown, TrackingError,
};
use crate::db::{ConnectError, Target};
use crate::engine::apply::rehearsal_options;
use crate::engine::executor::{self, Bookkeeping, ExecError, FileText, SectionError};
use crate::engine::{self, ApplyError, RunOptions, Session};
use crate::migration::{DownSource, Migration, MigrationSet, Version};
pub use crate::report::DownOrigin;
use crate::report::{Direction, Event, Level, Mode, Reporter};
use crate::sql::{self, Item, LineIndex, Statement, TxControl};

/// How far to roll back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTarget {
    /// The newest N applied migrations.
    Steps(u32),
    /// Every applied migration newer than this version; the version itself stays applied.
    To(Version),
    /// Exactly the migrations one run applied (its batch): the run with this id, or
    /// (None) the newest run that applied a migration still applied.
    Run(Option<String>),
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
    Down(Box<SectionError>),
    #[error("{0}")]
    LockLost(Box<crate::engine::executor::LockLost>),
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

impl From<ExecError> for RollbackError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Section(s) => RollbackError::Down(s),
            ExecError::LockLost(l) => RollbackError::LockLost(l),
            ExecError::Tracking(t) => RollbackError::Tracking(t),
            ExecError::Query { what, source } => RollbackError::Query { what, source },
            e @ ExecError::NotApplied(_) => RollbackError::Blocked(e.to_string()),
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
        RollbackTarget::Run(id) => run_batch(&rows, id.as_deref())?,
    };
    let mut out = Vec::new();
    for r in selected {
        out.push(plan_one(r, stored, set, opts)?);
    }
    Ok(out)
}

/// The still-applied migrations of one run, newest first — refused when a migration of
/// another run is applied on top of them (undoing the batch would leave a newer
/// migration standing on what was removed).
fn run_batch<'r>(
    rows: &[&'r AppliedRow],
    id: Option<&str>,
) -> Result<Vec<&'r AppliedRow>, RollbackError> {
    let by_run = |r: &&&AppliedRow| r.status != RowStatus::Baseline;
    let id = match id {
        Some(id) => id.to_string(),
        None => rows
            .iter()
            .filter(by_run)
            .max_by_key(|r| (r.applied_at, r.value))
            .map(|r| r.run_id.clone())
            .ok_or_else(|| {
                RollbackError::Blocked(
                    "--last-run: no migration applied by a run is applied".into(),
                )
            })?,
    };
    let batch: Vec<&AppliedRow> = rows
        .iter()
        .filter(by_run)
        .filter(|r| r.run_id == id)
        .copied()
        .collect();
    let Some(oldest) = batch.iter().map(|r| r.value).min() else {
        return Err(RollbackError::Blocked(format!(
            "run {id} has no migration that is still applied (see `pgrollout status --runs`)"
        )));
    };
    if let Some(r) = rows.iter().find(|r| r.run_id != id && r.value > oldest) {
        return Err(RollbackError::Blocked(format!(
            "migration {} {} (run {}) is applied on top of run {id}'s migrations: roll back run {} first \
             (`pgrollout rollback --run {}`), or use --to",
            r.version, r.name, r.run_id, r.run_id, r.run_id
        )));
    }
    Ok(batch)
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
        (None, None) => return plan_generated(r, file, opts),
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

/// No down SQL stored and none in the file: a rollback generated from the up section,
/// run only with --allow-generated (shown in a dry run), or why there is none.
fn plan_generated(
    r: &AppliedRow,
    file: Option<&Migration>,
    opts: &RollbackOptions,
) -> Result<PlannedDown, RollbackError> {
    let no_down = |message: String| RollbackError::NoDown {
        version: r.version.clone(),
        name: r.name.clone(),
        message,
    };
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
    match crate::migration::inverse::generate(m) {
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
            Ok(PlannedDown {
                version: r.version.clone(),
                name: r.name.clone(),
                origin: DownOrigin::Generated,
                sql: g.sql,
                no_transaction: g.no_transaction,
                statements: n,
                note,
            })
        }
        Ok(g) => {
            Err(no_down(format!(
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
            Err(no_down(format!(
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
    let (_guard, state) = s.lock(&opts.run, reporter)?;
    let stored = s.tracking.stored_downs(&mut s.db)?;
    report.planned = plan(&state.rows, &stored, set, opts)?;
    announce(&report.planned, false, reporter);
    let delete = executor::prepare(&mut s.db, &s.tracking.record_rollback_sql())?;
    let planned = report.planned.clone();
    for p in &planned {
        let reason = reason(p);
        let book = Bookkeeping::Down {
            row: RollbackRecord {
                version: &p.version,
                duration_ms: None,
                reason: &reason,
                ctx,
            },
            delete: &delete,
        };
        match run_down(&mut s, p, set, &book, &opts.run, reporter) {
            Ok(done) => report.rolled_back.push(done),
            Err(error) => return Err(RollbackFailure { report, error }),
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
    reporter.event(&Event::PlanReady {
        direction: Direction::Down,
        migrations: &list,
        dry_run,
    });
}

/// Where the down SQL sits in the migration file — only when the SQL that runs is the
/// file's down section byte for byte (`-- ROLLBACK:` lines are rebuilt text, not a
/// range of the file; stored and generated SQL may differ from it).
fn down_in_file<'m>(p: &PlannedDown, file: Option<&'m Migration>) -> Option<FileText<'m>> {
    let m = file?;
    let d = m.down.as_ref()?;
    if p.origin == DownOrigin::Generated
        || d.source_kind == DownSource::RollbackComments
        || m.down_text() != Some(p.sql.as_str())
    {
        return None;
    }
    Some(FileText {
        path: &d.section.path,
        text: &d.source,
        lines: &d.lines,
        start: d.section.range.start,
    })
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

/// One planned down, through the executor: committed with its tracking change, or
/// (`Bookkeeping::Rehearse`) inside the caller's rehearsal transaction.
fn run_down(
    s: &mut Session,
    p: &PlannedDown,
    set: &MigrationSet,
    book: &Bookkeeping<'_>,
    run: &RunOptions,
    reporter: &mut dyn Reporter,
) -> Result<RolledBack, RollbackError> {
    let no_tx = p.no_transaction && !matches!(book, Bookkeeping::Rehearse);
    let stmts = statements(&p.sql, no_tx).map_err(RollbackError::Blocked)?;
    let file = Version::parse(&p.version).and_then(|v| set.get(&v));
    let section = executor::Section {
        direction: Direction::Down,
        version: &p.version,
        name: &p.name,
        path: None,
        origin: Some(p.origin),
        source: &p.sql,
        statements: stmts.iter().collect(),
        no_transaction: p.no_transaction,
        file: down_in_file(p, file),
    };
    let ran = executor::run(s, &section, book, run, reporter)?;
    Ok(RolledBack {
        version: p.version.clone(),
        name: p.name.clone(),
        origin: p.origin,
        mode: ran.mode,
        duration_ms: ran.duration.as_millis() as u64,
    })
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
    let run = rehearsal_options(&opts.run);
    if let Err(source) =
        s.db.batch(&format!("BEGIN; {}", executor::timeouts(&run, true)))
    {
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
            reporter.event(&Event::SectionNotRehearsed {
                direction: Direction::Down,
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
        match run_down(s, p, set, &Bookkeeping::Rehearse, &run, reporter) {
            Ok(done) => report.rolled_back.push(done),
            Err(error) => {
                // A down that could not even be parsed leaves the transaction open.
                let _ = s.db.batch("ROLLBACK; RESET ALL");
                return Err(RollbackFailure { report, error });
            }
        }
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
