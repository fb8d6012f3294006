//! `pipeline run`: choose the environment from the trigger, check the gates, then run
//! the environment's steps in order, built on `execute`, `plan` and `db`.
//!
//! Gates are checked before anything connects to the database: a run that is refused
//! (exit 3) or that selects no environment (exit 0) never touches it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::{
    pattern_matches, BackupOptions, Environment, FailOn, PipelineFile, SmokeCheck, Step,
};
use crate::db::health;
use crate::db::tracking::RunContext;
use crate::db::Target;
use crate::execute::{self, ApplyError, ApplyFailure, RunOptions};
use crate::migration::MigrationSet;
use crate::plan::{self, State};
use crate::report::run::{FindingRow, MigrationRow, RunStatus, RunSummary, StepRow, StepStatus};
use crate::report::{Event, Level, Reporter};

/// What the operator asked for on the command line (or through action inputs).
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `--env NAME`.
    pub env: Option<String>,
    /// `--confirm PHRASE`.
    pub confirm: Option<String>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--review-delay DURATION`: replaces every `review-delay` step's duration.
    pub review_delay: Option<Duration>,
}

/// The GitHub context of the run (the CLI reads it from the runner's environment).
#[derive(Debug, Clone, Default)]
pub struct GitHubEvent {
    /// `GITHUB_EVENT_NAME`; None outside GitHub Actions.
    pub name: Option<String>,
    /// `GITHUB_REF`: `refs/heads/…` or `refs/tags/…`.
    pub git_ref: Option<String>,
    /// The event payload (`GITHUB_EVENT_PATH`), `Null` when absent.
    pub payload: serde_json::Value,
    /// Action inputs: `INPUT_ENVIRONMENT`, `INPUT_CONFIRM`, `INPUT_DRY-RUN` (not trimmed).
    pub input_environment: Option<String>,
    pub input_confirm: Option<String>,
    pub input_dry_run: Option<String>,
}

impl GitHubEvent {
    /// A `workflow_dispatch` input from the payload (values are strings there).
    fn dispatch_input(&self, name: &str) -> Option<String> {
        match self.payload.get("inputs")?.get(name)? {
            serde_json::Value::String(s) if s.is_empty() => None,
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            v => Some(v.to_string()),
        }
    }
}

/// The outcome of environment selection and gates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Run {
        env: String,
        trigger: String,
        dry_run: bool,
    },
    /// Nothing to do for this event (exit 0, with a notice saying why).
    Skip { trigger: String, reason: String },
    /// A safety gate said no (exit 3, nothing touched).
    Refuse { trigger: String, reason: String },
    /// The request itself is wrong (exit 2).
    Usage(String),
}

/// `vMAJOR.MINOR.PATCH` with optional `-prerelease` and `+build`, as semver 2.0.0
/// defines them (no leading zeros, exactly three numbers).
pub fn is_semver_tag(tag: &str) -> bool {
    tag.strip_prefix('v')
        .is_some_and(|rest| semver::Version::parse(rest).is_ok())
}

/// Whether a tag pattern asks for a semantic version (`v*.*.*`).
fn semver_pattern(p: &str) -> bool {
    p.contains("*.*.*")
}

fn parse_bool(what: &str, v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        other => Err(format!("{what} is `{other}`: use true or false")),
    }
}

/// Choose the environment and check the gates. Pure: no I/O.
pub fn decide(file: &PipelineFile, req: &Request, gh: &GitHubEvent) -> Decision {
    let flag_env = req.env.clone().or_else(|| gh.input_environment.clone());
    if let Some(e) = &flag_env {
        if file.environment(e).is_none() {
            return Decision::Usage(unknown_env(file, e));
        }
    }
    let input_dry = match gh
        .input_dry_run
        .as_deref()
        .map(|v| parse_bool("the dry-run input", v))
        .transpose()
    {
        Ok(v) => v,
        Err(e) => return Decision::Usage(e),
    };
    match gh.name.as_deref() {
        None => {
            let Some(env) = flag_env else {
                return Decision::Usage(format!(
                    "which environment? Pass --env NAME (one of: {}); in GitHub Actions the event chooses",
                    file.names().join(", ")
                ));
            };
            let trigger = format!("--env {env}");
            let e = file.environment(&env).expect("checked");
            if let Some(phrase) = e.confirm_phrase(&env) {
                if req.confirm.as_deref() != Some(phrase.as_str()) {
                    return Decision::Refuse {
                        trigger,
                        reason: format!(
                            "environment {env} needs its confirmation phrase: pass --confirm {phrase}"
                        ),
                    };
                }
            }
            Decision::Run {
                env,
                trigger,
                dry_run: req.dry_run || input_dry == Some(true),
            }
        }
        Some("push") => decide_push(file, req, gh, flag_env, input_dry),
        Some("workflow_dispatch") => decide_dispatch(file, req, gh, flag_env, input_dry),
        Some(other) => {
            let trigger = format!("{other} event");
            match flag_env {
                None => Decision::Skip {
                    trigger,
                    reason: format!(
                        "the `{other}` event selects no environment: environments are chosen by a push (on.branches, on.tags) or by workflow_dispatch"
                    ),
                },
                Some(env) => Decision::Refuse {
                    trigger,
                    reason: format!(
                        "environment {env} runs only on a push it lists in on.branches/on.tags or on workflow_dispatch, not on `{other}`"
                    ),
                },
            }
        }
    }
}

fn unknown_env(file: &PipelineFile, e: &str) -> String {
    let names = file.names();
    let hint = crate::config::did_you_mean(e, &names)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    format!(
        "no environment `{e}` in the pipeline file{hint}; environments: {}",
        names.join(", ")
    )
}

fn decide_push(
    file: &PipelineFile,
    req: &Request,
    gh: &GitHubEvent,
    flag_env: Option<String>,
    input_dry: Option<bool>,
) -> Decision {
    let git_ref = gh.git_ref.clone().unwrap_or_default();
    let dry_run = req.dry_run || input_dry == Some(true);
    let deleted = gh.payload.get("deleted").and_then(|v| v.as_bool()) == Some(true);
    let (kind, name) = if let Some(b) = git_ref.strip_prefix("refs/heads/") {
        ("branch", b.to_string())
    } else if let Some(t) = git_ref.strip_prefix("refs/tags/") {
        ("tag", t.to_string())
    } else {
        return Decision::Skip {
            trigger: format!("push of {git_ref}"),
            reason: format!("the pushed ref `{git_ref}` is neither a branch nor a tag"),
        };
    };
    let trigger = format!("push to {kind} {name}");
    if deleted {
        return Decision::Skip {
            trigger,
            reason: format!("the {kind} {name} was deleted: nothing to migrate"),
        };
    }
    // A version-like tag that is not a valid semantic version (v1.2, v1.2.3.4, v01.2.3)
    // is refused when an environment deploys on semantic-version tags: it is almost
    // certainly a release pushed with a typo, not an unrelated tag.
    if kind == "tag"
        && !is_semver_tag(&name)
        && name
            .strip_prefix('v')
            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    {
        if let Some((n, p)) = file.environments.iter().find_map(|(n, e)| {
            e.on.tags
                .iter()
                .find(|p| semver_pattern(p) && name.starts_with(p.split('*').next().unwrap_or("")))
                .map(|p| (n, p))
        }) {
            return Decision::Refuse {
                trigger,
                reason: format!(
                    "tag {name} looks like a release for environment {n} (`{p}`) but is not a semantic version \
                     (vMAJOR.MINOR.PATCH, no leading zeros, e.g. v1.2.3): refusing to migrate {n}"
                ),
            };
        }
    }
    let mut matched: Vec<(&str, &Environment)> = Vec::new();
    for (n, e) in &file.environments {
        let patterns = if kind == "branch" {
            &e.on.branches
        } else {
            &e.on.tags
        };
        if let Some(p) = patterns.iter().find(|p| pattern_matches(p, &name)) {
            if kind == "tag" && semver_pattern(p) && !is_semver_tag(&name) {
                return Decision::Refuse {
                    trigger,
                    reason: format!(
                        "tag {name} matches `{p}` for environment {n} but is not a semantic version \
                         (vMAJOR.MINOR.PATCH, no leading zeros, e.g. v1.2.3): refusing to migrate {n}"
                    ),
                };
            }
            matched.push((n, e));
        }
    }
    match (flag_env, matched.as_slice()) {
        (Some(env), _) => {
            if matched.iter().any(|(n, _)| *n == env) {
                Decision::Run {
                    env,
                    trigger,
                    dry_run,
                }
            } else {
                Decision::Refuse {
                    trigger,
                    reason: format!(
                        "environment {env} does not run on a push to {kind} {name} (its on.{} do not match): \
                         refusing to migrate it from an unexpected ref",
                        if kind == "branch" { "branches" } else { "tags" }
                    ),
                }
            }
        }
        (None, []) => Decision::Skip {
            trigger,
            reason: format!(
                "no environment's on.{} matches {kind} {name}",
                if kind == "branch" { "branches" } else { "tags" }
            ),
        },
        (None, [(n, _)]) => Decision::Run {
            env: n.to_string(),
            trigger,
            dry_run,
        },
        (None, many) => Decision::Usage(format!(
            "the push to {kind} {name} matches several environments ({}): pass --env to choose",
            many.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn decide_dispatch(
    file: &PipelineFile,
    req: &Request,
    gh: &GitHubEvent,
    flag_env: Option<String>,
    input_dry: Option<bool>,
) -> Decision {
    let chosen = gh.dispatch_input("environment");
    let trigger = format!(
        "workflow_dispatch{}",
        gh.payload
            .get("sender")
            .and_then(|s| s.get("login"))
            .and_then(|l| l.as_str())
            .map(|l| format!(" by {l}"))
            .unwrap_or_default()
    );
    let env = match (chosen, flag_env) {
        (Some(a), Some(b)) if a != b => {
            return Decision::Refuse {
                trigger,
                reason: format!(
                "the dispatch chose environment {a} but the action was given {b}: they must agree"
            ),
            }
        }
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => {
            return Decision::Skip {
                trigger,
                reason: "the dispatch chose no environment (input `environment` is empty)".into(),
            }
        }
    };
    let Some(e) = file.environment(&env) else {
        return Decision::Usage(unknown_env(file, &env));
    };
    let Some(phrase) = e.confirm_phrase(&env) else {
        return Decision::Refuse {
            trigger,
            reason: format!(
                "environment {env} does not accept manual runs: add `on: {{ dispatch: {{ confirm: PHRASE }} }}` to it"
            ),
        };
    };
    let typed = gh
        .dispatch_input("confirm")
        .or_else(|| gh.input_confirm.clone())
        .or_else(|| req.confirm.clone());
    match typed {
        Some(t) if t == phrase => {}
        Some(_) => {
            return Decision::Refuse {
                trigger,
                reason: format!(
                    "the confirmation typed for {env} does not match its phrase exactly (expected `{phrase}`)"
                ),
            }
        }
        None => {
            return Decision::Refuse {
                trigger,
                reason: format!("a manual run of {env} needs the confirmation phrase `{phrase}` in the `confirm` input"),
            }
        }
    }
    let dry_run = match gh.dispatch_input("dry_run") {
        Some(v) => match parse_bool("the dry_run input", &v) {
            Ok(b) => b,
            Err(e) => return Decision::Usage(e),
        },
        // A manual run writes only when the operator turns dry_run off.
        None => input_dry.unwrap_or(true),
    } || req.dry_run;
    Decision::Run {
        env,
        trigger,
        dry_run,
    }
}

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
    pub lint: crate::lint_run::LintSettings,
    pub long_transaction: Duration,
    /// Who and where, for the history rows this run writes.
    pub run: RunContext,
    /// Where the backup-marker step writes a dump.
    pub dump_dir: std::path::PathBuf,
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
        summary.status = RunStatus::Failed;
        summary.message = format!(
            "environment {env_name}: the variable {} is not set; pass the database URL from a secret \
             (env: {}: ${{{{ secrets.{} }}}})",
            env.database_url_env, env.database_url_env, env.database_url_env
        );
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
            summary.status = RunStatus::Failed;
            summary.message = format!("environment {env_name} ({}): {e}", env.database_url_env);
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
        failed: None,
        rehearsal_done: false,
        rehearsal_failed: None,
        reporter,
    };
    r.run_steps();
    r.finish()
}

struct Runner<'a, 'r> {
    setup: &'a Setup<'a>,
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
    /// (version, ran outside a transaction).
    failed: Option<(String, bool)>,
    rehearsal_done: bool,
    /// The migration that failed its rehearsal.
    rehearsal_failed: Option<String>,
    reporter: &'r mut dyn Reporter,
}

/// A step's result: a one-line detail, or why it failed.
type StepResult = Result<String, String>;

impl Runner<'_, '_> {
    fn run_steps(&mut self) {
        let steps = self.env.steps.clone();
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
                        self.reporter.event(&Event::Diagnostic {
                            level: Level::Error,
                            location: None,
                            message: &format!("step {key} failed: {e}"),
                        });
                        stopped = true;
                        (StepStatus::Failed, e)
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
            Step::SmokeTest(_) if !self.rehearsed.is_empty() || !self.not_rehearsed.is_empty() => {
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

    fn connect(&mut self) -> Result<execute::Session, String> {
        execute::connect(
            &self.target,
            &self.setup.opts.schema,
            self.setup.opts.connect_retry,
            self.reporter,
        )
        .map_err(|e| e.to_string())
    }

    fn diag(&mut self, level: Level, message: &str) {
        self.reporter.event(&Event::Diagnostic {
            level,
            location: None,
            message,
        });
    }

    fn health(&mut self) -> StepResult {
        let mut s = self.connect()?;
        let facts = health::server_facts(&mut s.db).map_err(|e| crate::db::conn::error_text(&e))?;
        let tls = facts
            .tls
            .as_deref()
            .map_or("unencrypted".to_string(), |v| format!("TLS {v}"));
        self.reporter.event(&Event::Info {
            message: &format!("server: PostgreSQL {} ({tls})", facts.version),
        });
        if facts.tls.is_none() && !matches!(self.target.sslmode, crate::db::SslMode::Disable) {
            self.diag(
                Level::Warning,
                "the connection is not encrypted: the server does not offer TLS (use sslmode=require to insist)",
            );
        }
        if facts.in_recovery {
            return Err("the server is a replica in recovery (pg_is_in_recovery()): point the URL at the primary".into());
        }
        if facts.read_only {
            return Err("the session is read-only (default_transaction_read_only = on): migrations cannot be applied".into());
        }
        let state = s.tracking.read(&mut s.db).map_err(|e| e.to_string())?;
        let failed: Vec<String> = state
            .rows
            .iter()
            .filter(|r| {
                matches!(
                    r.status,
                    crate::db::tracking::RowStatus::Failed
                        | crate::db::tracking::RowStatus::Running
                )
            })
            .map(|r| format!("{} {} ({:?})", r.version, r.name, r.status).to_lowercase())
            .collect();
        if !failed.is_empty() {
            return Err(format!(
                "tracking rows not completed: {}; fix the cause and run `pgrollout repair`",
                failed.join(", ")
            ));
        }
        let long = health::long_transactions(&mut s.db, self.setup.long_transaction)
            .map_err(|e| crate::db::conn::error_text(&e))?;
        for t in &long {
            self.diag(
                Level::Warning,
                &format!(
                    "transaction open for {} (pid {}, user {}, application {:?}, {}): it can block migrations that need a lock — {}",
                    crate::report::human_duration(t.age),
                    t.pid,
                    t.user,
                    t.application,
                    t.state,
                    t.query
                ),
            );
        }
        let p = plan::plan(self.setup.set, &state.rows, &self.setup.opts.plan);
        let tables = touched_tables(&p.to_apply);
        let locks =
            health::table_locks(&mut s.db, &tables).map_err(|e| crate::db::conn::error_text(&e))?;
        for l in &locks {
            self.diag(
                Level::Warning,
                &format!(
                    "pid {} ({:?}, transaction {} old) {} {} on {}, which a pending migration touches",
                    l.pid,
                    l.application,
                    crate::report::human_duration(l.age),
                    if l.granted { "holds" } else { "waits for" },
                    l.mode,
                    l.table
                ),
            );
        }
        Ok(format!(
            "PostgreSQL {}, {tls}, primary, writable; {} pending; {} long transaction(s); {} lock(s) on touched tables",
            facts.version,
            p.to_apply.len(),
            long.len(),
            locks.len()
        ))
    }

    fn validate(&mut self) -> StepResult {
        let mut problems = plan::check_files(self.setup.set);
        let mut s = self.connect()?;
        let state = s.tracking.read(&mut s.db).map_err(|e| e.to_string())?;
        let p = plan::plan(self.setup.set, &state.rows, &self.setup.opts.plan);
        problems.extend(p.problems.iter().cloned());
        for pr in &problems {
            self.reporter.event(&Event::Diagnostic {
                level: pr.level,
                location: pr.location.as_ref(),
                message: &pr.message,
            });
        }
        let errors = problems.iter().filter(|p| p.level == Level::Error).count();
        if errors > 0 {
            return Err(format!("{errors} problem(s) in the migrations"));
        }
        Ok(format!(
            "{} file(s) valid, {} pending",
            self.setup.set.migrations.len(),
            p.to_apply.len()
        ))
    }

    fn rehearse(&mut self) -> StepResult {
        let mut opts = self.setup.opts.clone();
        opts.dry_run = true;
        let result = execute::apply(
            &self.target,
            self.setup.set,
            &opts,
            &self.ctx,
            self.reporter,
        );
        self.rehearsal_done = true;
        match result {
            Ok(report) => {
                self.rehearsed = report
                    .rehearsed
                    .iter()
                    .map(|a| (a.version.clone(), a.duration_ms))
                    .collect();
                self.not_rehearsed = report
                    .not_rehearsed
                    .iter()
                    .map(|a| a.version.clone())
                    .collect();
                Ok(format!(
                    "{} rehearsed and rolled back{}",
                    report.rehearsed.len(),
                    if report.not_rehearsed.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ", {} not rehearsable (transaction:false)",
                            report.not_rehearsed.len()
                        )
                    }
                ))
            }
            Err(f) => Err(self.failure_text(f, true)),
        }
    }

    fn failure_text(&mut self, f: ApplyFailure, rehearsal: bool) -> String {
        match f.error {
            ApplyError::Migration(me) => {
                if rehearsal {
                    self.rehearsal_failed = Some(me.version.clone());
                } else {
                    self.failed = Some((me.version.clone(), me.non_transactional));
                }
                format!(
                    "migration {} {} failed{}: {}",
                    me.version,
                    me.name,
                    me.location
                        .as_ref()
                        .map(|l| format!(" at {l}"))
                        .unwrap_or_default(),
                    me.server.message
                )
            }
            other => other.to_string(),
        }
    }

    fn apply(&mut self) -> StepResult {
        let mut opts = self.setup.opts.clone();
        opts.dry_run = false;
        let result = execute::apply(
            &self.target,
            self.setup.set,
            &opts,
            &self.ctx,
            self.reporter,
        );
        let (report, err) = match result {
            Ok(r) => (r, None),
            Err(f) => {
                let report = f.report.clone();
                (report, Some(self.failure_text(f, false)))
            }
        };
        self.applied_by_run = report
            .applied
            .iter()
            .map(|a| (a.version.clone(), a.duration_ms))
            .collect();
        match err {
            Some(e) => Err(e),
            None if report.applied.is_empty() => Ok("nothing pending".into()),
            None => Ok(format!("{} migration(s) applied", report.applied.len())),
        }
    }

    fn verify(&mut self) -> StepResult {
        let mut s = self.connect()?;
        let state = s.tracking.read(&mut s.db).map_err(|e| e.to_string())?;
        let p = plan::plan(self.setup.set, &state.rows, &self.setup.opts.plan);
        let mut bad = Vec::new();
        for e in &p.entries {
            match e.state {
                State::Modified => bad.push(format!(
                    "{} {}: checksum differs from the applied file",
                    e.version, e.name
                )),
                State::Failed | State::Running => {
                    bad.push(format!("{} {}: {:?}", e.version, e.name, e.state).to_lowercase())
                }
                _ => {}
            }
        }
        // After a `rollback` step, the versions it rolled back are pending on purpose.
        let unexpected: Vec<&str> = p
            .to_apply
            .iter()
            .map(|m| m.version.text.as_str())
            .filter(|v| !self.rolled_back_by_run(v))
            .collect();
        if !unexpected.is_empty() {
            bad.push(format!(
                "{} still pending: {}",
                unexpected.len(),
                unexpected.join(", ")
            ));
        }
        for b in &bad {
            self.diag(Level::Error, &format!("verify: {b}"));
        }
        if bad.is_empty() {
            Ok(self.verify_detail(state.rows.len(), p.to_apply.len()))
        } else {
            Err(bad.join("; "))
        }
    }

    fn review_delay(&mut self, delay: Duration) -> StepResult {
        let mut s = self.connect()?;
        let state = s.tracking.read(&mut s.db).map_err(|e| e.to_string())?;
        drop(s);
        let p = plan::plan(self.setup.set, &state.rows, &self.setup.opts.plan);
        let list: Vec<(String, String)> = p
            .to_apply
            .iter()
            .map(|m| (m.version.text.clone(), m.name.clone()))
            .collect();
        if list.is_empty() {
            return Ok("nothing pending: no delay".into());
        }
        self.reporter.event(&Event::PlanReady {
            pending: &list,
            dry_run: false,
        });
        let end = Instant::now() + delay;
        let mut next_report = Instant::now();
        loop {
            if crate::cancelled() {
                self.summary.status = RunStatus::Cancelled;
                return Err("cancelled during the review delay: nothing was applied".into());
            }
            let now = Instant::now();
            if now >= end {
                break;
            }
            if now >= next_report {
                let remaining = end - now;
                self.reporter.event(&Event::Countdown {
                    remaining: Duration::from_secs(remaining.as_secs_f64().ceil() as u64),
                });
                let step = if remaining > Duration::from_secs(10) {
                    10
                } else {
                    1
                };
                next_report = now + Duration::from_secs(step).min(remaining);
            }
            crate::wait_cancelled(next_report.min(end) - now);
        }
        Ok(format!(
            "waited {} before applying {} migration(s)",
            crate::report::human_duration(delay),
            list.len()
        ))
    }

    fn backup_marker(&mut self, b: &BackupOptions) -> StepResult {
        let schema = self.setup.opts.schema.clone();
        if let Some(max_age) = b.max_age {
            let mut s = self.connect()?;
            return match health::recent_backup_marker(&mut s.db, &schema, max_age)
                .map_err(|e| e.to_string())?
            {
                Some(m) => {
                    let d = format!("backup marker #{} from {} (younger than {})", m.id, m.created_at, crate::report::human_duration(max_age));
                    self.summary.backup = Some(m);
                    Ok(d)
                }
                None => Err(format!(
                    "no backup marker younger than {}: take a backup and record it (`backup-marker` step, or `pgrollout backup`) first",
                    crate::report::human_duration(max_age)
                )),
            };
        }
        let dump = if b.dump {
            Some(crate::backup::dump(
                &self.target,
                &self.setup.dump_dir,
                self.env_name,
                self.reporter,
            )?)
        } else {
            None
        };
        let label = b
            .label
            .clone()
            .unwrap_or_else(|| format!("pipeline {}", self.env_name));
        let m = crate::backup::record(
            &self.target,
            &self.setup.opts,
            &self.ctx,
            &label,
            dump.as_ref(),
            self.reporter,
        )?;
        let d = crate::backup::describe(&m);
        self.summary.backup = Some(m);
        Ok(d)
    }

    fn smoke_test(&mut self, checks: &[SmokeCheck]) -> StepResult {
        let mut failures = Vec::new();
        let mut session = None;
        for c in checks {
            let timeout = c.timeout.unwrap_or(Duration::from_secs(30));
            let result = if let Some(sql) = &c.sql {
                if session.is_none() {
                    session = Some(self.connect()?);
                }
                let s = session.as_mut().expect("connected");
                match health::single_value(&mut s.db, sql, timeout) {
                    Ok(v) => check_value(v.as_deref(), c.expect.as_deref()),
                    Err(health::SingleValueError::Server(e)) => Err(match e.line_col_in(sql) {
                        Some((line, col)) => {
                            format!("at line {line}, column {col} of its sql: {e}")
                        }
                        None => e.to_string(),
                    }),
                    Err(e) => Err(e.to_string()),
                }
            } else if let Some(command) = &c.command {
                run_command(command, timeout, &self.url)
            } else {
                Err("no sql or command".into())
            };
            match result {
                Ok(()) => self.reporter.event(&Event::Info {
                    message: &format!("✓ {}", c.name),
                }),
                Err(e) => {
                    self.diag(
                        Level::Error,
                        &format!("smoke test `{}` failed: {e}", c.name),
                    );
                    failures.push(c.name.clone());
                }
            }
        }
        if failures.is_empty() {
            Ok(format!("{} check(s) passed", checks.len()))
        } else {
            Err(format!(
                "{} of {} check(s) failed: {}",
                failures.len(),
                checks.len(),
                failures.join(", ")
            ))
        }
    }

    /// The summary's migration table, pending list and rollback instructions.
    fn finish(mut self) -> RunSummary {
        let rows = self
            .connect()
            .ok()
            .and_then(|mut s| s.tracking.read(&mut s.db).ok())
            .map(|st| st.rows);
        let pending: Vec<String> = match &rows {
            Some(rows) => plan::plan(self.setup.set, rows, &self.setup.opts.plan)
                .to_apply
                .iter()
                .map(|m| m.version.text.clone())
                .collect(),
            None => Vec::new(),
        };
        let applied_before: Vec<String> =
            rows.iter().flatten().map(|r| r.version.clone()).collect();
        for m in &self.setup.set.migrations {
            let v = &m.version.text;
            let find = |l: &[(String, u64)]| l.iter().find(|(x, _)| x == v).map(|(_, d)| *d);
            let (status, duration) = if let Some(d) = find(&self.applied_by_run) {
                ("applied", Some(d))
            } else if let Some(st) = self.rollback_status(v) {
                (st, None)
            } else if self.failed.as_ref().is_some_and(|(f, _)| f == v) {
                ("failed", None)
            } else if self.rehearsal_failed.as_ref() == Some(v) {
                ("failed in rehearsal", None)
            } else if let Some(d) = find(&self.rehearsed) {
                ("rehearsed", Some(d))
            } else if self.not_rehearsed.contains(v) {
                ("not rehearsable", None)
            } else if pending.contains(v) {
                ("pending", None)
            } else if applied_before.contains(v) {
                ("already applied", None)
            } else {
                ("pending", None)
            };
            self.summary.migrations.push(MigrationRow {
                version: v.clone(),
                name: m.name.clone(),
                status: status.into(),
                duration_ms: duration,
                checksum: m.checksum.clone(),
            });
        }
        self.summary.applied = self.applied_by_run.iter().map(|(v, _)| v.clone()).collect();
        self.summary.pending = pending;
        let failed_step = self
            .summary
            .steps
            .iter()
            .find(|s| s.status == StepStatus::Failed)
            .map(|s| (s.name.clone(), s.detail.clone()));
        if self.summary.status != RunStatus::Cancelled {
            self.summary.status = match (&failed_step, self.dry_run) {
                (Some(_), _) => RunStatus::Failed,
                (None, true) => RunStatus::DryRun,
                (None, false) => RunStatus::Success,
            };
        }
        self.summary.message = match (&failed_step, self.summary.status) {
            (_, RunStatus::Cancelled) => {
                "cancelled during the review delay: nothing was applied".into()
            }
            (Some((n, d)), _) => format!("step {n} failed: {d}"),
            (None, RunStatus::DryRun) => format!(
                "dry run: {} migration(s) rehearsed, nothing written",
                self.rehearsed.len()
            ),
            _ => format!("{} migration(s) applied", self.summary.applied.len()),
        };
        if failed_step.is_none() && self.summary.status != RunStatus::Cancelled {
            self.describe_rollback_in_message();
        }
        if failed_step.is_some() {
            self.summary.rollback = Some(self.rollback_instructions());
        }
        self.reporter.event(&Event::PipelineFinished {
            summary: &self.summary,
        });
        self.summary
    }

    /// The `lint` step: the migrations pending on the target, with live context from
    /// it; findings at or above `lint_fail_on` (default error) fail the step.
    fn lint(&mut self) -> StepResult {
        use crate::lint_run;
        let mut s = self.connect()?;
        let state = s.tracking.read(&mut s.db).map_err(|e| e.to_string())?;
        let pending = lint_run::pending(self.setup.set, &state.rows);
        let settings = &self.setup.lint;
        let mut linted = lint_run::lint(&pending, &settings.options);
        lint_run::live_context(&mut s.db, &mut linted, &pending, settings.size_threshold).map_err(
            |e| {
                format!(
                    "reading table sizes for live context: {}",
                    crate::db::conn::error_text(&e)
                )
            },
        )?;
        lint_run::emit(&linted, self.reporter);
        let findings: Vec<&crate::lint::Finding> =
            linted.iter().flat_map(|l| l.findings.iter()).collect();
        for f in &findings {
            self.summary.findings.push(FindingRow {
                level: match f.severity {
                    crate::lint::Severity::Error => Level::Error,
                    crate::lint::Severity::Warning => Level::Warning,
                    crate::lint::Severity::Info => Level::Notice,
                },
                rule: Some(f.rule.to_string()),
                location: Some(crate::report::Location::new(&f.path, f.line, f.col)),
                message: format!("{} — {}", f.message, f.fix),
            });
        }
        let fail_on = self.setup.lint_fail_on;
        let failing = lint_run::failing(findings.iter().copied(), fail_on);
        if failing > 0 {
            Err(format!(
                "{failing} finding(s) at or above lint_fail_on ({})",
                lint_run::fail_on_str(fail_on)
            ))
        } else {
            Ok(format!(
                "{} pending file(s), {} finding(s)",
                pending.len(),
                findings.len()
            ))
        }
    }
}

/// Tables the statements of `migrations` name, unqualified (for the lock check).
fn touched_tables(migrations: &[&crate::migration::Migration]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in migrations {
        for st in m.statements() {
            let text = &m.source[st.span.clone()];
            if let Ok(parsed) = pg_query::parse(text, 0) {
                for t in parsed.tables() {
                    let name = t.rsplit('.').next().unwrap_or(&t).to_string();
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
            }
        }
    }
    out
}

fn check_value(v: Option<&str>, expect: Option<&str>) -> Result<(), String> {
    match (v, expect) {
        (Some(v), Some(e)) if v == e => Ok(()),
        (v, Some(e)) => Err(format!("expected `{e}`, got `{}`", v.unwrap_or("NULL"))),
        (Some("t"), None) => Ok(()),
        (v, None) => Err(format!("expected true, got `{}`", v.unwrap_or("NULL"))),
    }
}

/// Run a smoke-test command with `sh -c`, `DATABASE_URL` set, killed after `timeout`.
fn run_command(command: &str, timeout: Duration, url: &str) -> Result<(), String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("DATABASE_URL", url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting `sh -c`: {e}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(format!("the command exited with {st}")),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the command did not finish within {}",
                    crate::report::human_duration(timeout)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for the command: {e}")),
        }
    }
}

mod emergency;

#[cfg(test)]
mod tests;
