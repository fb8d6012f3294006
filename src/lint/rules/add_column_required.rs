//! `add-column-required`: ADD COLUMN … NOT NULL without a default fails on a non-empty
//! table, and breaks INSERTs of code that does not know the column.

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
        let has = |t: ConstrType| ast::constraints(&col.constraints).any(|c| ast::is_contype(c, t));
        let not_null =
            col.is_not_null || has(ConstrType::ConstrNotnull) || has(ConstrType::ConstrPrimary);
        let filled = has(ConstrType::ConstrDefault)
            || has(ConstrType::ConstrIdentity)
            || has(ConstrType::ConstrGenerated)
            || col.type_name.as_ref().is_some_and(ast::is_serial);
        if !not_null || filled {
            continue;
        }
        let mut f = ctx.finding(
            "add-column-required",
            col.location,
            format!("ADD COLUMN `{}` NOT NULL without a default fails if `{table}` has rows, and breaks INSERTs from code that does not set it", col.colname),
            format!("add `{}` with a DEFAULT, or add it nullable, backfill, then make it NOT NULL with `pgrollout new --pattern add-not-null --table {table} --column {}`", col.colname, col.colname),
        );
        f.table = Some(table.clone());
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "add-column-required";

    #[test]
    fn err() {
        assert_eq!(
            at(
                &lint("ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL;"),
                ID
            ),
            vec![(1, 30)]
        );
    }

    #[test]
    fn ok() {
        let sql = "ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true;\n\
                   ALTER TABLE users ADD COLUMN note text;\n\
                   CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b int NOT NULL;";
        assert!(at(&lint(sql), ID).is_empty());
    }
}
