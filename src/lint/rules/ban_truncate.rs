//! `ban-truncate`: TRUNCATE deletes every row (without CASCADE; see `ban-truncate-cascade`).

use pg_query::protobuf::DropBehavior;
use pg_query::NodeEnum;

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let NodeEnum::TruncateStmt(t) = ctx.ast else {
        return;
    };
    if t.behavior == DropBehavior::DropCascade as i32 {
        return;
    }
    for n in &t.relations {
        let Some(NodeEnum::RangeVar(rv)) = &n.node else {
            continue;
        };
        if ctx.is_new_table(rv) {
            continue;
        }
        let table = ast::rv_name(rv);
        let mut f = ctx.finding(
            "ban-truncate",
            rv.location,
            format!("TRUNCATE deletes every row of `{table}` under ACCESS EXCLUSIVE"),
            "delete data in a separate, reviewed step (or with a WHERE clause); if it really must go, say why with `-- pgrollout:allow ban-truncate <reason>`",
        );
        f.table = Some(table);
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "ban-truncate";

    #[test]
    fn err() {
        assert_eq!(
            at(&lint("TRUNCATE sessions, public.tokens;"), ID),
            vec![(1, 10), (1, 20)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(
            &lint("CREATE TABLE t (a int);\nTRUNCATE t;\nTRUNCATE u CASCADE;"),
            ID
        )
        .is_empty());
    }
}
