//! The one way the tests run the real binary.
//!
//! A [`Pgrollout`] starts from a controlled environment — PATH, an empty HOME, TMPDIR on
//! the tmpfs when there is one, nothing of the developer's or CI's own `DATABASE_URL`,
//! `GITHUB_*` or `PG*` — and takes args, env, stdin, a working directory and, for Actions
//! behaviour, the files a runner provides (`GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`, `RUNNER_TEMP`). It runs to completion
//! ([`Pgrollout::run`]) or in the background ([`Pgrollout::spawn`]), and the [`Run`] it
//! gives back prints the command, exit status, both streams and the runner files, so a
//! failed assertion shows the whole story.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_pgrollout");

/// How long a background run may take to print what a test waits for.
pub const OUTPUT_TIMEOUT: Duration = Duration::from_secs(60);

/// A command line for the real binary, built up and then run once.
pub struct Pgrollout {
    cmd: Command,
    shown: Vec<String>,
    stdin: Vec<u8>,
    runner_files: Option<RunnerFiles>,
    home: tempfile::TempDir,
}

/// The files of a simulated GitHub Actions runner, read back after the run.
struct RunnerFiles {
    output: PathBuf,
    summary: PathBuf,
}

impl Default for Pgrollout {
    fn default() -> Self {
        Self::new()
    }
}

impl Pgrollout {
    /// The binary with only PATH and an empty HOME set, stdin empty, in the current dir.
    pub fn new() -> Pgrollout {
        let home = tempfile::tempdir().expect("creating a temp HOME");
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path());
        // Temp files, and so `--ephemeral` clusters, on the tmpfs the harness's own
        // clusters use (see `common::cluster_options`).
        if let Some(tmp) = super::cluster_options().parent_dir {
            cmd.env("TMPDIR", tmp);
        }
        Pgrollout {
            cmd,
            shown: Vec::new(),
            stdin: Vec::new(),
            runner_files: None,
            home,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Pgrollout {
        self.shown.push(redact(&arg.as_ref().to_string_lossy()));
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(self, args: I) -> Pgrollout
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        args.into_iter().fold(self, Pgrollout::arg)
    }

    /// `--migrations DIR`.
    pub fn migrations(self, dir: impl AsRef<Path>) -> Pgrollout {
        self.arg("--migrations").arg(dir.as_ref())
    }

    /// `--database-url URL`.
    pub fn database_url(self, url: &str) -> Pgrollout {
        self.arg("--database-url").arg(url)
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Pgrollout {
        self.cmd.env(key, value);
        self
    }

    pub fn envs(self, vars: &[(&str, &str)]) -> Pgrollout {
        vars.iter().fold(self, |p, (k, v)| p.env(k, v))
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Pgrollout {
        self.cmd.current_dir(dir);
        self
    }

    /// What the program reads on stdin (nothing by default).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Pgrollout {
        self.stdin = bytes.into();
        self
    }

    /// As on a GitHub Actions runner: `GITHUB_ACTIONS=true`, and `GITHUB_OUTPUT`,
    /// `GITHUB_STEP_SUMMARY` (both emptied now) and `RUNNER_TEMP` in `dir`; the [`Run`]
    /// carries the outputs and the summary written.
    pub fn runner_files(mut self, dir: &Path) -> Pgrollout {
        let files = RunnerFiles {
            output: dir.join("github_output"),
            summary: dir.join("step_summary"),
        };
        let temp = dir.join("runner_temp");
        std::fs::write(&files.output, "").expect("creating GITHUB_OUTPUT");
        std::fs::write(&files.summary, "").expect("creating GITHUB_STEP_SUMMARY");
        std::fs::create_dir_all(&temp).expect("creating RUNNER_TEMP");
        self.cmd
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", &files.output)
            .env("GITHUB_STEP_SUMMARY", &files.summary)
            .env("RUNNER_TEMP", temp);
        self.runner_files = Some(files);
        self
    }

    /// Runs to completion.
    pub fn run(self) -> Run {
        self.spawn().wait()
    }

    /// Starts in the background; see [`Running`].
    pub fn spawn(mut self) -> Running {
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {BIN}: {e}"));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let bytes = std::mem::take(&mut self.stdin);
        // A thread, so a program that does not read its input cannot block the test.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
        let (tx, lines) = mpsc::channel();
        for (stream, pipe) in [
            (
                Stream::Stdout,
                Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            ),
            (Stream::Stderr, Box::new(child.stderr.take().unwrap())),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut pipe = BufReader::new(pipe);
                let mut line = Vec::new();
                while pipe.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    if tx.send((stream, text)).is_err() {
                        return;
                    }
                    line.clear();
                }
            });
        }
        Running {
            child: Some(child),
            lines,
            stdout: String::new(),
            stderr: String::new(),
            command: self.shown.join(" "),
            runner_files: self.runner_files,
            _home: self.home,
        }
    }
}

/// One of the program's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A program started by [`Pgrollout::spawn`]; killed if dropped before [`Running::wait`].
pub struct Running {
    child: Option<Child>,
    lines: Receiver<(Stream, String)>,
    stdout: String,
    stderr: String,
    command: String,
    runner_files: Option<RunnerFiles>,
    _home: tempfile::TempDir,
}

