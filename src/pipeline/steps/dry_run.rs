//! The `dry-run` step: each pending migration rehearsed on a shadow of the target's
//! schema, then, when the shadow showed it catalog-only, on the target in a transaction
//! that is rolled back.

use super::super::{Runner, StepError, StepResult};
use crate::engine::{self, ApplyError, ApplyFailure};

impl Runner<'_, '_> {
    pub(in crate::pipeline) fn rehearse(&mut self) -> StepResult {
        let mut opts = self.setup.opts.clone();
        opts.dry_run = true;
        let mut lease = self.connect()?;
        let result = engine::rehearse::guarded_dry_run(
            &self.target,
            &mut lease,
            self.setup.set,
            &opts,
            self.reporter,
        );
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
                let shadow_only = report.shadow_only.iter().map(|a| a.version.clone());
                if let Some(why) = &report.target_skipped {
                    // Rehearsed nowhere: the summary lists them as not rehearsable.
                    self.not_rehearsed.extend(shadow_only);
                    return Ok(format!(
                        "{} not rehearsed: {why}, so the target rehearsal was skipped (see the warning)",
                        report.shadow_only.len()
                    ));
                }
                self.shadow_only = shadow_only.collect();
                let mut parts = vec![format!(
                    "{} rehearsed on the shadow and on the target, rolled back",
                    report.rehearsed.len()
                )];
                if !report.shadow_only.is_empty() {
                    parts.push(format!(
                        "{} on the shadow only (kept off the target: see each migration's line)",
                        report.shadow_only.len()
                    ));
                }
                if !report.not_rehearsed.is_empty() {
                    parts.push(format!(
                        "{} not rehearsable on the target (transaction:false)",
                        report.not_rehearsed.len()
                    ));
                }
                Ok(parts.join("; "))
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
                self.summary.failure = Some(crate::report::summary::Failure {
                    version: Some(me.version.clone()),
                    location: me.location.clone(),
                    error: me.server.to_string(),
                });
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
