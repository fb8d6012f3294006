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
    pub drift: Vec<crate::engine::drift::DriftReport>,
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
        }
    }
}

/// Rollback instructions, one item per line, commands in backticks (readable as plain
/// text and as Markdown list items).
pub fn rollback_lines(r: &Rollback) -> Vec<String> {
    let url = r
        .url_variable
        .as_deref()
        .map_or("DATABASE_URL".to_string(), str::to_string);
    let mut out = Vec::new();
    if let Some(f) = &r.failed {
        if r.failed_partially_applied {
            out.push(format!(
                "Migration {f} ran outside a transaction and stopped half-way: the statements before the failing one are in effect. Fix the cause, then `pgrollout repair` and run again."
            ));
        } else {
            out.push(format!(
                "Migration {f} was rolled back with its transaction: nothing of it is in effect."
            ));
        }
    }
    if r.reversible.is_empty() && r.irreversible.is_empty() {
        out.push("No migration was applied by this run: the schema is as it was before.".into());
    } else {
        let applied = if r.applied.is_empty() {
            r.reversible
                .iter()
                .chain(&r.irreversible)
                .cloned()
                .collect()
        } else {
            r.applied.clone()
        };
        out.push(format!(
            "Applied by this run (newest first): {}.",
            applied.join(", ")
        ));
        let generated = r
            .command
            .as_deref()
            .is_some_and(|c| c.contains("--allow-generated"));
        if let Some(cmd) = &r.command {
            if generated {
                out.push(format!(
                    "No down section for {}, but a rollback can be generated from the up section (GENERATED — review the SQL below first); to revert: `DATABASE_URL=\"${url}\" {cmd}`",
                    r.generated
                        .iter()
                        .map(|g| g.version.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            } else {
                out.push(format!(
                    "Down migrations exist for all of them; to revert: `DATABASE_URL=\"${url}\" {cmd}`"
                ));
            }
            if let Some(to) = &r.to_command {
                out.push(format!("Equivalent: `DATABASE_URL=\"${url}\" {to}`"));
            }
        } else if !r.irreversible.is_empty() {
            out.push(format!(
                "No down section for {}: revert by hand, or restore from the backup below.",
                r.irreversible.join(", ")
            ));
        }
    }
    if let Some(b) = &r.backup {
        if let Some(lsn) = &b.wal_lsn {
            out.push(format!(
                "Point-in-time recovery: backup marker #{} recorded WAL LSN `{lsn}` (txid {}) at {} — restore with `recovery_target_lsn = '{lsn}'` (before this run's changes).",
                b.id, b.txid, b.created_at
            ));
        }
        if let Some(d) = &b.dump {
            out.push(format!(
                "Dump taken before the run: `{}` ({} bytes, sha256 {}) — restore with `pg_restore --clean --if-exists --no-owner -d \"${url}\" '{}'`.",
                d.path, d.size_bytes, d.sha256, d.path
            ));
        }
    } else {
        out.push(
            "No backup marker was recorded in this run (add the `backup-marker` step).".into(),
        );
    }
    out
}

/// The closing lines of a run for a terminal.
pub fn closing(s: &RunSummary) -> String {
    let mut out = format!(
        "pipeline {}{}: {}\n",
        s.status.as_str(),
        s.environment
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default(),
        s.message
    );
    if let Some(r) = &s.rollback {
        out.push_str("rollback instructions:\n");
        for l in rollback_lines(r) {
            out.push_str(&format!("  - {l}\n"));
        }
        for g in &r.generated {
            out.push_str(&format!(
                "  generated rollback of {} (GENERATED, review before running):\n",
                g.version
            ));
            for l in g.sql.lines() {
                out.push_str(&format!("    {l}\n"));
            }
        }
    }
    out
}
