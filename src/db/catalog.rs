//! The catalog reader: fills a [`SchemaSnapshot`] straight from the system catalogs.
//!
//! No `pg_dump`: a dump couples the client's version to the server's and is text to be
//! parsed again. The catalogs are read with the server's own deparsers
//! (`pg_get_indexdef`, `pg_get_constraintdef`, `pg_get_viewdef`, …), so both sides of
//! a comparison are rendered the same way by servers of the same major version.
//!
//! One reader per catalog below; every query after the first is limited to the schemas
//! the first one kept (bound as `$1`), and sorts its rows so the snapshot is stable.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::Db;
use crate::schema::{
    Column, Constraint, Enum, EventTrigger, Extension, Function, Index, Policy, Rule, Schema,
    SchemaSnapshot, Sequence, SnapshotOptions, Statistics, Table, Trigger, UserType, View,
    SNAPSHOT_FORMAT_VERSION,
};

#[derive(Debug, thiserror::Error)]
#[error("reading the schema snapshot ({what}): {}", crate::db::conn::error_text(.source))]
pub struct SnapshotError {
    pub what: &'static str,
    #[source]
    pub source: tokio_postgres::Error,
}

/// Schemas that are never user schemas.
const SYSTEM_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') \
     AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'";

/// `aclexplode` of an ACL as sorted `grantee:PRIVILEGE[*]` strings (`*` = grantable).
fn acl(column: &str) -> String {
    format!(
        "ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END \
         || ':' || a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END \
         FROM aclexplode({column}) AS a ORDER BY 1)"
    )
}

/// A text[] column (NULL = none) as a sorted array, so the order it was written in does
/// not count as a difference.
fn sorted(column: &str) -> String {
    format!("ARRAY(SELECT o FROM unnest(coalesce({column}, ARRAY[]::text[])) AS o ORDER BY 1)")
}

/// `origin`, `disabled`, `replica` or `always` for an `ENABLE`/`DISABLE` state character.
fn enabled_word(column: &str) -> String {
    format!(
        "CASE {column} WHEN 'O' THEN 'origin' WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica' \
         WHEN 'A' THEN 'always' ELSE {column}::text END"
    )
}

/// Not a member of an extension: `classid` is the catalog the object lives in.
fn not_extension_member(classid: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.classid = '{classid}'::regclass \
         AND d.objid = {oid} AND d.deptype = 'e')"
    )
}

fn err(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> SnapshotError {
    move |source| SnapshotError { what, source }
}

/// Everything but system schemas and the tracking schema, without privileges: what
/// `pgrollout test` compares before and after a rollback.
pub fn read_all(db: &mut Db, tracking_schema: &str) -> Result<SchemaSnapshot, SnapshotError> {
    read(
        db,
        &SnapshotOptions {
            tracking_schema: tracking_schema.to_string(),
            ..SnapshotOptions::default()
        },
    )
}

/// Read the snapshot. Read-only; runs in one REPEATABLE READ transaction so every query
/// sees the same state.
pub fn read(db: &mut Db, opts: &SnapshotOptions) -> Result<SchemaSnapshot, SnapshotError> {
    db.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .map_err(err("starting a read-only transaction"))?;
    let result = read_in_transaction(db, opts);
    let _ = db.batch("ROLLBACK");
    result
}

fn read_in_transaction(
    db: &mut Db,
    opts: &SnapshotOptions,
) -> Result<SchemaSnapshot, SnapshotError> {
    let version: i32 = db
        .query("SELECT current_setting('server_version_num')::int", &[])
        .map_err(err("server version"))?[0]
        .get(0);
    let mut c = Catalog {
        db,
        own: opts.owners_and_privileges,
        sql_body: version >= 140_000,
        schemas: Vec::new(),
    };
    // Schemas first: every later query is limited to these names.
    let schemas = c.schemas(opts)?;
    c.schemas = schemas.iter().map(|s| s.name.clone()).collect();
    Ok(SchemaSnapshot {
        format_version: SNAPSHOT_FORMAT_VERSION,
        server_version: c.db.server_version.clone(),
        schemas,
        extensions: c.extensions()?,
        tables: c.tables()?,
        constraints: c.constraints()?,
        indexes: c.indexes()?,
        views: c.views()?,
        functions: c.functions()?,
        triggers: c.triggers()?,
        policies: c.policies()?,
        enums: c.enums()?,
        types: c.types()?,
        sequences: c.sequences()?,
        rules: c.rules()?,
        statistics: c.statistics()?,
        event_triggers: c.event_triggers()?,
    })
}

/// One open read-only transaction and what every reader needs to know.
struct Catalog<'a> {
    db: &'a mut Db,
    /// Read owners and ACLs (`SnapshotOptions::owners_and_privileges`).
    own: bool,
    /// The server has `pg_proc.prosqlbody` (PostgreSQL 14+: SQL-standard function bodies).
    sql_body: bool,
    /// The schemas kept: `$1` of every reader after [`Catalog::schemas`].
    schemas: Vec<String>,
}

