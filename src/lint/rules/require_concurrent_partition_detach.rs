//! `require-concurrent-partition-detach`: DETACH PARTITION without CONCURRENTLY.

use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let Some((a, rv)) = ast::alter_table(ctx.ast) else {
        return;
    };
    if ctx.is_new_table(rv) {
        return;
    }
    let table = ast::rv_name(rv);
    for cmd in ast::alter_cmds(a) {
        if !ast::is_subtype(cmd, AlterTableType::AtDetachPartition) {
            continue;
        }
        let Some(NodeEnum::PartitionCmd(p)) = cmd.def.as_deref().and_then(|d| d.node.as_ref())
        else {
            continue;
        };
        if p.concurrent {
            continue;
        }
        let (part, loc) = p
            .name
            .as_ref()
            .map_or((String::new(), -1), |n| (ast::rv_name(n), n.location));
        let mut f = ctx.finding(
            "require-concurrent-partition-detach",
            loc,
            format!("DETACH PARTITION `{part}` without CONCURRENTLY takes ACCESS EXCLUSIVE on `{table}`, blocking reads and writes"),
            "use DETACH PARTITION … CONCURRENTLY (PostgreSQL 14+) in a `-- migrate:up transaction:false` migration of its own",
        );
        f.table = Some(table.clone());
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint, lint_no_tx};
    const ID: &str = "require-concurrent-partition-detach";

    #[test]
    fn err() {
        assert_eq!(
            at(
                &lint("ALTER TABLE events DETACH PARTITION events_2020;"),
                ID
            ),
            vec![(1, 37)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(
            &lint_no_tx("ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY;"),
            ID
        )
        .is_empty());
    }
}
