//! What `status --all` and `report` carry from the environments to the renderers:
//! per environment its reach, health, counts, migrations, history and backup markers,
//! and the versions × environments comparison. Data only.

use std::collections::BTreeMap;

use serde::Serialize;

use super::State;

/// The shape of [`Overview`] as JSON (docs/report.schema.json); fields are only added.
pub const REPORT_FORMAT_VERSION: u32 = 1;

/// A migration slower than this makes an environment's health `warning`: it held its
/// locks that long.
pub const SLOW_MIGRATION_MS: i64 = 60_000;

/// healthy / warning / error, as the seed's dashboard defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Every migration applied successfully, none slow.
    Healthy,
    /// Pending migrations, a running/interrupted one, or a slow one.
    Warning,
    /// Failed migrations, checksum mismatches (modified files), applied versions without
    /// a file, or the database could not be read.
    Error,
    /// Not read (skipped).
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub status: HealthStatus,
    /// Why, one line each; empty when healthy.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub total: usize,
    pub applied: usize,
    pub pending: usize,
    pub failed: usize,
    pub modified: usize,
    pub missing_file: usize,
    pub running: usize,
    pub baseline: usize,
}

/// One migration in one environment.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationRow {
    pub version: String,
    pub name: String,
    pub state: State,
    pub applied_at: Option<chrono::DateTime<chrono::Utc>>,
    pub applied_by: Option<String>,
    pub duration_ms: Option<i64>,
    pub checksum: Option<String>,
    pub error: Option<String>,
}

/// Whether an environment was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    Ok,
    Skipped,
    Unreachable,
}

/// Everything known about one environment.
#[derive(Debug, Clone, Serialize)]
pub struct EnvReport {
    pub name: String,
    pub reach: Reach,
    /// Why it was skipped or could not be read.
    pub reason: Option<String>,
    /// The redacted URL.
    pub target: Option<String>,
    pub server_version: Option<String>,
    pub tracking_schema_exists: bool,
    pub health: Health,
    pub counts: Counts,
    pub migrations: Vec<MigrationRow>,
    /// The slowest applied migrations, slowest first.
    pub slowest: Vec<MigrationRow>,
    /// Newest first.
    pub history: Vec<HistoryRow>,
    /// Newest first.
    pub backups: Vec<BackupMarker>,
    /// Runs (batches) that applied or rolled back migrations, newest first.
    pub runs: Vec<RunBatch>,
}

/// One run's work in `migration_history`: a batch of migrations applied (or rolled
/// back) together by one command, as `status --runs` and `rollback --run ID` see it.
#[derive(Debug, Clone, Serialize)]
pub struct RunBatch {
    pub run_id: String,
    pub actor: String,
    pub environment: Option<String>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub git_ref: Option<String>,
    /// Versions the run applied, oldest first.
    pub applied: Vec<String>,
    /// Versions the run rolled back, newest first.
    pub rolled_back: Vec<String>,
    /// Versions whose apply or rollback failed in this run.
    pub failed: Vec<String>,
}

/// One version across environments (the comparison table).
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonRow {
    pub version: String,
    pub name: String,
    /// Environment name → state, for the environments that were read.
    pub states: BTreeMap<String, State>,
    /// False when the environments read disagree about this version.
    pub consistent: bool,
}

/// The whole report: documented in docs/report.schema.json.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub format_version: u32,
    pub generated_at: chrono::DateTime<chrono::Utc>,
    pub tool_version: String,
    pub migrations_dir: String,
    /// Worst health of the environments that were read (unknown when none was).
    pub health: HealthStatus,
    pub environments: Vec<EnvReport>,
    pub comparison: Vec<ComparisonRow>,
}

/// One row of `migration_history`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    pub id: i64,
    /// The command run that wrote the row (its batch).
    pub run_id: String,
    /// apply, rollback, baseline, repair, accept.
    pub action: String,
    /// started, completed, failed.
    pub status: String,
    pub version: Option<String>,
    pub name: Option<String>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub duration_ms: Option<i64>,
    pub actor: String,
    pub environment: Option<String>,
    pub git_ref: Option<String>,
    pub git_sha: Option<String>,
    pub ci_run_url: Option<String>,
    pub error: Option<String>,
    pub reason: Option<String>,
}

/// One row of `backup_markers`.
#[derive(Debug, Clone, Serialize)]
pub struct BackupMarker {
    pub id: i64,
    pub label: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub environment: Option<String>,
    pub git_ref: Option<String>,
    pub wal_lsn: Option<String>,
    pub txid: i64,
    pub dump_path: Option<String>,
    pub dump_size_bytes: Option<i64>,
    pub dump_sha256: Option<String>,
}
