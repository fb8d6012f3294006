//! `transaction-nesting`: BEGIN/COMMIT that nests, or that ends the transaction the
//! runner opened for the migration half-way.

use crate::lint::{Finding, RuleContext};
use crate::sql::TxControl;

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let Some(tx) = ctx.statement.tx_control else {
        return;
    };
    let facts = ctx.tx();
    let (message, fix) = if ctx.in_transaction() {
        if facts
            .wrapper
            .is_some_and(|(b, c)| ctx.index == b || ctx.index == c)
        {
            return; // A whole-file wrapper: see `redundant-transaction-wrapper`.
        }
        match tx {
            TxControl::Begin => (
                "BEGIN inside the transaction pgrollout opens for this migration (PostgreSQL ignores it with a warning)",
                "remove it: the whole migration already runs in one transaction",
            ),
            TxControl::Commit | TxControl::Rollback => (
                "COMMIT/ROLLBACK ends the transaction pgrollout opened for this migration half-way: the statements after it, and the migration's record, are no longer atomic with those before",
                "remove it; to control transactions yourself, mark the file `-- migrate:up transaction:false`",
            ),
            TxControl::Other => (
                "two-phase commit and chained transactions cannot be part of a migration",
                "remove the statement",
            ),
            TxControl::Savepoint | TxControl::Release | TxControl::RollbackTo => return,
        }
    } else {
        let open = facts.depth_before[ctx.index] > 0;
        match tx {
            TxControl::Begin if open => (
                "BEGIN while a transaction is already open: PostgreSQL has no nested transactions and ignores it",
                "remove it, or COMMIT the open transaction first; use SAVEPOINT for a nested scope",
            ),
            TxControl::Commit | TxControl::Rollback if !open => (
                "COMMIT/ROLLBACK without a BEGIN: there is no transaction to end",
                "remove it, or add the BEGIN it belongs to",
            ),
            TxControl::Savepoint | TxControl::Release | TxControl::RollbackTo if !open => (
                "savepoints only work inside a transaction block; here there is none",
                "open the transaction with BEGIN first, or remove the savepoint",
            ),
            TxControl::Other => (
                "two-phase commit and chained transactions cannot be part of a migration",
                "remove the statement",
            ),
            _ => return,
        }
    };
    out.push(ctx.finding("transaction-nesting", -1, message, fix));
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint, lint_no_tx};
    const ID: &str = "transaction-nesting";

    #[test]
    fn err_in_transactional_file() {
        let sql = "CREATE TABLE a (id bigint);\nCOMMIT;\nBEGIN;\nCREATE TABLE b (id bigint);";
        assert_eq!(at(&lint(sql), ID), vec![(2, 1), (3, 1)]);
    }

    #[test]
    fn err_in_non_transactional_file() {
        assert_eq!(
            at(&lint_no_tx("BEGIN;\nBEGIN;\nCOMMIT;\nCOMMIT;"), ID),
            vec![(2, 1), (4, 1)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(&lint("BEGIN;\nCREATE TABLE a (id bigint);\nCOMMIT;"), ID).is_empty());
        assert!(at(
            &lint_no_tx("BEGIN;\nSAVEPOINT s;\nCOMMIT;\nBEGIN;\nCOMMIT;"),
            ID
        )
        .is_empty());
    }
}
