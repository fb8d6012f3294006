//! The run's summary: the migration table, pending list and rollback instructions, built once the steps are over.

use super::Runner;
use crate::plan::{self};
use crate::report::summary::{MigrationRow, RunStatus, RunSummary, StepStatus};
use crate::report::Event;

impl Runner<'_, '_> {
    /// The summary's migration table, pending list and rollback instructions.
    pub(super) fn finish(mut self) -> RunSummary {
        let rows = self
            .connect()
            .ok()
            .and_then(|mut lease| {
                let s = &mut *lease;
                s.tracking.read(&mut s.db).ok()
            })
            .map(|st| st.rows);
        let pending: Vec<String> = match &rows {
            Some(rows) => plan::plan(self.setup.set, rows, &self.setup.opts.plan)
                .to_apply
                .iter()
                .map(|m| m.version.text.clone())
                .collect(),
            None => Vec::new(),
        };
        self.summary.database_read = rows.is_some();
        let applied_before: Vec<String> =
            rows.iter().flatten().map(|r| r.version.clone()).collect();
        for m in &self.setup.set.migrations {
            let v = &m.version.text;
            let find = |l: &[(String, u64)]| l.iter().find(|(x, _)| x == v).map(|(_, d)| *d);
            let (status, duration) = if let Some(d) = find(&self.applied_by_run) {
                ("applied", Some(d))
            } else if let Some(st) = self.rollback_status(v) {
                (st, None)
            } else if self.failed.as_ref().is_some_and(|(f, _)| f == v) {
                ("failed", None)
            } else if self.rehearsal_failed.as_ref() == Some(v) {
                ("failed in rehearsal", None)
            } else if let Some(d) = find(&self.rehearsed) {
                ("rehearsed", Some(d))
            } else if self.shadow_only.contains(v) {
                ("rehearsed on the shadow only", None)
            } else if self.not_rehearsed.contains(v) {
                ("not rehearsable", None)
            } else if pending.contains(v) {
                ("pending", None)
            } else if applied_before.contains(v) {
                ("already applied", None)
            } else {
                ("pending", None)
            };
            self.summary.migrations.push(MigrationRow {
                version: v.clone(),
                name: m.name.clone(),
                status: status.into(),
                duration_ms: duration,
                checksum: m.checksum.clone(),
            });
        }
        self.summary.applied = self.applied_by_run.iter().map(|(v, _)| v.clone()).collect();
        self.summary.pending = pending;
        let failed_step = self
            .summary
            .steps
            .iter()
            .find(|s| s.status == StepStatus::Failed)
            .map(|s| (s.name.clone(), s.detail.clone()));
        if self.summary.status != RunStatus::Cancelled {
            self.summary.status = match (&failed_step, self.dry_run) {
                (Some(_), _) => RunStatus::Failed,
                (None, true) => RunStatus::DryRun,
                (None, false) => RunStatus::Success,
            };
        }
        self.summary.message = match (&failed_step, self.summary.status) {
            (_, RunStatus::Cancelled) => {
                "cancelled during the review delay: nothing was applied".into()
            }
            (Some((n, d)), _) => format!("step {n} failed: {d}"),
            (None, RunStatus::DryRun) => format!(
                "dry run: {} migration(s) rehearsed, nothing written",
                self.rehearsed.len()
            ),
            _ => format!("{} migration(s) applied", self.summary.applied.len()),
        };
        if failed_step.is_none() && self.summary.status != RunStatus::Cancelled {
            self.describe_rollback_in_message();
        }
        if failed_step.is_some() {
            self.summary.rollback = Some(self.rollback_instructions());
        }
        self.reporter.event(&Event::PipelineFinished {
            summary: &self.summary,
        });
        self.summary
    }
}
