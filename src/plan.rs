//! Pure planning: (files, tracking rows, options) → what is applied, what is pending,
//! and what blocks a run. Serves `status`, `validate`, `plan`, `apply --dry-run` and
//! `apply` alike, so they can never disagree.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::db::tracking::{AppliedRow, RowStatus};
use crate::migration::{Migration, MigrationSet, Version};
use crate::report::{Level, Location};
use crate::sql::{Item, TxControl};

pub use crate::report::State;

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub version: String,
    pub name: String,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<std::path::PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Pending but older than the newest applied version.
    pub out_of_order: bool,
}

/// A reason a run cannot go ahead (or a remark about it).
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub level: Level,
    pub version: Option<String>,
    pub location: Option<Location>,
    pub message: String,
}

impl Problem {
    fn error(version: Option<&Version>, location: Option<Location>, message: String) -> Problem {
        Problem {
            level: Level::Error,
            version: version.map(|v| v.text.clone()),
            location,
            message,
        }
    }
}

/// Merge files and tracking rows into one ordered list.
pub fn status(set: &MigrationSet, rows: &[AppliedRow]) -> Vec<Entry> {
    let mut by_version: BTreeMap<u128, (Option<&Migration>, Option<&AppliedRow>)> = BTreeMap::new();
    for m in &set.migrations {
        by_version.entry(m.version.value).or_default().0 = Some(m);
    }
    for r in rows {
        by_version.entry(r.value).or_default().1 = Some(r);
    }
    let baseline = rows
        .iter()
        .filter(|r| r.status == RowStatus::Baseline)
        .map(|r| r.value)
        .max();
    let newest_applied = rows
        .iter()
        .filter(|r| r.status != RowStatus::Baseline)
        .map(|r| r.value)
        .chain(baseline)
        .max();
    by_version
        .into_values()
        .map(|(m, r)| {
            let version = m
                .map(|m| m.version.text.clone())
                .or_else(|| r.map(|r| r.version.clone()))
                .unwrap_or_default();
            let name = m
                .map(|m| m.name.clone())
                .or_else(|| r.map(|r| r.name.clone()))
                .unwrap_or_default();
            let value = m
                .map(|m| m.version.value)
                .or_else(|| r.map(|r| r.value))
                .unwrap_or(0);
            let state = match (m, r) {
                (_, Some(r)) if r.status == RowStatus::Failed => State::Failed,
                (_, Some(r)) if r.status == RowStatus::Running => State::Running,
                (_, Some(r)) if r.status == RowStatus::Baseline => State::Baseline,
                (None, Some(_)) => State::MissingFile,
                (Some(m), Some(r)) if m.checksum != r.checksum => State::Modified,
                (Some(_), Some(_)) => State::Applied,
                (Some(_), None) if baseline.is_some_and(|b| value <= b) => State::Baseline,
                (Some(_), None) => State::Pending,
                (None, None) => unreachable!("an entry has a file or a row"),
            };
            Entry {
                version,
                name,
                state,
                path: m.map(|m| m.path.clone()),
                applied: r.cloned(),
                checksum: m.map(|m| m.checksum.clone()),
                out_of_order: state == State::Pending && newest_applied.is_some_and(|n| value < n),
            }
        })
        .collect()
}

/// What is wrong with the files themselves, found without a database: psql
/// meta-commands, syntax errors, statements that cannot run where the file puts them,
/// transaction control that would commit half-way.
pub fn check_files(set: &MigrationSet) -> Vec<Problem> {
    let mut out = check_ups(set);
    out.extend(check_downs(set));
    out
}

/// The up sections' problems: what blocks `apply`.
pub fn check_ups(set: &MigrationSet) -> Vec<Problem> {
    let mut out = Vec::new();
    for m in &set.migrations {
        check_section(m, &m.up, &m.source, &m.lines, "up", &mut out);
    }
    out
}

/// The down sections' problems. They do not block applying the up (dbmate never even
/// parses downs, and real projects carry broken ones): `validate` and `lint` report them
/// as errors, `apply` warns, `rollback` of that migration refuses.
pub fn check_downs(set: &MigrationSet) -> Vec<Problem> {
    let mut out = Vec::new();
    for m in &set.migrations {
        if let Some(d) = &m.down {
            if let Some(e) = &d.invalid {
                out.push(Problem::error(
                    Some(&m.version),
                    Some(Location::new(&d.section.path, e.line, e.col)),
                    format!("in the down section: {}", e.message),
                ));
            }
            check_section(m, &d.section, &d.source, &d.lines, "down", &mut out);
        }
    }
    out
}

