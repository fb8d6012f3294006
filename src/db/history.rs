//! Reads for reports: the audit log and backup markers of the tracking schema.

use tokio_postgres::error::SqlState;

use super::{quote_ident, Db};

pub use crate::report::environments::{BackupMarker, HistoryRow, RunBatch};

// tokio-postgres is built without chrono support: timestamps travel as epoch milliseconds.
fn millis(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn missing(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::UNDEFINED_TABLE || *c == SqlState::INVALID_SCHEMA_NAME
    )
}

/// The rows of `sql` (which takes the limit as `$1`); none when the tracking schema is missing.
fn newest(
    db: &mut Db,
    sql: &str,
    limit: i64,
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    match db.query(sql, &[&limit]) {
        Ok(r) => Ok(r),
        Err(e) if missing(&e) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The newest `limit` history rows, newest first. A missing tracking schema reads as empty.
pub fn recent_history(
    db: &mut Db,
    schema: &str,
    limit: i64,
) -> Result<Vec<HistoryRow>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT id, run_id, action, status, version_text, name, (extract(epoch FROM started_at) * 1000)::bigint, duration_ms, actor, environment, \
           git_ref, git_sha, ci_run_url, error, reason \
         FROM {}.migration_history ORDER BY started_at DESC, id DESC LIMIT $1",
        quote_ident(schema)
    );
    let rows = newest(db, &sql, limit)?;
    Ok(rows
        .iter()
        .map(|r| HistoryRow {
            id: r.get(0),
            run_id: r.get(1),
            action: r.get(2),
            status: r.get(3),
            version: r.get(4),
            name: r.get(5),
            started_at: millis(r.get(6)),
            duration_ms: r.get(7),
            actor: r.get(8),
            environment: r.get(9),
            git_ref: r.get(10),
            git_sha: r.get(11),
            ci_run_url: r.get(12),
            error: r.get(13),
            reason: r.get(14),
        })
        .collect())
}

/// The newest `limit` backup markers, newest first. A missing tracking schema reads as empty.
pub fn backup_markers(
    db: &mut Db,
    schema: &str,
    limit: i64,
) -> Result<Vec<BackupMarker>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT id, label, (extract(epoch FROM created_at) * 1000)::bigint, actor, environment, git_ref, wal_lsn::text, txid, dump_path, \
           dump_size_bytes, dump_sha256 \
         FROM {}.backup_markers ORDER BY created_at DESC, id DESC LIMIT $1",
        quote_ident(schema)
    );
    let rows = newest(db, &sql, limit)?;
    Ok(rows
        .iter()
        .map(|r| BackupMarker {
            id: r.get(0),
            label: r.get(1),
            created_at: millis(r.get(2)),
            actor: r.get(3),
            environment: r.get(4),
            git_ref: r.get(5),
            wal_lsn: r.get(6),
            txid: r.get(7),
            dump_path: r.get(8),
            dump_size_bytes: r.get(9),
            dump_sha256: r.get(10),
        })
        .collect())
}

/// The newest `limit` runs that applied or rolled back migrations, newest first, each
/// with the versions it applied, rolled back and failed. A missing tracking schema
/// reads as empty.
pub fn runs(db: &mut Db, schema: &str, limit: i64) -> Result<Vec<RunBatch>, tokio_postgres::Error> {
    let list = |action: &str, status: &str, order: &str| {
        format!(
            "coalesce(array_agg(coalesce(version_text, '') ORDER BY version {order}) \
               FILTER (WHERE action {action} AND status = '{status}'), '{{}}')"
        )
    };
    let sql = format!(
        "SELECT run_id, min(actor), min(environment), (extract(epoch FROM min(started_at)) * 1000)::bigint, \
           min(git_ref), {}, {}, {} \
         FROM {}.migration_history WHERE action IN ('apply', 'rollback') \
         GROUP BY run_id ORDER BY min(started_at) DESC, run_id LIMIT $1",
        list("= 'apply'", "completed", "ASC"),
        list("= 'rollback'", "completed", "DESC"),
        list("IN ('apply', 'rollback')", "failed", "ASC"),
        quote_ident(schema)
    );
    let rows = newest(db, &sql, limit)?;
    Ok(rows
        .iter()
        .map(|r| RunBatch {
            run_id: r.get(0),
            actor: r.get(1),
            environment: r.get(2),
            started_at: millis(r.get(3)),
            git_ref: r.get(4),
            applied: r.get(5),
            rolled_back: r.get(6),
            failed: r.get(7),
        })
        .collect())
}
