//! The schema of one database as read from its catalogs (the model), and the difference
//! of two ([`diff`]). Pure: nothing here talks to a server — `db::catalog` fills the model,
//! `drift` and `test` compare two of them.
//!
//! Left out of every snapshot: system schemas, the tracking schema, objects that belong
//! to an extension (the extension and its version stand for them), sequences behind
//! identity columns (the column's identity stands for them) and indexes behind
//! PRIMARY KEY / UNIQUE / EXCLUDE constraints (the constraint stands for them).
//! docs/schema-comparison.md lists exactly what is compared.
//!
//! Every list is sorted, so a snapshot serialises to the same JSON for the same schema.

mod diff;

pub use diff::{diff, Difference, Kind, Severity};

use serde::{Deserialize, Serialize};

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
    /// Rules other than the `_RETURN` rule of a view (the view's definition stands for it).
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Extended statistics (`CREATE STATISTICS`).
    #[serde(default)]
    pub statistics: Vec<Statistics>,
    /// Event triggers: database-wide, so not limited to the schemas read.
    #[serde(default)]
    pub event_triggers: Vec<EventTrigger>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub name: String,
    pub owner: Option<String>,
    pub privileges: Vec<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub name: String,
    pub version: String,
    pub schema: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub schema: String,
    pub name: String,
    /// `table` or `partitioned table`.
    pub kind: String,
    pub rls_enabled: bool,
    pub rls_forced: bool,
    /// `PARTITION BY …` of a partitioned table (`pg_get_partkeydef`).
    #[serde(default)]
    pub partition_key: Option<String>,
    /// `schema.parent FOR VALUES …` of a partition.
    #[serde(default)]
    pub partition_of: Option<String>,
    /// Parents by plain inheritance (`INHERITS`), qualified, in inheritance order.
    #[serde(default)]
    pub inherits: Vec<String>,
    /// `UNLOGGED`: its rows are lost after a crash.
    #[serde(default)]
    pub unlogged: bool,
    /// Storage parameters (`WITH (fillfactor=70, autovacuum_enabled=false)`), sorted.
    #[serde(default)]
    pub options: Vec<String>,
    pub owner: Option<String>,
    pub privileges: Vec<String>,
    pub comment: Option<String>,
    /// In column order.
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// `format_type` of the type, with its modifier: `character varying(80)`.
    pub data_type: String,
    pub not_null: bool,
    pub default: Option<String>,
    /// `always` or `by default` for identity columns.
    pub identity: Option<String>,
    /// The sequence parameters behind an identity column (`start 1 increment 1 …`): the
    /// sequence itself is left out of the snapshot.
    #[serde(default)]
    pub identity_sequence: Option<String>,
    /// The expression of a `GENERATED ALWAYS AS (…) STORED` column.
    pub generated: Option<String>,
    /// `COLLATE` when it is not the type's default collation (quoted, qualified).
    #[serde(default)]
    pub collation: Option<String>,
    /// Column-level GRANTs, when privileges are read.
    #[serde(default)]
    pub privileges: Vec<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    pub schema: String,
    pub table: String,
    pub name: String,
    /// primary key, unique, foreign key, check, exclusion, trigger.
    pub kind: String,
    pub definition: String,
    pub validated: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub schema: String,
    pub table: String,
    pub name: String,
    pub definition: String,
    /// False for an index a failed `CREATE INDEX CONCURRENTLY` left behind.
    pub valid: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub schema: String,
    pub name: String,
    pub materialized: bool,
    pub definition: String,
    /// `check_option`, `security_barrier`, `security_invoker`, storage parameters, sorted.
    #[serde(default)]
    pub options: Vec<String>,
    pub owner: Option<String>,
    pub privileges: Vec<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    pub schema: String,
    pub name: String,
    /// `name(argument types)`: what tells overloads apart.
    pub signature: String,
    /// function, procedure, aggregate, window.
    pub kind: String,
    /// The full argument list with names, modes and DEFAULTs
    /// (`pg_get_function_arguments`); the signature has only what tells overloads apart.
    #[serde(default)]
    pub arguments: String,
    pub returns: Option<String>,
    pub language: String,
    /// SHA-256 (hex) of the body: `prosrc` exactly as stored; for a SQL-standard body
    /// (`RETURN …`, `BEGIN ATOMIC … END`, PostgreSQL 14+) the server's deparse of
    /// `prosqlbody`; for an aggregate its transition/final functions, state type and
    /// initial value.
    pub body_sha256: String,
    pub volatility: String,
    pub security_definer: bool,
    #[serde(default)]
    pub strict: bool,
    #[serde(default)]
    pub leakproof: bool,
    /// `safe`, `restricted` or `unsafe`.
    #[serde(default)]
    pub parallel: String,
    /// `SET name = value` attached to the function (`search_path=…`), as stored.
    #[serde(default)]
    pub config: Vec<String>,
    pub owner: Option<String>,
    pub privileges: Vec<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub schema: String,
    pub table: String,
    pub name: String,
    pub definition: String,
    /// origin, disabled, replica, always (`ALTER TABLE … ENABLE/DISABLE TRIGGER`).
    pub enabled: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enum {
    pub schema: String,
    pub name: String,
    /// In sort order.
    pub values: Vec<String>,
}

