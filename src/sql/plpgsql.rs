//! Where in a file a PL/pgSQL error happened. The server reports an error raised inside
//! a `DO` block or a function body with no position, only a CONTEXT line such as
//! `PL/pgSQL function inline_code_block line 6 at RAISE`: the line is counted in the
//! body string, line 1 being the line its opening quote is on. With the place where the
//! body starts in the file, that is a line of the file.

use std::ops::Range;

use pg_query::protobuf::Token;

/// One frame of a CONTEXT: the function (`inline_code_block` for a `DO` block, else its
/// name, unqualified) and the line in its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub function: String,
    pub line: u32,
}

/// The PL/pgSQL frames of a CONTEXT, innermost first (the order the server lists them).
pub fn frames(context: &str) -> Vec<Frame> {
    context
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("PL/pgSQL function ")?;
            let (name, rest) = rest.split_once(" line ")?;
            let line: u32 = rest.split_whitespace().next()?.parse().ok()?;
            // `public.fill(integer)` → `fill`; `inline_code_block` stays as it is.
            let name = name.split('(').next()?.rsplit('.').next()?;
            Some(Frame {
                function: name.trim_matches('"').to_string(),
                line,
            })
        })
        .collect()
}

/// A statement's PL/pgSQL body: the function it defines (`None` for a `DO` block) and
/// the byte offset in `stmt` of the body's first character, after its opening quote.
pub fn body(stmt: &str) -> Option<(Option<String>, usize)> {
    let tokens = pg_query::scan_tokens(stmt).ok()?;
    let kind = |i: usize| tokens.get(i).map(|t| t.token);
    let text = |i: usize| {
        let t = &tokens[i];
        &stmt[t.start as usize..t.end as usize]
    };
    let (name, from) = if kind(0) == Some(Token::Do as i32) {
        (None, 1)
    } else if kind(0) == Some(Token::Create as i32) {
        let mut i = 1;
        if kind(1) == Some(Token::Or as i32) {
            i = 3;
        }
        if kind(i) != Some(Token::Function as i32) && kind(i) != Some(Token::Procedure as i32) {
            return None;
        }
        // The name is the last identifier before the argument list.
        let open = (i + 1..tokens.len()).find(|&j| text(j) == "(")?;
        let raw = text(open.checked_sub(1)?);
        let name = match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => raw.to_lowercase(),
        };
        let as_kw = (open..tokens.len()).find(|&j| kind(j) == Some(Token::As as i32))?;
        (Some(name), as_kw + 1)
    } else {
        return None;
    };
    let lit = (from..tokens.len()).find(|&j| kind(j) == Some(Token::Sconst as i32))?;
    let t = text(lit);
    let start = tokens[lit].start as usize;
    let skip = if let Some(tag) = t.strip_prefix('$') {
        tag.find('$')? + 2
    } else if t.starts_with('\'') {
        1
    } else {
        // E'…', U&'…': escapes would shift the counting; no position rather than a wrong one.
        return None;
    };
    Some((name, start + skip))
}

/// The byte offset in `source` of the line a PL/pgSQL error happened on (its first
/// non-blank character), from the CONTEXT of the error statement `failing` of
/// `statements` raised. The innermost frame whose code is in these statements wins: the
/// `DO` block that failed, or a function created by one of them.
pub fn error_offset(
    source: &str,
    statements: &[Range<usize>],
    failing: usize,
    context: &str,
) -> Option<usize> {
    frames(context).into_iter().find_map(|f| {
        let body_start = if f.function == "inline_code_block" {
            let span = statements.get(failing)?;
            match body(&source[span.clone()])? {
                (None, at) => span.start + at,
                _ => return None,
            }
        } else {
            // The newest definition before (or at) the failing statement.
            statements[..=failing.min(statements.len().checked_sub(1)?)]
                .iter()
                .rev()
                .find_map(|span| match body(&source[span.clone()])? {
                    (Some(name), at) if name == f.function => Some(span.start + at),
                    _ => None,
                })?
        };
        Some(line_start(
            source,
            body_start,
            f.line.checked_sub(1)? as usize,
        ))
    })
}

/// The first non-blank character of the line `down` lines below the one `from` is on.
fn line_start(source: &str, from: usize, down: usize) -> usize {
    // The start of the line `from` is on.
    let mut at = source[..from].rfind(['\n', '\r']).map_or(0, |p| p + 1);
    if down > 0 {
        let mut seen = 0;
        for (i, c) in source[from..].char_indices() {
            if c == '\n' {
                seen += 1;
                if seen == down {
                    at = from + i + 1;
                    break;
                }
            }
        }
        if seen < down {
            return at;
        }
    }
    let blank = source[at..]
        .find(|c: char| c != ' ' && c != '\t')
        .unwrap_or(0);
    if source[at + blank..].starts_with(['\n', '\r']) {
        at
    } else {
        at + blank
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_innermost_first() {
        let c = "PL/pgSQL function public.fill(integer) line 4 at SQL statement\n\
                 SQL statement \"SELECT fill(1)\"\n\
                 PL/pgSQL function inline_code_block line 2 at PERFORM";
        assert_eq!(
            frames(c),
            [
                Frame {
                    function: "fill".into(),
                    line: 4
                },
                Frame {
                    function: "inline_code_block".into(),
                    line: 2
                }
            ]
        );
    }

    #[test]
    fn bodies_of_do_and_create_function() {
        let s = "DO LANGUAGE plpgsql $x$\nBEGIN END $x$";
        assert_eq!(body(s), Some((None, s.find("$x$").unwrap() + 3)));
        let s = "CREATE OR REPLACE FUNCTION app.\"Fill\"(n int DEFAULT 1) RETURNS void AS 'BEGIN END' LANGUAGE plpgsql";
        assert_eq!(
            body(s),
            Some((Some("Fill".into()), s.find("'BEGIN").unwrap() + 1))
        );
        assert_eq!(body("SELECT 'x'"), None);
    }

    #[test]
    fn a_raise_in_a_do_block_is_found_on_its_line() {
        let src = "CREATE TABLE t ();\nDO $$\nBEGIN\n    RAISE 'x';\nEND $$;\n";
        let spans = vec![0..18, 19..src.len() - 1];
        let at = error_offset(
            src,
            &spans,
            1,
            "PL/pgSQL function inline_code_block line 3 at RAISE",
        )
        .unwrap();
        assert!(src[at..].starts_with("RAISE 'x'"), "{:?}", &src[at..]);
        assert_eq!(error_offset(src, &spans, 1, "SQL statement \"x\""), None);
    }
}
