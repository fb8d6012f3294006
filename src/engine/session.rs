//! A connected work session: the connection, its tracking schema, and the migration
//! lock taken as a guard.

use std::time::Duration;

use crate::db::lock::{self, HeldLock, LockError, LockGuard, LockHolder, LockWaitObserver};
use crate::db::tracking::{
    RowStatus, Summary, Tracking, TrackingError, TrackingState, TRACKING_VERSION,
};
use crate::db::{ConnectError, Db, Target};
use crate::engine::apply::{ApplyError, RunOptions};
use crate::report::{Event, Reporter, RunningRow};

/// A connected work session with its tracking schema.
pub struct Session {
    pub db: Db,
    pub tracking: Tracking,
    pub target: Target,
    /// The migration lock this session works under, once [`Session::lock`] took it.
    pub held: Option<HeldLock>,
    /// The lock session of this run's last released lock, for its next [`Session::lock`].
    lock_spare: lock::LockSpare,
}

pub fn connect(
    target: &Target,
    schema: &str,
    retry: Duration,
    reporter: &mut dyn Reporter,
) -> Result<Session, ConnectError> {
    reporter.event(&Event::Connecting {
        target: &target.redacted,
    });
    let db = Db::connect(
        target,
        &application_name(),
        retry,
        &mut |attempt, wait, reason| {
            reporter.event(&Event::ConnectRetry {
                attempt,
                wait,
                reason,
            })
        },
    )?;
    Ok(connected(target, schema, db, reporter))
}

fn application_name() -> String {
    format!("pgrollout {}", env!("CARGO_PKG_VERSION"))
}

/// The session of a connection just opened, announced.
fn connected(target: &Target, schema: &str, db: Db, reporter: &mut dyn Reporter) -> Session {
    reporter.event(&Event::Connected {
        target: &target.redacted,
        server_version: &db.server_version,
    });
    Session {
        db,
        tracking: Tracking::new(schema),
        target: target.clone(),
        held: None,
        lock_spare: lock::LockSpare::default(),
    }
}

/// A work session being opened on another thread while this one reads the migration
/// files: over TLS to a distant server the handshake costs more than reading thousands
/// of files, and a no-op run needs both before it can say so. The connection thread also
/// asks for the tracking [`Summary`], the fast path's one query.
pub struct Connecting {
    target: Target,
    schema: String,
    rx: std::sync::mpsc::Receiver<Opening>,
}

/// The connection thread's news: a retry, or the session and its tracking summary.
enum Opening {
    Retry(u32, Duration, String),
    Done(Box<Opened>),
}

type Opened = Result<(Db, Result<Summary, TrackingError>), ConnectError>;

impl Connecting {
    pub fn start(target: &Target, schema: &str, retry: Duration) -> Connecting {
        let (tx, rx) = std::sync::mpsc::channel();
        let (t, tracking) = (target.clone(), Tracking::new(schema));
        // Detached: a caller that gives up (the files are broken) does not wait for it,
        // and the connection closes when the thread ends.
        std::thread::spawn(move || {
            let opened = Db::connect(
                &t,
                &application_name(),
                retry,
                &mut |attempt, wait, reason| {
                    let _ = tx.send(Opening::Retry(attempt, wait, reason.to_string()));
                },
            )
            .map(|mut db| {
                let summary = tracking.summary(&mut db);
                (db, summary)
            });
            let _ = tx.send(Opening::Done(Box::new(opened)));
        });
        Connecting {
            target: target.clone(),
            schema: schema.to_string(),
            rx,
        }
    }

    /// Wait for the session, telling `reporter` what [`connect`] would have, in the same
    /// order; with it, the tracking summary (or why it could not be read).
    pub fn finish(
        self,
        reporter: &mut dyn Reporter,
    ) -> Result<(Session, Result<Summary, TrackingError>), ConnectError> {
        reporter.event(&Event::Connecting {
            target: &self.target.redacted,
        });
        loop {
            match self.rx.recv() {
                Ok(Opening::Retry(attempt, wait, reason)) => reporter.event(&Event::ConnectRetry {
                    attempt,
                    wait,
                    reason: &reason,
                }),
                Ok(Opening::Done(opened)) => {
                    let (db, summary) = (*opened)?;
                    return Ok((connected(&self.target, &self.schema, db, reporter), summary));
                }
                Err(_) => {
                    return Err(ConnectError::Failed {
                        target: self.target.redacted.clone(),
                        message: "the connection thread ended without a result".into(),
                    })
                }
            }
        }
    }
}

