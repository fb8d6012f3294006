//! The integration tests: one crate, so one PostgreSQL cluster serves every test of a run
//! (see [`common`]), with a module per area.

mod common;

mod architecture;
mod batches;
mod connection;
mod connections;
mod drift;
mod engine;
mod ephemeral;
mod github;
mod inputs;
mod layouts;
mod lint;
mod lock;
mod notify;
mod patterns;
mod rehearse;
mod report;
mod rollback;
mod serve;
mod shipping;
mod soak;
mod steps;
mod workflow;
