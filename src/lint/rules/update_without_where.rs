//! `update-without-where`: UPDATE without WHERE writes every row in one transaction.

use pg_query::NodeEnum;

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let NodeEnum::UpdateStmt(u) = ctx.ast else {
        return;
    };
    let Some(rv) = &u.relation else { return };
    if u.where_clause.is_some() || !u.from_clause.is_empty() || ctx.is_new_table(rv) {
        return;
    }
    let table = ast::rv_name(rv);
    let mut f = ctx.finding(
        "update-without-where",
        -1,
        format!("UPDATE without WHERE rewrites every row of `{table}` in one transaction, locking each row until commit"),
        "backfill in batches (`WHERE id BETWEEN …`) in a `-- migrate:up transaction:false` migration, or add the WHERE clause you meant",
    );
    f.table = Some(table);
    out.push(f);
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "update-without-where";

    #[test]
    fn err() {
        assert_eq!(
            at(&lint("UPDATE users SET active = true;"), ID),
            vec![(1, 1)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(&lint("UPDATE users SET active = true WHERE id = 1;\nCREATE TABLE t (a int);\nUPDATE t SET a = 1;"), ID).is_empty());
    }
}
