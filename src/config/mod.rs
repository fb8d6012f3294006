//! The pipeline file (`pgrollout.yml`): its model and its loading.
//!
//! Unknown keys are errors, reported at the file's line and column with the closest
//! known key ("did you mean"). Database URLs never live in the file: each environment
//! names the environment variable that holds its URL, and a URL written into the file
//! is refused with an explanation (the file is committed; the URL carries a password).

mod error;

pub use error::ConfigError;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The whole pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    /// Directory of the migration files, relative to the pipeline file.
    #[serde(default)]
    pub migrations: Option<PathBuf>,
    /// The migration files' layout (`flyway`, `diesel`, …); detected when absent.
    #[serde(default)]
    pub layout: Option<String>,
    /// The character between version and name in dbmate-layout file names.
    #[serde(default)]
    pub version_separator: Option<char>,
    /// Defaults for every environment and for the other commands.
    #[serde(default)]
    pub settings: Settings,
    /// Environments by name, in file order.
    #[serde(default, deserialize_with = "ordered_map")]
    pub environments: Vec<(String, Environment)>,
}

/// One target database and how a run reaches it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Name of the environment variable holding the database URL (never the URL itself).
    pub database_url_env: String,
    /// Which GitHub events select this environment.
    #[serde(default)]
    pub on: Triggers,
    /// Overrides of the top-level settings for this environment.
    #[serde(default)]
    pub settings: Settings,
    pub steps: Vec<Step>,
    /// What `pgrollout serve` may do to this environment (nothing by default).
    #[serde(default)]
    pub serve: ServeSettings,
    /// Where a run's outcome is sent (a webhook), and when.
    #[serde(default)]
    pub notify: Option<Notify>,
}

/// `serve:` of an environment.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServeSettings {
    /// The actions the dashboard and the API may start here; empty: read-only.
    #[serde(default)]
    pub actions: Vec<ServeAction>,
}

/// An action `pgrollout serve` can start on an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServeAction {
    DryRun,
    Apply,
    Rollback,
}

impl ServeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ServeAction::DryRun => "dry-run",
            ServeAction::Apply => "apply",
            ServeAction::Rollback => "rollback",
        }
    }
}

/// `notify:` of an environment: a webhook told of each run's outcome.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// Name of the environment variable holding the webhook URL (it is a secret).
    pub webhook_url_env: String,
    /// The body: `slack` (an incoming-webhook message) or `json` (pgrollout's own).
    #[serde(default)]
    pub format: NotifyFormat,
    /// Also notify runs that succeeded (failures are always sent).
    #[serde(default)]
    pub on_success: bool,
    /// How long one attempt may take (default 10s).
    #[serde(default, deserialize_with = "opt_duration")]
    pub timeout: Option<Duration>,
    /// Attempts after the first one failed (default 2).
    #[serde(default)]
    pub retries: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyFormat {
    #[default]
    Slack,
    Json,
}

/// The events that select an environment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    /// Branch name patterns (GitHub filter syntax: `*` does not match `/`, `**` does).
    #[serde(default)]
    pub branches: Vec<String>,
    /// Tag patterns. `v*.*.*` additionally requires a valid semantic version.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Manual runs (`workflow_dispatch`); absent: manual runs are refused.
    #[serde(default)]
    pub dispatch: Option<Dispatch>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dispatch {
    /// The phrase the operator must type, exactly. Default `MIGRATE-<NAME IN CAPITALS>`.
    #[serde(default)]
    pub confirm: Option<String>,
}

