//! `prefer-bigint-over-int`: 32- and 16-bit integer keys run out (2³¹ ids is not many
//! for an events table), and widening them later rewrites the table.
//!
//! A key is a primary key, a foreign key, or a column named `id` or `…_id`.

use pg_query::protobuf::ConstrType;

use crate::lint::{ast, Finding, RuleContext};

const SMALL_INTS: &[&str] = &[
    "int4",
    "int2",
    "int",
    "integer",
    "smallint",
    "serial",
    "serial4",
    "smallserial",
    "serial2",
];

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    for site in ast::new_columns(ctx.ast) {
        let col = site.column;
        let Some(t) = &col.type_name else { continue };
        let base = ast::type_base(t);
        if !(ast::is_builtin(t) && SMALL_INTS.contains(&base.as_str())) {
            continue;
        }
        let name = col.colname.as_str();
        let inline_key = ast::constraints(&col.constraints).any(|c| {
            ast::is_contype(c, ConstrType::ConstrPrimary)
                || ast::is_contype(c, ConstrType::ConstrForeign)
        });
        let table_key = site.table_constraints.iter().any(|c| {
            (ast::is_contype(c, ConstrType::ConstrPrimary) && ast::dotted(&c.keys).contains(&name))
                || (ast::is_contype(c, ConstrType::ConstrForeign)
                    && ast::dotted(&c.fk_attrs).contains(&name))
        });
        if !(inline_key || table_key || name == "id" || name.ends_with("_id")) {
            continue;
        }
        let wide = if base.contains("serial") {
            "bigint GENERATED ALWAYS AS IDENTITY"
        } else {
            "bigint"
        };
        let mut f = ctx.finding(
            "prefer-bigint-over-int",
            t.location,
            format!("key column `{name}` is {base}: it runs out at 2^31 (or 2^15) values, and widening it later rewrites the table"),
            format!("declare `{name}` as {wide}"),
        );
        f.table = Some(ast::rv_name(site.table));
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "prefer-bigint-over-int";

    #[test]
    fn err() {
        let sql =
            "CREATE TABLE o (id integer PRIMARY KEY, user_id int, n smallint, PRIMARY KEY (n));";
        assert_eq!(at(&lint(sql), ID), vec![(1, 20), (1, 49), (1, 56)]);
        assert_eq!(
            at(&lint("ALTER TABLE o ADD COLUMN shop_id int4;"), ID),
            vec![(1, 34)]
        );
    }

    #[test]
    fn ok() {
        assert!(at(
            &lint("CREATE TABLE o (id bigint PRIMARY KEY, quantity int);"),
            ID
        )
        .is_empty());
    }
}
