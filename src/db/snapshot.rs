//! A catalog snapshot of a database's schema, read straight from `pg_catalog` (no
//! `pg_dump`): deterministic, sorted, serialisable, and comparable with [`diff`].
//!
//! Used by `pgrollout test` (up → down → up must leave the same schema) and meant as the
//! base for drift detection. System schemas, the tracking schema and objects that belong
//! to an extension are left out: they are not the migrations' doing.
//!
//! What is compared is what a migration author controls: names, types, defaults,
//! definitions as PostgreSQL prints them (`pg_get_constraintdef`, `pg_get_indexdef`,
//! `pg_get_viewdef`, `pg_get_triggerdef`), function signatures and an MD5 of their body.
//! Not compared: OIDs, owners, privileges, statistics, storage parameters, comments.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Db;

/// The schema of one database at one moment. Every list is sorted by its name fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaSnapshot {
    pub schemas: Vec<String>,
    pub tables: Vec<Table>,
    pub constraints: Vec<Constraint>,
    pub indexes: Vec<Index>,
    pub views: Vec<View>,
    pub functions: Vec<Function>,
    pub triggers: Vec<Trigger>,
    pub policies: Vec<Policy>,
    pub enums: Vec<Enum>,
    /// Domains, composite and range types.
    pub types: Vec<Type>,
    pub sequences: Vec<Sequence>,
    pub extensions: Vec<Extension>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub schema: String,
    pub name: String,
    /// `table`, `partitioned table` or `foreign table`.
    pub kind: String,
    pub rls_enabled: bool,
    pub rls_forced: bool,
    /// In column order.
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// 1-based position among the table's live columns.
    pub position: i64,
    /// `format_type`: `bigint`, `character varying(80)`, `order_status`.
    pub data_type: String,
    pub not_null: bool,
    pub default: Option<String>,
    /// `always` or `by default` for identity columns.
    pub identity: Option<String>,
    /// The expression of a `GENERATED ALWAYS AS (…) STORED` column.
    pub generated: Option<String>,
    /// Set only when it differs from the type's default collation.
    pub collation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    pub schema: String,
    pub table: String,
    pub name: String,
    /// `primary key`, `unique`, `foreign key`, `check`, `exclusion`, `trigger`.
    pub kind: String,
    /// `pg_get_constraintdef` (ends in `NOT VALID` while not validated).
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub schema: String,
    pub table: String,
    pub name: String,
    /// `pg_get_indexdef`.
    pub definition: String,
    /// False for an index left INVALID by a failed `CREATE INDEX CONCURRENTLY`.
    pub valid: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub schema: String,
    pub name: String,
    pub materialized: bool,
    /// `pg_get_viewdef(oid, true)`.
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    pub schema: String,
    pub name: String,
    /// `function`, `procedure`, `aggregate` or `window`.
    pub kind: String,
    /// `pg_get_function_identity_arguments`: what tells overloads apart.
    pub arguments: String,
    /// `pg_get_function_result`; None for procedures.
    pub result: Option<String>,
    pub language: String,
    /// `immutable`, `stable` or `volatile`.
    pub volatility: String,
    pub security_definer: bool,
    /// MD5 of the body (`prosrc`, plus the SQL-standard body on PostgreSQL 14+).
    pub body_md5: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub schema: String,
    pub table: String,
    pub name: String,
    /// `pg_get_triggerdef`.
    pub definition: String,
    /// `O` (origin, the default), `D` (disabled), `R` (replica), `A` (always).
    pub enabled: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub schema: String,
    pub table: String,
    pub name: String,
    pub permissive: bool,
    /// `ALL`, `SELECT`, `INSERT`, `UPDATE`, `DELETE`.
    pub command: String,
    /// Sorted role names (`public` for everyone).
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Type {
    pub schema: String,
    pub name: String,
    /// `domain`, `composite` or `range`.
    pub kind: String,
    /// Domain: base type, NOT NULL, default and constraints; composite: its attributes;
    /// range: its subtype.
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
    /// `table.column` for a serial or identity sequence.
    pub owned_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub name: String,
    pub version: String,
    pub schema: String,
}