impl Catalog<'_> {
    /// The owner column, or NULL when owners are not compared.
    fn owner(&self, col: &str) -> String {
        if self.own {
            format!("pg_get_userbyid({col})")
        } else {
            "NULL::text".into()
        }
    }

    /// The privileges of an ACL column, or an empty array when they are not compared.
    fn privs(&self, col: &str) -> String {
        if self.own {
            acl(col)
        } else {
            "ARRAY[]::text[]".into()
        }
    }

    /// Run a reader's query with the kept schema names as `$1`, one `T` per row.
    fn list<T>(
        &mut self,
        sql: &str,
        what: &'static str,
        row: impl Fn(&Row) -> T,
    ) -> Result<Vec<T>, SnapshotError> {
        Ok(self.rows(sql, what)?.iter().map(row).collect())
    }

    /// Run a reader's query with the kept schema names as `$1`.
    fn rows(&mut self, sql: &str, what: &'static str) -> Result<Vec<Row>, SnapshotError> {
        let p: &[&(dyn ToSql + Sync)] = &[&self.schemas];
        self.db.query(sql, p).map_err(err(what))
    }

    fn schemas(&mut self, opts: &SnapshotOptions) -> Result<Vec<Schema>, SnapshotError> {
        let sql = format!(
            "SELECT n.nspname::text, {}, {}, obj_description(n.oid, 'pg_namespace') \
             FROM pg_namespace AS n WHERE {SYSTEM_SCHEMAS} AND {} ORDER BY 1",
            self.owner("n.nspowner"),
            self.privs("n.nspacl"),
            not_extension_member("pg_namespace", "n.oid"),
        );
        let mut schemas = Vec::new();
        for r in self.db.query(&sql, &[]).map_err(err("schemas"))? {
            let name: String = r.get(0);
            let included = opts.include_schemas.is_empty() || opts.include_schemas.contains(&name);
            let excluded = name == opts.tracking_schema || opts.exclude_schemas.contains(&name);
            if included && !excluded {
                schemas.push(Schema {
                    name,
                    owner: r.get(1),
                    privileges: r.get(2),
                    comment: r.get(3),
                });
            }
        }
        Ok(schemas)
    }

    fn extensions(&mut self) -> Result<Vec<Extension>, SnapshotError> {
        let rows = self
            .db
            .query(
                "SELECT e.extname::text, e.extversion, n.nspname::text FROM pg_extension AS e \
                 JOIN pg_namespace AS n ON n.oid = e.extnamespace ORDER BY 1",
                &[],
            )
            .map_err(err("extensions"))?;
        Ok(rows
            .iter()
            .map(|r| Extension {
                name: r.get(0),
                version: r.get(1),
                schema: r.get(2),
            })
            .collect())
    }

    /// Tables with their columns.
    fn tables(&mut self) -> Result<Vec<Table>, SnapshotError> {
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, CASE c.relkind WHEN 'p' THEN 'partitioned table' ELSE 'table' END, \
               c.relrowsecurity, c.relforcerowsecurity, {}, {}, obj_description(c.oid, 'pg_class'), \
               CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END, \
               CASE WHEN c.relispartition THEN \
                 (SELECT {PARENT} FROM pg_inherits AS i {PARENT_JOIN} WHERE i.inhrelid = c.oid) \
                 || ' ' || pg_get_expr(c.relpartbound, c.oid) END, \
               ARRAY(SELECT {PARENT} FROM pg_inherits AS i {PARENT_JOIN} \
                     WHERE i.inhrelid = c.oid AND NOT c.relispartition ORDER BY i.inhseqno), \
               c.relpersistence = 'u', {} \
             FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1) AND {} ORDER BY 1, 2",
            self.owner("c.relowner"),
            self.privs("c.relacl"),
            sorted("c.reloptions"),
            not_extension_member("pg_class", "c.oid"),
        );
        let mut tables: Vec<Table> = self
            .rows(&sql, "tables")?
            .iter()
            .map(|r| Table {
                schema: r.get(0),
                name: r.get(1),
                kind: r.get(2),
                rls_enabled: r.get(3),
                rls_forced: r.get(4),
                owner: r.get(5),
                privileges: r.get(6),
                comment: r.get(7),
                partition_key: r.get(8),
                partition_of: r.get(9),
                inherits: r.get(10),
                unlogged: r.get(11),
                options: r.get(12),
                columns: Vec::new(),
            })
            .collect();
        let mut by_table = self.columns()?;
        for t in &mut tables {
            t.columns = by_table
                .remove(&(t.schema.clone(), t.name.clone()))
                .unwrap_or_default();
        }
        Ok(tables)
    }

    /// The columns of every table, by (schema, table), in column order.
    fn columns(&mut self) -> Result<BTreeMap<(String, String), Vec<Column>>, SnapshotError> {
        // The identity's sequence is found through its internal dependency on the column.
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), \
               a.attnotnull, CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END, \
               CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END, \
               CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END, \
               col_description(c.oid, a.attnum), \
               CASE WHEN a.attidentity <> '' THEN \
                 (SELECT {SEQUENCE_PARAMETERS} FROM pg_depend AS dep \
                    JOIN pg_sequence AS s ON s.seqrelid = dep.objid \
                  WHERE dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass \
                    AND dep.refobjid = c.oid AND dep.refobjsubid = a.attnum AND dep.deptype = 'i') END, \
               CASE WHEN a.attcollation <> ty.typcollation THEN \
                 (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation AS co \
                    JOIN pg_namespace AS cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END, \
               {} \
             FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid \
             JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             JOIN pg_type AS ty ON ty.oid = a.atttypid \
             LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY 1, 2, a.attnum",
            self.privs("a.attacl"),
        );
        let mut by_table: BTreeMap<(String, String), Vec<Column>> = BTreeMap::new();
        for r in self.rows(&sql, "columns")? {
            by_table
                .entry((r.get(0), r.get(1)))
                .or_default()
                .push(Column {
                    name: r.get(2),
                    data_type: r.get(3),
                    not_null: r.get(4),
                    default: r.get(5),
                    identity: r.get(6),
                    generated: r.get(7),
                    comment: r.get(8),
                    identity_sequence: r.get(9),
                    collation: r.get(10),
                    privileges: r.get(11),
                });
        }
        Ok(by_table)
    }

    fn constraints(&mut self) -> Result<Vec<Constraint>, SnapshotError> {
        let sql = "SELECT n.nspname::text, c.relname::text, k.conname::text, \
               CASE k.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique' WHEN 'f' THEN 'foreign key' \
                 WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' WHEN 't' THEN 'trigger' ELSE k.contype::text END, \
               pg_get_constraintdef(k.oid), k.convalidated \
             FROM pg_constraint AS k JOIN pg_class AS c ON c.oid = k.conrelid \
             JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             WHERE n.nspname = ANY($1) AND k.conislocal ORDER BY 1, 2, 3";
        self.list(sql, "constraints", |r| Constraint {
            schema: r.get(0),
            table: r.get(1),
            name: r.get(2),
            kind: r.get(3),
            definition: r.get(4),
            validated: r.get(5),
        })
    }

    fn indexes(&mut self) -> Result<Vec<Index>, SnapshotError> {
        let sql = "SELECT n.nspname::text, t.relname::text, c.relname::text, pg_get_indexdef(i.indexrelid), i.indisvalid \
             FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid \
             JOIN pg_class AS t ON t.oid = i.indrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             WHERE n.nspname = ANY($1) \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid \
                               AND k.contype IN ('p', 'u', 'x') AND k.conrelid = i.indrelid) \
             ORDER BY 1, 3";
        self.list(sql, "indexes", |r| Index {
            schema: r.get(0),
            table: r.get(1),
            name: r.get(2),
            definition: r.get(3),
            valid: r.get(4),
        })
    }

    fn views(&mut self) -> Result<Vec<View>, SnapshotError> {
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, c.relkind = 'm', pg_get_viewdef(c.oid, true), {}, {}, \
               obj_description(c.oid, 'pg_class'), {} \
             FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY($1) AND {} ORDER BY 1, 2",
            self.owner("c.relowner"),
            self.privs("c.relacl"),
            sorted("c.reloptions"),
            not_extension_member("pg_class", "c.oid"),
        );
        self.list(&sql, "views", |r| View {
            schema: r.get(0),
            name: r.get(1),
            materialized: r.get(2),
            definition: r.get::<_, Option<String>>(3).unwrap_or_default(),
            owner: r.get(4),
            privileges: r.get(5),
            comment: r.get(6),
            options: r.get(7),
        })
    }

    /// Functions internal to another object (a range type's constructors) come and go
    /// with it: the object itself is compared.
    fn functions(&mut self) -> Result<Vec<Function>, SnapshotError> {
        // A SQL-standard body leaves `prosrc` empty: without its deparse, `RETURN 1` and
        // `RETURN 2` would hash the same. Servers before 14 have no such column.
        let sql_body = if self.sql_body {
            "WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT n.nspname::text, p.proname::text, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', \
               CASE p.prokind WHEN 'f' THEN 'function' WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' \
                 WHEN 'w' THEN 'window' ELSE p.prokind::text END, \
               CASE WHEN p.prokind <> 'p' THEN pg_get_function_result(p.oid) END, l.lanname::text, \
               CASE WHEN p.prokind = 'a' THEN {AGGREGATE_BODY} {sql_body} ELSE coalesce(p.prosrc, '') END, \
               CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END, \
               p.prosecdef, {}, {}, obj_description(p.oid, 'pg_proc'), \
               pg_get_function_arguments(p.oid), p.proisstrict, p.proleakproof, \
               CASE p.proparallel WHEN 's' THEN 'safe' WHEN 'r' THEN 'restricted' ELSE 'unsafe' END, {} \
             FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace \
             JOIN pg_language AS l ON l.oid = p.prolang \
             WHERE n.nspname = ANY($1) AND {} \
               AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.classid = 'pg_proc'::regclass \
                               AND d.objid = p.oid AND d.deptype = 'i') \
             ORDER BY 1, 3",
            self.owner("p.proowner"),
            self.privs("p.proacl"),
            sorted("p.proconfig"),
            not_extension_member("pg_proc", "p.oid"),
        );
        self.list(&sql, "functions", |r| Function {
            schema: r.get(0),
            name: r.get(1),
            signature: r.get(2),
            kind: r.get(3),
            returns: r.get(4),
            language: r.get(5),
            body_sha256: hex::encode(Sha256::digest(r.get::<_, String>(6).as_bytes())),
            volatility: r.get(7),
            security_definer: r.get(8),
            owner: r.get(9),
            privileges: r.get(10),
            comment: r.get(11),
            arguments: r.get(12),
            strict: r.get(13),
            leakproof: r.get(14),
            parallel: r.get(15),
            config: r.get(16),
        })
    }

    fn triggers(&mut self) -> Result<Vec<Trigger>, SnapshotError> {
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, t.tgname::text, pg_get_triggerdef(t.oid), \
               {} \
             FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid \
             JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             WHERE NOT t.tgisinternal AND n.nspname = ANY($1) ORDER BY 1, 2, 3",
            enabled_word("t.tgenabled"),
        );
        self.list(&sql, "triggers", |r| Trigger {
            schema: r.get(0),
            table: r.get(1),
            name: r.get(2),
            definition: r.get(3),
            enabled: r.get(4),
        })
    }

    fn policies(&mut self) -> Result<Vec<Policy>, SnapshotError> {
        let sql = "SELECT n.nspname::text, c.relname::text, p.polname::text, \
               CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' \
                 WHEN 'd' THEN 'DELETE' ELSE 'ALL' END, p.polpermissive, \
               ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r) END FROM unnest(p.polroles) AS r ORDER BY 1), \
               pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) \
             FROM pg_policy AS p JOIN pg_class AS c ON c.oid = p.polrelid \
             JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             WHERE n.nspname = ANY($1) ORDER BY 1, 2, 3";
        self.list(sql, "policies", |r| Policy {
            schema: r.get(0),
            table: r.get(1),
            name: r.get(2),
            command: r.get(3),
            permissive: r.get(4),
            roles: r.get(5),
            using: r.get(6),
            with_check: r.get(7),
        })
    }

    fn enums(&mut self) -> Result<Vec<Enum>, SnapshotError> {
        let sql = format!(
            "SELECT n.nspname::text, t.typname::text, \
               ARRAY(SELECT e.enumlabel::text FROM pg_enum AS e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) \
             FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace \
             WHERE t.typtype = 'e' AND n.nspname = ANY($1) AND {} ORDER BY 1, 2",
            not_extension_member("pg_type", "t.oid"),
        );
        self.list(&sql, "enums", |r| Enum {
            schema: r.get(0),
            name: r.get(1),
            values: r.get(2),
        })
    }

    /// Domains, composite and range types. Composite types of tables and views are their
    /// relations, not user types.
    fn types(&mut self) -> Result<Vec<UserType>, SnapshotError> {
        let sql = format!(
            "SELECT n.nspname::text, t.typname::text, \
               CASE t.typtype WHEN 'd' THEN 'domain' WHEN 'c' THEN 'composite' ELSE 'range' END, \
               CASE t.typtype \
                 WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod) \
                   || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END \
                   || coalesce(' DEFAULT ' || t.typdefault, '') \
                   || coalesce((SELECT ' ' || string_agg(pg_get_constraintdef(c.oid), ' ' ORDER BY c.conname) \
                                FROM pg_constraint AS c WHERE c.contypid = t.oid), '') \
                 WHEN 'c' THEN (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) \
                                FROM pg_attribute AS a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) \
                 ELSE (SELECT format_type(r.rngsubtype, NULL) FROM pg_range AS r WHERE r.rngtypid = t.oid) \
               END \
             FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace \
             WHERE (t.typtype IN ('d', 'r') \
                    OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class AS c WHERE c.oid = t.typrelid) = 'c')) \
               AND n.nspname = ANY($1) AND {} ORDER BY 1, 2",
            not_extension_member("pg_type", "t.oid"),
        );
        self.list(&sql, "types", |r| UserType {
            schema: r.get(0),
            name: r.get(1),
            kind: r.get(2),
            definition: r.get::<_, Option<String>>(3).unwrap_or_default(),
        })
    }

    /// Sequences, without those behind identity columns (the column's identity stands
    /// for them).
    fn sequences(&mut self) -> Result<Vec<Sequence>, SnapshotError> {
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, \
               s.seqmin, s.seqmax, s.seqcycle, {}, {}, s.seqcache, \
               (SELECT tn.nspname || '.' || tc.relname || '.' || ta.attname FROM pg_depend AS d \
                  JOIN pg_class AS tc ON tc.oid = d.refobjid JOIN pg_namespace AS tn ON tn.oid = tc.relnamespace \
                  JOIN pg_attribute AS ta ON ta.attrelid = d.refobjid AND ta.attnum = d.refobjsubid \
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid \
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a' AND d.refobjsubid > 0) \
             FROM pg_sequence AS s JOIN pg_class AS c ON c.oid = s.seqrelid \
             JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             WHERE n.nspname = ANY($1) AND {} \
               AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.classid = 'pg_class'::regclass \
                               AND d.objid = c.oid AND d.deptype = 'i') \
             ORDER BY 1, 2",
            self.owner("c.relowner"),
            self.privs("c.relacl"),
            not_extension_member("pg_class", "c.oid"),
        );
        self.list(&sql, "sequences", |r| Sequence {
            schema: r.get(0),
            name: r.get(1),
            data_type: r.get(2),
            start: r.get(3),
            increment: r.get(4),
            min: r.get(5),
            max: r.get(6),
            cycle: r.get(7),
            owner: r.get(8),
            privileges: r.get(9),
            cache: r.get(10),
            owned_by: r.get(11),
        })
    }
    /// Rules, without the `_RETURN` rule that makes a view (its definition stands for it).
    fn rules(&mut self) -> Result<Vec<Rule>, SnapshotError> {
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, r.rulename::text, pg_get_ruledef(r.oid), {} \
             FROM pg_rewrite AS r JOIN pg_class AS c ON c.oid = r.ev_class \
             JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             WHERE r.rulename <> '_RETURN' AND n.nspname = ANY($1) AND {} ORDER BY 1, 2, 3",
            enabled_word("r.ev_enabled"),
            not_extension_member("pg_rewrite", "r.oid"),
        );
        self.list(&sql, "rules", |r| Rule {
            schema: r.get(0),
            table: r.get(1),
            name: r.get(2),
            definition: r.get(3),
            enabled: r.get(4),
        })
    }

    fn statistics(&mut self) -> Result<Vec<Statistics>, SnapshotError> {
        let sql = format!(
            "SELECT n.nspname::text, s.stxname::text, pg_get_statisticsobjdef(s.oid) \
             FROM pg_statistic_ext AS s JOIN pg_namespace AS n ON n.oid = s.stxnamespace \
             WHERE n.nspname = ANY($1) AND {} ORDER BY 1, 2",
            not_extension_member("pg_statistic_ext", "s.oid"),
        );
        self.list(&sql, "statistics", |r| Statistics {
            schema: r.get(0),
            name: r.get(1),
            definition: r.get(2),
        })
    }

    /// Event triggers belong to the database, not to a schema: all of them are read,
    /// except those of extensions.
    fn event_triggers(&mut self) -> Result<Vec<EventTrigger>, SnapshotError> {
        let sql = format!(
            "SELECT e.evtname::text, e.evtevent::text \
               || coalesce(' WHEN TAG IN (' || nullif(array_to_string(ARRAY(SELECT t FROM unnest(e.evttags) AS t ORDER BY 1), ', '), '') || ')', '') \
               || ' EXECUTE FUNCTION ' || e.evtfoid::regproc::text || '()', {} \
             FROM pg_event_trigger AS e WHERE {} ORDER BY 1",
            enabled_word("e.evtenabled"),
            not_extension_member("pg_event_trigger", "e.oid"),
        );
        Ok(self
            .db
            .query(&sql, &[])
            .map_err(err("event triggers"))?
            .iter()
            .map(|r| EventTrigger {
                name: r.get(0),
                definition: r.get(1),
                enabled: r.get(2),
            })
            .collect())
    }
}

