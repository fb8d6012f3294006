//! GitHub Actions: workflow commands, the job summary and step outputs — the one place
//! that formats for GitHub (active when `GITHUB_ACTIONS=true`).
//!
//! Rules it keeps (see docs/github.md and the runner's parser):
//! - commands are escaped exactly like `@actions/core`: data `%` first, then CR, LF;
//!   properties also `:` and `,`;
//! - every other line is untrusted text (file names, SQL errors, server notices): it is
//!   split on CR and LF like the runner does, and a line that would start a command
//!   (`::cmd`) or contain a legacy `##[cmd` is neutralised with a zero-width space;
//! - `::add-mask::` for every secret before anything else is printed;
//! - at most 10 annotations per kind (GitHub drops the rest silently), most severe
//!   first, then one notice pointing to the job summary; messages capped below 4096;
//! - the job summary is kept under 1 MiB by our own truncation (GitHub drops an
//!   oversized summary whole); outputs use the `name<<delimiter` form, LF only.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::markdown;
use super::terminal::Terminal;
use crate::report::summary::{self, MigrationRow, RunStatus, RunSummary};
use crate::report::{human_duration, Direction, Event, Level, Location, Mode, Reporter};

/// GitHub shows this many annotations of each kind per step.
pub const MAX_ANNOTATIONS_PER_KIND: usize = 10;
/// Annotation messages are cut here (GitHub truncates at 4096 UTF-16 units).
pub const MAX_MESSAGE_UTF16: usize = 4000;
/// Our budget for the job summary: GitHub drops a step summary over 1 MiB entirely.
pub const SUMMARY_BUDGET: usize = 1_000_000;
/// A message shown in the job summary is cut here: the log has all of it.
pub const MAX_SUMMARY_MESSAGE: usize = 2000;
/// A problem listed under a run message that already says what failed.
pub const MAX_PROBLEM_WITH_MESSAGE: usize = 300;

/// Escape the data part of a workflow command (`escapeData` of `@actions/core`).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escape a property value (`escapeProperty` of `@actions/core`). The runner trims
/// trailing whitespace and drops a leading `=`, so those are removed here rather than
/// silently lost.
pub fn escape_property(s: &str) -> String {
    let s = s.trim_end().trim_start_matches('=');
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `::name k=v,k=v::data`, properties with empty values dropped (as core does).
pub fn command(name: &str, props: &[(&str, String)], data: &str) -> String {
    let props: Vec<String> = props
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", escape_property(v)))
        .filter(|p| !p.ends_with('='))
        .collect();
    if props.is_empty() {
        format!("::{name}::{}", escape_data(data))
    } else {
        format!("::{name} {}::{}", props.join(","), escape_data(data))
    }
}

/// Make one line of untrusted text unable to start a workflow command: the runner acts
/// on a line whose first non-blank characters are `::`, and on `##[` anywhere.
pub fn neutralise(line: &str) -> String {
    let mut s = line.replace("##[", "##\u{200B}[");
    let lead = s.len() - s.trim_start().len();
    if s[lead..].starts_with("::") {
        s.insert(lead + 1, '\u{200B}');
    }
    s
}

/// Split untrusted text into lines the way the runner does (CR, LF, CRLF) and
/// neutralise each.
pub fn safe_lines(text: &str) -> Vec<String> {
    text.split("\r\n")
        .flat_map(|p| p.split(['\r', '\n']))
        .map(neutralise)
        .collect()
}

/// Cut `s` to at most `max` UTF-16 code units, on a char boundary, marking the cut.
pub fn cap_utf16(s: &str, max: usize) -> String {
    if s.encode_utf16().count() <= max {
        return s.to_string();
    }
    let mut units = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max.saturating_sub(1) {
            break;
        }
        end = i + c.len_utf8();
    }
    format!("{}…", &s[..end])
}

/// Untrusted text for a Markdown table cell or list item, made inert (see
/// [`markdown::cell`]).
pub fn md(s: &str) -> String {
    markdown::cell(s)
}

/// Keep `text` under `budget` bytes, cutting at a line boundary with a visible note.
pub fn bounded(text: String, budget: usize) -> String {
    if text.len() <= budget {
        return text;
    }
    let note_room = 400;
    let limit = budget.saturating_sub(note_room);
    let mut cut = limit;
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let cut = text[..cut].rfind('\n').map_or(0, |p| p + 1);
    let dropped = text[cut..].lines().count();
    let mut out = text[..cut].to_string();
    out.push_str(&format!(
        "\n> **Summary truncated:** {dropped} more line(s) not shown, to stay under GitHub's 1 MiB job-summary limit. The step log has every line.\n"
    ));
    out
}