/// Reading the catalog failed.
#[derive(Debug, thiserror::Error)]
#[error("reading the schema snapshot ({what}): {source}")]
pub struct SnapshotError {
    pub what: &'static str,
    #[source]
    pub source: tokio_postgres::Error,
}

/// `$1` is the tracking schema. Schemas that are never the migrations' own.
const USER_SCHEMA: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname <> $1";

/// Not created by an extension (`classid` is the catalog of `oid_expr`).
fn not_extension_member(catalog: &str, oid_expr: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend AS e WHERE e.classid = '{catalog}'::regclass \
         AND e.objid = {oid_expr} AND e.deptype = 'e')"
    )
}

impl SchemaSnapshot {
    /// Read the snapshot of the database `db` is connected to, leaving out the tracking
    /// schema `tracking_schema`.
    pub fn read(db: &mut Db, tracking_schema: &str) -> Result<SchemaSnapshot, SnapshotError> {
        let s = tracking_schema;
        let rel = not_extension_member("pg_class", "c.oid");
        let q = |db: &mut Db, what: &'static str, sql: String| {
            db.query(&sql, &[&s])
                .map_err(|source| SnapshotError { what, source })
        };
        let mut snap = SchemaSnapshot::default();

        let schema_member = not_extension_member("pg_namespace", "n.oid");
        for r in q(
            db,
            "schemas",
            format!("SELECT n.nspname::text FROM pg_namespace AS n WHERE {USER_SCHEMA} AND {schema_member}"),
        )? {
            snap.schemas.push(r.get(0));
        }

        let mut tables: BTreeMap<(String, String), Table> = BTreeMap::new();
        for r in q(
            db,
            "tables",
            format!(
                "SELECT n.nspname::text, c.relname::text, \
                   CASE c.relkind WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN 'foreign table' ELSE 'table' END, \
                   c.relrowsecurity, c.relforcerowsecurity \
                 FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'f') AND {USER_SCHEMA} AND {rel}"
            ),
        )? {
            let (schema, name): (String, String) = (r.get(0), r.get(1));
            tables.insert(
                (schema.clone(), name.clone()),
                Table {
                    schema,
                    name,
                    kind: r.get(2),
                    rls_enabled: r.get(3),
                    rls_forced: r.get(4),
                    columns: Vec::new(),
                },
            );
        }
        for r in q(
            db,
            "columns",
            format!(
                "SELECT n.nspname::text, c.relname::text, a.attname::text, \
                   row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum), \
                   format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                   CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END, \
                   CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END, \
                   CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END, \
                   CASE WHEN a.attcollation <> t.typcollation THEN co.collname::text END \
                 FROM pg_attribute AS a \
                 JOIN pg_class AS c ON c.oid = a.attrelid \
                 JOIN pg_namespace AS n ON n.oid = c.relnamespace \
                 JOIN pg_type AS t ON t.oid = a.atttypid \
                 LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                 LEFT JOIN pg_collation AS co ON co.oid = a.attcollation \
                 WHERE c.relkind IN ('r', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped \
                   AND {USER_SCHEMA} AND {rel} \
                 ORDER BY a.attrelid, a.attnum"
            ),
        )? {
            let key: (String, String) = (r.get(0), r.get(1));
            if let Some(t) = tables.get_mut(&key) {
                t.columns.push(Column {
                    name: r.get(2),
                    position: r.get(3),
                    data_type: r.get(4),
                    not_null: r.get(5),
                    default: r.get(6),
                    identity: r.get(7),
                    generated: r.get(8),
                    collation: r.get(9),
                });
            }
        }
        snap.tables = tables.into_values().collect();

