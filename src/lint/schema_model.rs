//! The offline schema model: what the migrations before a statement have built.
//!
//! Built from the parse trees the splitter already made, statement by statement in
//! version order: tables (which exist, and in which schema), their columns and column
//! types with their modifiers (`varchar(40)`, `numeric(12,2)`), and enum types with their
//! values. Rules ask it what a statement cannot say by itself — chiefly the old type of
//! a column whose type changes, so a real rewrite (`uuid → text`) is told apart from a
//! binary-coercible change (`varchar(20) → text`).
//!
//! It is a model, not a database: a table made by hand, by an extension or by a
//! `DO` block is simply not in it, and a table created with `LIKE`, `INHERITS`,
//! `PARTITION OF` or `AS SELECT` has columns it does not know. Whatever it does not
//! know it says it does not know; callers keep their syntax-only behaviour then.

use std::collections::HashMap;

use pg_query::protobuf::{a_const, AlterTableType, ObjectType, RangeVar, TypeName};
use pg_query::NodeEnum;

use super::ast;
use crate::migration::Migration;

/// A column's type as written, normalised: `integer` → `int4`, `character varying(20)`
/// → `varchar(20)`, `decimal(10,2)` → `numeric(10,2)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    /// The type's name: lowercased and without `pg_catalog.` for PostgreSQL's own
    /// types; `schema.name` as written for others.
    pub name: String,
    /// Integer type modifiers (`varchar(20)` → `[20]`); `None` when one is not an
    /// integer constant.
    pub typmods: Option<Vec<i64>>,
    /// An array type (`text[]`).
    pub array: bool,
    /// One of PostgreSQL's own types (`pg_catalog.x`, or an unqualified name).
    pub builtin: bool,
}