/// A domain, composite or range type, with a definition that changes whenever the type
/// does: the base type, default and constraints of a domain; the attributes of a
/// composite; the subtype of a range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserType {
    pub schema: String,
    pub name: String,
    /// `domain`, `composite` or `range`.
    pub kind: String,
    pub definition: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    pub schema: String,
    pub name: String,
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cycle: bool,
    #[serde(default)]
    pub cache: i64,
    /// `OWNED BY table.column`: dropped with the column.
    #[serde(default)]
    pub owned_by: Option<String>,
    pub owner: Option<String>,
    pub privileges: Vec<String>,
}

impl SchemaSnapshot {
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

/// A rewrite rule (`CREATE RULE`) on a table or view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub schema: String,
    pub table: String,
    pub name: String,
    /// `pg_get_ruledef`.
    pub definition: String,
    /// origin, disabled, replica, always.
    pub enabled: String,
}

/// An extended statistics object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statistics {
    pub schema: String,
    pub name: String,
    /// `pg_get_statisticsobjdef`.
    pub definition: String,
}

/// An event trigger (`CREATE EVENT TRIGGER`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTrigger {
    pub name: String,
    /// `ddl_command_start ON (tags) EXECUTE FUNCTION schema.f()`.
    pub definition: String,
    /// origin, disabled, replica, always.
    pub enabled: String,
}

/// The shape of [`DriftReport`] as JSON.
pub const DRIFT_FORMAT_VERSION: u32 = 1;

/// One side of a comparison, as shown to people.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// Environment name, `migrations`, or the redacted URL.
    pub label: String,
    /// Where it was read: a redacted URL, or how the expected schema was built.
    pub location: String,
    pub server_version: String,
}

/// The result of a comparison: documented in docs/drift-and-reports.md.
#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    pub format_version: u32,
    pub source: Side,
    pub target: Side,
    pub critical: usize,
    pub warning: usize,
    pub info: usize,
    pub differences: Vec<Difference>,
}

impl DriftReport {
    pub fn new(source: Side, target: Side, differences: Vec<Difference>) -> DriftReport {
        let n = |s: Severity| differences.iter().filter(|d| d.severity == s).count();
        DriftReport {
            format_version: DRIFT_FORMAT_VERSION,
            critical: n(Severity::Critical),
            warning: n(Severity::Warning),
            info: n(Severity::Info),
            source,
            target,
            differences,
        }
    }

    pub fn has_critical(&self) -> bool {
        self.critical > 0
    }
}