/// `schema.table` of the parent in `pg_inherits AS i`, with [`PARENT_JOIN`].
const PARENT: &str = "pn.nspname || '.' || pc.relname";
const PARENT_JOIN: &str = "JOIN pg_class AS pc ON pc.oid = i.inhparent \
     JOIN pg_namespace AS pn ON pn.oid = pc.relnamespace";

/// The parameters of the sequence `pg_sequence AS s`, as one comparable string.
const SEQUENCE_PARAMETERS: &str = "format_type(s.seqtypid, NULL) || ' start ' || s.seqstart \
     || ' increment ' || s.seqincrement || ' min ' || s.seqmin || ' max ' || s.seqmax \
     || ' cache ' || s.seqcache || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END";

/// What an aggregate is made of (its `prosrc` is a placeholder): kind, transition
/// function and state type, final/combine functions, moving-aggregate functions, the
/// initial value and the sort operator.
const AGGREGATE_BODY: &str = "(SELECT concat_ws(' ', a.aggkind, a.aggtransfn, \
       format_type(a.aggtranstype, NULL), a.aggfinalfn, a.aggcombinefn, a.aggmtransfn, \
       a.aggminvtransfn, a.aggmfinalfn, a.agginitval, a.aggminitval, a.aggsortop::regoperator) \
     FROM pg_aggregate AS a WHERE a.aggfnoid = p.oid)";
