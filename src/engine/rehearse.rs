//! Shadow rehearsal: the pending migrations run on a throwaway database that holds the
//! target's schema and no rows, and the server itself says what each statement did.
//!
//! The shadow is built from the target's catalog (`pg_dump --schema-only`, restored on a
//! throwaway server after the roles it names are created there without login) or, with
//! `--ephemeral`, is the throwaway server itself with the earlier migrations applied in
//! order. Each migration then runs through the one executor, statement by statement
//! inside its transaction, with an [`Observer`] reading after every statement (see
//! the db layer's `observe` module for the queries):
//! - **rewrite**: a table's, its TOAST table's or an index's `relfilenode` changed;
//! - **scan**: the transaction's `seq_scan + idx_scan` of a table went up. The counter
//!   counts a scan when it starts, so it moves on the shadow's empty tables too (checked
//!   on PostgreSQL 15: `CREATE INDEX`, a validating `ADD FOREIGN KEY`, `ADD CHECK`, `SET
//!   NOT NULL` and a rewriting `ALTER COLUMN TYPE` each add at least one; `ADD COLUMN`,
//!   `ADD … NOT VALID` and a binary-coercible type change add none);
//! - **locks**: the table-level modes the session holds, from `pg_locks`.
//!
//! Only tables that existed before are reported: a table created by the migration (or,
//! against a target, by an earlier pending one) is empty in production too.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::db::observe::{self, RelationState, Snapshot};
use crate::db::{Db, Target};
use crate::engine::apply::{self, up_section, ApplyError, ApplyFailure, ApplyReport, RunOptions};
use crate::engine::executor::{self, Bookkeeping, ExecError, Observer, SectionError};
use crate::engine::lint::Linted;
use crate::engine::session::connect;
use crate::ephemeral::{Cluster, ClusterOptions};
use crate::lint::{self, Finding, LintOptions, Rehearsed, Severity, TableStats};
use crate::migration::{Migration, MigrationSet};
use crate::plan;
use crate::report::{Event, Level, RehearsalPlace, Reporter, Silent};
use crate::sql::Item;

#[derive(Debug, thiserror::Error)]
pub enum RehearseError {
    #[error("building the shadow database: {0}")]
    Shadow(String),
    /// A migration failed on the shadow: it would fail on the target too.
    #[error("{0} (on the shadow database)")]
    Migration(Box<SectionError>),
    #[error("rehearsing on the shadow database: {0}")]
    Other(String),
}

/// A throwaway database holding a schema and no rows.
pub struct Shadow {
    pub target: Target,
    /// Tables it held when it was ready.
    pub tables: usize,
    /// The server it lives on, when this module started it (stopped on drop).
    _cluster: Option<Cluster>,
}

impl Shadow {
    /// `--ephemeral`: the throwaway server the command already runs on is the shadow.
    pub fn ephemeral(target: &Target) -> Shadow {
        Shadow {
            target: target.clone(),
            tables: 0,
            _cluster: None,
        }
    }

