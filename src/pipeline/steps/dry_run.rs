//! The `dry-run` step: each pending migration rehearsed in a transaction that is rolled back.

use super::super::{Runner, StepError, StepResult};
use crate::engine::{self, ApplyError, ApplyFailure};

impl Runner<'_, '_> {
    pub(in crate::pipeline) fn rehearse(&mut self) -> StepResult {
        let mut opts = self.setup.opts.clone();
        opts.dry_run = true;
        let mut lease = self.connect()?;
        let result = engine::apply_in(&mut lease, self.setup.set, &opts, &self.ctx, self.reporter);
        drop(lease);
        self.rehearsal_done = true;
        match result {
            Ok(report) => {
                self.rehearsed = report
                    .rehearsed
                    .iter()
                    .map(|a| (a.version.clone(), a.duration_ms))
                    .collect();
                self.not_rehearsed = report
                    .not_rehearsed
                    .iter()
                    .map(|a| a.version.clone())
                    .collect();
                Ok(format!(
                    "{} rehearsed and rolled back{}",
                    report.rehearsed.len(),
                    if report.not_rehearsed.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ", {} not rehearsable (transaction:false)",
                            report.not_rehearsed.len()
                        )
                    }
                ))
            }
            Err(f) => Err(self.failure_text(f, true)),
        }
    }

    /// The step's error for a failed apply or rehearsal, remembering which migration
    /// failed (for the summary's rollback instructions).
    pub(in crate::pipeline) fn failure_text(
        &mut self,
        f: ApplyFailure,
        rehearsal: bool,
    ) -> StepError {
        match f.error {
            ApplyError::Migration(me) => {
                if rehearsal {
                    self.rehearsal_failed = Some(me.version.clone());
                } else {
                    self.failed = Some((me.version.clone(), me.non_transactional));
                }
                StepError::Migration(format!(
                    "migration {} {} failed{}: {}",
                    me.version,
                    me.name,
                    me.location
                        .as_ref()
                        .map(|l| format!(" at {l}"))
                        .unwrap_or_default(),
                    me.server.message
                ))
            }
            other => other.into(),
        }
    }
}
