//! The migration lock: a session-level advisory lock on a dedicated connection.
//!
//! It is taken by polling `pg_try_advisory_lock`, never by a blocking
//! `pg_advisory_lock`: a waiter stuck in a blocking call holds a virtual transaction
//! that the holder's `CREATE INDEX CONCURRENTLY` must wait for, and the two wait for
//! each other forever (the deadlock Flyway and golang-migrate users report). A poller
//! sits between short autocommit statements, so CONCURRENTLY builds never wait on it.

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use super::conn::{error_text, ConnectError, Db, Target};

/// Who holds the lock: the data type lives in the report seam, which carries it.
pub use crate::report::LockHolder;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("taking the migration lock: {}", error_text(.0))]
    Query(#[source] tokio_postgres::Error),
    #[error(
        "another runner holds the migration lock on tracking schema {schema}; waited {waited_secs}s \
         (lock_wait): holder {}", holder.as_ref().map_or("unknown (it may have just released it)".to_string(), |h| h.to_string())
    )]
    Timeout {
        schema: String,
        waited_secs: u64,
        holder: Option<Box<LockHolder>>,
    },
    #[error(
        "the connection goes through a transaction-pooling proxy (such as PgBouncer in \
         pool_mode=transaction): session advisory locks do not hold there, so two runners \
         could apply the same migration. Connect pgrollout directly to PostgreSQL (or to a \
         session-pooling port) — for example the database's direct host and port 5432 instead \
         of the pooler's 6432. ({detail})"
    )]
    Pooler { detail: String },
    #[error("interrupted while waiting for the migration lock")]
    Interrupted,
}

/// Held migration lock. Dropping it unlocks and closes the session (closing alone would
/// release a session lock too; the explicit unlock makes the release immediate).
pub struct LockGuard {
    db: Db,
    key: i64,
    pub waited: Duration,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let key = self.key;
        let _ = self.db.query("SELECT pg_advisory_unlock($1)", &[&key]);
    }
}

impl LockGuard {
    pub fn backend_pid(&self) -> i32 {
        self.db.backend_pid
    }
}

/// What the waiting loop reports while it waits.
pub trait LockWaitObserver {
    fn waiting(&mut self, waited: Duration, holder: Option<&LockHolder>);
    /// Checked between polls; `true` stops the wait with [`LockError::Interrupted`].
    fn cancelled(&mut self) -> bool {
        false
    }
}

/// Advisory locks are per database: another database on the same server with the same
/// tracking schema name has the same key, and its holder is not ours.
fn holder(db: &mut Db, key: i64) -> Result<Option<LockHolder>, tokio_postgres::Error> {
    let rows = db.query(
        "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), \
                coalesce(host(a.client_addr), 'local socket'), \
                to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                extract(epoch FROM now() - a.backend_start)::bigint \
         FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND l.classid::bigint = (($1::bigint >> 32) & 4294967295) \
           AND l.objid::bigint = ($1::bigint & 4294967295) \
         LIMIT 1",
        &[&key],
    )?;
    Ok(rows.first().map(|r| LockHolder {
        pid: r.get(0),
        application_name: r.get(1),
        user: r.get(2),
        client: r.get(3),
        since: r.get(4),
        held_for_secs: r.get(5),
    }))
}

