//! `column-type-rewrite`: ALTER COLUMN TYPE rewrites the table unless the change is
//! binary-coercible.
//!
//! A statement does not say what the old type was. Changes to `text`, `varchar` (any
//! length), `numeric` and `varbit` without `USING` are assumed to be the usual safe
//! widenings — varchar → text, raising a varchar length or a numeric precision — which
//! PostgreSQL does without a rewrite. Any `USING` clause, and every other target type, is
//! reported.

use pg_query::protobuf::AlterTableType;

use crate::lint::{ast, Finding, RuleContext};

const WIDENING_TARGETS: &[&str] = &["text", "varchar", "numeric", "varbit", "citext"];

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let Some((a, rv)) = ast::alter_table(ctx.ast) else {
        return;
    };
    if ctx.is_new_table(rv) {
        return;
    }
    let table = ast::rv_name(rv);
    for cmd in ast::alter_cmds(a) {
        if !ast::is_subtype(cmd, AlterTableType::AtAlterColumnType) {
            continue;
        }
        let Some(def) = ast::cmd_column_def(cmd) else {
            continue;
        };
        let Some(t) = &def.type_name else { continue };
        let base = ast::type_base(t);
        let using = def.raw_default.is_some();
        if !using && ast::is_builtin(t) && WIDENING_TARGETS.contains(&base.as_str()) {
            continue;
        }
        let mut f = ctx.finding(
            "column-type-rewrite",
            t.location,
            format!("ALTER COLUMN `{}` TYPE {base} rewrites `{table}` and all its indexes under ACCESS EXCLUSIVE", cmd.name),
            format!("add a new column of type {base}, backfill it in batches, switch the code over, then drop the old column"),
        );
        f.table = Some(table.clone());
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "column-type-rewrite";

    #[test]
    fn err() {
        assert_eq!(
            at(&lint("ALTER TABLE events ALTER COLUMN id TYPE bigint;"), ID),
            vec![(1, 41)]
        );
        assert_eq!(
            at(
                &lint("ALTER TABLE events ALTER kind TYPE text USING kind::text;"),
                ID
            ),
            vec![(1, 36)]
        );
    }

    #[test]
    fn ok_binary_coercible() {
        let sql = "ALTER TABLE events ALTER COLUMN kind TYPE text;\n\
                   ALTER TABLE events ALTER COLUMN name TYPE varchar(200);\n\
                   ALTER TABLE events ALTER COLUMN amount TYPE numeric(20, 2);\n\
                   CREATE TABLE t (a int);\nALTER TABLE t ALTER a TYPE bigint;";
        assert!(at(&lint(sql), ID).is_empty());
    }
}
