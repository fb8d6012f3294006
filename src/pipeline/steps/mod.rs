//! One file per pipeline step; each adds its method to the runner.

mod apply;
mod backup_marker;
mod drift;
mod dry_run;
mod health;
mod lint;
mod review_delay;
mod rollback;
mod smoke_test;
mod validate;
mod verify;
