//! The `smoke-test` step: SQL checks in a read-only transaction and commands with the database URL in their environment.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::super::{Runner, StepResult};
use crate::config::SmokeCheck;
use crate::db::health;
use crate::report::{Event, Level};

impl Runner<'_, '_> {
    pub(in crate::pipeline) fn smoke_test(&mut self, checks: &[SmokeCheck]) -> StepResult {
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
            )
            .into())
        }
    }
}

pub(in crate::pipeline) fn check_value(
    v: Option<&str>,
    expect: Option<&str>,
) -> Result<(), String> {
    match (v, expect) {
        (Some(v), Some(e)) if v == e => Ok(()),
        (v, Some(e)) => Err(format!("expected `{e}`, got `{}`", v.unwrap_or("NULL"))),
        (Some("t"), None) => Ok(()),
        (v, None) => Err(format!("expected true, got `{}`", v.unwrap_or("NULL"))),
    }
}

/// Run a smoke-test command with `sh -c`, `DATABASE_URL` set, killed after `timeout`.
pub(in crate::pipeline) fn run_command(
    command: &str,
    timeout: Duration,
    url: &str,
) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::check_value;

    #[test]
    fn smoke_values() {
        assert!(check_value(Some("t"), None).is_ok());
        assert!(check_value(Some("f"), None).is_err());
        assert!(check_value(None, None).is_err());
        assert!(check_value(Some("42"), Some("42")).is_ok());
        assert!(check_value(Some("41"), Some("42")).is_err());
    }
}
