//! Turning one file's text into sections, directives and statements.

use std::ops::Range;
use std::path::Path;

use super::error::FileError;
use super::{Allow, Section};
use crate::sql::{self, LineIndex};

/// Decode file bytes: UTF-8 required; a leading byte-order mark is dropped.
pub fn decode(path: &Path, bytes: Vec<u8>) -> Result<String, FileError> {
    match String::from_utf8(bytes) {
        Ok(mut s) => {
            if s.starts_with('\u{feff}') {
                s.drain(..3);
            }
            Ok(s)
        }
        Err(e) => {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            let before = &bytes[..at];
            let line = before.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
            let line_start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
            let col = String::from_utf8_lossy(&before[line_start..])
                .chars()
                .count() as u32
                + 1;
            Err(FileError::NotUtf8 {
                path: path.to_path_buf(),
                line,
                col,
                byte: bytes[at],
            })
        }
    }
}

/// SHA-256 (lowercase hex) of a section's text with CRLF (and lone CR) normalised to LF,
/// so a Windows checkout of the same file has the same checksum. The BOM is already
/// gone (see [`decode`]). This definition is stored in every tracking row: never change it.
pub fn checksum(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut rest = text;
    while let Some(i) = rest.find('\r') {
        h.update(&rest.as_bytes()[..i]);
        h.update(b"\n");
        rest = &rest[i + 1..];
        if rest.starts_with('\n') {
            rest = &rest[1..];
        }
    }
    h.update(rest.as_bytes());
    hex::encode(h.finalize())
}

/// A line of the file: its byte range without the line ending, and its 1-based number.
struct Line<'a> {
    no: u32,
    start: usize,
    text: &'a str,
    /// Where the next line starts (after this one's line ending).
    next: usize,
}

fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    let mut start = 0;
    let mut no = 0;
    std::iter::from_fn(move || {
        if start > text.len() || (start == text.len() && no > 0 && text.ends_with(['\n', '\r'])) {
            return None;
        }
        if start == text.len() && no > 0 {
            return None;
        }
        // A line ends at LF, CRLF or a lone CR, as psql's lexer ends a `--` comment at
        // either character (a file saved with classic Mac line endings runs under psql).
        let end = text[start..]
            .find(['\n', '\r'])
            .map_or(text.len(), |i| start + i);
        let next = if text[end..].starts_with("\r\n") {
            end + 2
        } else {
            end + 1
        };
        let line = Line {
            no: no + 1,
            start,
            text: &text[start..end],
            next,
        };
        no += 1;
        start = next;
        Some(line)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkerKind {
    Up,
    Down,
}

struct Marker {
    kind: MarkerKind,
    line: u32,
    /// Byte offset where the marker line starts and where the body after it starts.
    line_start: usize,
    body_start: usize,
    no_transaction: bool,
}

/// Parse `-- migrate:up [transaction:false]` style markers (dbmate-compatible).
fn marker(path: &Path, line: &Line) -> Result<Option<(MarkerKind, bool)>, FileError> {
    let t = line.text.trim();
    let Some(rest) = t.strip_prefix("--") else {
        return Ok(None);
    };
    let rest = rest.trim_start();
    let Some(rest) = rest.strip_prefix("migrate:") else {
        return Ok(None);
    };
    let mut words = rest.split_whitespace();
    let kind = match words.next() {
        Some("up") => MarkerKind::Up,
        Some("down") => MarkerKind::Down,
        other => {
            return Err(FileError::Directive {
                path: path.to_path_buf(),
                line: line.no,
                message: format!(
                    "unknown section marker `migrate:{}`: use `-- migrate:up` or `-- migrate:down`",
                    other.unwrap_or("")
                ),
            })
        }
    };
    let mut no_tx = false;
    for w in words {
        match w {
            "transaction:false" => no_tx = true,
            "transaction:true" => no_tx = false,
            _ => {
                return Err(FileError::Directive {
                    path: path.to_path_buf(),
                    line: line.no,
                    message: format!(
                        "unknown option `{w}` on the section marker: the only option is `transaction:false`"
                    ),
                })
            }
        }
    }
    Ok(Some((kind, no_tx)))
}

/// The up and down parts of one file's text.
#[derive(Debug)]
pub struct Sections {
    pub up: (Range<usize>, bool, Option<u32>),
    pub down: Option<(Range<usize>, bool, Option<u32>)>,
    /// SQL built from `-- ROLLBACK:` lines, laid out on the same lines and columns as in the file.
    pub rollback_comments: Option<String>,
}

const ROLLBACK_PREFIX: &str = "-- ROLLBACK:";

pub fn sections(path: &Path, text: &str) -> Result<Sections, FileError> {
    let mut markers: Vec<Marker> = Vec::new();
    // Built from the first `-- ROLLBACK:` line on (most files have none): one line per
    // line of the file, so the lines before it are empty ones.
    let mut rollback = String::new();
    let mut has_rollback = false;
    let mut lines_before = 0;
    let mut last_line_end = 0;
    for line in lines(text) {
        if let Some((kind, no_tx)) = marker(path, &line)? {
            if let Some(prev) = markers.iter().find(|m| m.kind == kind) {
                return Err(FileError::Directive {
                    path: path.to_path_buf(),
                    line: line.no,
                    message: format!(
                        "second `-- migrate:{}` marker (the first is on line {}): a file has at most one up and one down section",
                        if kind == MarkerKind::Up { "up" } else { "down" },
                        prev.line
                    ),
                });
            }
            let body_start = line.next.min(text.len());
            markers.push(Marker {
                kind,
                line: line.no,
                line_start: line.start,
                body_start,
                no_transaction: no_tx,
            });
        }
        // `-- ROLLBACK: <sql>` keeps its column: the prefix is blanked, not removed, so
        // errors in the generated down SQL point at the right place in the file.
        let trimmed = line.text.trim_start();
        if let Some(sql) = trimmed.strip_prefix(ROLLBACK_PREFIX) {
            if !has_rollback {
                has_rollback = true;
                rollback = "\n".repeat(lines_before);
            }
            let indent = line.text.len() - trimmed.len() + ROLLBACK_PREFIX.len();
            rollback.push_str(&" ".repeat(indent));
            rollback.push_str(sql);
        }
        if has_rollback {
            rollback.push('\n');
        } else {
            lines_before += 1;
        }
        last_line_end = line.start + line.text.len();
    }
    let _ = last_line_end;

    if markers.is_empty() {
        return Ok(Sections {
            up: (0..text.len(), false, None),
            down: None,
            rollback_comments: has_rollback.then_some(rollback),
        });
    }
    let Some(up) = markers.iter().find(|m| m.kind == MarkerKind::Up) else {
        return Err(FileError::Directive {
            path: path.to_path_buf(),
            line: markers[0].line,
            message: "a `-- migrate:down` section without a `-- migrate:up` section: add `-- migrate:up` above the SQL to apply".into(),
        });
    };
    let end_of = |m: &Marker| {
        markers
            .iter()
            .filter(|o| o.line_start > m.line_start)
            .map(|o| o.line_start)
            .min()
            .unwrap_or(text.len())
    };
    // SQL before the first marker would never run: dbmate ignores it silently, we refuse.
    let first = markers.iter().map(|m| m.line_start).min().unwrap_or(0);
    if first > 0 {
        let lines_idx = LineIndex::new(text);
        if let Ok(items) = sql::split(text, 0..first, &lines_idx) {
            if let Some(item) = items.first() {
                let (line, col) = match item {
                    sql::Item::Statement(s) => (s.line, s.col),
                    sql::Item::MetaCommand(m) => (m.line, m.col),
                };
                return Err(FileError::Sql {
                    path: path.to_path_buf(),
                    line,
                    col,
                    message: "SQL before the first `-- migrate:` marker would never run: move it into the up or down section".into(),
                });
            }
        }
    }
    let down = markers.iter().find(|m| m.kind == MarkerKind::Down);
    if down.is_some() && has_rollback {
        return Err(FileError::Directive {
            path: path.to_path_buf(),
            line: down.map_or(0, |d| d.line),
            message: "both a `-- migrate:down` section and `-- ROLLBACK:` lines: keep one way of writing the down migration".into(),
        });
    }
    Ok(Sections {
        up: (up.body_start..end_of(up), up.no_transaction, Some(up.line)),
        down: down.map(|d| (d.body_start..end_of(d), d.no_transaction, Some(d.line))),
        rollback_comments: has_rollback.then_some(rollback),
    })
}

/// Split one section into statements. A lexical error (unterminated quote or comment)
/// is a file error at the line where the construct opens.
pub fn section(
    path: &Path,
    text: &str,
    lines: &LineIndex,
    range: Range<usize>,
    no_transaction: bool,
    marker_line: Option<u32>,
    split: bool,
) -> Result<Section, FileError> {
    if !split {
        return Ok(Section {
            path: path.to_path_buf(),
            range,
            no_transaction,
            marker_line,
            items: Vec::new(),
            parsed: false,
        });
    }
    let items = sql::split(text, range.clone(), lines).map_err(|e| {
        let (line, col) = lines.line_col(text, e.offset);
        FileError::Sql {
            path: path.to_path_buf(),
            line,
            col,
            message: e.message,
        }
    })?;
    Ok(Section {
        path: path.to_path_buf(),
        range,
        no_transaction,
        marker_line,
        items,
        parsed: true,
    })
}

const ALLOW: &str = "pgrollout:allow";
const ALLOW_FILE: &str = "pgrollout:allow-file";

/// `-- pgrollout:allow <rule> <reason>` and `-- pgrollout:allow-file <rule> <reason>`.
/// The reason may be empty here: the linter reports a missing reason as a finding.
pub fn allows(text: &str) -> Vec<Allow> {
    let mut out = Vec::new();
    for line in lines(text) {
        let t = line.text.trim_start();
        let Some(rest) = t.strip_prefix("--") else {
            continue;
        };
        let rest = rest.trim_start();
        let (file_level, rest) = if let Some(r) = rest.strip_prefix(ALLOW_FILE) {
            (true, r)
        } else if let Some(r) = rest.strip_prefix(ALLOW) {
            (false, r)
        } else {
            continue;
        };
        if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
            continue;
        }
        let rest = rest.trim();
        let (rule, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        out.push(Allow {
            rule: rule.to_string(),
            reason: reason.trim().to_string(),
            line: line.no,
            file_level,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_ignores_crlf() {
        assert_eq!(checksum("a;\nb;\n"), checksum("a;\r\nb;\r\n"));
        assert_ne!(checksum("a;\nb;\n"), checksum("a;\nb; \n"));
        // Pinned: stored in tracking rows, must never change.
        assert_eq!(
            checksum("SELECT 1;\r\n"),
            "b4e0497804e46e0a0b0b8c31975b062152d551bac49c3c2e80932567b4085dcd"
        );
    }

    #[test]
    fn bom_dropped_and_non_utf8_located() {
        let p = Path::new("x.sql");
        assert_eq!(
            decode(p, b"\xef\xbb\xbfSELECT 1;".to_vec()).unwrap(),
            "SELECT 1;"
        );
        let err = decode(p, b"SELECT 1;\nSELECT '\xe9';\n".to_vec()).unwrap_err();
        assert!(
            matches!(
                err,
                FileError::NotUtf8 {
                    line: 2,
                    col: 9,
                    byte: 0xe9,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn dbmate_sections() {
        let text = "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n\n-- migrate:down\nDROP INDEX i;\n";
        let s = sections(Path::new("x.sql"), text).unwrap();
        assert_eq!(
            &text[s.up.0.clone()],
            "CREATE INDEX CONCURRENTLY i ON t (a);\n\n"
        );
        assert!(s.up.1);
        let d = s.down.unwrap();
        assert_eq!(&text[d.0], "DROP INDEX i;\n");
        assert!(!d.1);
    }

    #[test]
    fn rollback_comments_keep_position() {
        let text = "CREATE TABLE a (id int);\n-- ROLLBACK: DROP TABLE a;\n";
        let s = sections(Path::new("x.sql"), text).unwrap();
        let rb = s.rollback_comments.unwrap();
        assert_eq!(rb.lines().nth(1).unwrap().trim(), "DROP TABLE a;");
        assert_eq!(
            rb.lines().nth(1).unwrap().find("DROP"),
            text.lines().nth(1).unwrap().find("DROP")
        );
    }

    #[test]
    fn bad_markers() {
        assert!(sections(Path::new("x.sql"), "-- migrate:sideways\n").is_err());
        assert!(sections(Path::new("x.sql"), "-- migrate:up transaction:maybe\n").is_err());
        assert!(sections(Path::new("x.sql"), "-- migrate:up\n-- migrate:up\n").is_err());
        assert!(sections(Path::new("x.sql"), "-- migrate:down\nSELECT 1;\n").is_err());
        let e = sections(Path::new("x.sql"), "SELECT 1;\n-- migrate:up\nSELECT 2;\n").unwrap_err();
        assert!(e.to_string().contains("x.sql:1:1"), "{e}");
    }

    #[test]
    fn allow_directives() {
        let a = allows("-- pgrollout:allow ban-drop-column the column is unused since v2\nALTER TABLE t DROP COLUMN c;\n-- pgrollout:allow-file prefer-text-field legacy\n-- pgrollout:allowance nope\n");
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].rule, "ban-drop-column");
        assert_eq!(a[0].reason, "the column is unused since v2");
        assert!(!a[0].file_level && a[1].file_level);
        assert_eq!(a[1].line, 3);
    }
}