/// Take the lock for `key` on a new dedicated session, polling with backoff for up to
/// `lock_wait`. Also proves the connection is not transaction-pooled: right after
/// taking the lock, a separate statement must see it held by the same backend.
pub fn acquire(
    target: &Target,
    schema: &str,
    key: i64,
    lock_wait: Duration,
    observer: &mut dyn LockWaitObserver,
) -> Result<LockGuard, LockError> {
    let app = format!("pgrollout {} lock", env!("CARGO_PKG_VERSION"));
    let mut db = Db::connect(target, &app, Duration::from_secs(10), &mut |_, _, _| {})?;
    let started = Instant::now();
    let mut pause = Duration::from_millis(25);
    let mut last_report: Option<Instant> = None;
    loop {
        let rows = db
            .query("SELECT pg_try_advisory_lock($1), pg_backend_pid()", &[&key])
            .map_err(query_error)?;
        let got: bool = rows[0].get(0);
        let pid: i32 = rows[0].get(1);
        if got {
            verify_session(&mut db, key, pid)?;
            probe(target, &app, pid)?;
            let since = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
            // Name the session so a waiter's timeout message says since when it is held.
            let _ = db.batch(&format!(
                "SET application_name = 'pgrollout lock since {since}'"
            ));
            return Ok(LockGuard {
                db,
                key,
                waited: started.elapsed(),
            });
        }
        let waited = started.elapsed();
        if waited >= lock_wait {
            let h = holder(&mut db, key).map_err(query_error)?;
            return Err(LockError::Timeout {
                schema: schema.to_string(),
                waited_secs: waited.as_secs(),
                holder: h.map(Box::new),
            });
        }
        if observer.cancelled() {
            return Err(LockError::Interrupted);
        }
        // Say who holds it at the first miss, then every 10 s.
        if last_report.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            let h = holder(&mut db, key).map_err(query_error)?;
            observer.waiting(waited, h.as_ref());
            last_report = Some(Instant::now());
        }
        std::thread::sleep(
            pause
                .min(lock_wait.saturating_sub(waited))
                .max(Duration::from_millis(5)),
        );
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// A failed lock query. A prepared statement that vanished between its Parse and its
/// Execute means the two ran on different server sessions: transaction pooling.
fn query_error(e: tokio_postgres::Error) -> LockError {
    if e.code() == Some(&SqlState::INVALID_SQL_STATEMENT_NAME) {
        return LockError::Pooler {
            detail: format!(
                "a statement prepared on one server session was executed on another: {}",
                error_text(&e)
            ),
        };
    }
    LockError::Query(e)
}

/// Under transaction pooling each statement may run on another server session, and the
/// lock taken by the previous statement may belong to a session we no longer own.
fn verify_session(db: &mut Db, key: i64, pid: i32) -> Result<(), LockError> {
    let rows = db
        .query(
            "SELECT pg_backend_pid(), EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
               AND pid = pg_backend_pid() AND objsubid = 1 \
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND classid::bigint = (($1::bigint >> 32) & 4294967295) AND objid::bigint = ($1::bigint & 4294967295))",
            &[&key],
        )
        .map_err(query_error)?;
    let now_pid: i32 = rows[0].get(0);
    let held: bool = rows[0].get(1);
    if now_pid != pid || now_pid != db.backend_pid || !held {
        return Err(LockError::Pooler {
            detail: format!(
                "the lock was taken by server process {pid}, the next statement ran on {now_pid}, \
                 and that process {} the lock",
                if held { "holds" } else { "does not hold" }
            ),
        });
    }
    Ok(())
}

/// A pooler may by chance keep giving each client the same server session, and then
/// nothing one session sees differs from a direct connection. A new client settles it:
/// PgBouncer hands a client the most recently released server connection, which right
/// after the lock statement is the lock's. A direct connection always gets a new server
/// process, so finding the lock's process at the other end means it is shared.
fn probe(target: &Target, app: &str, lock_pid: i32) -> Result<(), LockError> {
    let probe = Db::connect(target, app, Duration::from_secs(10), &mut |_, _, _| {})?;
    if probe.backend_pid == lock_pid {
        return Err(LockError::Pooler {
            detail: format!(
                "a new connection was served by server process {lock_pid}, which holds the \
                 lock for another connection"
            ),
        });
    }
    Ok(())
}

/// Check from the work session that the lock session holds the lock — the work session
/// may be pooled even if the lock session was not.
pub fn verify_from(db: &mut Db, guard: &LockGuard) -> Result<(), LockError> {
    let h = holder(db, guard.key).map_err(query_error)?;
    let pid = db
        .query("SELECT pg_backend_pid()", &[])
        .map_err(query_error)?[0]
        .get::<_, i32>(0);
    // Two direct connections are two server processes. A transaction pooler with one
    // idle server connection hands the same one to every client in turn (PgBouncer reuses
    // the most recently used one), so the lock session and the work session sharing a
    // process is the sign of pooling that a single session cannot see on its own.
    let shared = pid == guard.db.backend_pid || db.backend_pid == guard.db.backend_pid;
    match h {
        Some(h) if h.pid == guard.db.backend_pid && pid == db.backend_pid && !shared => Ok(()),
        other => Err(LockError::Pooler {
            detail: if shared {
                format!(
                    "the lock session and the work session both ran on server process {}, \
                     which two direct connections never do",
                    guard.db.backend_pid
                )
            } else {
                format!(
                    "the work session (server process {pid}, first seen as {}) cannot see the lock held by server process {}: {}",
                    db.backend_pid,
                    guard.db.backend_pid,
                    other.map_or("no holder visible".to_string(), |h| format!("holder is {}", h.pid))
                )
            },
        }),
    }
}
