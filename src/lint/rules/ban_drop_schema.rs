//! `ban-drop-schema`: DROP SCHEMA deletes a schema, and with CASCADE all it contains.

use pg_query::protobuf::{DropBehavior, ObjectType};
use pg_query::NodeEnum;

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let NodeEnum::DropStmt(d) = ctx.ast else {
        return;
    };
    if d.remove_type != ObjectType::ObjectSchema as i32 {
        return;
    }
    let cascade = d.behavior == DropBehavior::DropCascade as i32;
    for parts in ast::drop_object_names(&d.objects) {
        let schema = parts.join(".");
        let what = if cascade {
            " and every object in it (CASCADE)"
        } else {
            ""
        };
        out.push(ctx.finding(
            "ban-drop-schema",
            -1,
            format!("DROP SCHEMA deletes `{schema}`{what}"),
            format!("make sure nothing uses `{schema}` any more, then drop it with `-- pgrollout:allow ban-drop-schema <reason>`"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "ban-drop-schema";

    #[test]
    fn err() {
        let f = lint("\nDROP SCHEMA legacy CASCADE;");
        assert_eq!(at(&f, ID), vec![(2, 1)]);
        assert!(f[0].message.contains("CASCADE"));
    }

    #[test]
    fn ok() {
        assert!(at(&lint("CREATE SCHEMA s; DROP TABLE t;"), ID).is_empty());
    }
}
