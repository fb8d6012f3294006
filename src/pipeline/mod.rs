//! `pipeline run`: choose the environment from the trigger, check the gates, then run
//! the environment's steps in order, built on `execute`, `plan` and `db`.
//!
//! Gates are checked before anything connects to the database: a run that is refused
//! (exit 3) or that selects no environment (exit 0) never touches it.

use std::time::{Duration, Instant};

use crate::config::{Environment, FailOn, PipelineFile, Step};
use crate::db::tracking::RunContext;
use crate::db::Target;
use crate::engine::{self, ApplyError, RunOptions};
use crate::migration::MigrationSet;
use crate::report::summary::{Failure, RunStatus, RunSummary, StepRow, StepStatus};
use crate::report::{Event, Level, Reporter};

/// Everything a run needs besides the decision.
pub struct Setup<'a> {
    pub file: &'a PipelineFile,
    pub set: &'a MigrationSet,
    /// Run options for the environment (flags > environment variables > YAML > defaults).
    pub opts: RunOptions,
    /// The URL when the environment's variable is unset (`--database-url`, `DATABASE_URL`,
    /// the action's `database-url` input).
    pub fallback_url: Option<String>,
    /// The URL that wins over the environment's variable: `--ephemeral`'s throwaway server.
    pub forced_url: Option<String>,
    pub url_var: &'a dyn Fn(&str) -> Option<String>,
    /// libpq's defaults (`PG*` variables, password file) under the environment's URL.
    pub libpq: &'a crate::db::LibpqEnv,
    pub request: &'a Request,
    pub lint_fail_on: FailOn,
    /// Rule choices and the live-context threshold of the `lint` step.
    pub lint: crate::engine::lint::LintSettings,
    pub long_transaction: Duration,
    /// Who and where, for the history rows this run writes.
    pub run: RunContext,
    /// Where the backup-marker step writes a dump unless it names a `dir`, and whether
    /// that is the CI job's workspace (gone with the job unless uploaded).
    pub dump_dir: (std::path::PathBuf, bool),
}

/// Run the chosen environment's steps. Emits `PipelineFinished` at the end.
pub fn run(
    setup: &Setup,
    env_name: &str,
    trigger: &str,
    dry_run: bool,
    reporter: &mut dyn Reporter,
) -> RunSummary {
    let env = setup
        .file
        .environment(env_name)
        .expect("decide() checked the name");
    let mut summary = RunSummary::early(RunStatus::Success, trigger.to_string(), String::new());
    summary.environment = Some(env_name.to_string());
    summary.dry_run = dry_run;
    let url = setup.forced_url.clone().or_else(|| {
        (setup.url_var)(&env.database_url_env)
            .filter(|u| !u.trim().is_empty())
            .or_else(|| setup.fallback_url.clone())
    });
    let Some(url) = url else {
        summary.status = RunStatus::ConfigError;
        summary.message = format!(
            "environment {env_name}: the variable {} is not set; pass the database URL from a secret \
             (env: {}: ${{{{ secrets.{} }}}})",
            env.database_url_env, env.database_url_env, env.database_url_env
        );
        summary.failure = Some(Failure {
            version: None,
            location: None,
            error: summary.message.clone(),
        });
        reporter.event(&Event::Diagnostic {
            level: Level::Error,
            location: None,
            message: &summary.message,
        });
        reporter.event(&Event::PipelineFinished { summary: &summary });
        return summary;
    };
    let parsed = match &setup.forced_url {
        Some(_) => Target::parse(&url),
        None => Target::parse_with(&url, setup.libpq),
    };
    let target = match parsed {
        Ok(t) => t,
        Err(e) => {
            summary.status = RunStatus::ConfigError;
            summary.message = format!("environment {env_name} ({}): {e}", env.database_url_env);
            summary.failure = Some(Failure {
                version: None,
                location: None,
                error: summary.message.clone(),
            });
            reporter.event(&Event::Diagnostic {
                level: Level::Error,
                location: None,
                message: &summary.message,
            });
            reporter.event(&Event::PipelineFinished { summary: &summary });
            return summary;
        }
    };
    for s in &target.secrets {
        reporter.event(&Event::Secret { value: s });
    }
    let mut r = Runner {
        setup,
        session: SessionSlot::default(),
        env_name,
        env,
        url,
        target,
        dry_run,
        ctx: setup.run.clone(),
        summary,
        applied_by_run: Vec::new(),
        rehearsed: Vec::new(),
        not_rehearsed: Vec::new(),
        shadow_only: Vec::new(),
        failed: None,
        rehearsal_done: false,
        rehearsal_failed: None,
        reporter,
    };
    r.run_steps();
    r.finish()
}

/// The run's work session, lent to one step at a time (see [`Runner::connect`]), and
/// since when it is idle.
type SessionSlot = std::rc::Rc<std::cell::RefCell<Option<(engine::Session, Instant)>>>;

/// Whether a session handed back by an earlier step can serve the next one. One idle for
/// more than a moment (a review delay) may have been ended by the server's idle timeout
/// or a network cut-off without the client noticing yet: it is asked first.
fn usable(s: &mut engine::Session, idle: Duration) -> bool {
    !s.db.is_closed() && (idle < Duration::from_millis(500) || s.db.batch("SELECT 1").is_ok())
}

