//! What a rule sees: one statement, where it sits, and facts about the whole file.

use pg_query::protobuf::RangeVar;
use pg_query::NodeEnum;

use super::{ast, registry, Finding, SchemaModel, Severity};
use crate::migration::Migration;
use crate::sql::{Item, Statement, TxControl};

/// The context a rule gets for one statement.
pub struct RuleContext<'a> {
    pub migration: &'a Migration,
    pub statement: &'a Statement,
    /// The statement's parse tree (rules only run on statements that parsed).
    pub ast: &'a NodeEnum,
    /// Position among the up section's parsed statements, 0-based.
    pub index: usize,
    pub(crate) facts: &'a FileFacts<'a>,
    /// The schema as the earlier migrations of the set and the earlier statements of
    /// this one left it.
    pub model: &'a SchemaModel,
}

impl<'a> RuleContext<'a> {
    pub(crate) fn new(
        m: &'a Migration,
        facts: &'a FileFacts<'a>,
        index: usize,
        model: &'a SchemaModel,
    ) -> Self {
        let statement = facts.stmts[index].1;
        let ast = statement
            .ast
            .as_ref()
            .expect("facts only hold parsed statements");
        RuleContext {
            migration: m,
            statement,
            ast,
            index,
            facts,
            model,
        }
    }

    /// Whether the up section runs inside the transaction the runner opens.
    pub fn in_transaction(&self) -> bool {
        !self.migration.up.no_transaction
    }

    /// The statement's own text.
    pub fn text(&self) -> &'a str {
        &self.migration.source[self.statement.span.clone()]
    }

    /// Whether `rv` names a table created by an earlier statement of this migration:
    /// such a table is new and empty, so locking on it harms nobody.
    pub fn is_new_table(&self, rv: &RangeVar) -> bool {
        self.is_new_table_named(&rv.schemaname, &rv.relname)
    }

    pub fn is_new_table_named(&self, schema: &str, name: &str) -> bool {
        self.facts.created.iter().any(|(s, n, pos)| {
            *pos < self.index && n == name && (s.is_empty() || schema.is_empty() || s == schema)
        })
    }

    /// Line and column of `location`, a byte offset into the statement text as the parse
    /// tree gives it; a negative location (unknown) means the statement's first token.
    pub fn line_col(&self, location: i32) -> (u32, u32) {
        match usize::try_from(location) {
            Ok(loc) if loc < self.statement.span.len() => {
                let m = self.migration;
                m.lines.line_col(&m.source, self.statement.span.start + loc)
            }
            _ => (self.statement.line, self.statement.col),
        }
    }

    /// A finding of rule `rule` at `location` (see [`Self::line_col`]).
    pub fn finding(
        &self,
        rule: &'static str,
        location: i32,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        let (line, col) = self.line_col(location);
        finding_at_line_col(self.migration, rule, line, col, message.into(), fix.into())
    }

    /// Statements of the up section that parsed, in order, with their positions.
    pub fn statements(&self) -> impl Iterator<Item = (usize, &'a Statement)> + '_ {
        self.facts
            .stmts
            .iter()
            .enumerate()
            .map(|(i, (_, s))| (i, *s))
    }

    pub(crate) fn tx(&self) -> &TxFacts {
        &self.facts.tx
    }
}

/// A finding with the registry's default severity for `rule`.
pub(crate) fn finding_at_line_col(
    m: &Migration,
    rule: &'static str,
    line: u32,
    col: u32,
    message: String,
    fix: String,
) -> Finding {
    let severity = registry::rule(rule).map_or(Severity::Error, |r| r.severity);
    Finding {
        rule,
        severity,
        path: m.up.path.clone(),
        line,
        col,
        message,
        fix,
        table: None,
    }
}

/// Facts about the whole up section, computed once so per-statement rules stay O(1).
pub(crate) struct FileFacts<'a> {
    /// (item index in `up.items`, statement) for every statement that parsed.
    pub stmts: Vec<(usize, &'a Statement)>,
    /// (schema, table, position) of every table created in this migration.
    pub created: Vec<(String, String, usize)>,
    pub tx: TxFacts,
}

#[derive(Default)]
pub(crate) struct TxFacts {
    /// Explicit transaction depth (0 or 1, as PostgreSQL has no nesting) before each statement.
    pub depth_before: Vec<u32>,
    /// A BEGIN that no COMMIT or ROLLBACK follows.
    pub unclosed_begin: Option<usize>,
    /// The file is wrapped whole in its own BEGIN … COMMIT: positions of both.
    pub wrapper: Option<(usize, usize)>,
    /// First statement that is transactional DDL, and first that cannot run in a transaction.
    pub first_tx_ddl: Option<usize>,
    pub first_non_tx: Option<usize>,
}

impl<'a> FileFacts<'a> {
    pub fn new(m: &'a Migration) -> Self {
        let stmts: Vec<(usize, &Statement)> =
            m.up.items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item {
                    Item::Statement(s) if s.ast.is_some() => Some((i, s)),
                    _ => None,
                })
                .collect();

        let mut created = Vec::new();
        let mut tx = TxFacts::default();
        let mut depth = 0;
        for (pos, (_, s)) in stmts.iter().enumerate() {
            let node = s.ast.as_ref().expect("filtered above");
            if let Some(rv) = ast::created_table(node) {
                created.push((rv.schemaname.clone(), rv.relname.clone(), pos));
            }
            tx.depth_before.push(depth);
            match s.tx_control {
                Some(TxControl::Begin) => {
                    if depth == 0 {
                        tx.unclosed_begin = Some(pos);
                    }
                    depth = 1;
                }
                Some(TxControl::Commit | TxControl::Rollback) => {
                    depth = 0;
                    tx.unclosed_begin = None;
                }
                _ => {}
            }
            if s.non_transactional.is_some() {
                tx.first_non_tx.get_or_insert(pos);
            } else if ast::is_ddl(node) {
                tx.first_tx_ddl.get_or_insert(pos);
            }
        }
        let boundaries: Vec<usize> = stmts
            .iter()
            .enumerate()
            .filter(|(_, (_, s))| {
                matches!(
                    s.tx_control,
                    Some(TxControl::Begin | TxControl::Commit | TxControl::Rollback)
                )
            })
            .map(|(pos, _)| pos)
            .collect();
        if let [first, last] = boundaries[..] {
            if first == 0
                && last == stmts.len() - 1
                && stmts[first].1.tx_control == Some(TxControl::Begin)
                && stmts[last].1.tx_control == Some(TxControl::Commit)
            {
                tx.wrapper = Some((first, last));
            }
        }
        FileFacts { stmts, created, tx }
    }

    pub fn position_of_item(&self, item_idx: usize) -> Option<usize> {
        self.stmts.binary_search_by_key(&item_idx, |(i, _)| *i).ok()
    }
}
