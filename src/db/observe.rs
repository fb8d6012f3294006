//! What a rehearsal on a shadow database observes after each statement, read from the
//! server itself. The SQL text of it is here.
//!
//! One query per observation, in the statement's own session and transaction:
//! - `pg_class.relfilenode` of every user relation: a table or index whose file changed
//!   was rewritten (`ALTER COLUMN … TYPE`, a volatile default, `VACUUM FULL`…);
//! - the transaction's own scan counters, `seq_scan + idx_scan` as
//!   `pg_stat_xact_user_tables` shows them (read with the function behind the view,
//!   `pg_stat_get_xact_numscans`, of the table and of each of its indexes),
//!   which count a scan when it starts, so they move on an empty table too (`CREATE
//!   INDEX`, a validating `ADD FOREIGN KEY`, `SET NOT NULL` each add one). Only the
//!   difference between two readings means anything: the view also shows counts of
//!   earlier transactions of the backend that were not yet flushed;
//! - `pg_locks` for the session's own pid: the table-level modes it holds.

use std::collections::HashMap;

use super::Db;

/// One user relation (table, index, TOAST table, materialized view) at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationState {
    pub oid: u32,
    /// The table the relation belongs to (itself for a table; the table of an index or
    /// of a TOAST table).
    pub table_oid: u32,
    pub relkind: char,
    pub filenode: u32,
    /// `schema.name` (unquoted, as `stats::table_sizes` takes it); tables only, else empty.
    pub qualified: String,
    /// The table's name as a reader writes it: without `public.`.
    pub display: String,
    /// Scans in the transaction so far: of a table, `seq_scan + idx_scan`; of an index,
    /// its own.
    pub scans: i64,
    /// Lock modes the session holds on the relation (`AccessExclusiveLock`…).
    pub modes: Vec<String>,
}

/// Every user relation, keyed by oid.
pub type Snapshot = HashMap<u32, RelationState>;

const OBSERVE_SQL: &str = "\
WITH held AS (
  SELECT l.relation, array_agg(l.mode::text ORDER BY l.mode) AS modes
  FROM pg_catalog.pg_locks AS l
  WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'relation' AND l.granted
    AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
  GROUP BY l.relation
)
SELECT c.oid::int8,
       coalesce(i.indrelid, c.oid)::int8,
       c.relkind::text,
       c.relfilenode::int8,
       CASE WHEN c.relkind IN ('r', 'p', 'm') THEN n.nspname || '.' || c.relname ELSE '' END,
       CASE WHEN n.nspname = 'public' THEN c.relname::text ELSE n.nspname || '.' || c.relname END,
       pg_catalog.pg_stat_get_xact_numscans(c.oid),
       coalesce(h.modes, '{}'),
       c.reltoastrelid::int8
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_index AS i ON i.indexrelid = c.oid
LEFT JOIN held AS h ON h.relation = c.oid
WHERE c.relkind IN ('r', 'p', 'm', 'i', 't')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'";

/// Every user relation now, as the session sees it inside its transaction.
pub fn snapshot(db: &mut Db) -> Result<Snapshot, tokio_postgres::Error> {
    let rows = db.query(OBSERVE_SQL, &[])?;
    let mut snap: Snapshot = rows
        .iter()
        .map(|r| {
            let oid = r.get::<_, i64>(0) as u32;
            let relkind: String = r.get(2);
            (
                oid,
                RelationState {
                    oid,
                    table_oid: r.get::<_, i64>(1) as u32,
                    relkind: relkind.chars().next().unwrap_or('r'),
                    filenode: r.get::<_, i64>(3) as u32,
                    qualified: r.get(4),
                    display: r.get(5),
                    scans: r.get(6),
                    modes: r.get(7),
                },
            )
        })
        .collect();
    // A TOAST table belongs to the table naming it (mapped here rather than joined: a
    // freshly restored shadow has no statistics on pg_class, and the planner may pick a
    // nested loop over every pair of relations).
    let toasts: Vec<(u32, u32)> = rows
        .iter()
        .map(|r| (r.get::<_, i64>(8) as u32, r.get::<_, i64>(0) as u32))
        .filter(|(toast, _)| *toast != 0)
        .collect();
    for (toast, table) in toasts {
        if let Some(t) = snap.get_mut(&toast) {
            t.table_oid = table;
        }
    }
    // An index's scans are its table's index scans (`idx_scan` of the view).
    let index_scans: Vec<(u32, i64)> = snap
        .values()
        .filter(|r| r.relkind == 'i')
        .map(|r| (r.table_oid, r.scans))
        .collect();
    for (table, n) in index_scans {
        if let Some(t) = snap.get_mut(&table) {
            t.scans += n;
        }
    }
    Ok(snap)
}

/// Names of the roles the database at `db` has besides the built-in `pg_*` ones: the
/// roles a schema dump of it may name as owners or grantees.
pub fn roles(db: &mut Db) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = db.query(
        "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolname !~ '^pg_' ORDER BY 1",
        &[],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Create each of `roles` that does not exist yet, without login: a shadow server needs
/// them for the owners and grants of the schema restored into it.
pub fn create_missing_roles(db: &mut Db, roles: &[String]) -> Result<(), tokio_postgres::Error> {
    let existing = db.query("SELECT rolname::text FROM pg_catalog.pg_roles", &[])?;
    let existing: Vec<String> = existing.iter().map(|r| r.get(0)).collect();
    for r in roles.iter().filter(|r| !existing.contains(r)) {
        db.batch(&format!("CREATE ROLE {} NOLOGIN", super::quote_ident(r)))?;
    }
    Ok(())
}
