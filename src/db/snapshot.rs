//! A schema snapshot read straight from the system catalogs, and the difference of two.
//!
//! No `pg_dump`: a dump couples the client's version to the server's and is text to be
//! parsed again. The catalogs are read with the server's own deparsers
//! (`pg_get_indexdef`, `pg_get_constraintdef`, `pg_get_viewdef`, …), so both sides of
//! a comparison are rendered the same way by servers of the same major version.
//!
//! Left out: system schemas, the tracking schema, objects that belong to an extension
//! (the extension and its version stand for them), sequences behind identity columns
//! (the column's identity stands for them) and indexes behind PRIMARY KEY / UNIQUE /
//! EXCLUDE constraints (the constraint stands for them).
//!
//! Every list is sorted, so a snapshot serialises to the same JSON for the same schema.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Db;

/// The shape of [`SchemaSnapshot`] as JSON; bumped when a field changes meaning.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

/// What to read.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// Schemas to read; empty = every schema that is not excluded.
    pub include_schemas: Vec<String>,
    /// Schemas never read, on top of the system schemas and the tracking schema.
    pub exclude_schemas: Vec<String>,
    /// pgrollout's own tracking schema: always left out.
    pub tracking_schema: String,
    /// Also read owners and privileges (GRANTs). Off by default: roles usually differ
    /// between environments on purpose.
    pub owners_and_privileges: bool,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            include_schemas: Vec::new(),
            exclude_schemas: Vec::new(),
            tracking_schema: "pgrollout".into(),
            owners_and_privileges: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("reading the schema snapshot ({what}): {}", crate::db::conn::error_text(.source))]
pub struct SnapshotError {
    pub what: &'static str,
    #[source]
    pub source: tokio_postgres::Error,
}

/// The schema of one database, sorted and serialisable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaSnapshot {
    pub format_version: u32,
    pub server_version: String,
    pub schemas: Vec<Schema>,
    pub extensions: Vec<Extension>,
    pub tables: Vec<Table>,
    pub constraints: Vec<Constraint>,
    pub indexes: Vec<Index>,
    pub views: Vec<View>,
    pub functions: Vec<Function>,
    pub triggers: Vec<Trigger>,
    pub policies: Vec<Policy>,
    pub enums: Vec<Enum>,
    /// Domains, composite and range types (enums are above).
    #[serde(default)]
    pub types: Vec<UserType>,
    pub sequences: Vec<Sequence>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub name: String,
    pub owner: Option<String>,
    pub privileges: Vec<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub name: String,
    pub version: String,
    pub schema: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub schema: String,
    pub name: String,
    /// `table` or `partitioned table`.
    pub kind: String,
    pub rls_enabled: bool,
    pub rls_forced: bool,
    pub owner: Option<String>,
    pub privileges: Vec<String>,
    pub comment: Option<String>,
    /// In column order.
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// `format_type` of the type, with its modifier: `character varying(80)`.
    pub data_type: String,
    pub not_null: bool,
    pub default: Option<String>,
    /// `always` or `by default` for identity columns.
    pub identity: Option<String>,
    /// The expression of a `GENERATED ALWAYS AS (…) STORED` column.
    pub generated: Option<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    pub schema: String,
    pub table: String,
    pub name: String,
    /// primary key, unique, foreign key, check, exclusion, trigger.
    pub kind: String,
    pub definition: String,
    pub validated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub schema: String,
    pub table: String,
    pub name: String,
    pub definition: String,
    /// False for an index a failed `CREATE INDEX CONCURRENTLY` left behind.
    pub valid: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub schema: String,
    pub name: String,
    pub materialized: bool,
    pub definition: String,
    pub owner: Option<String>,
    pub privileges: Vec<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    pub schema: String,
    pub name: String,
    /// `name(argument types)`: what tells overloads apart.
    pub signature: String,
    /// function, procedure, aggregate, window.
    pub kind: String,
    pub returns: Option<String>,
    pub language: String,
    /// SHA-256 (hex) of the body exactly as stored (`prosrc`).
    pub body_sha256: String,
    pub volatility: String,
    pub security_definer: bool,
    pub owner: Option<String>,
    pub privileges: Vec<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub schema: String,
    pub table: String,
    pub name: String,
    pub definition: String,
    /// origin, disabled, replica, always (`ALTER TABLE … ENABLE/DISABLE TRIGGER`).
    pub enabled: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub schema: String,
    pub table: String,
    pub name: String,
    pub command: String,
    pub permissive: bool,
    pub roles: Vec<String>,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enum {
    pub schema: String,
    pub name: String,
    /// In sort order.
    pub values: Vec<String>,
}

/// A domain, composite or range type, with a definition that changes whenever the type
/// does: the base type, default and constraints of a domain; the attributes of a
/// composite; the subtype of a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserType {
    pub schema: String,
    pub name: String,
    /// `domain`, `composite` or `range`.
    pub kind: String,
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    pub schema: String,
    pub name: String,
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cycle: bool,
    pub owner: Option<String>,
    pub privileges: Vec<String>,
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

/// Read the snapshot. Read-only; runs in one REPEATABLE READ transaction so every query
impl SchemaSnapshot {
    /// Everything but system schemas and the tracking schema, without privileges: what
    /// `pgrollout test` compares before and after a rollback.
    pub fn read(db: &mut Db, tracking_schema: &str) -> Result<SchemaSnapshot, SnapshotError> {
        read(
            db,
            &SnapshotOptions {
                tracking_schema: tracking_schema.to_string(),
                ..SnapshotOptions::default()
            },
        )
    }

