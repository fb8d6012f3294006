//! The binary: parse arguments, build the reporter, run the command, map the outcome
//! to an exit code, print the error once.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use pgrollout::cli::ci::Ci;
use pgrollout::cli::commands::{self, CliError, Context};
use pgrollout::cli::{action, exit, settings, Cli};
use pgrollout::render::github::{safe_lines, GitHub};
use pgrollout::render::terminal::Terminal;
use pgrollout::report::summary::RunStatus;
use pgrollout::report::{Event, Level, Location, Reporter};

fn main() -> ExitCode {
    install_signal_handler();
    let mut argv: Vec<String> = std::env::args().collect();
    // Action mode (the container's entrypoint): the action's inputs become the command line.
    let action_mode = argv.get(1).map(String::as_str) == Some("action");
    if action_mode {
        let plan = match action::plan(&argv[0], |k| std::env::var(k).ok()) {
            Ok(p) => p,
            Err(e) => return usage_annotation(&e, &[]),
        };
        if let Some(dir) = &plan.working_directory {
            if let Err(e) = std::env::set_current_dir(dir) {
                eprintln!("error: working-directory {}: {e}", dir.display());
                return ExitCode::from(exit::USAGE);
            }
        }
        if let Some(url) = &plan.database_url {
            // Single-threaded here: nothing else reads the environment yet.
            std::env::set_var("DATABASE_URL", url);
        }
        argv = plan.argv;
    }
    let matches = if action_mode {
        // A usage error would otherwise only be text in the log: annotate it.
        match Cli::command().try_get_matches_from(&argv) {
            Ok(m) => m,
            Err(e) if !e.use_stderr() => e.exit(),
            Err(e) => {
                let _ = e.print();
                let text = e.render().to_string();
                let first = text.lines().next().unwrap_or_default();
                let message = first.strip_prefix("error: ").unwrap_or(first);
                let secrets: Vec<String> = argv
                    .iter()
                    .chain(std::env::var("DATABASE_URL").ok().as_ref())
                    .flat_map(|w| pgrollout::db::conn::secrets_in(w))
                    .collect();
                return usage_annotation(message, &secrets);
            }
        }
    } else {
        Cli::command().get_matches_from(argv)
    };
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    settings::record_defaults(&mut cli.global, &matches);
    let loaded = settings::load_pipeline(&mut cli.global);
    let ci = Ci::from_env();
    let secrets = secrets(&cli, &ci);
    let github = ci.github_actions;
    // Machine-read results keep stdout to themselves.
    let machine_output = !matches!(cli.global.format, pgrollout::cli::Format::Text);
    let mut reporter: Box<dyn Reporter> = if github && machine_output {
        Box::new(GitHub::new(
            Box::new(std::io::stderr()),
            secrets.clone(),
            ci.files.clone(),
        ))
    } else if github {
        Box::new(GitHub::new(
            Box::new(std::io::stdout()),
            secrets.clone(),
            ci.files.clone(),
        ))
    } else {
        Box::new(Terminal::stderr(secrets.clone()))
    };
    // The environment named on the command line or by the action, for the outputs of a
    // run that fails before its pipeline decides.
    let named_env = cli
        .global
        .env
        .clone()
        .or_else(|| ci.input_environment().map(str::to_string))
        .filter(|e| !e.trim().is_empty());
    let result = match loaded {
        Err(e) => {
            // A bad pipeline file is an annotation at its line and column.
            let location = e
                .position()
                .map(|(p, l, c)| Location::new(p, l as u32, c as u32));
            reporter.event(&Event::Diagnostic {
                level: Level::Error,
                location: location.as_ref(),
                message: &e.body(),
            });
            Err((CliError::Config(e), true))
        }
        Ok(()) => Context::new(cli.global, ci, reporter.as_mut())
            .and_then(|mut ctx| commands::run(cli.command, &mut ctx))
            .map_err(|e| (e, false)),
    };
    if github {
        if let Err((e, reported)) = &result {
            if !reported {
                reporter.event(&Event::Diagnostic {
                    level: Level::Error,
                    location: None,
                    message: &e.to_string(),
                });
            }
            // The `status` output of a run that ended in an error, by its exit code.
            let status = match e.code() {
                exit::USAGE => RunStatus::ConfigError,
                exit::REFUSED => RunStatus::Refused,
                _ if pgrollout::cancelled() => RunStatus::Cancelled,
                _ => RunStatus::Failed,
            };
            reporter.event(&Event::CommandFailed {
                status,
                environment: named_env.as_deref(),
                message: &e.to_string(),
            });
        }
    }
    if STOPPING_NOW.load(std::sync::atomic::Ordering::SeqCst) {
        // Let the handler finish removing the server; it ends the process.
        loop {
            std::thread::park();
        }
    }
    reporter.finish();
    let redact = |t: &str| pgrollout::db::conn::redact(t, &secrets);
    // On GitHub every line we print is untrusted text for the runner's command parser.
    let lines = |t: &str| -> String {
        if github {
            safe_lines(t.trim_end_matches('\n'))
                .into_iter()
                .map(|l| l + "\n")
                .collect()
        } else {
            t.to_string()
        }
    };
    let code = match result {
        Ok(outcome) => {
            let mut out = std::io::stdout().lock();
            if !outcome.stdout.is_empty() {
                let _ = out.write_all(lines(&redact(&outcome.stdout)).as_bytes());
            }
            outcome.code
        }
        // Already reported as a diagnostic (at its position): not again.
        Err((e, true)) => e.code(),
        Err((e, false)) => {
            eprint!("{}", lines(&format!("error: {}\n", redact(&e.to_string()))));
            e.code()
        }
    };
    // A command that stopped short because of Ctrl-C/SIGTERM (its statement cancelled,
    // its lock wait or review delay cut) exits as interrupted; one that finished anyway
    // keeps its own code.
    let code = if code != exit::OK && pgrollout::cancelled() {
        exit::INTERRUPTED
    } else {
        code
    };
    drop(reporter);
    exit_now(code)
}

