//! `pgrollout test`: prove on a scratch database that every migration and its rollback
//! work, before production sees them.
//!
//! Each pending migration N is tested on its own copy of the schema built up to N−1
//! (`CREATE DATABASE … TEMPLATE` of the previous step's database, so a copy costs a
//! file copy, not a replay): apply N, roll it back (the schema must equal the snapshot
//! from before it was applied), apply it again (the schema must equal the first
//! apply's). A copy that ends as a clean "N applied" is the next step's template;
//! otherwise N is applied on a fresh copy. So one broken down no longer hides the rest:
//! every migration gets a verdict. Only a migration whose up fails leaves the newer
//! ones untested (they need it applied). The applies and rollbacks go through the same
//! library calls as `apply` and `rollback`; the copies are dropped at the end.

use serde::Serialize;

use crate::db::catalog::{self, SnapshotError};
use crate::db::conn::error_text;
use crate::db::tracking::{RunContext, TrackingError};
use crate::db::{quote_ident, ConnectError, Db, Target};
use crate::engine::rollback::{self, DownOrigin, RollbackError, RollbackOptions, RollbackTarget};
use crate::engine::{self, ApplyError, ApplyFailure, RunOptions};
use crate::migration::{MigrationSet, Version};
use crate::plan::{self, PlanOptions};
use crate::report::{Event, Level, Reporter};
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
    /// Not reached: an older migration fails to apply, so this one has no schema to run on.
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
    let state = {
        // Closed before the database serves as the first template.
        let mut s = engine::connect(target, &schema, opts.run.connect_retry, reporter)?;
        let state = s.tracking.read(&mut s.db)?;
        if !opts.force {
            refuse_unless_scratch(target, &schema, state.rows.len(), &mut s)?;
        }
        state
    };
    let mut run = opts.run.clone();
    run.plan = PlanOptions::default();
    let pending: Vec<Version> = plan::plan(set, &state.rows, &run.plan)
        .to_apply
        .iter()
        .map(|m| m.version.clone())
        .collect();
    let quiet = &mut Quiet(reporter);
    let mut copies = Copies::open(target, &run, quiet)?;
    let ropts = RollbackOptions {
        run: run.clone(),
        target: RollbackTarget::Steps(1),
        dry_run: false,
        allow_generated: opts.allow_generated,
        use_file_down: false,
    };
    let job = Job {
        set,
        schema: &schema,
        run: &run,
        ropts: &ropts,
        ctx,
    };
    // The database with every migration before the current one applied.
    let mut base = target.clone();
    let mut blocked: Option<String> = None;
    let mut report = TestReport::default();
    for v in &pending {
        let m = set.get(v).expect("pending versions come from the set");
        let mut t = Tested {
            version: v.text.clone(),
            name: m.name.clone(),
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
        let copy = copies.copy(&base)?;
        let outcome = job.check(&copy, v, quiet)?;
        let next = match outcome {
            Checked::Reversible { generated } => {
                t.generated = generated;
                if generated {
                    t.details.push(
                        "reversible with its generated rollback (it has no down section)".into(),
                    );
                }
                Some(copy)
            }
            Checked::UpFails(details) => {
                t.verdict = Verdict::Broken;
                t.details = details;
                blocked = Some(format!(
                    "not tested: {} {} before it fails to apply",
                    v.text, m.name
                ));
                None
            }
            // Nothing ran: the copy is "N applied", as the next step needs.
            Checked::Irreversible(details) => {
                t.verdict = Verdict::Irreversible;
                t.details = details;
                Some(copy)
            }
            Checked::Broken(details) => {
                t.verdict = Verdict::Broken;
                t.details = details;
                // The copy holds whatever the broken down left: build "N applied" anew.
                let fresh = copies.copy(&base)?;
                job.apply(&fresh, v, quiet)
                    .map_err(|e| TestError::Run(format!("applying {v} again: {e}")))?;
                Some(fresh)
            }
        };
        emit(quiet, &t);
        report.migrations.push(t);
        if let Some(next) = next {
            base = next;
        }
    }
    copies.close();
    // Newest first, as the report has always been read.
    report.migrations.reverse();
    Ok(report)
}

/// `test` rolls migrations back and forth: on a database with history or objects of
/// its own (without --force), it refuses.
fn refuse_unless_scratch(
    target: &Target,
    schema: &str,
    recorded: usize,
    s: &mut engine::Session,
) -> Result<(), TestError> {
    if recorded > 0 {
        return Err(TestError::Refused(format!(
            "{} already has {recorded} migration(s) recorded in {schema}: `test` rolls migrations back and forth, so it \
             runs on a scratch database — use --ephemeral, or a database made for it (or pass --force)",
            target.redacted,
        )));
    }
    let start = catalog::read_all(&mut s.db, schema)?;
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
    Ok(())
}

fn emit(reporter: &mut dyn Reporter, t: &Tested) {
    reporter.event(&Event::MigrationTested {
        version: &t.version,
        name: &t.name,
        verdict: t.verdict.as_str(),
        details: &t.details,
    });
}

/// The scratch copies of a test run, made and dropped over a connection to the
/// server's maintenance database (a database cannot be copied while anyone, this
/// process included, is connected to it).
struct Copies {
    admin: Db,
    server: Target,
    prefix: String,
    made: Vec<String>,
}

