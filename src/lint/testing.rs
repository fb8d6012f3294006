//! Test support: builds a [`Migration`] from SQL text without the real splitter.
//!
//! The split is deliberately simple — `;` outside quotes, dollar quotes, comments and
//! parentheses — and each statement is parsed on its own by `pg_query`, so parse-tree
//! locations are offsets into the statement text, as with the real splitter.

use std::path::PathBuf;

use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

use super::{ast, lint_migration, parse_allows, Finding, LintOptions};
use crate::migration::{Migration, Section, Version};
use crate::sql::{Item, LineIndex, MetaCommand, Statement, SyntaxError, TxControl};

pub fn migration(sql: &str, no_transaction: bool) -> Migration {
    let lines = LineIndex::new(sql);
    let path = PathBuf::from("migrations/001_test.sql");
    Migration {
        version: Version {
            text: "001".into(),
            value: 1,
        },
        name: "test".into(),
        path: path.clone(),
        source: sql.to_string(),
        lines: lines.clone(),
        up: Section {
            path,
            range: 0..sql.len(),
            no_transaction,
            marker_line: None,
            items: split(sql, &lines),
        },
        down: None,
        checksum: String::new(),
        allows: parse_allows(sql),
    }
}

/// Lints `sql` as a migration that runs in a transaction.
pub fn lint(sql: &str) -> Vec<Finding> {
    lint_migration(&migration(sql, false), &LintOptions::default())
}

/// Lints `sql` as a `-- migrate:up transaction:false` migration.
pub fn lint_no_tx(sql: &str) -> Vec<Finding> {
    lint_migration(&migration(sql, true), &LintOptions::default())
}

/// (line, col) of every finding of `rule`.
pub fn at(findings: &[Finding], rule: &str) -> Vec<(u32, u32)> {
    findings
        .iter()
        .filter(|f| f.rule == rule)
        .map(|f| (f.line, f.col))
        .collect()
}

fn split(sql: &str, lines: &LineIndex) -> Vec<Item> {
    let b = sql.as_bytes();
    let mut items = Vec::new();
    let mut i = 0;
    let mut start: Option<usize> = None;
    let mut depth = 0i32;
    while i < b.len() {
        let c = b[i];
        if start.is_none() {
            if c.is_ascii_whitespace() {
                i += 1;
                continue;
            }
            if c == b'\\' {
                let end = sql[i..].find('\n').map_or(sql.len(), |e| i + e);
                let (line, col) = lines.line_col(sql, i);
                items.push(Item::MetaCommand(MetaCommand {
                    span: i..end,
                    line,
                    col,
                    text: sql[i..end].to_string(),
                }));
                i = end;
                continue;
            }
            if !sql[i..].starts_with("--") && !sql[i..].starts_with("/*") {
                start = Some(i);
            }
        }
        if sql[i..].starts_with("--") {
            i = sql[i..].find('\n').map_or(sql.len(), |e| i + e);
        } else if sql[i..].starts_with("/*") {
            i = sql[i + 2..].find("*/").map_or(sql.len(), |e| i + 2 + e + 2);
        } else if c == b'\'' || c == b'"' {
            let close = sql[i + 1..]
                .find(c as char)
                .map_or(sql.len(), |e| i + 1 + e);
            i = close + 1;
        } else if c == b'$' {
            let tag_end = sql[i + 1..].find('$').map(|e| i + 1 + e);
            match tag_end {
                Some(t)
                    if sql[i + 1..t]
                        .chars()
                        .all(|ch| ch.is_alphanumeric() || ch == '_') =>
                {
                    let tag = &sql[i..=t];
                    i = sql[t + 1..]
                        .find(tag)
                        .map_or(sql.len(), |e| t + 1 + e + tag.len());
                }
                _ => i += 1,
            }
        } else if c == b'(' {
            depth += 1;
            i += 1;
        } else if c == b')' {
            depth -= 1;
            i += 1;
        } else if c == b';' && depth == 0 {
            if let Some(s) = start.take() {
                items.push(Item::Statement(statement(sql, lines, s..i + 1, true)));
            }
            i += 1;
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        let end = sql.trim_end().len().max(s);
        items.push(Item::Statement(statement(sql, lines, s..end, false)));
    }
    items
}

fn statement(
    sql: &str,
    lines: &LineIndex,
    span: std::ops::Range<usize>,
    terminated: bool,
) -> Statement {
    let (line, col) = lines.line_col(sql, span.start);
    let (ast, syntax_error) = match pg_query::parse(&sql[span.clone()], 0) {
        Ok(r) => (
            r.protobuf
                .stmts
                .into_iter()
                .next()
                .and_then(|s| s.stmt)
                .and_then(|n| n.node),
            None,
        ),
        Err(e) => (
            None,
            Some(SyntaxError {
                offset: span.start,
                message: e.to_string(),
            }),
        ),
    };
    let non_transactional = ast.as_ref().and_then(non_transactional);
    let tx_control = match &ast {
        Some(NodeEnum::TransactionStmt(t)) => Some(match t.kind {
            1 | 2 => TxControl::Begin,
            3 => TxControl::Commit,
            4 => TxControl::Rollback,
            5 => TxControl::Savepoint,
            6 => TxControl::Release,
            7 => TxControl::RollbackTo,
            _ => TxControl::Other,
        }),
        _ => None,
    };
    Statement {
        span,
        line,
        col,
        terminated,
        ast,
        syntax_error,
        non_transactional,
        tx_control,
        copy_data: None,
    }
}

fn non_transactional(node: &NodeEnum) -> Option<&'static str> {
    match node {
        NodeEnum::IndexStmt(i) if i.concurrent => Some("CREATE INDEX CONCURRENTLY"),
        NodeEnum::DropStmt(d) if d.concurrent => Some("DROP INDEX CONCURRENTLY"),
        NodeEnum::ReindexStmt(r) if ast::has_option(&r.params, "concurrently") => {
            Some("REINDEX CONCURRENTLY")
        }
        NodeEnum::VacuumStmt(v) if v.is_vacuumcmd => Some("VACUUM"),
        NodeEnum::CreatedbStmt(_) => Some("CREATE DATABASE"),
        NodeEnum::DropdbStmt(_) => Some("DROP DATABASE"),
        NodeEnum::AlterSystemStmt(_) => Some("ALTER SYSTEM"),
        _ => {
            let (a, _) = ast::alter_table(node)?;
            ast::alter_cmds(a)
                .any(|c| {
                    ast::is_subtype(c, AlterTableType::AtDetachPartition)
                        && matches!(c.def.as_deref().and_then(|d| d.node.as_ref()),
                            Some(NodeEnum::PartitionCmd(p)) if p.concurrent)
                })
                .then_some("DETACH PARTITION CONCURRENTLY")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_positions() {
        let m = migration("SELECT ';';\n  -- c\n  CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n\\set x\nSELECT 2", false);
        let lines: Vec<(u32, u32)> =
            m.up.items
                .iter()
                .map(|i| match i {
                    Item::Statement(s) => {
                        assert!(s.ast.is_some(), "{s:?}");
                        (s.line, s.col)
                    }
                    Item::MetaCommand(mc) => (mc.line, mc.col),
                })
                .collect();
        assert_eq!(lines, vec![(1, 1), (3, 3), (4, 1), (5, 1)]);
    }
}
