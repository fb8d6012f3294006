//! Live context: what the target database knows about the tables findings touch.
//!
//! The caller collects [`tables_of_interest`], asks the database for their size (from
//! `pg_class.reltuples` and `pg_total_relation_size`), and feeds the answers back through
//! [`apply_table_stats`]. Nothing here talks to a database.

use std::collections::HashMap;

use super::registry::{self, Category};
use super::{Finding, Severity};

/// Size of one table in the target database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableStats {
    /// `pg_class.reltuples`; negative when the table was never analyzed.
    pub rows_estimate: i64,
    /// `pg_total_relation_size`: heap, indexes and TOAST.
    pub total_bytes: i64,
    /// False when the table does not exist yet (an earlier pending migration creates it).
    pub exists: bool,
}

/// The tables findings touch, sorted and without duplicates, as written in the SQL.
pub fn tables_of_interest(findings: &[Finding]) -> Vec<String> {
    let mut tables: Vec<String> = findings.iter().filter_map(|f| f.table.clone()).collect();
    tables.sort();
    tables.dedup();
    tables
}

/// Puts each touched table's size into the finding's message, makes locking findings
/// errors on tables larger than `threshold_bytes` and warnings on smaller ones, and
/// downgrades findings on tables that do not exist yet to info (an empty new table
/// cannot stall anyone).
///
/// This is the one place sizes change severities: offline there are no sizes and the
/// registry's defaults stand (locking rules that scan or rewrite are errors); any source
/// of live sizes — the target's catalog today, a shadow rehearsal joined with the
/// target's sizes — feeds them here.
///
/// `stats` is keyed by the names [`tables_of_interest`] returned. Only destructive,
/// locking and compatibility findings are affected: the hygiene rules are about the
/// schema's shape, whatever the table's size.
pub fn apply_table_stats(
    findings: &mut [Finding],
    stats: &HashMap<String, TableStats>,
    threshold_bytes: i64,
) {
    for f in findings {
        let Some(table) = &f.table else { continue };
        let Some(s) = stats.get(table) else { continue };
        let Some(category) = registry::rule(f.rule).map(|r| r.category) else {
            continue;
        };
        if !matches!(
            category,
            Category::Destructive | Category::Locking | Category::Compatibility
        ) {
            continue;
        }
        if !s.exists {
            f.severity = Severity::Info;
            f.message
                .push_str(" (the table does not exist yet: nothing to lock)");
            continue;
        }
        let size = format!(
            "{}, {}",
            human_rows(s.rows_estimate),
            human_bytes(s.total_bytes)
        );
        let quoted = format!("`{table}`");
        match f.message.find(&quoted) {
            Some(at) => f
                .message
                .insert_str(at + quoted.len(), &format!(" ({size})")),
            None => f.message.push_str(&format!(" ({quoted}: {size})")),
        }
        // The severity policy with sizes known: a locking finding is an error on a table
        // above the threshold (a scan or rewrite there stalls traffic for long) and a
        // warning below it (the lock is held for moments). Info stays info.
        if category == Category::Locking {
            if s.total_bytes > threshold_bytes && f.severity == Severity::Warning {
                f.severity = Severity::Error;
            } else if s.total_bytes <= threshold_bytes && f.severity == Severity::Error {
                f.severity = Severity::Warning;
            }
        }
    }
}

/// `1 M rows, 120 MB`: a table's size as the findings say it.
pub fn describe_size(rows_estimate: i64, total_bytes: i64) -> String {
    format!(
        "{}, {}",
        human_rows(rows_estimate),
        human_bytes(total_bytes)
    )
}

fn human_rows(rows: i64) -> String {
    match rows {
        r if r < 0 => "row count unknown".to_string(),
        1 => "1 row".to_string(),
        r if r < 1_000 => format!("{r} rows"),
        r if r < 1_000_000 => format!("{} k rows", r / 1_000),
        r if r < 1_000_000_000 => format!("{} M rows", r / 1_000_000),
        r => format!("{} G rows", r / 1_000_000_000),
    }
}

/// Like `pg_size_pretty`: powers of 1024, whole units.
fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut unit = "bytes";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    format!("{} {unit}", value.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn finding(rule: &'static str, severity: Severity, table: &str) -> Finding {
        Finding {
            rule,
            severity,
            path: PathBuf::from("m.sql"),
            line: 1,
            col: 1,
            message: format!("ALTER COLUMN TYPE rewrites `{table}` under ACCESS EXCLUSIVE"),
            fix: String::new(),
            table: Some(table.to_string()),
        }
    }

    const GB: i64 = 1024 * 1024 * 1024;

    #[test]
    fn size_goes_into_message_and_raises_severity() {
        let mut f = vec![finding("column-type-rewrite", Severity::Warning, "events")];
        let stats = HashMap::from([(
            "events".to_string(),
            TableStats {
                rows_estimate: 41_200_000,
                total_bytes: 12 * GB,
                exists: true,
            },
        )]);
        apply_table_stats(&mut f, &stats, GB);
        assert_eq!(
            f[0].message,
            "ALTER COLUMN TYPE rewrites `events` (41 M rows, 12 GB) under ACCESS EXCLUSIVE"
        );
        assert_eq!(f[0].severity, Severity::Error);
    }

    #[test]
    fn small_table_drops_the_default_error_to_warning() {
        let mut f = vec![
            finding("column-type-rewrite", Severity::Error, "events"),
            finding(
                "require-concurrent-index-deletion",
                Severity::Warning,
                "events",
            ),
        ];
        let stats = HashMap::from([(
            "events".to_string(),
            TableStats {
                rows_estimate: 12,
                total_bytes: 16_384,
                exists: true,
            },
        )]);
        apply_table_stats(&mut f, &stats, GB);
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[1].severity, Severity::Warning);
        assert!(
            f[0].message.contains("`events` (12 rows, 16 kB)"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn missing_table_downgrades_to_info() {
        let mut f = vec![finding("ban-drop-table", Severity::Error, "tmp")];
        let stats = HashMap::from([(
            "tmp".to_string(),
            TableStats {
                rows_estimate: 0,
                total_bytes: 0,
                exists: false,
            },
        )]);
        apply_table_stats(&mut f, &stats, GB);
        assert_eq!(f[0].severity, Severity::Info);
    }

    #[test]
    fn hygiene_and_unknown_tables_untouched() {
        let mut f = vec![
            finding("prefer-timestamptz", Severity::Warning, "events"),
            finding("column-type-rewrite", Severity::Warning, "other"),
        ];
        let before = f.clone();
        let stats = HashMap::from([(
            "events".to_string(),
            TableStats {
                rows_estimate: 1,
                total_bytes: 100 * GB,
                exists: true,
            },
        )]);
        apply_table_stats(&mut f, &stats, GB);
        assert_eq!(f, before);
    }

    #[test]
    fn tables_of_interest_sorted_unique() {
        let f = vec![
            finding("ban-drop-table", Severity::Error, "b"),
            finding("ban-drop-table", Severity::Error, "a"),
            finding("ban-drop-table", Severity::Error, "b"),
        ];
        assert_eq!(tables_of_interest(&f), vec!["a", "b"]);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(1023), "1023 bytes");
        assert_eq!(human_bytes(1536 * 1024), "2 MB");
        assert_eq!(human_rows(-1), "row count unknown");
        assert_eq!(human_rows(2_500), "2 k rows");
    }
}
