//! The difference of two snapshots: one [`Difference`] per thing that differs, with its
//! [`Kind`], its [`Severity`] and what to do about it. Pure, and one function per kind of
//! object, so a new catalog field lands beside the others of its kind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Column, Function, SchemaSnapshot, Sequence, Table, View};

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
    ExtensionSchema,
    TableMissing,
    TableExtra,
    ColumnMissing,
    ColumnExtra,
    ColumnType,
    ColumnNullability,
    ColumnDefault,
    ColumnIdentity,
    ColumnGenerated,
    ColumnCollation,
    PartitionChanged,
    TableOptions,
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
    RuleMissing,
    RuleExtra,
    RuleChanged,
    StatisticsMissing,
    StatisticsExtra,
    StatisticsChanged,
    EventTriggerMissing,
    EventTriggerExtra,
    EventTriggerChanged,
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
            | SequenceExtra | PartitionChanged | RuleMissing | RuleExtra | EventTriggerMissing
            | EventTriggerExtra => Severity::Critical,
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
            | ColumnCollation
            | TableOptions
            | ExtensionSchema
            | RuleChanged
            | StatisticsMissing
            | StatisticsExtra
            | StatisticsChanged
            | EventTriggerChanged
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
    schemas(&mut d, source, target);
    extensions(&mut d, source, target);
    tables(&mut d, source, target);
    constraints(&mut d, source, target);
    indexes(&mut d, source, target);
    views(&mut d, source, target);
    functions(&mut d, source, target);
    triggers(&mut d, source, target);
    policies(&mut d, source, target);
    enums(&mut d, source, target);
    types(&mut d, source, target);
    sequences(&mut d, source, target);
    rules(&mut d, source, target);
    statistics(&mut d, source, target);
    event_triggers(&mut d, source, target);

    let mut out = d.0;
    out.sort_by(|a, b| {
        (a.severity, &a.object, a.kind, &a.message)
            .cmp(&(b.severity, &b.object, b.kind, &b.message))
    });
    out.dedup();
    out
}

/// Schemas, with their owner, privileges and comment.
fn schemas(d: &mut Diffs, source: &SchemaSnapshot, target: &SchemaSnapshot) {
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
}

/// Extensions and their versions.
fn extensions(d: &mut Diffs, source: &SchemaSnapshot, target: &SchemaSnapshot) {
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
            if a.schema != b.schema {
                d.push(
                    Kind::ExtensionSchema,
                    format!("extension {}", a.name),
                    format!("extension {} is in schema {} in the source, {} in the target: its objects resolve differently", a.name, a.schema, b.schema),
                    format!("ALTER EXTENSION {} SET SCHEMA {} on the target from a migration", a.name, a.schema),
                )
            }
        },
    );
}

/// Tables, their columns, row-level security switches, owner, privileges, comment.
fn tables(d: &mut Diffs, source: &SchemaSnapshot, target: &SchemaSnapshot) {
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
}

/// Table constraints (not those of domains: a domain's definition holds them).
fn constraints(d: &mut Diffs, source: &SchemaSnapshot, target: &SchemaSnapshot) {
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
}

/// Indexes outside constraints, and any INVALID index, matched or not.
fn indexes(d: &mut Diffs, source: &SchemaSnapshot, target: &SchemaSnapshot) {
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
}

/// Views and materialized views.
fn views(d: &mut Diffs, source: &SchemaSnapshot, target: &SchemaSnapshot) {
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
            if a.definition != b.definition || a.materialized != b.materialized || a.options != b.options {
                d.push(
                    Kind::ViewChanged,
                    object.clone(),
                    if a.options == b.options {
                        format!("the definition of {object} differs between source and target")
                    } else {
                        format!("the definition of {object} differs: options [{}] in the source, [{}] in the target", a.options.join(", "), b.options.join(", "))
                    },
                    format!("redefine it on the target from a migration (CREATE OR REPLACE VIEW {} AS …)", q(&a.schema, &a.name)),
                );
            }
            acl_owner_comment(d, &object, (&a.owner, &b.owner), (&a.privileges, &b.privileges), (&a.comment, &b.comment), &format!("TABLE {}", q(&a.schema, &a.name)));
        },
    );
}

/// Functions, procedures, aggregates: body, signature-level attributes, owner, privileges.
fn functions(d: &mut Diffs, source: &SchemaSnapshot, target: &SchemaSnapshot) {
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
            let changed = function_attributes(a, b);
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
}

