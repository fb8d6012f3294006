//! `pgrollout test`: prove on a scratch database that every migration and its rollback
//! work, before production sees them.
//!
//! Every pending migration is applied one by one, with a catalog snapshot taken before
//! each. Then, from the newest to the oldest, each migration is rolled back (the schema
//! must equal the snapshot from before it was applied), applied again (the schema must
//! equal the one before the rollback) and rolled back once more, which leaves the
//! database ready for the next older one. One database, one connection for snapshots;
//! the applies and rollbacks go through the same library calls as `apply` and `rollback`.
//!
//! A migration that cannot be rolled back (no down SQL) or is broken stops the walk:
//! the older ones sit beneath it and are reported as untested.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::db::catalog::{self, SnapshotError};
use crate::db::tracking::{RowStatus, RunContext, TrackingError};
use crate::db::{ConnectError, Target};
use crate::execute::{self, ApplyFailure, RunOptions};
use crate::migration::{MigrationSet, Version};
use crate::plan::{self, PlanOptions};
use crate::report::{Event, Level, Reporter};
use crate::rollback::{self, DownOrigin, RollbackError, RollbackOptions, RollbackTarget};
use crate::schema::{diff, SchemaSnapshot};

#[derive(Debug, Clone)]
pub struct TestOptions {
    pub run: RunOptions,
    /// Use generated rollbacks for migrations without down SQL.
    pub allow_generated: bool,
    /// Test even though the database has objects or applied migrations of its own.
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// up → down → up leaves the same schema, and down restores the one before up.
    Reversible,
    /// No down SQL (and no generated rollback allowed).
    Irreversible,
    /// The down (or the re-apply) fails, or leaves a different schema.
    Broken,
    /// Not reached: a newer migration could not be rolled back.
    Untested,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Reversible => "reversible",
            Verdict::Irreversible => "irreversible",
            Verdict::Broken => "broken",
            Verdict::Untested => "untested",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Tested {
    pub version: String,
    pub name: String,
    pub verdict: Verdict,
    /// The rollback used was generated from the up section.
    pub generated: bool,
    /// For broken: each error or schema difference, one line each. Otherwise remarks.
    pub details: Vec<String>,
}

/// Newest first.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TestReport {
    pub migrations: Vec<Tested>,
}

impl TestReport {
    pub fn broken(&self) -> usize {
        self.count(Verdict::Broken)
    }

