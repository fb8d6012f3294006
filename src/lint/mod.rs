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
pub mod registry;
mod rules;
pub mod schema_model;
mod stats;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::migration::Migration;
use crate::sql::Item;

pub use context::RuleContext;
pub use registry::{rule, Category, RuleInfo, RULES};
pub use schema_model::SchemaModel;
pub use stats::{apply_table_stats, describe_size, tables_of_interest, TableStats};

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
        .map(|r| (strsim::levenshtein(unknown, r.id), r.id))
        .filter(|(d, _)| *d <= max)
        .min_by_key(|(d, _)| *d)
        .map(|(_, id)| id)
}

/// Lint the up section of one migration on its own, knowing nothing of the migrations
/// before it (see [`lint_migration_in`]).
pub fn lint_migration(m: &Migration, opts: &LintOptions) -> Vec<Finding> {
    lint_migration_in(m, opts, &mut SchemaModel::default())
}

/// Lint the up section of one migration against `model`, the schema the migrations
/// before it built, and leave in `model` the schema after it. Each statement's rules see
/// the model as it stands before that statement.
///
/// Findings come back sorted by position. Suppressed findings are dropped; allow
/// directives that are malformed, name an unknown rule, or suppress nothing yield
/// findings of their own (`allow-missing-reason`, `allow-unknown-rule`, `unused-allow`).
pub fn lint_migration_in(
    m: &Migration,
    opts: &LintOptions,
    model: &mut SchemaModel,
) -> Vec<Finding> {
    lint_with(m, opts, model, None)
}

/// What a rehearsal on a shadow database saw of one migration, for [`lint_rehearsed`].
#[derive(Debug, Clone, Default)]
pub struct Rehearsed {
    /// Findings of the `observed-*` rules, each with the index (in the up section's
    /// items) of the statement it is about.
    pub findings: Vec<(usize, Finding)>,
    /// The items (statements) that ran observed.
    pub items: Vec<usize>,
}

/// Lint the up section of one migration against `model` (as [`lint_migration_in`])
/// with what a rehearsal observed.
///
/// On a statement that ran observed, the observation replaces the syntax rules' guesses
/// about locks (the [`Category::Locking`] findings): it says what really happened. Such a
/// guess still carries its fix over to the observed finding of the statement, and a
/// `pgrollout:allow` of the guessed rule (written before the rehearsal existed) also
/// suppresses the observed finding of that statement.
pub fn lint_rehearsed(
    m: &Migration,
    opts: &LintOptions,
    model: &mut SchemaModel,
    rehearsed: Rehearsed,
) -> Vec<Finding> {
    lint_with(m, opts, model, Some(rehearsed))
}

fn is_locking(f: &Finding) -> bool {
    rule(f.rule).is_some_and(|r| r.category == Category::Locking)
}

fn lint_with(
    m: &Migration,
    opts: &LintOptions,
    model: &mut SchemaModel,
    rehearsed: Option<Rehearsed>,
) -> Vec<Finding> {
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
                let ctx = RuleContext::new(m, &facts, pos, model);
                for r in &checks {
                    if let Some(check) = r.check {
                        check(&ctx, &mut out);
                        raw.extend(out.drain(..).map(|f| (item_idx, f)));
                    }
                }
                if let Some(node) = &stmt.ast {
                    model.apply(node);
                }
            }
        }
    }
    raw.retain(|(_, f)| !opts.is_disabled(f.rule));

    // Guessed lock findings on observed statements, and the observed findings.
    let mut guessed: Vec<(usize, Finding)> = Vec::new();
    let mut seen: Vec<(usize, Finding)> = Vec::new();
    let was_rehearsed = rehearsed.is_some();
    if let Some(r) = rehearsed {
        guessed = raw
            .iter()
            .filter(|(i, f)| r.items.contains(i) && is_locking(f))
            .cloned()
            .collect();
        for (item, mut f) in r.findings {
            if opts.is_disabled(f.rule) {
                continue;
            }
            if let Some((_, g)) = guessed.iter().find(|(i, _)| *i == item) {
                f.fix = g.fix.clone();
            }
            raw.push((item, f.clone()));
            seen.push((item, f));
        }
    }

    let mut findings = allow::apply_allows(m, raw, opts, was_rehearsed);
    if was_rehearsed {
        // A guess that an allow suppressed: the author accepted that statement's hazard.
        let accepted: Vec<usize> = guessed
            .iter()
            .filter(|(_, g)| !findings.contains(g))
            .map(|(i, _)| *i)
            .collect();
        findings.retain(|f| {
            !guessed.iter().any(|(_, g)| g == f)
                && !seen.iter().any(|(i, s)| s == f && accepted.contains(i))
        });
    }
    for f in &mut findings {
        if let Some(sev) = opts.severity_overrides.get(f.rule) {
            f.severity = *sev;
        }
    }
    findings.sort_by(|a, b| (a.line, a.col, a.rule).cmp(&(b.line, b.col, b.rule)));
    findings
}