/// What differs between two versions of a function besides its body, as `x vs y` phrases.
fn function_attributes(a: &Function, b: &Function) -> Vec<String> {
    let mut changed = Vec::new();
    if a.arguments != b.arguments {
        changed.push(format!("arguments ({}) vs ({})", a.arguments, b.arguments));
    }
    if a.returns != b.returns {
        changed.push(format!(
            "returns {} vs {}",
            opt(&a.returns),
            opt(&b.returns)
        ));
    }
    if a.language != b.language {
        changed.push(format!("language {} vs {}", a.language, b.language));
    }
    if a.volatility != b.volatility {
        changed.push(format!("{} vs {}", a.volatility, b.volatility));
    }
    let flag = |on: bool, yes: &str, no: &str| if on { yes.to_string() } else { no.to_string() };
    if a.security_definer != b.security_definer {
        changed.push(format!(
            "SECURITY {} vs {}",
            flag(a.security_definer, "DEFINER", "INVOKER"),
            flag(b.security_definer, "DEFINER", "INVOKER")
        ));
    }
    if a.strict != b.strict {
        changed.push(format!(
            "{} vs {}",
            flag(a.strict, "STRICT", "CALLED ON NULL INPUT"),
            flag(b.strict, "STRICT", "CALLED ON NULL INPUT")
        ));
    }
    if a.leakproof != b.leakproof {
        changed.push(format!(
            "{} vs {}",
            flag(a.leakproof, "LEAKPROOF", "NOT LEAKPROOF"),
            flag(b.leakproof, "LEAKPROOF", "NOT LEAKPROOF")
        ));
    }
    if a.parallel != b.parallel {
        changed.push(format!("PARALLEL {} vs {}", a.parallel, b.parallel));
    }
    if a.config != b.config {
        changed.push(format!(
            "SET [{}] vs [{}]",
            a.config.join(", "),
            b.config.join(", ")
        ));
    }
    changed
}

/// Triggers and whether they fire.
fn triggers(d: &mut Diffs, source: &SchemaSnapshot, target: &SchemaSnapshot) {
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
}

/// Row-level security policies.
fn policies(d: &mut Diffs, source: &SchemaSnapshot, target: &SchemaSnapshot) {
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
}

/// Enum types and their values in order.
fn enums(d: &mut Diffs, source: &SchemaSnapshot, target: &SchemaSnapshot) {
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
}

/// Domains, composite and range types.
fn types(d: &mut Diffs, source: &SchemaSnapshot, target: &SchemaSnapshot) {
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
}

/// Sequences outside identity columns.
fn sequences(d: &mut Diffs, source: &SchemaSnapshot, target: &SchemaSnapshot) {
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
            let shape = |s: &Sequence| (s.data_type.clone(), s.start, s.increment, s.min, s.max, s.cycle, s.cache);
            if shape(a) != shape(b) {
                d.push(
                    Kind::SequenceChanged,
                    object.clone(),
                    format!(
                        "sequence {} differs: source {} start {} increment {} min {} max {} cache {}{}; target {} start {} increment {} min {} max {} cache {}{}",
                        q(&a.schema, &a.name), a.data_type, a.start, a.increment, a.min, a.max, a.cache, if a.cycle { " cycle" } else { "" },
                        b.data_type, b.start, b.increment, b.min, b.max, b.cache, if b.cycle { " cycle" } else { "" }
                    ),
                    format!("ALTER SEQUENCE {} on the target from a migration", q(&a.schema, &a.name)),
                );
            }
            if a.owned_by != b.owned_by {
                d.push(
                    Kind::SequenceChanged,
                    object.clone(),
                    format!("sequence {} is owned by column {} in the source but {} in the target (an owned sequence is dropped with its column)", q(&a.schema, &a.name), opt(&a.owned_by), opt(&b.owned_by)),
                    format!("ALTER SEQUENCE {} OWNED BY {} on the target from a migration", q(&a.schema, &a.name), a.owned_by.as_deref().unwrap_or("NONE")),
                );
            }
            acl_owner_comment(d, &object, (&a.owner, &b.owner), (&a.privileges, &b.privileges), (&None, &None), &format!("SEQUENCE {}", q(&a.schema, &a.name)));
        },
    );
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
        |d, x, y| column_diff(d, &tname, x, y),
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
    table_layout(d, &object, a, b);
    acl_owner_comment(
        d,
        &object,
        (&a.owner, &b.owner),
        (&a.privileges, &b.privileges),
        (&a.comment, &b.comment),
        &format!("TABLE {tname}"),
    );
}