        for r in q(
            db,
            "constraints",
            format!(
                "SELECT n.nspname::text, c.relname::text, k.conname::text, \
                   CASE k.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique' WHEN 'f' THEN 'foreign key' \
                     WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' WHEN 't' THEN 'trigger' ELSE k.contype::text END, \
                   pg_get_constraintdef(k.oid) \
                 FROM pg_constraint AS k JOIN pg_class AS c ON c.oid = k.conrelid \
                 JOIN pg_namespace AS n ON n.oid = c.relnamespace \
                 WHERE {USER_SCHEMA} AND {rel}"
            ),
        )? {
            snap.constraints.push(Constraint {
                schema: r.get(0),
                table: r.get(1),
                name: r.get(2),
                kind: r.get(3),
                definition: r.get(4),
            });
        }

        for r in q(
            db,
            "indexes",
            format!(
                "SELECT n.nspname::text, c.relname::text, ic.relname::text, pg_get_indexdef(i.indexrelid), i.indisvalid \
                 FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indrelid \
                 JOIN pg_class AS ic ON ic.oid = i.indexrelid \
                 JOIN pg_namespace AS n ON n.oid = ic.relnamespace \
                 WHERE {USER_SCHEMA} AND {rel}"
            ),
        )? {
            snap.indexes.push(Index {
                schema: r.get(0),
                table: r.get(1),
                name: r.get(2),
                definition: r.get(3),
                valid: r.get(4),
            });
        }

        for r in q(
            db,
            "views",
            format!(
                "SELECT n.nspname::text, c.relname::text, c.relkind = 'm', pg_get_viewdef(c.oid, true) \
                 FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('v', 'm') AND {USER_SCHEMA} AND {rel}"
            ),
        )? {
            snap.views.push(View {
                schema: r.get(0),
                name: r.get(1),
                materialized: r.get(2),
                definition: r.get(3),
            });
        }

        let v14 = db
            .query(
                "SELECT current_setting('server_version_num')::int >= 140000",
                &[],
            )
            .map_err(|source| SnapshotError {
                what: "server version",
                source,
            })?[0]
            .get::<_, bool>(0);
        let body = if v14 {
            "md5(p.prosrc || coalesce(pg_get_function_sqlbody(p.oid), ''))"
        } else {
            "md5(p.prosrc)"
        };
        let proc_member = not_extension_member("pg_proc", "p.oid");
        for r in q(
            db,
            "functions",
            format!(
                "SELECT n.nspname::text, p.proname::text, \
                   CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' WHEN 'w' THEN 'window' ELSE 'function' END, \
                   pg_get_function_identity_arguments(p.oid), \
                   CASE WHEN p.prokind <> 'p' THEN pg_get_function_result(p.oid) END, \
                   l.lanname::text, \
                   CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END, \
                   p.prosecdef, {body} \
                 FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace \
                 JOIN pg_language AS l ON l.oid = p.prolang \
                 WHERE {USER_SCHEMA} AND {proc_member}"
            ),
        )? {
            snap.functions.push(Function {
                schema: r.get(0),
                name: r.get(1),
                kind: r.get(2),
                arguments: r.get(3),
                result: r.get(4),
                language: r.get(5),
                volatility: r.get(6),
                security_definer: r.get(7),
                body_md5: r.get(8),
            });
        }

        for r in q(
            db,
            "triggers",
            format!(
                "SELECT n.nspname::text, c.relname::text, t.tgname::text, pg_get_triggerdef(t.oid), t.tgenabled::text \
                 FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid \
                 JOIN pg_namespace AS n ON n.oid = c.relnamespace \
                 WHERE NOT t.tgisinternal AND {USER_SCHEMA} AND {rel}"
            ),
        )? {
            snap.triggers.push(Trigger {
                schema: r.get(0),
                table: r.get(1),
                name: r.get(2),
                definition: r.get(3),
                enabled: r.get(4),
            });
        }

