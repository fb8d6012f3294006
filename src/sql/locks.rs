//! The tables a statement locks so that traffic on them waits: the relations whose lock
//! (ACCESS EXCLUSIVE, SHARE, SHARE ROW EXCLUSIVE …) conflicts with reads or writes, read
//! from the parse tree. Used to say how long a migration that locks several tables can
//! hold traffic up: each later lock wait happens while the earlier locks are held.

use pg_query::protobuf::{Node, ObjectType, RangeVar};
use pg_query::NodeEnum;

/// One relation a statement locks, and the lock's name as PostgreSQL calls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLock {
    /// `schema.name` or `name`, as written.
    pub table: String,
    pub mode: &'static str,
}

fn name(rv: &RangeVar) -> String {
    if rv.schemaname.is_empty() {
        rv.relname.clone()
    } else {
        format!("{}.{}", rv.schemaname, rv.relname)
    }
}

fn lock(rv: &RangeVar, mode: &'static str) -> TableLock {
    TableLock {
        table: name(rv),
        mode,
    }
}

/// The tables `node` locks in a mode that blocks writes (or reads and writes). A
/// statement that only creates a new object (CREATE TABLE, CREATE INDEX CONCURRENTLY,
/// CREATE VIEW) locks nothing traffic uses, and is left out; so are DML statements,
/// whose row locks are not table locks.
pub fn table_locks(node: &NodeEnum) -> Vec<TableLock> {
    const AX: &str = "ACCESS EXCLUSIVE";
    match node {
        NodeEnum::AlterTableStmt(a) => {
            let Some(rv) = a.relation.as_ref() else {
                return Vec::new();
            };
            let mut out = vec![lock(rv, AX)];
            // ADD FOREIGN KEY also locks the referenced table (SHARE ROW EXCLUSIVE).
            for cmd in &a.cmds {
                if let Some(NodeEnum::AlterTableCmd(c)) = &cmd.node {
                    if let Some(NodeEnum::Constraint(k)) =
                        c.def.as_ref().and_then(|d| d.node.as_ref())
                    {
                        if let Some(pk) = k.pktable.as_ref() {
                            out.push(lock(pk, "SHARE ROW EXCLUSIVE"));
                        }
                    }
                }
            }
            out
        }
        NodeEnum::IndexStmt(i) if !i.concurrent => {
            i.relation.iter().map(|rv| lock(rv, "SHARE")).collect()
        }
        NodeEnum::RenameStmt(r) => r.relation.iter().map(|rv| lock(rv, AX)).collect(),
        NodeEnum::CreateTrigStmt(t) => t
            .relation
            .iter()
            .map(|rv| lock(rv, "SHARE ROW EXCLUSIVE"))
            .collect(),
        NodeEnum::TruncateStmt(t) => ranges(&t.relations, AX),
        NodeEnum::LockStmt(l) => ranges(&l.relations, AX),
        NodeEnum::ClusterStmt(c) => c.relation.iter().map(|rv| lock(rv, AX)).collect(),
        NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectTable as i32 => d
            .objects
            .iter()
            .filter_map(|o| match &o.node {
                Some(NodeEnum::List(l)) => Some(TableLock {
                    table: l
                        .items
                        .iter()
                        .filter_map(|n| match &n.node {
                            Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                        .join("."),
                    mode: AX,
                }),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn ranges(list: &[Node], mode: &'static str) -> Vec<TableLock> {
    list.iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::RangeVar(rv)) => Some(lock(rv, mode)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locks(sql: &str) -> Vec<(String, &'static str)> {
        let parsed = pg_query::parse(sql, 0).unwrap();
        let node = parsed.protobuf.stmts[0]
            .stmt
            .as_ref()
            .unwrap()
            .node
            .clone()
            .unwrap();
        table_locks(&node)
            .into_iter()
            .map(|l| (l.table, l.mode))
            .collect()
    }

    #[test]
    fn the_tables_a_statement_locks_against_traffic() {
        assert_eq!(
            locks("ALTER TABLE a ADD CONSTRAINT f FOREIGN KEY (b_id) REFERENCES s.b (id)"),
            vec![
                ("a".into(), "ACCESS EXCLUSIVE"),
                ("s.b".into(), "SHARE ROW EXCLUSIVE")
            ]
        );
        assert_eq!(
            locks("CREATE INDEX i ON t (n)"),
            vec![("t".into(), "SHARE")]
        );
        assert!(locks("CREATE INDEX CONCURRENTLY i ON t (n)").is_empty());
        assert_eq!(
            locks("DROP TABLE x, y.z"),
            vec![
                ("x".into(), "ACCESS EXCLUSIVE"),
                ("y.z".into(), "ACCESS EXCLUSIVE")
            ]
        );
        assert!(locks("CREATE TABLE n (i int)").is_empty());
        assert!(locks("UPDATE t SET n = 1").is_empty());
    }
}
