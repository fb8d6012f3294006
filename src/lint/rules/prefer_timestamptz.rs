//! `prefer-timestamptz`: `timestamp` (without time zone) drops the UTC offset.

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    for (column, t, table) in ast::column_types(ctx.ast) {
        if !(ast::is_builtin(t) && ast::type_base(t) == "timestamp") {
            continue;
        }
        let mut f = ctx.finding(
            "prefer-timestamptz",
            t.location,
            format!("column `{column}` is timestamp without time zone: values lose their UTC offset and depend on each client's TimeZone"),
            format!("declare `{column}` as timestamptz"),
        );
        f.table = table.map(ast::rv_name);
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "prefer-timestamptz";

    #[test]
    fn err() {
        let sql =
            "CREATE TABLE e (\n  at timestamp NOT NULL,\n  b timestamp(3) without time zone);";
        assert_eq!(at(&lint(sql), ID), vec![(2, 6), (3, 5)]);
        assert_eq!(
            at(&lint("ALTER TABLE e ALTER at TYPE timestamp;"), ID),
            vec![(1, 29)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(
            &lint("CREATE TABLE e (at timestamptz, b timestamp with time zone);"),
            ID
        )
        .is_empty());
    }
}
