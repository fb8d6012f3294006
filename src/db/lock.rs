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
pub use crate::report::{Blocker, LiveRunner, LockHolder};

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
    #[error(
        "lost the migration lock: its session (server process {pid}) {}{}",
        if *.alive { "is alive but no longer holds it" } else { "has ended (terminated by the server or an administrator, or its connection dropped)" },
        holder.as_ref().map_or(String::new(), |h| format!("; the lock is now held by {h}"))
    )]
    Lost {
        pid: i32,
        alive: bool,
        holder: Option<Box<LockHolder>>,
    },
}

/// The advisory lock on key `$1` (a parameter or a literal), for a `pg_locks AS l` row.
/// Advisory locks are per database: another database on the same server with the same
/// tracking schema name has the same key, and its holder is not ours.
fn key_match(key: &str) -> String {
    format!(
        "l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND l.classid::bigint = (({key}::bigint >> 32) & 4294967295) \
         AND l.objid::bigint = ({key}::bigint & 4294967295)"
    )
}

/// The server process's start, in microseconds since the epoch: with the pid it names one
/// session for good (a pid is reused by a later session, a start time with it is not).
const BACKEND_START_US: &str = "(extract(epoch FROM a.backend_start) * 1000000)::bigint";

/// Which session holds the migration lock, as the work session checks it.
#[derive(Debug, Clone, Copy)]
pub struct HeldLock {
    pub key: i64,
    pub pid: i32,
    pub backend_start_us: i64,
}

impl HeldLock {
    /// Check, from any session of the database, that the lock session is still the one
    /// alive and still holds the lock. A lock session can end while its runner carries on
    /// (idle cut-offs, `pg_terminate_backend`, a dropped connection the runner has not
    /// read from), and then another runner may take the lock: the runner must stop.
    pub fn check(&self, db: &mut Db) -> Result<(), LockError> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_get_activity($2) AS a WHERE {BACKEND_START_US} = $3), \
                    EXISTS (SELECT 1 FROM pg_locks AS l WHERE l.pid = $2 AND {})",
            key_match("$1")
        );
        let rows = db
            .query(&sql, &[&self.key, &self.pid, &self.backend_start_us])
            .map_err(query_error)?;
        let alive: bool = rows[0].get(0);
        let held: bool = rows[0].get(1);
        if alive && held {
            return Ok(());
        }
        Err(LockError::Lost {
            pid: self.pid,
            alive,
            holder: holder(db, self.key).ok().flatten().map(Box::new),
        })
    }

    /// The same check as one statement inside a migration's transaction, which also
    /// takes a transaction-level lock on `commit_key`: two runners' migration
    /// transactions then never overlap, and one that passed this check was under the
    /// lock when it started (its tracking row's primary key refuses a second commit of
    /// the same version). Fails with SQLSTATE [`LOCK_LOST_SQLSTATE`].
    pub fn check_in_transaction(&self, commit_key: i64) -> String {
        let HeldLock {
            key,
            pid,
            backend_start_us,
        } = *self;
        format!(
            "DO $pgrollout_lock$ BEGIN \
             IF NOT pg_try_advisory_xact_lock({commit_key}) THEN \
               RAISE EXCEPTION USING ERRCODE = '{LOCK_LOST_SQLSTATE}', MESSAGE = 'another runner''s migration transaction is open on this tracking schema'; \
             END IF; \
             IF NOT EXISTS (SELECT 1 FROM pg_stat_get_activity({pid}) AS a, pg_locks AS l \
                            WHERE l.pid = {pid} AND {BACKEND_START_US} = {backend_start_us} AND {}) THEN \
               RAISE EXCEPTION USING ERRCODE = '{LOCK_LOST_SQLSTATE}', MESSAGE = 'the migration lock of server process {pid} is gone'; \
             END IF; END $pgrollout_lock$",
            key_match(&key.to_string())
        )
    }
}

/// The `application_name` a work session takes while a transaction:false section runs:
/// its tracking row says `running` with this run id, and a live session with this name
/// means the runner is still at it (whether or not it still holds the lock).
pub fn runner_name(run_id: &str) -> String {
    format!("pgrollout {} run {run_id}", env!("CARGO_PKG_VERSION"))
}

/// The live session of run `run_id`, if there is one (see [`runner_name`]).
pub fn live_runner(db: &mut Db, run_id: &str) -> Result<Option<LiveRunner>, tokio_postgres::Error> {
    let rows = db.query(
        "SELECT pid, coalesce(state, ''), left(coalesce(query, ''), 200), \
           extract(epoch FROM now() - coalesce(query_start, backend_start))::bigint \
         FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database() \
           AND application_name LIKE 'pgrollout % run ' || $1 LIMIT 1",
        &[&run_id],
    )?;
    Ok(rows.first().map(|r| LiveRunner {
        pid: r.get(0),
        state: r.get(1),
        query: r.get(2),
        for_secs: r.get(3),
    }))
}

