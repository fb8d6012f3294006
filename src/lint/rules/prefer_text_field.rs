//! `prefer-text-field`: `varchar(n)` instead of `text`. The length limit gains nothing in
//! PostgreSQL, and lowering it later rescans or rewrites the table.

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    for (column, t, table) in ast::column_types(ctx.ast) {
        if !(ast::is_builtin(t) && ast::type_base(t) == "varchar" && !t.typmods.is_empty()) {
            continue;
        }
        let mut f = ctx.finding(
            "prefer-text-field",
            t.location,
            format!("column `{column}` is varchar(n): changing the limit later can lock the table for a rewrite"),
            format!("declare `{column}` as text, with `CHECK (char_length({column}) <= n)` if the limit matters (a CHECK can be replaced NOT VALID)"),
        );
        f.table = table.map(ast::rv_name);
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "prefer-text-field";

    #[test]
    fn err() {
        assert_eq!(
            at(&lint("CREATE TABLE u (email varchar(255));"), ID),
            vec![(1, 23)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(&lint("CREATE TABLE u (email text, name varchar);"), ID).is_empty());
    }
}
