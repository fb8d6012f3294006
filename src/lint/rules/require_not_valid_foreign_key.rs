//! `require-not-valid-foreign-key`: a new foreign key on an existing table is validated
//! by a scan while writes to both tables wait.

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
        let fks: Vec<_> = if ast::is_subtype(cmd, AlterTableType::AtAddConstraint) {
            ast::cmd_constraint(cmd).into_iter().collect()
        } else if ast::is_subtype(cmd, AlterTableType::AtAddColumn) {
            ast::cmd_column_def(cmd)
                .map(|c| ast::constraints(&c.constraints).collect())
                .unwrap_or_default()
        } else {
            continue;
        };
        for c in fks {
            if !ast::is_contype(c, ConstrType::ConstrForeign) || c.skip_validation {
                continue;
            }
            let referenced = c.pktable.as_ref().map(ast::rv_name).unwrap_or_default();
            let name = if c.conname.is_empty() {
                "fk".to_string()
            } else {
                c.conname.clone()
            };
            let columns = match ast::dotted(&c.fk_attrs).join(",") {
                s if s.is_empty() => match ast::cmd_column_def(cmd) {
                    Some(col) => col.colname.clone(),
                    None => "<column>".into(),
                },
                s => s,
            };
            let mut f = ctx.finding(
                "require-not-valid-foreign-key",
                c.location,
                format!("adding a foreign key to `{table}` scans it to validate, blocking writes to `{table}` and `{referenced}` (SHARE ROW EXCLUSIVE) until done"),
                format!("add the constraint NOT VALID, then `ALTER TABLE {table} VALIDATE CONSTRAINT {name}` in a later migration (validation only takes SHARE UPDATE EXCLUSIVE): `pgrollout new --pattern add-foreign-key --table {table} --column {columns} --references {referenced}` writes both"),
            );
            f.table = Some(table.clone());
            out.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "require-not-valid-foreign-key";

    #[test]
    fn err() {
        let sql = "ALTER TABLE orders\n  ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);";
        assert_eq!(at(&lint(sql), ID), vec![(2, 7)]);
        assert_eq!(
            at(
                &lint("ALTER TABLE orders ADD COLUMN user_id bigint REFERENCES users;"),
                ID
            ),
            vec![(1, 46)]
        );
    }

    #[test]
    fn ok() {
        let sql = "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\n\
                   CREATE TABLE t (a bigint);\nALTER TABLE t ADD FOREIGN KEY (a) REFERENCES users;";
        assert!(at(&lint(sql), ID).is_empty());
    }
}