/// The sessions `pid` waits for right now (`pg_blocking_pids`), with what they run.
pub fn blockers(db: &mut Db, pid: i32) -> Result<Vec<Blocker>, tokio_postgres::Error> {
    let rows = db.query(
        "SELECT b.pid, coalesce(b.application_name, ''), coalesce(b.state, ''), \
           left(coalesce(b.query, ''), 200), \
           extract(epoch FROM now() - coalesce(b.xact_start, b.query_start, b.backend_start))::bigint, \
           coalesce((SELECT string_agg(DISTINCT l.relation::regclass::text, ', ') FROM pg_locks AS l \
                     WHERE l.pid = b.pid AND l.granted AND l.relation IS NOT NULL \
                       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())), '') \
         FROM pg_stat_activity AS b WHERE b.pid = ANY (pg_blocking_pids($1)) ORDER BY b.pid",
        &[&pid],
    )?;
    Ok(rows
        .iter()
        .map(|r| Blocker {
            pid: r.get(0),
            application_name: r.get(1),
            state: r.get(2),
            query: r.get(3),
            for_secs: r.get(4),
            relations: r.get(5),
        })
        .collect())
}

/// The SQLSTATE of [`HeldLock::check_in_transaction`]'s failure.
pub const LOCK_LOST_SQLSTATE: &str = "PGRL1";

/// Held migration lock. Dropping it unlocks (closing alone would release a session lock
/// too; the explicit unlock makes the release immediate), then hands the session to its
/// [`LockSpare`] if it has one, or closes it.
pub struct LockGuard {
    db: Option<Db>,
    key: i64,
    backend_start_us: i64,
    pub waited: Duration,
    /// Where the lock session goes once the lock is released, for the next
    /// [`acquire`] of the same run to take the lock on (see [`LockSpare`]).
    spare: Option<LockSpare>,
}

/// A lock session kept between a release and the next acquire of the same run: a
/// pipeline takes the lock for its backup-marker and again for its apply, and over TLS to a
/// distant database each new session is a handshake. Only a session whose unlock
/// succeeded is kept; [`acquire`] checks it is still alive before it uses it.
pub type LockSpare = std::rc::Rc<std::cell::RefCell<Option<Db>>>;

impl Drop for LockGuard {
    fn drop(&mut self) {
        let key = self.key;
        let Some(mut db) = self.db.take() else { return };
        let unlocked = db
            .query("SELECT pg_advisory_unlock($1)", &[&key])
            .is_ok_and(|rows| rows.first().is_some_and(|r| r.get::<_, bool>(0)));
        if let (true, Some(spare)) = (unlocked, &self.spare) {
            *spare.borrow_mut() = Some(db);
        }
    }
}

impl LockGuard {
    fn db(&self) -> &Db {
        self.db
            .as_ref()
            .expect("a lock guard holds its session until dropped")
    }

    pub fn backend_pid(&self) -> i32 {
        self.db().backend_pid
    }

    pub fn held(&self) -> HeldLock {
        HeldLock {
            key: self.key,
            pid: self.db().backend_pid,
            backend_start_us: self.backend_start_us,
        }
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

/// Who holds the lock on `key` in this database, if anyone.
pub fn holder(db: &mut Db, key: i64) -> Result<Option<LockHolder>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), \
                coalesce(host(a.client_addr), 'local socket'), \
                to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                extract(epoch FROM now() - a.backend_start)::bigint \
         FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid \
         WHERE {} LIMIT 1",
        key_match("$1")
    );
    let rows = db.query(&sql, &[&key])?;
    Ok(rows.first().map(|r| LockHolder {
        pid: r.get(0),
        application_name: r.get(1),
        user: r.get(2),
        client: r.get(3),
        since: r.get(4),
        held_for_secs: r.get(5),
    }))
}

