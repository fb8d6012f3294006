//! The `apply` step: the pending migrations, each exactly once, under the lock.

use super::super::{Runner, StepResult};
use crate::engine;

impl Runner<'_, '_> {
    pub(in crate::pipeline) fn apply(&mut self) -> StepResult {
        let mut opts = self.setup.opts.clone();
        opts.dry_run = false;
        let mut lease = self.connect()?;
        let result = engine::apply_in(&mut lease, self.setup.set, &opts, &self.ctx, self.reporter);
        drop(lease);
        let (report, err) = match result {
            Ok(r) => (r, None),
            Err(f) => {
                let report = f.report.clone();
                (report, Some(self.failure_text(f, false)))
            }
        };
        self.applied_by_run = report
            .applied
            .iter()
            .map(|a| (a.version.clone(), a.duration_ms))
            .collect();
        match err {
            Some(e) => Err(e),
            None if report.applied.is_empty() => Ok("nothing pending".into()),
            None => Ok(format!("{} migration(s) applied", report.applied.len())),
        }
    }
}
