//! The migration safety linter.
//!
//! Every rule lives in its own file under `rules/`, with its ok/err tests beside it, and
//! is listed once in [`registry::RULES`] (id ↔ default severity ↔ summary ↔ lock ↔ docs).
//! [`lint_migration`] walks the up section of one migration, runs every enabled rule on
//! every statement, then applies the `-- pgrollout:allow` directives.
//!
//! Lint findings are results, not errors: nothing here fails.

mod allow;
mod ast;
mod context;
mod output;
pub mod registry;
mod rules;
mod stats;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::migration::Migration;
use crate::sql::Item;

pub use allow::parse_allows;
pub use context::RuleContext;
pub use output::{render_json, render_terminal};
pub use registry::{rule, Category, RuleInfo, RULES};
pub use stats::{apply_table_stats, tables_of_interest, TableStats};

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a rule found, positioned in a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Stable kebab-case rule id, e.g. `require-concurrent-index-creation`.
    pub rule: &'static str,
    pub severity: Severity,
    pub path: PathBuf,
    /// 1-based line and column (characters) of the offending clause.
    pub line: u32,
    pub col: u32,
    pub message: String,
    /// What to do instead, concretely.
    pub fix: String,
    /// The table the statement touches, as written (`events`, `app.events`), so the caller
    /// can look up its size and feed it to [`apply_table_stats`].
    pub table: Option<String>,
}

/// What the caller (CLI flags, the pipeline file) can change about linting.
#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    /// Rule ids that are not run at all.
    pub disabled: Vec<String>,
    /// Rule id → severity, replacing the registry's default.
    pub severity_overrides: BTreeMap<String, Severity>,
}

impl LintOptions {
    /// Rule ids named in these options that the registry does not know, each with the
    /// closest known id when there is one (for "did you mean" in config errors).
    pub fn unknown_rules(&self) -> Vec<(String, Option<&'static str>)> {
        self.disabled
            .iter()
            .chain(self.severity_overrides.keys())
            .filter(|id| rule(id).is_none())
            .map(|id| (id.clone(), suggest_rule(id)))
            .collect()
    }

    fn is_disabled(&self, id: &str) -> bool {
        self.disabled.iter().any(|d| d == id)
    }
}

/// The known rule id closest to `unknown` (edit distance at most a third of its length,
/// and at least 2), for "did you mean".
pub fn suggest_rule(unknown: &str) -> Option<&'static str> {
    let max = (unknown.len() / 3).max(2);
    RULES
        .iter()
        .map(|r| (edit_distance(unknown, r.id), r.id))
        .filter(|(d, _)| *d <= max)
        .min_by_key(|(d, _)| *d)
        .map(|(_, id)| id)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Lint the up section of one migration.
///
/// Findings come back sorted by position. Suppressed findings are dropped; allow
/// directives that are malformed, name an unknown rule, or suppress nothing yield
/// findings of their own (`allow-missing-reason`, `allow-unknown-rule`, `unused-allow`).
pub fn lint_migration(m: &Migration, opts: &LintOptions) -> Vec<Finding> {
    let facts = context::FileFacts::new(m);
    let checks: Vec<&RuleInfo> = RULES
        .iter()
        .filter(|r| r.check.is_some() && !opts.is_disabled(r.id))
        .collect();

    // Each raw finding remembers the item (statement or meta-command) it is about, so a
    // directive above that item can suppress it.
    let mut raw: Vec<(usize, Finding)> = Vec::new();
    let mut out = Vec::new();
    for (item_idx, item) in m.up.items.iter().enumerate() {
        match item {
            Item::MetaCommand(mc) => {
                let f = context::finding_at_line_col(
                    m,
                    "psql-meta-command",
                    mc.line,
                    mc.col,
                    format!(
                        "psql meta-command `{}` is not SQL: pgrollout does not run it",
                        mc.text.trim()
                    ),
                    "remove it, or do what it does in SQL (`\\set ON_ERROR_STOP` is implied: pgrollout stops at the first error)".into(),
                );
                raw.push((item_idx, f));
            }
            Item::Statement(stmt) => {
                if let Some(err) = &stmt.syntax_error {
                    let (line, col) = m.lines.line_col(&m.source, err.offset);
                    let f = context::finding_at_line_col(
                        m,
                        "syntax-error",
                        line,
                        col,
                        err.message.clone(),
                        "fix the statement; nothing else in it was checked".into(),
                    );
                    raw.push((item_idx, f));
                    continue;
                }
                let Some(pos) = facts.position_of_item(item_idx) else {
                    continue;
                };
                let ctx = RuleContext::new(m, &facts, pos);
                for r in &checks {
                    if let Some(check) = r.check {
                        check(&ctx, &mut out);
                        raw.extend(out.drain(..).map(|f| (item_idx, f)));
                    }
                }
            }
        }
    }
    raw.retain(|(_, f)| !opts.is_disabled(f.rule));

    let mut findings = allow::apply_allows(m, raw, opts);
    for f in &mut findings {
        if let Some(sev) = opts.severity_overrides.get(f.rule) {
            f.severity = *sev;
        }
    }
    findings.sort_by(|a, b| (a.line, a.col, a.rule).cmp(&(b.line, b.col, b.rule)));
    findings
}