/// A random `ghadelimiter_<uuid v4>`, as `@actions/core` writes.
pub fn delimiter() -> String {
    use rand::Rng;
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "ghadelimiter_{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// One `name<<delimiter` entry of `$GITHUB_OUTPUT`, LF only.
pub fn output_entry(name: &str, value: &str) -> String {
    let value = value.replace("\r\n", "\n").replace('\r', "\n");
    let mut d = delimiter();
    while value.lines().any(|l| l == d) || name.contains(&d) {
        d = delimiter();
    }
    format!("{name}<<{d}\n{value}\n{d}\n")
}

/// Append `name<<delimiter` entries to the runner's `$GITHUB_OUTPUT` file.
pub fn append_outputs(path: &Path, entries: &[(&str, String)]) -> std::io::Result<()> {
    let text: String = entries.iter().map(|(n, v)| output_entry(n, v)).collect();
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
}

/// The output names the action declares; `action.yml` is checked against this list.
pub const OUTPUTS: &[&str] = &[
    "environment",
    "status",
    "applied-count",
    "applied",
    "pending-count",
    "backup-marker",
    "rolled-back-count",
    "rolled-back",
    "summary-file",
    "failed-version",
    "failed-location",
    "error",
    "backup-file",
];

/// The `error` output is cut here: the log and the summary have all of it.
pub const MAX_ERROR_OUTPUT: usize = 4000;

/// The runner's files for this step.
#[derive(Debug, Clone, Default)]
pub struct Files {
    pub output: Option<PathBuf>,
    pub step_summary: Option<PathBuf>,
    /// Where the copy of the summary goes (`$RUNNER_TEMP`).
    pub runner_temp: Option<PathBuf>,
    /// `$GITHUB_WORKSPACE`: absolute paths under it are shown relative.
    pub workspace: Option<PathBuf>,
    /// The current directory relative to `$GITHUB_WORKSPACE` (`db` under the action's
    /// `working-directory: db`): relative paths get it as a prefix, since GitHub
    /// resolves an annotation's `file=` from the repository root.
    pub cwd_in_workspace: Option<PathBuf>,
}

#[derive(Debug, Clone)]
struct Annotation {
    level: Level,
    title: String,
    location: Option<Location>,
    message: String,
    /// A lint finding: listed in the findings table of the summary, not under Problems.
    lint: bool,
}

#[derive(Clone, Default)]
struct Buffer(Rc<RefCell<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The GitHub Actions reporter.
pub struct GitHub {
    out: Box<dyn Write>,
    /// Log lines are formatted by the terminal reporter into this buffer, then
    /// neutralised line by line on their way to `out`.
    log: Terminal,
    buf: Buffer,
    secrets: Vec<String>,
    files: Files,
    annotations: Vec<Annotation>,
    group_open: bool,
    in_step: bool,
    /// Migrations seen in events, for a plain `apply` (no pipeline summary).
    migrations: Vec<MigrationRow>,
    summary: Option<RunSummary>,
    /// Lint findings seen, for the summary of a `lint` command (a pipeline's summary
    /// carries its own).
    lint_findings: Vec<crate::lint::Finding>,
    /// The first migration that failed, for a command without a pipeline summary.
    failed: Option<summary::Failure>,
    /// How the command ended when it ended in an error outside a pipeline's result.
    command_failed: Option<(RunStatus, Option<String>, String)>,
    finished: bool,
}

impl GitHub {
    /// Writes workflow commands to `out` — stdout, where the runner reads them, or
    /// stderr for a command whose stdout is a machine-read result (`--format json`;
    /// the runner parses both streams) — and the job summary and outputs to the
    /// runner's `files`. Masks `secrets` before anything else.
    pub fn new(out: Box<dyn Write>, secrets: Vec<String>, files: Files) -> GitHub {
        let buf = Buffer::default();
        let mut g = GitHub {
            out,
            log: Terminal::to_writer(Box::new(buf.clone()), secrets.clone()),
            buf,
            secrets: Vec::new(),
            files,
            annotations: Vec::new(),
            group_open: false,
            in_step: false,
            migrations: Vec::new(),
            summary: None,
            lint_findings: Vec::new(),
            failed: None,
            command_failed: None,
            finished: false,
        };
        for s in secrets {
            g.mask(&s);
        }
        g
    }

    fn mask(&mut self, secret: &str) {
        if secret.trim().is_empty() || self.secrets.iter().any(|s| s == secret) {
            return;
        }
        self.secrets.push(secret.to_string());
        let line = command("add-mask", &[], secret);
        let _ = writeln!(self.out, "{line}");
    }

    fn redact(&self, s: &str) -> String {
        crate::report::redact(s, &self.secrets)
    }

    /// Write a workflow command (already escaped).
    fn cmd(&mut self, line: String) {
        let _ = writeln!(self.out, "{line}");
    }

    /// Move formatted log text to the output, neutralised.
    fn drain(&mut self) {
        let bytes = std::mem::take(&mut *self.buf.0.borrow_mut());
        if bytes.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&bytes);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        for l in safe_lines(text) {
            let _ = writeln!(self.out, "{}", self.redact(&l));
        }
        let _ = self.out.flush();
    }

    fn open_group(&mut self, title: &str) {
        self.close_group();
        let t = self.redact(title);
        self.cmd(command("group", &[], &t));
        self.group_open = true;
    }

    fn close_group(&mut self) {
        if self.group_open {
            self.cmd("::endgroup::".into());
            self.group_open = false;
        }
    }

    fn annotate(&mut self, level: Level, title: &str, location: Option<&Location>, message: &str) {
        // The same problem said twice (by two layers) is one annotation.
        if self
            .annotations
            .iter()
            .any(|a| a.level == level && a.message == message && a.location.as_ref() == location)
        {
            return;
        }
        self.annotations.push(Annotation {
            level,
            title: title.to_string(),
            location: location.cloned(),
            message: message.to_string(),
            lint: false,
        });
    }

    /// A location's file as GitHub resolves it: relative to the repository root.
    fn file_of(&self, l: &Location) -> String {
        self.workspace_path(&l.path)
    }

    /// `path` relative to the workspace (the repository root) — what GitHub resolves
    /// annotations from and what a later step (upload-artifact) finds — when it is in it.
    fn workspace_path(&self, path: &Path) -> String {
        let p: PathBuf = if path.is_absolute() {
            match &self.files.workspace {
                Some(w) => path.strip_prefix(w).unwrap_or(path).to_path_buf(),
                None => path.to_path_buf(),
            }
        } else {
            let within: PathBuf = path
                .components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .collect();
            match &self.files.cwd_in_workspace {
                Some(prefix) => prefix.join(within),
                None => within,
            }
        };
        p.to_string_lossy().replace('\\', "/")
    }

    fn annotation_line(&self, a: &Annotation) -> String {
        let kind = match a.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        };
        let mut props: Vec<(&str, String)> =
            vec![("title", cap_utf16(&self.redact(&a.title), 250))];
        if let Some(l) = &a.location {
            props.push(("file", self.file_of(l)));
            if l.line > 0 {
                props.push(("line", l.line.to_string()));
                if l.col > 0 {
                    props.push(("col", l.col.to_string()));
                }
            }
        }
        // The runner shows a CR in an annotation as U+FFFD in the log: a database message's
        // CR or CRLF becomes a plain line break.
        let msg = self
            .redact(&a.message)
            .replace("\r\n", "\n")
            .replace('\r', "\n");
        command(kind, &props, &cap_utf16(&msg, MAX_MESSAGE_UTF16))
    }

    /// Most severe first, at most 10 per kind, then one notice for the rest.
    fn emit_annotations(&mut self) {
        let mut all = std::mem::take(&mut self.annotations);
        all.sort_by_key(|a| std::cmp::Reverse(a.level));
        let mut shown = [0usize; 3];
        let mut hidden = 0;
        let total_notices = all.iter().filter(|a| a.level == Level::Notice).count();
        let overflow = all
            .iter()
            .map(|a| a.level)
            .any(|l| all.iter().filter(|a| a.level == l).count() > MAX_ANNOTATIONS_PER_KIND);
        let notice_cap = if overflow || total_notices > MAX_ANNOTATIONS_PER_KIND {
            MAX_ANNOTATIONS_PER_KIND - 1
        } else {
            MAX_ANNOTATIONS_PER_KIND
        };
        let mut lines = Vec::new();
        for a in &all {
            let i = a.level as usize;
            let cap = if a.level == Level::Notice {
                notice_cap
            } else {
                MAX_ANNOTATIONS_PER_KIND
            };
            if shown[i] < cap {
                shown[i] += 1;
                lines.push(self.annotation_line(a));
            } else {
                hidden += 1;
            }
        }
        if hidden > 0 {
            lines.push(command(
                "notice",
                &[("title", "more problems in the job summary".to_string())],
                &format!(
                    "{hidden} more problem(s) not annotated here: GitHub shows {MAX_ANNOTATIONS_PER_KIND} annotations of each kind per step. The job summary lists all of them."
                ),
            ));
        }
        for l in lines {
            self.cmd(l);
        }
        self.annotations = all;
    }

    fn summary_markdown(&self) -> Option<String> {
        // Most important first, so that a summary over the size limit loses tables, not
        // the failure: status and message, backup and rollback instructions, problems,
        // then the tables, cut to fit with a line saying how many rows are not shown.
        let mut s = String::new();
        let mut tables = Tables::default();
        match &self.summary {
            Some(r) => {
                pipeline_head(r, &|p| self.workspace_path(p), &mut s);
                pipeline_tables(r, &|l| self.file_of(l), &mut tables);
            }
            None if self.migrations.is_empty() && !self.lint_findings.is_empty() => lint_markdown(
                &self.lint_findings,
                &|l| self.file_of(l),
                &mut s,
                &mut tables,
            ),
            None if !self.migrations.is_empty() || !self.annotations.is_empty() => {
                let failed = self.migrations.iter().any(|m| m.status == "failed")
                    || self.annotations.iter().any(|a| a.level == Level::Error);
                s.push_str(&format!(
                    "## pgrollout {}\n\n",
                    if failed { "❌ failed" } else { "✅ success" }
                ));
                migrations_table(&self.migrations, &mut tables);
            }
            None => return None,
        }
        let said = self.summary.as_ref().map_or("", |r| r.message.as_str());
        let problems: Vec<&Annotation> = self
            .annotations
            .iter()
            .filter(|a| !a.lint)
            // The run's message already says it (once, bounded).
            .filter(|a| said.is_empty() || !said.contains(a.message.as_str()))
            .collect();
        if !problems.is_empty() {
            s.push_str("\n### Problems\n\n");
            for a in problems {
                let at = a
                    .location
                    .as_ref()
                    .map(|l| {
                        format!(
                            "{} ",
                            markdown::code(&format!("{}:{}:{}", self.file_of(l), l.line, l.col))
                        )
                    })
                    .unwrap_or_default();
                s.push_str(&format!(
                    "- **{}** {at}{}\n",
                    level_word(a.level),
                    // With the run's message above, a problem is a pointer to its line,
                    // not a second copy of a long server message.
                    md(&cap_utf16(
                        &a.message,
                        if said.is_empty() {
                            MAX_SUMMARY_MESSAGE
                        } else {
                            MAX_PROBLEM_WITH_MESSAGE
                        }
                    ))
                ));
            }
        }
        let s = self.redact(&s);
        let tables = self.redact(&tables.render(SUMMARY_BUDGET.saturating_sub(s.len() + 1000)));
        Some(s + &tables)
    }

    fn write_summary(&mut self) -> Option<PathBuf> {
        let md_text = self.summary_markdown()?;
        let copy = self
            .files
            .runner_temp
            .clone()
            .unwrap_or_else(std::env::temp_dir)
            .join(format!("pgrollout-summary-{}.md", std::process::id()));
        let _ = std::fs::write(&copy, &md_text);
        if let Some(path) = self.files.step_summary.clone() {
            let existing = std::fs::metadata(&path).map_or(0, |m| m.len() as usize);
            let text = bounded(md_text, SUMMARY_BUDGET.saturating_sub(existing));
            let r = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .and_then(|mut f| f.write_all(text.as_bytes()));
            if let Err(e) = r {
                self.cmd(command(
                    "warning",
                    &[],
                    &format!("writing the job summary to {}: {e}", path.display()),
                ));
            }
        }
        Some(copy)
    }

    /// The `failed-version`, `failed-location` and `error` outputs (empty when nothing
    /// failed).
    fn failure_outputs(&self, f: Option<&summary::Failure>) -> Vec<(&'static str, String)> {
        vec![
            (
                "failed-version",
                f.and_then(|f| f.version.clone()).unwrap_or_default(),
            ),
            (
                "failed-location",
                f.and_then(|f| f.location.as_ref())
                    .map(|l| format!("{}:{}:{}", self.file_of(l), l.line, l.col))
                    .unwrap_or_default(),
            ),
            (
                "error",
                f.map(|f| cap_utf16(&f.error, MAX_ERROR_OUTPUT))
                    .unwrap_or_default(),
            ),
        ]
    }

    fn outputs(&self, summary_file: Option<&Path>) -> Vec<(&'static str, String)> {
        let file = summary_file.map_or(String::new(), |p| p.display().to_string());
        if let (None, Some((status, env, message))) = (&self.summary, &self.command_failed) {
            let failure = summary::Failure {
                version: self.failed.as_ref().and_then(|f| f.version.clone()),
                location: self.failed.as_ref().and_then(|f| f.location.clone()),
                error: self
                    .failed
                    .as_ref()
                    .map_or(message.clone(), |f| f.error.clone()),
            };
            let mut out = vec![
                ("environment", env.clone().unwrap_or_default()),
                ("status", status.as_str().to_string()),
            ];
            out.extend(self.failure_outputs(Some(&failure)));
            return out;
        }
        match &self.summary {
            Some(r) => {
                let mut out = vec![
                    ("environment", r.environment.clone().unwrap_or_default()),
                    ("status", r.status.as_str().to_string()),
                    ("applied-count", r.applied.len().to_string()),
                    ("applied", r.applied.join("\n")),
                ];
                // Only what was read: a refused run checked nothing.
                if r.database_read {
                    out.push(("pending-count", r.pending.len().to_string()));
                }
                out.extend([
                    (
                        "backup-marker",
                        r.backup
                            .as_ref()
                            .map_or(String::new(), |b| b.id.to_string()),
                    ),
                    (
                        "backup-file",
                        r.backup
                            .as_ref()
                            .and_then(|b| b.dump.as_ref())
                            .map_or(String::new(), |d| self.workspace_path(Path::new(&d.path))),
                    ),
                    (
                        "rolled-back-count",
                        r.rolled_back_versions().len().to_string(),
                    ),
                    ("rolled-back", r.rolled_back_versions().join("\n")),
                    ("summary-file", file),
                ]);
                out.extend(self.failure_outputs(r.failure.as_ref()));
                out
            }
            None => {
                let applied: Vec<&str> = self
                    .migrations
                    .iter()
                    .filter(|m| m.status == "applied")
                    .map(|m| m.version.as_str())
                    .collect();
                let failed = self.migrations.iter().any(|m| m.status == "failed")
                    || self.annotations.iter().any(|a| a.level == Level::Error);
                let mut out = vec![
                    (
                        "status",
                        if failed { "failed" } else { "success" }.to_string(),
                    ),
                    ("applied-count", applied.len().to_string()),
                    ("applied", applied.join("\n")),
                    ("summary-file", file),
                ];
                out.extend(self.failure_outputs(self.failed.as_ref()));
                out
            }
        }
    }

    /// Every run writes at least `status`.
    fn write_outputs(&mut self, summary_file: Option<&Path>) {
        let entries = self.outputs(summary_file);
        match self.files.output.clone() {
            Some(path) => {
                let redacted: Vec<(&str, String)> =
                    entries.iter().map(|(n, v)| (*n, self.redact(v))).collect();
                if let Err(e) = append_outputs(&path, &redacted) {
                    self.cmd(command(
                        "warning",
                        &[],
                        &format!("writing step outputs to {}: {e}", path.display()),
                    ));
                }
            }
            None => {
                // Running locally: show them rather than emit the deprecated set-output.
                for (n, v) in entries {
                    eprintln!("output {n}={}", self.redact(&v).replace('\n', ","));
                }
            }
        }
    }

    fn track(&mut self, e: &Event<'_>) {
        match e {
            Event::SectionFinished {
                direction: Direction::Up,
                version,
                name,
                mode,
                duration,
            } => self.migrations.push(MigrationRow {
                version: version.to_string(),
                name: name.to_string(),
                status: if *mode == Mode::Rehearsal {
                    "rehearsed"
                } else {
                    "applied"
                }
                .into(),
                duration_ms: Some(duration.as_millis() as u64),
                checksum: String::new(),
            }),
            Event::SectionFailed {
                direction: Direction::Up,
                version,
                name,
                location,
                message,
            } => {
                self.migrations.push(MigrationRow {
                    version: version.to_string(),
                    name: name.to_string(),
                    status: "failed".into(),
                    duration_ms: None,
                    checksum: String::new(),
                });
                if self.failed.is_none() {
                    self.failed = Some(summary::Failure {
                        version: Some(version.to_string()),
                        location: location.cloned(),
                        error: message.to_string(),
                    });
                }
            }
            _ => {}
        }
    }
}

