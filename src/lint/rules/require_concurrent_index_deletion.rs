//! `require-concurrent-index-deletion`: DROP INDEX without CONCURRENTLY locks the table.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let NodeEnum::DropStmt(d) = ctx.ast else {
        return;
    };
    if d.remove_type != ObjectType::ObjectIndex as i32 || d.concurrent {
        return;
    }
    let names: Vec<String> = ast::drop_object_names(&d.objects)
        .iter()
        .map(|p| p.join("."))
        .collect();
    out.push(ctx.finding(
        "require-concurrent-index-deletion",
        -1,
        format!("DROP INDEX `{}` without CONCURRENTLY takes ACCESS EXCLUSIVE on its table, blocking reads and writes", names.join("`, `")),
        "drop it with DROP INDEX CONCURRENTLY IF EXISTS in a `-- migrate:up transaction:false` migration of its own",
    ));
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint, lint_no_tx};
    const ID: &str = "require-concurrent-index-deletion";

    #[test]
    fn err() {
        assert_eq!(at(&lint("\tDROP INDEX users_email;"), ID), vec![(1, 2)]);
    }

    #[test]
    fn ok() {
        assert!(at(
            &lint_no_tx("DROP INDEX CONCURRENTLY IF EXISTS users_email;"),
            ID
        )
        .is_empty());
    }
}
