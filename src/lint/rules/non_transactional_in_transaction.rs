//! `non-transactional-in-transaction`: a statement PostgreSQL refuses inside a
//! transaction block (CREATE INDEX CONCURRENTLY, VACUUM …), in a migration that runs in
//! one — or inside the file's own BEGIN … COMMIT.

use crate::lint::{Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let Some(label) = ctx.statement.non_transactional else {
        return;
    };
    if ctx.in_transaction() {
        out.push(ctx.finding(
            "non-transactional-in-transaction",
            -1,
            format!("{label} cannot run inside a transaction block, and this migration runs in one"),
            format!("move {label} to a migration of its own whose first line is `-- migrate:up transaction:false`"),
        ));
    } else if ctx.tx().depth_before[ctx.index] > 0 {
        out.push(ctx.finding(
            "non-transactional-in-transaction",
            -1,
            format!("{label} cannot run inside a transaction block, and the file's own BEGIN opened one"),
            format!("move {label} out of the BEGIN … COMMIT block"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint, lint_no_tx};
    const ID: &str = "non-transactional-in-transaction";

    #[test]
    fn err() {
        assert_eq!(
            at(&lint("CREATE INDEX CONCURRENTLY i ON t (a);"), ID),
            vec![(1, 1)]
        );
        assert_eq!(
            at(&lint_no_tx("BEGIN;\n  VACUUM t;\nCOMMIT;"), ID),
            vec![(2, 3)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(
            &lint_no_tx("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);"),
            ID
        )
        .is_empty());
    }
}
