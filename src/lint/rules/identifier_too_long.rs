//! `identifier-too-long`: PostgreSQL silently truncates identifiers to 63 bytes
//! (NAMEDATALEN - 1), so two long names can collide and the stored name differs from
//! the one written in the migration.
//!
//! The parser has already truncated the names in the parse tree, so this rule looks at
//! the statement's tokens instead.

use pg_query::protobuf::Token;

use crate::lint::{Finding, RuleContext};

const MAX: usize = 63;

/// Whether `text` could hold an identifier longer than [`MAX`]: a run of more than MAX
/// non-blank bytes, or a quoted identifier (which may contain blanks). Scanning is
/// skipped otherwise, which is almost always.
fn may_have_long_identifier(text: &str) -> bool {
    text.contains('"')
        || text
            .split(|c: char| c.is_ascii_whitespace())
            .any(|w| w.len() > MAX)
}

pub(crate) fn check(ctx: &RuleContext<'_>, out: &mut Vec<Finding>) {
    let text = ctx.text();
    if !may_have_long_identifier(text) {
        return;
    }
    let Ok(scan) = pg_query::scan(text) else {
        return;
    };
    for tok in scan.tokens {
        if tok.token != Token::Ident as i32 && tok.token != Token::Uident as i32 {
            continue;
        }
        let Some(raw) = text.get(tok.start as usize..tok.end as usize) else {
            continue;
        };
        let name = match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            Some(inner) => inner.replace("\"\"", "\""),
            None => raw.to_string(),
        };
        if name.len() <= MAX {
            continue;
        }
        let mut cut = MAX;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(ctx.finding(
            "identifier-too-long",
            tok.start,
            format!(
                "identifier `{name}` is {} bytes; PostgreSQL silently truncates it to `{}`",
                name.len(),
                &name[..cut]
            ),
            "shorten the name to at most 63 bytes",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::testing::{at, lint};
    const ID: &str = "identifier-too-long";

    #[test]
    fn err() {
        let long = "a".repeat(64);
        assert_eq!(
            at(&lint(&format!("CREATE TABLE t (\n  {long} int);")), ID),
            vec![(2, 3)]
        );
        assert_eq!(
            at(&lint(&format!("CREATE INDEX \"{long} x\" ON t (a);")), ID),
            vec![(1, 14)]
        );
    }

    #[test]
    fn ok() {
        let name = "a".repeat(63);
        let sql = format!(
            "CREATE TABLE {name} ({name} int, note text DEFAULT '{}');",
            "b".repeat(100)
        );
        assert!(at(&lint(&sql), ID).is_empty());
    }
}
