//! Throwaway local PostgreSQL clusters.
//!
//! `pgrollout --ephemeral` and the integration tests both need a private server that
//! nobody else uses and that disappears afterwards. A [`Cluster`] is an `initdb`-ed data
//! directory in a temp dir, served on a free TCP port of 127.0.0.1 (TCP rather than only
//! a socket so TLS and password authentication behave as they do against a real server)
//! and on a private unix socket directory.
//!
//! Cleanup has three layers, because a leaked postmaster keeps running and holding memory
//! long after the process that started it is gone:
//! 1. `Drop` (and [`Cluster::stop`]) stops the server and deletes the temp dir;
//! 2. [`teardown_all`] does the same for every live cluster when the binary's signal
//!    handler must exit at once (a second Ctrl-C/SIGTERM), where `Drop` never runs;
//! 3. a detached watchdog process per cluster does it when the owning process vanishes
//!    without either (SIGKILL, `exit()` with the cluster in a `static`).
//!
//! This is the only library module that spawns processes.

use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The address every cluster listens on.
const HOST: &str = "127.0.0.1";

/// Env var naming a directory holding `initdb` and `pg_ctl`; wins over `PATH`.
pub const PG_BIN_ENV: &str = "PGROLLOUT_PG_BIN";

/// How many fresh ports to try when the chosen one is taken between probing and binding.
const PORT_ATTEMPTS: usize = 5;

/// How a cluster is set up. `Default` gives a trusted, non-durable local server.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Extra postgresql.conf settings, e.g. ("ssl","on").
    pub settings: Vec<(String, String)>,
    /// Lines put at the top of pg_hba.conf (before the defaults).
    pub hba_lines: Vec<String>,
    /// Durability off (fsync, full_page_writes) — fine for throwaway clusters; default true.
    /// Commits still survive [`Cluster::kill`], which only simulates a server crash.
    pub fast: bool,
    /// Files to copy into the data dir (e.g. server.crt/server.key for TLS tests), as (source path, file name); copied with owner postgres and mode 0600.
    pub files: Vec<(PathBuf, String)>,
    /// Where the cluster's temp dir is made; `None` is the system temp dir. The test
    /// harness puts its clusters on a tmpfs, where `CREATE DATABASE` (a few hundred files)
    /// is several times faster than on disk.
    pub parent_dir: Option<PathBuf>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            settings: Vec::new(),
            hba_lines: Vec::new(),
            fast: true,
            files: Vec::new(),
            parent_dir: None,
        }
    }
}

/// What to install for `--ephemeral`, for this system: the package of the OS's package
/// manager (from `/etc/os-release` on Linux, Homebrew on macOS), where its programs land
/// when that is off `PATH`, and the way that needs no server programs at all.
pub fn install_advice(os_release: Option<&str>, macos: bool) -> String {
    let ids: Vec<&str> = os_release
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.strip_prefix("ID=").or_else(|| l.strip_prefix("ID_LIKE=")))
        .flat_map(|v| v.trim_matches('"').split_whitespace())
        .collect();
    let is = |id: &str| ids.contains(&id);
    let install = if macos {
        format!(
            "Install them with Homebrew: `brew install postgresql@17` (keg-only: set \
             {PG_BIN_ENV}=\"$(brew --prefix postgresql@17)/bin\")."
        )
    } else if is("debian") || is("ubuntu") {
        "Install them on Debian/Ubuntu: `sudo apt-get install postgresql` (the programs land \
         in /usr/lib/postgresql/<major>/bin, which pgrollout searches)."
            .to_string()
    } else if is("fedora") || is("rhel") || is("centos") {
        "Install them on Fedora/RHEL: `sudo dnf install postgresql-server`.".to_string()
    } else if is("arch") {
        "Install them on Arch Linux: `sudo pacman -S postgresql`.".to_string()
    } else if is("alpine") {
        "Install them on Alpine: `apk add postgresql`.".to_string()
    } else {
        "Install your system's PostgreSQL server package (Debian/Ubuntu: \
         `sudo apt-get install postgresql`; Homebrew: `brew install postgresql@17`)."
            .to_string()
    };
    format!(
        "{install} Or set {PG_BIN_ENV} to the directory holding initdb and pg_ctl. Or, \
         without --ephemeral, start a server with \
         `docker run -d -p 5432:5432 -e POSTGRES_PASSWORD=postgres postgres:18` and pass \
         --database-url postgres://postgres:postgres@localhost:5432/postgres"
    )
}

