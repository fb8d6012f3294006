//! `require-concurrent-index-creation`: CREATE INDEX without CONCURRENTLY blocks writes.

use pg_query::NodeEnum;

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let NodeEnum::IndexStmt(i) = ctx.ast else {
        return;
    };
    let Some(rv) = &i.relation else { return };
    if i.concurrent || ctx.is_new_table(rv) {
        return;
    }
    let table = ast::rv_name(rv);
    let columns: Vec<&str> = i
        .index_params
        .iter()
        .filter_map(|p| match &p.node {
            Some(NodeEnum::IndexElem(e)) if !e.name.is_empty() => Some(e.name.as_str()),
            _ => None,
        })
        .collect();
    let columns = if columns.len() == i.index_params.len() && !columns.is_empty() {
        columns.join(",")
    } else {
        "<columns>".into()
    };
    let mut f = ctx.finding(
        "require-concurrent-index-creation",
        -1,
        format!("CREATE INDEX on `{table}` without CONCURRENTLY blocks every write to it (SHARE lock) until the index is built"),
        format!("build the index with CREATE INDEX CONCURRENTLY IF NOT EXISTS in a `-- migrate:up transaction:false` migration of its own: `pgrollout new --pattern add-index --table {table} --column {columns}` writes it"),
    );
    f.table = Some(table);
    out.push(f);
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint, lint_no_tx};
    const ID: &str = "require-concurrent-index-creation";

    #[test]
    fn err() {
        assert_eq!(
            at(
                &lint("SELECT 1;\n  CREATE UNIQUE INDEX users_email ON users (email);"),
                ID
            ),
            vec![(2, 3)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(
            &lint_no_tx("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON users (email);"),
            ID
        )
        .is_empty());
        assert!(at(&lint("CREATE TABLE t (a int);\nCREATE INDEX ON t (a);"), ID).is_empty());
    }
}