fn level_word(l: Level) -> &'static str {
    match l {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Notice => "notice",
    }
}

fn status_badge(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Success => "✅ success",
        RunStatus::DryRun => "🧪 dry run (nothing written)",
        RunStatus::Failed => "❌ failed",
        RunStatus::Refused => "⛔ refused",
        RunStatus::Skipped => "⏭️ skipped",
        RunStatus::Cancelled => "🛑 cancelled",
        RunStatus::ConfigError => "⚙️ configuration error",
    }
}

fn ms_text(ms: Option<u64>) -> String {
    ms.map_or("—".into(), |m| {
        human_duration(std::time::Duration::from_millis(m))
    })
}

/// The summary's tables, rendered last and cut to fit: each keeps its heading and as
/// many rows as the budget allows, then says how many more there are.
#[derive(Default)]
struct Tables(Vec<Table>);

struct Table {
    /// Heading and header rows.
    head: String,
    rows: Vec<String>,
}

impl Tables {
    fn add(&mut self, head: String, rows: Vec<String>) {
        if !rows.is_empty() {
            self.0.push(Table { head, rows });
        }
    }

    fn render(&self, budget: usize) -> String {
        let mut out = String::new();
        for t in &self.0 {
            out.push_str(&t.head);
            for (i, row) in t.rows.iter().enumerate() {
                // Leave room for this table's "… and N more" line and the next heading.
                if out.len() + row.len() + 200 > budget {
                    let more = t.rows.len() - i;
                    let cols = t
                        .head
                        .lines()
                        .last()
                        .map_or(1, |l| l.matches('|').count().saturating_sub(1));
                    out.push_str(&format!(
                        "| … and {} more (not shown: the job summary is limited to 1 MiB; the step log lists them all) |{}\n",
                        group_digits(more),
                        " |".repeat(cols.saturating_sub(1))
                    ));
                    break;
                }
                out.push_str(row);
            }
        }
        out
    }
}