/// One column matched on both sides.
fn column_diff(d: &mut Diffs, tname: &str, x: &Column, y: &Column) {
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
            format!(
                "column {tname}.{} is {} in the source but {} in the target",
                x.name,
                null(x.not_null),
                null(y.not_null)
            ),
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
            format!(
                "column {tname}.{} has default {} in the source but {} in the target",
                x.name,
                opt(&x.default),
                opt(&y.default)
            ),
            match &x.default {
                Some(v) => format!(
                    "ALTER TABLE {tname} ALTER COLUMN {} SET DEFAULT {v} from a migration",
                    x.name
                ),
                None => format!(
                    "ALTER TABLE {tname} ALTER COLUMN {} DROP DEFAULT from a migration",
                    x.name
                ),
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
            format!(
                "column {tname}.{} is generated as {} in the source but {} in the target",
                x.name,
                opt(&x.generated),
                opt(&y.generated)
            ),
            "recreate the generated column from a migration".into(),
        );
    }
    if x.identity_sequence != y.identity_sequence {
        d.push(
            Kind::ColumnIdentity,
            object.clone(),
            format!("the identity sequence of column {tname}.{} is {} in the source but {} in the target", x.name, opt(&x.identity_sequence), opt(&y.identity_sequence)),
            format!("ALTER TABLE {tname} ALTER COLUMN {} SET … (START/INCREMENT/CACHE …) from a migration", x.name),
        );
    }
    if x.collation != y.collation {
        d.push(
            Kind::ColumnCollation,
            object.clone(),
            format!("column {tname}.{} has collation {} in the source but {} in the target: sorting, comparisons and unique indexes differ", x.name, opt(&x.collation), opt(&y.collation)),
            format!("ALTER TABLE {tname} ALTER COLUMN {} TYPE {} COLLATE … from a migration (rebuilds its indexes)", x.name, x.data_type),
        );
    }
    acl_owner_comment(
        d,
        &object,
        (&None, &None),
        (&x.privileges, &y.privileges),
        (&None, &None),
        &format!("TABLE {tname} ({})", x.name),
    );
    if x.comment != y.comment {
        d.push(
            Kind::Comment,
            object,
            format!(
                "the comment on column {tname}.{} differs: {} vs {}",
                x.name,
                opt(&x.comment),
                opt(&y.comment)
            ),
            format!("COMMENT ON COLUMN {tname}.{} from a migration", x.name),
        );
    }
}

