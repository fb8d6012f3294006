//! Generated rollbacks (seed 001): for a migration without a down section, the inverse
//! of its up section — but only when every statement has a safe one.
//!
//! Pure: parse trees in, SQL text out. A statement qualifies when undoing it means
//! dropping exactly the object it created: CREATE TABLE / INDEX / VIEW / MATERIALIZED
//! VIEW / FUNCTION / PROCEDURE / TYPE / SCHEMA / SEQUENCE / EXTENSION / POLICY / TRIGGER
//! and ALTER TABLE … ADD COLUMN. Anything else — a data change, an ALTER that is not an
//! ADD COLUMN, CREATE OR REPLACE (which may have replaced something older), IF NOT EXISTS
//! in a transactional migration (the object may have existed before) — makes the whole
//! migration "no rollback available": half an inverse is worse than none.

use pg_query::protobuf::{
    self, AlterTableType, DropBehavior, FunctionParameterMode, ObjectType, RangeVar,
};
use pg_query::{Node, NodeEnum};

use crate::migration::Migration;
use crate::sql::quote_ident;
use crate::sql::Item;

/// A generated down section.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Generated {
    /// One statement per line, in reverse order of the up section.
    pub sql: String,
    /// Runs statement by statement (the up section was `transaction:false`, e.g. for
    /// `CREATE INDEX CONCURRENTLY`, undone by `DROP INDEX CONCURRENTLY`).
    pub no_transaction: bool,
}

/// Why a statement has no generated inverse.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NotReversible {
    pub line: u32,
    pub col: u32,
    pub reason: String,
}

impl std::fmt::Display for NotReversible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// The generated rollback of `m`'s up section (which must be parsed), or every reason
/// there is none.
pub fn generate(m: &Migration) -> Result<Generated, Vec<NotReversible>> {
    let in_tx = !m.up.no_transaction;
    let wrapper = crate::migration::wrapper(&m.up);
    let mut drops: Vec<String> = Vec::new();
    let mut problems = Vec::new();
    let mut any = false;
    for item in &m.up.items {
        let s = match item {
            Item::Statement(s) => s,
            Item::MetaCommand(c) => {
                problems.push(NotReversible {
                    line: c.line,
                    col: c.col,
                    reason: format!("psql meta-command `{}`", c.text.trim()),
                });
                continue;
            }
        };
        if wrapper.is_some_and(|(b, c)| std::ptr::eq(b, s) || std::ptr::eq(c, s)) {
            continue;
        }
        any = true;
        let result = match &s.ast {
            Some(ast) => inverse(ast, in_tx),
            None => Err("the statement does not parse".to_string()),
        };
        match result {
            Ok(mut stmts) => {
                stmts.reverse();
                drops.push(stmts.join("\n"));
            }
            Err(reason) => problems.push(NotReversible {
                line: s.line,
                col: s.col,
                reason,
            }),
        }
    }
    if !any {
        problems.push(NotReversible {
            line: m.up.marker_line.unwrap_or(1),
            col: 1,
            reason: "the up section has no statement".into(),
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    drops.reverse();
    Ok(Generated {
        sql: drops.join("\n") + "\n",
        no_transaction: m.up.no_transaction,
    })
}

fn rv(r: &RangeVar) -> String {
    if r.schemaname.is_empty() {
        quote_ident(&r.relname)
    } else {
        format!("{}.{}", quote_ident(&r.schemaname), quote_ident(&r.relname))
    }
}

fn names(list: &[Node]) -> String {
    list.iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::String(s)) => Some(quote_ident(&s.sval)),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn required<'a>(r: &'a Option<RangeVar>, what: &str) -> Result<&'a RangeVar, String> {
    r.as_ref()
        .ok_or_else(|| format!("{what} without a name in the parse tree"))
}

/// `IF NOT EXISTS` means the object may predate the migration: dropping it could remove
/// something the migration never made. Accepted only in a transaction:false section,
/// where it is the retry-safety idiom (`prefer-robust-stmts`), and undone with IF EXISTS.
fn if_exists(if_not_exists: bool, in_tx: bool, what: &str) -> Result<&'static str, String> {
    match (if_not_exists, in_tx) {
        (false, _) => Ok(""),
        (true, false) => Ok(" IF EXISTS"),
        (true, true) => Err(format!(
            "{what} IF NOT EXISTS: the object may have existed before this migration, so dropping it is not a safe inverse"
        )),
    }
}

