//! The result of a pipeline run as plain data: what reporters turn into a job summary,
//! step outputs, or a closing terminal line. Built by `pipeline`, formatted only by
//! reporters.

use serde::Serialize;

use super::{Level, Location};

/// How a pipeline run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Every step passed and migrations were applied (or nothing was pending).
    Success,
    /// Every step passed, nothing was written: a dry run.
    DryRun,
    /// A step failed.
    Failed,
    /// A safety gate refused the run before anything touched the database.
    Refused,
    /// The event selected no environment: nothing to do.
    Skipped,
    /// Cancelled (SIGINT/SIGTERM) before anything was applied.
    Cancelled,
    /// The pipeline file, a setting or the environment's database URL is wrong (or
    /// missing): nothing was run.
    ConfigError,
}

impl RunStatus {
    /// The value of the `status` output.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Success => "success",
            RunStatus::DryRun => "dry-run",
            RunStatus::Failed => "failed",
            RunStatus::Refused => "refused",
            RunStatus::Skipped => "skipped",
            RunStatus::Cancelled => "cancelled",
            RunStatus::ConfigError => "config-error",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Passed,
    Failed,
    /// Not run: a dry run skips the steps that write, a failure skips the rest.
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    pub name: String,
    pub status: StepStatus,
    pub duration_ms: u64,
    /// One line on what the step found or did.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MigrationRow {
    pub version: String,
    pub name: String,
    /// applied, rehearsed, pending, failed, not rehearsed, already applied…
    pub status: String,
    pub duration_ms: Option<u64>,
    pub checksum: String,
}

/// A lint finding or any other problem worth listing in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct FindingRow {
    pub level: Level,
    pub rule: Option<String>,
    pub location: Option<Location>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DumpInfo {
    pub path: String,
    pub size_bytes: u64,
    pub sha256: String,
    /// Written into a CI job's workspace: gone when the job ends unless a later step
    /// uploads it (the example workflows upload it as an artifact).
    #[serde(default)]
    pub in_job_workspace: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupInfo {
    pub id: i64,
    pub created_at: String,
    pub wal_lsn: Option<String>,
    pub txid: i64,
    pub dump: Option<DumpInfo>,
}

/// What the operator can do after a failure.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rollback {
    /// Migrations applied by this run, newest first, that have a down section.
    pub reversible: Vec<String>,
    /// Applied by this run without a down section.
    pub irreversible: Vec<String>,
    /// The exact command that reverts this run's migrations, when all have a down section.
    pub command: Option<String>,
    /// The failed migration, if one failed.
    pub failed: Option<String>,
    /// Whether the failed migration ran outside a transaction (partly applied).
    pub failed_partially_applied: bool,
    /// The migration that failed its rehearsal (dry-run), if one did.
    pub failed_in_rehearsal: Option<String>,
    pub backup: Option<BackupInfo>,
    /// Name of the environment variable holding the URL, for copy-paste commands.
    pub url_variable: Option<String>,
    /// The same rollback as `--to <newest version applied before the run>`.
    pub to_command: Option<String>,
    /// Every migration applied by this run, newest first.
    pub applied: Vec<String>,
    /// Generated rollbacks for this run's migrations without down SQL: what
    /// `--allow-generated` would run.
    pub generated: Vec<GeneratedDown>,
}

/// Everything a pipeline run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub status: RunStatus,
    pub environment: Option<String>,
    /// What selected the environment: "push to branch staging", "--env staging", …
    pub trigger: String,
    pub dry_run: bool,
    /// One line: why it was skipped, refused or failed; what it did otherwise.
    pub message: String,
    pub steps: Vec<StepRow>,
    pub migrations: Vec<MigrationRow>,
    pub findings: Vec<FindingRow>,
    pub applied: Vec<String>,
    pub pending: Vec<String>,
    pub backup: Option<BackupInfo>,
    pub rollback: Option<Rollback>,
    /// What `rollback` steps rolled back (or rehearsed, in a dry run), newest first.
    pub rolled_back: Vec<RolledBackRow>,
    /// The reports of `drift` steps.
    pub drift: Vec<crate::schema::DriftReport>,
    /// Whether the tracking schema was read at the end: `pending` is known. A refused
    /// or misconfigured run never reads it, and claims no pending count.
    pub database_read: bool,
    /// What failed, for the `failed-*` and `error` outputs.
    pub failure: Option<Failure>,
    /// The end of what each failed smoke-test command printed.
    pub smoke_output: Vec<CommandOutput>,
}

/// The last lines a command printed on each stream (bounded), for a failed check.
#[derive(Debug, Clone, Serialize)]
pub struct CommandOutput {
    /// The check's name.
    pub name: String,
    /// How it ended: "exited with exit status: 22", "did not finish within 30 s".
    pub reason: String,
    pub stdout: StreamTail,
    pub stderr: StreamTail,
}

/// The last lines of one output stream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamTail {
    pub lines: Vec<String>,
    /// How many lines the stream had in all.
    pub total_lines: usize,
}

impl StreamTail {
    /// "stdout (last 20 of 61 lines)", "stderr (2 lines)", "stdout (empty)".
    pub fn heading(&self, stream: &str) -> String {
        match (self.total_lines, self.lines.len()) {
            (0, _) => format!("{stream} (empty)"),
            (t, n) if t == n => format!("{stream} ({t} line(s))"),
            (t, n) => format!("{stream} (last {n} of {t} lines)"),
        }
    }
}

/// The failure that ended a run: the migration (version and position in its file) when
/// one failed, and the error's text.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub version: Option<String>,
    pub location: Option<Location>,
    pub error: String,
}

/// One migration handled by a `rollback` step.
#[derive(Debug, Clone, Serialize)]
pub struct RolledBackRow {
    pub version: String,
    pub name: String,
    /// Where its down SQL came from: stored, file or generated.
    pub origin: String,
    /// `rolled back`, `rehearsed` or `not rehearsable`.
    pub status: String,
}

impl RunSummary {
    /// Versions actually rolled back (not rehearsed): the `rolled-back` output.
    pub fn rolled_back_versions(&self) -> Vec<String> {
        self.rolled_back
            .iter()
            .filter(|r| r.status == "rolled back")
            .map(|r| r.version.clone())
            .collect()
    }
}

/// A rollback generated from a migration's up section, offered when it has no down.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratedDown {
    pub version: String,
    pub sql: String,
}

impl RunSummary {
    /// A run that ended before any step.
    pub fn early(status: RunStatus, trigger: String, message: String) -> RunSummary {
        RunSummary {
            status,
            environment: None,
            trigger,
            dry_run: false,
            message,
            steps: Vec::new(),
            migrations: Vec::new(),
            findings: Vec::new(),
            applied: Vec::new(),
            pending: Vec::new(),
            backup: None,
            rollback: None,
            rolled_back: Vec::new(),
            drift: Vec::new(),
            database_read: false,
            failure: None,
            smoke_output: Vec::new(),
        }
    }
}
