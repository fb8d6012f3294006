//! `prefer-identity`: serial types instead of identity columns. A serial's sequence is
//! a separate object with its own ownership and grants; an identity column is part of
//! the table and follows it.

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    for site in ast::new_columns(ctx.ast) {
        let Some(t) = &site.column.type_name else {
            continue;
        };
        if !ast::is_serial(t) {
            continue;
        }
        let base = ast::type_base(t);
        let int = if base.starts_with("big") || base == "serial8" {
            "bigint"
        } else {
            "bigint (not int: see prefer-bigint-over-int)"
        };
        let mut f = ctx.finding(
            "prefer-identity",
            t.location,
            format!(
                "column `{}` is {base}; identity columns are the standard replacement",
                site.column.colname
            ),
            format!(
                "declare `{}` as {int} GENERATED ALWAYS AS IDENTITY",
                site.column.colname
            ),
        );
        f.table = Some(ast::rv_name(site.table));
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "prefer-identity";

    #[test]
    fn err() {
        assert_eq!(
            at(&lint("CREATE TABLE t (\n  id bigserial PRIMARY KEY);"), ID),
            vec![(2, 6)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(
            &lint("CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);"),
            ID
        )
        .is_empty());
    }
}