/// A step's use of the run's work session; dropping it hands the session back.
struct Lease {
    session: Option<engine::Session>,
    home: SessionSlot,
}

impl std::ops::Deref for Lease {
    type Target = engine::Session;
    fn deref(&self) -> &engine::Session {
        self.session
            .as_ref()
            .expect("a lease holds its session until dropped")
    }
}

impl std::ops::DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut engine::Session {
        self.session
            .as_mut()
            .expect("a lease holds its session until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(mut s) = self.session.take() {
            // A step's lock guard is gone with the step: the next step must not check a
            // lock it does not hold (it takes its own).
            s.held = None;
            *self.home.borrow_mut() = Some((s, Instant::now()));
        }
    }
}

struct Runner<'a, 'r> {
    setup: &'a Setup<'a>,
    /// The work session the steps share.
    session: SessionSlot,
    env_name: &'a str,
    env: &'a Environment,
    url: String,
    target: Target,
    dry_run: bool,
    ctx: RunContext,
    summary: RunSummary,
    /// (version, name, duration ms) applied by this run.
    applied_by_run: Vec<(String, u64)>,
    rehearsed: Vec<(String, u64)>,
    not_rehearsed: Vec<String>,
    /// Rehearsed on the shadow only (the dry-run step kept them off the target).
    shadow_only: Vec<String>,
    /// (version, ran outside a transaction).
    failed: Option<(String, bool)>,
    rehearsal_done: bool,
    /// The migration that failed its rehearsal.
    rehearsal_failed: Option<String>,
    reporter: &'r mut dyn Reporter,
}

/// A step's result: a one-line detail for the log and the summary, or why it failed.
type StepResult = Result<String, StepError>;

/// Why a step failed. The database's own errors keep their type (and with it SQLSTATE,
/// detail, hint and position) up to the summary; checks that found a problem say what
/// and how to fix it.
#[derive(Debug, thiserror::Error)]
enum StepError {
    /// Connecting, the lock, a migration (with its file:line), a rehearsal.
    #[error(transparent)]
    Apply(Box<ApplyError>),
    /// Reading or writing the tracking schema.
    #[error(transparent)]
    Tracking(Box<crate::db::tracking::TrackingError>),
    /// A query of the step's own (health facts, lock checks) failed on the server.
    #[error("{0}")]
    Server(Box<crate::db::conn::ServerError>),
    /// The step ran and found a problem: a failed check, a gate, a missing setting.
    #[error("{0}")]
    Check(String),
    /// A migration failed; the executor already reported it at its file and line.
    #[error("{0}")]
    Migration(String),
    /// A check failed and the step already reported each problem (at its file and line
    /// where it has one: a failed migration's verify script, each failed smoke check).
    #[error("{0}")]
    Reported(String),
    /// Ctrl-C or a cancelled job stopped the step before anything was applied.
    #[error("cancelled during the review delay: nothing was applied")]
    Cancelled,
}

impl StepError {
    /// Whether the failure was already reported as an event of its own (a migration's
    /// `SectionFailed`, with its file and line).
    fn reported(&self) -> bool {
        match self {
            StepError::Migration(_) | StepError::Reported(_) => true,
            StepError::Apply(e) => matches!(**e, ApplyError::Migration(_)),
            _ => false,
        }
    }
}

impl From<String> for StepError {
    fn from(message: String) -> StepError {
        StepError::Check(message)
    }
}

impl From<&str> for StepError {
    fn from(message: &str) -> StepError {
        StepError::Check(message.to_string())
    }
}

impl From<engine::ApplyFailure> for StepError {
    fn from(f: engine::ApplyFailure) -> StepError {
        StepError::Apply(Box::new(f.error))
    }
}

impl From<ApplyError> for StepError {
    fn from(e: ApplyError) -> StepError {
        StepError::Apply(Box::new(e))
    }
}

impl From<crate::db::tracking::TrackingError> for StepError {
    fn from(e: crate::db::tracking::TrackingError) -> StepError {
        StepError::Tracking(Box::new(e))
    }
}

impl From<tokio_postgres::Error> for StepError {
    fn from(e: tokio_postgres::Error) -> StepError {
        StepError::Server(Box::new(crate::db::conn::ServerError::from_error(&e)))
    }
}

