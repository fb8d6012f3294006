//! `add-column-volatile-default`: ADD COLUMN with a volatile default rewrites the table.
//!
//! Since PostgreSQL 11 a constant or stable default (`now()`, `'x'`, `0`) is stored once
//! in the catalog; a volatile one (`gen_random_uuid()`, `clock_timestamp()`) must be
//! computed per row, which rewrites the table. Functions this rule does not know are
//! assumed volatile, as PostgreSQL assumes for functions declared without a volatility.

use pg_query::protobuf::{AlterTableType, ConstrType, Node};
use pg_query::NodeEnum;

use crate::lint::{ast, Finding, RuleContext};

/// Built-in functions that are not volatile and commonly appear in defaults.
const NON_VOLATILE: &[&str] = &[
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_date",
    "current_timestamp",
    "localtimestamp",
    "lower",
    "upper",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "concat",
    "length",
    "abs",
    "round",
    "trim",
    "replace",
    "to_char",
    "to_timestamp",
    "to_date",
    "date_trunc",
    "make_interval",
    "make_date",
    "jsonb_build_object",
    "jsonb_build_array",
    "json_build_object",
    "json_build_array",
    "to_jsonb",
    "to_json",
    "array_fill",
    "md5",
    "int4range",
    "int8range",
    "tstzrange",
    "daterange",
    "interval",
];

fn is_volatile(node: &Node) -> bool {
    let all = |nodes: &[Node]| nodes.iter().any(is_volatile);
    match &node.node {
        None | Some(NodeEnum::AConst(_)) | Some(NodeEnum::SqlvalueFunction(_)) => false,
        Some(NodeEnum::TypeCast(c)) => c.arg.as_deref().is_some_and(is_volatile),
        Some(NodeEnum::AExpr(e)) => {
            e.lexpr.as_deref().is_some_and(is_volatile)
                || e.rexpr.as_deref().is_some_and(is_volatile)
        }
        Some(NodeEnum::BoolExpr(b)) => all(&b.args),
        Some(NodeEnum::CoalesceExpr(c)) => all(&c.args),
        Some(NodeEnum::MinMaxExpr(m)) => all(&m.args),
        Some(NodeEnum::AArrayExpr(a)) => all(&a.elements),
        Some(NodeEnum::List(l)) => all(&l.items),
        Some(NodeEnum::FuncCall(f)) => {
            let name = ast::dotted(&f.funcname);
            let builtin = name.len() == 1 || name.first() == Some(&"pg_catalog");
            let known = name
                .last()
                .is_some_and(|n| NON_VOLATILE.contains(&n.to_ascii_lowercase().as_str()));
            !(builtin && known) || all(&f.args)
        }
        _ => true,
    }
}

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let Some((a, rv)) = ast::alter_table(ctx.ast) else {
        return;
    };
    if ctx.is_new_table(rv) {
        return;
    }
    let table = ast::rv_name(rv);
    for cmd in ast::alter_cmds(a) {
        if !ast::is_subtype(cmd, AlterTableType::AtAddColumn) {
            continue;
        }
        let Some(col) = ast::cmd_column_def(cmd) else {
            continue;
        };
        for c in ast::constraints(&col.constraints) {
            if !ast::is_contype(c, ConstrType::ConstrDefault)
                || !c.raw_expr.as_deref().is_some_and(is_volatile)
            {
                continue;
            }
            let mut f = ctx.finding(
                "add-column-volatile-default",
                c.location,
                format!("ADD COLUMN `{}` with a volatile default rewrites `{table}` under ACCESS EXCLUSIVE", col.colname),
                "add the column without a default (or with a constant one), SET DEFAULT for new rows, then backfill existing rows in batches",
            );
            f.table = Some(table.clone());
            out.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "add-column-volatile-default";

    #[test]
    fn err() {
        assert_eq!(
            at(
                &lint("ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();"),
                ID
            ),
            vec![(1, 41)]
        );
        assert_eq!(
            at(
                &lint("ALTER TABLE users ADD COLUMN n int DEFAULT my_func() + 1;"),
                ID
            ),
            vec![(1, 36)]
        );
    }

    #[test]
    fn ok_constant_or_stable() {
        let sql = "ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT now();\n\
                   ALTER TABLE users ADD COLUMN status text DEFAULT 'new'::text;\n\
                   ALTER TABLE users ADD COLUMN at timestamptz DEFAULT CURRENT_TIMESTAMP;\n\
                   ALTER TABLE users ADD COLUMN tags text[] DEFAULT ARRAY[]::text[];\n\
                   CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN u uuid DEFAULT gen_random_uuid();";
        assert!(at(&lint(sql), ID).is_empty());
    }
}