    /// Whether the database has objects of its own (`test` refuses such a database).
    pub fn has_user_objects(&self) -> bool {
        !(self.tables.is_empty()
            && self.views.is_empty()
            && self.functions.is_empty()
            && self.enums.is_empty()
            && self.types.is_empty()
            && self.sequences.is_empty())
    }
}

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
    let own = opts.owners_and_privileges;
    let owner = |col: &str| {
        if own {
            format!("pg_get_userbyid({col})")
        } else {
            "NULL::text".into()
        }
    };
    let privs = |col: &str| {
        if own {
            acl(col)
        } else {
            "ARRAY[]::text[]".into()
        }
    };

    // Schemas first: every later query is limited to these names.
    let sql = format!(
        "SELECT n.nspname::text, {}, {}, obj_description(n.oid, 'pg_namespace') \
         FROM pg_namespace AS n WHERE {SYSTEM_SCHEMAS} AND {} ORDER BY 1",
        owner("n.nspowner"),
        privs("n.nspacl"),
        not_extension_member("pg_namespace", "n.oid"),
    );
    let mut schemas = Vec::new();
    for r in db.query(&sql, &[]).map_err(err("schemas"))? {
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
    let names: Vec<String> = schemas.iter().map(|s| s.name.clone()).collect();
    let p: &[&(dyn tokio_postgres::types::ToSql + Sync)] = &[&names];

    let extensions = db
        .query(
            "SELECT e.extname::text, e.extversion, n.nspname::text FROM pg_extension AS e \
             JOIN pg_namespace AS n ON n.oid = e.extnamespace ORDER BY 1",
            &[],
        )
        .map_err(err("extensions"))?
        .iter()
        .map(|r| Extension {
            name: r.get(0),
            version: r.get(1),
            schema: r.get(2),
        })
        .collect();

    // Tables and their columns.
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, CASE c.relkind WHEN 'p' THEN 'partitioned table' ELSE 'table' END, \
           c.relrowsecurity, c.relforcerowsecurity, {}, {}, obj_description(c.oid, 'pg_class') \
         FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1) AND {} ORDER BY 1, 2",
        owner("c.relowner"),
        privs("c.relacl"),
        not_extension_member("pg_class", "c.oid"),
    );
    let mut tables: Vec<Table> = db
        .query(&sql, p)
        .map_err(err("tables"))?
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
            columns: Vec::new(),
        })
        .collect();
    let sql = "SELECT n.nspname::text, c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), \
           a.attnotnull, CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END, \
           CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END, \
           CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END, \
           col_description(c.oid, a.attnum) \
         FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid \
         JOIN pg_namespace AS n ON n.oid = c.relnamespace \
         LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY 1, 2, a.attnum";
    let mut by_table: BTreeMap<(String, String), Vec<Column>> = BTreeMap::new();
    for r in db.query(sql, p).map_err(err("columns"))? {
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
            });
    }
    for t in &mut tables {
        t.columns = by_table
            .remove(&(t.schema.clone(), t.name.clone()))
            .unwrap_or_default();
    }

    let constraints = db
        .query(
            "SELECT n.nspname::text, c.relname::text, k.conname::text, \
               CASE k.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique' WHEN 'f' THEN 'foreign key' \
                 WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' WHEN 't' THEN 'trigger' ELSE k.contype::text END, \
               pg_get_constraintdef(k.oid), k.convalidated \
             FROM pg_constraint AS k JOIN pg_class AS c ON c.oid = k.conrelid \
             JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             WHERE n.nspname = ANY($1) AND k.conislocal ORDER BY 1, 2, 3",
            p,
        )
        .map_err(err("constraints"))?
        .iter()
        .map(|r| Constraint {
            schema: r.get(0),
            table: r.get(1),
            name: r.get(2),
            kind: r.get(3),
            definition: r.get(4),
            validated: r.get(5),
        })
        .collect();

    let indexes = db
        .query(
            "SELECT n.nspname::text, t.relname::text, c.relname::text, pg_get_indexdef(i.indexrelid), i.indisvalid \
             FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid \
             JOIN pg_class AS t ON t.oid = i.indrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             WHERE n.nspname = ANY($1) \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid \
                               AND k.contype IN ('p', 'u', 'x') AND k.conrelid = i.indrelid) \
             ORDER BY 1, 3",
            p,
        )
        .map_err(err("indexes"))?
        .iter()
        .map(|r| Index {
            schema: r.get(0),
            table: r.get(1),
            name: r.get(2),
            definition: r.get(3),
            valid: r.get(4),
        })
        .collect();

    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, c.relkind = 'm', pg_get_viewdef(c.oid, true), {}, {}, \
           obj_description(c.oid, 'pg_class') \
         FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY($1) AND {} ORDER BY 1, 2",
        owner("c.relowner"),
        privs("c.relacl"),
        not_extension_member("pg_class", "c.oid"),
    );
    let views = db
        .query(&sql, p)
        .map_err(err("views"))?
        .iter()
        .map(|r| View {
            schema: r.get(0),
            name: r.get(1),
            materialized: r.get(2),
            definition: r.get::<_, Option<String>>(3).unwrap_or_default(),
            owner: r.get(4),
            privileges: r.get(5),
            comment: r.get(6),
        })
        .collect();

    let sql = format!(
        "SELECT n.nspname::text, p.proname::text, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', \
           CASE p.prokind WHEN 'f' THEN 'function' WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' \
             WHEN 'w' THEN 'window' ELSE p.prokind::text END, \
           CASE WHEN p.prokind <> 'p' THEN pg_get_function_result(p.oid) END, l.lanname::text, \
           coalesce(p.prosrc, ''), \
           CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END, \
           p.prosecdef, {}, {}, obj_description(p.oid, 'pg_proc') \
         FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace \
         JOIN pg_language AS l ON l.oid = p.prolang \
         WHERE n.nspname = ANY($1) AND {} \
           AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.classid = 'pg_proc'::regclass \
                           AND d.objid = p.oid AND d.deptype = 'i') \
         ORDER BY 1, 3",
        owner("p.proowner"),
        privs("p.proacl"),
        not_extension_member("pg_proc", "p.oid"),
    );
    // Functions internal to another object (a range type's constructors) come and go
    // with it: the object itself is compared.
    let functions = db
        .query(&sql, p)
        .map_err(err("functions"))?
        .iter()
        .map(|r| Function {
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
        })
        .collect();

    let triggers = db
        .query(
            "SELECT n.nspname::text, c.relname::text, t.tgname::text, pg_get_triggerdef(t.oid), \
               CASE t.tgenabled WHEN 'O' THEN 'origin' WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica' \
                 WHEN 'A' THEN 'always' ELSE t.tgenabled::text END \
             FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid \
             JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             WHERE NOT t.tgisinternal AND n.nspname = ANY($1) ORDER BY 1, 2, 3",
            p,
        )
        .map_err(err("triggers"))?
        .iter()
        .map(|r| Trigger {
            schema: r.get(0),
            table: r.get(1),
            name: r.get(2),
            definition: r.get(3),
            enabled: r.get(4),
        })
        .collect();

    let policies = db
        .query(
            "SELECT n.nspname::text, c.relname::text, p.polname::text, \
               CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' \
                 WHEN 'd' THEN 'DELETE' ELSE 'ALL' END, p.polpermissive, \
               ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r) END FROM unnest(p.polroles) AS r ORDER BY 1), \
               pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) \
             FROM pg_policy AS p JOIN pg_class AS c ON c.oid = p.polrelid \
             JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             WHERE n.nspname = ANY($1) ORDER BY 1, 2, 3",
            p,
        )
        .map_err(err("policies"))?
        .iter()
        .map(|r| Policy {
            schema: r.get(0),
            table: r.get(1),
            name: r.get(2),
            command: r.get(3),
            permissive: r.get(4),
            roles: r.get(5),
            using: r.get(6),
            with_check: r.get(7),
        })
        .collect();

    let sql = format!(
        "SELECT n.nspname::text, t.typname::text, \
           ARRAY(SELECT e.enumlabel::text FROM pg_enum AS e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) \
         FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace \
         WHERE t.typtype = 'e' AND n.nspname = ANY($1) AND {} ORDER BY 1, 2",
        not_extension_member("pg_type", "t.oid"),
    );
    let enums = db
        .query(&sql, p)
        .map_err(err("enums"))?
        .iter()
        .map(|r| Enum {
            schema: r.get(0),
            name: r.get(1),
            values: r.get(2),
        })
        .collect();

    // Composite types of tables and views are their relations, not user types.
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
    let types = db
        .query(&sql, p)
        .map_err(err("types"))?
        .iter()
        .map(|r| UserType {
            schema: r.get(0),
            name: r.get(1),
            kind: r.get(2),
            definition: r.get::<_, Option<String>>(3).unwrap_or_default(),
        })
        .collect();

    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, \
           s.seqmin, s.seqmax, s.seqcycle, {}, {} \
         FROM pg_sequence AS s JOIN pg_class AS c ON c.oid = s.seqrelid \
         JOIN pg_namespace AS n ON n.oid = c.relnamespace \
         WHERE n.nspname = ANY($1) AND {} \
           AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.classid = 'pg_class'::regclass \
                           AND d.objid = c.oid AND d.deptype = 'i') \
         ORDER BY 1, 2",
        owner("c.relowner"),
        privs("c.relacl"),
        not_extension_member("pg_class", "c.oid"),
    );
    let sequences = db
        .query(&sql, p)
        .map_err(err("sequences"))?
        .iter()
        .map(|r| Sequence {
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
        })
        .collect();

    Ok(SchemaSnapshot {
        format_version: SNAPSHOT_FORMAT_VERSION,
        server_version: db.server_version.clone(),
        schemas,
        extensions,
        tables,
        constraints,
        indexes,
        views,
        functions,
        triggers,
        policies,
        enums,
        types,
        sequences,
    })
}

