//! Small helpers over the `pg_query` parse tree shared by several rules.

use pg_query::protobuf::{
    AlterTableCmd, AlterTableStmt, AlterTableType, ColumnDef, ConstrType, Constraint, Node,
    ObjectType, RangeVar, TypeName,
};
use pg_query::NodeEnum;

/// `schema.name` or `name`, as written.
pub fn rv_name(rv: &RangeVar) -> String {
    if rv.schemaname.is_empty() {
        rv.relname.clone()
    } else {
        format!("{}.{}", rv.schemaname, rv.relname)
    }
}

/// The dotted name held by a list of `String` nodes (`DROP TABLE a.b` → `a.b`).
pub fn dotted(list: &[Node]) -> Vec<&str> {
    list.iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
            _ => None,
        })
        .collect()
}

/// The objects of a DROP statement as name parts (each object is a `List` of `String`s,
/// or a bare `String` for schemas and databases).
pub fn drop_object_names(objects: &[Node]) -> Vec<Vec<&str>> {
    objects
        .iter()
        .filter_map(|o| match &o.node {
            Some(NodeEnum::List(l)) => Some(dotted(&l.items)),
            Some(NodeEnum::String(s)) => Some(vec![s.sval.as_str()]),
            _ => None,
        })
        .collect()
}

/// The table a statement creates, if it creates one.
pub fn created_table(node: &NodeEnum) -> Option<&RangeVar> {
    match node {
        NodeEnum::CreateStmt(c) => c.relation.as_ref(),
        NodeEnum::CreateTableAsStmt(c) => c.into.as_ref().and_then(|i| i.rel.as_ref()),
        _ => None,
    }
}

/// `ALTER TABLE` on a table (not an index, view or sequence), with its commands.
pub fn alter_table(node: &NodeEnum) -> Option<(&AlterTableStmt, &RangeVar)> {
    match node {
        NodeEnum::AlterTableStmt(a) if a.objtype == ObjectType::ObjectTable as i32 => {
            a.relation.as_ref().map(|rv| (a, rv))
        }
        _ => None,
    }
}

pub fn alter_cmds(a: &AlterTableStmt) -> impl Iterator<Item = &AlterTableCmd> {
    a.cmds.iter().filter_map(|c| match &c.node {
        Some(NodeEnum::AlterTableCmd(cmd)) => Some(&**cmd),
        _ => None,
    })
}

pub fn is_subtype(cmd: &AlterTableCmd, t: AlterTableType) -> bool {
    cmd.subtype == t as i32
}

pub fn cmd_column_def(cmd: &AlterTableCmd) -> Option<&ColumnDef> {
    match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
        Some(NodeEnum::ColumnDef(c)) => Some(c),
        _ => None,
    }
}

pub fn cmd_constraint(cmd: &AlterTableCmd) -> Option<&Constraint> {
    match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
        Some(NodeEnum::Constraint(c)) => Some(c),
        _ => None,
    }
}

pub fn constraints(list: &[Node]) -> impl Iterator<Item = &Constraint> {
    list.iter().filter_map(|n| match &n.node {
        Some(NodeEnum::Constraint(c)) => Some(&**c),
        _ => None,
    })
}

pub fn is_contype(c: &Constraint, t: ConstrType) -> bool {
    c.contype == t as i32
}

/// Where a column definition comes from, for the hygiene rules on types.
pub struct ColumnSite<'a> {
    pub column: &'a ColumnDef,
    pub table: &'a RangeVar,
    /// Table-level constraints of a CREATE TABLE (so a rule can tell key columns).
    pub table_constraints: Vec<&'a Constraint>,
}

