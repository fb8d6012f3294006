//! The one table of lint rules: id ↔ default severity ↔ summary ↔ lock ↔ docs.
//!
//! Ids are kebab-case and stable: users write them in `-- pgrollout:allow` directives and
//! in the pipeline file, so a rename breaks their files. Add, never rename.

use super::context::RuleContext;
use super::rules::*;
use super::{Finding, Severity};

/// A rule's check, run once per parsed statement of the up section.
pub type Check = fn(&RuleContext<'_>, &mut Vec<Finding>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Loses data or objects.
    Destructive,
    /// Holds a lock long enough to stall traffic (a scan, a rewrite, an index build).
    Locking,
    /// Breaks code that is running against the old schema.
    Compatibility,
    /// Transaction boundaries.
    Transactions,
    /// Types and habits that hurt later.
    Hygiene,
    /// About the file itself: syntax, meta-commands, allow directives.
    Directives,
    /// Seen by `lint --rehearse` on a shadow database, not guessed from the syntax.
    Observed,
}

#[derive(Debug, Clone, Copy)]
pub struct RuleInfo {
    pub id: &'static str,
    pub severity: Severity,
    pub category: Category,
    /// One line: what the rule catches.
    pub summary: &'static str,
    /// The PostgreSQL lock (or other hazard) the rule is about.
    pub lock: &'static str,
    /// `None` for the rules the linter itself reports (syntax, directives).
    pub check: Option<Check>,
}

impl RuleInfo {
    /// Where the rule is documented, relative to the repository root.
    pub fn docs(&self) -> String {
        format!("docs/lint-rules.md#{}", self.id)
    }
}

/// The registry entry for `id`.
pub fn rule(id: &str) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.id == id)
}

use Category::*;
use Severity::*;

const fn r(
    id: &'static str,
    severity: Severity,
    category: Category,
    summary: &'static str,
    lock: &'static str,
    check: Option<Check>,
) -> RuleInfo {
    RuleInfo {
        id,
        severity,
        category,
        summary,
        lock,
        check,
    }
}

const AX_BRIEF: &str =
    "ACCESS EXCLUSIVE, briefly; the hazard is code still running against the old schema";
const REWRITE: &str = "ACCESS EXCLUSIVE for the whole table rewrite: reads and writes blocked";
const NONE: &str = "none";

