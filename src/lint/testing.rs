//! Test support: builds a [`Migration`] from SQL text with the real splitter.

use std::path::PathBuf;

use super::{lint_migration, Finding, LintOptions};
use crate::migration::{Migration, Section, Version};
use crate::sql::LineIndex;

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
            items: crate::sql::split(sql, 0..sql.len(), &lines).expect("test SQL splits"),
            parsed: true,
        },
        // Every test migration has a down section, so only require-down's own tests see
        // its finding.
        down: Some(test_down()),
        checksum: String::new(),
        allows: crate::migration::parse::allows(sql),
    }
}

fn test_down() -> crate::migration::Down {
    let sql = "SELECT 1;\n";
    let lines = LineIndex::new(sql);
    let path = PathBuf::from("migrations/001_test.sql");
    crate::migration::Down {
        source_kind: crate::migration::DownSource::Section,
        source: sql.to_string(),
        lines: lines.clone(),
        section: Section {
            path,
            range: 0..sql.len(),
            no_transaction: false,
            marker_line: None,
            items: crate::sql::split(sql, 0..sql.len(), &lines).expect("test SQL splits"),
            parsed: true,
        },
        invalid: None,
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
