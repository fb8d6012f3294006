//! `ban-vacuum-full-and-cluster`: VACUUM FULL and CLUSTER rewrite the table under lock.

use pg_query::NodeEnum;

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let (what, table) = match ctx.ast {
        NodeEnum::VacuumStmt(v) if v.is_vacuumcmd && ast::has_option(&v.options, "full") => {
            let table = v.rels.iter().find_map(|r| match &r.node {
                Some(NodeEnum::VacuumRelation(vr)) => vr.relation.as_ref().map(ast::rv_name),
                _ => None,
            });
            ("VACUUM FULL", table)
        }
        NodeEnum::ClusterStmt(c) => ("CLUSTER", c.relation.as_ref().map(ast::rv_name)),
        _ => return,
    };
    let target = table
        .as_ref()
        .map_or_else(|| "every table".to_string(), |t| format!("`{t}`"));
    let mut f = ctx.finding(
        "ban-vacuum-full-and-cluster",
        -1,
        format!("{what} rewrites {target} under ACCESS EXCLUSIVE: reads and writes wait for the whole rewrite"),
        "run plain VACUUM (no lock on reads or writes), or rebuild online with pg_repack; keep table rewrites out of migrations",
    );
    f.table = table;
    out.push(f);
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint, lint_no_tx};
    const ID: &str = "ban-vacuum-full-and-cluster";

    #[test]
    fn err() {
        assert_eq!(
            at(
                &lint_no_tx("VACUUM (FULL, ANALYZE) events;\nVACUUM FULL;"),
                ID
            ),
            vec![(1, 1), (2, 1)]
        );
        assert_eq!(
            at(&lint("CLUSTER events USING events_pkey;"), ID),
            vec![(1, 1)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(
            &lint_no_tx("VACUUM ANALYZE events;\nVACUUM (FULL false) events;"),
            ID
        )
        .is_empty());
    }
}
