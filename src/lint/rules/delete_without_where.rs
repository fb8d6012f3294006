//! `delete-without-where`: DELETE without WHERE deletes every row.

use pg_query::NodeEnum;

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let NodeEnum::DeleteStmt(d) = ctx.ast else {
        return;
    };
    let Some(rv) = &d.relation else { return };
    if d.where_clause.is_some() || ctx.is_new_table(rv) {
        return;
    }
    let table = ast::rv_name(rv);
    let mut f = ctx.finding(
        "delete-without-where",
        -1,
        format!("DELETE without WHERE deletes every row of `{table}`, locking each until commit"),
        "add the WHERE clause that selects the rows to delete; to empty a table on purpose, say why with `-- pgrollout:allow delete-without-where <reason>`",
    );
    f.table = Some(table);
    out.push(f);
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "delete-without-where";

    #[test]
    fn err() {
        assert_eq!(
            at(&lint("SELECT 1;\nDELETE FROM sessions;"), ID),
            vec![(2, 1)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(&lint("DELETE FROM sessions WHERE expires_at < now();\nCREATE TABLE t (a int);\nDELETE FROM t;"), ID).is_empty());
    }
}
