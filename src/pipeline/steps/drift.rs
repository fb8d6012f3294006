//! The `drift` step: the schema against the migration files or another environment.

use super::super::{Runner, StepResult};
use crate::config::DriftStep;
use crate::db::Target;
use crate::engine::drift::{self, DriftError, DriftOptions};
use crate::ephemeral::EphemeralError;
use crate::report::{Event, Level};
use crate::schema::SnapshotOptions;

impl Runner<'_, '_> {
    /// `drift`: compare the database with the schema the migration files build (on a
    /// throwaway local server) or with another environment. Critical drift fails it.
    pub(in crate::pipeline) fn drift_step(&mut self, d: &DriftStep) -> StepResult {
        let opts = DriftOptions {
            snapshot: SnapshotOptions {
                tracking_schema: self.setup.opts.schema.clone(),
                ..SnapshotOptions::default()
            },
            connect_retry: self.setup.opts.connect_retry,
        };
        let me = self.target.clone();
        let result = match &d.source {
            None => drift::against_migrations(
                self.setup.set,
                (self.env_name, &me),
                &opts,
                self.reporter,
            ),
            Some(source) => {
                let t = self.source_target(source)?;
                drift::compare((source, &t), (self.env_name, &me), &opts, self.reporter)
            }
        };
        let report = match result {
            Ok(r) => r,
            Err(DriftError::Ephemeral(EphemeralError::NotInstalled { reason })) => {
                return Err(format!(
                    "drift against migrations needs the PostgreSQL server binaries (initdb/pg_ctl; {reason}); \
                     use `drift: {{ source: staging }}` or run it on a runner with postgresql installed"
                ).into())
            }
            Err(e) => return Err(e.to_string().into()),
        };
        drift::emit(&report, self.reporter);
        let counts = format!(
            "{} critical, {} warning, {} info difference(s) between {} and {}",
            report.critical, report.warning, report.info, report.source.label, report.target.label
        );
        let critical = report.has_critical();
        self.summary.drift.push(report);
        if critical {
            Err(counts.into())
        } else {
            Ok(counts)
        }
    }

    /// The database of another environment of the file, its secrets masked first.
    fn source_target(&mut self, source: &str) -> Result<Target, String> {
        let env = self
            .setup
            .file
            .environment(source)
            .ok_or_else(|| format!("no environment `{source}` in the pipeline file"))?;
        let var = &env.database_url_env;
        let url = (self.setup.url_var)(var)
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| {
                format!(
                    "drift source {source}: the variable {var} is not set; pass it from a secret \
                     (env: {var}: ${{{{ secrets.{var} }}}})"
                )
            })?;
        let t = Target::parse(&url).map_err(|e| format!("drift source {source} ({var}): {e}"))?;
        for s in &t.secrets {
            self.reporter.event(&Event::Secret { value: s });
        }
        if t.redacted == self.target.redacted {
            self.reporter.event(&Event::Diagnostic {
                level: Level::Warning,
                location: None,
                message: &format!(
                    "drift source {source} is the same database as {}: nothing will differ",
                    self.env_name
                ),
            });
        }
        Ok(t)
    }
}