    /// The schema of `target` (never its rows) on a throwaway server of its own.
    ///
    /// Only reads the target: its role names from the catalog and `pg_dump
    /// --schema-only`, which takes ACCESS SHARE locks (it waits for no reader or writer;
    /// only DDL waits for it).
    /// `db`: a session on the target to read the roles with (one is opened if `None`).
    pub fn of_target(
        target: &Target,
        db: Option<&mut Db>,
        reporter: &mut dyn Reporter,
    ) -> Result<Shadow, RehearseError> {
        let started = Instant::now();
        let fail = |what: &str, e: String| RehearseError::Shadow(format!("{what}: {e}"));
        let mut own = None;
        let db = match db {
            Some(db) => db,
            None => {
                &mut own
                    .insert(
                        connect(target, "pgrollout", Duration::from_secs(10), &mut Silent)
                            .map_err(|e| fail("connecting to the target", e.to_string()))?,
                    )
                    .db
            }
        };
        let roles = observe::roles(db).map_err(|e| {
            fail(
                "reading the target's roles",
                crate::db::conn::error_text(&e),
            )
        })?;
        let target_version = db.server_version.clone();
        drop(own);
        // The throwaway server starts (initdb, a second or two) while pg_dump runs.
        let starting = std::thread::spawn(|| Cluster::start(&ClusterOptions::default()));
        let dump = crate::engine::backup::pg_dump(
            target,
            &[
                "--schema-only".into(),
                "--no-subscriptions".into(),
                "--no-tablespaces".into(),
                "--no-security-labels".into(),
            ],
            Stdio::piped(),
        )
        .map_err(|e| fail("dumping the target's schema", e));
        let cluster = starting
            .join()
            .map_err(|_| {
                fail(
                    "starting a throwaway PostgreSQL",
                    "the thread panicked".into(),
                )
            })?
            .map_err(|e| fail("starting a throwaway PostgreSQL", e.to_string()))?;
        let script = restorable(&String::from_utf8_lossy(&dump?));
        let shadow = Target::parse(&cluster.url("postgres"))
            .map_err(|e| fail("connecting to the shadow", e.to_string()))?;
        // The restore runs on a session of its own: the dump empties search_path.
        let mut db = connect(&shadow, "pgrollout", Duration::from_secs(30), &mut Silent)
            .map_err(|e| fail("connecting to the shadow", e.to_string()))?
            .db;
        observe::create_missing_roles(&mut db, &roles).map_err(|e| {
            fail(
                "creating the target's roles",
                crate::db::conn::error_text(&e),
            )
        })?;
        db.batch(&script).map_err(|e| {
            let text = crate::db::conn::error_text(&e);
            let hint = if text.contains("extension") {
                " (the shadow runs on this machine's PostgreSQL: install the extensions the target uses there too)"
            } else {
                ""
            };
            fail("restoring the target's schema", format!("{text}{hint}"))
        })?;
        let tables = count_tables(&mut db).map_err(|e| fail("reading the shadow", e))?;
        let major = |v: &str| v.split('.').next().unwrap_or_default().to_string();
        if major(&target_version) != major(&db.server_version) {
            reporter.event(&Event::Diagnostic {
                level: Level::Warning,
                location: None,
                message: &format!(
                    "the target runs PostgreSQL {target_version} and the shadow {}: a statement can lock or \
                     rewrite differently on another major version",
                    db.server_version
                ),
            });
        }
        reporter.event(&Event::ShadowReady {
            origin: &format!(
                "the schema of {} (pg_dump --schema-only) on a throwaway PostgreSQL",
                target.redacted
            ),
            tables,
            took: started.elapsed(),
        });
        Ok(Shadow {
            target: shadow,
            tables,
            _cluster: Some(cluster),
        })
    }
}

/// The dump as one script for a simple query: psql meta-commands (`\restrict` and
/// `\unrestrict`, which recent pg_dump versions write around the dump) are not SQL.
fn restorable(dump: &str) -> String {
    dump.lines()
        .filter(|l| !l.starts_with('\\'))
        .collect::<Vec<_>>()
        .join("\n")
}

fn count_tables(db: &mut Db) -> Result<usize, String> {
    observe::snapshot(db)
        .map(|s| s.values().filter(|r| is_table(r)).count())
        .map_err(|e| crate::db::conn::error_text(&e))
}

fn is_table(r: &RelationState) -> bool {
    matches!(r.relkind, 'r' | 'p' | 'm')
}

/// Which tables count as existing before a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// The tables of the shadow before the first migration: the target's. A table an
    /// earlier pending migration creates is empty when this one runs.
    Start,
    /// The tables before each migration (`--ephemeral`: the migrations before it are
    /// taken to be applied already).
    EachMigration,
}

/// What a statement was seen doing to a table that existed before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rewrite,
    Scan,
    /// A lock that blocks writes or reads, without a rewrite or scan.
    Lock,
}

/// One statement's effect on one table.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The statement's index in the up section's items.
    pub item: usize,
    pub line: u32,
    pub col: u32,
    /// The statement's text, short.
    pub statement: String,
    pub kind: Kind,
    /// As a reader writes it (`orders`, `app.orders`).
    pub table: String,
    /// `schema.name`, to look the table up in the target.
    pub qualified: String,
    /// The strongest mode this statement took on the table (None: it took none new).
    pub taken: Option<LockMode>,
    /// The strongest mode the transaction held on the table after the statement.
    pub held: Option<LockMode>,
    /// Indexes of the table rewritten.
    pub indexes: usize,
}