// ---------------------------------------------------------------------------------------
// Differences

/// How much a difference matters. Ordered: `Critical` sorts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Queries or writes can fail, or data is unprotected: missing tables, columns,
    /// constraints, indexes, functions; type or nullability changes; INVALID indexes.
    Critical,
    /// Behaviour differs quietly: defaults, comments, privileges, function bodies.
    Warning,
    /// Worth knowing, rarely a problem: extension versions, owners.
    Info,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// What differs. Serialised in snake_case (`index_missing`); values are only ever added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    SchemaMissing,
    SchemaExtra,
    ExtensionMissing,
    ExtensionExtra,
    ExtensionVersion,
    TableMissing,
    TableExtra,
    ColumnMissing,
    ColumnExtra,
    ColumnType,
    ColumnNullability,
    ColumnDefault,
    ColumnIdentity,
    ColumnGenerated,
    ConstraintMissing,
    ConstraintExtra,
    ConstraintChanged,
    ConstraintNotValidated,
    IndexMissing,
    IndexExtra,
    IndexChanged,
    IndexInvalid,
    ViewMissing,
    ViewExtra,
    ViewChanged,
    FunctionMissing,
    FunctionExtra,
    FunctionBody,
    FunctionChanged,
    TriggerMissing,
    TriggerExtra,
    TriggerChanged,
    RlsEnabled,
    RlsForced,
    PolicyMissing,
    PolicyExtra,
    PolicyChanged,
    EnumMissing,
    EnumExtra,
    EnumValues,
    TypeMissing,
    TypeExtra,
    TypeChanged,
    SequenceMissing,
    SequenceExtra,
    SequenceChanged,
    Comment,
    Owner,
    Privileges,
}

impl Kind {
    /// The severity this kind of difference always has.
    pub fn severity(self) -> Severity {
        use Kind::*;
        match self {
            SchemaMissing | SchemaExtra | TableMissing | TableExtra | ColumnMissing
            | ColumnExtra | ColumnType | ColumnNullability | ConstraintMissing
            | ConstraintExtra | ConstraintChanged | IndexMissing | IndexExtra | IndexInvalid
            | ViewMissing | ViewExtra | FunctionMissing | FunctionExtra | TriggerMissing
            | TriggerExtra | RlsEnabled | RlsForced | PolicyMissing | PolicyExtra | EnumMissing
            | EnumExtra | EnumValues | TypeMissing | TypeExtra | TypeChanged | SequenceMissing
            | SequenceExtra => Severity::Critical,
            ColumnDefault
            | ColumnIdentity
            | ColumnGenerated
            | ConstraintNotValidated
            | IndexChanged
            | ViewChanged
            | FunctionBody
            | FunctionChanged
            | TriggerChanged
            | PolicyChanged
            | SequenceChanged
            | ExtensionMissing
            | Comment
            | Privileges => Severity::Warning,
            ExtensionExtra | ExtensionVersion | Owner => Severity::Info,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = serde_json::to_value(self).expect("serialisable");
        f.write_str(v.as_str().unwrap_or_default())
    }
}

/// One difference between the source (the reference: another environment, or what the
/// migration files build) and the target (the database being checked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub severity: Severity,
    pub kind: Kind,
    /// The object, qualified: `index public.orders_user_id_idx`.
    pub object: String,
    /// What differs, naming both sides.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The message names the object itself.
        f.write_str(&self.message)
    }
}