/// Why a throwaway cluster could not be set up or controlled.
#[derive(Debug, thiserror::Error)]
pub enum EphemeralError {
    /// No usable `initdb`/`pg_ctl` pair.
    #[error(
        "finding the PostgreSQL server programs (initdb, pg_ctl): {reason}. \
         {}",
        install_advice(std::fs::read_to_string("/etc/os-release").ok().as_deref(), cfg!(target_os = "macos"))
    )]
    NotInstalled { reason: String },
    /// Running as root, but there is no `postgres` OS user to run the server as.
    #[error(
        "looking up the `postgres` OS user, which must own the cluster because initdb \
         refuses to run as root: {reason}"
    )]
    PostgresUser { reason: String },
    /// A file system or process-spawning step failed.
    #[error("{doing}: {source}")]
    Io {
        doing: String,
        #[source]
        source: io::Error,
    },
    /// A PostgreSQL program ran but reported failure.
    #[error("{doing}: {program} exited with {status}: {output}")]
    Command {
        doing: String,
        program: String,
        status: ExitStatus,
        output: String,
    },
    /// `pg_ctl start` failed; the server log says why.
    #[error(
        "starting PostgreSQL on {HOST}:{port} (data dir {}): pg_ctl exited with {status}: \
         {output}\nlast lines of the server log:\n{log_tail}",
        data_dir.display()
    )]
    Start {
        port: u16,
        data_dir: PathBuf,
        status: ExitStatus,
        output: String,
        log_tail: String,
    },
    /// The Ctrl-C/SIGTERM handler could not be installed.
    #[error("installing the Ctrl-C/SIGTERM cleanup handler: {reason}")]
    Signal { reason: String },
}

fn io_err(doing: impl Into<String>) -> impl FnOnce(io::Error) -> EphemeralError {
    let doing = doing.into();
    move |source| EphemeralError::Io { doing, source }
}

/// Which OS user the PostgreSQL programs run as.
#[derive(Debug, Clone)]
enum RunAs {
    CurrentUser,
    /// We are root; initdb and postgres refuse that, so they run as `postgres` via runuser.
    Postgres {
        uid: u32,
        gid: u32,
        runuser: PathBuf,
    },
}

impl RunAs {
    fn detect() -> Result<RunAs, EphemeralError> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(RunAs::CurrentUser);
        }
        let (uid, gid) = lookup_user("postgres")?;
        // runuser lives in /usr/sbin, which non-login root shells may not have on PATH.
        let runuser = which::which("runuser")
            .ok()
            .or_else(|| {
                ["/usr/sbin/runuser", "/sbin/runuser"]
                    .into_iter()
                    .map(PathBuf::from)
                    .find(|path| path.is_file())
            })
            .ok_or_else(|| EphemeralError::PostgresUser {
                reason: "runuser (util-linux), needed to switch to it, was not found".into(),
            })?;
        Ok(RunAs::Postgres { uid, gid, runuser })
    }

    /// A command running `program` as the right user.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = match self {
            RunAs::CurrentUser => Command::new(program),
            RunAs::Postgres { runuser, .. } => {
                let mut cmd = Command::new(runuser);
                cmd.args(["-u", "postgres", "--"]).arg(program);
                cmd
            }
        };
        // The caller's PG* variables are meant for its clients, not for this server.
        for var in ["PGDATA", "PGPORT", "PGHOST"] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Hands a file or directory we created to the user the server runs as.
    fn give(&self, path: &Path) -> Result<(), EphemeralError> {
        match *self {
            RunAs::CurrentUser => Ok(()),
            RunAs::Postgres { uid, gid, .. } => {
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io_err(format!(
                    "giving {} to the postgres user",
                    path.display()
                )))
            }
        }
    }
}