/// Partitioning, inheritance, persistence and storage parameters of a table.
fn table_layout(d: &mut Diffs, object: &str, a: &Table, b: &Table) {
    let tname = q(&a.schema, &a.name);
    let mut partitioning = Vec::new();
    if a.kind != b.kind {
        partitioning.push(format!("a {} vs a {}", a.kind, b.kind));
    }
    if a.partition_key != b.partition_key {
        partitioning.push(format!(
            "PARTITION BY {} vs {}",
            opt(&a.partition_key),
            opt(&b.partition_key)
        ));
    }
    if a.partition_of != b.partition_of {
        partitioning.push(format!(
            "partition of {} vs {}",
            opt(&a.partition_of),
            opt(&b.partition_of)
        ));
    }
    if a.inherits != b.inherits {
        partitioning.push(format!(
            "INHERITS ({}) vs ({})",
            a.inherits.join(", "),
            b.inherits.join(", ")
        ));
    }
    if !partitioning.is_empty() {
        d.push(
            Kind::PartitionChanged,
            object.to_string(),
            format!(
                "{tname} differs (source vs target): {}: rows are routed or inherited differently",
                partitioning.join(", ")
            ),
            "bring the target's partitioning in line from a migration (ATTACH/DETACH PARTITION, or recreate the table)".into(),
        );
    }
    let mut options = Vec::new();
    if a.unlogged != b.unlogged {
        let word = |u: bool| if u { "UNLOGGED" } else { "LOGGED" };
        options.push(format!("{} vs {}", word(a.unlogged), word(b.unlogged)));
    }
    if a.options != b.options {
        options.push(format!(
            "WITH ({}) vs ({})",
            a.options.join(", "),
            b.options.join(", ")
        ));
    }
    if !options.is_empty() {
        d.push(
            Kind::TableOptions,
            object.to_string(),
            format!("{tname} differs (source vs target): {}", options.join(", ")),
            format!(
                "ALTER TABLE {tname} SET LOGGED/UNLOGGED or SET (…)/RESET (…) from a migration"
            ),
        );
    }
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

/// How to report an object that is a name and a deparsed definition (rules, extended
/// statistics, event triggers): its three kinds, what it is called, and how to drop it.
struct Defined {
    missing: Kind,
    extra: Kind,
    changed: Kind,
}

impl Defined {
    /// `items` are (object label, definition, DROP statement), keyed by the label.
    fn compare(
        &self,
        d: &mut Diffs,
        source: &[(String, String, String)],
        target: &[(String, String, String)],
    ) {
        d.keyed(
            source,
            target,
            |(object, _, _)| object.clone(),
            |d, (object, def, _)| {
                d.push(
                    self.missing,
                    object.clone(),
                    format!("{object} exists in the source but not in the target: {def}"),
                    "apply the migration that creates it to the target".into(),
                )
            },
            |d, (object, def, drop)| {
                d.push(
                    self.extra,
                    object.clone(),
                    format!("{object} exists only in the target: {def}"),
                    format!("{CAPTURE} {drop};"),
                )
            },
            |d, (object, a, _), (_, b, _)| {
                if a != b {
                    d.push(
                        self.changed,
                        object.clone(),
                        format!("{object} differs: source `{a}`, target `{b}`"),
                        "recreate it on the target from a migration so both sides match".into(),
                    );
                }
            },
        );
    }
}

/// Rules (`CREATE RULE`), with whether they fire.
fn rules(d: &mut Diffs, source: &SchemaSnapshot, target: &SchemaSnapshot) {
    let items = |s: &SchemaSnapshot| -> Vec<(String, String, String)> {
        s.rules
            .iter()
            .map(|r| {
                let on = q(&r.schema, &r.table);
                (
                    format!("rule {} on {on}", r.name),
                    format!("{} ({})", r.definition, r.enabled),
                    format!("DROP RULE {} ON {on}", r.name),
                )
            })
            .collect()
    };
    Defined {
        missing: Kind::RuleMissing,
        extra: Kind::RuleExtra,
        changed: Kind::RuleChanged,
    }
    .compare(d, &items(source), &items(target));
}

/// Extended statistics (`CREATE STATISTICS`).
fn statistics(d: &mut Diffs, source: &SchemaSnapshot, target: &SchemaSnapshot) {
    let items = |s: &SchemaSnapshot| -> Vec<(String, String, String)> {
        s.statistics
            .iter()
            .map(|x| {
                let name = q(&x.schema, &x.name);
                (
                    format!("statistics {name}"),
                    x.definition.clone(),
                    format!("DROP STATISTICS {name}"),
                )
            })
            .collect()
    };
    Defined {
        missing: Kind::StatisticsMissing,
        extra: Kind::StatisticsExtra,
        changed: Kind::StatisticsChanged,
    }
    .compare(d, &items(source), &items(target));
}

/// Event triggers, with whether they fire.
fn event_triggers(d: &mut Diffs, source: &SchemaSnapshot, target: &SchemaSnapshot) {
    let items = |s: &SchemaSnapshot| -> Vec<(String, String, String)> {
        s.event_triggers
            .iter()
            .map(|e| {
                (
                    format!("event trigger {}", e.name),
                    format!("{} ({})", e.definition, e.enabled),
                    format!("DROP EVENT TRIGGER {}", e.name),
                )
            })
            .collect()
    };
    Defined {
        missing: Kind::EventTriggerMissing,
        extra: Kind::EventTriggerExtra,
        changed: Kind::EventTriggerChanged,
    }
    .compare(d, &items(source), &items(target));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{EventTrigger, Extension, Rule, Statistics};

    fn table(name: &str, cols: &[(&str, &str, bool)]) -> Table {
        Table {
            schema: "public".into(),
            name: name.into(),
            kind: "table".into(),
            columns: cols
                .iter()
                .map(|(n, t, nn)| Column {
                    name: n.to_string(),
                    data_type: t.to_string(),
                    not_null: *nn,
                    ..Column::default()
                })
                .collect(),
            ..Table::default()
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

    fn function(body: &str) -> Function {
        Function {
            schema: "public".into(),
            name: "f".into(),
            signature: "f()".into(),
            kind: "function".into(),
            language: "sql".into(),
            body_sha256: body.repeat(12),
            volatility: "volatile".into(),
            parallel: "unsafe".into(),
            ..Function::default()
        }
    }

    fn kinds(d: &[Difference]) -> Vec<Kind> {
        d.iter().map(|x| x.kind).collect()
    }

    #[test]
    fn a_changed_body_hash_is_a_body_difference() {
        let a = SchemaSnapshot {
            functions: vec![function("a")],
            ..Default::default()
        };
        let mut b = a.clone();
        b.functions[0].body_sha256 = "b".repeat(12);
        assert_eq!(kinds(&diff(&a, &b)), vec![Kind::FunctionBody]);
    }

    #[test]
    fn every_function_attribute_is_named() {
        let a = function("a");
        let mut b = a.clone();
        b.arguments = "a integer DEFAULT 7".into();
        b.strict = true;
        b.leakproof = true;
        b.parallel = "safe".into();
        b.config = vec!["search_path=pg_catalog".into()];
        let changed = function_attributes(&a, &b);
        assert_eq!(
            changed,
            vec![
                "arguments () vs (a integer DEFAULT 7)",
                "CALLED ON NULL INPUT vs STRICT",
                "NOT LEAKPROOF vs LEAKPROOF",
                "PARALLEL unsafe vs safe",
                "SET [] vs [search_path=pg_catalog]",
            ]
        );
        assert!(function_attributes(&a, &a.clone()).is_empty());
    }

    #[test]
    fn partitioning_is_critical_and_storage_options_a_warning() {
        let a = SchemaSnapshot {
            tables: vec![table("m1", &[("k", "integer", false)])],
            ..Default::default()
        };
        let mut b = a.clone();
        b.tables[0].partition_of = Some("public.m FOR VALUES FROM (0) TO (20)".into());
        b.tables[0].options = vec!["fillfactor=70".into()];
        let d = diff(&a, &b);
        assert_eq!(kinds(&d), vec![Kind::PartitionChanged, Kind::TableOptions]);
        assert_eq!(d[0].severity, Severity::Critical);
        assert!(d[0].message.contains("FOR VALUES FROM (0) TO (20)"));
        assert_eq!(d[1].severity, Severity::Warning);
    }

    #[test]
    fn column_collation_identity_sequence_and_privileges_are_compared() {
        let a = SchemaSnapshot {
            tables: vec![table("t", &[("a", "text", false)])],
            ..Default::default()
        };
        let mut b = a.clone();
        let c = &mut b.tables[0].columns[0];
        c.collation = Some("pg_catalog.\"C\"".into());
        c.identity_sequence = Some("bigint start 1 increment 5".into());
        c.privileges = vec!["PUBLIC:SELECT".into()];
        let mut k = kinds(&diff(&a, &b));
        k.sort();
        assert_eq!(
            k,
            vec![
                Kind::ColumnIdentity,
                Kind::ColumnCollation,
                Kind::Privileges
            ]
        );
    }

    #[test]
    fn rules_statistics_and_event_triggers_have_missing_extra_and_changed() {
        let rule = Rule {
            schema: "public".into(),
            table: "t".into(),
            name: "r".into(),
            definition: "CREATE RULE r AS ON DELETE TO public.t DO INSTEAD NOTHING".into(),
            enabled: "origin".into(),
        };
        let stats = Statistics {
            schema: "public".into(),
            name: "s".into(),
            definition: "CREATE STATISTICS public.s ON a, b FROM public.t".into(),
        };
        let event = EventTrigger {
            name: "e".into(),
            definition: "ddl_command_start EXECUTE FUNCTION f()".into(),
            enabled: "origin".into(),
        };
        let a = SchemaSnapshot {
            rules: vec![rule.clone()],
            statistics: vec![stats],
            event_triggers: vec![event.clone()],
            ..Default::default()
        };
        let b = SchemaSnapshot {
            rules: vec![Rule {
                enabled: "disabled".into(),
                ..rule
            }],
            event_triggers: vec![
                event,
                EventTrigger {
                    name: "other".into(),
                    definition: "sql_drop EXECUTE FUNCTION g()".into(),
                    enabled: "origin".into(),
                },
            ],
            ..Default::default()
        };
        let d = diff(&a, &b);
        assert_eq!(
            kinds(&d),
            vec![
                Kind::EventTriggerExtra,
                Kind::RuleChanged,
                Kind::StatisticsMissing
            ],
            "{d:#?}"
        );
        assert_eq!(d[0].object, "event trigger other");
        assert!(d[0].fix.ends_with("DROP EVENT TRIGGER other;"));
        assert!(d[1].message.contains("(disabled)"));
        assert_eq!(diff(&b, &a)[0].kind, Kind::EventTriggerMissing);
    }

    #[test]
    fn an_extension_in_another_schema_is_a_warning() {
        let ext = |schema: &str| Extension {
            name: "pg_trgm".into(),
            version: "1.6".into(),
            schema: schema.into(),
        };
        let a = SchemaSnapshot {
            extensions: vec![ext("public")],
            ..Default::default()
        };
        let b = SchemaSnapshot {
            extensions: vec![ext("extensions")],
            ..Default::default()
        };
        let d = diff(&a, &b);
        assert_eq!(kinds(&d), vec![Kind::ExtensionSchema]);
        assert_eq!(d[0].severity, Severity::Warning);
    }
}
