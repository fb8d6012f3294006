//! The `validate` step: files against the tracking schema (checksums, missing files, order).

use super::super::{Runner, StepResult};
use crate::plan::{self};
use crate::report::{Event, Level};

impl Runner<'_, '_> {
    pub(in crate::pipeline) fn validate(&mut self) -> StepResult {
        let mut problems = plan::check_files(self.setup.set);
        let mut lease = self.connect()?;
        let s = &mut *lease;
        let state = s.tracking.read(&mut s.db)?;
        let p = plan::plan(self.setup.set, &state.rows, &self.setup.opts.plan);
        problems.extend(p.problems.iter().cloned());
        for pr in &problems {
            self.reporter.event(&Event::Diagnostic {
                level: pr.level,
                location: pr.location.as_ref(),
                message: &pr.message,
            });
        }
        let errors = problems.iter().filter(|p| p.level == Level::Error).count();
        if errors > 0 {
            return Err(format!("{errors} problem(s) in the migrations").into());
        }
        Ok(format!(
            "{} file(s) valid, {} pending",
            self.setup.set.migrations.len(),
            p.to_apply.len()
        ))
    }
}