struct Diffs(Vec<Difference>);

impl Diffs {
    fn push(&mut self, kind: Kind, object: String, message: String, fix: String) {
        self.0.push(Difference {
            severity: kind.severity(),
            kind,
            object,
            message,
            fix,
        });
    }

    /// Compare two keyed lists: report missing/extra and hand matched pairs to `both`.
    fn keyed<T, K: Ord>(
        &mut self,
        source: &[T],
        target: &[T],
        key: impl Fn(&T) -> K,
        mut missing: impl FnMut(&mut Self, &T),
        mut extra: impl FnMut(&mut Self, &T),
        mut both: impl FnMut(&mut Self, &T, &T),
    ) {
        let t: BTreeMap<K, &T> = target.iter().map(|x| (key(x), x)).collect();
        let s: BTreeMap<K, &T> = source.iter().map(|x| (key(x), x)).collect();
        for (k, a) in &s {
            match t.get(k) {
                Some(b) => both(self, a, b),
                None => missing(self, a),
            }
        }
        for (k, b) in &t {
            if !s.contains_key(k) {
                extra(self, b);
            }
        }
    }
}

fn q(schema: &str, name: &str) -> String {
    format!("{schema}.{name}")
}

fn opt(v: &Option<String>) -> String {
    v.as_deref()
        .map_or_else(|| "none".to_string(), |s| format!("`{s}`"))
}

const CAPTURE: &str =
    "if it was made by hand on purpose, capture it in a migration (`pgrollout new …`) so every environment gets it; otherwise";

