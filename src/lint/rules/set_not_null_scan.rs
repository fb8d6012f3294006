//! `set-not-null-scan`: SET NOT NULL on an existing column scans the table under lock.

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
        // `SET NOT NULL`, or PostgreSQL 18's `ADD CONSTRAINT … NOT NULL col` (validated).
        let (column, loc) = if ast::is_subtype(cmd, AlterTableType::AtSetNotNull) {
            (cmd.name.clone(), -1)
        } else if ast::is_subtype(cmd, AlterTableType::AtAddConstraint) {
            match ast::cmd_constraint(cmd) {
                Some(c) if ast::is_contype(c, ConstrType::ConstrNotnull) && !c.skip_validation => {
                    (ast::dotted(&c.keys).join(", "), c.location)
                }
                _ => continue,
            }
        } else {
            continue;
        };
        let mut f = ctx.finding(
            "set-not-null-scan",
            loc,
            format!("SET NOT NULL on `{column}` scans all of `{table}` under ACCESS EXCLUSIVE, blocking reads and writes"),
            format!("add `CHECK ({column} IS NOT NULL) NOT VALID`, VALIDATE CONSTRAINT in a later migration, then SET NOT NULL (PostgreSQL 12+ skips the scan given the valid check) and drop the check: `pgrollout new --pattern add-not-null --table {table} --column {column}` writes the steps"),
        );
        f.table = Some(table.clone());
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "set-not-null-scan";

    #[test]
    fn err() {
        assert_eq!(
            at(
                &lint("SELECT 1;\nALTER TABLE users ALTER COLUMN email SET NOT NULL;"),
                ID
            ),
            vec![(2, 1)]
        );
    }

    #[test]
    fn ok() {
        let sql =
            "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n\
                   CREATE TABLE t (a int);\nALTER TABLE t ALTER a SET NOT NULL;";
        assert!(at(&lint(sql), ID).is_empty());
    }
}
