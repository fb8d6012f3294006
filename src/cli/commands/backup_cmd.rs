//! `backup`: record a backup marker (and with `--dump`, take a pg_dump first), the same
//! way the pipeline's `backup-marker` step does.

use std::path::{Path, PathBuf};

use super::{CliError, Context, Outcome};
use crate::report::summary::BackupInfo;

pub(super) fn backup(
    ctx: &mut Context,
    dump: bool,
    label: Option<&str>,
    output_dir: Option<&Path>,
) -> Result<Outcome, CliError> {
    let target = ctx.need_target("backup")?;
    let opts = ctx.run_options(None, false)?;
    let run = ctx.ci.run_context(None);
    let dump = if dump {
        // On a runner, the workspace (where a later step can upload it); elsewhere the
        // operator expects the file where they are.
        let (dir, in_job_workspace) = match output_dir {
            Some(d) => (d.to_path_buf(), false),
            None => ctx.ci.dump_dir(|| PathBuf::from(".")),
        };
        if in_job_workspace {
            crate::engine::backup::create_dir(&dir).map_err(CliError::Failed)?;
        }
        if !dir.is_dir() {
            return Err(CliError::Usage(format!(
                "--output-dir {}: not a directory",
                dir.display()
            )));
        }
        let name = target.dbname().unwrap_or("database").to_string();
        Some(
            crate::engine::backup::dump(&target, &dir, &name, in_job_workspace, ctx.reporter)
                .map_err(CliError::Failed)?,
        )
    } else {
        None
    };
    let label = label.unwrap_or("pgrollout backup");
    let m = crate::engine::backup::record(&target, &opts, &run, label, dump.as_ref(), ctx.reporter)
        .map_err(CliError::Failed)?;
    Ok(Outcome::ok(if ctx.json() {
        backup_json(&m, label)
    } else {
        backup_text(&m)
    }))
}

fn backup_text(m: &BackupInfo) -> String {
    let mut out = format!(
        "backup marker #{} at {}\n  WAL LSN  {}\n  txid     {}\n",
        m.id,
        m.created_at,
        m.wal_lsn.as_deref().unwrap_or("— (server in recovery)"),
        m.txid
    );
    if let Some(d) = &m.dump {
        out.push_str(&format!(
            "  dump     {}\n  size     {} bytes\n  sha256   {}\n",
            d.path, d.size_bytes, d.sha256
        ));
    }
    out
}

fn backup_json(m: &BackupInfo, label: &str) -> String {
    let mut v = serde_json::to_value(m).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("label".into(), label.into());
    }
    format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
}
