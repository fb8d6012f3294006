//! `require-unique-using-index`: ADD UNIQUE / PRIMARY KEY builds its index under lock.

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
        let cons: Vec<_> = if ast::is_subtype(cmd, AlterTableType::AtAddConstraint) {
            ast::cmd_constraint(cmd).into_iter().collect()
        } else if ast::is_subtype(cmd, AlterTableType::AtAddColumn) {
            ast::cmd_column_def(cmd)
                .map(|c| ast::constraints(&c.constraints).collect())
                .unwrap_or_default()
        } else {
            continue;
        };
        for c in cons {
            let kind = if ast::is_contype(c, ConstrType::ConstrPrimary) {
                "PRIMARY KEY"
            } else if ast::is_contype(c, ConstrType::ConstrUnique) {
                "UNIQUE"
            } else {
                continue;
            };
            // `USING INDEX existing_index` attaches an index built beforehand.
            if !c.indexname.is_empty() {
                continue;
            }
            let mut f = ctx.finding(
                "require-unique-using-index",
                c.location,
                format!("adding a {kind} constraint builds its index on `{table}` under ACCESS EXCLUSIVE, blocking reads and writes for the whole build"),
                format!("first CREATE UNIQUE INDEX CONCURRENTLY in a `-- migrate:up transaction:false` migration, then `ALTER TABLE {table} ADD CONSTRAINT <name> {kind} USING INDEX <index>`"),
            );
            f.table = Some(table.clone());
            out.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "require-unique-using-index";

    #[test]
    fn err() {
        assert_eq!(
            at(
                &lint("ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);"),
                ID
            ),
            vec![(1, 23)]
        );
        assert_eq!(
            at(&lint("ALTER TABLE users ADD PRIMARY KEY (id);"), ID),
            vec![(1, 23)]
        );
    }

    #[test]
    fn ok() {
        let sql = "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx;\n\
                   CREATE TABLE t (a int);\nALTER TABLE t ADD PRIMARY KEY (a);";
        assert!(at(&lint(sql), ID).is_empty());
    }
}
