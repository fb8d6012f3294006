//! The splitter: a small lexer that follows psql's `psqlscan.l`, which is what decides
//! statement boundaries when a file is run with `psql -f`.
//!
//! psql does not parse SQL; it tracks just enough lexical state (quotes, comments,
//! dollar quotes, parenthesis depth and a `CREATE FUNCTION … BEGIN … END` heuristic) to
//! know whether a `;` ends the statement, and it hands a backslash outside quotes to its
//! meta-command lexer. Using the server's parser to split instead would disagree with
//! psql on exactly the files where it matters (meta-commands, COPY data, unbalanced
//! parentheses), so we replicate psql and only parse the pieces it produces.

use std::ops::Range;

use super::classify;
use super::parse::parse_statement;
use super::{Item, LineIndex, MetaCommand, SplitError, Statement, SyntaxError};

/// Split `text[range]` (a section of a file; `text` is the whole file) into statements
/// and meta-commands, with spans, lines and columns relative to the whole `text`.
/// `lines` is `LineIndex::new(text)`.
///
/// Syntax errors do not stop splitting; they are recorded on their statement. Only a
/// lexical error (an unterminated quote, dollar quote or comment) fails the split,
/// because it leaves every boundary after it unknown.
pub fn split(text: &str, range: Range<usize>, lines: &LineIndex) -> Result<Vec<Item>, SplitError> {
    let end = range.end.min(text.len());
    let mut s = Splitter {
        text,
        b: text.as_bytes(),
        end,
        pos: range.start.min(end),
        lines,
        items: Vec::new(),
        cur: Current::default(),
    };
    s.run()?;
    Ok(s.items)
}

/// Per-statement lexical state, reset when a statement ends.
#[derive(Default)]
struct Current {
    /// Offset of the first token, once one has been seen.
    start: Option<usize>,
    /// End of the last token seen (the statement's end when it has no `;`).
    last_end: usize,
    paren_depth: u32,
    /// psql's `begin_depth`: inside a `BEGIN … END` body of CREATE FUNCTION/PROCEDURE.
    begin_depth: u32,
    /// psql's `identifier_count` and `identifiers[4]`: the first letters of leading
    /// CREATE / OR / REPLACE / FUNCTION / PROCEDURE keywords.
    ident_count: usize,
    idents: [u8; 4],
}

