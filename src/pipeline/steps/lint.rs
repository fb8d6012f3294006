//! The `lint` step: the pending migrations through the linter, with live table sizes, failing at the environment's `lint_fail_on`.

use super::super::{Runner, StepResult};
use crate::report::summary::FindingRow;
use crate::report::Level;

impl Runner<'_, '_> {
    /// The `lint` step: the migrations pending on the target, with live context from
    /// it; findings at or above `lint_fail_on` (default error) fail the step.
    pub(in crate::pipeline) fn lint(&mut self) -> StepResult {
        use crate::engine::lint as engine_lint;
        let mut lease = self.connect()?;
        let s = &mut *lease;
        let state = s.tracking.read(&mut s.db)?;
        let pending = engine_lint::pending(self.setup.set, &state.rows);
        let settings = &self.setup.lint;
        let mut linted =
            engine_lint::lint(self.setup.set, &pending, &settings.options).map_err(|errors| {
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
        engine_lint::live_context(&mut s.db, &mut linted, &pending, settings.size_threshold)
            .map_err(|e| {
                format!(
                    "reading table sizes for live context: {}",
                    crate::db::conn::error_text(&e)
                )
            })?;
        engine_lint::emit(&linted, self.reporter);
        let findings: Vec<&crate::lint::Finding> =
            linted.iter().flat_map(|l| l.findings.iter()).collect();
        for f in &findings {
            self.summary.findings.push(FindingRow {
                level: match f.severity {
                    crate::lint::Severity::Error => Level::Error,
                    crate::lint::Severity::Warning => Level::Warning,
                    crate::lint::Severity::Info => Level::Notice,
                },
                rule: Some(f.rule.to_string()),
                location: Some(crate::report::Location::new(&f.path, f.line, f.col)),
                message: format!("{} — {}", f.message, f.fix),
            });
        }
        let fail_on = self.setup.lint_fail_on;
        let failing = engine_lint::failing(findings.iter().copied(), fail_on);
        if failing > 0 {
            Err(format!(
                "{failing} finding(s) at or above lint_fail_on ({})",
                engine_lint::fail_on_str(fail_on)
            )
            .into())
        } else {
            Ok(format!(
                "{} pending file(s), {} finding(s)",
                pending.len(),
                findings.len()
            ))
        }
    }
}