/// A table-level lock mode, ordered by strength.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LockMode {
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

impl LockMode {
    fn from_pg(mode: &str) -> Option<LockMode> {
        Some(match mode {
            "AccessShareLock" => LockMode::AccessShare,
            "RowShareLock" => LockMode::RowShare,
            "RowExclusiveLock" => LockMode::RowExclusive,
            "ShareUpdateExclusiveLock" => LockMode::ShareUpdateExclusive,
            "ShareLock" => LockMode::Share,
            "ShareRowExclusiveLock" => LockMode::ShareRowExclusive,
            "ExclusiveLock" => LockMode::Exclusive,
            "AccessExclusiveLock" => LockMode::AccessExclusive,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// SHARE and stronger conflict with ROW EXCLUSIVE: INSERT, UPDATE and DELETE wait.
    pub fn blocks_writes(self) -> bool {
        self >= LockMode::Share
    }

    /// Only ACCESS EXCLUSIVE conflicts with the ACCESS SHARE of a plain SELECT.
    pub fn blocks_reads(self) -> bool {
        self == LockMode::AccessExclusive
    }
}

fn strongest<'a>(modes: impl IntoIterator<Item = &'a String>) -> Option<LockMode> {
    modes.into_iter().filter_map(|m| LockMode::from_pg(m)).max()
}

/// What the rehearsal of one migration saw.
#[derive(Debug, Clone)]
pub struct MigrationRehearsal {
    pub version: String,
    pub name: String,
    pub observations: Vec<Observation>,
    /// Items (statements) that ran observed.
    pub observed_items: Vec<usize>,
    /// Items that ran outside any transaction, where nothing can be observed.
    pub unobserved_items: Vec<usize>,
    pub duration: Duration,
}

impl MigrationRehearsal {
    /// The first statement that rewrote or scanned a table that existed before, under
    /// any lock: running it on the target would read or write the table's data.
    pub fn touches_data(&self) -> Option<&Observation> {
        self.observations
            .iter()
            .find(|o| matches!(o.kind, Kind::Rewrite | Kind::Scan))
    }
}

/// Watches one migration's statements.
struct Watch<'a> {
    existing: &'a HashSet<u32>,
    /// Per statement of the section: its item index, line, column and short text.
    statements: Vec<(usize, u32, u32, String)>,
    before: Option<Snapshot>,
    /// The section runs in one transaction (not `transaction:false`).
    one_transaction: bool,
    out: Vec<Observation>,
    observed: Vec<usize>,
    unobserved: Vec<usize>,
}

impl Observer for Watch<'_> {
    fn before(&mut self, db: &mut Db, _index: usize) -> Result<(), tokio_postgres::Error> {
        // Within one transaction the last statement's "after" is this one's "before": the
        // scan counters are only flushed between transactions.
        if self.existing.is_empty() || (self.one_transaction && self.before.is_some()) {
            return Ok(());
        }
        self.before = Some(observe::snapshot(db)?);
        Ok(())
    }

    fn after(&mut self, db: &mut Db, index: usize) -> Result<(), tokio_postgres::Error> {
        self.observed.push(self.statements[index].0);
        // Nothing existed before: nothing to report, whatever the statement did.
        if self.existing.is_empty() {
            return Ok(());
        }
        let after = observe::snapshot(db)?;
        let before = self.before.take().unwrap_or_default();
        self.compare(index, &before, &after);
        if self.one_transaction {
            self.before = Some(after);
        }
        Ok(())
    }

    fn unobserved(&mut self, index: usize) {
        self.unobserved.push(self.statements[index].0);
    }
}