/// Run settings. Every key is optional; flags and environment variables win over them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default, deserialize_with = "opt_duration")]
    pub lock_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub statement_timeout: Option<Duration>,
    #[serde(default)]
    pub lock_retries: Option<u32>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub lock_wait: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub connect_timeout: Option<Duration>,
    /// Schema of the tracking tables.
    #[serde(default)]
    pub schema: Option<String>,
    /// Lowest lint severity that fails the `lint` step.
    #[serde(default)]
    pub lint_fail_on: Option<FailOn>,
    /// The `health` step warns about transactions open longer than this (default 5m).
    #[serde(default, deserialize_with = "opt_duration")]
    pub long_transaction: Option<Duration>,
    #[serde(default)]
    pub allow_out_of_order: Option<bool>,
    /// Lint rules not run at all (rule ids; unknown ids are errors).
    #[serde(default)]
    pub lint_disable: Option<Vec<String>>,
    /// Rule id → severity, replacing the registry's default.
    #[serde(default)]
    pub lint_severity: Option<BTreeMap<String, crate::lint::Severity>>,
    /// Live context: locking findings are errors on tables larger than this (bytes) and
    /// warnings on smaller ones.
    #[serde(default, deserialize_with = "opt_size")]
    pub lint_size_threshold: Option<i64>,
}

impl Settings {
    /// `self` with the keys `over` sets replaced.
    pub fn merged(&self, over: &Settings) -> Settings {
        Settings {
            lock_timeout: over.lock_timeout.or(self.lock_timeout),
            statement_timeout: over.statement_timeout.or(self.statement_timeout),
            lock_retries: over.lock_retries.or(self.lock_retries),
            lock_wait: over.lock_wait.or(self.lock_wait),
            connect_timeout: over.connect_timeout.or(self.connect_timeout),
            schema: over.schema.clone().or_else(|| self.schema.clone()),
            lint_fail_on: over.lint_fail_on.or(self.lint_fail_on),
            long_transaction: over.long_transaction.or(self.long_transaction),
            allow_out_of_order: over.allow_out_of_order.or(self.allow_out_of_order),
            lint_disable: over
                .lint_disable
                .clone()
                .or_else(|| self.lint_disable.clone()),
            lint_severity: over
                .lint_severity
                .clone()
                .or_else(|| self.lint_severity.clone()),
            lint_size_threshold: over.lint_size_threshold.or(self.lint_size_threshold),
        }
    }

    /// The lint rule choices of these settings.
    pub fn lint_options(&self) -> crate::lint::LintOptions {
        crate::lint::LintOptions {
            disabled: self.lint_disable.clone().unwrap_or_default(),
            severity_overrides: self.lint_severity.clone().unwrap_or_default(),
        }
    }
}

/// Default of `lint_size_threshold`: 1 GB.
pub const DEFAULT_LINT_SIZE_THRESHOLD: i64 = 1024 * 1024 * 1024;

/// A size like `1GB`, `500MB`, `64kB` or a bare number of bytes; units are powers of
/// 1024, as `pg_size_pretty` shows them.
pub fn parse_size(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim());
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size: use e.g. 500MB, 1GB, 2TB"))?;
    let mult: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 1.0,
        "kb" | "k" => 1024.0,
        "mb" | "m" => 1024.0 * 1024.0,
        "gb" | "g" => 1024.0 * 1024.0 * 1024.0,
        "tb" | "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "`{s}`: unknown size unit `{unit}`: use bytes, kB, MB, GB or TB"
            ))
        }
    };
    let v = n * mult;
    if !v.is_finite() || v < 0.0 || v > i64::MAX as f64 {
        return Err(format!("`{s}` is not a valid size"));
    }
    Ok(v as i64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    Error,
    Warning,
    Info,
    /// Findings are reported, never fatal.
    Never,
}

/// One step of an environment, in the order written: a bare name (`apply`) or a
/// one-key map with the step's options (`review-delay: 30s`).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Health,
    Validate,
    Lint,
    BackupMarker(BackupOptions),
    DryRun,
    ReviewDelay(Duration),
    Apply,
    Verify,
    SmokeTest(Vec<SmokeCheck>),
    Rollback(RollbackStep),
    Drift(DriftStep),
}

