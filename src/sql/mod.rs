//! Statement splitting with byte spans, and byte offset → line/column.
//!
//! Boundaries follow psql, which is what users run their files with: `;` outside quotes,
//! comments and dollar quotes ends a statement (not inside parentheses or a
//! `BEGIN ATOMIC … END` body), a last statement without `;` still counts, a backslash
//! outside quotes starts a psql meta-command that runs to the end of the line, and
//! `COPY … FROM STDIN` is followed by inline data up to a line `\.`.
//! Each statement is then parsed by the real PostgreSQL parser (`pg_query`).

use std::ops::Range;

mod classify;
mod locks;

mod parse;
pub mod plpgsql;
mod split;

pub use classify::{is_copy_from_stdin, non_transactional, statement_keyword, tx_control};
pub use locks::{table_locks, TableLock};
pub use parse::char_offset_to_byte;
pub use split::split;

/// Byte offsets of line starts, for turning a byte offset into a 1-based line and column.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        // Lines end at LF, CRLF or a lone CR, as in the migration parser.
        let mut starts = vec![0];
        let b = text.as_bytes();
        starts.extend(
            b.iter()
                .enumerate()
                .filter(|&(i, &c)| c == b'\n' || (c == b'\r' && b.get(i + 1) != Some(&b'\n')))
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// 1-based line and 1-based column (in characters) of `offset`, a byte offset into
    /// the text this index was built from.
    pub fn line_col(&self, text: &str, offset: usize) -> (u32, u32) {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let col = text[start..offset].chars().count() + 1;
        (line as u32 + 1, col as u32)
    }
}

/// What a non-transactional statement is, for messages: "CREATE INDEX CONCURRENTLY".
pub type StatementLabel = &'static str;

/// Transaction-control statements, recognised so a file's own BEGIN/COMMIT wrapper
/// can be reported and stripped rather than committing half-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxControl {
    Begin,
    Commit,
    Rollback,
    Savepoint,
    Release,
    RollbackTo,
    /// PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED, COMMIT AND CHAIN …: never allowed in a migration.
    Other,
}

/// A syntax error found by the PostgreSQL parser, positioned in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Byte offset in the whole file text.
    pub offset: usize,
    pub message: String,
}

/// One SQL statement of a file.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Byte range in the whole file text: from the statement's first token (leading
    /// comments and blanks excluded) up to and including its `;` when it has one.
    pub span: Range<usize>,
    /// 1-based line and column (characters) of the first token.
    pub line: u32,
    pub col: u32,
    /// Whether the statement ended with `;` (a last statement may not).
    pub terminated: bool,
    /// The parsed statement, when the parser accepted it. Boxed: `NodeEnum` is as large
    /// as its largest variant (kilobytes), and a statement keeps that size after its tree
    /// is dropped — thousands of pending migrations would hold it for the whole run.
    pub ast: Option<Box<pg_query::NodeEnum>>,
    pub syntax_error: Option<SyntaxError>,
    /// Set when the statement cannot run inside a transaction block.
    pub non_transactional: Option<StatementLabel>,
    pub tx_control: Option<TxControl>,
    /// For `COPY … FROM STDIN`: byte range in the file of the inline data that follows
    /// the statement, excluding the terminating `\.` line.
    pub copy_data: Option<Range<usize>>,
}

/// A psql meta-command (`\i`, `\set`, `\restrict` …): not SQL, never sent to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaCommand {
    pub span: Range<usize>,
    pub line: u32,
    pub col: u32,
    /// The command text, e.g. `\set ON_ERROR_STOP on`.
    pub text: String,
}

// Items are built once per file and moved, never copied in bulk; boxing the statement
// would only add an allocation per statement and churn for every user of the type.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Item {
    Statement(Statement),
    MetaCommand(MetaCommand),
}

/// A lexical error that prevents splitting: an unterminated quote, dollar quote or comment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SplitError {
    /// Byte offset in the file where the unterminated construct opens.
    pub offset: usize,
    pub message: String,
}

#[cfg(test)]
mod tests;

/// Quote an identifier (schema, table) for SQL text: the one place this is done.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