/// End the process once everything is written: what the command held is the operating
/// system's to reclaim. Returning from `main` would first free it piece by piece and have
/// the allocator hand its pages back one `madvise` at a time (milliseconds, for a set of
/// thousands of migrations), and a connection thread still opening (the files were
/// broken) would be waited for by nothing anyway.
fn exit_now(code: u8) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` ends the process without running atexit handlers or destructors;
    // every file this process writes was written or flushed above.
    unsafe { libc::_exit(i32::from(code)) }
}

/// Set by the signal handler before a hard stop: the throwaway server is going away
/// under the command, whose errors from now on are a consequence, and the handler will
/// exit 130 when the server is gone.
static STOPPING_NOW: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The process's one handler for Ctrl-C and SIGTERM. The first signal asks the command
/// to stop at its next safe point — the lock wait and the review delay return at once,
/// an apply stops before its next migration — so the run ends with an honest report and
/// `Drop` removes an `--ephemeral` server. A second signal stops at once: throwaway
/// servers are removed here (`Drop` will not run) and the process exits 130.
fn install_signal_handler() {
    let installed = ctrlc::set_handler(|| {
        if pgrollout::cancelled() {
            STOPPING_NOW.store(true, std::sync::atomic::Ordering::SeqCst);
            pgrollout::ephemeral::teardown_all();
            std::process::exit(i32::from(exit::INTERRUPTED));
        }
        pgrollout::cancel();
        let _ = writeln!(
            std::io::stderr(),
            "interrupted: stopping at the next safe point (press Ctrl-C again to stop now)"
        );
    });
    if let Err(e) = installed {
        let _ = writeln!(std::io::stderr(), "warning: no Ctrl-C handler: {e}");
    }
}

/// Action mode's usage errors: an `::error::` annotation on stdout, where the runner reads
/// workflow commands, the `status` output, and exit 2.
fn usage_annotation(message: &str, secrets: &[String]) -> ExitCode {
    let message = pgrollout::db::conn::redact(message, secrets);
    let _ = writeln!(std::io::stderr(), "error: {message}");
    let _ = writeln!(
        std::io::stdout(),
        "{}",
        pgrollout::render::github::command(
            "error",
            &[(
                "title",
                "pgrollout: usage error in the action's inputs".to_string()
            )],
            &message
        )
    );
    // Every run writes `status`, this one too: a later step can tell why nothing ran.
    let ci = Ci::from_env();
    if let Some(path) = &ci.files.output {
        let entries = [
            (
                "environment",
                ci.input_environment().unwrap_or_default().to_string(),
            ),
            ("status", RunStatus::ConfigError.as_str().to_string()),
            ("error", message.clone()),
        ];
        if let Err(e) = pgrollout::render::github::append_outputs(path, &entries) {
            let _ = writeln!(
                std::io::stderr(),
                "warning: writing step outputs to {}: {e}",
                path.display()
            );
        }
    }
    ExitCode::from(exit::USAGE)
}

/// Passwords known before anything runs, so no output can ever carry them — even the
/// error saying the URL does not parse: the --database-url / DATABASE_URL one, those
/// of every pipeline environment, and the URLs given to drift, status and report.
fn secrets(cli: &Cli, ci: &Ci) -> Vec<String> {
    // With libpq's defaults: PGPASSWORD and a password-file entry are secrets too.
    let url = cli.global.database_url.as_deref().unwrap_or("");
    let mut out: Vec<String> = pgrollout::db::Target::parse_with(url, &ci.libpq)
        .map(|t| t.secrets)
        .unwrap_or_else(|_| pgrollout::db::conn::secrets_in(url));
    out.extend(ci.libpq.vars.get("PGPASSWORD").cloned());
    out.extend(settings::pipeline_secrets(&cli.global, &ci.libpq));
    // URLs given to the multi-environment commands.
    use pgrollout::cli::Command;
    let urls: Vec<&str> = match &cli.command {
        Command::Status { envs, .. } | Command::Report { envs, .. } => envs
            .env_url
            .iter()
            .filter_map(|s| s.split_once('=').map(|(_, u)| u))
            .collect(),
        Command::Drift { source, target, .. } => source
            .iter()
            .chain(target.iter())
            .map(String::as_str)
            .collect(),
        _ => Vec::new(),
    };
    for u in urls {
        out.extend(pgrollout::db::conn::secrets_in(u));
    }
    out
}

// Parsing allocates a protobuf tree per statement; glibc's arenas answer that churn
// with page faults and mprotect calls that dominated profiles (a third of `validate`'s
// time on 100k statements) and serialised the loader threads.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
