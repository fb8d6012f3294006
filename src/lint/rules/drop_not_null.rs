//! `drop-not-null`: DROP NOT NULL lets NULLs reach code that assumes there are none.

use pg_query::protobuf::AlterTableType;

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
        if !ast::is_subtype(cmd, AlterTableType::AtDropNotNull) {
            continue;
        }
        let mut f = ctx.finding(
            "drop-not-null",
            -1,
            format!("DROP NOT NULL on `{}` of `{table}` lets NULLs reach code that assumes the column is always set", cmd.name),
            "deploy code that handles NULL in this column first, then drop the constraint",
        );
        f.table = Some(table.clone());
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "drop-not-null";

    #[test]
    fn err() {
        assert_eq!(
            at(
                &lint("ALTER TABLE users ALTER COLUMN email DROP NOT NULL;"),
                ID
            ),
            vec![(1, 1)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(
            &lint("ALTER TABLE users ALTER COLUMN email SET DEFAULT '';"),
            ID
        )
        .is_empty());
    }
}
