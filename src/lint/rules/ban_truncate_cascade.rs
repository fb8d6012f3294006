//! `ban-truncate-cascade`: TRUNCATE … CASCADE also empties every referencing table.

use pg_query::protobuf::DropBehavior;
use pg_query::NodeEnum;

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let NodeEnum::TruncateStmt(t) = ctx.ast else {
        return;
    };
    if t.behavior != DropBehavior::DropCascade as i32 {
        return;
    }
    for n in &t.relations {
        let Some(NodeEnum::RangeVar(rv)) = &n.node else {
            continue;
        };
        let table = ast::rv_name(rv);
        let mut f = ctx.finding(
            "ban-truncate-cascade",
            rv.location,
            format!("TRUNCATE … CASCADE empties `{table}` and, silently, every table with a foreign key to it"),
            "name every table to empty explicitly, without CASCADE, so the review sees them",
        );
        f.table = Some(table);
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "ban-truncate-cascade";

    #[test]
    fn err() {
        assert_eq!(
            at(&lint("\n\nTRUNCATE TABLE accounts CASCADE;"), ID),
            vec![(3, 16)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(&lint("TRUNCATE accounts;"), ID).is_empty());
    }
}
