//! `-- pgrollout:allow <rule> <reason>` and `-- pgrollout:allow-file <rule> <reason>`.
//!
//! A line directive suppresses its rule for the statement that directly follows it; several
//! directives (and other `--` comments) may stack above one statement, but a blank line or
//! SQL between the directive and the statement breaks the link. A file directive
//! suppresses its rule everywhere in the file. The reason is mandatory: the next reader
//! must learn why the hazard is acceptable.

use super::context::finding_at_line_col;
use super::{registry, suggest_rule, Category, Finding, LintOptions};
use crate::migration::{Allow, Migration};
use crate::sql::Item;

const LINE_DIRECTIVE: &str = "pgrollout:allow";
const FILE_DIRECTIVE: &str = "pgrollout:allow-file";

/// Drops the findings the directives of `m` suppress, and adds findings about the
/// directives themselves.
pub(crate) fn apply_allows(
    m: &Migration,
    raw: Vec<(usize, Finding)>,
    opts: &LintOptions,
    rehearsed: bool,
) -> Vec<Finding> {
    let lines: Vec<&str> = m.source.lines().collect();
    let is_comment = |line: u32| {
        lines
            .get((line as usize).wrapping_sub(1))
            .is_some_and(|l| l.trim_start().starts_with("--"))
    };
    let item_lines: Vec<u32> =
        m.up.items
            .iter()
            .map(|it| match it {
                Item::Statement(s) => s.line,
                Item::MetaCommand(mc) => mc.line,
            })
            .collect();
    // The item a line directive is attached to: the first one after it, with only comment
    // lines in between.
    let target = |a: &Allow| -> Option<usize> {
        let idx = item_lines.partition_point(|&l| l <= a.line);
        let line = *item_lines.get(idx)?;
        ((a.line + 1)..line).all(is_comment).then_some(idx)
    };
    let targets: Vec<Option<usize>> = m
        .allows
        .iter()
        .map(|a| if a.file_level { None } else { target(a) })
        .collect();
    let mut used = vec![false; m.allows.len()];

    let mut out = Vec::new();
    for (item, f) in raw {
        let mut suppressed = false;
        for (i, a) in m.allows.iter().enumerate() {
            if a.rule == f.rule && (a.file_level || targets[i] == Some(item)) {
                used[i] = true;
                suppressed = true;
            }
        }
        if !suppressed {
            out.push(f);
        }
    }

    let up_end_line = m.lines.line_col(&m.source, m.up.range.end).0;
    for (i, a) in m.allows.iter().enumerate() {
        let col = lines
            .get((a.line as usize).wrapping_sub(1))
            .and_then(|l| {
                l.find(LINE_DIRECTIVE)
                    .map(|b| l[..b].chars().count() as u32 + 1)
            })
            .unwrap_or(1);
        let directive = if a.file_level {
            FILE_DIRECTIVE
        } else {
            LINE_DIRECTIVE
        };
        let mut push = |rule: &'static str, message: String, fix: String| {
            if !opts.is_disabled(rule) {
                out.push(finding_at_line_col(m, rule, a.line, col, message, fix));
            }
        };
        if registry::rule(&a.rule).is_none() {
            let (message, fix) = if a.rule.is_empty() {
                (
                    format!("`{directive}` names no rule"),
                    format!("write `-- {directive} <rule-id> <reason>`"),
                )
            } else {
                match suggest_rule(&a.rule) {
                    Some(s) => (
                        format!(
                            "unknown rule `{}` in `{directive}`; did you mean `{s}`?",
                            a.rule
                        ),
                        format!("write `-- {directive} {s} {}`", a.reason),
                    ),
                    None => (
                        format!("unknown rule `{}` in `{directive}`", a.rule),
                        "use a rule id listed in docs/lint-rules.md".into(),
                    ),
                }
            };
            push("allow-unknown-rule", message, fix);
            continue;
        }
        if a.reason.is_empty() {
            push(
                "allow-missing-reason",
                format!("`{directive} {}` gives no reason", a.rule),
                format!(
                    "say why the hazard is acceptable: `-- {directive} {} <reason>`",
                    a.rule
                ),
            );
        }
        let in_up = a.file_level || a.line <= up_end_line;
        // Without a rehearsal, an allow of an `observed-*` rule has nothing to suppress yet.
        let observed = registry::rule(&a.rule).is_some_and(|r| r.category == Category::Observed);
        if !used[i] && in_up && !opts.is_disabled(&a.rule) && (rehearsed || !observed) {
            let message = if a.file_level {
                format!("`{directive} {}` suppresses nothing in this file", a.rule)
            } else if targets[i].is_none() {
                format!(
                    "`{directive} {}` is not directly above a statement (a blank line or SQL is in between)",
                    a.rule
                )
            } else {
                format!(
                    "`{directive} {}` suppresses nothing: the next statement has no `{}` finding",
                    a.rule, a.rule
                )
            };
            push("unused-allow", message, "remove the directive".into());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::{lint, lint_no_tx};

    #[test]
    fn parses_line_and_file_directives() {
        let src = "-- pgrollout:allow-file ban-drop-table old tables go\n\
                   SELECT 1;\n  --   pgrollout:allow rename-column  clients updated in v2 \n\
                   -- pgrollout:allowance not a directive\n-- pgrollout:allow\n";
        let allows = crate::migration::parse::allows(src);
        assert_eq!(
            allows,
            vec![
                Allow {
                    rule: "ban-drop-table".into(),
                    reason: "old tables go".into(),
                    line: 1,
                    file_level: true
                },
                Allow {
                    rule: "rename-column".into(),
                    reason: "clients updated in v2".into(),
                    line: 3,
                    file_level: false
                },
                Allow {
                    rule: "".into(),
                    reason: "".into(),
                    line: 5,
                    file_level: false
                },
            ]
        );
    }

    #[test]
    fn line_allow_suppresses_next_statement_only() {
        let f = lint(
            "-- pgrollout:allow ban-drop-table replaced by v2\n-- another comment\nDROP TABLE a;\nDROP TABLE b;\n",
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].rule, f[0].line), ("ban-drop-table", 4));
    }

    #[test]
    fn file_allow_suppresses_everywhere() {
        let f =
            lint("DROP TABLE a;\n-- pgrollout:allow-file ban-drop-table cleanup\nDROP TABLE b;\n");
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn blank_line_breaks_the_link() {
        let f = lint("-- pgrollout:allow ban-drop-table because\n\nDROP TABLE a;\n");
        let rules: Vec<_> = f.iter().map(|f| (f.rule, f.line)).collect();
        assert_eq!(rules, vec![("unused-allow", 1), ("ban-drop-table", 3)]);
    }

    #[test]
    fn missing_reason_is_an_error_but_still_suppresses() {
        let f = lint("-- pgrollout:allow ban-drop-table\nDROP TABLE a;\n");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].rule, f[0].line, f[0].col),
            ("allow-missing-reason", 1, 4)
        );
        assert_eq!(f[0].severity, crate::lint::Severity::Error);
    }

    #[test]
    fn unknown_rule_suggests_the_closest() {
        let f = lint("-- pgrollout:allow ban-drop-tabel typo\nDROP TABLE a;\n");
        let unknown = f
            .iter()
            .find(|f| f.rule == "allow-unknown-rule")
            .expect("finding");
        assert!(
            unknown.message.contains("did you mean `ban-drop-table`"),
            "{}",
            unknown.message
        );
        assert!(f.iter().any(|f| f.rule == "ban-drop-table"));
    }

    #[test]
    fn unused_allow_is_reported() {
        let f = lint("-- pgrollout:allow ban-drop-table nothing to drop\nSELECT 1;\n");
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].rule, f[0].line, f[0].col), ("unused-allow", 1, 4));
    }

    #[test]
    fn allow_on_meta_command() {
        let f = lint_no_tx(
            "-- pgrollout:allow psql-meta-command run by psql in CI too\n\\set x 1\nSELECT 1;\n",
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