/// The tables the up section of `m` creates, as written (`events`, `app.events`): for
/// live context, a table created by an earlier pending migration does not exist yet.
pub fn created_tables(m: &Migration) -> Vec<String> {
    m.statements()
        .filter_map(|s| s.ast.as_deref())
        .filter_map(ast::created_table)
        .map(ast::rv_name)
        .collect()
}

/// How many findings of each severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub error: usize,
    pub warning: usize,
    pub info: usize,
    pub total: usize,
}

impl Counts {
    pub fn of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Counts {
        let mut c = Counts::default();
        for f in findings {
            match f.severity {
                Severity::Error => c.error += 1,
                Severity::Warning => c.warning += 1,
                Severity::Info => c.info += 1,
            }
            c.total += 1;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{lint, migration};
    use super::*;

    #[test]
    fn severity_override_and_disable() {
        let m = migration("DROP TABLE a;\nALTER TABLE b RENAME TO c;", false);
        let opts = LintOptions {
            disabled: vec!["rename-table".into()],
            severity_overrides: BTreeMap::from([("ban-drop-table".into(), Severity::Warning)]),
        };
        let f = lint_migration(&m, &opts);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].rule, f[0].severity),
            ("ban-drop-table", Severity::Warning)
        );
    }

    #[test]
    fn disabled_rule_makes_its_allow_not_unused() {
        let m = migration(
            "-- pgrollout:allow rename-table legacy name\nSELECT 1;",
            false,
        );
        let opts = LintOptions {
            disabled: vec!["rename-table".into()],
            ..Default::default()
        };
        assert!(lint_migration(&m, &opts).is_empty());
    }

    #[test]
    fn unknown_option_rules_suggest() {
        let opts = LintOptions {
            disabled: vec!["prefer-timestamp".into()],
            ..Default::default()
        };
        assert_eq!(
            opts.unknown_rules(),
            vec![("prefer-timestamp".to_string(), Some("prefer-timestamptz"))]
        );
    }

    #[test]
    fn syntax_error_and_meta_command() {
        let f = lint("\\set ON_ERROR_STOP on\nSELEC 1;\nDROP TABLE a;");
        let rules: Vec<_> = f.iter().map(|f| (f.rule, f.line, f.severity)).collect();
        assert_eq!(
            rules,
            vec![
                ("psql-meta-command", 1, Severity::Info),
                ("syntax-error", 2, Severity::Error),
                ("ban-drop-table", 3, Severity::Error),
            ]
        );
    }

    #[test]
    fn new_table_gets_no_locking_findings() {
        let sql = "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text);\n\
                   CREATE INDEX events_kind ON events (kind);\n\
                   ALTER TABLE events ADD CONSTRAINT kind_ok CHECK (kind <> '');\n\
                   ALTER TABLE events ALTER COLUMN kind SET NOT NULL;\n\
                   ALTER TABLE events ADD COLUMN at timestamptz NOT NULL DEFAULT clock_timestamp();";
        let f = lint(sql);
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn realistic_migration_sorted_by_position() {
        let sql =
            "ALTER TABLE orders ADD COLUMN note varchar(80), ALTER COLUMN total TYPE bigint;\n\
                   CREATE INDEX orders_note ON orders (note);\n";
        let f = lint(sql);
        let got: Vec<_> = f.iter().map(|f| (f.line, f.col, f.rule)).collect();
        assert_eq!(
            got,
            vec![
                (1, 36, "prefer-text-field"),
                (1, 73, "column-type-rewrite"),
                (2, 1, "require-concurrent-index-creation"),
            ]
        );
        assert!(f.iter().all(|f| f.path.ends_with("001_test.sql")));
        assert_eq!(tables_of_interest(&f), vec!["orders"]);
    }

    fn observed(rule: &'static str, line: u32) -> Finding {
        Finding {
            rule,
            severity: Severity::Error,
            path: PathBuf::from("migrations/001_test.sql"),
            line,
            col: 1,
            message: "seen".into(),
            fix: "generic".into(),
            table: Some("orders".into()),
        }
    }

    #[test]
    fn observations_replace_the_lock_guesses_of_observed_statements() {
        // Statement 0 was observed rewriting; statement 1, guessed from the syntax to
        // rewrite, was observed doing nothing; statement 2 was not observed.
        let m = migration(
            concat!(
                "ALTER TABLE orders ALTER COLUMN total TYPE bigint;\n",
                "ALTER TABLE orders ALTER COLUMN label TYPE bigint;\n",
                "CREATE INDEX orders_x ON orders (x);\n"
            ),
            false,
        );
        let offline = lint_migration(&m, &LintOptions::default());
        assert!(offline.iter().any(|f| f.line == 2), "{offline:?}");
        let f = lint_rehearsed(
            &m,
            &LintOptions::default(),
            &mut SchemaModel::default(),
            Rehearsed {
                findings: vec![(0, observed("observed-rewrite", 1))],
                items: vec![0, 1],
            },
        );
        let got: Vec<_> = f.iter().map(|f| (f.rule, f.line)).collect();
        assert_eq!(
            got,
            vec![
                ("observed-rewrite", 1),
                ("require-concurrent-index-creation", 3)
            ]
        );
        // The replaced guess's fix is the observed finding's.
        assert_ne!(f[0].fix, "generic");
    }

    #[test]
    fn an_allow_of_the_replaced_rule_silences_the_observation() {
        let m = migration(
            "-- pgrollout:allow column-type-rewrite orders has ten rows\nALTER TABLE orders ALTER COLUMN total TYPE bigint;\n",
            false,
        );
        let f = lint_rehearsed(
            &m,
            &LintOptions::default(),
            &mut SchemaModel::default(),
            Rehearsed {
                findings: vec![(0, observed("observed-rewrite", 2))],
                items: vec![0],
            },
        );
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn an_allow_of_an_observed_rule_is_unused_only_after_a_rehearsal() {
        let m = migration(
            "-- pgrollout:allow observed-scan small table
ALTER TABLE orders ADD COLUMN n text;
",
            false,
        );
        assert!(lint_migration(&m, &LintOptions::default()).is_empty());
        let f = lint_rehearsed(
            &m,
            &LintOptions::default(),
            &mut SchemaModel::default(),
            Rehearsed {
                findings: Vec::new(),
                items: vec![0],
            },
        );
        assert_eq!(
            f.iter().map(|f| f.rule).collect::<Vec<_>>(),
            vec!["unused-allow"]
        );
    }

    #[test]
    fn severities_are_ordered_and_serialize_lowercase() {
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Error);
        assert_eq!(
            serde_json::to_string(&Severity::Warning).unwrap(),
            "\"warning\""
        );
    }
}