/// Every difference between `source` (the reference) and `target`, sorted by severity,
/// then object, then kind.
pub fn diff(source: &SchemaSnapshot, target: &SchemaSnapshot) -> Vec<Difference> {
    let mut d = Diffs(Vec::new());

    d.keyed(
        &source.schemas,
        &target.schemas,
        |s| s.name.clone(),
        |d, s| {
            d.push(
                Kind::SchemaMissing,
                format!("schema {}", s.name),
                format!(
                    "schema {} exists in the source but not in the target",
                    s.name
                ),
                "apply the pending migrations to the target, or create the schema in a migration"
                    .into(),
            )
        },
        |d, s| {
            d.push(
                Kind::SchemaExtra,
                format!("schema {}", s.name),
                format!("schema {} exists only in the target", s.name),
                format!(
                    "{CAPTURE} drop it, or exclude it from the comparison with --exclude-schema {}",
                    s.name
                ),
            )
        },
        |d, a, b| {
            acl_owner_comment(
                d,
                &format!("schema {}", a.name),
                (&a.owner, &b.owner),
                (&a.privileges, &b.privileges),
                (&a.comment, &b.comment),
                &format!("SCHEMA {}", a.name),
            )
        },
    );

    d.keyed(
        &source.extensions,
        &target.extensions,
        |e| e.name.clone(),
        |d, e| {
            d.push(
                Kind::ExtensionMissing,
                format!("extension {}", e.name),
                format!("extension {} {} is installed in the source but not in the target", e.name, e.version),
                format!("CREATE EXTENSION IF NOT EXISTS {} in a migration (the server needs the extension's package)", e.name),
            )
        },
        |d, e| {
            d.push(
                Kind::ExtensionExtra,
                format!("extension {}", e.name),
                format!("extension {} {} is installed only in the target", e.name, e.version),
                format!("{CAPTURE} leave it: an unused extension is harmless"),
            )
        },
        |d, a, b| {
            if a.version != b.version {
                d.push(
                    Kind::ExtensionVersion,
                    format!("extension {}", a.name),
                    format!("extension {} is version {} in the source, {} in the target", a.name, a.version, b.version),
                    format!("ALTER EXTENSION {} UPDATE on the side with the older version, from a migration", a.name),
                )
            }
        },
    );

    d.keyed(
        &source.tables,
        &target.tables,
        |t| (t.schema.clone(), t.name.clone()),
        |d, t| {
            d.push(
                Kind::TableMissing,
                format!("table {}", q(&t.schema, &t.name)),
                format!("table {} exists in the source but not in the target", q(&t.schema, &t.name)),
                "apply the migration that creates it to the target (`pgrollout status` shows whether it is pending); never create it by hand".into(),
            )
        },
        |d, t| {
            d.push(
                Kind::TableExtra,
                format!("table {}", q(&t.schema, &t.name)),
                format!("table {} exists only in the target", q(&t.schema, &t.name)),
                format!("{CAPTURE} drop it after checking nothing uses its data"),
            )
        },
        table_diff,
    );

    d.keyed(
        &source.constraints,
        &target.constraints,
        |c| (c.schema.clone(), c.table.clone(), c.name.clone()),
        |d, c| {
            d.push(
                Kind::ConstraintMissing,
                format!("constraint {} on {}", c.name, q(&c.schema, &c.table)),
                format!("{} constraint {} on {} exists in the source but not in the target: {}", c.kind, c.name, q(&c.schema, &c.table), c.definition),
                format!("add it in a migration: ALTER TABLE {} ADD CONSTRAINT {} {} (for a large table, add it NOT VALID, then VALIDATE CONSTRAINT)", q(&c.schema, &c.table), c.name, c.definition),
            )
        },
        |d, c| {
            d.push(
                Kind::ConstraintExtra,
                format!("constraint {} on {}", c.name, q(&c.schema, &c.table)),
                format!("{} constraint {} on {} exists only in the target: {}", c.kind, c.name, q(&c.schema, &c.table), c.definition),
                format!("{CAPTURE} ALTER TABLE {} DROP CONSTRAINT {}", q(&c.schema, &c.table), c.name),
            )
        },
        |d, a, b| {
            let object = format!("constraint {} on {}", a.name, q(&a.schema, &a.table));
            if a.definition != b.definition {
                d.push(
                    Kind::ConstraintChanged,
                    object.clone(),
                    format!("constraint {} differs: source `{}`, target `{}`", a.name, a.definition, b.definition),
                    "recreate the constraint on the target from a migration so both sides match".into(),
                );
            }
            if a.validated != b.validated {
                let (side, other) = if a.validated { ("target", "source") } else { ("source", "target") };
                d.push(
                    Kind::ConstraintNotValidated,
                    object,
                    format!("constraint {} is NOT VALID in the {side} but validated in the {other}: existing rows there were never checked", a.name),
                    format!("ALTER TABLE {} VALIDATE CONSTRAINT {} on the {side}", q(&a.schema, &a.table), a.name),
                );
            }
        },
    );

    d.keyed(
        &source.indexes,
        &target.indexes,
        |i| (i.schema.clone(), i.name.clone()),
        |d, i| {
            d.push(
                Kind::IndexMissing,
                format!("index {}", q(&i.schema, &i.name)),
                format!("index {} on {} exists in the source but not in the target", q(&i.schema, &i.name), q(&i.schema, &i.table)),
                format!("recreate it without blocking writes: {};", concurrently(&i.definition)),
            )
        },
        |d, i| {
            d.push(
                Kind::IndexExtra,
                format!("index {}", q(&i.schema, &i.name)),
                format!("index {} on {} exists only in the target: {}", q(&i.schema, &i.name), q(&i.schema, &i.table), i.definition),
                format!("{CAPTURE} DROP INDEX CONCURRENTLY {};", q(&i.schema, &i.name)),
            )
        },
        |d, a, b| {
            let object = format!("index {}", q(&a.schema, &a.name));
            if a.definition != b.definition {
                d.push(
                    Kind::IndexChanged,
                    object.clone(),
                    format!("index {} differs: source `{}`, target `{}`", q(&a.schema, &a.name), a.definition, b.definition),
                    "drop and recreate it CONCURRENTLY on the target from a migration".into(),
                );
            }
            for (idx, side) in [(a, "source"), (b, "target")] {
                if !idx.valid {
                    d.push(
                        Kind::IndexInvalid,
                        object.clone(),
                        format!("index {} is INVALID in the {side} (a failed CREATE INDEX CONCURRENTLY): it is not used by queries and still slows writes", q(&a.schema, &a.name)),
                        format!("on the {side}: DROP INDEX CONCURRENTLY {}; then {};", q(&a.schema, &a.name), concurrently(&a.definition)),
                    );
                }
            }
        },
    );
    // An INVALID index present on one side only is reported as missing/extra and as invalid.
    for (snap, side, other) in [(source, "source", target), (target, "target", source)] {
        for i in snap.indexes.iter().filter(|i| !i.valid) {
            if !other
                .indexes
                .iter()
                .any(|o| o.schema == i.schema && o.name == i.name)
            {
                d.push(
                    Kind::IndexInvalid,
                    format!("index {}", q(&i.schema, &i.name)),
                    format!("index {} is INVALID in the {side} (a failed CREATE INDEX CONCURRENTLY): it is not used by queries and still slows writes", q(&i.schema, &i.name)),
                    format!("on the {side}: DROP INDEX CONCURRENTLY {};", q(&i.schema, &i.name)),
                );
            }
        }
    }

    d.keyed(
        &source.views,
        &target.views,
        |v| (v.schema.clone(), v.name.clone()),
        |d, v| {
            d.push(
                Kind::ViewMissing,
                format!("{} {}", view_word(v), q(&v.schema, &v.name)),
                format!("{} {} exists in the source but not in the target", view_word(v), q(&v.schema, &v.name)),
                "apply the migration that creates it to the target".into(),
            )
        },
        |d, v| {
            d.push(
                Kind::ViewExtra,
                format!("{} {}", view_word(v), q(&v.schema, &v.name)),
                format!("{} {} exists only in the target", view_word(v), q(&v.schema, &v.name)),
                format!("{CAPTURE} drop it"),
            )
        },
        |d, a, b| {
            let object = format!("{} {}", view_word(a), q(&a.schema, &a.name));
            if a.definition != b.definition || a.materialized != b.materialized {
                d.push(
                    Kind::ViewChanged,
                    object.clone(),
                    format!("the definition of {object} differs between source and target"),
                    format!("redefine it on the target from a migration (CREATE OR REPLACE VIEW {} AS …)", q(&a.schema, &a.name)),
                );
            }
            acl_owner_comment(d, &object, (&a.owner, &b.owner), (&a.privileges, &b.privileges), (&a.comment, &b.comment), &format!("TABLE {}", q(&a.schema, &a.name)));
        },
    );

    d.keyed(
        &source.functions,
        &target.functions,
        |f| (f.schema.clone(), f.signature.clone()),
        |d, f| {
            d.push(
                Kind::FunctionMissing,
                format!("{} {}", f.kind, q(&f.schema, &f.signature)),
                format!("{} {} exists in the source but not in the target", f.kind, q(&f.schema, &f.signature)),
                "apply the migration that creates it to the target; callers fail until then".into(),
            )
        },
        |d, f| {
            d.push(
                Kind::FunctionExtra,
                format!("{} {}", f.kind, q(&f.schema, &f.signature)),
                format!("{} {} exists only in the target", f.kind, q(&f.schema, &f.signature)),
                format!("{CAPTURE} DROP {} {};", f.kind.to_uppercase(), q(&f.schema, &f.signature)),
            )
        },
        |d, a, b| {
            let object = format!("{} {}", a.kind, q(&a.schema, &a.signature));
            if a.body_sha256 != b.body_sha256 {
                d.push(
                    Kind::FunctionBody,
                    object.clone(),
                    format!("the body of {object} differs (sha256 {} in the source, {} in the target)", &a.body_sha256[..12], &b.body_sha256[..12]),
                    "someone edited it outside the migrations: put the intended body in a migration (CREATE OR REPLACE) and apply it everywhere".into(),
                );
            }
            let mut changed = Vec::new();
            if a.returns != b.returns {
                changed.push(format!("returns {} vs {}", opt(&a.returns), opt(&b.returns)));
            }
            if a.language != b.language {
                changed.push(format!("language {} vs {}", a.language, b.language));
            }
            if a.volatility != b.volatility {
                changed.push(format!("{} vs {}", a.volatility, b.volatility));
            }
            if a.security_definer != b.security_definer {
                changed.push(format!(
                    "SECURITY {} vs {}",
                    if a.security_definer { "DEFINER" } else { "INVOKER" },
                    if b.security_definer { "DEFINER" } else { "INVOKER" }
                ));
            }
            if !changed.is_empty() {
                d.push(
                    Kind::FunctionChanged,
                    object.clone(),
                    format!("{object} differs (source vs target): {}", changed.join(", ")),
                    "redefine it on the target from a migration".into(),
                );
            }
            acl_owner_comment(d, &object, (&a.owner, &b.owner), (&a.privileges, &b.privileges), (&a.comment, &b.comment), &format!("FUNCTION {}", q(&a.schema, &a.signature)));
        },
    );

    d.keyed(
        &source.triggers,
        &target.triggers,
        |t| (t.schema.clone(), t.table.clone(), t.name.clone()),
        |d, t| {
            d.push(
                Kind::TriggerMissing,
                format!("trigger {} on {}", t.name, q(&t.schema, &t.table)),
                format!(
                    "trigger {} on {} exists in the source but not in the target",
                    t.name,
                    q(&t.schema, &t.table)
                ),
                format!("recreate it from a migration: {};", t.definition),
            )
        },
        |d, t| {
            d.push(
                Kind::TriggerExtra,
                format!("trigger {} on {}", t.name, q(&t.schema, &t.table)),
                format!(
                    "trigger {} on {} exists only in the target: {}",
                    t.name,
                    q(&t.schema, &t.table),
                    t.definition
                ),
                format!(
                    "{CAPTURE} DROP TRIGGER {} ON {};",
                    t.name,
                    q(&t.schema, &t.table)
                ),
            )
        },
        |d, a, b| {
            if a.definition != b.definition || a.enabled != b.enabled {
                d.push(
                    Kind::TriggerChanged,
                    format!("trigger {} on {}", a.name, q(&a.schema, &a.table)),
                    format!(
                        "trigger {} differs: source `{}` ({}), target `{}` ({})",
                        a.name, a.definition, a.enabled, b.definition, b.enabled
                    ),
                    "recreate it on the target from a migration".into(),
                );
            }
        },
    );

    d.keyed(
        &source.policies,
        &target.policies,
        |p| (p.schema.clone(), p.table.clone(), p.name.clone()),
        |d, p| {
            d.push(
                Kind::PolicyMissing,
                format!("policy {} on {}", p.name, q(&p.schema, &p.table)),
                format!("row-level security policy {} on {} exists in the source but not in the target", p.name, q(&p.schema, &p.table)),
                "apply the migration that creates it: without it, rows may be hidden or exposed".into(),
            )
        },
        |d, p| {
            d.push(
                Kind::PolicyExtra,
                format!("policy {} on {}", p.name, q(&p.schema, &p.table)),
                format!("row-level security policy {} on {} exists only in the target", p.name, q(&p.schema, &p.table)),
                format!("{CAPTURE} DROP POLICY {} ON {};", p.name, q(&p.schema, &p.table)),
            )
        },
        |d, a, b| {
            if a != b {
                d.push(
                    Kind::PolicyChanged,
                    format!("policy {} on {}", a.name, q(&a.schema, &a.table)),
                    format!(
                        "policy {} differs: source {} {} TO {} USING {} WITH CHECK {}; target {} {} TO {} USING {} WITH CHECK {}",
                        a.name, perm(a.permissive), a.command, a.roles.join(","), opt(&a.using), opt(&a.with_check),
                        perm(b.permissive), b.command, b.roles.join(","), opt(&b.using), opt(&b.with_check)
                    ),
                    "recreate it on the target from a migration (DROP POLICY, CREATE POLICY in one transaction)".into(),
                );
            }
        },
    );

    d.keyed(
        &source.enums,
        &target.enums,
        |e| (e.schema.clone(), e.name.clone()),
        |d, e| {
            d.push(
                Kind::EnumMissing,
                format!("type {}", q(&e.schema, &e.name)),
                format!("enum type {} ({}) exists in the source but not in the target", q(&e.schema, &e.name), e.values.join(", ")),
                "apply the migration that creates it to the target".into(),
            )
        },
        |d, e| {
            d.push(
                Kind::EnumExtra,
                format!("type {}", q(&e.schema, &e.name)),
                format!("enum type {} exists only in the target", q(&e.schema, &e.name)),
                format!("{CAPTURE} DROP TYPE {};", q(&e.schema, &e.name)),
            )
        },
        |d, a, b| {
            if a.values != b.values {
                let missing: Vec<&String> = a.values.iter().filter(|v| !b.values.contains(v)).collect();
                let fix = if missing.is_empty() {
                    "values exist on both sides in a different order, or the target has extra values: recreate the type from a migration or capture the values added by hand".to_string()
                } else {
                    format!(
                        "add the missing value(s) to the target from a migration: {}",
                        missing.iter().map(|v| format!("ALTER TYPE {} ADD VALUE '{v}';", q(&a.schema, &a.name))).collect::<Vec<_>>().join(" ")
                    )
                };
                d.push(
                    Kind::EnumValues,
                    format!("type {}", q(&a.schema, &a.name)),
                    format!("enum {} has values ({}) in the source but ({}) in the target", q(&a.schema, &a.name), a.values.join(", "), b.values.join(", ")),
                    fix,
                );
            }
        },
    );

    d.keyed(
        &source.types,
        &target.types,
        |t| (t.schema.clone(), t.name.clone()),
        |d, t| {
            d.push(
                Kind::TypeMissing,
                format!("type {}", q(&t.schema, &t.name)),
                format!(
                    "{} type {} ({}) exists in the source but not in the target",
                    t.kind,
                    q(&t.schema, &t.name),
                    t.definition
                ),
                "apply the migration that creates it to the target".into(),
            )
        },
        |d, t| {
            d.push(
                Kind::TypeExtra,
                format!("type {}", q(&t.schema, &t.name)),
                format!(
                    "{} type {} ({}) exists only in the target",
                    t.kind,
                    q(&t.schema, &t.name),
                    t.definition
                ),
                format!(
                    "{CAPTURE} DROP {} {};",
                    if t.kind == "domain" { "DOMAIN" } else { "TYPE" },
                    q(&t.schema, &t.name)
                ),
            )
        },
        |d, a, b| {
            if a.kind != b.kind || a.definition != b.definition {
                d.push(
                    Kind::TypeChanged,
                    format!("type {}", q(&a.schema, &a.name)),
                    format!(
                        "type {} is {} ({}) in the source but {} ({}) in the target",
                        q(&a.schema, &a.name),
                        a.kind,
                        a.definition,
                        b.kind,
                        b.definition
                    ),
                    "bring the target's type in line from a migration (ALTER DOMAIN / ALTER TYPE)"
                        .into(),
                );
            }
        },
    );

    d.keyed(
        &source.sequences,
        &target.sequences,
        |s| (s.schema.clone(), s.name.clone()),
        |d, s| {
            d.push(
                Kind::SequenceMissing,
                format!("sequence {}", q(&s.schema, &s.name)),
                format!("sequence {} exists in the source but not in the target", q(&s.schema, &s.name)),
                "apply the migration that creates it to the target".into(),
            )
        },
        |d, s| {
            d.push(
                Kind::SequenceExtra,
                format!("sequence {}", q(&s.schema, &s.name)),
                format!("sequence {} exists only in the target", q(&s.schema, &s.name)),
                format!("{CAPTURE} DROP SEQUENCE {};", q(&s.schema, &s.name)),
            )
        },
        |d, a, b| {
            let object = format!("sequence {}", q(&a.schema, &a.name));
            let shape = |s: &Sequence| (s.data_type.clone(), s.start, s.increment, s.min, s.max, s.cycle);
            if shape(a) != shape(b) {
                d.push(
                    Kind::SequenceChanged,
                    object.clone(),
                    format!(
                        "sequence {} differs: source {} start {} increment {} min {} max {}{}; target {} start {} increment {} min {} max {}{}",
                        q(&a.schema, &a.name), a.data_type, a.start, a.increment, a.min, a.max, if a.cycle { " cycle" } else { "" },
                        b.data_type, b.start, b.increment, b.min, b.max, if b.cycle { " cycle" } else { "" }
                    ),
                    format!("ALTER SEQUENCE {} on the target from a migration", q(&a.schema, &a.name)),
                );
            }
            acl_owner_comment(d, &object, (&a.owner, &b.owner), (&a.privileges, &b.privileges), (&None, &None), &format!("SEQUENCE {}", q(&a.schema, &a.name)));
        },
    );

    let mut out = d.0;
    out.sort_by(|a, b| {
        (a.severity, &a.object, a.kind, &a.message)
            .cmp(&(b.severity, &b.object, b.kind, &b.message))
    });
    out.dedup();
    out
}

