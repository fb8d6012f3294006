//! The pipeline file's share of the options: `migrations:` and `settings:` apply to every
//! command, below flags and environment variables (flags > env > YAML > defaults).

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::ArgMatches;

use crate::cli::{Global, Timing};
use crate::config::{ConfigError, PipelineFile, Settings};

/// Option ids whose value may come from the pipeline file.
const FROM_FILE: &[&str] = &[
    "lock_timeout",
    "statement_timeout",
    "lock_retries",
    "lock_wait",
    "connect_timeout",
    "schema",
    "config",
];

/// The most explicit source of a global option, looking through the subcommands
/// (a global flag may be given before or after the command name).
fn source(m: &ArgMatches, id: &str) -> Option<ValueSource> {
    let mut best = m.try_contains_id(id).ok().and_then(|_| m.value_source(id));
    let mut cur = m;
    while let Some((_, sub)) = cur.subcommand() {
        if sub.try_contains_id(id).is_ok() {
            best = best.max(sub.value_source(id));
        }
        cur = sub;
    }
    best
}

/// Remember which options were left at their defaults, so the pipeline file may set them.
pub fn record_defaults(global: &mut Global, matches: &ArgMatches) {
    global.defaulted = FROM_FILE
        .iter()
        .filter(|id| matches!(source(matches, id), None | Some(ValueSource::DefaultValue)))
        .map(|id| id.to_string())
        .collect();
    global.database_url_from = match source(matches, "database_url") {
        Some(ValueSource::CommandLine) => Some("--database-url"),
        Some(ValueSource::EnvVariable) => Some("DATABASE_URL"),
        _ => None,
    };
}

/// A pipeline file that was found and parsed.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub file: PipelineFile,
}

/// Load the pipeline file when there is one (an explicit `--config` must exist) and
/// apply its `migrations:` and top-level `settings:`.
pub fn load_pipeline(global: &mut Global) -> Result<(), ConfigError> {
    let explicit = !global.defaulted.iter().any(|d| d == "config");
    if !explicit && !global.config.exists() {
        return Ok(());
    }
    let file = PipelineFile::load(&global.config)?;
    if global.migrations.is_none() {
        global.migrations = file.migrations_dir(&global.config);
    }
    if global.layout.is_none() {
        // Checked when the file was parsed, with its position.
        global.layout = file
            .layout
            .as_deref()
            .and_then(crate::migration::Layout::from_name);
    }
    if global.version_separator.is_none() {
        global.version_separator = file.version_separator;
    }
    let settings = file.settings.clone();
    apply_settings(global, &settings);
    global.pipeline = Some(Loaded {
        path: global.config.clone(),
        file,
    });
    Ok(())
}

/// The largest timeout PostgreSQL accepts, in milliseconds (`INT_MAX`).
const PG_MAX_TIMEOUT_MS: u128 = i32::MAX as u128;

/// `lock_timeout` and `statement_timeout` as the server will read them, or why they
/// cannot be sent: the server takes whole milliseconds, reads 0 as "no limit" and
/// refuses more than `INT_MAX` ms. A lock_timeout of no limit is never meant: every
/// query on a table would queue behind a migration waiting for its lock. A
/// statement_timeout of exactly 0 is "none", as documented; one that rounds to 0 is not.
pub fn server_timeouts(t: &Timing) -> Result<(Duration, Option<Duration>), String> {
    fn check(name: &str, flag: &str, d: Duration) -> Result<(), String> {
        let how = format!(
            "(--{flag}, PGROLLOUT_{}, or `{name}:` in the pipeline file)",
            flag.to_uppercase().replace('-', "_")
        );
        if d.as_millis() == 0 {
            return Err(format!(
                "{name} {d:?} is under 1ms, which PostgreSQL reads as no limit: a migration would then wait \
                 for its table locks forever while every query on the table queues behind it. \
                 Give at least 1ms, e.g. 5s {how}"
            ));
        }
        if d.as_millis() > PG_MAX_TIMEOUT_MS {
            return Err(format!(
                "{name} {d:?} is over PostgreSQL's maximum of {PG_MAX_TIMEOUT_MS}ms (about 24.8 days) {how}"
            ));
        }
        Ok(())
    }
    check("lock_timeout", "lock-timeout", t.lock_timeout)?;
    if t.statement_timeout.is_zero() {
        return Ok((t.lock_timeout, None));
    }
    check(
        "statement_timeout",
        "statement-timeout",
        t.statement_timeout,
    )?;
    Ok((t.lock_timeout, Some(t.statement_timeout)))
}

