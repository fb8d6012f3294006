//! The `rollback` step, and the rollback instructions a failed run ends with. Kept
//! apart from the apply path: it undoes, never migrates.

use super::super::{Runner, StepResult};
use crate::config::RollbackStep;
use crate::engine::rollback::{self, DownOrigin, RollbackOptions, RollbackTarget};
use crate::migration::Version;
use crate::report::summary::{GeneratedDown, Rollback, RolledBackRow, RunStatus};

impl Runner<'_, '_> {
    /// `rollback: { steps: N }` / `{ to: V }`: the one rollback path, under the lock. In
    /// a dry run it rehearses the downs in a transaction that is rolled back.
    pub(in crate::pipeline) fn rollback_step(&mut self, r: &RollbackStep) -> StepResult {
        let target = match (r.steps, r.to.as_deref()) {
            (Some(n), None) => RollbackTarget::Steps(n),
            (None, Some(v)) => RollbackTarget::To(
                Version::parse(v).ok_or_else(|| format!("`to: {v}` is not a version"))?,
            ),
            _ => return Err("give exactly one of `steps: N` or `to: VERSION`".into()),
        };
        let opts = RollbackOptions {
            run: self.setup.opts.clone(),
            target,
            dry_run: self.dry_run,
            allow_generated: r.allow_generated,
            use_file_down: false,
        };
        let (report, error) = match rollback::rollback(
            &self.target,
            self.setup.set,
            &opts,
            &self.ctx,
            self.reporter,
        ) {
            Ok(report) => (report, None),
            Err(f) => (f.report, Some(f.error.to_string())),
        };
        for p in &report.planned {
            let status = if report.dry_run {
                if report.not_rehearsed.contains(&p.version) {
                    "not rehearsable"
                } else if error.is_some() {
                    continue;
                } else {
                    "rehearsed"
                }
            } else if report.rolled_back.iter().any(|d| d.version == p.version) {
                "rolled back"
            } else {
                continue;
            };
            self.summary.rolled_back.push(RolledBackRow {
                version: p.version.clone(),
                name: p.name.clone(),
                origin: p.origin.as_str().to_string(),
                status: status.to_string(),
            });
        }
        if let Some(e) = error {
            let done = self.summary.rolled_back_versions();
            return Err(if done.is_empty() {
                e.into()
            } else {
                format!("{e} (already rolled back: {})", done.join(", ")).into()
            });
        }
        let list = |rows: &[RolledBackRow]| {
            rows.iter()
                .map(|r| format!("{} ({})", r.version, r.origin))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Ok(if report.dry_run {
            format!(
                "dry run: rollback of {} migration(s) rehearsed and undone: {}",
                self.summary.rolled_back.len(),
                list(&self.summary.rolled_back)
            )
        } else {
            format!(
                "{} migration(s) rolled back: {}",
                self.summary.rolled_back.len(),
                list(&self.summary.rolled_back)
            )
        })
    }

    /// Whether a `rollback` step of this run rolled `version` back (so `verify` expects
    /// it pending).
    pub(in crate::pipeline) fn rolled_back_by_run(&self, version: &str) -> bool {
        self.summary
            .rolled_back
            .iter()
            .any(|r| r.version == version && r.status == "rolled back")
    }

    /// The migration table's status for a version a `rollback` step handled.
    pub(in crate::pipeline) fn rollback_status(&self, version: &str) -> Option<&'static str> {
        let r = self
            .summary
            .rolled_back
            .iter()
            .find(|r| r.version == version)?;
        Some(match r.status.as_str() {
            "rolled back" => "rolled back",
            "rehearsed" => "rollback rehearsed",
            _ => "rollback not rehearsable",
        })
    }