/// The statements that undo `ast`, in the order they would run if `ast` were the only
/// statement (the caller reverses the whole list).
pub fn inverse(ast: &NodeEnum, in_tx: bool) -> Result<Vec<String>, String> {
    use NodeEnum as N;
    let one = |s: String| Ok(vec![s]);
    match ast {
        N::CreateStmt(c) => {
            let ie = if_exists(c.if_not_exists, in_tx, "CREATE TABLE")?;
            one(format!(
                "DROP TABLE{ie} {};",
                rv(required(&c.relation, "CREATE TABLE")?)
            ))
        }
        N::CreateTableAsStmt(c) => {
            let into = c
                .into
                .as_ref()
                .and_then(|i| i.rel.as_ref())
                .ok_or("CREATE … AS without a name in the parse tree")?;
            let (what, drop) = if c.objtype == ObjectType::ObjectMatview as i32 {
                ("CREATE MATERIALIZED VIEW", "MATERIALIZED VIEW")
            } else {
                ("CREATE TABLE … AS", "TABLE")
            };
            let ie = if_exists(c.if_not_exists, in_tx, what)?;
            one(format!("DROP {drop}{ie} {};", rv(into)))
        }
        N::IndexStmt(i) => {
            if i.idxname.is_empty() {
                return Err(
                    "CREATE INDEX without a name: PostgreSQL picks one, so the rollback cannot name it; give the index a name"
                        .into(),
                );
            }
            let ie = if_exists(i.if_not_exists, in_tx, "CREATE INDEX")?;
            let table = required(&i.relation, "CREATE INDEX")?;
            // An index lives in its table's schema.
            let name = if table.schemaname.is_empty() {
                quote_ident(&i.idxname)
            } else {
                format!(
                    "{}.{}",
                    quote_ident(&table.schemaname),
                    quote_ident(&i.idxname)
                )
            };
            let conc = if i.concurrent { " CONCURRENTLY" } else { "" };
            one(format!("DROP INDEX{conc}{ie} {name};"))
        }
        N::ViewStmt(v) => {
            if v.replace {
                return Err(
                    "CREATE OR REPLACE VIEW may have replaced an older definition, which a DROP would not restore"
                        .into(),
                );
            }
            one(format!(
                "DROP VIEW {};",
                rv(required(&v.view, "CREATE VIEW")?)
            ))
        }
        N::CreateFunctionStmt(f) => {
            if f.replace {
                return Err(format!(
                    "CREATE OR REPLACE {} may have replaced an older definition, which a DROP would not restore",
                    if f.is_procedure { "PROCEDURE" } else { "FUNCTION" }
                ));
            }
            one(drop_function(f)?)
        }
        N::CompositeTypeStmt(t) => one(format!(
            "DROP TYPE {};",
            rv(required(&t.typevar, "CREATE TYPE")?)
        )),
        N::CreateEnumStmt(e) => one(format!("DROP TYPE {};", names(&e.type_name))),
        N::CreateRangeStmt(r) => one(format!("DROP TYPE {};", names(&r.type_name))),
        N::CreateSchemaStmt(s) => {
            if !s.schema_elts.is_empty() {
                return Err(
                    "CREATE SCHEMA with elements: create the schema and its objects in separate statements"
                        .into(),
                );
            }
            if s.schemaname.is_empty() {
                return Err("CREATE SCHEMA AUTHORIZATION without a name: name the schema".into());
            }
            let ie = if_exists(s.if_not_exists, in_tx, "CREATE SCHEMA")?;
            one(format!("DROP SCHEMA{ie} {};", quote_ident(&s.schemaname)))
        }
        N::CreateSeqStmt(s) => {
            let ie = if_exists(s.if_not_exists, in_tx, "CREATE SEQUENCE")?;
            one(format!(
                "DROP SEQUENCE{ie} {};",
                rv(required(&s.sequence, "CREATE SEQUENCE")?)
            ))
        }
        N::CreateExtensionStmt(x) => {
            let ie = if_exists(x.if_not_exists, in_tx, "CREATE EXTENSION")?;
            one(format!("DROP EXTENSION{ie} {};", quote_ident(&x.extname)))
        }
        N::CreatePolicyStmt(p) => one(format!(
            "DROP POLICY {} ON {};",
            quote_ident(&p.policy_name),
            rv(required(&p.table, "CREATE POLICY")?)
        )),
        N::CreateTrigStmt(t) => {
            if t.replace {
                return Err(
                    "CREATE OR REPLACE TRIGGER may have replaced an older trigger, which a DROP would not restore"
                        .into(),
                );
            }
            one(format!(
                "DROP TRIGGER {} ON {};",
                quote_ident(&t.trigname),
                rv(required(&t.relation, "CREATE TRIGGER")?)
            ))
        }
        N::AlterTableStmt(a) => {
            if a.objtype != ObjectType::ObjectTable as i32 {
                return Err("only ALTER TABLE … ADD COLUMN has a generated inverse".into());
            }
            let table = rv(required(&a.relation, "ALTER TABLE")?);
            let only = if a.relation.as_ref().is_some_and(|r| !r.inh) {
                "ONLY "
            } else {
                ""
            };
            let mut cols = Vec::new();
            for cmd in &a.cmds {
                let Some(NodeEnum::AlterTableCmd(c)) = &cmd.node else {
                    return Err("ALTER TABLE with an unexpected command".into());
                };
                if c.subtype != AlterTableType::AtAddColumn as i32 {
                    return Err(
                        "ALTER TABLE other than ADD COLUMN: no safe generated inverse (write a down section)"
                            .into(),
                    );
                }
                let Some(NodeEnum::ColumnDef(def)) = c.def.as_ref().and_then(|d| d.node.as_ref())
                else {
                    return Err("ADD COLUMN without a column definition".into());
                };
                let ie = if_exists(c.missing_ok, in_tx, "ADD COLUMN")?;
                cols.push(format!("DROP COLUMN{ie} {}", quote_ident(&def.colname)));
            }
            if a.missing_ok {
                return Err(
                    "ALTER TABLE IF EXISTS: the table may not exist, so the inverse is unknown"
                        .into(),
                );
            }
            cols.reverse();
            one(format!("ALTER TABLE {only}{table} {};", cols.join(", ")))
        }
        N::InsertStmt(_)
        | N::UpdateStmt(_)
        | N::DeleteStmt(_)
        | N::MergeStmt(_)
        | N::CopyStmt(_)
        | N::TruncateStmt(_) => Err(format!(
            "{} changes data: a data change has no generated rollback (write a down section)",
            crate::sql::statement_keyword(ast)
        )),
        other => Err(format!(
            "{} has no safe generated inverse (write a down section)",
            crate::sql::statement_keyword(other)
        )),
    }
}

