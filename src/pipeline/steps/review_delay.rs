//! The `review-delay` step: a countdown before apply that Ctrl-C or a cancelled job stops with nothing applied.

use std::time::{Duration, Instant};

use super::super::{Runner, StepError, StepResult};
use crate::plan::{self};
use crate::report::summary::RunStatus;
use crate::report::Event;

impl Runner<'_, '_> {
    pub(in crate::pipeline) fn review_delay(&mut self, delay: Duration) -> StepResult {
        let mut lease = self.connect()?;
        let s = &mut *lease;
        let state = s.tracking.read(&mut s.db)?;
        drop(lease);
        let p = plan::plan(self.setup.set, &state.rows, &self.setup.opts.plan);
        let list: Vec<(String, String)> = p
            .to_apply
            .iter()
            .map(|m| (m.version.text.clone(), m.name.clone()))
            .collect();
        if list.is_empty() {
            return Ok("nothing pending: no delay".into());
        }
        self.reporter.event(&Event::PlanReady {
            direction: crate::report::Direction::Up,
            migrations: &list,
            dry_run: false,
        });
        let end = Instant::now() + delay;
        let mut next_report = Instant::now();
        loop {
            if crate::cancelled() {
                self.summary.status = RunStatus::Cancelled;
                return Err(StepError::Cancelled);
            }
            let now = Instant::now();
            if now >= end {
                break;
            }
            if now >= next_report {
                let remaining = end - now;
                self.reporter.event(&Event::Countdown {
                    remaining: Duration::from_secs(remaining.as_secs_f64().ceil() as u64),
                });
                let step = if remaining > Duration::from_secs(10) {
                    10
                } else {
                    1
                };
                next_report = now + Duration::from_secs(step).min(remaining);
            }
            crate::wait_cancelled(next_report.min(end) - now);
        }
        Ok(format!(
            "waited {} before applying {} migration(s)",
            crate::report::human_duration(delay),
            list.len()
        ))
    }
}
