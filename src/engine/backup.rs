//! Backup markers and dumps: the one implementation behind the pipeline's
//! `backup-marker` step and the `backup` command.
//!
//! A marker is a row in `backup_markers` holding the WAL position and transaction id at
//! the moment it was written (for point-in-time recovery to just before a migration), who
//! wrote it and from where, and the dump taken just before it, if any.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::db::health;
use crate::db::tracking::RunContext;
use crate::db::Target;
use crate::engine::{self, RunOptions};
use crate::report::summary::{BackupInfo, DumpInfo};
use crate::report::{Event, Reporter};

/// Create the directory a dump goes to (and its parents), mode 0700, owned like its
/// parent (see [`owned_like`]).
pub fn create_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("creating the dump directory {}: {e}", dir.display()))?;
    if let Some(parent) = dir.parent() {
        owned_like(dir, parent)?;
    }
    Ok(())
}

/// A container action runs as root, the runner's later steps (upload-artifact) as the
/// workspace's owner: a 0600 file of root's would be unreadable to them. As root, give
/// `path` to the owner of `like`.
fn owned_like(path: &Path, like: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let m = std::fs::metadata(like).map_err(|e| format!("reading {}: {e}", like.display()))?;
    if m.uid() == 0 {
        return Ok(());
    }
    std::os::unix::fs::chown(path, Some(m.uid()), Some(m.gid()))
        .map_err(|e| format!("giving {} to the workspace's owner: {e}", path.display()))
}

/// Create `<stem>.<ext>` in `dir`, mode 0600, never over an existing file: a second
/// dump within the same second (the names have second resolution) gets `<stem>-2.<ext>`,
/// and so on.
fn new_private_file(dir: &Path, stem: &str, ext: &str) -> Result<std::path::PathBuf, String> {
    use std::os::unix::fs::OpenOptionsExt;
    for n in 1..=100 {
        let path = if n == 1 {
            dir.join(format!("{stem}.{ext}"))
        } else {
            dir.join(format!("{stem}-{n}.{ext}"))
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("creating the dump file {}: {e}", path.display())),
        }
    }
    Err(format!(
        "creating the dump file {}: {stem}.{ext} and 99 numbered variants already exist; move old dumps away",
        dir.display()
    ))
}

/// `pg_dump --format=custom` of the database at `url` into `dir`, named after `name`
/// and the UTC time; returns its path, size and SHA-256. The file is created 0600
/// before pg_dump writes into it (a dump holds every row of the database). The password
/// goes through PGPASSWORD, never the command line (visible in `ps`).
pub fn dump(
    target: &Target,
    dir: &Path,
    name: &str,
    in_job_workspace: bool,
    reporter: &mut dyn Reporter,
) -> Result<DumpInfo, String> {
    let path = new_private_file(
        dir,
        &format!(
            "pgrollout-{name}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ),
        "dump",
    )?;
    owned_like(&path, dir)?;
    reporter.event(&Event::Info {
        message: &format!("pg_dump → {}", path.display()),
    });
    if let Err(e) = pg_dump(
        target,
        &[
            "--format=custom".into(),
            format!("--file={}", path.display()),
        ],
        Stdio::null(),
    ) {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    use sha2::Digest;
    Ok(DumpInfo {
        path: path.display().to_string(),
        size_bytes: bytes.len() as u64,
        sha256: hex::encode(sha2::Sha256::digest(&bytes)),
        in_job_workspace,
    })
}

/// Run `pg_dump` with `args` against `target` and return what it wrote to stdout
/// (`stdout`: `Stdio::piped()` to keep it, `Stdio::null()` when it writes a file). The
/// password goes through PGPASSWORD, never the command line (visible in `ps`); its error
/// output is shown with the secrets redacted.
pub(crate) fn pg_dump(target: &Target, args: &[String], stdout: Stdio) -> Result<Vec<u8>, String> {
    let pg_dump = which::which("pg_dump").map_err(|_| {
        "this needs pg_dump on PATH (Debian/Ubuntu: apt-get install postgresql-client; the pgrollout image has it)".to_string()
    })?;
    let (conninfo, password) = target.child_conninfo();
    let mut cmd = Command::new(pg_dump);
    cmd.args(args)
        .arg("--no-password")
        .arg(format!("--dbname={conninfo}"))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped());
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let out = cmd.output().map_err(|e| format!("running pg_dump: {e}"))?;
    if !out.status.success() {
        let err =
            crate::db::conn::redact(String::from_utf8_lossy(&out.stderr).trim(), &target.secrets);
        return Err(format!("pg_dump failed ({}): {err}", out.status));
    }
    Ok(out.stdout)
}

/// Write a marker row under the migration lock (creating the tracking schema if needed),
/// so it is ordered with respect to migrations applied by other runs.
pub fn record(
    target: &Target,
    opts: &RunOptions,
    ctx: &RunContext,
    label: &str,
    dump: Option<&DumpInfo>,
    reporter: &mut dyn Reporter,
) -> Result<BackupInfo, String> {
    let mut s = engine::connect(target, &opts.schema, opts.connect_retry, reporter)
        .map_err(|e| e.to_string())?;
    record_in(&mut s, opts, ctx, label, dump, reporter)
}

/// [`record`] on a connected session (the pipeline's): the lock is taken and released
/// within.
pub fn record_in(
    s: &mut engine::Session,
    opts: &RunOptions,
    ctx: &RunContext,
    label: &str,
    dump: Option<&DumpInfo>,
    reporter: &mut dyn Reporter,
) -> Result<BackupInfo, String> {
    let (_guard, _state) = s.lock(opts, reporter).map_err(|e| e.to_string())?;
    health::insert_backup_marker(&mut s.db, &opts.schema, ctx, label, dump)
        .map_err(|e| e.to_string())
}

/// One line describing a marker, for step details and the command's text output.
pub fn describe(m: &BackupInfo) -> String {
    format!(
        "marker #{} at WAL LSN {} (txid {}){}",
        m.id,
        m.wal_lsn.as_deref().unwrap_or("—"),
        m.txid,
        m.dump
            .as_ref()
            .map(|d| format!(", dump {} ({} bytes)", d.path, d.size_bytes))
            .unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_dsn_form_puts_the_password_in_pg_dumps_arguments() {
        for url in [
            "postgres://app:s%40cret@db:5432/app?sslmode=require",
            "postgres://app@db/app?password=s%40cret",
            "host=db user=app password='s@cret' dbname=app",
        ] {
            let t = Target::parse(url).unwrap();
            let (conninfo, password) = t.child_conninfo();
            assert_eq!(password.as_deref(), Some("s@cret"), "{url}");
            assert!(!conninfo.contains("cret"), "{url}: {conninfo}");
            assert!(conninfo.contains("dbname=app"), "{url}: {conninfo}");
        }
    }
}
