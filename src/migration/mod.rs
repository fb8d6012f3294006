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
    /// False when loaded without splitting (see [`MigrationSet::load_lazy`]): `items` is
    /// empty until [`Migration::parse_statements`].
    pub parsed: bool,
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
    /// The down SQL could not be split (an unterminated quote or comment): the section
    /// has no statements, and this says where. Not a load error — see
    /// `plan::check_downs`.
    pub invalid: Option<DownInvalid>,
}

/// Where and why a down section cannot be split into statements.
#[derive(Debug, Clone)]
pub struct DownInvalid {
    pub line: u32,
    pub col: u32,
    pub message: String,
}

/// Split a down section; a lexical error becomes [`Down::invalid`] instead of failing
/// the whole migration.
fn down_section(
    path: &Path,
    text: &str,
    lines: &LineIndex,
    range: Range<usize>,
    no_transaction: bool,
    marker_line: Option<u32>,
    split: bool,
) -> Result<(Section, Option<DownInvalid>), FileError> {
    match parse::section(
        path,
        text,
        lines,
        range.clone(),
        no_transaction,
        marker_line,
        split,
    ) {
        Ok(s) => Ok((s, None)),
        Err(FileError::Sql {
            line, col, message, ..
        }) => Ok((
            Section {
                path: path.to_path_buf(),
                range,
                no_transaction,
                marker_line,
                items: Vec::new(),
                parsed: true,
            },
            Some(DownInvalid { line, col, message }),
        )),
        Err(e) => Err(e),
    }
}

mod error;
pub mod inverse;
pub mod layout;
pub mod parse;
pub mod patterns;

pub use error::FileError;
pub use layout::{Layout, LayoutOptions};

use std::path::Path;

/// All migrations of a directory, ordered by version.
#[derive(Debug, Clone, Default)]
pub struct MigrationSet {
    pub dir: PathBuf,
    pub migrations: Vec<Migration>,
    /// The layout the directory was read in (declared or detected).
    pub layout: Layout,
    /// Entries of the directory that are not migrations (see `Listing::stray`).
    pub stray: Vec<PathBuf>,
    /// What the layout read but cannot check (see `Listing::notes`).
    pub notes: Vec<String>,
    /// Flyway's repeatable migrations, in the order they run (by description); each has
    /// the version [`Version::repeatable`] and runs whenever its checksum changes.
    pub repeatables: Vec<Migration>,
}

/// A file name taken apart: `0003_add_users.up.sql` → ("0003", "add_users", Some(Up)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    pub version: String,
    pub name: String,
    pub pair: Option<Direction>,
}

/// Parse a migration file name. `None` when it is not `<digits>_<name>[.up|.down].sql`.
pub fn parse_file_name(file_name: &str) -> Option<FileName> {
    layout::native::parse(file_name, '_')
}

impl Version {
    /// The version shown for a repeatable migration (`R`, as Flyway's file prefix): it
    /// has none, and is never a key of the tracking table.
    pub fn repeatable() -> Version {
        Version {
            text: "R".into(),
            value: 0,
        }
    }

    /// Digits (`20251105211941`, `0003`), or integers separated by dots (Flyway's `1.2`,
    /// `1.10`), whose value packs the parts so that `1.2` < `1.10` < `2.0`: see
    /// [`dotted_key`]. The tracking schema computes the same key (`version_key`).
    pub fn parse(text: &str) -> Option<Version> {
        if text.contains('.') {
            return Some(Version {
                text: text.to_string(),
                value: dotted_key(text)?,
            });
        }
        if text.is_empty() || text.len() > 38 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Version {
            text: text.to_string(),
            value: text.parse().ok()?,
        })
    }
}

/// The order-preserving numeric key of a dotted version: each part without leading
/// zeros, prefixed by its length in two digits, then `00`, right-padded with zeros to 38
/// digits. Equal-length digit strings compare as numbers do, and the `00` end mark sorts
/// before any part, so `1` (= `1.0`) < `1.1` < `1.2` < `1.10` < `2`. Trailing zero parts
/// are dropped, as Flyway treats `1.0` as `1`. `None` for an empty part, a non-digit, or
/// a key longer than 38 digits. Stored in every tracking row: never change it.
pub fn dotted_key(text: &str) -> Option<u128> {
    let mut parts: Vec<&str> = Vec::new();
    for p in text.split('.') {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let t = p.trim_start_matches('0');
        parts.push(if t.is_empty() { "0" } else { t });
    }
    while parts.len() > 1 && parts.last() == Some(&"0") {
        parts.pop();
    }
    let mut packed = String::new();
    for p in parts {
        if p.len() > 36 {
            return None;
        }
        packed.push_str(&format!("{:02}{p}", p.len()));
    }
    packed.push_str("00");
    if packed.len() > 38 {
        return None;
    }
    while packed.len() < 38 {
        packed.push('0');
    }
    packed.parse().ok()
}

