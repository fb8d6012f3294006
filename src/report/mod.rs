//! The seam between the core and its outputs: typed events, the [`Reporter`] that
//! receives them, and the data they carry. Definitions only — the renderers live in
//! `render/`. The core never prints; a new observable fact is a new [`Event`] variant.

pub mod environments;
pub mod summary;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The session holding the migration lock, as `pg_locks` and `pg_stat_activity` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LockHolder {
    pub pid: i32,
    pub application_name: String,
    pub user: String,
    pub client: String,
    /// When the holding session connected (RFC 3339).
    pub since: String,
    pub held_for_secs: i64,
}

/// A live session of one run (other than the one looking), as `pg_stat_activity` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveRunner {
    pub pid: i32,
    pub state: String,
    pub query: String,
    pub for_secs: i64,
}

impl std::fmt::Display for LiveRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "server process {} ({} for {}s: {})",
            self.pid, self.state, self.for_secs, self.query
        )
    }
}

/// A session that held a lock a migration waited for, as seen while it waited.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Blocker {
    pub pid: i32,
    pub application_name: String,
    pub state: String,
    pub query: String,
    /// How long its transaction (or, outside one, its last query) had been running.
    pub for_secs: i64,
    /// The relations it held locks on.
    pub relations: String,
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} (application_name '{}', {} for {}s",
            self.pid, self.application_name, self.state, self.for_secs
        )?;
        if !self.relations.is_empty() {
            write!(f, ", holding locks on {}", self.relations)?;
        }
        write!(f, "): {}", self.query)
    }
}

/// A migration recorded as running, and whether its runner is still at it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunningRow {
    pub version: String,
    pub name: String,
    /// 0-based index of the statement recorded as running.
    pub statement_index: Option<i32>,
    pub since: String,
    pub run_id: String,
    /// The session of that run, when it is still connected: the migration is running.
    pub runner: Option<LiveRunner>,
    /// Who holds the migration lock now, if anyone.
    pub lock_holder: Option<LockHolder>,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} (application_name '{}', user {}, from {}, connected since {}, {}s ago)",
            self.pid, self.application_name, self.user, self.client, self.since, self.held_for_secs
        )
    }
}

/// Redact secrets from any text about to leave the process.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.len() >= 2 {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// `s` cut to at most `max` bytes on a character boundary, the cut marked with `…`.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A place in a file, for messages and annotations.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub path: PathBuf,
    pub line: u32,
    pub col: u32,
}

impl Location {
    pub fn new(path: &Path, line: u32, col: u32) -> Location {
        Location {
            path: path.to_path_buf(),
            line,
            col,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.col)
    }
}

/// The state of one version, files and database together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Applied,
    Pending,
    /// Applied, but the file's checksum differs from the recorded one.
    Modified,
    /// Applied, but no file on disk has this version.
    MissingFile,
    Failed,
    /// A transaction:false migration recorded as running: another runner is applying it,
    /// or a runner died while it ran.
    Running,
    /// Covered by a baseline: never applied by this tool.
    Baseline,
}

/// How a migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One transaction, tracking row included.
    Transactional,
    /// `transaction:false`: statement by statement.
    NonTransactional,
    /// Dry run: inside a transaction that is rolled back.
    Rehearsal,
}

/// Which section of a migration runs: `up` applies it, `down` rolls it back.
pub use crate::migration::Direction;

/// Where the down SQL that runs comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DownOrigin {
    /// Stored in the tracking row at apply time.
    Stored,
    /// The migration file's down section (nothing was stored, or `use_file_down`).
    File,
    /// Generated from the up section (see [`crate::migration::inverse`]).
    Generated,
}

impl DownOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            DownOrigin::Stored => "stored",
            DownOrigin::File => "file",
            DownOrigin::Generated => "generated",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Notice,
    Warning,
    Error,
}

