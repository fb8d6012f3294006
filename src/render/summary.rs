//! A finished run in words: the closing lines of the log and the rollback
//! instructions, shared by the terminal, the GitHub job summary and Markdown.

use crate::report::summary::{Rollback, RunSummary};

/// Rollback instructions, one item per line, commands in backticks (readable as plain
/// text and as Markdown list items).
pub fn rollback_lines(r: &Rollback) -> Vec<String> {
    let url = r
        .url_variable
        .as_deref()
        .map_or("DATABASE_URL".to_string(), str::to_string);
    let mut out = Vec::new();
    if let Some(f) = &r.failed {
        if r.failed_partially_applied {
            out.push(format!(
                "Migration {f} ran outside a transaction and stopped half-way: the statements before the failing one are in effect. Fix the cause, then `pgrollout repair` and run again."
            ));
        } else {
            out.push(format!(
                "Migration {f} was rolled back with its transaction: nothing of it is in effect."
            ));
        }
    }
    let nothing_applied = r.reversible.is_empty() && r.irreversible.is_empty();
    if nothing_applied && !r.failed_partially_applied {
        out.push(format!(
            "No migration was applied by this run: the schema is as it was before and nothing needs restoring — {}.",
            if r.failed.is_some() || r.failed_in_rehearsal.is_some() {
                "fix the data and re-run (or fix the migration, if it is what is wrong)"
            } else {
                "fix the cause above and re-run"
            }
        ));
    } else if !nothing_applied {
        let applied = if r.applied.is_empty() {
            r.reversible
                .iter()
                .chain(&r.irreversible)
                .cloned()
                .collect()
        } else {
            r.applied.clone()
        };
        out.push(format!(
            "Applied by this run (newest first): {}.",
            applied.join(", ")
        ));
        let generated = r
            .command
            .as_deref()
            .is_some_and(|c| c.contains("--allow-generated"));
        if let Some(cmd) = &r.command {
            if generated {
                out.push(format!(
                    "No down section for {}, but a rollback can be generated from the up section (GENERATED — review the SQL below first); to revert: `DATABASE_URL=\"${url}\" {cmd}`",
                    r.generated
                        .iter()
                        .map(|g| g.version.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            } else {
                out.push(format!(
                    "Down migrations exist for all of them; to revert: `DATABASE_URL=\"${url}\" {cmd}`"
                ));
            }
            if let Some(to) = &r.to_command {
                out.push(format!("Equivalent: `DATABASE_URL=\"${url}\" {to}`"));
            }
        } else if !r.irreversible.is_empty() {
            out.push(format!(
                "No down section for {}: revert by hand, or restore from the backup below.",
                r.irreversible.join(", ")
            ));
        }
    }
    // Restoring is advice only once something of this run is in effect.
    let changed = !nothing_applied || r.failed_partially_applied;
    match &r.backup {
        Some(b) if changed => {
            if let Some(lsn) = &b.wal_lsn {
                out.push(format!(
                    "Point-in-time recovery: backup marker #{} recorded WAL LSN `{lsn}` (txid {}) at {} — restore with `recovery_target_lsn = '{lsn}'` (before this run's changes).",
                    b.id, b.txid, b.created_at
                ));
            }
            if let Some(d) = &b.dump {
                out.push(dump_line(d, &url));
            }
        }
        Some(b) => out.push(format!(
            "Backup marker #{}{} was taken; with nothing applied there is nothing to restore from it.",
            b.id,
            if b.dump.is_some() { " and its dump" } else { "" }
        )),
        None if changed => out.push(
            "No backup marker was recorded in this run (add the `backup-marker` step).".into(),
        ),
        None => {}
    }
    out
}

/// Where the dump is and the `pg_restore` command for it. A dump in a CI job's
/// workspace is gone with the job: the command names the file a download of the
/// uploaded artifact gives.
pub fn dump_line(d: &crate::report::summary::DumpInfo, url: &str) -> String {
    let restore =
        |file: &str| format!("`pg_restore --clean --if-exists --no-owner -d \"${url}\" '{file}'`");
    if d.in_job_workspace {
        let file = std::path::Path::new(&d.path)
            .file_name()
            .map_or(d.path.clone(), |f| f.to_string_lossy().into_owned());
        format!(
            "Dump taken before this run's changes: `{file}` ({} bytes, sha256 {}). It lives in the job's workspace only until the job ends: upload it as an artifact (the `backup-file` output; the example workflows do), download it, and restore with {}.",
            d.size_bytes,
            d.sha256,
            restore(&file)
        )
    } else {
        format!(
            "Dump taken before this run's changes: `{}` ({} bytes, sha256 {}) — restore with {}.",
            d.path,
            d.size_bytes,
            d.sha256,
            restore(&d.path)
        )
    }
}

/// The closing lines of a run for a terminal.
pub fn closing(s: &RunSummary) -> String {
    let mut out = format!(
        "pipeline {}{}: {}\n",
        s.status.as_str(),
        s.environment
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default(),
        s.message
    );
    if let Some(r) = &s.rollback {
        out.push_str("rollback instructions:\n");
        for l in rollback_lines(r) {
            out.push_str(&format!("  - {l}\n"));
        }
        for g in &r.generated {
            out.push_str(&format!(
                "  generated rollback of {} (GENERATED, review before running):\n",
                g.version
            ));
            for l in g.sql.lines() {
                out.push_str(&format!("    {l}\n"));
            }
        }
    }
    out
}