/// One warning per migration whose down section has errors, for `apply`.
pub fn down_warnings(set: &MigrationSet) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    for p in check_downs(set)
        .into_iter()
        .filter(|p| p.level == Level::Error)
    {
        if out.iter().any(|w| w.version == p.version) {
            continue;
        }
        let at = p
            .location
            .as_ref()
            .map(|l| format!("{}:{}: ", l.path.display(), l.line))
            .unwrap_or_default();
        out.push(Problem {
            level: Level::Warning,
            version: p.version.clone(),
            location: p.location.clone(),
            message: format!(
                "migration {}: {at}{}; the up section is applied, but `rollback` of this migration \
                 will refuse until the down section is fixed",
                p.version.as_deref().unwrap_or(""),
                p.message
            ),
        });
    }
    out
}

fn check_section(
    m: &Migration,
    section: &crate::migration::Section,
    source: &str,
    lines: &crate::sql::LineIndex,
    which: &str,
    out: &mut Vec<Problem>,
) {
    if !section.parsed {
        return;
    }
    let loc = |line: u32, col: u32| Some(Location::new(&section.path, line, col));
    let stmts: Vec<&crate::sql::Statement> = section
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Statement(s) => Some(s),
            _ => None,
        })
        .collect();
    let wrapper = wrapper(section);
    for item in &section.items {
        match item {
            Item::MetaCommand(c) => out.push(Problem::error(
                Some(&m.version),
                loc(c.line, c.col),
                format!(
                    "psql meta-command `{}` is not SQL and is never sent to the server: \
                     remove it (for \\i, paste the included file's SQL here)",
                    c.text.trim()
                ),
            )),
            Item::Statement(s) => {
                if let Some(e) = &s.syntax_error {
                    let (line, col) = lines.line_col(source, e.offset);
                    out.push(Problem::error(
                        Some(&m.version),
                        loc(line, col),
                        format!("syntax error in the {which} section: {}", e.message),
                    ));
                }
                if let Some(label) = s.non_transactional {
                    if !section.no_transaction {
                        out.push(Problem::error(
                            Some(&m.version),
                            loc(s.line, s.col),
                            format!(
                                "{label} cannot run inside a transaction block, and this {which} section runs in one: \
                                 mark the section `-- migrate:{which} transaction:false` (best in a migration of its own, \
                                 since each statement then commits on its own)"
                            ),
                        ));
                    }
                }
                if let Some(tx) = s.tx_control {
                    let is_wrapper =
                        wrapper.is_some_and(|(b, c)| std::ptr::eq(b, s) || std::ptr::eq(c, s));
                    if is_wrapper {
                        continue;
                    }
                    let what = match tx {
                        TxControl::Begin => "BEGIN",
                        TxControl::Commit => "COMMIT",
                        TxControl::Rollback => "ROLLBACK",
                        TxControl::Savepoint | TxControl::Release | TxControl::RollbackTo => {
                            continue
                        }
                        TxControl::Other => "this transaction command",
                    };
                    let fix = if section.no_transaction {
                        "a transaction:false section runs each statement on its own; remove it"
                    } else {
                        "pgrollout already runs the section in one transaction and a wrapper BEGIN … COMMIT \
                         around the whole section is recognised; inside it, this would commit or abort half-way. \
                         Remove it, or split the file into two migrations"
                    };
                    out.push(Problem::error(
                        Some(&m.version),
                        loc(s.line, s.col),
                        format!("{what} inside the {which} section: {fix}"),
                    ));
                }
            }
        }
    }
    if let Some((b, c)) = wrapper {
        if section.no_transaction {
            out.push(Problem::error(
                Some(&m.version),
                loc(b.line, b.col),
                "BEGIN … COMMIT around a transaction:false section: remove the wrapper or the transaction:false marker".into(),
            ));
        } else {
            out.push(Problem {
                level: Level::Notice,
                version: Some(m.version.text.clone()),
                location: loc(b.line, b.col),
                message: format!(
                    "the file's own BEGIN (line {}) … COMMIT (line {}) wrapper is recognised: the statements between run in pgrollout's transaction, with the tracking row",
                    b.line, c.line
                ),
            });
        }
    }
    if stmts.is_empty() && which == "up" {
        out.push(Problem {
            level: Level::Warning,
            version: Some(m.version.text.clone()),
            location: loc(section.marker_line.unwrap_or(1), 1),
            message: "the up section has no SQL statement: the migration will be recorded without changing anything".into(),
        });
    }
}

