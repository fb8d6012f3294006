//! The tracking schema's side of `rollback`: the stored down SQL, and removing a row
//! together with its `rollback` history entry.

use tokio_postgres::types::ToSql;

use super::{with_context, History, RunContext, Tracking, TrackingError};
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

    /// The statement that removes a migration's row and appends its `rollback` history
    /// row, in one: prepared once, then run by [`RollbackRecord::delete`] inside the down
    /// section's own transaction (pipelined after its statements), or — for a
    /// transaction:false down — in a transaction of its own after the last statement,
    /// so the schema change and its record commit together. The row is a completed one,
    /// or the `running` state of a transaction:false down. A NULL duration is measured
    /// by the server from the start of the transaction.
    pub fn record_rollback_sql(&self) -> String {
        self.sql(
            "WITH d AS (\
               DELETE FROM {s}.schema_migrations WHERE version = {s}.version_key($1) \
                 AND (status = 'completed' OR (status = 'running' AND direction = 'down')) \
               RETURNING version, version_text, name, checksum), \
             t AS (SELECT coalesce($2::bigint, \
               (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint) AS ms) \
             INSERT INTO {s}.migration_history (run_id, action, version, version_text, name, checksum, status, \
               started_at, finished_at, duration_ms, reason, actor, environment, git_sha, git_ref, ci_run_url, tool_version) \
             SELECT $5, 'rollback', d.version, d.version_text, d.name, d.checksum, 'completed', \
               clock_timestamp() - make_interval(secs => t.ms / 1000.0), clock_timestamp(), t.ms, \
               $3, $4, $6, $7, $8, $9, $10 FROM d, t",
        )
    }

    /// Mark a completed migration's transaction:false down as running (statement 0),
    /// with a `rollback started` history row. Autocommit: the state must survive a crash
    /// half-way through the down, exactly like a transaction:false up.
    pub fn start_rollback(
        &self,
        db: &mut Db,
        ctx: &RunContext,
        version: &str,
        name: &str,
        reason: &str,
    ) -> Result<(), TrackingError> {
        let history = History {
            action: "rollback",
            version: Some(version),
            name: Some(name),
            checksum: None,
            status: "started",
            duration_ms: None,
            error: None,
            reason: Some(reason),
        };
        self.change_with_history(
            db,
            ctx,
            Some((
                "UPDATE {s}.schema_migrations SET status = 'running', direction = 'down', statement_index = 0, \
                   error_message = NULL WHERE version = {s}.version_key($16) AND status = 'completed'",
                &[&version],
            )),
            &history,
        )
    }
}

/// The removal of one migration's row by the statement [`Tracking::record_rollback_sql`]
/// prepares.
#[derive(Clone, Copy)]
pub struct RollbackRecord<'a> {
    pub version: &'a str,
    /// None: measured by the server (the down ran in the same transaction).
    pub duration_ms: Option<i64>,
    pub reason: &'a str,
    pub ctx: &'a RunContext,
}

impl RollbackRecord<'_> {
    /// Send the delete; awaiting it is the caller's business (it may be pipelined).
    /// Resolves to the rows removed: 0 means the migration was not applied, and
    /// nothing was recorded.
    pub async fn delete(
        &self,
        c: &tokio_postgres::Client,
        stmt: &tokio_postgres::Statement,
    ) -> Result<u64, tokio_postgres::Error> {
        let own: [&(dyn ToSql + Sync); 3] = [&self.version, &self.duration_ms, &self.reason];
        c.execute(stmt, &with_context(&own, self.ctx)).await
    }
}