impl Watch<'_> {
    fn compare(&mut self, index: usize, before: &Snapshot, after: &Snapshot) {
        let mut parts: HashMap<u32, Vec<&RelationState>> = HashMap::new();
        for r in after.values().filter(|r| r.table_oid != r.oid) {
            parts.entry(r.table_oid).or_default().push(r);
        }
        let (item, line, col, text) = &self.statements[index];
        let mut found: Vec<Observation> = Vec::new();
        for a in after.values().filter(|r| is_table(r)) {
            if !self.existing.contains(&a.oid) {
                continue;
            }
            let Some(b) = before.get(&a.oid) else {
                continue;
            };
            let changed = |x: &RelationState| {
                before
                    .get(&x.oid)
                    .is_some_and(|y| x.filenode != 0 && y.filenode != x.filenode)
            };
            let mut rewritten = changed(a);
            let mut indexes = 0;
            for p in parts.get(&a.oid).into_iter().flatten() {
                if changed(p) {
                    match p.relkind {
                        'i' => indexes += 1,
                        _ => rewritten = true,
                    }
                }
            }
            let scanned = a.scans > b.scans;
            let taken = strongest(a.modes.iter().filter(|m| !b.modes.contains(m)));
            let held = strongest(&a.modes);
            let kind = if rewritten || indexes > 0 {
                Kind::Rewrite
            } else if scanned {
                Kind::Scan
            } else if taken.is_some_and(LockMode::blocks_writes) {
                Kind::Lock
            } else {
                continue;
            };
            found.push(Observation {
                item: *item,
                line: *line,
                col: *col,
                statement: text.clone(),
                kind,
                table: a.display.clone(),
                qualified: a.qualified.clone(),
                taken,
                held,
                indexes,
            });
        }
        found.sort_by(|x, y| x.table.cmp(&y.table));
        self.out.extend(found);
    }
}

/// A statement's text on one line, at most 60 characters.
fn short(sql: &str) -> String {
    let one: String = sql
        .trim()
        .trim_end_matches(';')
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if one.chars().count() <= 60 {
        one
    } else {
        one.chars().take(59).collect::<String>() + "…"
    }
}

/// Run `migrations` in order on `shadow`, each in its own transaction through the one
/// executor with the observer watching, each committed (the shadow is throwaway: the
/// next migration sees it applied, as it would in production).
pub fn rehearse(
    shadow: &Shadow,
    migrations: &[&Migration],
    baseline: Baseline,
    opts: &RunOptions,
) -> Result<Vec<MigrationRehearsal>, RehearseError> {
    let other = |e: &tokio_postgres::Error| RehearseError::Other(crate::db::conn::error_text(e));
    let mut s = connect(
        &shadow.target,
        &opts.schema,
        opts.connect_retry,
        &mut Silent,
    )
    .map_err(|e| RehearseError::Other(e.to_string()))?;
    let tables = |db: &mut Db| -> Result<HashSet<u32>, RehearseError> {
        Ok(observe::snapshot(db)
            .map_err(|e| other(&e))?
            .values()
            .filter(|r| is_table(r))
            .map(|r| r.oid)
            .collect())
    };
    let mut existing = tables(&mut s.db)?;
    let mut out = Vec::new();
    for m in migrations {
        if baseline == Baseline::EachMigration && !out.is_empty() {
            existing = tables(&mut s.db)?;
        }
        let sec = up_section(m);
        let statements = sec
            .statements
            .iter()
            .map(|st| {
                let item =
                    m.up.items
                        .iter()
                        .position(|i| matches!(i, Item::Statement(x) if std::ptr::eq(x, *st)))
                        .unwrap_or(0);
                (item, st.line, st.col, short(&m.source[st.span.clone()]))
            })
            .collect();
        let mut watch = Watch {
            existing: &existing,
            statements,
            before: None,
            one_transaction: !sec.no_transaction,
            out: Vec::new(),
            observed: Vec::new(),
            unobserved: Vec::new(),
        };
        let started = Instant::now();
        if !sec.no_transaction {
            s.db.batch("BEGIN").map_err(|e| other(&e))?;
        }
        // No table existed before: nothing to observe, so the statements go pipelined.
        let ran = if existing.is_empty() && !sec.no_transaction {
            executor::run(&mut s, &sec, &Bookkeeping::Rehearse, opts, &mut Silent)
        } else {
            executor::run_observed(&mut s, &sec, &mut watch, opts, &mut Silent)
        };
        match ran {
            Ok(_) => {}
            Err(ExecError::Section(e)) => return Err(RehearseError::Migration(e)),
            Err(e) => return Err(RehearseError::Other(e.to_string())),
        }
        if !sec.no_transaction {
            s.db.batch("COMMIT").map_err(|e| other(&e))?;
        }
        out.push(MigrationRehearsal {
            version: m.version.text.clone(),
            name: m.name.clone(),
            observations: watch.out,
            observed_items: watch.observed,
            unobserved_items: watch.unobserved,
            duration: started.elapsed(),
        });
    }
    Ok(out)
}