/// Every step key, for "did you mean" and messages.
pub const STEP_KEYS: &[&str] = &[
    "health",
    "validate",
    "lint",
    "backup-marker",
    "dry-run",
    "review-delay",
    "apply",
    "verify",
    "smoke-test",
    "rollback",
    "drift",
];

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Step, D::Error> {
        struct V;
        #[derive(Deserialize)]
        struct Delay(#[serde(deserialize_with = "duration")] Duration);
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Step;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a step name (e.g. `apply`) or a one-key map (e.g. `review-delay: 30s`)",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Step, E> {
                Ok(match v {
                    "health" => Step::Health,
                    "validate" => Step::Validate,
                    "lint" => Step::Lint,
                    "backup-marker" => Step::BackupMarker(BackupOptions::default()),
                    "dry-run" => Step::DryRun,
                    "apply" => Step::Apply,
                    "verify" => Step::Verify,
                    "drift" => Step::Drift(DriftStep::default()),
                    "rollback" => return Err(E::custom(ROLLBACK_NEEDS)),
                    "review-delay" => {
                        return Err(E::custom(
                            "`review-delay` needs a duration: write `- review-delay: 30s`",
                        ))
                    }
                    "smoke-test" => {
                        return Err(E::custom(
                            "`smoke-test` needs a list of checks: write `- smoke-test:` followed by `- name: …` items with `sql:` or `command:`",
                        ))
                    }
                    other => return Err(E::unknown_variant(other, STEP_KEYS)),
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Step, A::Error> {
                use serde::de::Error;
                let key: String = a
                    .next_key()?
                    .ok_or_else(|| A::Error::custom("empty step: write a step name"))?;
                let step = match key.as_str() {
                    "backup-marker" => Step::BackupMarker(
                        a.next_value::<Option<BackupOptions>>()?.unwrap_or_default(),
                    ),
                    "review-delay" => Step::ReviewDelay(a.next_value::<Delay>()?.0),
                    "smoke-test" => Step::SmokeTest(a.next_value()?),
                    "rollback" => Step::Rollback(
                        a.next_value::<Option<RollbackStep>>()?
                            .ok_or_else(|| A::Error::custom(ROLLBACK_NEEDS))?,
                    ),
                    "drift" => {
                        Step::Drift(a.next_value::<Option<DriftStep>>()?.unwrap_or_default())
                    }
                    "health" | "validate" | "lint" | "dry-run" | "apply" | "verify" => {
                        a.next_value::<serde::de::IgnoredAny>()?;
                        return Err(A::Error::custom(format!(
                            "step `{key}` takes no options: write `- {key}`"
                        )));
                    }
                    other => return Err(A::Error::unknown_variant(other, STEP_KEYS)),
                };
                if let Some(extra) = a.next_key::<String>()? {
                    return Err(A::Error::custom(format!(
                        "one step per list item: `{extra}` must be its own `- {extra}` item"
                    )));
                }
                Ok(step)
            }
        }
        d.deserialize_any(V)
    }
}

impl Step {
    /// The key as written in the file, for logs and summaries.
    pub fn key(&self) -> &'static str {
        match self {
            Step::Health => "health",
            Step::Validate => "validate",
            Step::Lint => "lint",
            Step::BackupMarker(_) => "backup-marker",
            Step::DryRun => "dry-run",
            Step::ReviewDelay(_) => "review-delay",
            Step::Apply => "apply",
            Step::Verify => "verify",
            Step::SmokeTest(_) => "smoke-test",
            Step::Rollback(_) => "rollback",
            Step::Drift(_) => "drift",
        }
    }
}

/// `backup-marker` alone, or `backup-marker: { dump: true }`, or `{ max_age: 24h }`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackupOptions {
    /// Run `pg_dump` and record its path, size and SHA-256: into `dir`, else
    /// `$GITHUB_WORKSPACE/pgrollout-backups` on a runner, else the temp dir.
    #[serde(default)]
    pub dump: bool,
    /// Where the dump goes (relative to the working directory), created if missing.
    #[serde(default)]
    pub dir: Option<std::path::PathBuf>,
    /// Instead of writing a marker, require one (or a dump) newer than this.
    #[serde(default, deserialize_with = "opt_duration")]
    pub max_age: Option<Duration>,
    /// Label stored with the marker (default `pipeline <environment>`).
    #[serde(default)]
    pub label: Option<String>,
}