fn read_text(path: &Path) -> Result<String, FileError> {
    let bytes = read_bytes(path).map_err(|source| FileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse::decode(path, bytes)
}

/// A file's bytes: open, read until EOF, close. `std::fs::read` also asks for the size
/// first (a `stat` per file), which for thousands of small migrations costs more than
/// the reads. The file is read into the thread's buffer and copied out at its size: one
/// allocation, no slack kept for the run.
fn read_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 64 * 1024]);
    }
    let mut f = std::fs::File::open(path)?;
    BUFFER.with_borrow_mut(|buf| {
        let mut len = 0;
        loop {
            if len == buf.len() {
                buf.resize(len * 2, 0);
            }
            match f.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(buf[..len].to_vec())
    })
}

impl Migration {
    /// Load one migration from its up file (and, for a pair, its down file).
    pub fn load(
        version: Version,
        name: String,
        path: &Path,
        down_file: Option<&Path>,
    ) -> Result<Migration, FileError> {
        Self::load_with(version, name, path, down_file, true)
    }

    /// With `split: false` the statements are not parsed yet: reading 1000 applied files
    /// for a no-op `apply` needs only their versions and checksums.
    pub fn load_with(
        version: Version,
        name: String,
        path: &Path,
        down_file: Option<&Path>,
        split: bool,
    ) -> Result<Migration, FileError> {
        let source = read_text(path)?;
        let lines = LineIndex::new(&source);
        let sections = parse::sections(path, &source)?;
        let (range, no_tx, marker) = sections.up;
        let up = parse::section(path, &source, &lines, range.clone(), no_tx, marker, split)?;
        let checksum = parse::checksum(&source[range]);

        let down = if let Some(down_path) = down_file {
            if sections.down.is_some() || sections.rollback_comments.is_some() {
                return Err(FileError::Directive {
                    path: path.to_path_buf(),
                    line: sections.down.as_ref().and_then(|d| d.2).unwrap_or(1),
                    message: format!(
                        "this file has its own down SQL and also a separate {}: keep one",
                        down_path.display()
                    ),
                });
            }
            let dsrc = read_text(down_path)?;
            let dlines = LineIndex::new(&dsrc);
            let ds = parse::sections(down_path, &dsrc)?;
            // A .down.sql may carry a `-- migrate:up transaction:false` style marker for its
            // own options; without one, the whole file is the down SQL.
            let (r, no_tx, marker) = ds.up;
            let (section, invalid) =
                down_section(down_path, &dsrc, &dlines, r, no_tx, marker, split)?;
            Some(Down {
                source_kind: DownSource::File,
                source: dsrc,
                lines: dlines,
                section,
                invalid,
            })
        } else if let Some((r, no_tx, marker)) = sections.down {
            let (section, invalid) = down_section(path, &source, &lines, r, no_tx, marker, split)?;
            Some(Down {
                source_kind: DownSource::Section,
                source: source.clone(),
                lines: lines.clone(),
                section,
                invalid,
            })
        } else if let Some(rb) = sections.rollback_comments {
            let rlines = LineIndex::new(&rb);
            let (section, invalid) =
                down_section(path, &rb, &rlines, 0..rb.len(), false, None, split)?;
            Some(Down {
                source_kind: DownSource::RollbackComments,
                source: rb,
                lines: rlines,
                section,
                invalid,
            })
        } else {
            None
        };
        let allows = parse::allows(&source);
        Ok(Migration {
            version,
            name,
            path: path.to_path_buf(),
            source,
            lines,
            up,
            down,
            checksum,
            allows,
        })
    }

