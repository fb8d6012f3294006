//! Linting a set of migrations the way both the `lint` command and the pipeline's `lint`
//! step do it: the chosen migrations through the engine with the pipeline file's rule
//! choices, live context from the target database when there is one, and one
//! [`Event::LintFinding`] per finding, so the terminal and GitHub look the same either way.

use std::collections::{HashMap, HashSet};

use crate::config::{FailOn, Settings, DEFAULT_LINT_SIZE_THRESHOLD};
use crate::db::Db;
use crate::lint::{self, Finding, LintOptions, Severity, TableStats};
use crate::migration::{FileError, Migration, MigrationSet};
use crate::plan::{self, State};
use crate::report::{Event, Reporter};

/// The lint settings of the pipeline file (top level merged with an environment's).
#[derive(Debug, Clone)]
pub struct LintSettings {
    pub options: LintOptions,
    /// Lowest severity that fails; `lint_fail_on`, default error.
    pub fail_on: FailOn,
    /// `lint_size_threshold` in bytes, default 1 GB.
    pub size_threshold: i64,
}

impl Default for LintSettings {
    fn default() -> Self {
        LintSettings::from_settings(&Settings::default())
    }
}

impl LintSettings {
    pub fn from_settings(s: &Settings) -> LintSettings {
        LintSettings {
            options: s.lint_options(),
            fail_on: s.lint_fail_on.unwrap_or(FailOn::Error),
            size_threshold: s.lint_size_threshold.unwrap_or(DEFAULT_LINT_SIZE_THRESHOLD),
        }
    }
}

/// The findings of one migration.
#[derive(Debug)]
pub struct Linted<'a> {
    pub migration: &'a Migration,
    pub findings: Vec<Finding>,
}

/// Lint each of `migrations` (migrations of `set`, in version order) against the schema
/// the migrations of `set` before it build: every earlier migration, linted or not, goes
/// through the offline schema model ([`lint::SchemaModel`]) in version order, so a rule
/// knows which tables exist and what type a column has.
pub fn lint<'a>(
    set: &MigrationSet,
    migrations: &[&'a Migration],
    opts: &LintOptions,
) -> Result<Vec<Linted<'a>>, Vec<FileError>> {
    lint_each(set, migrations, |m, model| {
        lint::lint_migration_in(m, opts, model)
    })
}

/// [`lint`] with the linting of each chosen migration given: `each` gets the migration
/// and the schema model as the migrations before it left it (and must leave the model
/// as the migration leaves it, as [`lint::lint_migration_in`] does).
///
/// A set loaded without its statements (`MigrationSet::load_lazy`) is parsed here, a
/// bounded window ahead on every core, and each migration's syntax trees are dropped once
/// it is linted: memory stays flat however many files there are. A file that cannot be
/// split is an error returned with the others, and nothing is linted then.
pub fn lint_each<'a>(
    set: &MigrationSet,
    migrations: &[&'a Migration],
    mut each: impl FnMut(&Migration, &mut lint::SchemaModel) -> Vec<Finding>,
) -> Result<Vec<Linted<'a>>, Vec<FileError>> {
    let Some(last) = migrations.iter().map(|m| m.version.value).max() else {
        return Ok(Vec::new());
    };
    let chosen: HashSet<u128> = migrations.iter().map(|m| m.version.value).collect();
    let mut model = lint::SchemaModel::default();
    let mut findings: HashMap<u128, Vec<Finding>> = HashMap::new();
    let upto: Vec<&Migration> = set
        .migrations
        .iter()
        .take_while(|m| m.version.value <= last)
        .collect();
    let mut errors = Vec::new();
    in_order_parsed(&upto, |parsed| match parsed {
        Ok(m) if chosen.contains(&m.version.value) => {
            findings.insert(m.version.value, each(m, &mut model));
        }
        Ok(m) => model.apply_migration(m),
        Err(e) => errors.push(e),
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(migrations
        .iter()
        .map(|m| Linted {
            migration: m,
            findings: findings.remove(&m.version.value).unwrap_or_default(),
        })
        .collect())
}

/// Migrations parsed ahead of the linter, in this many per worker.
const PARSE_AHEAD: usize = 16;

/// Call `f` with each of `ms` in order, its statements parsed: as it is when it was
/// loaded with them, else a parsed copy that lives only for the call. The copies are made
/// by one worker per core (migration i by worker i mod n), each at most [`PARSE_AHEAD`]
/// migrations ahead of `f`.
fn in_order_parsed(ms: &[&Migration], mut f: impl FnMut(Result<&Migration, FileError>)) {
    let unparsed =
        |m: &Migration| !m.up.parsed || m.down.as_ref().is_some_and(|d| !d.section.parsed);
    if !ms.iter().any(|m| unparsed(m)) {
        ms.iter().for_each(|m| f(Ok(m)));
        return;
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(ms.len());
    std::thread::scope(|scope| {
        let receivers: Vec<_> = (0..workers)
            .map(|w| {
                let (tx, rx) = std::sync::mpsc::sync_channel(PARSE_AHEAD);
                scope.spawn(move || {
                    for m in ms.iter().skip(w).step_by(workers) {
                        let parsed = if unparsed(m) {
                            let mut copy = (*m).clone();
                            copy.parse_statements().map(|()| Some(copy))
                        } else {
                            Ok(None)
                        };
                        if tx.send(parsed).is_err() {
                            return;
                        }
                    }
                });
                rx
            })
            .collect();
        for (i, m) in ms.iter().enumerate() {
            match receivers[i % workers]
                .recv()
                .expect("a parser thread ended early")
            {
                Ok(Some(copy)) => f(Ok(&copy)),
                Ok(None) => f(Ok(m)),
                Err(e) => f(Err(e)),
            }
        }
    });
}

/// The migrations of `set` the database has not applied yet (pending, or failed and
/// waiting to run again), in version order.
pub fn pending<'a>(
    set: &'a MigrationSet,
    rows: &[crate::db::tracking::AppliedRow],
) -> Vec<&'a Migration> {
    let waiting: HashSet<String> = plan::status(set, rows)
        .into_iter()
        .filter(|e| matches!(e.state, State::Pending | State::Failed))
        .map(|e| e.version)
        .collect();
    set.migrations
        .iter()
        .filter(|m| waiting.contains(&m.version.text))
        .collect()
}

