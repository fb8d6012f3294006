//! Several environments at once: the one resolver from an environment's name to its
//! database, and the gathering of what state every migration is in there and the
//! health built from that (`status --all`, `report`). The report's data types live in
//! the report seam (`report::environments`), where the renderers read them.
//!
//! Environments come from an [`EnvResolver`]. Until the pipeline file is wired in, the
//! CLI builds a [`Listed`] resolver from `--env-url NAME=URL`; the pipeline's resolver
//! implements the same trait (an environment whose `database_url_env` variable is unset
//! is listed with `target: None` and a reason, and is skipped).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::db::history;
use crate::db::Target;
use crate::engine;
use crate::migration::MigrationSet;
use crate::plan::{self, Entry, State};
pub use crate::report::environments::*;
use crate::report::Reporter;

/// One environment to read.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    /// None: not readable here; `skipped` says why (e.g. its URL variable is not set).
    pub target: Option<Target>,
    pub skipped: Option<String>,
}

/// Where environments are: the seam the pipeline file plugs into.
pub trait EnvResolver {
    /// The database of environment `name`, or why there is none.
    fn resolve(&self, name: &str) -> Result<Target, String>;
    /// Every environment, in the order to show them.
    fn all(&self) -> Vec<Environment>;
}

/// No environments are known (no pipeline file): names cannot be resolved.
pub struct NoEnvironments;

impl EnvResolver for NoEnvironments {
    fn resolve(&self, name: &str) -> Result<Target, String> {
        Err(format!(
            "`{name}` is not a database URL and no environments are defined: pass a URL \
             (postgres://…), or name environments with --env-url NAME=URL"
        ))
    }
    fn all(&self) -> Vec<Environment> {
        Vec::new()
    }
}

/// Environments given one by one (`--env-url NAME=URL`).
pub struct Listed(pub Vec<Environment>);

impl EnvResolver for Listed {
    fn resolve(&self, name: &str) -> Result<Target, String> {
        match self.0.iter().find(|e| e.name == name) {
            Some(Environment {
                target: Some(t), ..
            }) => Ok(t.clone()),
            Some(Environment { skipped, .. }) => Err(format!(
                "environment `{name}` cannot be read: {}",
                skipped.as_deref().unwrap_or("no database URL")
            )),
            None => NoEnvironments.resolve(name),
        }
    }
    fn all(&self) -> Vec<Environment> {
        self.0.clone()
    }
}

/// `NAME=URL` → an environment. An empty URL lists the environment as skipped.
pub fn parse_env_url(spec: &str) -> Result<Environment, String> {
    let (name, url) = spec
        .split_once('=')
        .filter(|(n, _)| !n.is_empty() && !n.contains("://"))
        .ok_or_else(|| {
            format!(
                "`--env-url` takes NAME=URL (e.g. staging=postgres://…), got `{}`",
                crate::db::conn::redact(spec, &[])
            )
        })?;
    let url = url.trim();
    if url.is_empty() {
        return Ok(Environment {
            name: name.to_string(),
            target: None,
            skipped: Some("no database URL given".into()),
        });
    }
    let t = Target::parse(url).map_err(|e| format!("environment `{name}`: {e}"))?;
    Ok(Environment {
        name: name.to_string(),
        target: Some(t),
        skipped: None,
    })
}

/// A `--source`/`--target` value: a URL (or libpq `key=value` string), else an
/// environment name. Returns the label to show and the target.
pub fn resolve_side(spec: &str, resolver: &dyn EnvResolver) -> Result<(String, Target), String> {
    let spec = spec.trim();
    if spec.contains("://") || spec.contains('=') {
        let t = Target::parse(spec).map_err(|e| e.to_string())?;
        Ok((t.redacted.clone(), t))
    } else {
        Ok((spec.to_string(), resolver.resolve(spec)?))
    }
}

/// What to read.
#[derive(Debug, Clone)]
pub struct OverviewOptions {
    pub schema: String,
    pub connect_retry: Duration,
    /// History rows and backup markers per environment (0: not read, as `status --all`).
    pub history_limit: i64,
    pub slowest: usize,
}