/// Everything observable that happens during a command.
#[derive(Debug)]
pub enum Event<'a> {
    Connecting {
        target: &'a str,
    },
    ConnectRetry {
        attempt: u32,
        wait: Duration,
        reason: &'a str,
    },
    Connected {
        target: &'a str,
        server_version: &'a str,
    },
    LockWaiting {
        waited: Duration,
        holder: Option<&'a LockHolder>,
    },
    LockAcquired {
        waited: Duration,
    },
    TrackingSchemaReady {
        schema: &'a str,
        /// Version found before; None when the schema was created.
        from: Option<i32>,
        to: i32,
    },
    /// Nothing to do.
    UpToDate {
        applied: usize,
    },
    /// The migrations whose `direction` section is about to run (or be rehearsed), in
    /// the order they will: oldest first for up, newest first for down.
    PlanReady {
        direction: Direction,
        migrations: &'a [(String, String)],
        dry_run: bool,
    },
    /// One section of one migration is about to run. `path`: the file, for an up;
    /// `origin`: where the SQL comes from, for a down.
    SectionStarted {
        direction: Direction,
        version: &'a str,
        name: &'a str,
        path: Option<&'a Path>,
        origin: Option<DownOrigin>,
        mode: Mode,
        statements: usize,
    },
    /// A transaction:false statement is about to run.
    StatementStarted {
        version: &'a str,
        index: usize,
        total: usize,
        line: u32,
        label: &'a str,
    },
    /// SQLSTATE 55P03: the migration's transaction was rolled back and will be retried.
    LockTimeoutRetry {
        version: &'a str,
        attempt: u32,
        max: u32,
        wait: Duration,
        message: &'a str,
    },
    /// NOTICE/WARNING from the server. Untrusted text: reporters must neutralise it.
    ServerNotice {
        version: Option<&'a str>,
        severity: &'a str,
        message: &'a str,
    },
    /// A section ran to the end: applied or rolled back (mode `Rehearsal`: in a dry
    /// run, then undone).
    SectionFinished {
        direction: Direction,
        version: &'a str,
        name: &'a str,
        mode: Mode,
        duration: Duration,
    },
    /// Dry run: the section was not rehearsed (it runs outside a transaction, or comes
    /// after one that does).
    SectionNotRehearsed {
        direction: Direction,
        version: &'a str,
        name: &'a str,
        reason: &'a str,
    },
    /// A section failed on the server; `message` is the error without `location`.
    SectionFailed {
        direction: Direction,
        version: &'a str,
        name: &'a str,
        location: Option<&'a Location>,
        message: &'a str,
    },
    /// A problem or remark about the files or the database state.
    Diagnostic {
        level: Level,
        location: Option<&'a Location>,
        message: &'a str,
    },
    /// Free-form progress line from a command (e.g. "created migrations/…").
    Info {
        message: &'a str,
    },
    /// A secret learned at run time (a database URL read from the variable a pipeline
    /// environment names): reporters mask it before it could be printed.
    Secret {
        value: &'a str,
    },
    /// A pipeline step begins (a collapsible log group on GitHub).
    StepStarted {
        step: &'a str,
        index: usize,
        total: usize,
    },
    /// A pipeline step ended.
    StepFinished {
        step: &'a str,
        status: summary::StepStatus,
        duration: Duration,
        detail: &'a str,
    },
    /// Review delay: time left before `apply` (Ctrl-C / SIGTERM stops with nothing applied).
    Countdown {
        remaining: Duration,
    },
    /// The command ended with an error before (or instead of) a pipeline result: the
    /// `status` output says which kind, with the environment when one was named.
    CommandFailed {
        status: summary::RunStatus,
        environment: Option<&'a str>,
        message: &'a str,
    },
    /// The pipeline's result: the job summary and step outputs are built from it.
    PipelineFinished {
        summary: &'a summary::RunSummary,
    },
    /// `pgrollout test`: the verdict on one migration — `reversible`, `irreversible`,
    /// `broken` or `untested` — with one line per difference or error.
    MigrationTested {
        version: &'a str,
        name: &'a str,
        verdict: &'a str,
        details: &'a [String],
    },
    /// A lint finding (the `lint` command and the pipeline's `lint` step), emitted file
    /// by file in position order: terminals group them by file, GitHub annotates the
    /// statement and lists them in the job summary.
    LintFinding {
        finding: &'a crate::lint::Finding,
    },
    /// A shadow database for a rehearsal is ready: `origin` says what it holds (the
    /// target's schema from `pg_dump --schema-only`, or migrations applied in order).
    ShadowReady {
        origin: &'a str,
        tables: usize,
        took: Duration,
    },
    /// Where a pending migration was rehearsed, and why not on the target when it was not.
    Rehearsed {
        version: &'a str,
        name: &'a str,
        place: RehearsalPlace,
        reason: Option<&'a str>,
    },
}

/// Where a migration was rehearsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RehearsalPlace {
    /// On the shadow (`lint --rehearse`: the target is never written to).
    Shadow,
    /// On the shadow, then on the target inside a transaction that was rolled back.
    ShadowAndTarget,
    /// On the shadow only: the target rehearsal would have rewritten or scanned a
    /// production table under a heavy lock, or comes after one that would.
    ShadowOnly,
    /// Nowhere: no shadow could be built, so nothing proved the target rehearsal safe.
    Nowhere,
}

impl RehearsalPlace {
    pub fn as_str(self) -> &'static str {
        match self {
            RehearsalPlace::Shadow => "rehearsed on the shadow",
            RehearsalPlace::ShadowAndTarget => {
                "rehearsed on the shadow and on the target (rolled back)"
            }
            RehearsalPlace::ShadowOnly => "rehearsed on the shadow only",
            RehearsalPlace::Nowhere => "not rehearsed",
        }
    }
}

/// Receives events. Implementations: terminal (human), GitHub Actions, JSON.
pub trait Reporter {
    fn event(&mut self, event: &Event<'_>);
    /// The command is over: flush what was held back (annotations, job summary, outputs).
    fn finish(&mut self) {}
}

/// Collects nothing: for library callers that do not care.
pub struct Silent;
impl Reporter for Silent {
    fn event(&mut self, _: &Event<'_>) {}
}

/// Format a duration the way logs show it: `850 ms`, `2.4 s`, `3 min 05 s`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        format!("{} min {:02} s", s / 60, s % 60)
    }
}
