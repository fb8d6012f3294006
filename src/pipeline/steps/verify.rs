//! The `verify` step: after apply, nothing pending, nothing failed, checksums intact.

use super::super::{Runner, StepError, StepResult};
use crate::engine;
use crate::plan::{self, State};
use crate::report::{Event, Level};

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
        let applied = |v: &crate::migration::Version| {
            p.entries
                .iter()
                .any(|e| e.version == v.text && matches!(e.state, State::Applied))
        };
        for b in &bad {
            self.diag(Level::Error, &format!("verify: {b}"));
        }
        let scripts = match engine::verify::run(s, self.setup.set, applied, self.reporter) {
            Ok(n) => n,
            Err(e) => {
                let message = format!("verify: {e}");
                self.reporter.event(&Event::Diagnostic {
                    level: Level::Error,
                    location: e.location().as_ref(),
                    message: &message,
                });
                bad.push(e.to_string());
                0
            }
        };
        if bad.is_empty() {
            let detail = self.verify_detail(state.rows.len(), p.to_apply.len());
            Ok(if scripts == 0 {
                detail
            } else {
                format!("{detail}; {scripts} sqitch verify script(s) passed")
            })
        } else {
            Err(StepError::Reported(bad.join("; ")))
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