fn perm(permissive: bool) -> &'static str {
    if permissive {
        "PERMISSIVE"
    } else {
        "RESTRICTIVE"
    }
}

fn view_word(v: &View) -> &'static str {
    if v.materialized {
        "materialized view"
    } else {
        "view"
    }
}

/// `CREATE INDEX x ON …` → `CREATE INDEX CONCURRENTLY x ON …`.
fn concurrently(def: &str) -> String {
    for prefix in ["CREATE UNIQUE INDEX ", "CREATE INDEX "] {
        if let Some(rest) = def.strip_prefix(prefix) {
            return format!("{prefix}CONCURRENTLY {rest}");
        }
    }
    def.to_string()
}

fn table_diff(d: &mut Diffs, a: &Table, b: &Table) {
    let tname = q(&a.schema, &a.name);
    let object = format!("table {tname}");
    d.keyed(
        &a.columns,
        &b.columns,
        |c| c.name.clone(),
        |d, c| {
            d.push(
                Kind::ColumnMissing,
                format!("column {tname}.{}", c.name),
                format!("column {tname}.{} ({}) exists in the source but not in the target", c.name, c.data_type),
                "apply the migration that adds it to the target; queries that name it fail until then".into(),
            )
        },
        |d, c| {
            d.push(
                Kind::ColumnExtra,
                format!("column {tname}.{}", c.name),
                format!("column {tname}.{} ({}{}) exists only in the target", c.name, c.data_type, if c.not_null { " NOT NULL" } else { "" }),
                format!("{CAPTURE} ALTER TABLE {tname} DROP COLUMN {} (after checking its data is not needed)", c.name),
            )
        },
        |d, x, y| {
            let object = format!("column {tname}.{}", x.name);
            if x.data_type != y.data_type {
                d.push(
                    Kind::ColumnType,
                    object.clone(),
                    format!("column {tname}.{} is {} in the source but {} in the target", x.name, x.data_type, y.data_type),
                    format!("change it from a migration: ALTER TABLE {tname} ALTER COLUMN {} TYPE {} (may rewrite the table: check lint)", x.name, x.data_type),
                );
            }
            if x.not_null != y.not_null {
                let null = |n: bool| if n { "NOT NULL" } else { "nullable" };
                d.push(
                    Kind::ColumnNullability,
                    object.clone(),
                    format!("column {tname}.{} is {} in the source but {} in the target", x.name, null(x.not_null), null(y.not_null)),
                    format!(
                        "from a migration: ALTER TABLE {tname} ALTER COLUMN {} {} NOT NULL",
                        x.name,
                        if x.not_null { "SET" } else { "DROP" }
                    ),
                );
            }
            if x.default != y.default {
                d.push(
                    Kind::ColumnDefault,
                    object.clone(),
                    format!("column {tname}.{} has default {} in the source but {} in the target", x.name, opt(&x.default), opt(&y.default)),
                    match &x.default {
                        Some(v) => format!("ALTER TABLE {tname} ALTER COLUMN {} SET DEFAULT {v} from a migration", x.name),
                        None => format!("ALTER TABLE {tname} ALTER COLUMN {} DROP DEFAULT from a migration", x.name),
                    },
                );
            }
            if x.identity != y.identity {
                d.push(
                    Kind::ColumnIdentity,
                    object.clone(),
                    format!("column {tname}.{} is identity {} in the source but {} in the target", x.name, opt(&x.identity), opt(&y.identity)),
                    "align the identity with ALTER TABLE … ALTER COLUMN … ADD/SET/DROP IDENTITY from a migration".into(),
                );
            }
            if x.generated != y.generated {
                d.push(
                    Kind::ColumnGenerated,
                    object.clone(),
                    format!("column {tname}.{} is generated as {} in the source but {} in the target", x.name, opt(&x.generated), opt(&y.generated)),
                    "recreate the generated column from a migration".into(),
                );
            }
            if x.comment != y.comment {
                d.push(
                    Kind::Comment,
                    object,
                    format!("the comment on column {tname}.{} differs: {} vs {}", x.name, opt(&x.comment), opt(&y.comment)),
                    format!("COMMENT ON COLUMN {tname}.{} from a migration", x.name),
                );
            }
        },
    );
    let word = |on: bool| if on { "on" } else { "off" };
    if a.rls_enabled != b.rls_enabled {
        d.push(
            Kind::RlsEnabled,
            object.clone(),
            format!(
                "row-level security on {tname} is {} in the source but {} in the target",
                word(a.rls_enabled),
                word(b.rls_enabled)
            ),
            format!(
                "ALTER TABLE {tname} {} ROW LEVEL SECURITY from a migration",
                if a.rls_enabled { "ENABLE" } else { "DISABLE" }
            ),
        );
    }
    if a.rls_forced != b.rls_forced {
        d.push(
            Kind::RlsForced,
            object.clone(),
            format!(
                "FORCE ROW LEVEL SECURITY on {tname} is {} in the source but {} in the target",
                word(a.rls_forced),
                word(b.rls_forced)
            ),
            format!(
                "ALTER TABLE {tname} {}FORCE ROW LEVEL SECURITY from a migration",
                if a.rls_forced { "" } else { "NO " }
            ),
        );
    }
    if a.kind != b.kind {
        d.push(
            Kind::ColumnType,
            object.clone(),
            format!(
                "{tname} is a {} in the source but a {} in the target",
                a.kind, b.kind
            ),
            "recreate the table with the intended partitioning from a migration".into(),
        );
    }
    acl_owner_comment(
        d,
        &object,
        (&a.owner, &b.owner),
        (&a.privileges, &b.privileges),
        (&a.comment, &b.comment),
        &format!("TABLE {tname}"),
    );
}

