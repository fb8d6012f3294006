//! `ban-drop-table`: DROP TABLE deletes the table and its data.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let NodeEnum::DropStmt(d) = ctx.ast else {
        return;
    };
    if d.remove_type != ObjectType::ObjectTable as i32 {
        return;
    }
    for parts in ast::drop_object_names(&d.objects) {
        let (schema, name) = match parts[..] {
            [s, n] => (s, n),
            [.., n] => ("", n),
            [] => continue,
        };
        if ctx.is_new_table_named(schema, name) {
            continue;
        }
        let table = parts.join(".");
        let mut f = ctx.finding(
            "ban-drop-table",
            -1,
            format!("DROP TABLE deletes `{table}` and all its data; code still using it fails"),
            format!("first deploy code that no longer uses `{table}`, then drop it in a later migration with `-- pgrollout:allow ban-drop-table <reason>`"),
        );
        f.table = Some(table);
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "ban-drop-table";

    #[test]
    fn err() {
        assert_eq!(
            at(&lint("SELECT 1;\n  DROP TABLE IF EXISTS app.users, b;"), ID),
            vec![(2, 3), (2, 3)]
        );
    }

    #[test]
    fn ok_table_created_in_same_migration_and_other_objects() {
        assert!(at(
            &lint("CREATE TABLE t (id bigint);\nDROP TABLE t;\nDROP VIEW v;"),
            ID
        )
        .is_empty());
    }
}