    /// Split and parse the statements if [`Migration::load_with`] skipped it.
    pub fn parse_statements(&mut self) -> Result<(), FileError> {
        if !self.up.parsed {
            let u = &self.up;
            self.up = parse::section(
                &u.path,
                &self.source,
                &self.lines,
                u.range.clone(),
                u.no_transaction,
                u.marker_line,
                true,
            )?;
        }
        if let Some(d) = &mut self.down {
            if !d.section.parsed {
                let s = &d.section;
                (d.section, d.invalid) = down_section(
                    &s.path,
                    &d.source,
                    &d.lines,
                    s.range.clone(),
                    s.no_transaction,
                    s.marker_line,
                    true,
                )?;
            }
        }
        Ok(())
    }

    /// Forget the statements' syntax trees once the migration is checked: running it
    /// needs their spans and classes only. A transaction:false up section keeps them
    /// (each statement's progress line names its kind).
    pub fn drop_syntax_trees(&mut self) {
        let mut sections: Vec<&mut Section> =
            self.down.iter_mut().map(|d| &mut d.section).collect();
        if !self.up.no_transaction {
            sections.push(&mut self.up);
        }
        for section in sections {
            for item in &mut section.items {
                if let Item::Statement(s) = item {
                    s.ast = None;
                }
            }
        }
    }

    /// The down SQL as it would be stored at apply time (the section text), if any.
    pub fn down_text(&self) -> Option<&str> {
        self.down
            .as_ref()
            .map(|d| &d.source[d.section.range.clone()])
    }

    pub fn statements(&self) -> impl Iterator<Item = &crate::sql::Statement> {
        self.up.items.iter().filter_map(|i| match i {
            Item::Statement(s) => Some(s),
            Item::MetaCommand(_) => None,
        })
    }

    /// Line and column of a byte offset in the up file.
    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        self.lines.line_col(&self.source, offset)
    }
}

impl MigrationSet {
    /// Read the migrations of `dir` in its detected layout (see [`MigrationSet::load_in`]).
    pub fn load(dir: &Path) -> Result<MigrationSet, Vec<FileError>> {
        Self::load_in(dir, &LayoutOptions::default(), true)
    }

    /// Like [`MigrationSet::load`] but without splitting statements (names, sections and
    /// checksums only); parse what will run with [`Migration::parse_statements`].
    pub fn load_lazy(dir: &Path) -> Result<MigrationSet, Vec<FileError>> {
        Self::load_in(dir, &LayoutOptions::default(), false)
    }

    /// Read the migrations of `dir` in the declared layout, or the detected one. Entries
    /// that are not migrations are not run but listed in `stray` (to be warned about);
    /// `.sql` files the layout does not read, duplicate versions, unreadable or non-UTF-8
    /// files are errors — never skipped — and so is a directory holding `.sql` files of
    /// which none was read. Every error is returned.
    /// With `split: false` statements are not parsed (see [`Migration::load_with`]).
    pub fn load_in(
        dir: &Path,
        opts: &LayoutOptions,
        split: bool,
    ) -> Result<MigrationSet, Vec<FileError>> {
        let (layout, mut listing) = layout::list(dir, opts).map_err(|e| vec![e])?;
        let mut errors = std::mem::take(&mut listing.errors);
        if listing.entries.is_empty() && errors.is_empty() {
            let files = layout::sql_files(dir);
            if let Some(example) = files.first() {
                errors.push(FileError::NothingRead {
                    dir: dir.to_path_buf(),
                    count: files.len(),
                    example: example.clone(),
                    layout,
                    hint: layout::hint(dir, &files),
                });
            }
        }
        let mut migrations = Vec::with_capacity(listing.entries.len());
        load_all(listing.entries, split, &mut migrations, &mut errors);
        let mut repeatables = Vec::with_capacity(listing.repeatables.len());
        for r in listing.repeatables {
            match Migration::load_with(Version::repeatable(), r.name, &r.path, None, split) {
                Ok(m) => repeatables.push(m),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(MigrationSet {
                dir: dir.to_path_buf(),
                migrations,
                layout,
                stray: listing.stray,
                notes: listing.notes,
                repeatables,
            })
        } else {
            Err(errors)
        }
    }

    pub fn get(&self, version: &Version) -> Option<&Migration> {
        self.migrations
            .binary_search_by(|m| m.version.cmp(version))
            .ok()
            .map(|i| &self.migrations[i])
    }
}

type Job = layout::Entry;

/// Read and parse the files on every core, keeping their order. Parsing dominates
/// (the PostgreSQL parser, once per statement) and libpg_query is thread-safe.
/// Load `jobs` in order into `out` (each migration written once, straight into its
/// place: thousands of them copied through an intermediate vector showed as page faults),
/// and each file that cannot be loaded into `errors`.
fn load_all(jobs: Vec<Job>, split: bool, out: &mut Vec<Migration>, errors: &mut Vec<FileError>) {
    let load = |e: Job| {
        let mut m = Migration::load_with(e.version, e.name, &e.up, e.down.as_deref(), split)?;
        // The layout's own setting (diesel's metadata.toml, …) applies to the up section.
        m.up.no_transaction |= e.no_transaction;
        Ok(m)
    };
    let keep = |r: Result<Migration, FileError>| match r {
        Ok(m) => out.push(m),
        Err(e) => errors.push(e),
    };
    // Threads only pay off when there is parsing to share (and asking how many cores
    // there are reads the cgroup files). Opening and reading thousands of files does not
    // go faster on two threads: measured, the kernel's per-file work contends.
    let workers = if !split || jobs.len() < 16 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    if workers < 2 {
        jobs.into_iter().map(load).for_each(keep);
        return;
    }
    let chunk = jobs.len().div_ceil(workers);
    let mut chunks: Vec<Vec<Job>> = Vec::new();
    let mut jobs = jobs.into_iter().peekable();
    while jobs.peek().is_some() {
        chunks.push(jobs.by_ref().take(chunk).collect());
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| scope.spawn(move || c.into_iter().map(load).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a migration loader thread panicked"))
            .for_each(keep)
    })
}

/// Turn free text into a snake_case file-name part: `Add Users table!` → `add_users_table`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::new();
    let mut prev_us = true;
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && prev_lower && !prev_us {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_us = false;
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else if !prev_us {
            out.push('_');
            prev_us = true;
            prev_lower = false;
        }
    }
    out.trim_end_matches('_').to_string()
}