/// Line of the `index`-th statement of the up section, splitting it if the migration
/// was loaded without statements.
fn statement_line(m: &Migration, index: usize) -> Option<u32> {
    if m.up.parsed {
        return m.statements().nth(index).map(|s| s.line);
    }
    let items = crate::sql::split(&m.source, m.up.range.clone(), &m.lines).ok()?;
    items
        .iter()
        .filter_map(|i| match i {
            Item::Statement(s) => Some(s.line),
            Item::MetaCommand(_) => None,
        })
        .nth(index)
}

pub use crate::migration::wrapper;

/// Options that change what a run may do.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Apply up to and including this version only.
    pub target: Option<Version>,
    /// Allow pending versions older than the newest applied one.
    pub allow_out_of_order: bool,
    /// Allow applied versions whose files are gone.
    pub allow_missing: bool,
    /// Planning under the migration lock: a `running` row then cannot belong to a live
    /// runner, so it was interrupted. Without the lock it may be another runner at work.
    pub lock_held: bool,
}

/// The result of planning: what to run, in order, and what stands in the way.
#[derive(Debug)]
pub struct Plan<'a> {
    pub entries: Vec<Entry>,
    pub to_apply: Vec<&'a Migration>,
    pub problems: Vec<Problem>,
}

impl Plan<'_> {
    pub fn blocked(&self) -> bool {
        self.problems.iter().any(|p| p.level == Level::Error)
    }
}

pub fn plan<'a>(set: &'a MigrationSet, rows: &[AppliedRow], opts: &PlanOptions) -> Plan<'a> {
    let entries = status(set, rows);
    let mut problems = Vec::new();
    if let Some(t) = &opts.target {
        if set.get(t).is_none() && !rows.iter().any(|r| r.value == t.value) {
            problems.push(Problem::error(
                Some(t),
                None,
                format!("--target {t}: no migration has this version"),
            ));
        }
    }
    for e in &entries {
        let m = e
            .path
            .as_ref()
            .and_then(|_| Version::parse(&e.version).and_then(|v| set.get(&v)));
        let file_loc = m.map(|m| Location::new(&m.path, 1, 1));
        let v = Version::parse(&e.version);
        match e.state {
            State::Failed | State::Running => {
                let r = e.applied.as_ref().expect("failed rows have a row");
                let at = r.statement_index.map(|i| {
                    // The index counts the statements of the section that ran: the
                    // file's up section has lines to show; a down's may be stored SQL.
                    let line = m
                        .filter(|_| !r.rolling_back)
                        .and_then(|m| statement_line(m, i as usize))
                        .map(|l| format!(" (line {l})"))
                        .unwrap_or_default();
                    format!(" at statement {}{line}", i + 1)
                });
                let (subject, doing) = if r.rolling_back {
                    ("the rollback of migration", "rolling it back")
                } else {
                    ("migration", "applying it")
                };
                let what = if e.state == State::Failed {
                    format!("failed{}: {}", at.unwrap_or_default(), r.error_message.as_deref().unwrap_or("no error recorded"))
                } else if opts.lock_held {
                    format!(
                        "was interrupted{} (recorded as running since {}, and no runner holds the lock: the runner or the server stopped mid-way)",
                        at.unwrap_or_default(),
                        r.applied_at.format("%Y-%m-%d %H:%M:%SZ")
                    )
                } else {
                    format!(
                        "is recorded as running{} since {}: another runner may be {doing} right now (then wait for it), or a runner stopped mid-way",
                        at.unwrap_or_default(),
                        r.applied_at.format("%Y-%m-%d %H:%M:%SZ")
                    )
                };
                let next = if r.rolling_back {
                    "Its down SQL ran outside a transaction, so the statements before that one are in effect. \
                     Fix the cause, then run `pgrollout repair` (the migration is recorded as applied again) and \
                     roll back again: the down SQL reruns from its first statement (write it with IF EXISTS so a \
                     rerun is safe)"
                } else {
                    "It ran outside a transaction, so the statements before that one are in effect. Check the \
                     database (for a failed CREATE INDEX CONCURRENTLY, drop the INVALID index it left), then run \
                     `pgrollout repair` so the migration runs again from its first statement (write its \
                     statements with IF [NOT] EXISTS so a rerun is safe)"
                };
                problems.push(Problem::error(
                    v.as_ref(),
                    file_loc.clone(),
                    format!("{subject} {} {} {what}. {next}", e.version, e.name),
                ));
            }
            State::Modified => {
                let r = e.applied.as_ref().expect("modified rows have a row");
                problems.push(Problem::error(
                    v.as_ref(),
                    file_loc.clone(),
                    format!(
                        "migration {} was changed after it was applied (checksum {} applied, {} on disk): \
                         restore the file as it was applied and put the change in a new migration, or, \
                         if the edit is intended (a comment, a no-op), run `pgrollout repair --accept {} --reason \"…\"`",
                        e.version,
                        &r.checksum[..12.min(r.checksum.len())],
                        &e.checksum.as_deref().unwrap_or("")[..12],
                        e.version
                    ),
                ));
            }
            State::MissingFile if !opts.allow_missing => problems.push(Problem::error(
                v.as_ref(),
                None,
                format!(
                    "migration {} {} is applied but its file is not in {}: restore the file (or pass --allow-missing)",
                    e.version,
                    e.name,
                    set.dir.display()
                ),
            )),
            State::Pending
                if e.out_of_order
                    && !opts.allow_out_of_order
                    && opts.target.as_ref().is_none_or(|t| v.as_ref().is_some_and(|v| v <= t)) =>
            {
                {
                    problems.push(Problem::error(
                        v.as_ref(),
                        file_loc.clone(),
                        format!(
                            "migration {} {} is pending but older than the newest applied migration: \
                             give it a newer version (rename the file), or pass --allow-out-of-order \
                             if running it after newer ones is safe",
                            e.version, e.name
                        ),
                    ))
                }
            }
            _ => {}
        }
    }
    let to_apply = entries
        .iter()
        .filter(|e| e.state == State::Pending)
        .filter_map(|e| Version::parse(&e.version))
        .filter(|v| opts.target.as_ref().is_none_or(|t| v <= t))
        .filter_map(|v| set.get(&v))
        .collect();
    Plan {
        entries,
        to_apply,
        problems,
    }
}