/// Live sizes from the target's catalog (reading it is safe: `pg_class.reltuples` and
/// `pg_total_relation_size` take no lock on the tables) of every table observed.
pub fn live_sizes(
    db: &mut Db,
    rehearsals: &[MigrationRehearsal],
) -> Result<HashMap<String, TableStats>, tokio_postgres::Error> {
    let mut names: Vec<String> = rehearsals
        .iter()
        .flat_map(|r| r.observations.iter().map(|o| o.qualified.clone()))
        .collect();
    names.sort();
    names.dedup();
    crate::engine::lint::table_stats(db, &names)
}

/// The findings (`observed-rewrite`, `observed-scan`, `observed-lock`) of one rehearsed
/// migration. A rewrite or scan under a lock that blocks writes or reads is an error;
/// with live sizes, one on a table under `threshold_bytes` is a warning. A rewrite or
/// scan under a weaker lock (`VALIDATE CONSTRAINT`'s SHARE UPDATE EXCLUSIVE) stalls no
/// one and is not reported.
pub fn findings(
    r: &MigrationRehearsal,
    m: &Migration,
    sizes: Option<&HashMap<String, TableStats>>,
    threshold_bytes: i64,
) -> Rehearsed {
    let mut out = Vec::new();
    for o in &r.observations {
        let Some(held) = o.held.filter(|h| h.blocks_writes()) else {
            continue;
        };
        let size = sizes.and_then(|s| s.get(&o.qualified)).filter(|s| s.exists);
        let size_text = size.map_or(String::new(), |s| {
            format!(" ({})", lint::describe_size(s.rows_estimate, s.total_bytes))
        });
        let how = match o.taken {
            Some(t) => format!("takes {}", t.as_str()),
            None => format!("holds {}", held.as_str()),
        };
        let waits = if held.blocks_reads() {
            "every read and write of it waits until the migration's transaction ends"
        } else {
            "every write to it waits until the migration's transaction ends (reads go on)"
        };
        let earlier = match o.taken {
            Some(t) if t < held => format!(
                "; with the {} an earlier statement took, {waits}",
                held.as_str()
            ),
            _ => format!("; {waits}"),
        };
        let (rule, severity, message, fix) = match o.kind {
            Kind::Rewrite | Kind::Scan => {
                let what = match (o.kind, o.indexes) {
                    (Kind::Scan, _) => "scans it".to_string(),
                    (_, 0) => "rewrites it".to_string(),
                    (_, n) => format!("rewrites it and {n} index(es)"),
                };
                let small = size.is_some_and(|s| s.total_bytes < threshold_bytes);
                let mut message = format!(
                    "`{}` {how} on `{}`{size_text} and {what}{earlier}",
                    o.statement, o.table
                );
                if small {
                    message.push_str(
                        " (a warning: the table is under lint_size_threshold)",
                    );
                }
                let (rule, fix) = if o.kind == Kind::Rewrite {
                    ("observed-rewrite", "change it in steps that hold no long lock (for a type change: a new column, a backfill in batches, a switch, then drop the old column), or, if the table stays small, allow it: `-- pgrollout:allow observed-rewrite <reason>`")
                } else {
                    ("observed-scan", "let the scan run under a lock that blocks no traffic: CREATE INDEX CONCURRENTLY in its own transaction:false migration; constraints NOT VALID, then VALIDATE CONSTRAINT in a later migration; or allow it: `-- pgrollout:allow observed-scan <reason>`")
                };
                let severity = if small {
                    Severity::Warning
                } else {
                    Severity::Error
                };
                (rule, severity, message, fix.to_string())
            }
            Kind::Lock => (
                "observed-lock",
                Severity::Info,
                format!(
                    "`{}` {how} on `{}`{size_text}, catalog only (no rewrite, no scan): held briefly, \
                     but while it waits for the lock, queries on the table queue behind it (for at most lock_timeout)",
                    o.statement, o.table
                ),
                "keep lock_timeout short (pgrollout retries on 55P03) and the migration's transaction short".to_string(),
            ),
        };
        out.push((
            o.item,
            Finding {
                rule,
                severity,
                path: m.path.clone(),
                line: o.line,
                col: o.col,
                message,
                fix,
                table: Some(o.table.clone()),
            },
        ));
    }
    Rehearsed {
        findings: out,
        items: r.observed_items.clone(),
    }
}