/// The text `pgrollout new` writes.
pub fn template(name: &str) -> String {
    format!(
        "-- {name}\n\
-- Checklist before merging:\n\
--   * the down section undoes exactly what the up section does (`pgrollout test` checks it);\n\
--   * indexes on existing tables: CREATE INDEX CONCURRENTLY in a `transaction:false` file;\n\
--   * constraints on existing tables: add NOT VALID, VALIDATE in a later migration;\n\
--   * run `pgrollout lint` and `pgrollout apply --dry-run` against a copy of production.\n\
\n\
-- migrate:up\n\
\n\
\n\
-- migrate:down\n\
\n"
    )
}

/// The file's own `BEGIN; … COMMIT;` around every other statement, if it has one.
pub fn wrapper(section: &Section) -> Option<(&crate::sql::Statement, &crate::sql::Statement)> {
    let stmts: Vec<&crate::sql::Statement> = section
        .items
        .iter()
        .filter_map(|i| match i {
            crate::sql::Item::Statement(s) => Some(s),
            _ => None,
        })
        .collect();
    let (first, last) = (stmts.first()?, stmts.last()?);
    if stmts.len() >= 2
        && first.tx_control == Some(crate::sql::TxControl::Begin)
        && last.tx_control == Some(crate::sql::TxControl::Commit)
    {
        Some((first, last))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        let f = parse_file_name("20251105211941_create_users.sql").unwrap();
        assert_eq!(
            (f.version.as_str(), f.name.as_str(), f.pair),
            ("20251105211941", "create_users", None)
        );
        let f = parse_file_name("0003_add, odd: %name.up.sql").unwrap();
        assert_eq!(
            (f.name.as_str(), f.pair),
            ("add, odd: %name", Some(Direction::Up))
        );
        assert_eq!(
            parse_file_name("3_x.down.sql").unwrap().pair,
            Some(Direction::Down)
        );
        for bad in [
            "create_users.sql",
            "v1_x.sql",
            "001.sql",
            "001_.sql",
            "1a_x.sql",
            "_x.sql",
        ] {
            assert!(parse_file_name(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn versions_order_numerically() {
        let a = Version::parse("2").unwrap();
        let b = Version::parse("10").unwrap();
        assert!(a < b);
        assert_eq!(Version::parse("01").unwrap(), Version::parse("1").unwrap());
        assert!(Version::parse(&"9".repeat(39)).is_none());
    }

    #[test]
    fn snake() {
        assert_eq!(snake_case("Add Users table!"), "add_users_table");
        assert_eq!(snake_case("addUserEmail"), "add_user_email");
        assert_eq!(snake_case("  --x--  "), "x");
    }
}