impl ColumnType {
    pub fn of(t: &TypeName) -> ColumnType {
        let names = ast::dotted(&t.names);
        let builtin = names.len() == 1 || names.first() == Some(&"pg_catalog");
        let name = if builtin {
            let base = names
                .last()
                .map(|s| s.to_ascii_lowercase())
                .unwrap_or_default();
            canonical(&base).to_string()
        } else {
            names.join(".")
        };
        let typmods = t
            .typmods
            .iter()
            .map(|n| match &n.node {
                Some(NodeEnum::AConst(c)) => match &c.val {
                    Some(a_const::Val::Ival(i)) => Some(i64::from(i.ival)),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        ColumnType {
            name,
            typmods,
            array: !t.array_bounds.is_empty(),
            builtin,
        }
    }

    /// How the type reads in a message: `varchar(20)`, `numeric(12,2)`, `text[]`.
    pub fn display(&self) -> String {
        let mut s = self.name.clone();
        match &self.typmods {
            Some(m) if !m.is_empty() => {
                let parts: Vec<String> = m.iter().map(i64::to_string).collect();
                s.push_str(&format!("({})", parts.join(",")));
            }
            Some(_) => {}
            None => s.push_str("(…)"),
        }
        if self.array {
            s.push_str("[]");
        }
        s
    }

    fn is(&self, name: &str) -> bool {
        self.builtin && self.name == name
    }

    /// The single length/precision modifier, `None` when unbounded.
    fn limit(&self) -> Option<Option<i64>> {
        match self.typmods.as_deref() {
            Some([]) => Some(None),
            Some([n]) => Some(Some(*n)),
            _ => None,
        }
    }
}

/// PostgreSQL's names for the aliases its grammar does not already map (a type
/// written as an identifier, like `integer` in `ALTER … TYPE "integer"`, or `int4` by hand).
fn canonical(base: &str) -> &str {
    match base {
        "int" | "integer" | "serial" | "serial4" => "int4",
        "smallint" | "smallserial" | "serial2" => "int2",
        "bigint" | "bigserial" | "serial8" => "int8",
        "decimal" => "numeric",
        "boolean" => "bool",
        "real" => "float4",
        "float" | "double precision" => "float8",
        "character varying" => "varchar",
        "char" | "character" => "bpchar",
        "timestamp with time zone" => "timestamptz",
        "timestamp without time zone" => "timestamp",
        other => other,
    }
}

/// Whether changing a column from `old` to `new` rewrites the table (and rebuilds its
/// indexes), following PostgreSQL's own test: a change is free when the old values are
/// already valid values of the new type bit for bit (binary-coercible, no length check
/// that could fail) — `varchar(n) → text`, `varchar(n) → varchar(m ≥ n)`, `varchar(n) →
/// varchar`, `text → varchar`, `numeric(p,s) → numeric` or `numeric(q ≥ p, s)`,
/// `varbit(n)` and the time types alike. Everything else rewrites, unknown types included.
pub fn rewrites(old: &ColumnType, new: &ColumnType) -> bool {
    if old == new {
        return false;
    }
    if old.array || new.array {
        return true;
    }
    let textual = |t: &ColumnType| t.is("text") || t.is("varchar") || t.is("citext");
    // Length-limited types whose limit may only grow or go away.
    let widens = |family: &str| -> bool {
        old.is(family)
            && new.is(family)
            && match (old.limit(), new.limit()) {
                (Some(_), Some(None)) => true,
                (Some(Some(o)), Some(Some(n))) => n >= o,
                _ => false,
            }
    };
    if new.is("text") || new.is("citext") {
        return !textual(old);
    }
    if new.is("varchar") {
        if old.is("varchar") {
            return !widens("varchar");
        }
        // text → varchar (no limit) is binary-coercible; text → varchar(n) must check
        // every value's length, which PostgreSQL does by rewriting.
        return !(textual(old) && new.limit() == Some(None));
    }
    if new.is("numeric") && old.is("numeric") {
        return match (old.typmods.as_deref(), new.typmods.as_deref()) {
            (Some(_), Some([])) => false,
            (Some(o), Some(n)) if !o.is_empty() => {
                let scale = |m: &[i64]| m.get(1).copied().unwrap_or(0);
                !(n[0] >= o[0] && scale(n) == scale(o))
            }
            _ => true,
        };
    }
    for family in ["varbit", "timestamp", "timestamptz", "time", "timetz"] {
        if old.is(family) && new.is(family) {
            return !widens(family);
        }
    }
    true
}

/// One table of the model.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Columns in order, with their types when known.
    pub columns: Vec<(String, Option<ColumnType>)>,
    /// False when the table may have columns the model does not know (`LIKE`,
    /// `INHERITS`, `PARTITION OF`, `AS SELECT`).
    pub complete: bool,
}

impl Table {
    fn column_mut(&mut self, name: &str) -> Option<&mut Option<ColumnType>> {
        self.columns
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
    }
}

/// What the model knows about one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKnowledge<'a> {
    /// The column and its type are known.
    Typed(&'a ColumnType),
    /// The table is not in the model, or the column's type is not known.
    Unknown,
}

/// The schema the migrations so far have built (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct SchemaModel {
    /// (schema, table) → table; an unqualified name is taken to be in `public`.
    tables: HashMap<(String, String), Table>,
    /// (schema, type) → enum labels in order.
    enums: HashMap<(String, String), Vec<String>>,
}

fn schema_of(s: &str) -> String {
    if s.is_empty() {
        "public".to_string()
    } else {
        s.to_string()
    }
}

fn key(rv: &RangeVar) -> (String, String) {
    (schema_of(&rv.schemaname), rv.relname.clone())
}

/// `a.b` or `b` (in `public`) from a list of name parts.
fn key_of_parts(parts: &[&str]) -> Option<(String, String)> {
    match parts {
        [name] => Some(("public".into(), name.to_string())),
        [schema, name] => Some((schema.to_string(), name.to_string())),
        [_, schema, name] => Some((schema.to_string(), name.to_string())),
        _ => None,
    }
}

impl SchemaModel {
    /// The model after every statement of the up sections of `migrations`, in order.
    pub fn of<'m>(migrations: impl IntoIterator<Item = &'m Migration>) -> SchemaModel {
        let mut model = SchemaModel::default();
        for m in migrations {
            model.apply_migration(m);
        }
        model
    }

