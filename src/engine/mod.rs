//! The engine: everything that changes a database on the user's behalf.
//!
//! One session type (connection, tracking schema, migration lock) and one section
//! executor ([`executor`]) that runs an up or a down section — transactional in one
//! pipelined round trip, or statement by statement with `running`/`failed` state — for
//! every command: `apply` and its rehearsal, `rollback` and its rehearsal, `test`, and
//! drift's "against migrations".

pub mod adopt;
pub mod apply;
pub mod backup;
pub mod drift;
pub mod executor;
pub mod lint;
pub mod rehearse;
pub mod repeatable;
pub mod rollback;
pub mod session;
pub mod test;
pub mod verify;

pub use apply::{apply, apply_in, ApplyError, ApplyFailure, ApplyReport, RunOptions};
pub use executor::SectionError;
pub use session::{connect, Session};
