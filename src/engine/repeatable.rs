//! Flyway's repeatable migrations (`R__<description>.sql`): no version; each runs again
//! whenever its checksum differs from the one it last ran with, after the versioned
//! migrations, in description order — as Flyway runs them. Each runs in its own
//! transaction with its record: a history row (`version_text` `R`) carrying the
//! checksum, so the next run knows what ran. They have no down: a rollback leaves them.

use std::collections::HashMap;

use crate::db::tracking::{RepeatableRecord, RunContext};
use crate::engine::apply::{up_section, Applied, ApplyError, ApplyReport, RunOptions};
use crate::engine::executor::{self, Bookkeeping};
use crate::engine::Session;
use crate::migration::{Migration, MigrationSet};
use crate::plan::Problem;
use crate::report::{Event, Level, Location, Reporter};

/// The repeatables of `set` that are new or changed since they last ran, in run order.
pub fn changed<'a>(set: &'a MigrationSet, ran: &HashMap<String, String>) -> Vec<&'a Migration> {
    set.repeatables
        .iter()
        .filter(|m| ran.get(&m.name) != Some(&m.checksum))
        .collect()
}

/// What has to run, read from the tracking schema (empty without repeatables, with no
/// query).
pub(crate) fn due<'a>(
    s: &mut Session,
    set: &'a MigrationSet,
) -> Result<Vec<&'a Migration>, ApplyError> {
    if set.repeatables.is_empty() {
        return Ok(Vec::new());
    }
    let ran = s.tracking.read_repeatables(&mut s.db)?;
    Ok(changed(set, &ran))
}

/// The statements of the due repeatables, parsed now (the set may have been loaded
/// without them); a repeatable marked `transaction:false` is refused.
pub(crate) fn parse(
    due: &[&Migration],
    reporter: &mut dyn Reporter,
) -> Result<Vec<Migration>, ApplyError> {
    let mut out = Vec::with_capacity(due.len());
    let mut problems = Vec::new();
    for m in due {
        let mut m = (*m).clone();
        if let Err(e) = m.parse_statements() {
            problems.push(Problem {
                level: Level::Error,
                version: None,
                location: None,
                message: e.to_string(),
            });
            continue;
        }
        if m.up.no_transaction {
            problems.push(Problem {
                level: Level::Error,
                version: None,
                location: Some(Location::new(&m.path, m.up.marker_line.unwrap_or(1), 1)),
                message: format!(
                    "repeatable migration {}: transaction:false is not supported for repeatables, \
                     which run in a transaction with their record; move that SQL into a versioned migration",
                    m.name
                ),
            });
            continue;
        }
        out.push(m);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        for p in &problems {
            reporter.event(&Event::Diagnostic {
                level: p.level,
                location: p.location.as_ref(),
                message: &p.message,
            });
        }
        Err(ApplyError::Files(problems))
    }
}

/// Run `todo` (parsed, in order) under the lock the caller holds, each in its own
/// transaction with its history row; what ran goes into `report.applied`.
pub(crate) fn run(
    s: &mut Session,
    todo: &[Migration],
    opts: &RunOptions,
    ctx: &RunContext,
    report: &mut ApplyReport,
    reporter: &mut dyn Reporter,
) -> Result<(), ApplyError> {
    if todo.is_empty() {
        return Ok(());
    }
    announce(todo, reporter);
    let insert = executor::prepare(&mut s.db, &s.tracking.record_repeatable_sql())?;
    for m in todo {
        if crate::cancelled() {
            return Err(ApplyError::Cancelled);
        }
        let book = Bookkeeping::Repeatable {
            row: RepeatableRecord {
                name: &m.name,
                checksum: &m.checksum,
                ctx,
            },
            insert: &insert,
        };
        let ran = executor::run(s, &up_section(m), &book, opts, reporter)?;
        report.applied.push(Applied::new(m, ran.mode, ran.duration));
    }
    Ok(())
}

/// Say which repeatables run and why.
pub(crate) fn announce(todo: &[Migration], reporter: &mut dyn Reporter) {
    let names: Vec<&str> = todo.iter().map(|m| m.name.as_str()).collect();
    reporter.event(&Event::Info {
        message: &format!(
            "{} repeatable migration(s) new or changed since they last ran, to run after the versioned ones: {}",
            todo.len(),
            names.join(", ")
        ),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_or_changed_repeatables_are_due() {
        let dir = tempfile::tempdir().unwrap();
        for (f, sql) in [
            ("V1__t.sql", "CREATE TABLE t (n int);\n"),
            ("R__b_view.sql", "CREATE OR REPLACE VIEW b AS SELECT 1;\n"),
            ("R__a_view.sql", "CREATE OR REPLACE VIEW a AS SELECT 1;\n"),
            ("R__c_view.sql", "CREATE OR REPLACE VIEW c AS SELECT 1;\n"),
        ] {
            std::fs::write(dir.path().join(f), sql).unwrap();
        }
        let set = MigrationSet::load(dir.path()).unwrap();
        let names = |v: Vec<&Migration>| v.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(changed(&set, &HashMap::new())),
            ["a_view", "b_view", "c_view"]
        );
        let ran: HashMap<String, String> = [
            ("a_view".to_string(), set.repeatables[0].checksum.clone()),
            ("b_view".to_string(), "stale".to_string()),
        ]
        .into();
        assert_eq!(names(changed(&set, &ran)), ["b_view", "c_view"]);
    }
}