#[allow(clippy::type_complexity)]
fn acl_owner_comment(
    d: &mut Diffs,
    object: &str,
    owner: (&Option<String>, &Option<String>),
    privileges: (&Vec<String>, &Vec<String>),
    comment: (&Option<String>, &Option<String>),
    sql_object: &str,
) {
    if owner.0 != owner.1 {
        d.push(
            Kind::Owner,
            object.to_string(),
            format!(
                "{object} is owned by {} in the source but {} in the target",
                opt(owner.0),
                opt(owner.1)
            ),
            format!("ALTER {sql_object} OWNER TO … if the difference is not intended"),
        );
    }
    if privileges.0 != privileges.1 {
        let only = |x: &Vec<String>, y: &Vec<String>| {
            x.iter()
                .filter(|p| !y.contains(p))
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        };
        d.push(
            Kind::Privileges,
            object.to_string(),
            format!(
                "privileges on {object} differ: only in the source [{}], only in the target [{}]",
                only(privileges.0, privileges.1),
                only(privileges.1, privileges.0)
            ),
            format!("GRANT/REVOKE … ON {sql_object} from a migration so both sides match"),
        );
    }
    if comment.0 != comment.1 {
        d.push(
            Kind::Comment,
            object.to_string(),
            format!(
                "the comment on {object} differs: {} vs {}",
                opt(comment.0),
                opt(comment.1)
            ),
            format!("COMMENT ON {sql_object} IS … from a migration"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, cols: &[(&str, &str, bool)]) -> Table {
        Table {
            schema: "public".into(),
            name: name.into(),
            kind: "table".into(),
            rls_enabled: false,
            rls_forced: false,
            owner: None,
            privileges: vec![],
            comment: None,
            columns: cols
                .iter()
                .map(|(n, t, nn)| Column {
                    name: n.to_string(),
                    data_type: t.to_string(),
                    not_null: *nn,
                    default: None,
                    identity: None,
                    generated: None,
                    comment: None,
                })
                .collect(),
        }
    }

    #[test]
    fn identical_snapshots_have_no_differences() {
        let s = SchemaSnapshot {
            tables: vec![table("t", &[("id", "bigint", true)])],
            ..Default::default()
        };
        assert!(diff(&s, &s.clone()).is_empty());
    }

    #[test]
    fn classified_and_sorted_critical_first() {
        let a = SchemaSnapshot {
            tables: vec![table("t", &[("id", "bigint", true), ("x", "text", false)])],
            ..Default::default()
        };
        let mut b = a.clone();
        b.tables[0].columns[1].data_type = "integer".into();
        b.tables[0].columns[0].default = Some("0".into());
        b.tables.push(table("extra", &[]));
        let d = diff(&a, &b);
        let kinds: Vec<(Severity, Kind)> = d.iter().map(|x| (x.severity, x.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (Severity::Critical, Kind::ColumnType),
                (Severity::Critical, Kind::TableExtra),
                (Severity::Warning, Kind::ColumnDefault)
            ]
        );
        assert_eq!(Kind::IndexMissing.to_string(), "index_missing");
    }

    #[test]
    fn concurrently_is_inserted() {
        assert_eq!(
            concurrently("CREATE UNIQUE INDEX i ON public.t USING btree (a)"),
            "CREATE UNIQUE INDEX CONCURRENTLY i ON public.t USING btree (a)"
        );
    }
}
