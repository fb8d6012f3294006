//! Reads for reports: the audit log and backup markers of the tracking schema.

use tokio_postgres::error::SqlState;

use super::{quote_ident, Db};

pub use crate::report::environments::{BackupMarker, HistoryRow};

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

/// The newest `limit` history rows, newest first. A missing tracking schema reads as empty.
pub fn recent_history(
    db: &mut Db,
    schema: &str,
    limit: i64,
) -> Result<Vec<HistoryRow>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT id, action, status, version_text, name, (extract(epoch FROM started_at) * 1000)::bigint, duration_ms, actor, environment, \
           git_ref, git_sha, ci_run_url, error, reason \
         FROM {}.migration_history ORDER BY started_at DESC, id DESC LIMIT $1",
        quote_ident(schema)
    );
    let rows = match db.query(&sql, &[&limit]) {
        Ok(r) => r,
        Err(e) if missing(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(rows
        .iter()
        .map(|r| HistoryRow {
            id: r.get(0),
            action: r.get(1),
            status: r.get(2),
            version: r.get(3),
            name: r.get(4),
            started_at: millis(r.get(5)),
            duration_ms: r.get(6),
            actor: r.get(7),
            environment: r.get(8),
            git_ref: r.get(9),
            git_sha: r.get(10),
            ci_run_url: r.get(11),
            error: r.get(12),
            reason: r.get(13),
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
    let rows = match db.query(&sql, &[&limit]) {
        Ok(r) => r,
        Err(e) if missing(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
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