/// A warning for each migration of `to_apply` that, in one transaction, locks more than
/// one existing table against traffic: its later lock waits happen while the earlier
/// locks are held, so traffic on the first table can wait up to (tables − 1) ×
/// `lock_timeout` plus the statements' own run time, per attempt — longer than the
/// setting suggests. Tables the migration creates itself carry no traffic.
pub fn lock_waits(to_apply: &[&Migration], lock_timeout: std::time::Duration) -> Vec<Problem> {
    let mut out = Vec::new();
    for m in to_apply {
        if m.up.no_transaction {
            continue;
        }
        let mut created: Vec<String> = Vec::new();
        let mut locked: Vec<crate::sql::TableLock> = Vec::new();
        let mut second_line = None;
        for s in m.statements() {
            let Some(ast) = s.ast.as_deref() else {
                continue;
            };
            if let pg_query::NodeEnum::CreateStmt(c) = ast {
                if let Some(rv) = &c.relation {
                    created.push(if rv.schemaname.is_empty() {
                        rv.relname.clone()
                    } else {
                        format!("{}.{}", rv.schemaname, rv.relname)
                    });
                }
            }
            for l in crate::sql::table_locks(ast) {
                if created.contains(&l.table) || locked.iter().any(|k| k.table == l.table) {
                    continue;
                }
                if locked.len() == 1 {
                    second_line = Some(s.line);
                }
                locked.push(l);
            }
        }
        if locked.len() < 2 {
            continue;
        }
        let waits = locked.len() - 1;
        let bound = lock_timeout * waits as u32;
        let tables: Vec<String> = locked
            .iter()
            .map(|l| format!("{} ({})", l.table, l.mode))
            .collect();
        out.push(Problem {
            level: Level::Warning,
            version: Some(m.version.text.clone()),
            location: second_line.map(|line| Location::new(&m.path, line, 1)),
            message: format!(
                "migration {} ({}) locks {} existing tables in one transaction: {}. Each later lock wait holds the \
                 earlier locks, so traffic on {} can wait up to {waits} × lock_timeout = {} plus the \
                 statements' run time, per attempt; split it into one migration per table, or lower \
                 --lock-timeout for it",
                m.version.text,
                m.name,
                locked.len(),
                tables.join(", "),
                locked[0].table,
                humantime(bound),
            ),
        });
    }
    out
}

fn humantime(d: std::time::Duration) -> String {
    if d.as_millis() % 1000 == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The repeatable migrations as `status` shows them: applied when they last ran with
/// today's checksum, pending (to run again) otherwise.
pub fn repeatable_status(
    set: &MigrationSet,
    ran: &std::collections::HashMap<String, String>,
) -> Vec<Entry> {
    set.repeatables
        .iter()
        .map(|m| Entry {
            version: m.version.text.clone(),
            name: m.name.clone(),
            state: if ran.get(&m.name) == Some(&m.checksum) {
                State::Applied
            } else {
                State::Pending
            },
            path: Some(m.path.clone()),
            applied: None,
            checksum: Some(m.checksum.clone()),
            out_of_order: false,
        })
        .collect()
}
