//! `rename-column`: renaming a column breaks code still using the old name.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let NodeEnum::RenameStmt(r) = ctx.ast else {
        return;
    };
    if r.rename_type != ObjectType::ObjectColumn as i32 {
        return;
    }
    let Some(rv) = &r.relation else { return };
    if ctx.is_new_table(rv) {
        return;
    }
    let table = ast::rv_name(rv);
    let mut f = ctx.finding(
        "rename-column",
        -1,
        format!("renaming column `{}` of `{table}` to `{}` breaks code still using the old name", r.subname, r.newname),
        format!("add `{}` as a new column, keep both in sync, backfill, move reads over, then drop `{}` in a later migration: `pgrollout new --pattern rename-column --table {table} --column {} --to {}` writes the steps", r.newname, r.subname, r.subname, r.newname),
    );
    f.table = Some(table);
    out.push(f);
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "rename-column";

    #[test]
    fn err() {
        assert_eq!(
            at(&lint("ALTER TABLE users RENAME COLUMN mail TO email;"), ID),
            vec![(1, 1)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(
            &lint(
                "CREATE TABLE t (a int);\nALTER TABLE t RENAME a TO b;\nALTER TABLE u RENAME TO v;"
            ),
            ID
        )
        .is_empty());
    }
}
