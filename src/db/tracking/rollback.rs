//! The tracking schema's side of `rollback`: the stored down SQL, and removing a row
//! together with its `rollback` history entry.

use super::{RunContext, Tracking, TrackingError, TOOL_VERSION};
use crate::db::Db;

/// The down SQL stored with an applied migration at apply time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDown {
    pub version: String,
    /// None when the file had no down section when it was applied.
    pub sql: Option<String>,
    pub no_transaction: bool,
}

impl Tracking {
    /// The stored down SQL of every tracking row, newest first.
    pub fn stored_downs(&self, db: &mut Db) -> Result<Vec<StoredDown>, TrackingError> {
        let sql = self.sql(
            "SELECT version_text, down_sql, down_no_transaction FROM {s}.schema_migrations ORDER BY version DESC",
        );
        let rows = db.query(&sql, &[]).map_err(|source| TrackingError::Read {
            schema: self.schema.clone(),
            source,
        })?;
        Ok(rows
            .iter()
            .map(|r| StoredDown {
                version: r.get(0),
                sql: r.get(1),
                no_transaction: r.get(2),
            })
            .collect())
    }

    /// Remove a completed migration's row and append its `rollback` history row, in one
    /// statement. Run it inside the down section's own transaction (or, for a
    /// transaction:false down, in a transaction of its own after the last statement),
    /// so the schema change and its record commit together. Returns the rows removed
    /// (0: the migration was not applied, and nothing was recorded).
    pub fn record_rollback(
        &self,
        db: &mut Db,
        ctx: &RunContext,
        version: &str,
        duration_ms: i64,
        reason: &str,
    ) -> Result<u64, TrackingError> {
        let sql = self.sql(
            "WITH d AS (\
               DELETE FROM {s}.schema_migrations WHERE version = {s}.version_key($1) AND status = 'completed' \
               RETURNING version, version_text, name, checksum) \
             INSERT INTO {s}.migration_history (run_id, action, version, version_text, name, checksum, status, \
               started_at, finished_at, duration_ms, reason, actor, environment, git_sha, git_ref, ci_run_url, tool_version) \
             SELECT $2, 'rollback', d.version, d.version_text, d.name, d.checksum, 'completed', \
               clock_timestamp() - make_interval(secs => $3::bigint / 1000.0), clock_timestamp(), $3::bigint, \
               $4, $5, $6, $7, $8, $9, $10 FROM d",
        );
        db.execute(
            &sql,
            &[
                &version,
                &ctx.run_id,
                &duration_ms,
                &reason,
                &ctx.actor,
                &ctx.environment,
                &ctx.git_sha,
                &ctx.git_ref,
                &ctx.ci_run_url,
                &TOOL_VERSION,
            ],
        )
        .map_err(|source| TrackingError::Write {
            schema: self.schema.clone(),
            source,
        })
    }
}
