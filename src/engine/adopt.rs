//! `adopt`: take over the history another migration tool keeps in the target database.
//! The old tool's table is read as that tool writes it, every applied version is
//! matched to a file, and pgrollout's tracking rows (the files' checksums and down SQL
//! as they are now) plus one audited `adopt` history row per version are written in
//! one transaction, under the migration lock (the caller holds it). The old table is
//! only read.

use crate::db::conn::error_text;
use crate::db::tracking::{RunContext, Tracking, TrackingError};
use crate::db::Db;
use crate::migration::layout::Layout;
use crate::migration::{Migration, MigrationSet, Version};

/// The tools whose history `adopt` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Flyway,
    GolangMigrate,
    Dbmate,
    Sqlx,
    Diesel,
    Refinery,
    Sqitch,
}

pub const TOOLS: &[(&str, Tool)] = &[
    ("flyway", Tool::Flyway),
    ("golang-migrate", Tool::GolangMigrate),
    ("dbmate", Tool::Dbmate),
    ("sqlx", Tool::Sqlx),
    ("diesel", Tool::Diesel),
    ("refinery", Tool::Refinery),
    ("sqitch", Tool::Sqitch),
];

impl Tool {
    pub fn from_name(s: &str) -> Option<Tool> {
        TOOLS.iter().find(|(n, _)| *n == s).map(|(_, t)| *t)
    }