struct Splitter<'a> {
    text: &'a str,
    b: &'a [u8],
    end: usize,
    pos: usize,
    lines: &'a LineIndex,
    items: Vec<Item>,
    cur: Current,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_cont(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

fn is_dolq_cont(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

/// psql's `space`: ` \t\n\r\f\v`.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0c | 0x0b)
}

impl Splitter<'_> {
    fn at(&self, i: usize) -> Option<u8> {
        (i < self.end).then(|| self.b[i])
    }

    fn run(&mut self) -> Result<(), SplitError> {
        while self.pos < self.end {
            let p = self.pos;
            let c = self.b[p];
            let next = self.at(p + 1);
            match c {
                _ if is_space(c) => self.pos += 1,
                b'-' if next == Some(b'-') => self.pos = self.comment_end(p),
                b'/' if next == Some(b'*') => self.pos = self.skip_block_comment(p)?,
                b'\\' if matches!(next, Some(b';') | Some(b':')) => {
                    // psql copies `\;` and `\:` into the query buffer as `;` and `:`
                    // without ending the statement. We keep them as text; the parser
                    // will reject the backslash, which is the honest outcome for a
                    // construct we do not run.
                    self.token(p, p + 2);
                }
                b'\\' => self.meta_command(p),
                b';' => {
                    if self.cur.paren_depth == 0 && self.cur.begin_depth == 0 {
                        self.pos = p + 1;
                        if let Some(start) = self.cur.start {
                            self.finish(start, p + 1, true);
                        } else {
                            self.cur = Current::default();
                        }
                    } else {
                        self.token(p, p + 1);
                    }
                }
                b'(' => {
                    self.cur.paren_depth += 1;
                    self.token(p, p + 1);
                }
                b')' => {
                    self.cur.paren_depth = self.cur.paren_depth.saturating_sub(1);
                    self.token(p, p + 1);
                }
                b'\'' => {
                    let e = self.skip_quoted(p, p, b'\'', false)?;
                    self.token(p, e);
                }
                b'"' => {
                    let e = self.skip_quoted(p, p, b'"', false)?;
                    self.token(p, e);
                }
                b'$' => {
                    let e = self.dollar(p)?;
                    self.token(p, e);
                }
                _ if is_ident_start(c) => {
                    let e = self.word(p)?;
                    self.token(p, e);
                }
                _ if c.is_ascii_digit() => {
                    let e = self.number(p);
                    self.token(p, e);
                }
                _ => self.token(p, p + 1),
            }
        }
        if let Some(start) = self.cur.start {
            let end = self.cur.last_end;
            self.finish(start, end, false);
        }
        Ok(())
    }

    /// Record a token `p..e` of the current statement and move past it.
    fn token(&mut self, p: usize, e: usize) {
        self.cur.start.get_or_insert(p);
        self.cur.last_end = e;
        self.pos = e;
    }

    /// Where a `--` comment starting at `p` ends: at the next `\n` or `\r` (psql's lexer
    /// ends one at either), or the end.
    fn comment_end(&self, p: usize) -> usize {
        self.b[p..self.end]
            .iter()
            .position(|&c| c == b'\n' || c == b'\r')
            .map_or(self.end, |i| p + i)
    }

    /// Offset of the `\n` ending the line that contains `p`, or the end.
    fn line_end(&self, p: usize) -> usize {
        self.b[p..self.end]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(self.end, |i| p + i)
    }

    fn error(&self, offset: usize, what: &str) -> SplitError {
        let (line, col) = self.lines.line_col(self.text, offset);
        SplitError {
            offset,
            message: format!("{what} opened here (line {line}, column {col})"),
        }
    }

    /// Skip a nested `/* … */` comment starting at `p`; returns the offset after it.
    fn skip_block_comment(&self, p: usize) -> Result<usize, SplitError> {
        let mut depth = 0u32;
        let mut i = p;
        while i + 1 < self.end {
            match (self.b[i], self.b[i + 1]) {
                (b'/', b'*') => {
                    depth += 1;
                    i += 2;
                }
                (b'*', b'/') => {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        return Ok(i);
                    }
                }
                _ => i += 1,
            }
        }
        Err(self.error(p, "unterminated /* comment"))
    }

    /// Skip a quoted string or identifier whose opening `quote` is at `p` (doubled quotes
    /// are escapes; with `backslash`, so is `\` + any byte, as in `E'…'`). Returns the
    /// offset after the closing quote.
    /// `open` is where the token starts (before any `E`/`U&` prefix), for the error.
    fn skip_quoted(
        &self,
        open: usize,
        p: usize,
        quote: u8,
        backslash: bool,
    ) -> Result<usize, SplitError> {
        let mut i = p + 1;
        loop {
            match self.at(i) {
                None => {
                    let what = match (quote, backslash) {
                        (b'"', _) => "unterminated quoted identifier",
                        (_, true) => "unterminated E'…' string",
                        _ => "unterminated quoted string",
                    };
                    return Err(self.error(open, what));
                }
                Some(b'\\') if backslash => i += 2,
                Some(c) if c == quote => {
                    // No SQL-standard continuation (`'a'<newline>'b'`): psql reads its
                    // input a line at a time and so always ends the string at the
                    // quote. It matters for `E'…'`, whose continuation the server would
                    // still lex with backslash escapes.
                    if self.at(i + 1) == Some(quote) {
                        i += 2;
                    } else {
                        return Ok(i + 1);
                    }
                }
                Some(_) => i += 1,
            }
        }
    }

    /// A `$` at `p`: a dollar quote `$tag$ … $tag$`, a parameter `$1`, or a lone `$`.
    /// Returns the offset after the token.
    fn dollar(&self, p: usize) -> Result<usize, SplitError> {
        let mut i = p + 1;
        if self.at(i).is_some_and(|c| c.is_ascii_digit()) {
            while self.at(i).is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
            }
            return Ok(i);
        }
        if self.at(i).is_some_and(is_ident_start) {
            while self.at(i).is_some_and(is_dolq_cont) {
                i += 1;
            }
        }
        if self.at(i) != Some(b'$') {
            // psql's `dolqfailed`: the `$` alone is a token, the rest is lexed again.
            return Ok(p + 1);
        }
        let tag = &self.text[p..=i];
        // Any later occurrence of the exact tag closes it: psql's lexer backs up one
        // character after a non-matching `$x$`, so it finds every occurrence.
        match self.text[i + 1..self.end].find(tag) {
            Some(k) => Ok(i + 1 + k + tag.len()),
            None => Err(self.error(p, &format!("unterminated dollar-quoted string {tag}"))),
        }
    }

    /// A numeric literal at `p` (`1`, `1.5`, `2e-3`); a letter after it starts a new
    /// token, as in psql (`1e'x'` is `1` then `e'x'`).
    fn number(&self, p: usize) -> usize {
        let mut e = p + 1;
        while self.at(e).is_some_and(|c| c.is_ascii_digit() || c == b'.') {
            e += 1;
        }
        if matches!(self.at(e), Some(b'e' | b'E')) {
            let d = if matches!(self.at(e + 1), Some(b'+' | b'-')) {
                e + 2
            } else {
                e + 1
            };
            if self.at(d).is_some_and(|c| c.is_ascii_digit()) {
                e = d;
                while self.at(e).is_some_and(|c| c.is_ascii_digit()) {
                    e += 1;
                }
            }
        }
        e
    }

    /// An identifier or keyword at `p`, or a prefixed string (`E'…'`, `B'…'`, `X'…'`,
    /// `N'…'`, `U&'…'`, `U&"…"`). Returns the offset after the token.
    fn word(&mut self, p: usize) -> Result<usize, SplitError> {
        let c = self.b[p];
        let next = self.at(p + 1);
        match (c.to_ascii_lowercase(), next) {
            (b'e', Some(b'\'')) => return self.skip_quoted(p, p + 1, b'\'', true),
            (b'b' | b'x' | b'n', Some(b'\'')) => return self.skip_quoted(p, p + 1, b'\'', false),
            (b'u', Some(b'&')) if matches!(self.at(p + 2), Some(b'\'' | b'"')) => {
                return self.skip_quoted(p, p + 2, self.b[p + 2], false);
            }
            _ => {}
        }
        let mut e = p + 1;
        while self.at(e).is_some_and(is_ident_cont) {
            e += 1;
        }
        self.identifier(p, e);
        Ok(e)
    }

    /// psql's heuristic for SQL-standard function bodies: once the statement starts
    /// with CREATE [OR REPLACE] FUNCTION|PROCEDURE, `BEGIN` … `END` (with `CASE` … `END`
    /// nested inside) outside parentheses hides `;` from the splitter.
    fn identifier(&mut self, p: usize, e: usize) {
        let word = self.text[p..e].to_ascii_lowercase();
        let cur = &mut self.cur;
        if cur.ident_count == 0 {
            cur.idents = [0; 4];
        }
        if matches!(
            word.as_str(),
            "create" | "function" | "procedure" | "or" | "replace"
        ) && cur.ident_count < cur.idents.len()
        {
            cur.idents[cur.ident_count] = word.as_bytes()[0];
        }
        cur.ident_count += 1;
        let id = cur.idents;
        let routine = id[0] == b'c'
            && (id[1] == b'f'
                || id[1] == b'p'
                || (id[1] == b'o' && id[2] == b'r' && (id[3] == b'f' || id[3] == b'p')));
        if routine && cur.paren_depth == 0 {
            match word.as_str() {
                "begin" => cur.begin_depth += 1,
                "case" if cur.begin_depth >= 1 => cur.begin_depth += 1,
                "end" => cur.begin_depth = cur.begin_depth.saturating_sub(1),
                _ => {}
            }
        }
    }

    /// A backslash at `p` outside quotes: a psql meta-command running to the end of the
    /// line. A statement in progress ends before it, unterminated.
    fn meta_command(&mut self, p: usize) {
        if let Some(start) = self.cur.start {
            let end = self.cur.last_end;
            self.finish(start, end, false);
        }
        let mut e = self.line_end(p);
        if e > p + 1 && self.b[e - 1] == b'\r' {
            e -= 1;
        }
        let (line, col) = self.lines.line_col(self.text, p);
        self.items.push(Item::MetaCommand(MetaCommand {
            span: p..e,
            line,
            col,
            text: self.text[p..e].to_string(),
        }));
        self.pos = e;
    }

    /// Close the current statement as `start..end`, parse and classify it, and skip
    /// the inline data of a `COPY … FROM STDIN`.
    fn finish(&mut self, start: usize, end: usize, terminated: bool) {
        self.cur = Current::default();
        let (line, col) = self.lines.line_col(self.text, start);
        let mut stmt = Statement {
            span: start..end,
            line,
            col,
            terminated,
            ast: None,
            syntax_error: None,
            non_transactional: None,
            tx_control: None,
            copy_data: None,
        };
        match parse_statement(&self.text[start..end]) {
            Ok(node) => {
                stmt.non_transactional = classify::non_transactional(&node);
                stmt.tx_control = classify::tx_control(&node);
                if terminated && classify::is_copy_from_stdin(&node) {
                    stmt.copy_data = Some(self.skip_copy_data(end));
                }
                stmt.ast = Some(Box::new(node));
            }
            Err(e) => {
                stmt.syntax_error = Some(SyntaxError {
                    offset: start + e.offset,
                    message: e.message,
                });
            }
        }
        self.items.push(Item::Statement(stmt));
    }

    /// psql reads COPY data from the next line on, up to a line that is exactly `\.`
    /// (or the end of input). Returns the data's range and moves past the `\.` line.
    fn skip_copy_data(&mut self, after: usize) -> Range<usize> {
        let first = self.line_end(after);
        let data_start = (first + 1).min(self.end);
        let mut line = data_start;
        while line < self.end {
            let nl = self.line_end(line);
            let content = &self.b[line..nl];
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            if content == b"\\." {
                self.pos = (nl + 1).min(self.end);
                return data_start..line;
            }
            line = nl + 1;
        }
        self.pos = self.end;
        data_start..self.end
    }
}