/// `DROP FUNCTION name(argument types)`: the types of the IN, INOUT and VARIADIC
/// parameters identify the overload. Deparsed by the PostgreSQL deparser, which knows
/// how to print every type name.
fn drop_function(f: &protobuf::CreateFunctionStmt) -> Result<String, String> {
    let mut args = Vec::new();
    for p in &f.parameters {
        let Some(NodeEnum::FunctionParameter(p)) = &p.node else {
            continue;
        };
        let mode = p.mode;
        if mode == FunctionParameterMode::FuncParamOut as i32
            || mode == FunctionParameterMode::FuncParamTable as i32
        {
            continue;
        }
        let t = p
            .arg_type
            .clone()
            .ok_or("a function parameter without a type")?;
        args.push(Node {
            node: Some(NodeEnum::TypeName(t)),
        });
    }
    let drop = protobuf::DropStmt {
        objects: vec![Node {
            node: Some(NodeEnum::ObjectWithArgs(protobuf::ObjectWithArgs {
                objname: f.funcname.clone(),
                objargs: args,
                objfuncargs: vec![],
                args_unspecified: false,
            })),
        }],
        remove_type: if f.is_procedure {
            ObjectType::ObjectProcedure
        } else {
            ObjectType::ObjectFunction
        } as i32,
        behavior: DropBehavior::DropRestrict as i32,
        missing_ok: false,
        concurrent: false,
    };
    NodeEnum::DropStmt(drop)
        .deparse(Default::default())
        .map(|s| format!("{s};"))
        .map_err(|e| format!("building DROP FUNCTION: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::Migration;

    fn mig(up: &str, no_tx: bool) -> Migration {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("001_t.sql");
        let marker = if no_tx {
            "-- migrate:up transaction:false\n"
        } else {
            "-- migrate:up\n"
        };
        std::fs::write(&path, format!("{marker}{up}\n")).unwrap();
        let v = crate::migration::Version::parse("001").unwrap();
        Migration::load(v, "t".into(), &path, None).unwrap()
    }

    fn gen(up: &str) -> Result<String, Vec<String>> {
        generate(&mig(up, false))
            .map(|g| g.sql)
            .map_err(|e| e.into_iter().map(|p| p.reason).collect())
    }

    #[test]
    fn every_supported_statement_in_reverse_order() {
        let sql = "CREATE SCHEMA app;\n\
            CREATE EXTENSION pgcrypto;\n\
            CREATE TYPE app.mood AS ENUM ('a', 'b');\n\
            CREATE TYPE pair AS (a int, b text);\n\
            CREATE TYPE floatrange AS RANGE (subtype = float8);\n\
            CREATE SEQUENCE app.seq;\n\
            CREATE TABLE app.t (id bigint PRIMARY KEY, m app.mood);\n\
            CREATE INDEX t_m_idx ON app.t (m);\n\
            CREATE VIEW v AS SELECT 1;\n\
            CREATE MATERIALIZED VIEW mv AS SELECT 1;\n\
            CREATE FUNCTION app.f(a int, OUT b text, VARIADIC c numeric[]) LANGUAGE sql AS 'select 1::text';\n\
            CREATE PROCEDURE p(int) LANGUAGE sql AS 'select 1';\n\
            CREATE FUNCTION \"Odd\"() RETURNS trigger LANGUAGE plpgsql AS 'begin return new; end';\n\
            CREATE TRIGGER tr BEFORE UPDATE ON app.t FOR EACH ROW EXECUTE FUNCTION \"Odd\"();\n\
            CREATE POLICY \"own rows\" ON app.t USING (true);\n\
            ALTER TABLE app.t ADD COLUMN a text, ADD COLUMN b int;\n\
            CREATE TABLE copy AS SELECT 1 AS x;";
        assert_eq!(
            gen(sql).unwrap(),
            "DROP TABLE \"copy\";\n\
             ALTER TABLE \"app\".\"t\" DROP COLUMN \"b\", DROP COLUMN \"a\";\n\
             DROP POLICY \"own rows\" ON \"app\".\"t\";\n\
             DROP TRIGGER \"tr\" ON \"app\".\"t\";\n\
             DROP FUNCTION \"Odd\"();\n\
             DROP PROCEDURE p(int);\n\
             DROP FUNCTION app.f(int, numeric[]);\n\
             DROP MATERIALIZED VIEW \"mv\";\n\
             DROP VIEW \"v\";\n\
             DROP INDEX \"app\".\"t_m_idx\";\n\
             DROP TABLE \"app\".\"t\";\n\
             DROP SEQUENCE \"app\".\"seq\";\n\
             DROP TYPE \"floatrange\";\n\
             DROP TYPE \"pair\";\n\
             DROP TYPE \"app\".\"mood\";\n\
             DROP EXTENSION \"pgcrypto\";\n\
             DROP SCHEMA \"app\";\n"
        );
    }

    #[test]
    fn refuses_data_changes_and_everything_else() {
        for (sql, why) in [
            ("INSERT INTO t VALUES (1);", "INSERT changes data"),
            ("UPDATE t SET a = 1 WHERE b;", "UPDATE changes data"),
            ("DELETE FROM t WHERE a;", "DELETE changes data"),
            ("ALTER TABLE t DROP COLUMN a;", "other than ADD COLUMN"),
            (
                "ALTER TABLE t ADD COLUMN a int, ALTER COLUMN b TYPE text;",
                "other than ADD COLUMN",
            ),
            ("CREATE OR REPLACE VIEW v AS SELECT 1;", "may have replaced"),
            (
                "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1';",
                "may have replaced",
            ),
            (
                "CREATE TABLE IF NOT EXISTS t (a int);",
                "may have existed before",
            ),
            ("CREATE INDEX ON t (a);", "without a name"),
            ("DROP TABLE t;", "DROP TABLE has no safe generated inverse"),
            ("GRANT SELECT ON t TO app;", "no safe generated inverse"),
            (
                "CREATE SCHEMA s CREATE TABLE x (a int);",
                "separate statements",
            ),
        ] {
            let err = gen(sql).unwrap_err();
            assert!(err.iter().any(|e| e.contains(why)), "{sql}: {err:?}");
        }
        // One irreversible statement makes the whole migration irreversible.
        let err = gen("CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);").unwrap_err();
        assert_eq!(err.len(), 1);
    }

    #[test]
    fn concurrent_index_in_a_non_transactional_migration() {
        let g = generate(&mig(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);",
            true,
        ))
        .unwrap();
        assert_eq!(g.sql, "DROP INDEX CONCURRENTLY IF EXISTS \"i\";\n");
        assert!(g.no_transaction);
    }

    #[test]
    fn wrapper_is_ignored_and_positions_are_reported() {
        assert_eq!(
            gen("BEGIN;\nCREATE TABLE t (a int);\nCOMMIT;").unwrap(),
            "DROP TABLE \"t\";\n"
        );
        let e = generate(&mig(
            "CREATE TABLE t (a int);\n  UPDATE t SET a = 1;",
            false,
        ))
        .unwrap_err();
        assert_eq!((e[0].line, e[0].col), (3, 3));
    }
}