    pub fn name(self) -> &'static str {
        TOOLS
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("", |(n, _)| n)
    }

    /// The history table, as the tool creates it in the search path's first schema.
    pub fn table(self) -> &'static str {
        match self {
            Tool::Flyway => "flyway_schema_history",
            Tool::GolangMigrate | Tool::Dbmate => "schema_migrations",
            Tool::Sqlx => "_sqlx_migrations",
            Tool::Diesel => "__diesel_schema_migrations",
            Tool::Refinery => "refinery_schema_history",
            Tool::Sqitch => "sqitch.changes",
        }
    }

    /// The layout the tool's files are read in, when `--layout` does not say.
    pub fn layout(self) -> Layout {
        match self {
            Tool::Flyway => Layout::Flyway,
            Tool::GolangMigrate | Tool::Sqlx => Layout::GolangMigrate,
            Tool::Dbmate => Layout::Dbmate,
            Tool::Diesel => Layout::Diesel,
            Tool::Refinery => Layout::Refinery,
            Tool::Sqitch => Layout::Sqitch,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    #[error("reading {table} ({tool}'s history): {message}")]
    Read {
        tool: &'static str,
        table: &'static str,
        message: String,
    },
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Tracking(#[from] TrackingError),
}

/// What the old tool says is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// These versions (flyway, dbmate, sqlx, diesel, refinery), in the tool's order.
    Versions(Vec<String>),
    /// golang-migrate keeps only its current version: every file up to it is applied.
    UpTo(String),
    /// sqitch's deployed change names, in deploy order (a reworked change twice).
    Changes(Vec<String>),
}

fn read_err(tool: Tool, e: tokio_postgres::Error) -> AdoptError {
    AdoptError::Read {
        tool: tool.name(),
        table: tool.table(),
        message: error_text(&e),
    }
}

/// Read the old tool's history, refusing a failed or dirty one.
pub fn read_applied(db: &mut Db, tool: Tool) -> Result<Applied, AdoptError> {
    let exists = db
        .query("SELECT to_regclass($1) IS NOT NULL", &[&tool.table()])
        .map_err(|e| read_err(tool, e))?;
    if !exists.first().is_some_and(|r| r.get::<_, bool>(0)) {
        return Err(AdoptError::Refused(format!(
            "there is no {} table in this database: nothing {} applied here to adopt (wrong --from, or a \
             schema not on the search_path?)",
            tool.table(),
            tool.name()
        )));
    }
    let refused = |what: String| {
        Err(AdoptError::Refused(format!(
            "{} ({}'s history) {what}: fix it with {} first; nothing was adopted",
            tool.table(),
            tool.name(),
            tool.name()
        )))
    };
    let rows = |db: &mut Db, sql: &str| db.query(sql, &[]).map_err(|e| read_err(tool, e));
    match tool {
        Tool::Flyway => {
            let rows = rows(
                db,
                "SELECT version, type, success, script FROM flyway_schema_history ORDER BY installed_rank",
            )?;
            let mut applied: Vec<String> = Vec::new();
            for r in rows {
                let version: Option<String> = r.get(0);
                let kind: String = r.get(1);
                let success: bool = r.get(2);
                let script: String = r.get(3);
                if !success {
                    return refused(format!("records a failed migration ({script})"));
                }
                match (kind.as_str(), version) {
                    ("SCHEMA", _) => {}
                    // Repeatables: see `flyway_repeatables`.
                    ("SQL", None) => {}
                    (other, None) => {
                        return refused(format!(
                            "has a {other} row for the repeatable {script}, which adopt does not take over"
                        ))
                    }
                    ("UNDO_SQL", Some(v)) => applied.retain(|a| a != &v),
                    ("SQL", Some(v)) => applied.push(v),
                    (other, Some(v)) => {
                        return refused(format!(
                            "has a {other} row for version {v}, which adopt does not take over"
                        ))
                    }
                }
            }
            Ok(Applied::Versions(applied))
        }
        Tool::GolangMigrate => {
            let rows = rows(db, "SELECT version::text, dirty FROM schema_migrations")?;
            match rows.as_slice() {
                [] => Ok(Applied::Versions(Vec::new())),
                [r] => {
                    let v: String = r.get(0);
                    if r.get::<_, bool>(1) {
                        return refused(format!(
                            "is dirty at version {v} (a migration failed half-way)"
                        ));
                    }
                    Ok(Applied::UpTo(v))
                }
                _ => refused(format!(
                    "has {} rows where golang-migrate keeps one (is this dbmate's? use --from dbmate)",
                    rows.len()
                )),
            }
        }
        Tool::Sqlx => {
            let rows = rows(
                db,
                "SELECT version::text, success, description FROM _sqlx_migrations ORDER BY version",
            )?;
            let mut out = Vec::new();
            for r in rows {
                let v: String = r.get(0);
                if !r.get::<_, bool>(1) {
                    return refused(format!("records version {v} as failed"));
                }
                out.push(v);
            }
            Ok(Applied::Versions(out))
        }
        Tool::Dbmate | Tool::Diesel | Tool::Refinery => {
            let sql = format!(
                "SELECT version::text FROM {} ORDER BY version",
                tool.table()
            );
            Ok(Applied::Versions(
                rows(db, &sql)?.iter().map(|r| r.get(0)).collect(),
            ))
        }
        Tool::Sqitch => Ok(Applied::Changes(
            rows(
                db,
                "SELECT change FROM sqitch.changes ORDER BY committed_at, change_id",
            )?
            .iter()
            .map(|r| r.get(0))
            .collect(),
        )),
    }
}

/// The files the old history says are applied, in order; a version without a file is a
/// refusal.
pub fn match_files<'a>(
    set: &'a MigrationSet,
    tool: Tool,
    applied: &Applied,
) -> Result<Vec<&'a Migration>, AdoptError> {
    let missing = |v: &str| {
        AdoptError::Refused(format!(
            "{} ({}) records version {v} as applied, but no file in {} has it (read in the {} layout): \
             restore the file, or point --migrations at the right directory; nothing was adopted",
            tool.table(),
            tool.name(),
            set.dir.display(),
            set.layout
        ))
    };
    let find = |v: &str| {
        let key = if set.layout == Layout::Flyway {
            crate::migration::layout::flyway_version(v)
        } else {
            Version::parse(v)
        };
        key.and_then(|k| set.get(&k)).ok_or_else(|| missing(v))
    };
    match applied {
        Applied::Versions(vs) => {
            let mut out = vs.iter().map(|v| find(v)).collect::<Result<Vec<_>, _>>()?;
            out.sort_by(|a, b| a.version.cmp(&b.version));
            out.dedup_by(|a, b| a.version == b.version);
            Ok(out)
        }
        Applied::UpTo(v) => {
            let last = find(v)?;
            Ok(set
                .migrations
                .iter()
                .filter(|m| m.version <= last.version)
                .collect())
        }
        Applied::Changes(names) => {
            // The n-th deployment of a change name is its n-th entry in the plan (a
            // reworked change's earlier script is named `name@tag`).
            let mut out = Vec::new();
            for name in names {
                let taken = out
                    .iter()
                    .filter(|m: &&&Migration| base(&m.name) == name)
                    .count();
                let m = set
                    .migrations
                    .iter()
                    .filter(|m| base(&m.name) == name)
                    .nth(taken)
                    .ok_or_else(|| missing(name))?;
                out.push(m);
            }
            out.sort_by(|a, b| a.version.cmp(&b.version));
            Ok(out)
        }
    }
}