        for r in q(
            db,
            "policies",
            format!(
                "SELECT n.nspname::text, c.relname::text, p.polname::text, p.polpermissive, \
                   CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END, \
                   ARRAY(SELECT CASE WHEN r.oid = 0 THEN 'public' ELSE pg_get_userbyid(r.oid)::text END \
                         FROM unnest(p.polroles) AS r(oid) ORDER BY 1), \
                   pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) \
                 FROM pg_policy AS p JOIN pg_class AS c ON c.oid = p.polrelid \
                 JOIN pg_namespace AS n ON n.oid = c.relnamespace \
                 WHERE {USER_SCHEMA} AND {rel}"
            ),
        )? {
            snap.policies.push(Policy {
                schema: r.get(0),
                table: r.get(1),
                name: r.get(2),
                permissive: r.get(3),
                command: r.get(4),
                roles: r.get(5),
                using: r.get(6),
                with_check: r.get(7),
            });
        }

        let type_member = not_extension_member("pg_type", "t.oid");
        for r in q(
            db,
            "enums",
            format!(
                "SELECT n.nspname::text, t.typname::text, \
                   ARRAY(SELECT e.enumlabel::text FROM pg_enum AS e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) \
                 FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace \
                 WHERE t.typtype = 'e' AND {USER_SCHEMA} AND {type_member}"
            ),
        )? {
            snap.enums.push(Enum {
                schema: r.get(0),
                name: r.get(1),
                values: r.get(2),
            });
        }

        for r in q(
            db,
            "types",
            format!(
                "SELECT n.nspname::text, t.typname::text, \
                   CASE t.typtype WHEN 'd' THEN 'domain' WHEN 'c' THEN 'composite' ELSE 'range' END, \
                   CASE t.typtype \
                     WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod) \
                       || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END \
                       || coalesce(' DEFAULT ' || t.typdefault, '') \
                       || coalesce((SELECT ' ' || string_agg(k.conname || ' ' || pg_get_constraintdef(k.oid), ' ' ORDER BY k.conname) \
                                    FROM pg_constraint AS k WHERE k.contypid = t.oid), '') \
                     WHEN 'c' THEN '(' || coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) \
                                    FROM pg_attribute AS a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '') || ')' \
                     ELSE (SELECT format_type(r.rngsubtype, NULL) FROM pg_range AS r WHERE r.rngtypid = t.oid) \
                   END \
                 FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace \
                 LEFT JOIN pg_class AS c ON c.oid = t.typrelid \
                 WHERE (t.typtype IN ('d', 'r') OR (t.typtype = 'c' AND c.relkind = 'c')) \
                   AND {USER_SCHEMA} AND {type_member}"
            ),
        )? {
            snap.types.push(Type {
                schema: r.get(0),
                name: r.get(1),
                kind: r.get(2),
                definition: r.get::<_, Option<String>>(3).unwrap_or_default(),
            });
        }

        for r in q(
            db,
            "sequences",
            format!(
                "SELECT n.nspname::text, c.relname::text, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, \
                   s.seqmin, s.seqmax, s.seqcycle, \
                   (SELECT tc.relname || '.' || a.attname FROM pg_depend AS d \
                      JOIN pg_class AS tc ON tc.oid = d.refobjid \
                      JOIN pg_attribute AS a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i') \
                      AND d.refobjsubid > 0 LIMIT 1) \
                 FROM pg_sequence AS s JOIN pg_class AS c ON c.oid = s.seqrelid \
                 JOIN pg_namespace AS n ON n.oid = c.relnamespace \
                 WHERE {USER_SCHEMA} AND {rel}"
            ),
        )? {
            snap.sequences.push(Sequence {
                schema: r.get(0),
                name: r.get(1),
                data_type: r.get(2),
                start: r.get(3),
                increment: r.get(4),
                min: r.get(5),
                max: r.get(6),
                cycle: r.get(7),
                owned_by: r.get(8),
            });
        }

