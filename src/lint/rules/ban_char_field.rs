//! `ban-char-field`: `char(n)` pads values with blanks and compares surprisingly.

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    for (column, t, table) in ast::column_types(ctx.ast) {
        // `character(n)` parses as pg_catalog.bpchar; the one-byte internal type `"char"` does not.
        if !(ast::is_builtin(t) && ast::type_base(t) == "bpchar") {
            continue;
        }
        let mut f = ctx.finding(
            "ban-char-field",
            t.location,
            format!("column `{column}` is char(n), which pads values with blanks"),
            format!(
                "declare `{column}` as text (add a CHECK on its length if the length is fixed)"
            ),
        );
        f.table = table.map(ast::rv_name);
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "ban-char-field";

    #[test]
    fn err() {
        assert_eq!(
            at(&lint("CREATE TABLE c (code char(2), x character(3));"), ID),
            vec![(1, 22), (1, 33)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(&lint("CREATE TABLE c (code text, flag \"char\");"), ID).is_empty());
    }
}