impl Runner<'_, '_> {
    fn run_steps(&mut self) {
        let steps = run_order(&self.env.steps);
        if steps != self.env.steps {
            self.reporter.event(&Event::Info {
                message: "backup-marker runs after the review delay, right before apply: a marker taken before the delay would not hold the writes made during it",
            });
        }
        let total = steps.len();
        let mut stopped = false;
        for (index, step) in steps.iter().enumerate() {
            let key = step.key();
            self.reporter.event(&Event::StepStarted {
                step: key,
                index,
                total,
            });
            let started = Instant::now();
            let skip = if stopped {
                Some("skipped: an earlier step failed".to_string())
            } else {
                self.skipped_in_dry_run(step)
            };
            let (status, detail) = match skip {
                Some(why) => (StepStatus::Skipped, why),
                None => match self.step(step) {
                    Ok(d) => (StepStatus::Passed, d),
                    Err(e) => {
                        // Whatever state the failure left the session in (an aborted
                        // transaction, settings), no later step inherits it.
                        self.session.borrow_mut().take();
                        // A failed migration was already reported, at its line, by the
                        // executor: saying it again would be a second annotation.
                        if !e.reported() {
                            self.reporter.event(&Event::Diagnostic {
                                level: Level::Error,
                                location: None,
                                message: &format!("step {key} failed: {e}"),
                            });
                        }
                        stopped = true;
                        if self.summary.failure.is_none() {
                            self.summary.failure = Some(Failure {
                                version: None,
                                location: None,
                                error: e.to_string(),
                            });
                        }
                        (StepStatus::Failed, e.to_string())
                    }
                },
            };
            let duration = started.elapsed();
            self.reporter.event(&Event::StepFinished {
                step: key,
                status,
                duration,
                detail: &detail,
            });
            self.summary.steps.push(StepRow {
                name: key.to_string(),
                status,
                duration_ms: duration.as_millis() as u64,
                detail,
            });
        }
    }

    /// In a dry run, the steps that write are skipped; `apply` becomes a rehearsal when
    /// no `dry-run` step ran.
    fn skipped_in_dry_run(&self, step: &Step) -> Option<String> {
        if !self.dry_run {
            return None;
        }
        match step {
            Step::BackupMarker(b) if b.max_age.is_none() => {
                Some("dry run: writes a marker row".into())
            }
            Step::ReviewDelay(_) => Some("dry run: nothing will be applied".into()),
            Step::Apply if self.rehearsal_done => {
                Some("dry run: rehearsed by the dry-run step instead".into())
            }
            Step::Verify => Some("dry run: nothing was applied".into()),
            Step::SmokeTest(_)
                if !self.rehearsed.is_empty()
                    || !self.not_rehearsed.is_empty()
                    || !self.shadow_only.is_empty() =>
            {
                Some(
                    "dry run: the checks need the migrated schema, which the rehearsal rolled back"
                        .into(),
                )
            }
            _ => None,
        }
    }

    fn step(&mut self, step: &Step) -> StepResult {
        match step {
            Step::Health => self.health(),
            Step::Validate => self.validate(),
            Step::Lint => self.lint(),
            Step::BackupMarker(b) => self.backup_marker(b),
            Step::DryRun => self.rehearse(),
            Step::ReviewDelay(d) => {
                self.review_delay(self.setup.request.review_delay.unwrap_or(*d))
            }
            Step::Apply if self.dry_run => self.rehearse(),
            Step::Apply => self.apply(),
            Step::Verify => self.verify(),
            Step::SmokeTest(checks) => self.smoke_test(checks),
            Step::Rollback(r) => self.rollback_step(r),
            Step::Drift(d) => self.drift_step(d),
        }
    }

    /// The run's work session: connected by the first step that needs the database and
    /// lent to each step after it, so a run costs one connection (plus the lock's
    /// session) instead of one per step — over TLS to a distant database each is a
    /// handshake. A session that dropped is replaced.
    fn connect(&mut self) -> Result<Lease, StepError> {
        let cached = self.session.borrow_mut().take();
        let reused = cached.and_then(|(mut s, since)| usable(&mut s, since.elapsed()).then_some(s));
        let s = match reused {
            Some(s) => s,
            None => engine::connect(
                &self.target,
                &self.setup.opts.schema,
                self.setup.opts.connect_retry,
                self.reporter,
            )
            .map_err(|e| StepError::Apply(Box::new(e.into())))?,
        };
        Ok(Lease {
            session: Some(s),
            home: self.session.clone(),
        })
    }

    fn diag(&mut self, level: Level, message: &str) {
        self.reporter.event(&Event::Diagnostic {
            level,
            location: None,
            message,
        });
    }
}

/// The steps in the order they run: a `backup-marker` step that writes a marker runs
/// right before the next `apply` when a `review-delay` comes between them — restoring to
/// a marker taken before the delay would lose every write made during it.
pub fn run_order(steps: &[Step]) -> Vec<Step> {
    let delay_before_apply = |rest: &[Step]| {
        rest.iter()
            .take_while(|s| !matches!(s, Step::Apply))
            .any(|s| matches!(s, Step::ReviewDelay(_)))
            && rest.iter().any(|s| matches!(s, Step::Apply))
    };
    let mut out = Vec::with_capacity(steps.len());
    let mut held = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        match s {
            Step::BackupMarker(b) if b.max_age.is_none() && delay_before_apply(&steps[i + 1..]) => {
                held.push(s.clone())
            }
            Step::Apply => {
                out.append(&mut held);
                out.push(s.clone());
            }
            _ => out.push(s.clone()),
        }
    }
    out.extend(held);
    out
}

mod steps;
mod summary;
mod trigger;

pub use trigger::{decide, Decision, GitHubEvent, Request};

#[cfg(test)]
mod tests;