#[rustfmt::skip]
pub static RULES: &[RuleInfo] = &[
    // Destructive
    r("ban-drop-table", Error, Destructive, "DROP TABLE deletes a table and its data", "ACCESS EXCLUSIVE on the table; the data is gone", Some(ban_drop_table::check)),
    r("ban-drop-schema", Error, Destructive, "DROP SCHEMA deletes a schema (and with CASCADE everything in it)", "ACCESS EXCLUSIVE on every dropped object", Some(ban_drop_schema::check)),
    r("ban-drop-database", Error, Destructive, "DROP DATABASE deletes a whole database", "exclusive use of the database: fails while anyone is connected", Some(ban_drop_database::check)),
    r("ban-drop-column", Warning, Destructive, "DROP COLUMN deletes a column's data and breaks code that still uses it", AX_BRIEF, Some(ban_drop_column::check)),
    r("ban-truncate", Error, Destructive, "TRUNCATE deletes every row of a table", "ACCESS EXCLUSIVE on the table", Some(ban_truncate::check)),
    r("ban-truncate-cascade", Error, Destructive, "TRUNCATE … CASCADE also empties every table that references it", "ACCESS EXCLUSIVE on the table and on every table reached by the cascade", Some(ban_truncate_cascade::check)),
    r("delete-without-where", Error, Destructive, "DELETE without WHERE deletes every row", "ROW EXCLUSIVE on the table and a row lock on every row until commit", Some(delete_without_where::check)),
    r("update-without-where", Warning, Destructive, "UPDATE without WHERE rewrites every row in one transaction", "ROW EXCLUSIVE on the table and a row lock on every row until commit", Some(update_without_where::check)),
    // Locking
    r("require-concurrent-index-creation", Error, Locking, "CREATE INDEX without CONCURRENTLY blocks writes for the whole build", "SHARE on the table: writes blocked while the index builds", Some(require_concurrent_index_creation::check)),
    r("require-concurrent-index-deletion", Warning, Locking, "DROP INDEX without CONCURRENTLY locks the table", "ACCESS EXCLUSIVE on the index's table", Some(require_concurrent_index_deletion::check)),
    r("require-concurrent-reindex", Error, Locking, "REINDEX without CONCURRENTLY blocks writes and index reads", "SHARE on the table (writes blocked) and ACCESS EXCLUSIVE on each index", Some(require_concurrent_reindex::check)),
    r("require-concurrent-partition-detach", Warning, Locking, "DETACH PARTITION without CONCURRENTLY locks the parent", "ACCESS EXCLUSIVE on the parent table and the partition", Some(require_concurrent_partition_detach::check)),
    r("ban-vacuum-full-and-cluster", Error, Locking, "VACUUM FULL and CLUSTER rewrite the table under the strongest lock", REWRITE, Some(ban_vacuum_full_and_cluster::check)),
    r("require-not-valid-foreign-key", Error, Locking, "Adding a FOREIGN KEY without NOT VALID scans the table while writes wait", "SHARE ROW EXCLUSIVE on both tables for the validating scan", Some(require_not_valid_foreign_key::check)),
    r("require-not-valid-check", Error, Locking, "Adding a CHECK constraint without NOT VALID scans the table under lock", "ACCESS EXCLUSIVE for the validating scan", Some(require_not_valid_check::check)),
    r("require-unique-using-index", Error, Locking, "UNIQUE or PRIMARY KEY added directly builds its index under lock", "ACCESS EXCLUSIVE while the index builds", Some(require_unique_using_index::check)),
    r("set-not-null-scan", Error, Locking, "SET NOT NULL on an existing column scans the whole table under lock", "ACCESS EXCLUSIVE for the scan", Some(set_not_null_scan::check)),
    r("column-type-rewrite", Error, Locking, "ALTER COLUMN TYPE rewrites the table and its indexes (unless binary-coercible)", REWRITE, Some(column_type_rewrite::check)),
    r("add-column-volatile-default", Error, Locking, "ADD COLUMN with a volatile default rewrites the table", REWRITE, Some(add_column_volatile_default::check)),
    r("add-column-generated-stored", Error, Locking, "ADD COLUMN … GENERATED ALWAYS AS (…) STORED rewrites the table", REWRITE, Some(add_column_generated_stored::check)),
    r("add-column-serial", Error, Locking, "ADD COLUMN of type serial or an identity column rewrites the table", REWRITE, Some(add_column_serial::check)),
    // Compatibility
    r("rename-column", Warning, Compatibility, "RENAME COLUMN breaks code still using the old name", AX_BRIEF, Some(rename_column::check)),
    r("rename-table", Warning, Compatibility, "RENAME TABLE breaks code still using the old name", AX_BRIEF, Some(rename_table::check)),
    r("add-column-required", Error, Compatibility, "ADD COLUMN … NOT NULL without a default fails on a non-empty table and breaks old INSERTs", AX_BRIEF, Some(add_column_required::check)),
    r("drop-not-null", Warning, Compatibility, "DROP NOT NULL lets NULLs reach code that assumes there are none", AX_BRIEF, Some(drop_not_null::check)),
    // Transactions
    r("non-transactional-in-transaction", Error, Transactions, "A statement that cannot run in a transaction block, in a migration that runs in one", "none: PostgreSQL refuses the statement (25001)", Some(non_transactional_in_transaction::check)),
    r("transaction-nesting", Error, Transactions, "BEGIN/COMMIT that nests or ends the migration's transaction half-way", "transaction boundaries: statements end up outside the transaction", Some(transaction_nesting::check)),
    r("uncommitted-transaction", Error, Transactions, "A BEGIN that is never committed", "transaction boundaries: the work is rolled back when the session ends", Some(uncommitted_transaction::check)),
    r("mixed-transaction-modes", Warning, Transactions, "Transactional DDL and non-transactional statements in one migration", "atomicity: a failure leaves the migration half-applied", Some(mixed_transaction_modes::check)),
    r("redundant-transaction-wrapper", Info, Transactions, "The file wraps itself in BEGIN … COMMIT though pgrollout already runs it in a transaction", NONE, Some(redundant_transaction_wrapper::check)),
    // Hygiene
    r("prefer-timestamptz", Warning, Hygiene, "timestamp without time zone loses the UTC offset", NONE, Some(prefer_timestamptz::check)),
    r("prefer-bigint-over-int", Warning, Hygiene, "32- or 16-bit integer keys can run out", "none now; widening later rewrites the table under ACCESS EXCLUSIVE", Some(prefer_bigint_over_int::check)),
    r("prefer-identity", Warning, Hygiene, "serial types instead of identity columns", NONE, Some(prefer_identity::check)),
    r("prefer-text-field", Info, Hygiene, "varchar(n) instead of text with a CHECK", "none now; changing the length later can rewrite the table under ACCESS EXCLUSIVE", Some(prefer_text_field::check)),
    r("ban-char-field", Warning, Hygiene, "char(n) pads with blanks and is almost always a mistake", NONE, Some(ban_char_field::check)),
    r("prefer-robust-stmts", Warning, Hygiene, "A non-transactional migration without IF [NOT] EXISTS cannot simply be retried", "none: retry safety after a partial failure", Some(prefer_robust_stmts::check)),
    r("identifier-too-long", Error, Hygiene, "An identifier longer than 63 bytes is silently truncated", NONE, Some(identifier_too_long::check)),
    r("prefer-jsonb", Warning, Hygiene, "json instead of jsonb: no equality operator, no indexing", NONE, Some(prefer_jsonb::check)),
    r("require-enum-value-ordering", Info, Hygiene, "ALTER TYPE … ADD VALUE without BEFORE/AFTER appends the value at the end", NONE, Some(require_enum_value_ordering::check)),
    r("require-down", Info, Hygiene, "A migration without down SQL cannot be rolled back", NONE, Some(require_down::check)),
    // Observed by a rehearsal on a shadow database (`lint --rehearse`); the severity is the
    // rehearsal's (docs/lint-rules.md, "Rehearsal"): these rows give the default.
    r("observed-rewrite", Error, Observed, "A rehearsal saw the statement rewrite an existing table or its indexes under a lock that blocks reads or writes", "the lock the rehearsal saw held (ACCESS EXCLUSIVE for a rewrite) for the whole rewrite", None),
    r("observed-scan", Error, Observed, "A rehearsal saw the statement scan an existing table under a lock that blocks reads or writes", "the lock the rehearsal saw held (SHARE, SHARE ROW EXCLUSIVE, ACCESS EXCLUSIVE) for the whole scan", None),
    r("observed-lock", Info, Observed, "A rehearsal saw the statement take a lock that blocks reads or writes, without a rewrite or scan", "the lock the rehearsal saw taken, held to the end of the migration's transaction", None),
    // Directives and the file itself
    r("syntax-error", Error, Directives, "The PostgreSQL parser rejected the statement", NONE, None),
    r("psql-meta-command", Info, Directives, "A psql meta-command (\\set, \\i …), which pgrollout does not run", NONE, None),
    r("allow-missing-reason", Error, Directives, "A pgrollout:allow directive without a reason", NONE, None),
    r("allow-unknown-rule", Error, Directives, "A pgrollout:allow directive naming a rule that does not exist", NONE, None),
    r("unused-allow", Warning, Directives, "A pgrollout:allow directive that suppresses nothing", NONE, None),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_kebab_case() {
        let mut seen = HashSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "duplicate rule id {}", r.id);
            assert!(
                r.id.split('-').all(|p| !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())),
                "rule id {} is not kebab-case",
                r.id
            );
        }
    }

    /// Every registry id has a `## <id>` heading in docs/lint-rules.md and vice versa.
    #[test]
    fn docs_match_registry() {
        let docs =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/lint-rules.md"))
                .expect("docs/lint-rules.md");
        let headings: HashSet<&str> = docs
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .map(str::trim)
            .collect();
        let ids: HashSet<&str> = RULES.iter().map(|r| r.id).collect();
        let undocumented: Vec<_> = ids.difference(&headings).collect();
        let unknown: Vec<_> = headings.difference(&ids).collect();
        assert!(
            undocumented.is_empty(),
            "rules without a `## <id>` heading: {undocumented:?}"
        );
        assert!(
            unknown.is_empty(),
            "headings that are not rule ids: {unknown:?}"
        );
    }
}