impl Default for OverviewOptions {
    fn default() -> Self {
        OverviewOptions {
            schema: "pgrollout".into(),
            connect_retry: Duration::from_secs(5),
            history_limit: 20,
            slowest: 5,
        }
    }
}

/// Read every environment (unreadable ones are reported, never fatal) and build the
/// report.
pub fn gather(
    set: &MigrationSet,
    migrations_dir: &str,
    envs: &[Environment],
    opts: &OverviewOptions,
    reporter: &mut dyn Reporter,
) -> Overview {
    let environments: Vec<EnvReport> = envs
        .iter()
        .map(|e| read_env(set, e, opts, reporter))
        .collect();
    let health = environments
        .iter()
        .filter(|e| e.reach != Reach::Skipped)
        .map(|e| e.health.status)
        .max()
        .unwrap_or(HealthStatus::Unknown);
    Overview {
        format_version: REPORT_FORMAT_VERSION,
        generated_at: chrono::Utc::now(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        migrations_dir: migrations_dir.into(),
        health,
        comparison: comparison(set, &environments),
        environments,
    }
}

fn empty(e: &Environment, reach: Reach, reason: String, status: HealthStatus) -> EnvReport {
    EnvReport {
        name: e.name.clone(),
        reach,
        reason: Some(reason.clone()),
        target: e.target.as_ref().map(|t| t.redacted.clone()),
        server_version: None,
        tracking_schema_exists: false,
        health: Health {
            status,
            reasons: vec![reason],
        },
        counts: Counts::default(),
        migrations: Vec::new(),
        slowest: Vec::new(),
        history: Vec::new(),
        backups: Vec::new(),
        runs: Vec::new(),
    }
}

fn read_env(
    set: &MigrationSet,
    e: &Environment,
    opts: &OverviewOptions,
    reporter: &mut dyn Reporter,
) -> EnvReport {
    let Some(target) = &e.target else {
        let why = e
            .skipped
            .clone()
            .unwrap_or_else(|| "no database URL".into());
        return empty(
            e,
            Reach::Skipped,
            format!("skipped: {why}"),
            HealthStatus::Unknown,
        );
    };
    let unreachable = |msg: String| empty(e, Reach::Unreachable, msg, HealthStatus::Error);
    let mut s = match engine::connect(target, &opts.schema, opts.connect_retry, reporter) {
        Ok(s) => s,
        Err(err) => return unreachable(err.to_string()),
    };
    let state = match s.tracking.read(&mut s.db) {
        Ok(st) => st,
        Err(err) => return unreachable(err.to_string()),
    };
    let (history, backups, runs) = if opts.history_limit > 0 {
        match (
            history::recent_history(&mut s.db, &opts.schema, opts.history_limit),
            history::backup_markers(&mut s.db, &opts.schema, opts.history_limit),
            history::runs(&mut s.db, &opts.schema, opts.history_limit),
        ) {
            (Ok(h), Ok(b), Ok(r)) => (h, b, r),
            (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => {
                return unreachable(format!("reading the history in {}: {err}", opts.schema))
            }
        }
    } else {
        (Vec::new(), Vec::new(), Vec::new())
    };
    let entries = plan::status(set, &state.rows);
    let migrations: Vec<MigrationRow> = entries.iter().map(row).collect();
    let mut slowest: Vec<MigrationRow> = migrations
        .iter()
        .filter(|m| m.duration_ms.is_some() && m.state != State::Pending)
        .cloned()
        .collect();
    slowest.sort_by(|a, b| {
        b.duration_ms
            .cmp(&a.duration_ms)
            .then(a.version.cmp(&b.version))
    });
    slowest.truncate(opts.slowest);
    EnvReport {
        name: e.name.clone(),
        reach: Reach::Ok,
        reason: None,
        target: Some(target.redacted.clone()),
        server_version: Some(s.db.server_version.clone()),
        tracking_schema_exists: state.version.is_some(),
        health: health(&entries),
        counts: counts(&entries),
        migrations,
        slowest,
        history,
        backups,
        runs,
    }
}

fn row(e: &Entry) -> MigrationRow {
    MigrationRow {
        version: e.version.clone(),
        name: e.name.clone(),
        state: e.state,
        applied_at: e.applied.as_ref().map(|r| r.applied_at),
        applied_by: e.applied.as_ref().map(|r| r.applied_by.clone()),
        duration_ms: e.applied.as_ref().and_then(|r| r.execution_time_ms),
        checksum: e
            .applied
            .as_ref()
            .map(|r| r.checksum.clone())
            .or_else(|| e.checksum.clone()),
        error: e.applied.as_ref().and_then(|r| r.error_message.clone()),
    }
}

pub fn counts(entries: &[Entry]) -> Counts {
    let n = |s: State| entries.iter().filter(|e| e.state == s).count();
    Counts {
        total: entries.len(),
        applied: n(State::Applied),
        pending: n(State::Pending),
        failed: n(State::Failed),
        modified: n(State::Modified),
        missing_file: n(State::MissingFile),
        running: n(State::Running),
        baseline: n(State::Baseline),
    }
}

/// The seed's rule: error for failed migrations or checksum mismatches (and, here, applied
/// versions with no file); warning for pending migrations or performance issues (a
/// migration slower than [`SLOW_MIGRATION_MS`], one still running or interrupted);
/// healthy otherwise.
pub fn health(entries: &[Entry]) -> Health {
    let c = counts(entries);
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let list = |s: State| {
        entries
            .iter()
            .filter(|e| e.state == s)
            .map(|e| e.version.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if c.failed > 0 {
        errors.push(format!(
            "{} failed migration(s): {}",
            c.failed,
            list(State::Failed)
        ));
    }
    if c.modified > 0 {
        errors.push(format!(
            "{} migration file(s) changed after they were applied (checksum mismatch): {}",
            c.modified,
            list(State::Modified)
        ));
    }
    if c.missing_file > 0 {
        errors.push(format!(
            "{} applied migration(s) with no file on disk: {}",
            c.missing_file,
            list(State::MissingFile)
        ));
    }
    if c.running > 0 {
        warnings.push(format!(
            "{} migration(s) running or interrupted: {}",
            c.running,
            list(State::Running)
        ));
    }
    if c.pending > 0 {
        warnings.push(format!(
            "{} pending migration(s): {}",
            c.pending,
            list(State::Pending)
        ));
    }
    let slow: Vec<String> = entries
        .iter()
        .filter_map(|e| {
            let ms = e.applied.as_ref()?.execution_time_ms?;
            (ms > SLOW_MIGRATION_MS).then(|| {
                format!(
                    "{} ({})",
                    e.version,
                    crate::report::human_duration(Duration::from_millis(ms as u64))
                )
            })
        })
        .collect();
    if !slow.is_empty() {
        warnings.push(format!(
            "{} slow migration(s), over {} s each: {}",
            slow.len(),
            SLOW_MIGRATION_MS / 1000,
            slow.join(", ")
        ));
    }
    let status = if !errors.is_empty() {
        HealthStatus::Error
    } else if !warnings.is_empty() {
        HealthStatus::Warning
    } else {
        HealthStatus::Healthy
    };
    errors.extend(warnings);
    Health {
        status,
        reasons: errors,
    }
}

fn comparison(set: &MigrationSet, envs: &[EnvReport]) -> Vec<ComparisonRow> {
    let mut rows: BTreeMap<u128, ComparisonRow> = BTreeMap::new();
    let value = |v: &str| crate::migration::Version::parse(v).map_or(0, |v| v.value);
    for m in &set.migrations {
        rows.insert(
            m.version.value,
            ComparisonRow {
                version: m.version.text.clone(),
                name: m.name.clone(),
                states: BTreeMap::new(),
                consistent: true,
            },
        );
    }
    for e in envs.iter().filter(|e| e.reach == Reach::Ok) {
        for m in &e.migrations {
            rows.entry(value(&m.version))
                .or_insert_with(|| ComparisonRow {
                    version: m.version.clone(),
                    name: m.name.clone(),
                    states: BTreeMap::new(),
                    consistent: true,
                })
                .states
                .insert(e.name.clone(), m.state);
        }
    }
    let read = envs.iter().filter(|e| e.reach == Reach::Ok).count();
    rows.into_values()
        .map(|mut r| {
            let mut states = r.states.values();
            let first = states.next();
            r.consistent = r.states.len() == read && states.all(|s| Some(s) == first);
            r
        })
        .collect()
}