const ROLLBACK_NEEDS: &str =
    "`rollback` needs how far to go: write `- rollback: { steps: 1 }` or `- rollback: { to: VERSION }`";

/// `rollback: { steps: N }` or `rollback: { to: VERSION }` (exactly one), optionally
/// with `allow_generated: true`: the emergency step of a manual workflow.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RollbackStep {
    /// Roll back the newest N applied migrations.
    #[serde(default)]
    pub steps: Option<u32>,
    /// Roll back every migration newer than this version (which stays applied).
    #[serde(default, deserialize_with = "opt_scalar")]
    pub to: Option<String>,
    /// Run generated rollbacks for migrations without a down section.
    #[serde(default)]
    pub allow_generated: bool,
}

/// `drift` alone or `drift: { against: migrations }` (the schema the migration files
/// build), or `drift: { source: ENV }` (another environment of this file).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DriftStep {
    /// Only `migrations`.
    #[serde(default)]
    pub against: Option<String>,
    /// The reference environment's name.
    #[serde(default)]
    pub source: Option<String>,
}

/// A named check of the `smoke-test` step: `sql` (one value, true or equal to
/// `expect`) or `command` (exit status 0).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmokeCheck {
    pub name: String,
    #[serde(default)]
    pub sql: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
    /// Expected value of the query, compared with its text form (`42`, `ok`, `t`).
    #[serde(default, deserialize_with = "opt_scalar")]
    pub expect: Option<String>,
    /// statement_timeout of the query, or the command's time limit (default 30s).
    #[serde(default, deserialize_with = "opt_duration")]
    pub timeout: Option<Duration>,
}

