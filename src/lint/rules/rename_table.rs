//! `rename-table`: renaming a table breaks code still using the old name.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let NodeEnum::RenameStmt(r) = ctx.ast else {
        return;
    };
    if r.rename_type != ObjectType::ObjectTable as i32 {
        return;
    }
    let Some(rv) = &r.relation else { return };
    if ctx.is_new_table(rv) {
        return;
    }
    let table = ast::rv_name(rv);
    let mut f = ctx.finding(
        "rename-table",
        -1,
        format!("renaming `{table}` to `{}` breaks code still using the old name", r.newname),
        format!("rename, then `CREATE VIEW {table} AS SELECT * FROM {}` so old code keeps working until it is deployed away; drop the view later", r.newname),
    );
    f.table = Some(table);
    out.push(f);
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "rename-table";

    #[test]
    fn err() {
        assert_eq!(
            at(&lint("\n ALTER TABLE users RENAME TO accounts;"), ID),
            vec![(2, 2)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(
            &lint(
                "CREATE TABLE t (a int);\nALTER TABLE t RENAME TO u;\nALTER INDEX i RENAME TO j;"
            ),
            ID
        )
        .is_empty());
    }
}
