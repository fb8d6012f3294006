//! `require-concurrent-reindex`: REINDEX without CONCURRENTLY blocks writes.

use pg_query::protobuf::ReindexObjectType;
use pg_query::NodeEnum;

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let NodeEnum::ReindexStmt(r) = ctx.ast else {
        return;
    };
    // REINDEX SYSTEM cannot be concurrent: nothing better to suggest.
    if ast::has_option(&r.params, "concurrently")
        || r.kind == ReindexObjectType::ReindexObjectSystem as i32
    {
        return;
    }
    let target = r
        .relation
        .as_ref()
        .map(ast::rv_name)
        .unwrap_or_else(|| r.name.clone());
    let mut f = ctx.finding(
        "require-concurrent-reindex",
        -1,
        format!("REINDEX `{target}` without CONCURRENTLY blocks writes to the table and reads that use the index"),
        "use REINDEX (CONCURRENTLY) in a `-- migrate:up transaction:false` migration of its own",
    );
    if r.kind == ReindexObjectType::ReindexObjectTable as i32 {
        f.table = Some(target);
    }
    out.push(f);
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint, lint_no_tx};
    const ID: &str = "require-concurrent-reindex";

    #[test]
    fn err() {
        let f = lint("REINDEX TABLE events;");
        assert_eq!(at(&f, ID), vec![(1, 1)]);
        assert_eq!(f[0].table.as_deref(), Some("events"));
    }

    #[test]
    fn ok() {
        assert!(at(
            &lint_no_tx("REINDEX (CONCURRENTLY) INDEX i;\nREINDEX INDEX CONCURRENTLY j;"),
            ID
        )
        .is_empty());
    }
}
