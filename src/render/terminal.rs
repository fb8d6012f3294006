//! Human output on a terminal: progress to stderr, colour only on a TTY.

use std::io::{IsTerminal, Write};

use crate::report::summary::StepStatus;
use crate::report::{human_duration, Direction, Event, Level, Mode, Reporter};

pub struct Terminal {
    color: bool,
    out: Box<dyn Write>,
    secrets: Vec<String>,
    /// The target already announced: a pipeline connects once per step, and saying so
    /// each time would bury the steps.
    connected_to: Option<String>,
    /// The file of the last lint finding printed: findings are grouped under a header
    /// line per file.
    lint_file: Option<std::path::PathBuf>,
}

impl Terminal {
    /// Progress goes to stderr, so stdout stays clean for `--format json`.
    pub fn stderr(secrets: Vec<String>) -> Terminal {
        Terminal {
            color: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            out: Box::new(std::io::stderr()),
            secrets,
            connected_to: None,
            lint_file: None,
        }
    }

    /// Plain text (no colour) into any writer: the GitHub reporter formats its log lines
    /// with this, then neutralises them.
    pub fn to_writer(out: Box<dyn Write>, secrets: Vec<String>) -> Terminal {
        Terminal {
            color: false,
            out,
            secrets,
            connected_to: None,
            lint_file: None,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// `✗ WHAT failed at FILE:LINE:COL:` then the (untrusted) message, indented.
    fn failed(&mut self, what: &str, location: Option<&crate::report::Location>, message: &str) {
        let at = location.map_or(String::new(), |l| format!(" at {l}"));
        self.line(format!("{} {what} failed{at}:", self.paint("31", "✗")));
        for l in sanitize(message).lines() {
            self.line(format!("    {l}"));
        }
    }

    /// One line, in one write: stderr is unbuffered, and `writeln!` would make the text
    /// and its newline two system calls.
    fn line(&mut self, text: String) {
        let mut text = crate::report::redact(&text, &self.secrets);
        text.push('\n');
        let _ = self.out.write_all(text.as_bytes());
    }
}

/// Strip control characters (escape sequences included) from untrusted text.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

impl Terminal {
    /// `path` once per file, then `  line:col  severity  rule  message` and the fix
    /// indented on the next line.
    fn lint_finding(&mut self, f: &crate::lint::Finding) {
        if self.lint_file.as_deref() != Some(f.path.as_path()) {
            self.line(f.path.display().to_string());
            self.lint_file = Some(f.path.clone());
        }
        let sev = match f.severity {
            crate::lint::Severity::Error => self.paint("31", "error  "),
            crate::lint::Severity::Warning => self.paint("33", "warning"),
            crate::lint::Severity::Info => self.paint("36", "info   "),
        };
        let at = format!("{}:{}", f.line, f.col);
        self.line(format!(
            "  {at:<7} {sev}  {}  {}",
            f.rule,
            sanitize(&f.message)
        ));
        if !f.fix.is_empty() {
            self.line(format!("  {:<7}          fix: {}", "", sanitize(&f.fix)));
        }
    }
}

impl Reporter for Terminal {
    fn event(&mut self, e: &Event<'_>) {
        if !matches!(e, Event::LintFinding { .. }) {
            self.lint_file = None;
        }
        match e {
            Event::LintFinding { finding } => self.lint_finding(finding),
            // main prints the error itself, once.
            Event::CommandFailed { .. } => {}
            Event::Connecting { target } => {
                if self.connected_to.as_deref() != Some(*target) {
                    self.line(format!("connecting to {target}"))
                }
            }
            Event::ConnectRetry {
                attempt,
                wait,
                reason,
            } => self.line(format!(
                "  server not ready (attempt {attempt}): {reason}; retrying in {}",
                human_duration(*wait)
            )),
            Event::Connected {
                server_version,
                target,
            } => {
                if self.connected_to.as_deref() != Some(*target) {
                    self.line(format!("connected: PostgreSQL {server_version}"));
                    self.connected_to = Some(target.to_string());
                }
            }
            Event::LockWaiting { waited, holder } => self.line(format!(
                "waiting for the migration lock ({} so far){}",
                human_duration(*waited),
                holder.map_or(String::new(), |h| format!(", held by {h}"))
            )),
            Event::LockAcquired { waited } => {
                if waited.as_millis() > 100 {
                    self.line(format!(
                        "migration lock taken after {}",
                        human_duration(*waited)
                    ))
                }
            }
            Event::TrackingSchemaReady { schema, from, to } => match from {
                None => self.line(format!("created tracking schema {schema} (version {to})")),
                Some(f) if f != to => self.line(format!(
                    "upgraded tracking schema {schema} from version {f} to {to}"
                )),
                _ => {}
            },
            Event::UpToDate { applied } => self.line(format!(
                "{} database is up to date ({applied} migrations applied, nothing pending)",
                self.paint("32", "✓")
            )),
            Event::PlanReady {
                direction,
                migrations,
                dry_run,
            } => {
                let what = match (direction, dry_run) {
                    (Direction::Up, true) => "pending migration(s) to rehearse:",
                    (Direction::Up, false) => "pending migration(s) to apply:",
                    (Direction::Down, true) => {
                        "migration(s) to rehearse rolling back, newest first:"
                    }
                    (Direction::Down, false) => "migration(s) to roll back, newest first:",
                };
                self.line(format!("{} {what}", migrations.len()));
                for (v, n) in migrations.iter() {
                    self.line(format!("  {v}  {n}"));
                }
            }
            Event::SectionStarted {
                direction,
                version,
                name,
                origin,
                mode,
                statements,
                ..
            } => {
                let how = match mode {
                    Mode::Transactional => "in a transaction",
                    Mode::NonTransactional => "statement by statement, outside a transaction",
                    Mode::Rehearsal => "rehearsal, rolled back",
                };
                self.line(match direction {
                    Direction::Up => format!("→ {version} {name} ({statements} statements, {how})"),
                    Direction::Down => format!(
                        "← {version} {name} ({statements} statements of {} down SQL, {how})",
                        origin.map_or("", |o| o.as_str())
                    ),
                })
            }
            Event::StatementStarted {
                index,
                total,
                line,
                label,
                ..
            } => self.line(format!("    [{}/{total}] line {line}: {label}", index + 1)),
            Event::LockTimeoutRetry {
                attempt,
                max,
                wait,
                message,
                ..
            } => self.line(format!(
                "  {} lock timeout ({}), rolled back; retry {attempt}/{max} in {}",
                self.paint("33", "!"),
                sanitize(message),
                human_duration(*wait)
            )),
            Event::ServerNotice {
                severity, message, ..
            } => self.line(format!(
                "    {}: {}",
                severity.to_lowercase(),
                sanitize(message)
            )),
            Event::SectionFinished {
                direction,
                version,
                name,
                mode,
                duration,
            } => {
                let verb = match (direction, *mode == Mode::Rehearsal) {
                    (Direction::Up, true) => "rehearsed",
                    (Direction::Up, false) => "applied",
                    (Direction::Down, true) => "rehearsed the rollback of",
                    (Direction::Down, false) => "rolled back",
                };
                self.line(format!(
                    "{} {verb} {version} {name} in {}",
                    self.paint("32", "✓"),
                    human_duration(*duration)
                ))
            }
            Event::SectionNotRehearsed {
                version,
                name,
                reason,
                ..
            } => self.line(format!("- {version} {name}: not rehearsed ({reason})")),
            Event::ShadowReady {
                origin,
                tables,
                took,
            } => self.line(format!(
                "shadow database ready in {}: {origin} ({tables} table(s), no rows)",
                human_duration(*took)
            )),
            Event::Rehearsed {
                version,
                name,
                place,
                reason,
            } => self.line(format!(
                "- {version} {name}: {}{}",
                place.as_str(),
                reason.map_or(String::new(), |r| format!(" ({r})"))
            )),
            Event::SectionFailed {
                direction,
                version,
                name,
                location,
                message,
            } => {
                let what = match direction {
                    Direction::Up => format!("{version} {name}"),
                    Direction::Down => format!("rollback of {version} {name}"),
                };
                self.failed(&what, *location, message)
            }
            Event::Diagnostic {
                level,
                location,
                message,
            } => {
                let tag = match level {
                    Level::Error => self.paint("31", "error"),
                    Level::Warning => self.paint("33", "warning"),
                    Level::Notice => self.paint("36", "note"),
                };
                let at = location.map_or(String::new(), |l| format!("{l}: "));
                self.line(format!("{at}{tag}: {}", sanitize(message)))
            }
            Event::Info { message } => self.line(message.to_string()),
            Event::Secret { value } => {
                if !value.is_empty() {
                    self.secrets.push(value.to_string())
                }
            }
            Event::StepStarted { step, index, total } => {
                self.line(format!("── step {}/{total}: {step}", index + 1))
            }
            Event::StepFinished {
                step,
                status,
                duration,
                detail,
            } => {
                let mark = match status {
                    StepStatus::Passed => self.paint("32", "✓"),
                    StepStatus::Failed => self.paint("31", "✗"),
                    StepStatus::Skipped => "-".to_string(),
                };
                let how = match status {
                    StepStatus::Skipped => "skipped".to_string(),
                    _ => human_duration(*duration),
                };
                let sep = if detail.is_empty() { "" } else { ": " };
                self.line(format!("{mark} {step} ({how}){sep}{}", sanitize(detail)))
            }
            Event::Countdown { remaining } => self.line(format!(
                "  applying in {} (Ctrl-C or cancelling the job stops here, with nothing applied)",
                human_duration(*remaining)
            )),
            Event::PipelineFinished { summary } => {
                let text = super::summary::closing(summary);
                for l in text.lines() {
                    self.line(l.to_string());
                }
            }
            Event::MigrationTested {
                version,
                name,
                verdict,
                details,
            } => {
                let mark = match *verdict {
                    "reversible" => self.paint("32", "✓"),
                    "broken" => self.paint("31", "✗"),
                    _ => self.paint("33", "-"),
                };
                self.line(format!("{mark} {version} {name}: {verdict}"));
                for d in details.iter() {
                    self.line(format!("    {}", sanitize(d)));
                }
            }
        }
    }
}
