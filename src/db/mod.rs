//! Everything that talks to PostgreSQL: connections and TLS, the advisory-lock guard,
//! the tracking schema. All of the tool's own SQL text lives under this module.

pub mod catalog;
pub mod conn;
pub mod health;
pub mod history;
pub mod libpq;
pub mod lock;
pub mod observe;
pub mod stats;
pub mod tracking;

pub use conn::{ConnectError, Db, SslMode, Target};
pub use libpq::LibpqEnv;

pub use crate::sql::quote_ident;
