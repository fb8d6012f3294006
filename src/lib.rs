//! pgrollout: a PostgreSQL migration runner for CI.
//!
//! Dependencies flow one way: `cli` → `pipeline` → `execute`/`plan`/`lint`/`migration`/`config` → `db`,
//! and everything may use `report` (event definitions only).

pub mod backup;
pub mod config;
pub mod db;
pub mod drift;
pub mod ephemeral;
pub mod execute;
pub mod lint;
pub mod lint_run;
pub mod migration;
pub mod migtest;
pub mod overview;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod rollback;
pub mod schema;
pub mod sql;

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the binary's signal handler (Ctrl-C, SIGTERM). Long waits — the migration
/// lock, the review delay — check it between polls and stop cleanly.
static CANCELLED: AtomicBool = AtomicBool::new(false);

pub fn cancel() {
    CANCELLED.store(true, Ordering::SeqCst);
}

pub fn cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}
pub mod cli;