    pub fn count(&self, v: Verdict) -> usize {
        self.migrations.iter().filter(|t| t.verdict == v).count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The database is not a scratch database.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Tracking(#[from] TrackingError),
    #[error("{0}")]
    Run(String),
}

/// Progress from the applies and rollbacks is mostly noise here: pass on only what
/// explains a verdict.
struct Quiet<'r>(&'r mut dyn Reporter);

impl Reporter for Quiet<'_> {
    fn event(&mut self, e: &Event<'_>) {
        match e {
            Event::Diagnostic { level, .. } if *level >= Level::Warning => self.0.event(e),
            Event::LockWaiting { .. } | Event::MigrationTested { .. } => self.0.event(e),
            _ => {}
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

/// Run the test on `target`. `set` must be loaded with its statements parsed.
pub fn test(
    target: &Target,
    set: &MigrationSet,
    opts: &TestOptions,
    ctx: &RunContext,
    reporter: &mut dyn Reporter,
) -> Result<TestReport, TestError> {
    let schema = opts.run.schema.clone();
    let mut s = execute::connect(target, &schema, opts.run.connect_retry, reporter)?;
    let state = s.tracking.read(&mut s.db)?;
    let start = catalog::read_all(&mut s.db, &schema)?;
    if !opts.force {
        if !state.rows.is_empty() {
            return Err(TestError::Refused(format!(
                "{} already has {} migration(s) recorded in {schema}: `test` rolls migrations back and forth, so it \
                 runs on a scratch database — use --ephemeral, or a database made for it (or pass --force)",
                target.redacted,
                state.rows.len()
            )));
        }
        if start.has_user_objects() {
            let some: Vec<String> = start
                .tables
                .iter()
                .map(|t| format!("{}.{}", t.schema, t.name))
                .chain(
                    start
                        .views
                        .iter()
                        .map(|v| format!("{}.{}", v.schema, v.name)),
                )
                .chain(
                    start
                        .functions
                        .iter()
                        .map(|f| format!("{}.{}()", f.schema, f.name)),
                )
                .take(5)
                .collect();
            return Err(TestError::Refused(format!(
                "{} has objects of its own ({}): `test` needs a scratch database — use --ephemeral, \
                 or an empty database (or pass --force)",
                target.redacted,
                some.join(", ")
            )));
        }
    }
    let mut run = opts.run.clone();
    run.plan = PlanOptions::default();
    let quiet = &mut Quiet(reporter);

    // Apply every pending migration, one at a time, remembering the schema before each.
    let mut before: BTreeMap<u128, SchemaSnapshot> = BTreeMap::new();
    let pending: Vec<_> = plan::plan(set, &state.rows, &run.plan)
        .to_apply
        .iter()
        .map(|m| m.version.clone())
        .collect();
    let mut report = TestReport::default();
    for v in &pending {
        let snap = catalog::read_all(&mut s.db, &schema)?;
        run.plan.target = Some(v.clone());
        if let Err(ApplyFailure { error, .. }) = execute::apply(target, set, &run, ctx, quiet) {
            let m = set.get(v).expect("pending versions come from the set");
            let t = Tested {
                version: v.text.clone(),
                name: m.name.clone(),
                verdict: Verdict::Broken,
                generated: false,
                details: vec![format!("applying it fails: {error}")],
            };
            emit(quiet, &t);
            report.migrations.push(t);
            return Ok(report);
        }
        before.insert(v.value, snap);
    }

    let state = s.tracking.read(&mut s.db)?;
    let mut applied: Vec<_> = state
        .rows
        .iter()
        .filter(|r| r.status != RowStatus::Baseline)
        .cloned()
        .collect();
    applied.sort_by_key(|r| std::cmp::Reverse(r.value));
    let ropts = RollbackOptions {
        run: run.clone(),
        target: RollbackTarget::Steps(1),
        dry_run: false,
        allow_generated: opts.allow_generated,
        use_file_down: false,
    };
    let mut blocked: Option<String> = None;
    for r in &applied {
        let mut t = Tested {
            version: r.version.clone(),
            name: r.name.clone(),
            verdict: Verdict::Reversible,
            generated: false,
            details: Vec::new(),
        };
        if let Some(b) = &blocked {
            t.verdict = Verdict::Untested;
            t.details.push(b.clone());
            emit(quiet, &t);
            report.migrations.push(t);
            continue;
        }
        let applied_snap = catalog::read_all(&mut s.db, &schema)?;
        match check_one(
            target,
            set,
            &mut s,
            &schema,
            &run,
            &ropts,
            ctx,
            &Version::parse(&r.version).unwrap_or(Version {
                text: r.version.clone(),
                value: r.value,
            }),
            before.get(&r.value),
            &applied_snap,
            quiet,
        )? {
            Ok(generated) => t.generated = generated,
            Err((verdict, details)) => {
                t.verdict = verdict;
                t.details = details;
                blocked = Some(format!(
                    "not tested: {} {} above it {}",
                    r.version,
                    r.name,
                    if verdict == Verdict::Irreversible {
                        "cannot be rolled back"
                    } else {
                        "is broken"
                    }
                ));
            }
        }
        if t.generated {
            t.details
                .push("reversible with its generated rollback (it has no down section)".into());
        }
        emit(quiet, &t);
        report.migrations.push(t);
    }
    Ok(report)
}

fn emit(reporter: &mut dyn Reporter, t: &Tested) {
    reporter.event(&Event::MigrationTested {
        version: &t.version,
        name: &t.name,
        verdict: t.verdict.as_str(),
        details: &t.details,
    });
}

type Checked = Result<bool, (Verdict, Vec<String>)>;

/// down → compare with the schema before up → up → compare with the schema before
/// down → down again. `Ok(generated)` when reversible.
#[allow(clippy::too_many_arguments)]
fn check_one(
    target: &Target,
    set: &MigrationSet,
    s: &mut execute::Session,
    schema: &str,
    run: &RunOptions,
    ropts: &RollbackOptions,
    ctx: &RunContext,
    version: &Version,
    before_up: Option<&SchemaSnapshot>,
    applied: &SchemaSnapshot,
    reporter: &mut dyn Reporter,
) -> Result<Checked, TestError> {
    let down = |reporter: &mut dyn Reporter, what: &str| -> Result<Checked, TestError> {
        match rollback::rollback(target, set, ropts, ctx, reporter) {
            Ok(r) => Ok(Ok(r
                .rolled_back
                .first()
                .is_some_and(|d| d.origin == DownOrigin::Generated))),
            Err(f) => match f.error {
                RollbackError::NoDown { message, .. } => {
                    Ok(Err((Verdict::Irreversible, vec![first_line(&message)])))
                }
                RollbackError::Down(d) => Ok(Err((
                    Verdict::Broken,
                    vec![format!("{what} fails: {}", first_line(&d.to_string()))],
                ))),
                other => Err(TestError::Run(format!("{what}: {other}"))),
            },
        }
    };
    let generated = match down(reporter, "the rollback")? {
        Ok(g) => g,
        Err(e) => return Ok(Err(e)),
    };
    if let Some(b) = before_up {
        let after_down = catalog::read_all(&mut s.db, schema)?;
        let d = diff(b, &after_down);
        if !d.is_empty() {
            let mut lines = vec![
                "after its rollback the schema differs from before it was applied:".to_string(),
            ];
            lines.extend(d.iter().map(|d| format!("  {d}")));
            return Ok(Err((Verdict::Broken, lines)));
        }
    }
    let mut again = run.clone();
    again.plan.target = Some(version.clone());
    if let Err(ApplyFailure { error, .. }) = execute::apply(target, set, &again, ctx, reporter) {
        return Ok(Err((
            Verdict::Broken,
            vec![format!(
                "applying it again after its rollback fails: {}",
                first_line(&error.to_string())
            )],
        )));
    }
    let reapplied = catalog::read_all(&mut s.db, schema)?;
    let d = diff(applied, &reapplied);
    if !d.is_empty() {
        let mut lines =
            vec!["up → down → up leaves a different schema than the first up:".to_string()];
        lines.extend(d.iter().map(|d| format!("  {d}")));
        return Ok(Err((Verdict::Broken, lines)));
    }
    match down(reporter, "the second rollback")? {
        Ok(_) => Ok(Ok(generated)),
        Err(e) => Ok(Err(e)),
    }
}
