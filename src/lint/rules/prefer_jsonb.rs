//! `prefer-jsonb`: `json` has no equality operator (so no DISTINCT, GROUP BY, UNION) and
//! no GIN indexing; `jsonb` has both.

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    for (column, t, table) in ast::column_types(ctx.ast) {
        if !(ast::is_builtin(t) && ast::type_base(t) == "json") {
            continue;
        }
        let mut f = ctx.finding(
            "prefer-jsonb",
            t.location,
            format!("column `{column}` is json: it has no equality operator (DISTINCT, GROUP BY and UNION fail) and cannot be GIN-indexed"),
            format!("declare `{column}` as jsonb"),
        );
        f.table = table.map(ast::rv_name);
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "prefer-jsonb";

    #[test]
    fn err() {
        assert_eq!(
            at(&lint("ALTER TABLE e ADD COLUMN payload json;"), ID),
            vec![(1, 34)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(&lint("ALTER TABLE e ADD COLUMN payload jsonb;"), ID).is_empty());
    }
}