/// `lint --rehearse`: the migrations to run on the shadow and which of them were chosen.
pub struct LintRehearsal<'a> {
    /// In order: everything that must run on the shadow up to the last chosen one.
    pub run: Vec<&'a Migration>,
    pub baseline: Baseline,
    pub run_opts: RunOptions,
    /// `lint_size_threshold` in bytes.
    pub threshold_bytes: i64,
}

/// Lint `selected` with what rehearsing `plan.run` on `shadow` observed; `target_db`
/// gives live sizes. Events: one [`Event::Rehearsed`] per chosen migration rehearsed.
#[allow(clippy::too_many_arguments)]
pub fn lint_rehearsed<'a>(
    set: &MigrationSet,
    shadow: &Shadow,
    plan: &LintRehearsal<'_>,
    selected: &[&'a Migration],
    options: &LintOptions,
    target_db: Option<&mut Db>,
    reporter: &mut dyn Reporter,
) -> Result<Vec<Linted<'a>>, RehearseError> {
    let rehearsals = rehearse(shadow, &plan.run, plan.baseline, &plan.run_opts)?;
    let sizes = match target_db {
        Some(db) => Some(
            live_sizes(db, &rehearsals)
                .map_err(|e| RehearseError::Other(crate::db::conn::error_text(&e)))?,
        ),
        None => None,
    };
    crate::engine::lint::lint_each(set, selected, |m, model| {
        match rehearsals.iter().find(|r| r.version == m.version.text) {
            Some(r) => {
                reporter.event(&Event::Rehearsed {
                    version: &m.version.text,
                    name: &m.name,
                    place: RehearsalPlace::Shadow,
                    reason: None,
                });
                lint::lint_rehearsed(
                    m,
                    options,
                    model,
                    findings(r, m, sizes.as_ref(), plan.threshold_bytes),
                )
            }
            None => lint::lint_migration_in(m, options, model),
        }
    })
    .map_err(|errors| {
        RehearseError::Other(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })
}