/// `public.x` and `x` are the same table for the comparison with created tables.
fn norm(name: &str) -> &str {
    name.strip_prefix("public.").unwrap_or(name)
}

/// Live context: size and row estimate of every table the findings touch, read from
/// the catalog in one query, put into the messages by [`lint::apply_table_stats`].
///
/// A table created by one of `pending` before the linted migration counts as not
/// existing yet, even if a table of that name exists now (it would be dropped and
/// created again before this migration runs).
pub fn live_context(
    db: &mut Db,
    linted: &mut [Linted<'_>],
    pending: &[&Migration],
    threshold_bytes: i64,
) -> Result<(), tokio_postgres::Error> {
    let all: Vec<Finding> = linted
        .iter()
        .flat_map(|l| l.findings.iter().cloned())
        .collect();
    let names = lint::tables_of_interest(&all);
    if names.is_empty() {
        return Ok(());
    }
    let base = table_stats(db, &names)?;
    let created: Vec<(&Migration, Vec<String>)> = pending
        .iter()
        .map(|m| (*m, lint::created_tables(m)))
        .collect();
    for l in linted.iter_mut() {
        let before: HashSet<&str> = created
            .iter()
            .filter(|(m, _)| m.version.value < l.migration.version.value)
            .flat_map(|(_, names)| names.iter().map(|n| norm(n)))
            .collect();
        let mut stats = base.clone();
        for (name, s) in stats.iter_mut() {
            if before.contains(norm(name)) {
                s.exists = false;
            }
        }
        lint::apply_table_stats(&mut l.findings, &stats, threshold_bytes);
    }
    Ok(())
}

/// One [`Event::LintFinding`] per finding, file by file.
pub fn emit(linted: &[Linted<'_>], reporter: &mut dyn Reporter) {
    for l in linted {
        for f in &l.findings {
            reporter.event(&Event::LintFinding { finding: f });
        }
    }
}

/// The lowest severity that fails, `None` for `never`.
pub fn threshold(fail_on: FailOn) -> Option<Severity> {
    match fail_on {
        FailOn::Error => Some(Severity::Error),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Info => Some(Severity::Info),
        FailOn::Never => None,
    }
}

pub fn fail_on_str(fail_on: FailOn) -> &'static str {
    match fail_on {
        FailOn::Error => "error",
        FailOn::Warning => "warning",
        FailOn::Info => "info",
        FailOn::Never => "never",
    }
}

/// How many findings are at or above the failing severity.
pub fn failing<'f>(findings: impl IntoIterator<Item = &'f Finding>, fail_on: FailOn) -> usize {
    let Some(t) = threshold(fail_on) else {
        return 0;
    };
    findings.into_iter().filter(|f| f.severity >= t).count()
}

/// Size, row estimate and existence of each of `names` (as written), from the catalog in
/// one query, keyed by name.
pub fn table_stats(
    db: &mut Db,
    names: &[String],
) -> Result<HashMap<String, TableStats>, tokio_postgres::Error> {
    Ok(crate::db::stats::table_sizes(db, names)?
        .into_iter()
        .map(|t| {
            (
                t.name,
                TableStats {
                    rows_estimate: t.rows_estimate,
                    total_bytes: t.total_bytes,
                    exists: t.exists,
                },
            )
        })
        .collect())
}