impl Copies {
    fn open(
        target: &Target,
        run: &RunOptions,
        reporter: &mut dyn Reporter,
    ) -> Result<Copies, TestError> {
        let name = target
            .dbname()
            .or(target.user())
            .unwrap_or("postgres")
            .to_string();
        let mut last = None;
        for maintenance in ["postgres", "template1"] {
            let t = target.with_dbname(maintenance);
            match engine::connect(&t, &run.schema, run.connect_retry, reporter) {
                Ok(s) => {
                    // The prefix keeps parallel runs on one server apart.
                    let prefix: String = format!("{name}_pgrt_{}", std::process::id())
                        .chars()
                        .take(48)
                        .collect();
                    return Ok(Copies {
                        admin: s.db,
                        server: target.clone(),
                        prefix,
                        made: Vec::new(),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("two attempts").into())
    }

    /// A new database, a copy of `of`, and a target for it.
    fn copy(&mut self, of: &Target) -> Result<Target, TestError> {
        let template = of.dbname().or(of.user()).unwrap_or("postgres").to_string();
        let name = format!("{}_{}", self.prefix, self.made.len() + 1);
        let sql = format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&name),
            quote_ident(&template)
        );
        self.admin.batch(&sql).map_err(|e| {
            TestError::Run(format!(
                "`test` runs each migration on a copy of the schema before it (CREATE DATABASE … TEMPLATE {template}): {}",
                error_text(&e)
            ))
        })?;
        self.made.push(name.clone());
        Ok(self.server.with_dbname(&name))
    }

    fn close(mut self) {
        self.drop_all();
    }

    fn drop_all(&mut self) {
        for name in self.made.drain(..) {
            let _ = self.admin.batch(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&name)
            ));
        }
    }
}

impl Drop for Copies {
    /// An error half-way must not leave scratch databases behind.
    fn drop(&mut self) {
        self.drop_all();
    }
}

/// What one migration's check found.
enum Checked {
    Reversible {
        generated: bool,
    },
    /// The up section fails: nothing newer can be tested.
    UpFails(Vec<String>),
    Irreversible(Vec<String>),
    Broken(Vec<String>),
}

/// What every check shares.
struct Job<'a> {
    set: &'a MigrationSet,
    schema: &'a str,
    run: &'a RunOptions,
    ropts: &'a RollbackOptions,
    ctx: &'a RunContext,
}

impl Job<'_> {
    fn apply(
        &self,
        db: &Target,
        v: &Version,
        reporter: &mut dyn Reporter,
    ) -> Result<(), ApplyError> {
        let mut run = self.run.clone();
        run.plan.target = Some(v.clone());
        engine::apply(db, self.set, &run, self.ctx, reporter)
            .map(|_| ())
            .map_err(|ApplyFailure { error, .. }| error)
    }

    fn snapshot(
        &self,
        db: &Target,
        reporter: &mut dyn Reporter,
    ) -> Result<SchemaSnapshot, TestError> {
        let mut s = engine::connect(db, self.schema, self.run.connect_retry, reporter)?;
        Ok(catalog::read_all(&mut s.db, self.schema)?)
    }

    /// On `db` (everything before `v` applied): up → down → compare with the schema
    /// before up → up → compare with the first up's schema.
    fn check(
        &self,
        db: &Target,
        v: &Version,
        reporter: &mut dyn Reporter,
    ) -> Result<Checked, TestError> {
        let before = self.snapshot(db, reporter)?;
        if let Err(e) = self.apply(db, v, reporter) {
            return Ok(Checked::UpFails(vec![format!("applying it fails: {e}")]));
        }
        let applied = self.snapshot(db, reporter)?;
        let generated = match rollback::rollback(db, self.set, self.ropts, self.ctx, reporter) {
            Ok(r) => r
                .rolled_back
                .first()
                .is_some_and(|d| d.origin == DownOrigin::Generated),
            Err(f) => {
                return match f.error {
                    RollbackError::NoDown { message, .. } => {
                        Ok(Checked::Irreversible(vec![first_line(&message)]))
                    }
                    RollbackError::Down(d) => Ok(Checked::Broken(vec![format!(
                        "the rollback fails: {}",
                        first_line(&d.to_string())
                    )])),
                    other => Err(TestError::Run(format!("the rollback: {other}"))),
                }
            }
        };
        let d = diff(&before, &self.snapshot(db, reporter)?);
        if !d.is_empty() {
            let mut lines = vec![
                "after its rollback the schema differs from before it was applied:".to_string(),
            ];
            lines.extend(d.iter().map(|d| format!("  {d}")));
            return Ok(Checked::Broken(lines));
        }
        if let Err(e) = self.apply(db, v, reporter) {
            return Ok(Checked::Broken(vec![format!(
                "applying it again after its rollback fails: {}",
                first_line(&e.to_string())
            )]));
        }
        let d = diff(&applied, &self.snapshot(db, reporter)?);
        if !d.is_empty() {
            let mut lines =
                vec!["up → down → up leaves a different schema than the first up:".to_string()];
            lines.extend(d.iter().map(|d| format!("  {d}")));
            return Ok(Checked::Broken(lines));
        }
        Ok(Checked::Reversible { generated })
    }
}
