//! `ban-drop-column`: DROP COLUMN breaks code that still reads or writes the column.

use pg_query::protobuf::AlterTableType;

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
        if ast::is_subtype(cmd, AlterTableType::AtDropColumn) {
            let mut f = ctx.finding(
                "ban-drop-column",
                -1,
                format!("DROP COLUMN `{}` deletes the column's data from `{table}`; code still selecting or inserting it fails", cmd.name),
                format!("first deploy code that no longer uses `{}`, then drop it in a later migration: `pgrollout new --pattern drop-column --table {table} --column {}` writes the steps", cmd.name, cmd.name),
            );
            f.table = Some(table.clone());
            out.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "ban-drop-column";

    #[test]
    fn err() {
        assert_eq!(
            at(&lint("-- c\n ALTER TABLE users DROP COLUMN email;"), ID),
            vec![(2, 2)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(&lint("CREATE TABLE t (a int, b int);\nALTER TABLE t DROP COLUMN b;\nALTER TABLE u ADD COLUMN c text;"), ID).is_empty());
    }
}
