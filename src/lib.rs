//! pgrollout: a PostgreSQL migration runner for CI.
//!
//! Dependencies flow one way: `cli` → `pipeline` → `execute`/`plan`/`lint`/`migration`/`config` → `db`,
//! and everything may use `report` (event definitions only).

pub mod ephemeral;
pub mod lint;
pub mod migration;
pub mod sql;
