//! `add-column-serial`: adding a serial or identity column fills every row, rewriting
//! the table.

use pg_query::protobuf::{AlterTableType, ConstrType};

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
        if !ast::is_subtype(cmd, AlterTableType::AtAddColumn) {
            continue;
        }
        let Some(col) = ast::cmd_column_def(cmd) else {
            continue;
        };
        let loc = match &col.type_name {
            Some(t) if ast::is_serial(t) => t.location,
            _ => match ast::constraints(&col.constraints)
                .find(|c| ast::is_contype(c, ConstrType::ConstrIdentity))
            {
                Some(c) => c.location,
                None => continue,
            },
        };
        let mut f = ctx.finding(
            "add-column-serial",
            loc,
            format!("ADD COLUMN `{}` with generated sequence values fills every row, rewriting `{table}` under ACCESS EXCLUSIVE", col.colname),
            "add a plain bigint column, attach a sequence default for new rows, backfill old rows in batches, then add the identity or constraint",
        );
        f.table = Some(table.clone());
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "add-column-serial";

    #[test]
    fn err() {
        assert_eq!(
            at(&lint("ALTER TABLE events ADD COLUMN seq bigserial;"), ID),
            vec![(1, 35)]
        );
        assert_eq!(
            at(
                &lint("ALTER TABLE events ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;"),
                ID
            ),
            vec![(1, 42)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(
            &lint("ALTER TABLE events ADD COLUMN seq bigint;\nCREATE TABLE t (id bigserial);"),
            ID
        )
        .is_empty());
    }
}