struct Waiter<'r> {
    reporter: &'r mut dyn Reporter,
}

impl LockWaitObserver for Waiter<'_> {
    fn waiting(&mut self, waited: Duration, holder: Option<&LockHolder>) {
        self.reporter.event(&Event::LockWaiting { waited, holder });
    }
    fn cancelled(&mut self) -> bool {
        crate::cancelled()
    }
}

impl Session {
    /// Take the migration lock, bring the tracking schema up to date, and re-read the state.
    pub fn lock(
        &mut self,
        opts: &RunOptions,
        reporter: &mut dyn Reporter,
    ) -> Result<(LockGuard, TrackingState), ApplyError> {
        // The work session waits while the lock is taken: it must not idle out meanwhile.
        self.db
            .batch(lock::no_idle_timeout(&self.db))
            .map_err(|source| ApplyError::Query {
                what: "turning the idle timeouts off".into(),
                source,
            })?;
        let guard = lock::acquire(
            &self.target,
            &self.tracking.schema,
            self.tracking.lock_key(),
            opts.lock_wait,
            &mut Waiter { reporter },
            Some(self.lock_spare.clone()),
        )?;
        reporter.event(&Event::LockAcquired {
            waited: guard.waited,
        });
        lock::verify_from(&mut self.db, &guard)?;
        self.held = Some(guard.held());
        // Re-read under the lock: another runner may have created or upgraded it meanwhile.
        let state = self.tracking.read(&mut self.db)?;
        if !state.is_current() {
            let from = self.tracking.ensure(&mut self.db, state.version)?;
            reporter.event(&Event::TrackingSchemaReady {
                schema: &self.tracking.schema,
                from,
                to: TRACKING_VERSION,
            });
            return Ok((guard, self.tracking.read(&mut self.db)?));
        }
        Ok((guard, state))
    }

    /// Stop unless the migration lock taken by [`Session::lock`] is still held by its
    /// session (no-op for work done without the lock: rehearsals, scratch databases).
    pub(crate) fn check_lock(&mut self) -> Result<(), LockError> {
        match self.held {
            Some(held) => held.check(&mut self.db),
            None => Ok(()),
        }
    }

    /// The migrations recorded as running, each with its run's live session (if still
    /// connected) and the lock's holder: a live runner and an interrupted one look the
    /// same in the tracking table.
    pub fn running_rows(
        &mut self,
        state: &TrackingState,
    ) -> Result<Vec<RunningRow>, TrackingError> {
        let read = |source| TrackingError::Read {
            schema: self.tracking.schema.clone(),
            source,
        };
        let mut out = Vec::new();
        for r in state.rows.iter().filter(|r| r.status == RowStatus::Running) {
            out.push(RunningRow {
                version: r.version.clone(),
                name: r.name.clone(),
                statement_index: r.statement_index,
                since: r.applied_at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
                run_id: r.run_id.clone(),
                runner: lock::live_runner(&mut self.db, &r.run_id).map_err(read)?,
                lock_holder: lock::holder(&mut self.db, self.tracking.lock_key()).map_err(read)?,
            });
        }
        Ok(out)
    }

    pub(crate) fn notices(&mut self, version: Option<&str>, reporter: &mut dyn Reporter) {
        for n in self.db.take_notices() {
            reporter.event(&Event::ServerNotice {
                version,
                severity: n.severity(),
                message: n.message(),
            });
        }
    }
}

/// Watches, from a session of its own, which sessions the work session waits for while
/// a migration's last attempt runs: once lock_timeout cancels the wait, the blockers can
/// no longer be asked for, and "gave up after N attempts" alone leaves the user guessing
/// who to talk to. Polling is how it observes (the wait itself sends nothing); it keeps
/// the last non-empty answer.
pub(crate) struct BlockerWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<crate::report::Blocker>>,
}

impl BlockerWatch {
    pub(crate) fn start(target: &Target, pid: i32) -> BlockerWatch {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (target, flag) = (target.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let app = format!("pgrollout {} watch", env!("CARGO_PKG_VERSION"));
            let Ok(mut db) = Db::connect(&target, &app, Duration::from_secs(5), &mut |_, _, _| {})
            else {
                return Vec::new();
            };
            let mut seen = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match lock::blockers(&mut db, pid) {
                    Ok(b) if !b.is_empty() => seen = b,
                    Ok(_) => {}
                    Err(_) => break,
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            seen
        });
        BlockerWatch { stop, thread }
    }

    /// Stop watching; the sessions last seen blocking the work session.
    pub(crate) fn finish(self) -> Vec<crate::report::Blocker> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}