/// Take the lock for `key` on a dedicated session — the one `spare` kept from this run's
/// last release if it is still alive, else a new one — polling with backoff for up to
/// `lock_wait`. Also checks the connection is not transaction-pooled: right after
/// taking the lock, a separate statement must see it held by the same backend (and
/// [`verify_from`] checks from another client).
pub fn acquire(
    target: &Target,
    schema: &str,
    key: i64,
    lock_wait: Duration,
    observer: &mut dyn LockWaitObserver,
    spare: Option<LockSpare>,
) -> Result<LockGuard, LockError> {
    // A kept session's settings (keep_alive) are still in force: nothing resets them.
    let kept = spare
        .as_ref()
        .and_then(|s| s.borrow_mut().take())
        .filter(|db| !db.is_closed())
        .and_then(|mut db| db.batch("SELECT 1").is_ok().then_some(db));
    let mut db = match kept {
        Some(db) => db,
        None => {
            let app = format!("pgrollout {} lock", env!("CARGO_PKG_VERSION"));
            let mut db = Db::connect(target, &app, Duration::from_secs(10), &mut |_, _, _| {})?;
            keep_alive(&mut db)?;
            db
        }
    };
    let started = Instant::now();
    let mut pause = Duration::from_millis(25);
    let mut last_report: Option<Instant> = None;
    loop {
        let rows = db
            .query("SELECT pg_try_advisory_lock($1), pg_backend_pid()", &[&key])
            .map_err(query_error)?;
        let got: bool = rows[0].get(0);
        let pid: i32 = rows[0].get(1);
        if db.backend_pid == 0 {
            db.backend_pid = pid;
        }
        if got {
            verify_session(&mut db, key, pid)?;
            let backend_start_us = name_holder(&mut db)?;
            return Ok(LockGuard {
                db: Some(db),
                key,
                backend_start_us,
                waited: started.elapsed(),
                spare,
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

/// The server settings that keep a session of this tool from being cut off while it
/// waits: the idle timeouts a database or role may set, off (those this server version
/// has). `RESET ALL` undoes a `SET`, so the work session runs this again after each one.
const NO_IDLE_TIMEOUT: &str = "SELECT set_config(s.name, '0', false) FROM pg_settings AS s \
     WHERE s.name IN ('idle_session_timeout', 'idle_in_transaction_session_timeout')";

/// [`NO_IDLE_TIMEOUT`] for the server `db` is connected to. Reading `pg_settings` builds
/// every setting's row (0.8 ms, after every migration); a server that announced its
/// version gets the two calls it has settings for instead.
pub fn no_idle_timeout(db: &Db) -> &'static str {
    match db.server_major() {
        Some(m) if m >= 14 => {
            "SELECT set_config('idle_session_timeout', '0', false), \
                    set_config('idle_in_transaction_session_timeout', '0', false)"
        }
        Some(m) if m >= 10 => {
            "SELECT set_config('idle_in_transaction_session_timeout', '0', false)"
        }
        _ => NO_IDLE_TIMEOUT,
    }
}

/// The lock session sits idle for the whole run (and while it waits for the lock), and a
/// session that ends takes its lock with it while the runner carries on. So it must not
/// idle out: no idle timeouts, no statement timeout, and TCP keepalives from the server
/// side against NAT and load-balancer idle cut-offs (the client side sets its own in
/// `Db::connect`).
fn keep_alive(db: &mut Db) -> Result<(), LockError> {
    db.batch(&format!(
        "{}; SET statement_timeout = 0; SET tcp_keepalives_idle = 60; \
         SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 6",
        no_idle_timeout(db)
    ))
    .map_err(query_error)
}

/// Name the holder's session, so that a waiter's timeout message says since when it is
/// held, and return its start time, which identifies it (see [`HeldLock`]).
fn name_holder(db: &mut Db) -> Result<i64, LockError> {
    let name = format!(
        "pgrollout lock since {}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
    let rows = db
        .query(
            &format!(
                "SELECT set_config('application_name', $1, false), {BACKEND_START_US} \
                 FROM pg_stat_activity AS a WHERE a.pid = pg_backend_pid()"
            ),
            &[&name],
        )
        .map_err(query_error)?;
    Ok(rows.first().map_or(0, |r| r.get(1)))
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
            &format!(
                "SELECT pg_backend_pid(), EXISTS (SELECT 1 FROM pg_locks AS l WHERE l.pid = pg_backend_pid() AND {})",
                key_match("$1")
            ),
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

/// Check from the work session that the lock session holds the lock — the work session
/// may be pooled even if the lock session was not.
///
/// This is also the check a single session cannot make: a pooler may by chance keep
/// giving each client the same server session, and then nothing one session sees differs
/// from a direct connection. Another client's statement right after the lock's settles
/// it: PgBouncer hands it the most recently released server connection, which is the
/// lock's, while a direct connection is always a server process of its own. The work
/// session is that other client (no connection is opened just to ask).
pub fn verify_from(db: &mut Db, guard: &LockGuard) -> Result<(), LockError> {
    // The process first seen serving the work session (its first statement), if known.
    let first = db.backend_pid;
    let h = holder(db, guard.key).map_err(query_error)?;
    let pid = db
        .query("SELECT pg_backend_pid()", &[])
        .map_err(query_error)?[0]
        .get::<_, i32>(0);
    if first == 0 {
        db.backend_pid = pid;
    }
    // Two direct connections are two server processes. A transaction pooler with one
    // idle server connection hands the same one to every client in turn (PgBouncer reuses
    // the most recently used one), so the lock session and the work session sharing a
    // process is the sign of pooling that a single session cannot see on its own.
    let shared = pid == guard.backend_pid() || db.backend_pid == guard.backend_pid();
    match h {
        Some(h) if h.pid == guard.backend_pid() && pid == db.backend_pid && !shared => Ok(()),
        other => Err(LockError::Pooler {
            detail: if shared {
                format!(
                    "the lock session and the work session both ran on server process {}, \
                     which two direct connections never do",
                    guard.backend_pid()
                )
            } else {
                format!(
                    "the work session (server process {pid}, first seen as {}) cannot see the lock held by server process {}: {}",
                    db.backend_pid,
                    guard.backend_pid(),
                    other.map_or("no holder visible".to_string(), |h| format!("holder is {}", h.pid))
                )
            },
        }),
    }
}
