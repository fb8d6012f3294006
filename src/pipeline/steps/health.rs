//! The `health` step: the server answers, its version and TLS, no long transactions or locks in the way of the pending migrations.

use super::super::{Runner, StepResult};
use crate::db::health;
use crate::plan::{self};
use crate::report::{Event, Level};

impl Runner<'_, '_> {
    pub(in crate::pipeline) fn health(&mut self) -> StepResult {
        let mut lease = self.connect()?;
        let s = &mut *lease;
        let facts = health::server_facts(&mut s.db)?;
        let tls = facts
            .tls
            .as_deref()
            .map_or("unencrypted".to_string(), |v| format!("TLS {v}"));
        self.reporter.event(&Event::Info {
            message: &format!("server: PostgreSQL {} ({tls})", facts.version),
        });
        if facts.tls.is_none() && !matches!(self.target.sslmode, crate::db::SslMode::Disable) {
            self.diag(
                Level::Warning,
                "the connection is not encrypted: the server does not offer TLS (use sslmode=require to insist)",
            );
        }
        if facts.in_recovery {
            return Err("the server is a replica in recovery (pg_is_in_recovery()): point the URL at the primary".into());
        }
        if facts.read_only {
            return Err("the session is read-only (default_transaction_read_only = on): migrations cannot be applied".into());
        }
        let state = s.tracking.read(&mut s.db)?;
        let failed: Vec<String> = state
            .rows
            .iter()
            .filter(|r| {
                matches!(
                    r.status,
                    crate::db::tracking::RowStatus::Failed
                        | crate::db::tracking::RowStatus::Running
                )
            })
            .map(|r| format!("{} {} ({:?})", r.version, r.name, r.status).to_lowercase())
            .collect();
        if !failed.is_empty() {
            return Err(format!(
                "tracking rows not completed: {}; fix the cause and run `pgrollout repair`",
                failed.join(", ")
            )
            .into());
        }
        let long = health::long_transactions(&mut s.db, self.setup.long_transaction)?;
        for t in &long {
            self.diag(
                Level::Warning,
                &format!(
                    "transaction open for {} (pid {}, user {}, application {:?}, {}): it can block migrations that need a lock — {}",
                    crate::report::human_duration(t.age),
                    t.pid,
                    t.user,
                    t.application,
                    t.state,
                    t.query
                ),
            );
        }
        let p = plan::plan(self.setup.set, &state.rows, &self.setup.opts.plan);
        let tables = touched_tables(&p.to_apply);
        let locks = health::table_locks(&mut s.db, &tables)?;
        for l in &locks {
            self.diag(
                Level::Warning,
                &format!(
                    "pid {} ({:?}, transaction {} old) {} {} on {}, which a pending migration touches",
                    l.pid,
                    l.application,
                    crate::report::human_duration(l.age),
                    if l.granted { "holds" } else { "waits for" },
                    l.mode,
                    l.table
                ),
            );
        }
        Ok(format!(
            "PostgreSQL {}, {tls}, primary, writable; {} pending; {} long transaction(s); {} lock(s) on touched tables",
            facts.version,
            p.to_apply.len(),
            long.len(),
            locks.len()
        ))
    }
}

/// Tables the statements of `migrations` name, unqualified (for the lock check).
pub(in crate::pipeline) fn touched_tables(
    migrations: &[&crate::migration::Migration],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in migrations {
        for st in m.statements() {
            let text = &m.source[st.span.clone()];
            if let Ok(parsed) = pg_query::parse(text, 0) {
                for t in parsed.tables() {
                    let name = t.rsplit('.').next().unwrap_or(&t).to_string();
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
            }
        }
    }
    out
}
