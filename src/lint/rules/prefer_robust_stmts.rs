//! `prefer-robust-stmts`: in a `transaction:false` migration each statement commits on
//! its own, so after a failure half-way the migration is re-run from the top; IF [NOT]
//! EXISTS makes the statements that already ran harmless the second time.

use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    if ctx.in_transaction() || ctx.tx().depth_before[ctx.index] > 0 {
        return;
    }
    let missing = match ctx.ast {
        NodeEnum::CreateStmt(c) => (!c.if_not_exists).then_some("CREATE TABLE IF NOT EXISTS"),
        // An unnamed index cannot say IF NOT EXISTS, and a retry would build a second one.
        NodeEnum::IndexStmt(i) => (!i.if_not_exists).then_some(if i.idxname.is_empty() {
            "a named index with IF NOT EXISTS"
        } else {
            "CREATE INDEX … IF NOT EXISTS"
        }),
        NodeEnum::DropStmt(d) => (!d.missing_ok).then_some("DROP … IF EXISTS"),
        NodeEnum::DropdbStmt(d) => (!d.missing_ok).then_some("DROP DATABASE IF EXISTS"),
        NodeEnum::CreateSeqStmt(s) => (!s.if_not_exists).then_some("CREATE SEQUENCE IF NOT EXISTS"),
        NodeEnum::CreateSchemaStmt(s) => {
            (!s.if_not_exists).then_some("CREATE SCHEMA IF NOT EXISTS")
        }
        NodeEnum::CreateExtensionStmt(s) => {
            (!s.if_not_exists).then_some("CREATE EXTENSION IF NOT EXISTS")
        }
        NodeEnum::AlterEnumStmt(e) if e.old_val.is_empty() => {
            (!e.skip_if_new_val_exists).then_some("ALTER TYPE … ADD VALUE IF NOT EXISTS")
        }
        _ => match ast::alter_table(ctx.ast) {
            Some((a, _)) => ast::alter_cmds(a).find_map(|c| {
                if ast::is_subtype(c, AlterTableType::AtAddColumn) && !c.missing_ok {
                    Some("ADD COLUMN IF NOT EXISTS")
                } else if ast::is_subtype(c, AlterTableType::AtDropColumn) && !c.missing_ok {
                    Some("DROP COLUMN IF EXISTS")
                } else {
                    None
                }
            }),
            None => None,
        },
    };
    if let Some(form) = missing {
        out.push(ctx.finding(
            "prefer-robust-stmts",
            -1,
            "this migration runs outside a transaction, so a retry after a failure re-runs this statement, which then fails",
            format!("use {form}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint, lint_no_tx};
    const ID: &str = "prefer-robust-stmts";

    #[test]
    fn err() {
        let sql = "CREATE INDEX CONCURRENTLY i ON t (a);\nDROP INDEX CONCURRENTLY j;\nALTER TABLE t ADD COLUMN b int;";
        assert_eq!(at(&lint_no_tx(sql), ID), vec![(1, 1), (2, 1), (3, 1)]);
    }

    #[test]
    fn ok() {
        let sql = "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\nDROP INDEX CONCURRENTLY IF EXISTS j;\n\
                   ALTER TABLE t ADD COLUMN IF NOT EXISTS b int;\nBEGIN;\nCREATE TABLE x (id bigint);\nCOMMIT;";
        assert!(at(&lint_no_tx(sql), ID).is_empty());
        assert!(at(&lint("CREATE TABLE x (id bigint);"), ID).is_empty());
    }
}