/// `2980` → `2 980`, as the summary writes counts.
fn group_digits(n: usize) -> String {
    let d = n.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn migrations_table(rows: &[MigrationRow], tables: &mut Tables) {
    let lines = rows
        .iter()
        .map(|m| {
            let sum = if m.checksum.is_empty() {
                "—".to_string()
            } else {
                format!("`{}`", &m.checksum[..12.min(m.checksum.len())])
            };
            format!(
                "| {} | {} | {} | {} | {sum} |\n",
                md(&m.version),
                md(&m.name),
                md(&m.status),
                ms_text(m.duration_ms)
            )
        })
        .collect();
    tables.add(
        "\n### Migrations\n\n| Version | Name | Status | Duration | Checksum |\n|---|---|---|---|---|\n".into(),
        lines,
    );
}

/// The job summary of a `lint` command: counts, then one row per finding.
fn lint_markdown(
    findings: &[crate::lint::Finding],
    file_of: &dyn Fn(&Location) -> String,
    s: &mut String,
    tables: &mut Tables,
) {
    let c = crate::lint::Counts::of(findings);
    s.push_str(&format!(
        "## pgrollout lint — {} error(s), {} warning(s), {} info\n\n",
        c.error, c.warning, c.info
    ));
    let rows = findings
        .iter()
        .map(|f| {
            let l = Location::new(&f.path, f.line, f.col);
            format!(
                "| {} | {} | {} | {} | {} |\n",
                f.severity,
                markdown::code(f.rule),
                markdown::code(&format!("{}:{}:{}", file_of(&l), f.line, f.col)),
                md(&cap_utf16(&f.message, 1000)),
                md(&cap_utf16(&f.fix, 1000))
            )
        })
        .collect();
    tables.add(
        "| Severity | Rule | Location | Message | Fix |\n|---|---|---|---|---|\n".into(),
        rows,
    );
}

/// The head of a pipeline run's summary: status, message, backup marker, rollback
/// instructions, drift — everything that must survive truncation.
fn pipeline_head(r: &RunSummary, in_workspace: &dyn Fn(&Path) -> String, s: &mut String) {
    s.push_str(&format!(
        "## pgrollout{} — {}\n\n",
        r.environment
            .as_deref()
            .map(|e| format!(" · {}", md(e)))
            .unwrap_or_default(),
        status_badge(r.status)
    ));
    // Only what the run established: a refused or misconfigured run ran no step and
    // read nothing, so it claims neither a dry-run mode nor a pending count.
    let mut facts = vec![format!("**Trigger:** {}", md(&r.trigger))];
    if r.steps.is_empty() {
        facts.push("nothing was run: the database was not read".into());
    } else {
        facts.push(format!(
            "**Dry run:** {}",
            if r.dry_run { "yes" } else { "no" }
        ));
        facts.push(format!("**Applied:** {}", r.applied.len()));
    }
    if r.database_read {
        facts.push(format!("**Pending:** {}", r.pending.len()));
    }
    s.push_str(&facts.join(" · "));
    s.push_str("\n\n");
    if !r.message.is_empty() {
        s.push_str(&format!(
            "> {}\n",
            md(&cap_utf16(&r.message, MAX_SUMMARY_MESSAGE))
        ));
    }
    if let Some(b) = &r.backup {
        s.push_str(&format!(
            "\n**Backup marker:** #{} at {} · WAL LSN {} · txid {}{}\n",
            b.id,
            md(&b.created_at),
            b.wal_lsn.as_deref().map_or("—".to_string(), markdown::code),
            b.txid,
            b.dump
                .as_ref()
                .map(|d| format!(
                    " · dump {} ({} bytes, sha256 `{}`)",
                    markdown::code(&in_workspace(Path::new(&d.path))),
                    d.size_bytes,
                    &d.sha256[..16.min(d.sha256.len())]
                ))
                .unwrap_or_default()
        ));
        // A failed run's rollback instructions say how to restore; a good one says it here.
        if let (Some(d), None) = (&b.dump, &r.rollback) {
            s.push_str(&format!(
                "\n{}\n",
                super::summary::dump_line(d, "DATABASE_URL").replace(['\r', '\n'], " ")
            ));
        }
    }
    if let Some(rb) = &r.rollback {
        s.push_str("\n### Rollback instructions\n\n");
        for l in super::summary::rollback_lines(rb) {
            s.push_str(&format!("- {}\n", l.replace(['\r', '\n'], " ")));
        }
        generated_markdown(&rb.generated, s);
    }
    smoke_output_markdown(&r.smoke_output, s);
    rolled_back_markdown(&r.rolled_back, s);
    for d in &r.drift {
        s.push('\n');
        s.push_str(&super::markdown::drift_summary(d));
    }
}

/// Whether `detail` repeats the run's message (shown once, at the top).
fn said_above(message: &str, detail: &str) -> bool {
    !message.is_empty()
        && !detail.is_empty()
        && (message.contains(detail) || detail.contains(message))
}

/// The pipeline run's tables: steps, migrations, lint findings.
fn pipeline_tables(r: &RunSummary, file_of: &dyn Fn(&Location) -> String, tables: &mut Tables) {
    let steps = r
        .steps
        .iter()
        .map(|st| {
            let status = match st.status {
                summary::StepStatus::Passed => "✅ passed",
                summary::StepStatus::Failed => "❌ failed",
                summary::StepStatus::Skipped => "⏭️ skipped",
            };
            format!(
                "| {} | {status} | {} | {} |\n",
                md(&st.name),
                if st.status == summary::StepStatus::Skipped {
                    "—".into()
                } else {
                    ms_text(Some(st.duration_ms))
                },
                if said_above(&r.message, &st.detail) {
                    "see the message above".to_string()
                } else {
                    md(&cap_utf16(&st.detail, MAX_SUMMARY_MESSAGE))
                }
            )
        })
        .collect();
    tables.add(
        "\n### Steps\n\n| Step | Status | Duration | Detail |\n|---|---|---|---|\n".into(),
        steps,
    );
    migrations_table(&r.migrations, tables);
    let findings = r
        .findings
        .iter()
        .map(|f| {
            format!(
                "| {} | {} | {} | {} |\n",
                level_word(f.level),
                f.rule.as_deref().map_or("—".into(), md),
                f.location.as_ref().map_or("—".into(), |l| {
                    markdown::code(&format!("{}:{}:{}", file_of(l), l.line, l.col))
                }),
                md(&f.message)
            )
        })
        .collect();
    tables.add(
        "\n### Lint findings\n\n| Severity | Rule | Location | Message |\n|---|---|---|---|\n"
            .into(),
        findings,
    );
}

/// Generated rollbacks, marked as such, in fenced blocks (a fence longer than any
/// backtick run in the SQL, so the SQL cannot close it).
fn generated_markdown(generated: &[summary::GeneratedDown], s: &mut String) {
    for g in generated {
        s.push_str(&format!(
            "\n**Generated rollback of {}** (GENERATED from its up section — review before running with `--allow-generated`):\n\n{}",
            md(&g.version),
            fenced("sql", &g.sql)
        ));
    }
}

/// A fenced block no line of `text` can close: one backtick longer than its longest run.
fn fenced(info: &str, text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{info}\n{}\n{fence}\n", text.trim_end())
}

/// The end of each failed smoke-test command's stdout and stderr, as inert code blocks.
fn smoke_output_markdown(outputs: &[summary::CommandOutput], s: &mut String) {
    for o in outputs {
        s.push_str(&format!(
            "\n**Smoke test {}** {}:\n",
            markdown::code(&o.name),
            md(&o.reason)
        ));
        for (name, tail) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
            if tail.lines.is_empty() {
                s.push_str(&format!("\n{}\n", tail.heading(name)));
            } else {
                s.push_str(&format!("\n{}:\n\n", tail.heading(name)));
                s.push_str(&fenced("text", &tail.lines.join("\n")));
            }
        }
    }
}