    pub fn apply_migration(&mut self, m: &Migration) {
        for s in m.statements() {
            if let Some(node) = &s.ast {
                self.apply(node);
            }
        }
    }

    /// The table `rv` names, resolving an unqualified name like a default
    /// `search_path` would: `public` first, else the one table of that name in any schema.
    pub fn table(&self, rv: &RangeVar) -> Option<&Table> {
        self.resolve(&rv.schemaname, &rv.relname)
            .and_then(|k| self.tables.get(&k))
    }

    /// The table named `schema.name` or `name`, as a user types it on the command line.
    pub fn table_named(&self, name: &str) -> Option<&Table> {
        let (schema, rel) = name.rsplit_once('.').unwrap_or(("", name));
        self.resolve(schema, rel).and_then(|k| self.tables.get(&k))
    }

    fn resolve(&self, schema: &str, name: &str) -> Option<(String, String)> {
        let k = (schema_of(schema), name.to_string());
        if self.tables.contains_key(&k) || !schema.is_empty() {
            return Some(k);
        }
        let mut found = self.tables.keys().filter(|(_, n)| n == name);
        match (found.next(), found.next()) {
            (Some(only), None) => Some(only.clone()),
            _ => Some(k),
        }
    }

    /// The type of `column` of the table `rv` names.
    pub fn column(&self, rv: &RangeVar, column: &str) -> ColumnKnowledge<'_> {
        Self::column_in(self.table(rv), column)
    }

    pub fn column_of(&self, table: &str, column: &str) -> ColumnKnowledge<'_> {
        Self::column_in(self.table_named(table), column)
    }

    fn column_in<'a>(table: Option<&'a Table>, column: &str) -> ColumnKnowledge<'a> {
        match table
            .and_then(|t| t.columns.iter().find(|(n, _)| n == column))
            .and_then(|(_, t)| t.as_ref())
        {
            Some(t) => ColumnKnowledge::Typed(t),
            None => ColumnKnowledge::Unknown,
        }
    }

    /// The labels of the enum type named `schema.name` or `name`, in order.
    pub fn enum_values(&self, name: &str) -> Option<&[String]> {
        let parts: Vec<&str> = name.split('.').collect();
        self.enums.get(&key_of_parts(&parts)?).map(Vec::as_slice)
    }

    /// Changes the model as `node` changes the schema. Statements it does not model
    /// leave it as it is.
    pub fn apply(&mut self, node: &NodeEnum) {
        match node {
            NodeEnum::CreateStmt(c) => {
                let Some(rv) = &c.relation else { return };
                let k = key(rv);
                if c.if_not_exists && self.tables.contains_key(&k) {
                    return;
                }
                let mut t = Table {
                    complete: c.inh_relations.is_empty()
                        && c.partbound.is_none()
                        && c.of_typename.is_none(),
                    ..Table::default()
                };
                for e in &c.table_elts {
                    match &e.node {
                        Some(NodeEnum::ColumnDef(col)) => t.columns.push((
                            col.colname.clone(),
                            col.type_name.as_ref().map(ColumnType::of),
                        )),
                        Some(NodeEnum::TableLikeClause(_)) => t.complete = false,
                        _ => {}
                    }
                }
                self.tables.insert(k, t);
            }
            NodeEnum::CreateTableAsStmt(c) => {
                if let Some(rv) = c.into.as_ref().and_then(|i| i.rel.as_ref()) {
                    self.tables.entry(key(rv)).or_default();
                }
            }
            NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectTable as i32 => {
                for parts in ast::drop_object_names(&d.objects) {
                    if let Some(k) = key_of_parts(&parts) {
                        self.tables.remove(&k);
                    }
                }
            }
            NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectType as i32 => {
                for parts in ast::drop_object_names(&d.objects) {
                    if let Some(k) = key_of_parts(&parts) {
                        self.enums.remove(&k);
                    }
                }
            }
            NodeEnum::RenameStmt(r) => self.rename(r),
            NodeEnum::AlterObjectSchemaStmt(a)
                if a.object_type == ObjectType::ObjectTable as i32 =>
            {
                if let Some(rv) = &a.relation {
                    if let Some(t) = self.tables.remove(&key(rv)) {
                        self.tables
                            .insert((a.newschema.clone(), rv.relname.clone()), t);
                    }
                }
            }
            NodeEnum::CreateEnumStmt(e) => {
                if let Some(k) = key_of_parts(&ast::dotted(&e.type_name)) {
                    let vals = ast::dotted(&e.vals).iter().map(|s| s.to_string()).collect();
                    self.enums.insert(k, vals);
                }
            }
            NodeEnum::AlterEnumStmt(e) => self.alter_enum(e),
            _ => {
                if let Some((a, rv)) = ast::alter_table(node) {
                    let k = self.resolve(&rv.schemaname, &rv.relname);
                    let Some(t) = k.and_then(|k| self.tables.get_mut(&k)) else {
                        return;
                    };
                    for cmd in ast::alter_cmds(a) {
                        if ast::is_subtype(cmd, AlterTableType::AtAddColumn) {
                            if let Some(col) = ast::cmd_column_def(cmd) {
                                if t.column_mut(&col.colname).is_none() {
                                    t.columns.push((
                                        col.colname.clone(),
                                        col.type_name.as_ref().map(ColumnType::of),
                                    ));
                                }
                            }
                        } else if ast::is_subtype(cmd, AlterTableType::AtDropColumn) {
                            t.columns.retain(|(n, _)| *n != cmd.name);
                        } else if ast::is_subtype(cmd, AlterTableType::AtAlterColumnType) {
                            let new = ast::cmd_column_def(cmd)
                                .and_then(|c| c.type_name.as_ref())
                                .map(ColumnType::of);
                            match t.column_mut(&cmd.name) {
                                Some(ty) => *ty = new,
                                None => t.columns.push((cmd.name.clone(), new)),
                            }
                        }
                    }
                }
            }
        }
    }

    fn rename(&mut self, r: &pg_query::protobuf::RenameStmt) {
        let Some(rv) = &r.relation else { return };
        let Some(k) = self.resolve(&rv.schemaname, &rv.relname) else {
            return;
        };
        if r.rename_type == ObjectType::ObjectTable as i32 {
            if let Some(t) = self.tables.remove(&k) {
                self.tables.insert((k.0, r.newname.clone()), t);
            }
        } else if r.rename_type == ObjectType::ObjectColumn as i32 {
            if let Some(t) = self.tables.get_mut(&k) {
                if let Some((n, _)) = t.columns.iter_mut().find(|(n, _)| *n == r.subname) {
                    *n = r.newname.clone();
                }
            }
        }
    }

    fn alter_enum(&mut self, e: &pg_query::protobuf::AlterEnumStmt) {
        let Some(k) = key_of_parts(&ast::dotted(&e.type_name)) else {
            return;
        };
        let Some(vals) = self.enums.get_mut(&k) else {
            return;
        };
        if !e.old_val.is_empty() {
            if let Some(v) = vals.iter_mut().find(|v| **v == e.old_val) {
                *v = e.new_val.clone();
            }
            return;
        }
        if vals.contains(&e.new_val) {
            return;
        }
        let at = match vals.iter().position(|v| *v == e.new_val_neighbor) {
            Some(i) if e.new_val_is_after => i + 1,
            Some(i) => i,
            None => vals.len(),
        };
        vals.insert(at, e.new_val.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(sql_type: &str) -> ColumnType {
        let m = crate::lint::testing::migration(&format!("CREATE TABLE t (c {sql_type});"), false);
        match SchemaModel::of([&m]).column_of("t", "c") {
            ColumnKnowledge::Typed(t) => t.clone(),
            ColumnKnowledge::Unknown => panic!("{sql_type}: not modelled"),
        }
    }

    #[test]
    fn normalises_types() {
        assert_eq!(ty("integer").display(), "int4");
        assert_eq!(ty("character varying(20)").display(), "varchar(20)");
        assert_eq!(ty("decimal(10, 2)").display(), "numeric(10,2)");
        assert_eq!(ty("text[]").display(), "text[]");
        assert_eq!(ty("app.money").display(), "app.money");
        assert_eq!(ty("timestamp with time zone").display(), "timestamptz");
    }

    #[test]
    fn real_rewrites() {
        for (old, new) in [
            ("uuid", "text"),
            ("text", "varchar(512)"),
            ("varchar(40)", "varchar(5)"),
            ("bigint", "text"),
            ("numeric", "text"),
            ("int", "bigint"),
            ("numeric", "numeric(10,2)"),
            ("numeric(10,2)", "numeric(12,3)"),
            ("numeric(10,2)", "numeric(8,2)"),
            ("varchar", "varchar(10)"),
            ("timestamp", "timestamptz"),
            ("json", "jsonb"),
            ("char(5)", "text"),
            ("varchar(10)[]", "text[]"),
        ] {
            assert!(rewrites(&ty(old), &ty(new)), "{old} → {new} rewrites");
        }
    }

    #[test]
    fn binary_coercible() {
        for (old, new) in [
            ("varchar(20)", "text"),
            ("varchar(20)", "varchar(40)"),
            ("varchar(20)", "varchar"),
            ("text", "varchar"),
            ("text", "text"),
            ("numeric(10,2)", "numeric"),
            ("numeric(10,2)", "numeric(14,2)"),
            ("numeric(10)", "numeric(12,0)"),
            ("timestamptz(3)", "timestamptz"),
            ("varbit(4)", "varbit(8)"),
        ] {
            assert!(!rewrites(&ty(old), &ty(new)), "{old} → {new} is free");
        }
    }

    #[test]
    fn follows_tables_columns_and_enums_through_statements() {
        let sql = "CREATE TABLE orders (id bigint, total numeric, label varchar(20));\n\
                   ALTER TABLE orders ADD COLUMN note text, ALTER COLUMN label TYPE varchar(40);\n\
                   ALTER TABLE orders RENAME COLUMN note TO remark;\n\
                   ALTER TABLE orders DROP COLUMN total;\n\
                   CREATE SCHEMA app; ALTER TABLE orders SET SCHEMA app;\n\
                   CREATE TYPE mood AS ENUM ('sad', 'happy');\n\
                   ALTER TYPE mood ADD VALUE 'ok' BEFORE 'happy';\n\
                   CREATE TABLE gone (id int); DROP TABLE gone;";
        let model = SchemaModel::of([&crate::lint::testing::migration(sql, false)]);
        let typed = |t: &str, c: &str| match model.column_of(t, c) {
            ColumnKnowledge::Typed(t) => Some(t.display()),
            ColumnKnowledge::Unknown => None,
        };
        assert_eq!(typed("app.orders", "label").as_deref(), Some("varchar(40)"));
        assert_eq!(typed("orders", "remark").as_deref(), Some("text"));
        assert_eq!(typed("app.orders", "total"), None);
        assert!(model.table_named("public.orders").is_none());
        assert!(model.table_named("gone").is_none());
        assert_eq!(
            model.enum_values("mood").unwrap(),
            ["sad".to_string(), "ok".into(), "happy".into()]
        );
    }
}
