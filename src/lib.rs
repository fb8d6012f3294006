//! pgrollout: a PostgreSQL migration runner for CI.
//!
//! Dependencies flow one way: `cli` → `pipeline` → `engine` (apply, rehearsal, rollback,
//! `test`, drift, backup, lint with live context, all on one section executor) →
//! `plan`/`lint`/`migration`/`sql`/`config`/`schema` → `db`. Everything may use `report`,
//! the seam of events and the data they carry; `render` turns them into text and imports
//! nothing above the seam. `tests/it/architecture.rs` checks that no two modules import
//! each other, directly or through others.

pub(crate) mod config;
pub mod db;
pub mod engine;
pub(crate) mod environments;
pub mod ephemeral;
pub mod lint;
pub mod migration;
pub(crate) mod notify;
pub(crate) mod pipeline;
pub(crate) mod plan;
pub mod render;
pub mod report;
pub mod schema;
pub(crate) mod serve;
pub mod sql;

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Set by the binary's one signal handler (Ctrl-C, SIGTERM): the command should stop at
/// its next safe point. Long waits — the migration lock, the review delay — wait on it
/// and stop cleanly with nothing applied. A flag (not a channel) because every layer
/// that waits needs only "has it happened?", and a signal can arrive before anyone waits.
static CANCELLED: Mutex<bool> = Mutex::new(false);
static CANCEL_SIGNAL: Condvar = Condvar::new();

fn cancelled_flag() -> std::sync::MutexGuard<'static, bool> {
    // A bool cannot be left half-written by a panic.
    CANCELLED.lock().unwrap_or_else(|p| p.into_inner())
}

/// The same news for async waiters: a database session that is running a statement
/// when the signal arrives has the server cancel it (see `db::conn`).
static CANCEL_WATCH: std::sync::LazyLock<tokio::sync::watch::Sender<bool>> =
    std::sync::LazyLock::new(|| tokio::sync::watch::channel(false).0);

/// Ask the running command to stop, and wake whoever waits in [`wait_cancelled`].
pub fn cancel() {
    *cancelled_flag() = true;
    CANCEL_SIGNAL.notify_all();
    CANCEL_WATCH.send_replace(true);
}

/// A receiver whose `changed()` resolves at the next [`cancel`] after this call (not one
/// that already happened: work started after the signal — the cleanup — is not cut short).
pub(crate) fn cancel_receiver() -> tokio::sync::watch::Receiver<bool> {
    CANCEL_WATCH.subscribe()
}

pub fn cancelled() -> bool {
    *cancelled_flag()
}

/// Wait up to `timeout` for a cancellation; true if the command was cancelled. Returns
/// as soon as the signal arrives, so a review delay stops at once, not at its next poll.
pub fn wait_cancelled(timeout: Duration) -> bool {
    let guard = cancelled_flag();
    let (guard, _) = CANCEL_SIGNAL
        .wait_timeout_while(guard, timeout, |c| !*c)
        .unwrap_or_else(|p| p.into_inner());
    *guard
}
pub mod cli;