/// What `rollback` steps rolled back (or rehearsed) and where each down SQL came from.
fn rolled_back_markdown(rows: &[summary::RolledBackRow], s: &mut String) {
    if rows.is_empty() {
        return;
    }
    s.push_str("\n### Rolled back\n\n| Version | Name | Down SQL | Status |\n|---|---|---|---|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            md(&r.version),
            md(&r.name),
            md(&r.origin),
            md(&r.status)
        ));
    }
}

impl Reporter for GitHub {
    fn event(&mut self, e: &Event<'_>) {
        self.track(e);
        match e {
            Event::Secret { value } => {
                self.mask(value);
                self.log.event(e);
            }
            Event::StepStarted { step, index, total } => {
                self.open_group(&format!("pgrollout {}/{total}: {step}", index + 1));
                self.in_step = true;
                self.log.event(e);
            }
            Event::StepFinished { .. } => {
                self.log.event(e);
                self.drain();
                self.close_group();
                self.in_step = false;
            }
            Event::SectionStarted {
                direction,
                version,
                name,
                mode,
                ..
            } if !self.in_step => {
                let verb = match (direction, *mode == Mode::Rehearsal) {
                    (Direction::Up, true) => "rehearse",
                    (Direction::Up, false) => "apply",
                    (Direction::Down, true) => "rehearse rolling back",
                    (Direction::Down, false) => "roll back",
                };
                self.open_group(&format!("{verb} {version} {name}"));
                self.log.event(e);
            }
            Event::SectionFinished { .. } | Event::SectionNotRehearsed { .. } if !self.in_step => {
                self.log.event(e);
                self.drain();
                self.close_group();
            }
            Event::SectionFailed {
                direction,
                version,
                name,
                location,
                message,
            } => {
                self.log.event(e);
                self.drain();
                if !self.in_step {
                    self.close_group();
                }
                let title = match direction {
                    Direction::Up => format!("migration {version} {name} failed"),
                    Direction::Down => format!("rollback of {version} {name} failed"),
                };
                self.annotate(Level::Error, &title, *location, message);
            }
            Event::Diagnostic {
                level,
                location,
                message,
            } => {
                self.log.event(e);
                let title = match level {
                    Level::Error => "pgrollout error",
                    Level::Warning => "pgrollout warning",
                    Level::Notice => "pgrollout",
                };
                self.annotate(*level, title, *location, message);
            }
            Event::LintFinding { finding: f } => {
                self.log.event(e);
                let level = match f.severity {
                    crate::lint::Severity::Error => Level::Error,
                    crate::lint::Severity::Warning => Level::Warning,
                    crate::lint::Severity::Info => Level::Notice,
                };
                let location = Location::new(&f.path, f.line, f.col);
                self.annotations.push(Annotation {
                    level,
                    title: format!("lint: {}", f.rule),
                    location: Some(location),
                    message: if f.fix.is_empty() {
                        f.message.clone()
                    } else {
                        format!("{}\nFix: {}", f.message, f.fix)
                    },
                    lint: true,
                });
                self.lint_findings.push((*f).clone());
            }
            Event::CommandFailed {
                status,
                environment,
                message,
            } => {
                self.command_failed = Some((
                    *status,
                    environment.map(str::to_string),
                    message.to_string(),
                ));
            }
            Event::PipelineFinished { summary } => {
                self.close_group();
                self.log.event(e);
                self.summary = Some((*summary).clone());
            }
            _ => self.log.event(e),
        }
        self.drain();
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.drain();
        self.close_group();
        self.emit_annotations();
        let file = self.write_summary();
        self.write_outputs(file.as_deref());
        let _ = self.out.flush();
    }
}

impl Drop for GitHub {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests;
