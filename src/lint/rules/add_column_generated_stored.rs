//! `add-column-generated-stored`: adding a stored generated column rewrites the table.

use pg_query::protobuf::{AlterTableType, ConstrType};

use crate::lint::{ast, Finding, RuleContext};

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
            // PostgreSQL 18 VIRTUAL generated columns are computed on read: no rewrite.
            if !ast::is_contype(c, ConstrType::ConstrGenerated) || c.generated_kind == "v" {
                continue;
            }
            let mut f = ctx.finding(
                "add-column-generated-stored",
                c.location,
                format!("ADD COLUMN `{}` GENERATED … STORED computes every row, rewriting `{table}` under ACCESS EXCLUSIVE", col.colname),
                "add a plain column, fill it with a trigger for new rows and a batched backfill for old ones; or use a VIRTUAL generated column (PostgreSQL 18+)",
            );
            f.table = Some(table.clone());
            out.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "add-column-generated-stored";

    #[test]
    fn err() {
        let sql = "ALTER TABLE users ADD COLUMN lower_email text GENERATED ALWAYS AS (lower(email)) STORED;";
        assert_eq!(at(&lint(sql), ID), vec![(1, 47)]);
    }

    #[test]
    fn ok() {
        let sql = "ALTER TABLE users ADD COLUMN lower_email text GENERATED ALWAYS AS (lower(email)) VIRTUAL;\n\
                   CREATE TABLE t (a int, b int GENERATED ALWAYS AS (a * 2) STORED);";
        assert!(at(&lint(sql), ID).is_empty());
    }
}