/// uid and gid of a user, through NSS like `id` does (not just /etc/passwd).
fn lookup_user(name: &str) -> Result<(u32, u32), EphemeralError> {
    let c_name = CString::new(name).map_err(|e| EphemeralError::PostgresUser {
        reason: e.to_string(),
    })?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain old data; getpwnam_r fills it in.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; the reentrant variant is used because
    // tests start clusters from several threads at once. Only the integer fields are read
    // afterwards, so nothing points into `buf` once it is dropped.
    let rc = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 {
        return Err(EphemeralError::PostgresUser {
            reason: io::Error::from_raw_os_error(rc).to_string(),
        });
    }
    if result.is_null() {
        return Err(EphemeralError::PostgresUser {
            reason: "no such user; installing the postgresql package creates it".into(),
        });
    }
    Ok((pwd.pw_uid, pwd.pw_gid))
}

/// The server programs used for one cluster.
#[derive(Debug, Clone)]
struct Programs {
    initdb: PathBuf,
    pg_ctl: PathBuf,
}

impl Programs {
    /// Finds `initdb` and `pg_ctl`: `PGROLLOUT_PG_BIN`, then `PATH`, then Debian's
    /// versioned `/usr/lib/postgresql/*/bin`, which is not on `PATH` by default.
    fn find() -> Result<Programs, EphemeralError> {
        if let Some(dir) = std::env::var_os(PG_BIN_ENV) {
            let dir = PathBuf::from(dir);
            return Programs::in_dir(&dir).ok_or_else(|| EphemeralError::NotInstalled {
                reason: format!(
                    "{PG_BIN_ENV}={} does not contain both initdb and pg_ctl",
                    dir.display()
                ),
            });
        }
        if let (Ok(initdb), Ok(pg_ctl)) = (which::which("initdb"), which::which("pg_ctl")) {
            return Ok(Programs { initdb, pg_ctl });
        }
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                Some((version, entry.path().join("bin")))
            })
            .collect();
        versions.sort();
        versions
            .iter()
            .rev()
            .find_map(|(_, dir)| Programs::in_dir(dir))
            .ok_or_else(|| EphemeralError::NotInstalled {
                reason: "none on PATH or in /usr/lib/postgresql/*/bin".into(),
            })
    }

    fn in_dir(dir: &Path) -> Option<Programs> {
        // Absolute, because commands run with the temp dir as working directory.
        let dir = dir.canonicalize().ok()?;
        let initdb = dir.join("initdb");
        let pg_ctl = dir.join("pg_ctl");
        (initdb.is_file() && pg_ctl.is_file()).then_some(Programs { initdb, pg_ctl })
    }
}

/// What it takes to stop a cluster and delete its files, without the `Cluster` value.
#[derive(Debug, Clone)]
struct Live {
    id: u64,
    root: PathBuf,
    data_dir: PathBuf,
    pg_ctl: PathBuf,
    run_as: RunAs,
}

