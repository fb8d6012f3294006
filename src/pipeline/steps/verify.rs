//! The `verify` step: after apply, nothing pending, nothing failed, checksums intact.

use super::super::{Runner, StepResult};
use crate::plan::{self, State};
use crate::report::Level;

impl Runner<'_, '_> {
    pub(in crate::pipeline) fn verify(&mut self) -> StepResult {
        let mut lease = self.connect()?;
        let s = &mut *lease;
        let state = s.tracking.read(&mut s.db)?;
        let p = plan::plan(self.setup.set, &state.rows, &self.setup.opts.plan);
        let mut bad = Vec::new();
        for e in &p.entries {
            match e.state {
                State::Modified => bad.push(format!(
                    "{} {}: checksum differs from the applied file",
                    e.version, e.name
                )),
                State::Failed | State::Running => {
                    bad.push(format!("{} {}: {:?}", e.version, e.name, e.state).to_lowercase())
                }
                _ => {}
            }
        }
        // After a `rollback` step, the versions it rolled back are pending on purpose.
        let unexpected: Vec<&str> = p
            .to_apply
            .iter()
            .map(|m| m.version.text.as_str())
            .filter(|v| !self.rolled_back_by_run(v))
            .collect();
        if !unexpected.is_empty() {
            bad.push(format!(
                "{} still pending: {}",
                unexpected.len(),
                unexpected.join(", ")
            ));
        }
        for b in &bad {
            self.diag(Level::Error, &format!("verify: {b}"));
        }
        if bad.is_empty() {
            Ok(self.verify_detail(state.rows.len(), p.to_apply.len()))
        } else {
            Err(bad.join("; ").into())
        }
    }

    pub(in crate::pipeline) fn verify_detail(&self, applied: usize, pending: usize) -> String {
        if pending == 0 {
            format!("{applied} applied, nothing pending, nothing failed, checksums match")
        } else {
            format!(
                "{applied} applied, {pending} pending as rolled back by this run, nothing failed, checksums match"
            )
        }
    }
}