    /// A successful run that rolled back says so in its closing line.
    pub(in crate::pipeline) fn describe_rollback_in_message(&mut self) {
        if self.summary.rolled_back.is_empty() {
            return;
        }
        let done = self.summary.rolled_back_versions();
        self.summary.message = if self.summary.status == RunStatus::DryRun {
            format!(
                "dry run: rollback of {} migration(s) rehearsed, nothing written",
                self.summary.rolled_back.len()
            )
        } else {
            format!(
                "{} migration(s) rolled back: {}",
                done.len(),
                done.join(", ")
            )
        };
    }

    /// What the operator can do after a failure: the exact `rollback` command for this
    /// run's migrations, decided by the same planner `rollback` uses, with the generated
    /// SQL shown when a migration has no down section.
    pub(in crate::pipeline) fn rollback_instructions(&mut self) -> Rollback {
        let mut reversible = Vec::new();
        let mut irreversible = Vec::new();
        for (v, _) in self.applied_by_run.iter().rev() {
            let has_down = self
                .setup
                .set
                .migrations
                .iter()
                .find(|m| &m.version.text == v)
                .is_some_and(|m| m.down.is_some());
            if has_down {
                reversible.push(v.clone());
            } else {
                irreversible.push(v.clone());
            }
        }
        let mut out = Rollback {
            failed: self.failed.as_ref().map(|(v, _)| v.clone()),
            failed_partially_applied: self.failed.as_ref().is_some_and(|(_, p)| *p),
            failed_in_rehearsal: self.rehearsal_failed.clone(),
            backup: self.summary.backup.clone(),
            url_variable: Some(self.env.database_url_env.clone()),
            ..Default::default()
        };
        let n = self.applied_by_run.len();
        if n > 0 {
            if let Some((command, to_command, generated)) = self.plan_undo(n) {
                out.command = Some(command);
                out.to_command = to_command;
                out.generated = generated;
            }
        }
        out.applied = self
            .applied_by_run
            .iter()
            .rev()
            .map(|(v, _)| v.clone())
            .collect();
        out.reversible = reversible;
        out.irreversible = irreversible;
        out
    }

    /// `pgrollout rollback --steps N` (and `--to V`) for the `n` migrations this run
    /// applied, when the planner finds down SQL (stored, file, or — with
    /// `--allow-generated` — generated) for each; None when it does not, or when they
    /// are not the newest applied ones.
    fn plan_undo(&mut self, n: usize) -> Option<(String, Option<String>, Vec<GeneratedDown>)> {
        let mut lease = self.connect().ok()?;
        let s = &mut *lease;
        let state = s.tracking.read(&mut s.db).ok()?;
        let stored = s.tracking.stored_downs(&mut s.db).ok()?;
        drop(lease);
        let mut newest: Vec<_> = state.rows.iter().collect();
        newest.sort_by_key(|r| std::cmp::Reverse(r.value));
        let ours: Vec<&String> = self.applied_by_run.iter().map(|(v, _)| v).collect();
        // `--steps N` undoes the newest N rows: only right if they are this run's.
        if newest.len() < n || !newest[..n].iter().all(|r| ours.contains(&&r.version)) {
            return None;
        }
        let mut opts = RollbackOptions {
            run: self.setup.opts.clone(),
            target: RollbackTarget::Steps(n as u32),
            dry_run: false,
            allow_generated: false,
            use_file_down: false,
        };
        let mut flag = "";
        let planned = match rollback::plan(&state.rows, &stored, self.setup.set, &opts) {
            Ok(p) => p,
            Err(_) => {
                opts.allow_generated = true;
                flag = " --allow-generated";
                rollback::plan(&state.rows, &stored, self.setup.set, &opts).ok()?
            }
        };
        let generated = planned
            .iter()
            .filter(|p| p.origin == DownOrigin::Generated)
            .map(|p| GeneratedDown {
                version: p.version.clone(),
                sql: p.sql.clone(),
            })
            .collect();
        let to = newest
            .get(n)
            .map(|r| format!("pgrollout rollback --to {}{flag}", r.version));
        Some((
            format!("pgrollout rollback --steps {n}{flag}"),
            to,
            generated,
        ))
    }
}
