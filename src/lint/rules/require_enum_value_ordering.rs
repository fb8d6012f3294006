//! `require-enum-value-ordering`: ALTER TYPE … ADD VALUE without BEFORE/AFTER appends the
//! value at the end, which decides how `<`, ORDER BY and MIN/MAX treat it.

use pg_query::NodeEnum;

use crate::lint::{ast, Finding, RuleContext};

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let NodeEnum::AlterEnumStmt(e) = ctx.ast else {
        return;
    };
    // RENAME VALUE sets old_val; ADD VALUE does not.
    if !e.old_val.is_empty() || e.new_val.is_empty() || !e.new_val_neighbor.is_empty() {
        return;
    }
    let type_name = ast::dotted(&e.type_name).join(".");
    out.push(ctx.finding(
        "require-enum-value-ordering",
        -1,
        format!("'{}' is appended at the end of enum `{type_name}`: enum order is what <, ORDER BY and MIN/MAX use", e.new_val),
        format!("say where it goes: `ALTER TYPE {type_name} ADD VALUE '{}' BEFORE|AFTER '<existing>'`, or allow this finding if the order does not matter; `pgrollout new --pattern add-enum-value --type {type_name} --value {}` writes it in a file of its own", e.new_val, e.new_val),
    ));
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "require-enum-value-ordering";

    #[test]
    fn err() {
        assert_eq!(
            at(
                &lint("ALTER TYPE status ADD VALUE IF NOT EXISTS 'archived';"),
                ID
            ),
            vec![(1, 1)]
        );
    }

    #[test]
    fn ok() {
        let sql = "ALTER TYPE status ADD VALUE 'archived' AFTER 'done';\nALTER TYPE status RENAME VALUE 'a' TO 'b';";
        assert!(at(&lint(sql), ID).is_empty());
    }
}
