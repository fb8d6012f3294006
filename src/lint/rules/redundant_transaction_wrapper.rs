//! `redundant-transaction-wrapper`: the file wraps itself in BEGIN … COMMIT although
//! pgrollout already runs it in one transaction. Harmless (pgrollout recognises the
//! wrapper), but the file then behaves differently when run with psql by hand.

use crate::lint::{Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    if !ctx.in_transaction() || ctx.tx().wrapper.map(|(b, _)| b) != Some(ctx.index) {
        return;
    }
    out.push(ctx.finding(
        "redundant-transaction-wrapper",
        -1,
        "the file wraps itself in BEGIN … COMMIT; pgrollout already runs the migration in one transaction",
        "remove the BEGIN and COMMIT lines",
    ));
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint, lint_no_tx};
    const ID: &str = "redundant-transaction-wrapper";

    #[test]
    fn err() {
        assert_eq!(
            at(
                &lint("-- wrapped\nBEGIN;\nCREATE TABLE a (id bigint);\nCOMMIT;\n"),
                ID
            ),
            vec![(2, 1)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(
            &lint_no_tx("BEGIN;\nCREATE TABLE a (id bigint);\nCOMMIT;"),
            ID
        )
        .is_empty());
        assert!(at(&lint("CREATE TABLE a (id bigint);"), ID).is_empty());
    }
}
