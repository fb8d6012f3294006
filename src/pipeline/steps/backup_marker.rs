//! The `backup-marker` step: the WAL position (and optionally a pg_dump) recorded right before migrating, or a check that a recent one exists.

use super::super::{Runner, StepResult};
use crate::config::BackupOptions;
use crate::db::health;

impl Runner<'_, '_> {
    pub(in crate::pipeline) fn backup_marker(&mut self, b: &BackupOptions) -> StepResult {
        let schema = self.setup.opts.schema.clone();
        if let Some(max_age) = b.max_age {
            let mut lease = self.connect()?;
            let s = &mut *lease;
            return match health::recent_backup_marker(&mut s.db, &schema, max_age)? {
                Some(m) => {
                    let d = format!("backup marker #{} from {} (younger than {})", m.id, m.created_at, crate::report::human_duration(max_age));
                    self.summary.backup = Some(m);
                    Ok(d)
                }
                None => Err(format!(
                    "no backup marker younger than {}: take a backup and record it (`backup-marker` step, or `pgrollout backup`) first",
                    crate::report::human_duration(max_age)
                ).into()),
            };
        }
        let dump = if b.dump {
            let (dir, in_job_workspace) = match &b.dir {
                Some(d) => (d.clone(), false),
                None => self.setup.dump_dir.clone(),
            };
            crate::engine::backup::create_dir(&dir)?;
            Some(crate::engine::backup::dump(
                &self.target,
                &dir,
                self.env_name,
                in_job_workspace,
                self.reporter,
            )?)
        } else {
            None
        };
        let label = b
            .label
            .clone()
            .unwrap_or_else(|| format!("pipeline {}", self.env_name));
        let mut lease = self.connect()?;
        let m = crate::engine::backup::record_in(
            &mut lease,
            &self.setup.opts,
            &self.ctx,
            &label,
            dump.as_ref(),
            self.reporter,
        )?;
        let d = crate::engine::backup::describe(&m);
        self.summary.backup = Some(m);
        Ok(d)
    }
}
