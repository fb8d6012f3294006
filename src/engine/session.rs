//! A connected work session: the connection, its tracking schema, and the migration
//! lock taken as a guard.

use std::time::Duration;

use crate::db::lock::{self, HeldLock, LockError, LockGuard, LockHolder, LockWaitObserver};
use crate::db::tracking::{RowStatus, Tracking, TrackingError, TrackingState, TRACKING_VERSION};
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
    let app = format!("pgrollout {}", env!("CARGO_PKG_VERSION"));
    let db = Db::connect(target, &app, retry, &mut |attempt, wait, reason| {
        reporter.event(&Event::ConnectRetry {
            attempt,
            wait,
            reason,
        })
    })?;
    reporter.event(&Event::Connected {
        target: &target.redacted,
        server_version: &db.server_version,
    });
    Ok(Session {
        db,
        tracking: Tracking::new(schema),
        target: target.clone(),
        held: None,
    })
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
            .batch(lock::NO_IDLE_TIMEOUT)
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