/// Every column definition a statement introduces: CREATE TABLE columns and
/// ALTER TABLE … ADD COLUMN.
pub fn new_columns(node: &NodeEnum) -> Vec<ColumnSite<'_>> {
    let mut out = Vec::new();
    match node {
        NodeEnum::CreateStmt(c) => {
            let Some(table) = c.relation.as_ref() else {
                return out;
            };
            let table_constraints: Vec<&Constraint> = constraints(&c.table_elts)
                .chain(constraints(&c.constraints))
                .collect();
            for e in &c.table_elts {
                if let Some(NodeEnum::ColumnDef(col)) = &e.node {
                    out.push(ColumnSite {
                        column: col,
                        table,
                        table_constraints: table_constraints.clone(),
                    });
                }
            }
        }
        _ => {
            if let Some((a, table)) = alter_table(node) {
                for cmd in alter_cmds(a) {
                    if is_subtype(cmd, AlterTableType::AtAddColumn) {
                        if let Some(col) = cmd_column_def(cmd) {
                            out.push(ColumnSite {
                                column: col,
                                table,
                                table_constraints: vec![],
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// Every type a statement writes for a column: new columns and ALTER COLUMN … TYPE.
pub fn column_types(node: &NodeEnum) -> Vec<(&str, &TypeName, Option<&RangeVar>)> {
    let mut out: Vec<(&str, &TypeName, Option<&RangeVar>)> = new_columns(node)
        .into_iter()
        .filter_map(|s| {
            s.column
                .type_name
                .as_ref()
                .map(|t| (s.column.colname.as_str(), t, Some(s.table)))
        })
        .collect();
    if let Some((a, table)) = alter_table(node) {
        for cmd in alter_cmds(a) {
            if is_subtype(cmd, AlterTableType::AtAlterColumnType) {
                if let Some(t) = cmd_column_def(cmd).and_then(|c| c.type_name.as_ref()) {
                    out.push((cmd.name.as_str(), t, Some(table)));
                }
            }
        }
    }
    out
}

/// The type's own name, lowercased, without `pg_catalog.` (`integer` → `int4`).
pub fn type_base(t: &TypeName) -> String {
    dotted(&t.names)
        .last()
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether the type is one of PostgreSQL's own (`pg_catalog.x` or an unqualified name).
pub fn is_builtin(t: &TypeName) -> bool {
    let names = dotted(&t.names);
    names.len() == 1 || names.first() == Some(&"pg_catalog")
}

pub fn is_serial(t: &TypeName) -> bool {
    dotted(&t.names).len() == 1
        && matches!(
            type_base(t).as_str(),
            "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2"
        )
}

/// Statements that change the schema (as opposed to reading or writing rows, setting a
/// variable, or controlling the transaction).
pub fn is_ddl(node: &NodeEnum) -> bool {
    !matches!(
        node,
        NodeEnum::SelectStmt(_)
            | NodeEnum::InsertStmt(_)
            | NodeEnum::UpdateStmt(_)
            | NodeEnum::DeleteStmt(_)
            | NodeEnum::MergeStmt(_)
            | NodeEnum::VariableSetStmt(_)
            | NodeEnum::VariableShowStmt(_)
            | NodeEnum::TransactionStmt(_)
            | NodeEnum::CopyStmt(_)
            | NodeEnum::ExplainStmt(_)
            | NodeEnum::CallStmt(_)
            | NodeEnum::DoStmt(_)
            | NodeEnum::LockStmt(_)
            | NodeEnum::NotifyStmt(_)
            | NodeEnum::ListenStmt(_)
            | NodeEnum::UnlistenStmt(_)
            | NodeEnum::CheckPointStmt(_)
            | NodeEnum::DiscardStmt(_)
            | NodeEnum::VacuumStmt(_)
    )
}

/// Whether a list of `DefElem` options contains `name` (`REINDEX (CONCURRENTLY)`,
/// `VACUUM (FULL)`) and it is not switched off (`(FULL false)`).
pub fn has_option(options: &[Node], name: &str) -> bool {
    options.iter().any(|o| match &o.node {
        Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case(name) => {
            match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
                Some(NodeEnum::Boolean(b)) => b.boolval,
                Some(NodeEnum::String(s)) => {
                    !matches!(s.sval.to_ascii_lowercase().as_str(), "false" | "off" | "0")
                }
                Some(NodeEnum::Integer(i)) => i.ival != 0,
                _ => true,
            }
        }
        _ => false,
    })
}
