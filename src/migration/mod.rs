//! Migration files: discovery, naming, sections and directives, checksum.
//! Plain data — nothing here talks to a database.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use crate::sql::{Item, LineIndex};

/// A migration version: the digits of the file name. Ordered by numeric value, so
/// `2` < `10` and `01` == `1` (two files `01_a.sql` and `1_b.sql` are a duplicate).
/// Stored and shown with the file's own digits.
#[derive(Debug, Clone, Eq)]
pub struct Version {
    /// The digits as written in the file name (`0003`).
    pub text: String,
    /// Numeric value, for ordering. Versions are at most 38 digits.
    pub value: u128,
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Version {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}
impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state)
    }
}
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

/// Where a down section came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DownSource {
    /// `-- migrate:down` section in the same file.
    Section,
    /// `<version>_<name>.down.sql`.
    File,
    /// `-- ROLLBACK: <sql>` comment lines.
    RollbackComments,
}

/// A `-- pgrollout:allow <rule> <reason>` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    pub rule: String,
    pub reason: String,
    /// 1-based line of the directive.
    pub line: u32,
    /// `-- pgrollout:allow-file …` applies to the whole file.
    pub file_level: bool,
}

/// One section of SQL (the up or the down part of a migration) inside a source text.
#[derive(Debug, Clone)]
pub struct Section {
    /// Which file the section's text comes from (the `.down.sql` for a pair).
    pub path: PathBuf,
    /// Byte range of the section body in `source` (after its marker line).
    pub range: Range<usize>,
    /// `transaction:false` on the marker: run statement by statement, outside a transaction.
    pub no_transaction: bool,
    /// Line of the marker (`-- migrate:up`), when there is one.
    pub marker_line: Option<u32>,
    /// Statements and meta-commands of the body, positioned in `source`.
    pub items: Vec<Item>,
}

/// One migration: a file (or an up/down pair of files).
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: Version,
    /// The name part of the file name (`create_users`).
    pub name: String,
    /// The up file (the single file, or the `.up.sql` of a pair).
    pub path: PathBuf,
    /// Full text of the up file (BOM removed, line endings as on disk).
    pub source: String,
    pub lines: LineIndex,
    pub up: Section,
    pub down: Option<Down>,
    /// SHA-256 (hex) of the up section, LF-normalised. See [`checksum`].
    pub checksum: String,
    pub allows: Vec<Allow>,
}

#[derive(Debug, Clone)]
pub struct Down {
    pub source_kind: DownSource,
    /// Text of the file the down section lives in (the `.down.sql` for a pair; the
    /// migration's own source otherwise). For `-- ROLLBACK:` lines this is the SQL
    /// built from them, one statement per line.
    pub source: String,
    pub lines: LineIndex,
    pub section: Section,
}
