//! `require-down`: a migration without down SQL cannot be rolled back.
//!
//! Reported once per migration, at its first statement (so an allow directive there, or
//! `allow-file`, silences it). An empty `-- migrate:down` section — the one `pgrollout
//! new` writes — counts as none.

use crate::lint::{Finding, RuleContext};
use crate::sql::Item;

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    if ctx.index != 0 {
        return;
    }
    let m = ctx.migration;
    let has_down = m.down.as_ref().is_some_and(|d| {
        if d.section.parsed {
            d.section
                .items
                .iter()
                .any(|i| matches!(i, Item::Statement(_)))
        } else {
            m.down_text().is_some_and(|t| !t.trim().is_empty())
        }
    });
    if has_down {
        return;
    }
    let fix = match crate::migration::inverse::generate(m) {
        Ok(g) => format!(
            "add a `-- migrate:down` section that undoes it, or review the rollback pgrollout can generate \
             (`pgrollout rollback --dry-run`; it runs with --allow-generated): {}",
            g.sql.trim_end().replace('\n', " ")
        ),
        Err(_) => "add a `-- migrate:down` section that undoes it; `pgrollout test` checks that it does".into(),
    };
    out.push(ctx.finding(
        "require-down",
        -1,
        "this migration has no down SQL: `pgrollout rollback` cannot undo it",
        fix,
    ));
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, migration};
    use crate::lint::{lint_migration, LintOptions};
    const ID: &str = "require-down";

    fn lint_without_down(sql: &str) -> Vec<crate::lint::Finding> {
        let mut m = migration(sql, false);
        m.down = None;
        lint_migration(&m, &LintOptions::default())
    }

    #[test]
    fn err() {
        let f = lint_without_down(
            "-- a comment\nCREATE TABLE t (id bigint);\nCREATE INDEX i ON t (id);",
        );
        assert_eq!(at(&f, ID), vec![(2, 1)]);
        let f = f.iter().find(|f| f.rule == ID).unwrap();
        assert_eq!(f.severity, crate::lint::Severity::Info);
        assert!(
            f.fix.contains("DROP INDEX \"i\"; DROP TABLE \"t\";"),
            "{}",
            f.fix
        );
        let f = lint_without_down("UPDATE t SET a = 1 WHERE b;");
        assert!(!f
            .iter()
            .find(|f| f.rule == ID)
            .unwrap()
            .fix
            .contains("generate"));
    }

    #[test]
    fn ok_with_a_down_section_or_an_allow() {
        assert!(at(
            &crate::lint::testing::lint("CREATE TABLE t (id bigint);"),
            ID
        )
        .is_empty());
        let f = lint_without_down(
            "-- pgrollout:allow require-down reference data, never rolled back\nINSERT INTO t VALUES (1);",
        );
        assert!(at(&f, ID).is_empty(), "{f:?}");
    }
}
