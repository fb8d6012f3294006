//! Statement splitting with byte spans, and byte offset → line/column.
//!
//! Boundaries follow psql, which is what users run their files with: `;` outside quotes,
//! comments and dollar quotes ends a statement (not inside parentheses or a
//! `BEGIN ATOMIC … END` body), a last statement without `;` still counts, a backslash
//! outside quotes starts a psql meta-command that runs to the end of the line, and
//! `COPY … FROM STDIN` is followed by inline data up to a line `\.`.
//! Each statement is then parsed by the real PostgreSQL parser (`pg_query`).

use std::ops::Range;

/// Byte offsets of line starts, for turning a byte offset into a 1-based line and column.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
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
    /// The parsed statement, when the parser accepted it.
    pub ast: Option<pg_query::NodeEnum>,
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

// TEMPORARY naive splitter so the rest of the crate compiles until the real
// implementation (branch `sqlsplit`) is merged; replaced wholesale at merge.
pub fn split(text: &str, range: Range<usize>, lines: &LineIndex) -> Result<Vec<Item>, SplitError> {
    let mut out = Vec::new();
    let mut start = range.start;
    let body = &text[range.clone()];
    let mut push = |s: usize, e: usize, terminated: bool, out: &mut Vec<Item>| {
        let seg = &text[s..e];
        let lead = seg.len() - seg.trim_start().len();
        let s = s + lead;
        if text[s..e].trim().trim_end_matches(';').trim().is_empty() {
            return;
        }
        let (line, col) = lines.line_col(text, s);
        let stmt_text = &text[s..e];
        let parsed = pg_query::parse(stmt_text, 0);
        let ast = parsed.ok().and_then(|r| {
            r.protobuf
                .stmts
                .first()
                .and_then(|s| s.stmt.as_ref())
                .and_then(|n| n.node.clone())
        });
        out.push(Item::Statement(Statement {
            span: s..e,
            line,
            col,
            terminated,
            ast,
            syntax_error: None,
            non_transactional: None,
            tx_control: None,
            copy_data: None,
        }));
    };
    for (i, _) in body.match_indices(';') {
        let e = range.start + i + 1;
        push(start, e, true, &mut out);
        start = e;
    }
    push(start, range.end, false, &mut out);
    Ok(out)
}

pub fn char_offset_to_byte(s: &str, char_pos_1based: usize) -> usize {
    s.char_indices()
        .nth(char_pos_1based.saturating_sub(1))
        .map(|(i, _)| i)
        .unwrap_or(s.len())
}
