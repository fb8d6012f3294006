//! `mixed-transaction-modes`: transactional DDL and non-transactional statements in one
//! migration. Outside a transaction each statement commits on its own, so a failure
//! leaves the migration half-applied; inside one, the non-transactional statement fails.

use crate::lint::{Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let facts = ctx.tx();
    if facts.first_non_tx != Some(ctx.index) {
        return;
    }
    let Some(ddl) = facts.first_tx_ddl else {
        return;
    };
    let ddl_line = ctx.statements().nth(ddl).map_or(0, |(_, s)| s.line);
    let label = ctx.statement.non_transactional.unwrap_or("this statement");
    out.push(ctx.finding(
        "mixed-transaction-modes",
        -1,
        format!("{label} shares a migration with transactional DDL (line {ddl_line}): if one part fails the other may already be applied"),
        format!("put {label} (and each other non-transactional statement) in a migration of its own marked `-- migrate:up transaction:false`"),
    ));
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint_no_tx};
    const ID: &str = "mixed-transaction-modes";

    #[test]
    fn err() {
        let sql = "ALTER TABLE t ADD COLUMN a int;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS j ON t (a);";
        let f = lint_no_tx(sql);
        assert_eq!(at(&f, ID), vec![(2, 1)]);
        assert!(f.iter().any(|f| f.message.contains("(line 1)")));
    }

    #[test]
    fn ok() {
        let sql = "SET statement_timeout = 0;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);";
        assert!(at(&lint_no_tx(sql), ID).is_empty());
    }
}
