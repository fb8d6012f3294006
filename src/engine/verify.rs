//! sqitch's verify scripts: `verify/<change>.sql` beside `deploy/`, run for each applied
//! change by the pipeline's `verify` step, as `sqitch verify` does. Each runs inside a
//! transaction that is rolled back (its own `BEGIN`/`ROLLBACK` lines are left out), so
//! a verify script can never change the database; an error fails verification and is
//! positioned at the script's file:line:col.

use std::path::PathBuf;

use crate::engine::executor::{self, FileText};
use crate::engine::Session;
use crate::migration::{FileError, Layout, Migration, MigrationSet, Version};
use crate::report::{Direction, Location, Reporter};

/// Why verification failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("reading a sqitch verify script: {0}")]
    Load(#[from] FileError),
    #[error("{}: the verify script of change `{change}` failed: {message}", .location.as_ref().map_or_else(|| path.display().to_string(), ToString::to_string))]
    Script {
        path: PathBuf,
        /// The failing statement's file:line:col, when the server gave a position.
        location: Option<Location>,
        change: String,
        message: String,
    },
    #[error("sqitch verify script {path}: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: tokio_postgres::Error,
    },
}

/// The verify script of each change of a sqitch set that `applied` says is applied, in
/// plan order. Other layouts have none.
pub fn scripts<'a>(
    set: &'a MigrationSet,
    applied: impl Fn(&Version) -> bool + 'a,
) -> impl Iterator<Item = (&'a Migration, PathBuf)> + 'a {
    let dir = set.dir.join("verify");
    set.migrations
        .iter()
        .filter(move |_| set.layout == Layout::Sqitch)
        .filter(move |m| applied(&m.version))
        .map(move |m| (m, dir.join(format!("{}.sql", m.name))))
        .filter(|(_, p)| p.is_file())
}

/// Run the verify scripts of the applied changes; the number run.
pub fn run(
    s: &mut Session,
    set: &MigrationSet,
    applied: impl Fn(&Version) -> bool,
    reporter: &mut dyn Reporter,
) -> Result<usize, VerifyError> {
    let mut n = 0;
    for (m, path) in scripts(set, applied) {
        let script = Migration::load_with(m.version.clone(), m.name.clone(), &path, None, true)?;
        let statements = script
            .statements()
            .filter(|st| st.tx_control.is_none())
            .collect();
        let sec = executor::Section {
            direction: Direction::Up,
            version: &script.version.text,
            name: &script.name,
            path: Some(&path),
            origin: None,
            source: &script.source,
            statements,
            no_transaction: false,
            file: Some(FileText {
                path: &path,
                text: &script.source,
                lines: &script.lines,
                start: 0,
            }),
        };
        let db_err = |source| VerifyError::Db {
            path: path.clone(),
            source,
        };
        s.db.batch("BEGIN").map_err(db_err)?;
        let outcome = executor::check(s, &sec, reporter);
        // After a failure `check` has already rolled back.
        if outcome.is_ok() {
            s.db.batch("ROLLBACK").map_err(db_err)?;
        }
        outcome.map_err(|e| match e {
            executor::ExecError::Section(se) => VerifyError::Script {
                path: path.clone(),
                location: se.location.clone(),
                change: m.name.clone(),
                message: se.server.to_string(),
            },
            other => VerifyError::Script {
                path: path.clone(),
                location: None,
                change: m.name.clone(),
                message: other.to_string(),
            },
        })?;
        n += 1;
    }
    Ok(n)
}

impl VerifyError {
    /// Where to annotate: the failing statement, else the script.
    pub fn location(&self) -> Option<Location> {
        match self {
            VerifyError::Script { path, location, .. } => Some(
                location
                    .clone()
                    .unwrap_or_else(|| Location::new(path, 1, 1)),
            ),
            VerifyError::Db { path, .. } => Some(Location::new(path, 1, 1)),
            VerifyError::Load(_) => None,
        }
    }
}