        // The tracking schema's own extensions are not excluded: an extension is
        // database-wide, whoever created it.
        for r in db
            .query(
                "SELECT x.extname::text, x.extversion, n.nspname::text FROM pg_extension AS x \
                 JOIN pg_namespace AS n ON n.oid = x.extnamespace",
                &[],
            )
            .map_err(|source| SnapshotError {
                what: "extensions",
                source,
            })?
        {
            snap.extensions.push(Extension {
                name: r.get(0),
                version: r.get(1),
                schema: r.get(2),
            });
        }
        snap.sort();
        Ok(snap)
    }

    /// Put every list in its canonical order (byte order of the name fields), so two
    /// snapshots of the same schema are equal and serialise identically.
    pub fn sort(&mut self) {
        self.schemas.sort();
        self.tables
            .sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
        for t in &mut self.tables {
            t.columns.sort_by_key(|c| c.position);
        }
        self.constraints
            .sort_by(|a, b| (&a.schema, &a.table, &a.name).cmp(&(&b.schema, &b.table, &b.name)));
        self.indexes
            .sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
        self.views
            .sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
        self.functions.sort_by(|a, b| {
            (&a.schema, &a.name, &a.arguments).cmp(&(&b.schema, &b.name, &b.arguments))
        });
        self.triggers
            .sort_by(|a, b| (&a.schema, &a.table, &a.name).cmp(&(&b.schema, &b.table, &b.name)));
        self.policies
            .sort_by(|a, b| (&a.schema, &a.table, &a.name).cmp(&(&b.schema, &b.table, &b.name)));
        self.enums
            .sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
        self.types
            .sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
        self.sequences
            .sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
        self.extensions.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// Whether the snapshot holds any object a migration could have made (extensions and
    /// the empty `public` schema do not count).
    pub fn has_user_objects(&self) -> bool {
        !(self.tables.is_empty()
            && self.views.is_empty()
            && self.functions.is_empty()
            && self.enums.is_empty()
            && self.types.is_empty()
            && self.sequences.is_empty())
    }
}

/// One way two snapshots differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// `table`, `column`, `index`, `function` …
    pub kind: &'static str,
    /// Qualified name: `public.users`, `public.users.email`, `public.f(integer, text)`.
    pub name: String,
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Change {
    /// Only in the second snapshot; `summary` is its main definition.
    Added { summary: String },
    /// Only in the first snapshot.
    Removed { summary: String },
    Changed {
        field: &'static str,
        before: String,
        after: String,
    },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, name) = (self.kind, &self.name);
        let brief = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!(": {}", one_line(s))
            }
        };
        match &self.change {
            Change::Added { summary } => write!(f, "{kind} {name} added{}", brief(summary)),
            Change::Removed { summary } => write!(f, "{kind} {name} removed{}", brief(summary)),
            Change::Changed {
                field,
                before,
                after,
            } => write!(
                f,
                "{kind} {name}: {field} changed from {} to {}",
                one_line(before),
                one_line(after)
            ),
        }
    }
}

/// Whitespace runs folded to one space, cut at 200 characters: differences are one line.
fn one_line(s: &str) -> String {
    let folded = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() > 200 {
        format!("{}…", folded.chars().take(200).collect::<String>())
    } else {
        folded
    }
}

