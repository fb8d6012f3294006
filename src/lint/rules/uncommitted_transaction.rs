//! `uncommitted-transaction`: a BEGIN that no COMMIT follows, in a migration that
//! manages its own transactions (`transaction:false`): the work is rolled back when the
//! session ends. (In a transactional migration any BEGIN is `transaction-nesting`.)

use crate::lint::{Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    if ctx.in_transaction() || ctx.tx().unclosed_begin != Some(ctx.index) {
        return;
    }
    out.push(ctx.finding(
        "uncommitted-transaction",
        -1,
        "BEGIN is never committed: everything after it is rolled back when the session ends",
        "add COMMIT after the last statement of the transaction",
    ));
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint_no_tx};
    const ID: &str = "uncommitted-transaction";

    #[test]
    fn err() {
        assert_eq!(
            at(
                &lint_no_tx("SELECT 1;\nBEGIN;\nUPDATE t SET a = 1 WHERE b;"),
                ID
            ),
            vec![(2, 1)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(
            &lint_no_tx("BEGIN;\nUPDATE t SET a = 1 WHERE b;\nCOMMIT;"),
            ID
        )
        .is_empty());
    }
}
