//! The `smoke-test` step: SQL checks in a read-only transaction and commands with the database URL in their environment.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::super::{Runner, StepError, StepResult};
use crate::config::SmokeCheck;
use crate::db::health;
use crate::report::summary::{CommandOutput, StreamTail};
use crate::report::{Event, Level};

/// Of a failed command's output, the log and the summary show at most this many last
/// lines per stream…
pub const TAIL_LINES: usize = 20;
/// …and at most this many bytes of them (a line longer than that is cut).
pub const TAIL_BYTES: usize = 4096;

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
                run_command(command, timeout, &self.url).map_err(|f| {
                    let text = f.describe();
                    self.summary.smoke_output.push(CommandOutput {
                        name: c.name.clone(),
                        reason: f.reason,
                        stdout: f.stdout,
                        stderr: f.stderr,
                    });
                    text
                })
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
            Err(StepError::Reported(format!(
                "{} of {} check(s) failed: {}",
                failures.len(),
                checks.len(),
                failures.join(", ")
            )))
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

/// A smoke-test command that failed: why, and the end of what it printed.
pub(in crate::pipeline) struct CommandFailure {
    pub reason: String,
    pub stdout: StreamTail,
    pub stderr: StreamTail,
}

impl CommandFailure {
    /// The reason and both tails, for the log.
    pub fn describe(&self) -> String {
        let mut out = format!("the command {}", self.reason);
        for (name, tail) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            out.push_str(&format!("\n  {}:", tail.heading(name)));
            for l in &tail.lines {
                out.push_str(&format!("\n    {l}"));
            }
        }
        out
    }
}

/// Keep the last [`TAIL_LINES`] lines of `pipe` within [`TAIL_BYTES`], counting all.
fn tail_of(pipe: impl Read) -> StreamTail {
    let mut reader = BufReader::new(pipe);
    let mut kept: VecDeque<String> = VecDeque::new();
    let mut total = 0;
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
        total += 1;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        kept.push_back(crate::report::cut(text, TAIL_BYTES));
        if kept.len() > TAIL_LINES {
            kept.pop_front();
        }
        line.clear();
    }
    while kept.iter().map(|l| l.len() + 1).sum::<usize>() > TAIL_BYTES && kept.len() > 1 {
        kept.pop_front();
    }
    StreamTail {
        lines: kept.into(),
        total_lines: total,
    }
}

/// Run a smoke-test command with `sh -c`, `DATABASE_URL` set, killed after `timeout`.
/// Its stdout and stderr are read as it runs; a failure carries the end of both.
pub(in crate::pipeline) fn run_command(
    command: &str,
    timeout: Duration,
    url: &str,
) -> Result<(), CommandFailure> {
    let failed = |reason: String| CommandFailure {
        reason,
        stdout: StreamTail::default(),
        stderr: StreamTail::default(),
    };
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("DATABASE_URL", url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("could not start (`sh -c`): {e}")))?;
    let (tx_out, rx_out) = mpsc::channel();
    let (tx_err, rx_err) = mpsc::channel();
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    std::thread::spawn(move || tx_out.send(tail_of(out)));
    std::thread::spawn(move || tx_err.send(tail_of(err)));
    let started = Instant::now();
    let reason = loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => break format!("exited with {st}"),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break format!(
                    "did not finish within {}",
                    crate::report::human_duration(timeout)
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => break format!("could not be waited for: {e}"),
        }
    };
    // A process the command left behind may hold the pipes open: do not wait for it.
    let collect = |rx: mpsc::Receiver<StreamTail>| {
        rx.recv_timeout(Duration::from_secs(2))
            .unwrap_or_else(|_| StreamTail {
                lines: vec![
                    "(not available: a process the command started still holds it open)".into(),
                ],
                total_lines: 1,
            })
    };
    Err(CommandFailure {
        reason,
        stdout: collect(rx_out),
        stderr: collect(rx_err),
    })
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