/// One object flattened for comparison: its fields as text, in a fixed order; the first
/// field is its summary. `parent` is the table it belongs to, if any.
struct Flat {
    fields: Vec<(&'static str, String)>,
    parent: Option<(&'static str, String)>,
}

type Key = (&'static str, String);

fn flatten(s: &SchemaSnapshot) -> BTreeMap<Key, Flat> {
    let mut m = BTreeMap::new();
    let b = |v: bool| v.to_string();
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    let mut put = |kind: &'static str,
                   name: String,
                   fields: Vec<(&'static str, String)>,
                   parent: Option<Key>| {
        m.insert((kind, name), Flat { fields, parent });
    };
    for n in &s.schemas {
        put("schema", n.clone(), vec![], None);
    }
    for t in &s.tables {
        let tname = format!("{}.{}", t.schema, t.name);
        put(
            "table",
            tname.clone(),
            vec![
                ("kind", t.kind.clone()),
                ("row level security", b(t.rls_enabled)),
                ("forced row level security", b(t.rls_forced)),
            ],
            None,
        );
        for c in &t.columns {
            put(
                "column",
                format!("{tname}.{}", c.name),
                vec![
                    ("type", c.data_type.clone()),
                    ("position", c.position.to_string()),
                    ("not null", b(c.not_null)),
                    ("default", o(&c.default)),
                    ("identity", o(&c.identity)),
                    ("generated", o(&c.generated)),
                    ("collation", o(&c.collation)),
                ],
                Some(("table", tname.clone())),
            );
        }
    }
    for c in &s.constraints {
        let t = format!("{}.{}", c.schema, c.table);
        put(
            "constraint",
            format!("{t}.{}", c.name),
            vec![
                ("definition", c.definition.clone()),
                ("kind", c.kind.clone()),
            ],
            Some(("table", t)),
        );
    }
    for i in &s.indexes {
        put(
            "index",
            format!("{}.{}", i.schema, i.name),
            vec![("definition", i.definition.clone()), ("valid", b(i.valid))],
            Some(("table", format!("{}.{}", i.schema, i.table))),
        );
    }
    for v in &s.views {
        put(
            if v.materialized {
                "materialized view"
            } else {
                "view"
            },
            format!("{}.{}", v.schema, v.name),
            vec![("definition", v.definition.clone())],
            None,
        );
    }
    for f in &s.functions {
        put(
            f.kind_static(),
            format!("{}.{}({})", f.schema, f.name, f.arguments),
            vec![
                ("result", o(&f.result)),
                ("language", f.language.clone()),
                ("volatility", f.volatility.clone()),
                ("security definer", b(f.security_definer)),
                ("body (md5)", f.body_md5.clone()),
            ],
            None,
        );
    }
    for t in &s.triggers {
        let tbl = format!("{}.{}", t.schema, t.table);
        put(
            "trigger",
            format!("{tbl}.{}", t.name),
            vec![
                ("definition", t.definition.clone()),
                ("enabled", t.enabled.clone()),
            ],
            Some(("table", tbl)),
        );
    }
    for p in &s.policies {
        let tbl = format!("{}.{}", p.schema, p.table);
        put(
            "policy",
            format!("{tbl}.{}", p.name),
            vec![
                ("command", p.command.clone()),
                ("permissive", b(p.permissive)),
                ("roles", p.roles.join(", ")),
                ("using", o(&p.using)),
                ("with check", o(&p.with_check)),
            ],
            Some(("table", tbl)),
        );
    }
    for e in &s.enums {
        put(
            "enum",
            format!("{}.{}", e.schema, e.name),
            vec![("values", e.values.join(", "))],
            None,
        );
    }
    for t in &s.types {
        put(
            "type",
            format!("{}.{}", t.schema, t.name),
            vec![
                ("definition", t.definition.clone()),
                ("kind", t.kind.clone()),
            ],
            None,
        );
    }
    for q in &s.sequences {
        put(
            "sequence",
            format!("{}.{}", q.schema, q.name),
            vec![
                ("type", q.data_type.clone()),
                ("start", q.start.to_string()),
                ("increment", q.increment.to_string()),
                ("min", q.min.to_string()),
                ("max", q.max.to_string()),
                ("cycle", b(q.cycle)),
                ("owned by", o(&q.owned_by)),
            ],
            None,
        );
    }
    for x in &s.extensions {
        put(
            "extension",
            x.name.clone(),
            vec![("version", x.version.clone()), ("schema", x.schema.clone())],
            None,
        );
    }
    m
}

impl Function {
    fn kind_static(&self) -> &'static str {
        match self.kind.as_str() {
            "procedure" => "procedure",
            "aggregate" => "aggregate",
            "window" => "window function",
            _ => "function",
        }
    }
}

/// What changed from `a` to `b`, one readable line each (`Display`), in a stable order.
/// Objects inside a table that was added or removed as a whole are not listed again.
pub fn diff(a: &SchemaSnapshot, b: &SchemaSnapshot) -> Vec<Difference> {
    let (fa, fb) = (flatten(a), flatten(b));
    let whole = |k: &Option<Key>| {
        k.as_ref()
            .is_some_and(|k| fa.contains_key(k) != fb.contains_key(k))
    };
    let summary = |f: &Flat| f.fields.first().map(|(_, v)| v.clone()).unwrap_or_default();
    let mut out = Vec::new();
    for (k, x) in &fa {
        match fb.get(k) {
            None if !whole(&x.parent) => out.push(Difference {
                kind: k.0,
                name: k.1.clone(),
                change: Change::Removed {
                    summary: summary(x),
                },
            }),
            None => {}
            Some(y) => {
                for ((field, before), (_, after)) in x.fields.iter().zip(&y.fields) {
                    if before != after {
                        out.push(Difference {
                            kind: k.0,
                            name: k.1.clone(),
                            change: Change::Changed {
                                field,
                                before: before.clone(),
                                after: after.clone(),
                            },
                        });
                    }
                }
            }
        }
    }
    for (k, y) in &fb {
        if !fa.contains_key(k) && !whole(&y.parent) {
            out.push(Difference {
                kind: k.0,
                name: k.1.clone(),
                change: Change::Added {
                    summary: summary(y),
                },
            });
        }
    }
    out.sort_by(|x, y| (x.kind, &x.name).cmp(&(y.kind, &y.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, cols: &[(&str, &str)]) -> Table {
        Table {
            schema: "public".into(),
            name: name.into(),
            kind: "table".into(),
            rls_enabled: false,
            rls_forced: false,
            columns: cols
                .iter()
                .enumerate()
                .map(|(i, (n, t))| Column {
                    name: n.to_string(),
                    position: i as i64 + 1,
                    data_type: t.to_string(),
                    not_null: false,
                    default: None,
                    identity: None,
                    generated: None,
                    collation: None,
                })
                .collect(),
        }
    }

    #[test]
    fn equal_snapshots_have_no_difference() {
        let mut a = SchemaSnapshot::default();
        a.tables.push(table("t", &[("id", "bigint")]));
        assert!(diff(&a, &a.clone()).is_empty());
    }

    #[test]
    fn differences_are_one_readable_line_each() {
        let mut a = SchemaSnapshot::default();
        a.tables
            .push(table("users", &[("id", "bigint"), ("email", "text")]));
        a.tables.push(table("gone", &[("id", "bigint")]));
        a.indexes.push(Index {
            schema: "public".into(),
            table: "gone".into(),
            name: "gone_idx".into(),
            definition: "CREATE INDEX gone_idx ON public.gone USING btree (id)".into(),
            valid: true,
        });
        let mut b = SchemaSnapshot::default();
        b.tables.push(table(
            "users",
            &[("id", "bigint"), ("email", "character varying(10)")],
        ));
        b.indexes.push(Index {
            schema: "public".into(),
            table: "users".into(),
            name: "users_email_idx".into(),
            definition: "CREATE INDEX users_email_idx ON public.users USING btree (email)".into(),
            valid: true,
        });
        let lines: Vec<String> = diff(&a, &b).iter().map(|d| d.to_string()).collect();
        assert_eq!(
            lines,
            vec![
                "column public.users.email: type changed from text to character varying(10)",
                "index public.users_email_idx added: CREATE INDEX users_email_idx ON public.users USING btree (email)",
                "table public.gone removed: table",
            ]
        );
    }

    #[test]
    fn snapshot_serialises_deterministically() {
        let mut a = SchemaSnapshot::default();
        a.tables.push(table("b", &[]));
        a.tables.push(table("a", &[]));
        a.sort();
        let mut b = SchemaSnapshot::default();
        b.tables.push(table("a", &[]));
        b.tables.push(table("b", &[]));
        b.sort();
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
    }
}