/// Set the options still at their defaults from `s`.
pub fn apply_settings(global: &mut Global, s: &Settings) {
    let free = |id: &str| global.defaulted.iter().any(|d| d == id);
    let t = &mut global.timing.clone();
    if free("lock_timeout") {
        if let Some(v) = s.lock_timeout {
            t.lock_timeout = v;
        }
    }
    if free("statement_timeout") {
        if let Some(v) = s.statement_timeout {
            t.statement_timeout = v;
        }
    }
    if free("lock_retries") {
        if let Some(v) = s.lock_retries {
            t.lock_retries = v;
        }
    }
    if free("lock_wait") {
        if let Some(v) = s.lock_wait {
            t.lock_wait = v;
        }
    }
    if free("connect_timeout") {
        if let Some(v) = s.connect_timeout {
            t.connect_timeout = v;
        }
    }
    let schema = if free("schema") {
        s.schema.clone()
    } else {
        None
    };
    global.timing = t.clone();
    if let Some(schema) = schema {
        global.schema = schema;
    }
}

/// Passwords of every environment's database URL, known before anything is printed.
pub fn pipeline_secrets(global: &Global, libpq: &crate::db::LibpqEnv) -> Vec<String> {
    let Some(l) = &global.pipeline else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (_, e) in &l.file.environments {
        if let Some(url) = std::env::var(&e.database_url_env)
            .ok()
            .filter(|u| !u.trim().is_empty())
        {
            match crate::db::Target::parse_with(&url, libpq) {
                Ok(t) => out.extend(t.secrets),
                // Unparseable: the password cannot be found in it, so hide all of it.
                Err(_) => out.push(url),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::{CommandFactory, FromArgMatches};
    use std::time::Duration;

    fn parse(args: &[&str]) -> Global {
        let m = Cli::command().try_get_matches_from(args).unwrap();
        let mut cli = Cli::from_arg_matches(&m).unwrap();
        record_defaults(&mut cli.global, &m);
        cli.global
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let s = Settings {
            lock_timeout: Some(Duration::from_secs(9)),
            statement_timeout: Some(Duration::from_secs(60)),
            schema: Some("ops".into()),
            ..Default::default()
        };
        let mut g = parse(&["pgrollout", "status", "--lock-timeout", "2s"]);
        apply_settings(&mut g, &s);
        assert_eq!(g.timing.lock_timeout, Duration::from_secs(2));
        assert_eq!(g.timing.statement_timeout, Duration::from_secs(60));
        assert_eq!(g.schema, "ops");
        let mut g = parse(&["pgrollout", "--schema", "mine", "status"]);
        apply_settings(&mut g, &s);
        assert_eq!(g.schema, "mine");
        assert_eq!(g.timing.lock_timeout, Duration::from_secs(9));
    }

    #[test]
    fn missing_default_file_is_fine_but_explicit_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yml");
        let mut g = parse(&["pgrollout", "status"]);
        g.config = missing.clone();
        load_pipeline(&mut g).unwrap();
        assert!(g.pipeline.is_none());
        let mut g = parse(&["pgrollout", "--config", missing.to_str().unwrap(), "status"]);
        assert!(load_pipeline(&mut g).is_err());
    }
}
