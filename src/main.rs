//! The binary: parse arguments, build the reporter, run the command, map the outcome
//! to an exit code, print the error once.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use pgrollout::cli::commands::{self, CliError, Context};
use pgrollout::cli::{action, settings, Cli};
use pgrollout::report::github::{safe_lines, GitHub};
use pgrollout::report::terminal::Terminal;
use pgrollout::report::{Event, Level, Location, Reporter};

fn main() -> ExitCode {
    let mut argv: Vec<String> = std::env::args().collect();
    // Action mode (the container's entrypoint): the action's inputs become the command line.
    if argv.get(1).map(String::as_str) == Some("action") {
        let plan = action::plan(&argv[0], |k| std::env::var(k).ok());
        if let Some(dir) = &plan.working_directory {
            if let Err(e) = std::env::set_current_dir(dir) {
                eprintln!("error: working-directory {}: {e}", dir.display());
                return ExitCode::from(pgrollout::cli::exit::USAGE);
            }
        }
        if let Some(url) = &plan.database_url {
            // Single-threaded here: nothing else reads the environment yet.
            std::env::set_var("DATABASE_URL", url);
        }
        argv = plan.argv;
    }
    let matches = Cli::command().get_matches_from(argv);
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    settings::record_defaults(&mut cli.global, &matches);
    let loaded = settings::load_pipeline(&mut cli.global);
    let secrets = secrets(&cli);
    let github = std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true");
    // Machine-read results keep stdout to themselves.
    let machine_output = !matches!(cli.global.format, pgrollout::cli::Format::Text);
    let mut reporter: Box<dyn Reporter> = if github && machine_output {
        Box::new(GitHub::stderr(secrets.clone()))
    } else if github {
        Box::new(GitHub::stdout(secrets.clone()))
    } else {
        Box::new(Terminal::stderr(secrets.clone()))
    };
    let result = match loaded {
        Err(e) => {
            // A bad pipeline file is an annotation at its line and column.
            let location = e
                .position()
                .map(|(p, l, c)| Location::new(p, l as u32, c as u32));
            reporter.event(&Event::Diagnostic {
                level: Level::Error,
                location: location.as_ref(),
                message: &e.to_string(),
            });
            Err((CliError::Usage(e.to_string()), true))
        }
        Ok(()) => Context::new(cli.global, reporter.as_mut())
            .and_then(|mut ctx| commands::run(cli.command, &mut ctx))
            .map_err(|e| (e, false)),
    };
    if github {
        if let Err((e, false)) = &result {
            reporter.event(&Event::Diagnostic {
                level: Level::Error,
                location: None,
                message: &e.to_string(),
            });
        }
    }
    if pgrollout::ephemeral::interrupted() {
        // Ctrl-C/SIGTERM with --ephemeral: the handler is removing the server (which is
        // why the command just failed) and exits 130 itself; let it finish.
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
    match result {
        Ok(outcome) => {
            let mut out = std::io::stdout().lock();
            if !outcome.stdout.is_empty() {
                let _ = out.write_all(lines(&redact(&outcome.stdout)).as_bytes());
            }
            ExitCode::from(outcome.code)
        }
        Err((e, _)) => {
            eprint!("{}", lines(&format!("error: {}\n", redact(&e.to_string()))));
            ExitCode::from(e.code())
        }
    }
}

/// Passwords known before anything runs, so no output can ever carry them — even the
/// error saying the URL does not parse: the --database-url / DATABASE_URL one, those
/// of every pipeline environment, and the URLs given to drift, status and report.
fn secrets(cli: &Cli) -> Vec<String> {
    let mut out: Vec<String> = cli
        .global
        .database_url
        .as_deref()
        .map(|u| {
            pgrollout::db::Target::parse(u)
                .map(|t| t.secrets)
                .unwrap_or_else(|_| pgrollout::db::conn::secrets_in(u))
        })
        .unwrap_or_default();
    out.extend(settings::pipeline_secrets(&cli.global));
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
