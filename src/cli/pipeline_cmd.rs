//! `pgrollout pipeline run`: wire the pipeline file, the GitHub context and the merged
//! options into `pipeline::run`.

use std::time::Duration;

use crate::cli::commands::{CliError, Context, Outcome};
use crate::cli::{exit, settings, PipelineCommand, PipelineRunArgs};
use crate::config::FailOn;
use crate::engine::apply::RunOptions;
use crate::pipeline::{self, Decision, Request, Setup};
use crate::plan::PlanOptions;
use crate::report::summary::{RunStatus, RunSummary};
use crate::report::{Event, Level};

pub fn run(ctx: &mut Context, command: PipelineCommand) -> Result<Outcome, CliError> {
    match command {
        PipelineCommand::Run(args) => pipeline_run(ctx, &args),
    }
}

fn outcome(ctx: &Context, summary: &RunSummary) -> Outcome {
    Outcome {
        code: exit_code(summary.status),
        stdout: if ctx.global.format == crate::cli::Format::Json {
            serde_json::to_string_pretty(summary).expect("serialisable") + "\n"
        } else {
            String::new()
        },
    }
}

fn pipeline_run(ctx: &mut Context, args: &PipelineRunArgs) -> Result<Outcome, CliError> {
    let Some(loaded) = ctx.global.pipeline.clone() else {
        return Err(CliError::Usage(format!(
            "no pipeline file: {} does not exist; write one (see docs/github.md) or pass --config FILE",
            ctx.global.config.display()
        )));
    };
    let gh = ctx.ci.event().map_err(CliError::Usage)?;
    let request = Request {
        env: ctx.global.env.clone().filter(|e| !e.is_empty()),
        confirm: args.confirm.clone(),
        dry_run: args.dry_run,
        review_delay: args.review_delay,
    };
    let (env_name, trigger, dry_run) = match pipeline::decide(&loaded.file, &request, &gh) {
        Decision::Usage(m) => return Err(CliError::Usage(m)),
        Decision::Skip { trigger, reason } => {
            ctx.reporter.event(&Event::Diagnostic {
                level: Level::Notice,
                location: None,
                message: &format!("nothing to do: {reason}"),
            });
            let s = RunSummary::early(RunStatus::Skipped, trigger, reason);
            ctx.reporter.event(&Event::PipelineFinished { summary: &s });
            return Ok(outcome(ctx, &s));
        }
        Decision::Refuse {
            trigger,
            env,
            reason,
        } => {
            ctx.reporter.event(&Event::Diagnostic {
                level: Level::Error,
                location: None,
                message: &format!("refused: {reason}; nothing was done"),
            });
            let mut s = RunSummary::early(RunStatus::Refused, trigger, reason);
            s.environment = env;
            ctx.reporter.event(&Event::PipelineFinished { summary: &s });
            return Ok(outcome(ctx, &s));
        }
        Decision::Run {
            env,
            trigger,
            dry_run,
        } => (env, trigger, dry_run),
    };
    let env = loaded
        .file
        .environment(&env_name)
        .expect("decide() checked the name");
    let merged = loaded.file.settings.merged(&env.settings);
    let hook = super::commands::webhook(ctx, &env_name, env);
    settings::apply_settings(&mut ctx.global, &merged);
    let t = &ctx.global.timing;
    let (lock_timeout, statement_timeout) =
        settings::server_timeouts(t).map_err(CliError::Usage)?;
    let opts = RunOptions {
        schema: ctx.global.schema.clone(),
        lock_timeout,
        statement_timeout,
        lock_retries: t.lock_retries,
        lock_wait: t.lock_wait,
        connect_retry: t.connect_timeout,
        plan: PlanOptions {
            allow_out_of_order: merged.allow_out_of_order.unwrap_or(false),
            ..Default::default()
        },
        dry_run,
    };
    let set =
        super::commands::load_set(&ctx.migrations_dir, &ctx.layout, true, ctx.reporter, true)?;
    let url_var = |name: &str| std::env::var(name).ok();
    let setup = Setup {
        file: &loaded.file,
        set: &set,
        opts,
        forced_url: ctx.ephemeral_url.clone(),
        fallback_url: ctx
            .global
            .database_url
            .clone()
            .filter(|u| !u.trim().is_empty()),
        url_var: &url_var,
        libpq: &ctx.ci.libpq,
        request: &request,
        lint_fail_on: merged.lint_fail_on.unwrap_or(FailOn::Error),
        lint: crate::engine::lint::LintSettings::from_settings(&merged),
        long_transaction: merged.long_transaction.unwrap_or(Duration::from_secs(300)),
        run: ctx.ci.run_context(Some(env_name.clone())),
        dump_dir: ctx.ci.dump_dir(std::env::temp_dir),
    };
    let mut recorder = crate::notify::Recorder::new(ctx.reporter);
    let summary = pipeline::run(&setup, &env_name, &trigger, dry_run, &mut recorder);
    let facts = recorder.facts;
    if let Some(hook) = hook {
        let succeeded = matches!(summary.status, RunStatus::Success | RunStatus::DryRun);
        let notice = crate::notify::Notice {
            environment: &env_name,
            status: summary.status.as_str(),
            succeeded,
            action: "pipeline run",
            run_id: &setup.run.run_id,
            actor: &setup.run.actor,
            run_url: setup.run.ci_run_url.as_deref(),
            message: (!summary.message.is_empty()).then_some(summary.message.as_str()),
            facts: &facts,
        };
        let mut secrets = settings::pipeline_secrets(&ctx.global, &ctx.ci.libpq);
        secrets.extend(ctx.target.iter().flat_map(|t| t.secrets.clone()));
        crate::notify::send(&hook, &notice, &secrets, ctx.reporter);
    }
    Ok(outcome(ctx, &summary))
}

/// The pipeline's status as the exit-code contract says.
fn exit_code(status: RunStatus) -> u8 {
    match status {
        RunStatus::Success | RunStatus::DryRun | RunStatus::Skipped => exit::OK,
        RunStatus::Failed => exit::FAILED,
        RunStatus::Cancelled => exit::INTERRUPTED,
        RunStatus::Refused => exit::REFUSED,
        RunStatus::ConfigError => exit::USAGE,
    }
}