impl Live {
    /// Stops the server (if it runs) and deletes the temp dir. Errors are ignored: this
    /// runs on cleanup paths, where the server may already be gone.
    fn destroy(&self, mode: &str) {
        if self.data_dir.join("postmaster.pid").exists() {
            let _ = quiet(self.run_as.command(&self.pg_ctl))
                .current_dir(&self.root)
                .arg("-D")
                .arg(&self.data_dir)
                .args(["-m", mode, "-w", "stop"])
                .status();
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Clusters that exist right now, for the signal handler.
///
/// This is the one piece of global mutable state in the crate, and it has to be: a
/// Ctrl-C/SIGTERM handler runs on its own thread with no access to the `Cluster` values
/// on main's stack (and `Drop` never runs when the process exits from the handler), so
/// the handler can only find the servers to stop through a process-wide list.
static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn live_clusters() -> MutexGuard<'static, Vec<Live>> {
    // A panic while holding the lock leaves the list itself consistent.
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Stops (immediately) and deletes every live cluster of this process. For the
/// binary's signal handler on a second Ctrl-C/SIGTERM, which then exits without running
/// `Drop`; a first signal lets the command stop at a safe point and `Drop` clean up.
pub fn teardown_all() {
    let clusters = std::mem::take(&mut *live_clusters());
    for cluster in &clusters {
        cluster.destroy("immediate");
    }
}

/// Owns the files and the watchdog of one cluster; cleans up when dropped, including
/// when `Cluster::start` fails half-way.
#[derive(Debug)]
struct Guard {
    live: Live,
    /// The watchdog's stdin is the write end of a pipe; closing it is the "owner gone"
    /// signal.
    watchdog: Option<Child>,
}

/// Waits for the owner to disappear, then stops the server and deletes the temp dir —
/// unless `Drop` already did (the temp dir is gone).
///
/// Run with `sh -c SCRIPT watchdog ROOT DATA_DIR PG_CTL RUNUSER`. It blocks on a pipe
/// whose only write end lives in the owning process (Rust opens pipes close-on-exec, so no
/// other child inherits it): the read returns EOF exactly when the owner exits or is
/// killed, with no polling and no risk of a recycled PID. The `runuser` wrapper is chosen
/// here rather than running the whole script as postgres because the script must be able
/// to delete a temp dir created by root.
const WATCHDOG_SCRIPT: &str = r#"
cat >/dev/null 2>&1
[ -d "$1" ] || exit 0
if [ -f "$2/postmaster.pid" ]; then
  if [ -n "$4" ]; then
    "$4" -u postgres -- "$3" -D "$2" -m immediate -w stop
  else
    "$3" -D "$2" -m immediate -w stop
  fi
fi >/dev/null 2>&1
rm -rf "$1"
"#;

impl Guard {
    fn new(live: Live) -> Result<Guard, EphemeralError> {
        live_clusters().push(live.clone());
        let mut guard = Guard {
            live,
            watchdog: None,
        };
        let watchdog = quiet(Command::new("sh"))
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("pgrollout-watchdog")
            .arg(&guard.live.root)
            .arg(&guard.live.data_dir)
            .arg(&guard.live.pg_ctl)
            // An empty RUNUSER means "run pg_ctl directly".
            .arg(match &guard.live.run_as {
                RunAs::Postgres { runuser, .. } => runuser.as_os_str(),
                RunAs::CurrentUser => std::ffi::OsStr::new(""),
            })
            .stdin(Stdio::piped())
            .current_dir("/")
            // Its own process group, so a terminal Ctrl-C (sent to the foreground group)
            // does not kill the watchdog along with an owner that has no handler.
            .process_group(0)
            .spawn()
            .map_err(io_err("starting the cleanup watchdog (sh)"))?;
        guard.watchdog = Some(watchdog);
        Ok(guard)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        live_clusters().retain(|l| l.id != self.live.id);
        self.live.destroy("fast");
        if let Some(mut watchdog) = self.watchdog.take() {
            // The temp dir is gone by now, so the woken watchdog just exits; waiting for
            // it keeps it from lingering as a zombie in long-lived processes.
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
    }
}

/// A running throwaway PostgreSQL server, superuser `postgres` with trust auth from
/// 127.0.0.1 and the socket dir. Stopped and deleted on drop.
#[derive(Debug)]
pub struct Cluster {
    port: u16,
    socket_dir: PathBuf,
    log_file: PathBuf,
    guard: Guard,
}

impl Cluster {
    /// Creates, configures and starts a cluster; returns once it accepts connections.
    pub fn start(opts: &ClusterOptions) -> Result<Cluster, EphemeralError> {
        let programs = Programs::find()?;
        let run_as = RunAs::detect()?;
        let mut builder = tempfile::Builder::new();
        builder.prefix("pgrollout-pg-");
        let root = match &opts.parent_dir {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
        .map_err(io_err("creating a temp dir for the cluster"))?
        // Deleted by `Guard` (or the signal handler, or the watchdog) instead, all of
        // which can do it without the `TempDir` value.
        .keep();
        let guard = Guard::new(Live {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            data_dir: root.join("data"),
            root: root.clone(),
            pg_ctl: programs.pg_ctl.clone(),
            run_as,
        })?;
        let cluster = Cluster {
            port: 0,
            socket_dir: root.join("sock"),
            log_file: root.join("server.log"),
            guard,
        };
        cluster.init(&programs, opts)?;
        cluster.start_on_free_port()
    }

    fn init(&self, programs: &Programs, opts: &ClusterOptions) -> Result<(), EphemeralError> {
        let run_as = &self.guard.live.run_as;
        let data_dir = self.data_dir();
        run_as.give(&self.guard.live.root)?;
        fs::create_dir(&self.socket_dir).map_err(io_err(format!(
            "creating the socket dir {}",
            self.socket_dir.display()
        )))?;
        run_as.give(&self.socket_dir)?;

        run(
            run_as
                .command(&programs.initdb)
                .current_dir(&self.guard.live.root)
                .arg("-D")
                .arg(data_dir)
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
                .arg("--locale=C"),
            &format!("creating a cluster in {}", data_dir.display()),
        )?;

        let mut conf = String::from("\n# Added by pgrollout for a throwaway cluster.\n");
        let mut set = |key: &str, value: &str| {
            conf.push_str(&format!("{key} = {}\n", conf_quote(value)));
        };
        set("listen_addresses", HOST);
        set(
            "unix_socket_directories",
            &self.socket_dir.to_string_lossy(),
        );
        // Tests run several concurrent clients against many databases at once.
        set("max_connections", "200");
        if opts.fast {
            // Nothing here has to survive an OS crash. synchronous_commit stays on on
            // purpose: with it off a `kill()` loses the last ~600 ms of commits, which
            // would break crash-recovery tests, and with fsync off it costs only a write().
            set("fsync", "off");
            set("full_page_writes", "off");
        }
        for (key, value) in &opts.settings {
            set(key, value);
        }
        let conf_path = data_dir.join("postgresql.conf");
        fs::OpenOptions::new()
            .append(true)
            .open(&conf_path)
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .map_err(io_err(format!("writing {}", conf_path.display())))?;

        if !opts.hba_lines.is_empty() {
            let hba_path = data_dir.join("pg_hba.conf");
            let defaults = fs::read_to_string(&hba_path)
                .map_err(io_err(format!("reading {}", hba_path.display())))?;
            // pg_hba.conf is first-match, so our lines must precede the trust defaults.
            let mut hba = opts.hba_lines.join("\n");
            hba.push('\n');
            hba.push_str(&defaults);
            fs::write(&hba_path, hba).map_err(io_err(format!("writing {}", hba_path.display())))?;
        }

        for (source, name) in &opts.files {
            let target = data_dir.join(name);
            fs::copy(source, &target).map_err(io_err(format!(
                "copying {} to {}",
                source.display(),
                target.display()
            )))?;
            // The server refuses a private key readable by others.
            fs::set_permissions(&target, fs::Permissions::from_mode(0o600))
                .map_err(io_err(format!("restricting {}", target.display())))?;
            run_as.give(&target)?;
        }
        Ok(())
    }

    /// Picks a free port and starts there; another process can grab the port between
    /// probing and the server binding it, so that case is retried with a new port.
    fn start_on_free_port(mut self) -> Result<Cluster, EphemeralError> {
        let mut attempt = 1;
        loop {
            self.port = free_port()?;
            let log_len = fs::metadata(&self.log_file).map(|m| m.len()).unwrap_or(0);
            match self.pg_ctl_start() {
                Ok(()) => return Ok(self),
                Err(_) if attempt < PORT_ATTEMPTS && self.port_was_taken(log_len) => attempt += 1,
                Err(err) => return Err(err),
            }
        }
    }

    fn port_was_taken(&self, log_start: u64) -> bool {
        let log = fs::read(&self.log_file).unwrap_or_default();
        let new = String::from_utf8_lossy(log.get(log_start as usize..).unwrap_or_default());
        new.contains("could not bind") || new.contains("Address already in use")
    }

    fn pg_ctl_start(&self) -> Result<(), EphemeralError> {
        let live = &self.guard.live;
        // pg_ctl sends the server's own output to the log file, so these pipes reach EOF
        // when pg_ctl exits even though the server keeps running.
        let output = live
            .run_as
            .command(&live.pg_ctl)
            .current_dir(&live.root)
            .stdin(Stdio::null())
            .arg("-D")
            .arg(&live.data_dir)
            .arg("-l")
            .arg(&self.log_file)
            // The port is not in postgresql.conf so a retry can pick another one.
            .arg("-o")
            .arg(format!("-p {}", self.port))
            .args(["-w", "-t", "60", "start"])
            .output()
            .map_err(io_err(format!("running {}", live.pg_ctl.display())))?;
        if output.status.success() {
            return Ok(());
        }
        Err(EphemeralError::Start {
            port: self.port,
            data_dir: live.data_dir.clone(),
            status: output.status,
            output: combined_output(&output),
            log_tail: tail(&self.log_file, 30),
        })
    }

    /// The TCP port the server listens on (on [`Cluster::host`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Always `127.0.0.1`.
    pub fn host(&self) -> &str {
        HOST
    }

    /// The private unix socket directory (for libpq `host=`).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The cluster's data directory (PGDATA).
    pub fn data_dir(&self) -> &Path {
        &self.guard.live.data_dir
    }

    /// The server log that `pg_ctl -l` writes.
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// `postgres://postgres@127.0.0.1:PORT/DBNAME?sslmode=disable`.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgres://postgres@{HOST}:{}/{}?sslmode=disable",
            self.port,
            percent_encode(dbname)
        )
    }

    /// Immediate shutdown (like a crash: `pg_ctl stop -m immediate`), data kept.
    pub fn kill(&self) -> Result<(), EphemeralError> {
        let live = &self.guard.live;
        run(
            live.run_as
                .command(&live.pg_ctl)
                .current_dir(&live.root)
                .arg("-D")
                .arg(&live.data_dir)
                .args(["-m", "immediate", "-w", "stop"]),
            &format!("killing the server on port {}", self.port),
        )
    }

    /// Start again on the same port and data dir after kill(); waits until it accepts connections.
    pub fn restart(&self) -> Result<(), EphemeralError> {
        self.pg_ctl_start()
    }

    /// Stop (fast) and delete everything. Also done by Drop.
    pub fn stop(self) {
        drop(self)
    }
}

/// Detached from our stdio: a server or watchdog holding a caller's pipe open would keep
/// readers of that pipe (test harnesses, `$(…)`) waiting for EOF.
fn quiet(mut cmd: Command) -> Command {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Runs a command to completion, turning failure into an error that carries its output.
fn run(cmd: &mut Command, doing: &str) -> Result<(), EphemeralError> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(io_err(format!("{doing}: starting {:?}", cmd.get_program())))?;
    if output.status.success() {
        return Ok(());
    }
    Err(EphemeralError::Command {
        doing: doing.to_string(),
        program: cmd.get_program().to_string_lossy().into_owned(),
        status: output.status,
        output: combined_output(&output),
    })
}

fn combined_output(output: &std::process::Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stderr.trim().is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(stderr.trim());
    }
    text
}

/// The last `lines` lines of a file, or a note saying why there are none.
fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

fn free_port() -> Result<u16, EphemeralError> {
    TcpListener::bind((HOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(io_err("finding a free TCP port on 127.0.0.1"))
}

/// A postgresql.conf string literal.
fn conf_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// Escapes everything but unreserved characters, for a database name in a URL path.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_values_are_quoted() {
        assert_eq!(conf_quote("on"), "'on'");
        assert_eq!(conf_quote("it's"), "'it''s'");
        assert_eq!(conf_quote(r"C:\x"), r"'C:\\x'");
    }

    #[test]
    fn a_dir_without_the_programs_is_not_a_bin_dir() {
        let empty = tempfile::tempdir().unwrap();
        assert!(Programs::in_dir(empty.path()).is_none());
    }

    #[test]
    fn the_not_installed_error_says_how_to_fix_it() {
        let message = EphemeralError::NotInstalled {
            reason: "none on PATH".into(),
        }
        .to_string();
        assert!(message.contains("PGROLLOUT_PG_BIN"), "{message}");
        assert!(message.contains("docker run"), "{message}");
    }

    #[test]
    fn install_advice_names_the_package_of_the_os() {
        let debian = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        let mint = "ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n";
        let fedora = "ID=fedora\n";
        for os in [debian, mint] {
            let advice = install_advice(Some(os), false);
            assert!(
                advice.contains("sudo apt-get install postgresql"),
                "{advice}"
            );
        }
        let advice = install_advice(Some(fedora), false);
        assert!(advice.contains("dnf install postgresql-server"), "{advice}");
        assert!(!advice.contains("apt-get"), "{advice}");
        let advice = install_advice(None, true);
        assert!(advice.contains("brew install postgresql@17"), "{advice}");
        let advice = install_advice(None, false);
        assert!(advice.contains("apt-get install postgresql"), "{advice}");
        assert!(advice.contains("brew install"), "{advice}");
        for os in [Some(debian), Some(fedora), None] {
            let advice = install_advice(os, false);
            assert!(advice.contains("docker run -d -p 5432:5432"), "{advice}");
        }
    }

    #[test]
    fn database_names_are_percent_encoded() {
        assert_eq!(percent_encode("t_1_abc"), "t_1_abc");
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }
}
