//! Drift detection: compare the schema of a database with another environment's, or with
//! the schema its migration files build on a throwaway server (this is how a hotfix made
//! by hand in production is found).
//!
//! The comparison is one-directional: the *source* is the reference (another environment,
//! or the migration files) and the *target* is the database being checked; every
//! difference says which side has what. Differences are results, not errors: the caller
//! decides (the CLI exits 1 when one is critical).
//!
//! For a pipeline step: call [`compare`] or [`against_migrations`], then [`emit`] for the
//! annotations and `render::markdown::drift_summary` for the job summary section.

use std::time::Duration;

use crate::db::catalog::{self, SnapshotError};
use crate::db::tracking::RunContext;
use crate::db::{ConnectError, Db, Target};
use crate::engine::{self, RunOptions};
use crate::ephemeral::{Cluster, ClusterOptions, EphemeralError};
use crate::migration::MigrationSet;
use crate::report::{Event, Level, Reporter, Silent};
use crate::schema::{self, SchemaSnapshot, Severity, SnapshotOptions};

/// How to compare.
#[derive(Debug, Clone)]
pub struct DriftOptions {
    pub snapshot: SnapshotOptions,
    /// How long to keep retrying a connection while a server starts.
    pub connect_retry: Duration,
}

impl Default for DriftOptions {
    fn default() -> Self {
        DriftOptions {
            snapshot: SnapshotOptions::default(),
            connect_retry: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{side}: {source}")]
    Snapshot {
        side: String,
        #[source]
        source: SnapshotError,
    },
    #[error("starting a throwaway PostgreSQL to build the expected schema: {0}")]
    Ephemeral(#[from] EphemeralError),
    /// The migration files did not apply cleanly to an empty database.
    #[error("building the expected schema from the migration files: {0}")]
    Expected(String),
}

pub use crate::schema::{DriftReport, Side, DRIFT_FORMAT_VERSION};

/// Connect and read one snapshot.
pub fn snapshot_of(
    target: &Target,
    label: &str,
    opts: &DriftOptions,
    reporter: &mut dyn Reporter,
) -> Result<(Side, SchemaSnapshot), DriftError> {
    let mut s = engine::connect(
        target,
        &opts.snapshot.tracking_schema,
        opts.connect_retry,
        reporter,
    )?;
    let snap = read(&mut s.db, label, opts)?;
    Ok((
        Side {
            label: label.to_string(),
            location: target.redacted.clone(),
            server_version: snap.server_version.clone(),
        },
        snap,
    ))
}

fn read(db: &mut Db, label: &str, opts: &DriftOptions) -> Result<SchemaSnapshot, DriftError> {
    catalog::read(db, &opts.snapshot).map_err(|source| DriftError::Snapshot {
        side: label.to_string(),
        source,
    })
}

/// Compare two databases: `source` is the reference, `target` the one checked.
pub fn compare(
    source: (&str, &Target),
    target: (&str, &Target),
    opts: &DriftOptions,
    reporter: &mut dyn Reporter,
) -> Result<DriftReport, DriftError> {
    let (a_side, a) = snapshot_of(source.1, source.0, opts, reporter)?;
    let (b_side, b) = snapshot_of(target.1, target.0, opts, reporter)?;
    warn_versions(&a_side, &b_side, reporter);
    Ok(DriftReport::new(a_side, b_side, schema::diff(&a, &b)))
}

/// Compare a database with the schema its migration files build: every file is applied,
/// through the one apply path, to an empty database on a throwaway local server.
pub fn against_migrations(
    set: &MigrationSet,
    target: (&str, &Target),
    opts: &DriftOptions,
    reporter: &mut dyn Reporter,
) -> Result<DriftReport, DriftError> {
    let (a_side, a) = expected_schema(set, opts, reporter)?;
    let (b_side, b) = snapshot_of(target.1, target.0, opts, reporter)?;
    warn_versions(&a_side, &b_side, reporter);
    Ok(DriftReport::new(a_side, b_side, schema::diff(&a, &b)))
}

/// The schema the migration files build, read from a throwaway server that is deleted
/// before this returns.
pub fn expected_schema(
    set: &MigrationSet,
    opts: &DriftOptions,
    reporter: &mut dyn Reporter,
) -> Result<(Side, SchemaSnapshot), DriftError> {
    reporter.event(&Event::Info {
        message: &format!(
            "building the expected schema: applying {} migration file(s) to a throwaway PostgreSQL…",
            set.migrations.len()
        ),
    });
    let cluster = Cluster::start(&ClusterOptions::default())?;
    let url = cluster.url("postgres");
    let t = Target::parse(&url)?;
    let run = RunOptions {
        schema: opts.snapshot.tracking_schema.clone(),
        ..RunOptions::default()
    };
    engine::apply(
        &t,
        set,
        &run,
        &RunContext::scratch("pgrollout drift"),
        &mut Silent,
    )
    .map_err(|f| DriftError::Expected(f.error.to_string()))?;
    let mut db = engine::connect(&t, &run.schema, opts.connect_retry, &mut Silent)?.db;
    let snap = read(&mut db, "migrations", opts)?;
    drop(db);
    cluster.stop();
    Ok((
        Side {
            label: "migrations".into(),
            location: format!(
                "{} migration file(s) applied to a throwaway PostgreSQL {}",
                set.migrations.len(),
                snap.server_version
            ),
            server_version: snap.server_version.clone(),
        },
        snap,
    ))
}

/// Deparsed definitions can be spelled differently by different major versions.
fn warn_versions(a: &Side, b: &Side, reporter: &mut dyn Reporter) {
    let major = |v: &str| v.split('.').next().unwrap_or_default().to_string();
    if major(&a.server_version) != major(&b.server_version) {
        reporter.event(&Event::Diagnostic {
            level: Level::Warning,
            location: None,
            message: &format!(
                "{} runs PostgreSQL {} and {} runs {}: view, index and constraint definitions may be \
                 spelled differently by different major versions and show as changed",
                a.label, a.server_version, b.label, b.server_version
            ),
        });
    }
}

/// One diagnostic per difference (critical → error, warning → warning, info → notice),
/// most severe first: what a pipeline step turns into annotations.
pub fn emit(report: &DriftReport, reporter: &mut dyn Reporter) {
    for d in &report.differences {
        let level = match d.severity {
            Severity::Critical => Level::Error,
            Severity::Warning => Level::Warning,
            Severity::Info => Level::Notice,
        };
        reporter.event(&Event::Diagnostic {
            level,
            location: None,
            message: &format!("drift ({}): {} — {}", d.kind, d.message, d.fix),
        });
    }
}