impl Running {
    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Reads the program's output until a line of `stream` satisfies `found`, and
    /// returns that line. Panics, showing the output so far, if the program ends or
    /// [`OUTPUT_TIMEOUT`] passes first.
    #[track_caller]
    pub fn wait_for_line(
        &mut self,
        stream: Stream,
        what: &str,
        mut found: impl FnMut(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + OUTPUT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((from, line)) => {
                    self.push(from, &line);
                    if from == stream && found(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "`pgrollout {}` printed no line with {what} within {OUTPUT_TIMEOUT:?}:\n\
                     --- stdout\n{}\n--- stderr\n{}",
                    self.command, self.stdout, self.stderr
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let run = self.finish();
                    panic!("ended without printing a line with {what}: {run}")
                }
            }
        }
    }

    /// Sends `signal` to the program.
    #[track_caller]
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on the pid of a child this process spawned and has not reaped.
        let rc = unsafe { libc::kill(self.id() as libc::pid_t, signal) };
        assert_eq!(
            rc, 0,
            "sending signal {signal} to `pgrollout {}`",
            self.command
        );
    }

    /// Waits for the program to end and collects everything it printed and wrote.
    pub fn wait(mut self) -> Run {
        self.finish()
    }

    fn push(&mut self, from: Stream, line: &str) {
        match from {
            Stream::Stdout => self.stdout.push_str(line),
            Stream::Stderr => self.stderr.push_str(line),
        }
    }

    fn finish(&mut self) -> Run {
        let status = self
            .child
            .take()
            .expect("waited once")
            .wait()
            .expect("waiting for pgrollout");
        // The reader threads end at EOF, which comes once every holder of the pipes exits.
        while let Ok((from, line)) = self.lines.recv() {
            self.push(from, &line);
        }
        let (outputs, summary) = match &self.runner_files {
            Some(files) => (
                parse_outputs(&std::fs::read_to_string(&files.output).unwrap_or_default()),
                std::fs::read_to_string(&files.summary).unwrap_or_default(),
            ),
            None => (BTreeMap::new(), String::new()),
        };
        Run {
            code: status.code().unwrap_or(-1),
            status,
            stdout: std::mem::take(&mut self.stdout),
            stderr: std::mem::take(&mut self.stderr),
            outputs,
            summary,
            command: self.command.clone(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a finished run printed and wrote. `Display` (and `Debug`) show all of it.
pub struct Run {
    /// The exit code; -1 when a signal ended the program.
    pub code: i32,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// `$GITHUB_OUTPUT` as the runner parses it (with [`Pgrollout::runner_files`]).
    pub outputs: BTreeMap<String, String>,
    /// `$GITHUB_STEP_SUMMARY` (with [`Pgrollout::runner_files`]).
    pub summary: String,
    command: String,
}

impl Run {
    /// Both streams, stdout first.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Everything, for an assertion message.
    pub fn debug(&self) -> String {
        self.to_string()
    }

    /// Asserts the exit code, showing the whole run when it differs.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "unexpected exit code:\n{self}");
        self
    }

    /// Asserts success (exit 0).
    #[track_caller]
    pub fn ok(self) -> Run {
        self.expect_code(0)
    }

    /// Lines the runner treats as workflow commands (first non-blank chars `::`, or a
    /// legacy `##[` anywhere), from both streams, split like the runner splits.
    pub fn commands(&self) -> Vec<String> {
        format!("{}\n{}", self.stdout, self.stderr)
            .split(['\r', '\n'])
            .filter(|l| l.trim_start().starts_with("::") || l.contains("##["))
            .map(str::to_string)
            .collect()
    }

    pub fn annotations(&self, kind: &str) -> Vec<String> {
        self.commands()
            .into_iter()
            .filter(|c| {
                c.starts_with(&format!("::{kind} ")) || c.starts_with(&format!("::{kind}::"))
            })
            .collect()
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "`pgrollout {}` ended with {}", self.command, self.status)?;
        write!(
            f,
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        )?;
        if !self.summary.is_empty() {
            write!(f, "\n--- step summary\n{}", self.summary)?;
        }
        if !self.outputs.is_empty() {
            write!(f, "\n--- outputs\n{:#?}", self.outputs)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `$GITHUB_OUTPUT` parsed like the runner: `name<<DELIM`, lines, a line equal to DELIM.
pub fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    assert!(!text.contains('\r'), "GITHUB_OUTPUT must be LF only");
    let mut out = BTreeMap::new();
    let mut lines = text.split('\n');
    while let Some(l) = lines.next() {
        if l.is_empty() {
            continue;
        }
        let (name, d) = l.split_once("<<").expect("heredoc form");
        assert!(d.starts_with("ghadelimiter_"), "{d}");
        let mut v = Vec::new();
        let mut closed = false;
        for x in lines.by_ref() {
            if x == d {
                closed = true;
                break;
            }
            v.push(x);
        }
        assert!(closed, "delimiter {d} not closed");
        out.insert(name.to_string(), v.join("\n"));
    }
    out
}

/// An argument as shown in messages: a URL's password replaced by `***`.
fn redact(arg: &str) -> String {
    match url::Url::parse(arg) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => arg.to_string(),
    }
}
