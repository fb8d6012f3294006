//! `ban-drop-database`: DROP DATABASE in a migration.

use pg_query::NodeEnum;

use crate::lint::{Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let NodeEnum::DropdbStmt(d) = ctx.ast else {
        return;
    };
    out.push(ctx.finding(
        "ban-drop-database",
        -1,
        format!("DROP DATABASE deletes the database `{}`", d.dbname),
        "drop databases by hand, outside migrations; a migration runs against every environment",
    ));
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint_no_tx};
    const ID: &str = "ban-drop-database";

    #[test]
    fn err() {
        assert_eq!(
            at(
                &lint_no_tx("SELECT 1; DROP DATABASE IF EXISTS scratch;"),
                ID
            ),
            vec![(1, 11)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(&lint_no_tx("DROP SCHEMA IF EXISTS scratch;"), ID).is_empty());
    }
}
