//! Read-only checks of the `health` and `smoke-test` pipeline steps, and the backup
//! markers. All of their SQL text is here.

use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::SimpleQueryMessage;

use super::conn::ServerError;
use super::tracking::{RunContext, TrackingError};
use super::{quote_ident, Db};
use crate::report::summary::{BackupInfo, DumpInfo};

/// What the server says about itself.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    pub version: String,
    /// `pg_is_in_recovery()`: a standby cannot be migrated.
    pub in_recovery: bool,
    /// The session would be read-only (`default_transaction_read_only`, or a
    /// read-only server such as a hot standby or `transaction_read_only` forced on).
    pub read_only: bool,
    /// The TLS version of this connection, None when unencrypted.
    pub tls: Option<String>,
}

pub fn server_facts(db: &mut Db) -> Result<ServerFacts, tokio_postgres::Error> {
    let rows = db.query(
        "SELECT current_setting('server_version'), pg_is_in_recovery(), \
           current_setting('default_transaction_read_only') = 'on' OR current_setting('transaction_read_only') = 'on', \
           (SELECT s.version FROM pg_stat_ssl AS s WHERE s.pid = pg_backend_pid() AND s.ssl)",
        &[],
    )?;
    let r = &rows[0];
    Ok(ServerFacts {
        version: r.get(0),
        in_recovery: r.get(1),
        read_only: r.get(2),
        tls: r.get(3),
    })
}

/// A transaction open for longer than the threshold.
#[derive(Debug, Clone)]
pub struct LongTransaction {
    pub pid: i32,
    pub user: String,
    pub application: String,
    pub state: String,
    pub age: Duration,
    pub query: String,
}

pub fn long_transactions(
    db: &mut Db,
    older_than: Duration,
) -> Result<Vec<LongTransaction>, tokio_postgres::Error> {
    let rows = db.query(
        "SELECT pid, coalesce(usename, ''), coalesce(application_name, ''), coalesce(state, ''), \
           extract(epoch FROM now() - xact_start)::float8, left(coalesce(query, ''), 200) \
         FROM pg_stat_activity \
         WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend' \
           AND now() - xact_start > make_interval(secs => $1) \
         ORDER BY xact_start",
        &[&older_than.as_secs_f64()],
    )?;
    Ok(rows
        .iter()
        .map(|r| LongTransaction {
            pid: r.get(0),
            user: r.get(1),
            application: r.get(2),
            state: r.get(3),
            age: Duration::from_secs_f64(r.get::<_, f64>(4).max(0.0)),
            query: r.get(5),
        })
        .collect())
}

/// A lock another session holds (or waits for) on a table a pending migration touches.
#[derive(Debug, Clone)]
pub struct TableLock {
    pub pid: i32,
    pub table: String,
    pub mode: String,
    pub granted: bool,
    pub application: String,
    pub age: Duration,
}

/// Locks of other sessions on tables named `tables` (unqualified names).
pub fn table_locks(
    db: &mut Db,
    tables: &[String],
) -> Result<Vec<TableLock>, tokio_postgres::Error> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let rows = db.query(
        "SELECT l.pid, c.oid::regclass::text, l.mode, l.granted, coalesce(a.application_name, ''), \
           coalesce(extract(epoch FROM now() - a.xact_start), 0)::float8 \
         FROM pg_locks AS l JOIN pg_class AS c ON c.oid = l.relation \
           LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid \
         WHERE l.locktype = 'relation' AND l.pid <> pg_backend_pid() AND c.relname = ANY($1) \
         ORDER BY c.relname, l.pid",
        &[&tables],
    )?;
    Ok(rows
        .iter()
        .map(|r| TableLock {
            pid: r.get(0),
            table: r.get(1),
            mode: r.get(2),
            granted: r.get(3),
            application: r.get(4),
            age: Duration::from_secs_f64(r.get::<_, f64>(5).max(0.0)),
        })
        .collect())
}

