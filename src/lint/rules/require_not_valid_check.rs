//! `require-not-valid-check`: a new CHECK constraint on an existing table is validated by
//! a scan under ACCESS EXCLUSIVE.

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
        if !ast::is_subtype(cmd, AlterTableType::AtAddConstraint) {
            continue;
        }
        let Some(c) = ast::cmd_constraint(cmd) else {
            continue;
        };
        if !ast::is_contype(c, ConstrType::ConstrCheck) || c.skip_validation {
            continue;
        }
        let name = if c.conname.is_empty() {
            "<name>".to_string()
        } else {
            c.conname.clone()
        };
        let mut f = ctx.finding(
            "require-not-valid-check",
            c.location,
            format!("adding a CHECK constraint scans `{table}` under ACCESS EXCLUSIVE, blocking reads and writes until every row is checked"),
            format!("add the constraint NOT VALID, then `ALTER TABLE {table} VALIDATE CONSTRAINT {name}` in a later migration: `pgrollout new --pattern add-check --table {table} --name {name} --check '<expression>'` writes both"),
        );
        f.table = Some(table.clone());
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "require-not-valid-check";

    #[test]
    fn err() {
        assert_eq!(
            at(
                &lint("ALTER TABLE users ADD CONSTRAINT age_ok CHECK (age >= 0);"),
                ID
            ),
            vec![(1, 23)]
        );
    }

    #[test]
    fn ok() {
        let sql = "ALTER TABLE users ADD CONSTRAINT age_ok CHECK (age >= 0) NOT VALID;\n\
                   ALTER TABLE users VALIDATE CONSTRAINT age_ok;\n\
                   CREATE TABLE t (a int);\nALTER TABLE t ADD CHECK (a > 0);";
        assert!(at(&lint(sql), ID).is_empty());
    }
}
