//! The binary: parse arguments, build the reporter, run the command, map the outcome
//! to an exit code, print the error once.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use pgrollout::cli::commands::{self, Context};
use pgrollout::cli::Cli;
use pgrollout::report::terminal::Terminal;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let secrets = secrets(&cli);
    let mut terminal = Terminal::stderr(secrets.clone());
    let result = Context::new(cli.global, &mut terminal)
        .and_then(|mut ctx| commands::run(cli.command, &mut ctx));
    match result {
        Ok(outcome) => {
            let mut out = std::io::stdout().lock();
            let _ =
                out.write_all(pgrollout::db::conn::redact(&outcome.stdout, &secrets).as_bytes());
            ExitCode::from(outcome.code)
        }
        Err(e) => {
            eprintln!(
                "error: {}",
                pgrollout::db::conn::redact(&e.to_string(), &secrets)
            );
            ExitCode::from(e.code())
        }
    }
}

/// Passwords known before anything runs, so no output can ever carry them — even the
/// error saying the URL does not parse.
fn secrets(cli: &Cli) -> Vec<String> {
    cli.global
        .database_url
        .as_deref()
        .map(|u| {
            pgrollout::db::Target::parse(u)
                .map(|t| t.secrets)
                .unwrap_or_else(|_| pgrollout::db::conn::secrets_in(u))
        })
        .unwrap_or_default()
}