/// Run a smoke-test query in a read-only transaction with a statement timeout; return
/// its single value as text (`t`/`f` for booleans, None for NULL).
pub fn single_value(
    db: &mut Db,
    sql: &str,
    timeout: Duration,
) -> Result<Option<String>, SingleValueError> {
    db.batch(&format!(
        "BEGIN READ ONLY; SET LOCAL statement_timeout = {}",
        timeout.as_millis().max(1)
    ))
    .map_err(|e| SingleValueError::Server(Box::new(ServerError::from_error(&e))))?;
    let sql = sql.to_string();
    let result = db.run(|c| async move { c.simple_query(&sql).await });
    let _ = db.batch("ROLLBACK");
    let messages =
        result.map_err(|e| SingleValueError::Server(Box::new(ServerError::from_error(&e))))?;
    let rows: Vec<_> = messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .collect();
    match rows.as_slice() {
        [r] if r.len() == 1 => Ok(r.get(0).map(str::to_string)),
        [r] => Err(SingleValueError::Columns(r.len())),
        rows => Err(SingleValueError::Rows(rows.len())),
    }
}

/// Why a smoke-test query gave no single value.
#[derive(Debug, thiserror::Error)]
pub enum SingleValueError {
    /// The server refused or failed the query (SQLSTATE, detail, hint, position).
    #[error("{0}")]
    Server(Box<ServerError>),
    #[error("the query returned {0} columns; return exactly one value")]
    Columns(usize),
    #[error("the query returned {0} rows; return exactly one value")]
    Rows(usize),
}

/// Record a backup marker: WAL position and transaction id now, who and where, and the
/// dump taken just before, if any. Needs the tracking schema (take the lock first).
pub fn insert_backup_marker(
    db: &mut Db,
    schema: &str,
    ctx: &RunContext,
    label: &str,
    dump: Option<&DumpInfo>,
) -> Result<BackupInfo, TrackingError> {
    let sql = format!(
        "INSERT INTO {}.backup_markers (label, actor, environment, git_sha, git_ref, ci_run_url, run_id, \
           wal_lsn, txid, dump_path, dump_size_bytes, dump_sha256) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, \
           CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() END, txid_current(), $8, $9, $10) \
         RETURNING id, created_at::text, wal_lsn::text, txid",
        quote_ident(schema)
    );
    let size = dump.map(|d| d.size_bytes as i64);
    let rows = db
        .query(
            &sql,
            &[
                &label,
                &ctx.actor,
                &ctx.environment,
                &ctx.git_sha,
                &ctx.git_ref,
                &ctx.ci_run_url,
                &ctx.run_id,
                &dump.map(|d| d.path.as_str()),
                &size,
                &dump.map(|d| d.sha256.as_str()),
            ],
        )
        .map_err(|source| TrackingError::Write {
            schema: schema.to_string(),
            source,
        })?;
    let r = &rows[0];
    Ok(BackupInfo {
        id: r.get(0),
        created_at: r.get(1),
        wal_lsn: r.get(2),
        txid: r.get(3),
        dump: dump.cloned(),
    })
}

/// The newest backup marker younger than `max_age`, if any (None also when the
/// tracking schema does not exist yet).
pub fn recent_backup_marker(
    db: &mut Db,
    schema: &str,
    max_age: Duration,
) -> Result<Option<BackupInfo>, TrackingError> {
    let sql = format!(
        "SELECT id, created_at::text, wal_lsn::text, txid, dump_path, dump_size_bytes, dump_sha256 \
         FROM {}.backup_markers WHERE created_at > now() - make_interval(secs => $1) \
         ORDER BY created_at DESC LIMIT 1",
        quote_ident(schema)
    );
    let rows = match db.query(&sql, &[&max_age.as_secs_f64()]) {
        Ok(rows) => rows,
        Err(e)
            if e.code() == Some(&SqlState::UNDEFINED_TABLE)
                || e.code() == Some(&SqlState::INVALID_SCHEMA_NAME) =>
        {
            return Ok(None)
        }
        Err(source) => {
            return Err(TrackingError::Read {
                schema: schema.to_string(),
                source,
            })
        }
    };
    Ok(rows.first().map(|r| BackupInfo {
        id: r.get(0),
        created_at: r.get(1),
        wal_lsn: r.get(2),
        txid: r.get(3),
        dump: r.get::<_, Option<String>>(4).map(|path| DumpInfo {
            in_job_workspace: false,
            path,
            size_bytes: r.get::<_, Option<i64>>(5).unwrap_or(0) as u64,
            sha256: r.get::<_, Option<String>>(6).unwrap_or_default(),
        }),
    }))
}