fn base(script: &str) -> &str {
    script.split('@').next().unwrap_or(script)
}

/// Flyway's repeatable migrations that are adopted as run: each `R__` file whose
/// checksum equals Flyway's checksum of its last successful run (so the database has
/// it as the file is now). The others — changed since, or never run — stay due and run
/// on the next `apply`, as `flyway migrate` would run them.
pub fn flyway_repeatables<'a>(
    db: &mut Db,
    set: &'a MigrationSet,
) -> Result<Vec<&'a Migration>, AdoptError> {
    if set.repeatables.is_empty() {
        return Ok(Vec::new());
    }
    let rows = db
        .query(
            "SELECT DISTINCT ON (script) script, checksum FROM flyway_schema_history \
             WHERE version IS NULL AND type = 'SQL' AND success ORDER BY script, installed_rank DESC",
            &[],
        )
        .map_err(|e| read_err(Tool::Flyway, e))?;
    let last: std::collections::HashMap<String, Option<i32>> = rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, Option<i32>>(1)))
        .collect();
    Ok(set
        .repeatables
        .iter()
        .filter(|m| {
            let script = crate::migration::layout::file_name(&m.path);
            last.get(script.as_ref())
                .copied()
                .flatten()
                .is_some_and(|c| c == crate::migration::layout::flyway::checksum(&m.source))
        })
        .collect())
}

/// Write the tracking rows, all or nothing. The caller holds the migration lock and has
/// checked that pgrollout's tracking is empty.
pub fn write(
    db: &mut Db,
    tracking: &Tracking,
    run: &RunContext,
    tool: Tool,
    adopted: &[&Migration],
    repeatables: &[&Migration],
) -> Result<(), AdoptError> {
    let reason = format!("adopted from {} ({})", tool.name(), tool.table());
    db.batch("BEGIN").map_err(|e| read_err(tool, e))?;
    for m in adopted {
        let down = m
            .down_text()
            .map(|t| (t, m.down.as_ref().is_some_and(|d| d.section.no_transaction)));
        if let Err(e) = tracking.insert_adopted(
            db,
            run,
            &m.version.text,
            &m.name,
            &m.checksum,
            m.up.no_transaction,
            down,
            &reason,
        ) {
            let _ = db.batch("ROLLBACK");
            return Err(e.into());
        }
    }
    for m in repeatables {
        if let Err(e) = tracking.history(
            db,
            run,
            "adopt",
            Some("R"),
            Some(&m.name),
            Some(&m.checksum),
            "completed",
            None,
            None,
            Some(&reason),
        ) {
            let _ = db.batch("ROLLBACK");
            return Err(e.into());
        }
    }
    db.batch("COMMIT").map_err(|e| read_err(tool, e))
}