/// The pipeline's `dry-run`: a production rehearsal that never rewrites or scans a
/// production table under a heavy lock. The pending migrations are rehearsed on a
/// shadow of the target's schema first; on the target, in a transaction rolled back,
/// run only the ones before the first that the shadow saw rewrite or scan a table
/// (`lock_timeout` bounds the wait for a lock, not how long it is then held: a rewrite
/// of a 12 GB table rehearsed on production holds ACCESS EXCLUSIVE for all of it). One
/// [`Event::Rehearsed`] per pending migration says where it was rehearsed and why.
///
/// Without a shadow (no initdb/pg_ctl or pg_dump here, an extension missing), nothing
/// proves a migration catalog-only, so the target rehearsal is skipped with a warning
/// that says why.
#[allow(clippy::result_large_err)]
pub fn guarded_dry_run(
    target: &Target,
    s: &mut crate::engine::Session,
    set: &MigrationSet,
    opts: &RunOptions,
    reporter: &mut dyn Reporter,
) -> Result<ApplyReport, ApplyFailure> {
    let none = HashMap::new();
    let state = s.tracking.read(&mut s.db)?;
    let p = plan::plan(set, &state.rows, &opts.plan);
    if p.blocked() || p.to_apply.is_empty() {
        // Nothing to run: the rehearsal on the target says so (or why it is blocked).
        return apply::rehearse_in(s, set, opts, &none, reporter);
    }
    let Ok(pending) = apply::parse_pending(set, &p, &mut Silent) else {
        // It reports the file problems and stops before running anything.
        return apply::rehearse_in(s, set, opts, &none, reporter);
    };
    let migrations: Vec<&Migration> = pending.migrations.iter().collect();
    let mut skip: HashMap<String, String> = HashMap::new();
    let mut place = RehearsalPlace::ShadowOnly;
    let rehearsals = Shadow::of_target(target, Some(&mut s.db), reporter)
        .and_then(|shadow| rehearse(&shadow, &migrations, Baseline::Start, opts));
    // Building the shadow took seconds in which the session sat idle: a server's
    // idle_session_timeout (or a NAT) may have ended it. Replace it if so.
    if s.db.batch("SELECT 1").is_err() {
        *s = connect(target, &opts.schema, opts.connect_retry, &mut Silent)?;
    }
    match rehearsals {
        Err(RehearseError::Migration(e)) => {
            let message = format!(
                "{} (rehearsed on a shadow of the target's schema; the target was not touched)",
                e.body()
            );
            reporter.event(&Event::SectionFailed {
                direction: e.direction,
                version: &e.version,
                name: &e.name,
                location: e.location.as_ref(),
                message: &message,
            });
            return Err(ApplyFailure {
                report: ApplyReport::default(),
                error: ApplyError::Migration(e),
            });
        }
        Err(e) => {
            let why = format!(
                "the target rehearsal is skipped: without a shadow database nothing shows which migrations \
                 are catalog-only, and rehearsing a rewrite or scan on the target would hold its lock on \
                 production tables ({e})"
            );
            reporter.event(&Event::Diagnostic {
                level: Level::Warning,
                location: None,
                message: &format!("dry-run: {why}"),
            });
            place = RehearsalPlace::Nowhere;
            for m in &migrations {
                skip.insert(
                    m.version.text.clone(),
                    "no shadow database could be built: see the warning above".into(),
                );
            }
        }
        Ok(rehearsals) => {
            let mut after: Option<String> = None;
            for (m, r) in migrations.iter().zip(&rehearsals) {
                if let Some(first) = &after {
                    skip.insert(
                        m.version.text.clone(),
                        format!("it comes after {first}, which was not rehearsed on the target"),
                    );
                } else if let Some(o) = r.touches_data() {
                    let what = match o.kind {
                        Kind::Rewrite => "rewrites",
                        _ => "scans",
                    };
                    let under = o
                        .held
                        .map_or(String::new(), |h| format!(" under {}", h.as_str()));
                    skip.insert(
                        m.version.text.clone(),
                        format!(
                            "line {}: `{}` {what} `{}`{under}: on the target it would hold that lock on the \
                             production table for the whole {}",
                            o.line,
                            o.statement,
                            o.table,
                            if o.kind == Kind::Rewrite { "rewrite" } else { "scan" }
                        ),
                    );
                    after = Some(format!("{} {}", m.version.text, m.name));
                }
            }
        }
    }
    let mut report = apply::rehearse_in(s, set, opts, &skip, reporter)?;
    if place == RehearsalPlace::Nowhere {
        report.target_skipped = Some("no shadow database could be built".into());
    }
    for m in &migrations {
        let v = &m.version.text;
        let (place, reason) = if let Some(why) = skip.get(v) {
            (place, Some(why.as_str()))
        } else if report.rehearsed.iter().any(|a| &a.version == v) {
            (RehearsalPlace::ShadowAndTarget, None)
        } else {
            (
                RehearsalPlace::ShadowOnly,
                Some("transaction:false: it cannot be rolled back on the target"),
            )
        };
        reporter.event(&Event::Rehearsed {
            version: v,
            name: &m.name,
            place,
            reason,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_modes_order_and_block() {
        assert!(LockMode::Share.blocks_writes() && !LockMode::Share.blocks_reads());
        assert!(!LockMode::ShareUpdateExclusive.blocks_writes());
        assert!(LockMode::AccessExclusive.blocks_reads());
        assert_eq!(
            strongest(&["ShareLock".to_string(), "AccessShareLock".to_string()]),
            Some(LockMode::Share)
        );
    }

    #[test]
    fn dump_meta_commands_are_dropped() {
        let s = restorable("\\restrict abc\nCREATE TABLE a ();\n\\unrestrict abc\n");
        assert_eq!(s, "CREATE TABLE a ();");
    }

    #[test]
    fn statements_are_shortened() {
        assert_eq!(
            short("ALTER TABLE  orders\n  ALTER COLUMN total TYPE text;"),
            "ALTER TABLE orders ALTER COLUMN total TYPE text"
        );
        assert_eq!(short(&"x".repeat(80)).chars().count(), 60);
    }
}