/// One parser for flags, environment and file: `500ms`, `5s`, `15m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| (&s[..i], s[i..].trim()));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: use e.g. 500ms, 30s, 5m, 1h"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "sec" | "secs" => n,
        "m" | "min" | "mins" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}`: use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is not a valid duration"))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Int(u64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn text(self) -> String {
        match self {
            Scalar::Str(s) => s,
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => if b { "t" } else { "f" }.to_string(),
        }
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = Scalar::deserialize(d)?.text();
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

fn opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let s = Scalar::deserialize(d)?.text();
    parse_size(&s).map(Some).map_err(serde::de::Error::custom)
}

fn opt_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Some(Scalar::deserialize(d)?.text()))
}

/// A map kept in file order, with duplicate keys refused.
fn ordered_map<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, Environment)>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<(String, Environment)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map of environment names to environments")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out: Vec<(String, Environment)> = Vec::new();
            while let Some(k) = a.next_key::<String>()? {
                if out.iter().any(|(n, _)| *n == k) {
                    return Err(serde::de::Error::custom(format!(
                        "environment `{k}` is defined twice"
                    )));
                }
                let v = a.next_value()?;
                out.push((k, v));
            }
            Ok(out)
        }
    }
    d.deserialize_map(V)
}

impl PipelineFile {
    /// Read and check `path`.
    pub fn load(path: &Path) -> Result<PipelineFile, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|e| error::not_utf8(path, e.as_bytes(), &e.utf8_error()))?;
        PipelineFile::parse(path, &text)
    }

    /// Parse `text` (read from `path`, used in messages).
    pub fn parse(path: &Path, text: &str) -> Result<PipelineFile, ConfigError> {
        if let Some((line, col)) = find_url(text) {
            return Err(ConfigError::UrlInFile {
                path: path.to_path_buf(),
                line,
                col,
            });
        }
        let file: PipelineFile =
            serde_yaml_ng::from_str(text).map_err(|e| error::from_yaml(path, &e))?;
        file.check(path, text)?;
        Ok(file)
    }

    fn check(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let at = |needle: &str| locate(text, needle);
        let invalid = |needle: &str, message: String| {
            let (line, col) = at(needle);
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                col,
                message,
            }
        };
        if let Some(l) = &self.layout {
            if crate::migration::Layout::from_name(l).is_none() {
                let known: Vec<&str> = crate::migration::layout::NAMES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect();
                return Err(invalid(
                    "layout",
                    format!(
                        "`layout: {l}` is not a layout: use one of {}{}",
                        known.join(", "),
                        did_you_mean(l, &known)
                            .map(|s| format!(" (did you mean `{s}`?)"))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
        check_lint_rules(path, text, "settings", &self.settings)?;
        for (name, env) in &self.environments {
            check_lint_rules(
                path,
                text,
                &format!("environments.{name}.settings"),
                &env.settings,
            )?;
        }
        if self.environments.is_empty() {
            return Err(invalid(
                "environments",
                "no environments: add `environments:` with at least one environment".into(),
            ));
        }
        for (name, env) in &self.environments {
            let var = &env.database_url_env;
            let valid = !var.is_empty()
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !var.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(invalid(
                    var,
                    format!(
                        "environments.{name}.database_url_env: `{var}` is not an environment variable name; \
                         write the NAME of the variable that holds the URL (e.g. STAGING_DATABASE_URL) and set \
                         it from a secret in the workflow"
                    ),
                ));
            }
            if env.steps.is_empty() {
                return Err(invalid(
                    name,
                    format!("environments.{name}.steps is empty: list at least one step"),
                ));
            }
            for p in env.on.branches.iter().chain(&env.on.tags) {
                if let Err(e) = glob::Pattern::new(p) {
                    return Err(invalid(
                        p,
                        format!("environments.{name}.on: `{p}` is not a valid pattern: {e}"),
                    ));
                }
            }
            for step in &env.steps {
                match step {
                    Step::SmokeTest(checks) => {
                        for c in checks {
                            if c.sql.is_some() == c.command.is_some() {
                                return Err(invalid(
                                    &c.name,
                                    format!(
                                        "environments.{name}.steps.smoke-test `{}`: give exactly one of `sql:` or `command:`",
                                        c.name
                                    ),
                                ));
                            }
                        }
                    }
                    Step::Rollback(r) => self.check_rollback_step(name, r, &invalid)?,
                    Step::Drift(d) => self.check_drift_step(name, d, &invalid)?,
                    Step::BackupMarker(b) if b.dump && b.max_age.is_some() => {
                        return Err(invalid(
                            "max_age",
                            format!(
                                "environments.{name}.steps.backup-marker: `dump: true` makes a new dump, \
                                 `max_age` requires a recent one: use one or the other"
                            ),
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn check_rollback_step(
        &self,
        env: &str,
        r: &RollbackStep,
        invalid: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        match (&r.steps, &r.to) {
            (Some(_), Some(_)) | (None, None) => Err(invalid(
                "rollback",
                format!(
                    "environments.{env}.steps.rollback: give exactly one of `steps: N` or `to: VERSION`"
                ),
            )),
            (Some(0), None) => Err(invalid(
                "steps: 0",
                format!("environments.{env}.steps.rollback: `steps: 0` rolls back nothing"),
            )),
            (None, Some(v)) if crate::migration::Version::parse(v).is_none() => Err(invalid(
                v,
                format!(
                    "environments.{env}.steps.rollback: `to: {v}` is not a migration version (digits, at most 38)"
                ),
            )),
            _ => Ok(()),
        }
    }

    fn check_drift_step(
        &self,
        env: &str,
        d: &DriftStep,
        invalid: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        match (&d.against, &d.source) {
            (Some(_), Some(_)) => Err(invalid(
                "drift",
                format!(
                    "environments.{env}.steps.drift: give one of `against: migrations` or `source: ENV`, not both"
                ),
            )),
            (Some(a), None) if a != "migrations" => Err(invalid(
                a,
                format!(
                    "environments.{env}.steps.drift: `against: {a}`: the only value is `migrations` (for another database use `source: ENV`)"
                ),
            )),
            (None, Some(s)) if s == env => Err(invalid(
                s,
                format!("environments.{env}.steps.drift: `source: {s}` is this environment itself: nothing to compare"),
            )),
            (None, Some(s)) if self.environment(s).is_none() => {
                let names = self.names();
                let hint = did_you_mean(s, &names)
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                Err(invalid(
                    s,
                    format!(
                        "environments.{env}.steps.drift: `source: {s}` is not an environment of this file{hint}; environments: {}",
                        names.join(", ")
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e)
    }

    pub fn names(&self) -> Vec<&str> {
        self.environments.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The migrations directory, resolved against the file's directory.
    pub fn migrations_dir(&self, file: &Path) -> Option<PathBuf> {
        self.migrations.as_ref().map(|m| {
            if m.is_absolute() {
                m.clone()
            } else {
                file.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map_or_else(|| m.clone(), |p| p.join(m))
            }
        })
    }
}

impl Environment {
    /// The confirmation phrase for manual runs, when they are allowed.
    pub fn confirm_phrase(&self, name: &str) -> Option<String> {
        self.on.dispatch.as_ref().map(|d| {
            d.confirm
                .clone()
                .unwrap_or_else(|| format!("MIGRATE-{}", name.to_uppercase()))
        })
    }
}

/// Line and column (1-based) of a database URL written in the file, outside comments.
fn find_url(text: &str) -> Option<(usize, usize)> {
    for (i, line) in text.lines().enumerate() {
        let code = match line.find(" #") {
            Some(p) => &line[..p],
            None if line.trim_start().starts_with('#') => "",
            None => line,
        };
        for scheme in ["postgres://", "postgresql://"] {
            if let Some(p) = code.find(scheme) {
                return Some((i + 1, code[..p].chars().count() + 1));
            }
        }
    }
    None
}

/// Rule ids in `lint_disable` / `lint_severity` must be known: a typo would silently
/// keep a rule on (or leave its severity alone).
fn check_lint_rules(
    path: &Path,
    text: &str,
    at: &str,
    settings: &Settings,
) -> Result<(), ConfigError> {
    if let Some((id, suggestion)) = settings.lint_options().unknown_rules().into_iter().next() {
        let (line, col) = locate_word(text, &id);
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            col,
            message: format!(
                "{at}: unknown lint rule `{id}`{} (the rules are listed in docs/lint-rules.md)",
                suggestion
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default()
            ),
        });
    }
    Ok(())
}

/// Like [`locate`], but `needle` must not be part of a longer rule id or key
/// (`prefer-timestamp` is not found inside `prefer-timestamptz`).
fn locate_word(text: &str, needle: &str) -> (usize, usize) {
    let part = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    for (i, line) in text.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or(line);
        for (p, _) in code.match_indices(needle) {
            let before = code[..p].chars().next_back();
            let after = code[p + needle.len()..].chars().next();
            if !before.is_some_and(part) && !after.is_some_and(part) {
                return (i + 1, code[..p].chars().count() + 1);
            }
        }
    }
    locate(text, needle)
}

/// Best-effort position of `needle` (a key or value) for errors found after parsing.
fn locate(text: &str, needle: &str) -> (usize, usize) {
    if needle.is_empty() {
        return (1, 1);
    }
    for (i, line) in text.lines().enumerate() {
        if let Some(p) = line.find(needle) {
            return (i + 1, line[..p].chars().count() + 1);
        }
    }
    (1, 1)
}

/// Which environment a GitHub ref-name pattern list accepts: GitHub's filter syntax,
/// where `*` stops at `/` and `**` does not.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    glob::Pattern::new(pattern).is_ok_and(|p| p.matches_with(name, opts))
}

/// The closest of `known` to `word`, if it is close enough to be a typo.
pub fn did_you_mean<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| s.to_lowercase().replace('-', "_");
    known
        .iter()
        .map(|k| (strsim::levenshtein(&norm(word), &norm(k)), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests;
