//! `column-type-rewrite`: ALTER COLUMN TYPE rewrites the table unless the change is
//! binary-coercible.
//!
//! The old type comes from the schema model (the earlier migrations of the set and the
//! earlier statements of this one); the change is then judged like PostgreSQL judges it
//! (see [`schema_model::rewrites`]). When the model does not know the old type, the
//! statement alone decides as before: changes to `text`, `varchar` (any length),
//! `numeric`, `varbit` and `citext` without `USING` are taken to be the usual safe
//! widenings and every other target type is reported, saying the old type is unknown.
//! Any `USING` clause is reported.

use pg_query::protobuf::AlterTableType;

use crate::lint::schema_model::{self, ColumnKnowledge, ColumnType};
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
        let new = ColumnType::of(t);
        let using = def.raw_default.is_some();
        let why = match (ctx.model.column(rv, &cmd.name), using) {
            (_, true) => "a USING clause computes every value again".to_string(),
            (ColumnKnowledge::Typed(old), false) => {
                if !schema_model::rewrites(old, &new) {
                    continue;
                }
                format!(
                    "{} → {} is not binary-coercible",
                    old.display(),
                    new.display()
                )
            }
            (ColumnKnowledge::Unknown, false) => {
                if new.builtin && WIDENING_TARGETS.contains(&new.name.as_str()) {
                    continue;
                }
                format!(
                    "the old type of `{}` is unknown (no earlier migration of the set defines it), and no type but text, varchar, numeric, varbit or citext can take it over without one",
                    cmd.name
                )
            }
        };
        let mut f = ctx.finding(
            "column-type-rewrite",
            t.location,
            format!(
                "ALTER COLUMN `{}` TYPE {} rewrites `{table}` and all its indexes under ACCESS EXCLUSIVE: {why}",
                cmd.name,
                new.display()
            ),
            format!(
                "add a new column of type {}, backfill it in batches, switch the code over, then drop the old column: `pgrollout new --pattern change-column-type --table {table} --column {} --type {}` writes the steps",
                new.display(),
                cmd.name,
                shell_word(&new.display())
            ),
        );
        f.table = Some(table.clone());
        out.push(f);
    }
}

/// `numeric(12,2)` needs quoting in a shell; `text` does not.
fn shell_word(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        s.to_string()
    } else {
        format!("'{s}'")
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "column-type-rewrite";

    #[test]
    fn err() {
        let f = lint("ALTER TABLE events ALTER COLUMN id TYPE bigint;");
        assert_eq!(at(&f, ID), vec![(1, 41)]);
        assert!(
            f[0].message.contains("old type of `id` is unknown"),
            "{}",
            f[0].message
        );
        assert!(
            f[0].fix
                .contains("--pattern change-column-type --table events --column id --type int8"),
            "{}",
            f[0].fix
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

    /// The old type from the model: real rewrites to text-like targets are caught, and
    /// widenings of known types are not.
    #[test]
    fn known_old_types() {
        use crate::lint::testing::migration;
        use crate::lint::{lint_migration_in, LintOptions, SchemaModel};
        let base = migration(
            "CREATE TABLE o (id uuid, total numeric, label varchar(20), code text, n bigint, amount numeric(10,2));",
            false,
        );
        let mut model = SchemaModel::of([&base]);
        let sql = "ALTER TABLE o ALTER COLUMN id TYPE text;\n\
                   ALTER TABLE o ALTER COLUMN total TYPE text;\n\
                   ALTER TABLE o ALTER COLUMN label TYPE text;\n\
                   ALTER TABLE o ALTER COLUMN code TYPE varchar(512);\n\
                   ALTER TABLE o ALTER COLUMN label TYPE varchar(5);\n\
                   ALTER TABLE o ALTER COLUMN n TYPE text;\n\
                   ALTER TABLE o ALTER COLUMN amount TYPE numeric(14,2);\n\
                   ALTER TABLE o ALTER COLUMN amount TYPE numeric;\n";
        let f = lint_migration_in(&migration(sql, false), &LintOptions::default(), &mut model);
        let lines: Vec<u32> = f.iter().filter(|f| f.rule == ID).map(|f| f.line).collect();
        // Line 5: label is text after line 3, and text → varchar(5) rewrites.
        assert_eq!(lines, vec![1, 2, 4, 5, 6], "{f:#?}");
        assert!(
            f[0].message
                .ends_with("uuid → text is not binary-coercible"),
            "{}",
            f[0].message
        );
    }
}
