//! Parsing one statement with the PostgreSQL parser, keeping the error position.
//!
//! `pg_query::parse` returns the tree we want but drops the C error's `cursorpos`, so
//! on failure the statement is parsed a second time through the C entry point, only
//! to read the position. Successful statements (nearly all) are parsed once.

use std::ffi::{c_char, c_int, CStr, CString};

/// Byte offset in `s` of the character at 1-based position `char_pos_1based`, as
/// PostgreSQL reports positions (`cursorpos`, the `position` field of a server error).
/// Position 0 ("no position") maps to 0; a position past the end maps to `s.len()`.
pub fn char_offset_to_byte(s: &str, char_pos_1based: usize) -> usize {
    if char_pos_1based == 0 {
        return 0;
    }
    s.char_indices()
        .nth(char_pos_1based - 1)
        .map_or(s.len(), |(i, _)| i)
}

/// Why one statement's text did not parse.
#[derive(Debug)]
pub(crate) struct ParseFailure {
    /// Byte offset in the statement text.
    pub offset: usize,
    pub message: String,
}

fn failure(offset: usize, message: impl Into<String>) -> Result<pg_query::NodeEnum, ParseFailure> {
    Err(ParseFailure {
        offset,
        message: message.into(),
    })
}

/// Parse one statement's text into its statement node.
pub(crate) fn parse_statement(stmt: &str) -> Result<pg_query::NodeEnum, ParseFailure> {
    if let Some(nul) = stmt.find('\0') {
        return failure(nul, "statement contains a NUL byte".to_string());
    }
    match pg_query::parse(stmt, 0) {
        Ok(result) => {
            let count = result.protobuf.stmts.len();
            let mut stmts = result.protobuf.stmts.into_iter();
            match (count, stmts.next()) {
                (1, Some(raw)) => match raw.stmt.and_then(|n| n.node) {
                    Some(node) => Ok(node),
                    None => failure(0, "the parser returned no statement".to_string()),
                },
                // psql's boundary heuristics (`BEGIN … END` tracking) can in rare cases
                // hand us text the server sees as several statements.
                (_, _) => {
                    let second = stmts.next().map_or(0, |r| r.stmt_location.max(0) as usize);
                    failure(
                        char_offset_to_byte(stmt, second + 1),
                        format!("expected one statement here, the parser found {count}"),
                    )
                }
            }
        }
        Err(_) => {
            let (cursorpos, message) = parse_error_position(stmt);
            failure(char_offset_to_byte(stmt, cursorpos), message)
        }
    }
}

#[repr(C)]
struct PgQueryError {
    message: *mut c_char,
    funcname: *mut c_char,
    filename: *mut c_char,
    lineno: c_int,
    cursorpos: c_int,
    context: *mut c_char,
}

#[repr(C)]
struct PgQueryParseResult {
    parse_tree: *mut c_char,
    stderr_buffer: *mut c_char,
    error: *mut PgQueryError,
}

// Declared in libpg_query's `pg_query.h`; the static library is linked by the
// `pg_query` crate.
extern "C" {
    fn pg_query_parse(input: *const c_char) -> PgQueryParseResult;
    fn pg_query_free_parse_result(result: PgQueryParseResult);
}

/// The parser's 1-based character position of the error (0 if none) and its message.
fn parse_error_position(stmt: &str) -> (usize, String) {
    let Ok(input) = CString::new(stmt) else {
        return (0, "statement contains a NUL byte".to_string());
    };
    // SAFETY: `input` is a valid NUL-terminated string that outlives the call. The
    // result is owned by us until `pg_query_free_parse_result`, which is called exactly
    // once, after the last read; `error` and its `message` are either NULL (checked) or
    // valid NUL-terminated strings allocated by libpg_query.
    unsafe {
        let result = pg_query_parse(input.as_ptr());
        let out = if result.error.is_null() {
            (0, "syntax error".to_string())
        } else {
            let err = &*result.error;
            let message = if err.message.is_null() {
                "syntax error".to_string()
            } else {
                CStr::from_ptr(err.message).to_string_lossy().into_owned()
            };
            (err.cursorpos.max(0) as usize, message)
        };
        pg_query_free_parse_result(result);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_offsets_count_characters() {
        let s = "ab€d";
        assert_eq!(char_offset_to_byte(s, 0), 0);
        assert_eq!(char_offset_to_byte(s, 1), 0);
        assert_eq!(char_offset_to_byte(s, 3), 2);
        assert_eq!(char_offset_to_byte(s, 4), 5);
        assert_eq!(char_offset_to_byte(s, 5), 6);
        assert_eq!(char_offset_to_byte(s, 99), 6);
    }

    #[test]
    fn error_position_is_in_bytes() {
        match parse_statement("SELECT 'é' FORM t") {
            Err(ParseFailure { offset, message }) => {
                assert_eq!(offset, "SELECT 'é' FORM ".len());
                assert_eq!(message, "syntax error at or near \"t\"");
            }
            Ok(_) => panic!("expected an error"),
        }
    }
}
