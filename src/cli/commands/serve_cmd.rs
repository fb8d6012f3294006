//! `serve`: the pipeline file's environments, their settings and actions, the tokens,
//! wired into the server.

use super::{env_resolver, CliError, Context, Outcome};
use crate::cli::{settings, EnvUrls};
use crate::db::Target;
use crate::serve::{self, auth, ServeEnv, Setup};

pub(super) fn serve(
    ctx: &mut Context,
    listen: std::net::SocketAddr,
    read_only: bool,
) -> Result<Outcome, CliError> {
    let tokens = match std::env::var(auth::TOKENS_ENV) {
        Ok(spec) => auth::parse_tokens(&spec).map_err(CliError::Usage)?,
        Err(_) => Vec::new(),
    };
    serve::check_open(&listen, read_only, &tokens).map_err(CliError::Usage)?;
    let mut envs = Vec::new();
    let file = ctx.global.pipeline.as_ref().map(|l| l.file.clone());
    match &file {
        Some(file) if !file.environments.is_empty() => {
            let resolved = env_resolver(ctx, &EnvUrls::default())?.all();
            for (name, env) in &file.environments {
                let merged = file.settings.merged(&env.settings);
                let saved = (ctx.global.timing.clone(), ctx.global.schema.clone());
                settings::apply_settings(&mut ctx.global, &merged);
                let opts = ctx.run_options(None, false);
                (ctx.global.timing, ctx.global.schema) = saved;
                let mut opts = opts?;
                opts.plan.allow_out_of_order = merged.allow_out_of_order.unwrap_or(false);
                let r = resolved.iter().find(|e| &e.name == name);
                let (mut target, mut skipped) = (
                    r.and_then(|e| e.target.clone()),
                    r.and_then(|e| e.skipped.clone()),
                );
                if ctx.ephemeral_url.is_some() {
                    target = Some(ephemeral_db(ctx, name)?);
                    skipped = None;
                }
                envs.push(ServeEnv {
                    name: name.clone(),
                    target,
                    skipped,
                    actions: env.serve.actions.clone(),
                    confirm: env.confirm_phrase(name),
                    opts,
                    notify: super::webhook(ctx, name, env),
                    lint: merged.lint_options(),
                });
            }
        }
        _ => {
            // No environments: the one database given, shown read-only.
            let target = ctx.need_target("serve")?;
            envs.push(ServeEnv {
                name: target.dbname().unwrap_or("database").to_string(),
                target: Some(target),
                skipped: None,
                actions: Vec::new(),
                confirm: None,
                opts: ctx.run_options(None, false)?,
                notify: None,
                lint: ctx
                    .global
                    .pipeline
                    .as_ref()
                    .map(|l| l.file.settings.lint_options())
                    .unwrap_or_default(),
            });
        }
    }
    let mut secrets: Vec<String> = envs
        .iter()
        .filter_map(|e| e.target.as_ref())
        .flat_map(|t| t.secrets.clone())
        .collect();
    secrets.extend(tokens.iter().map(|t| t.secret().to_string()));
    let setup = Setup {
        listen,
        read_only,
        tokens,
        envs,
        migrations_dir: ctx.migrations_dir.clone(),
        layout: ctx.layout.clone(),
        schema: ctx.global.schema.clone(),
        run_base: ctx.ci.run_context(None),
        secrets,
    };
    serve::serve(setup, ctx.reporter).map_err(|e| match e {
        serve::ServeError::Refused(m) => CliError::Usage(m),
        other => CliError::Failed(other.to_string()),
    })?;
    Ok(Outcome::ok(String::new()))
}

/// With `--ephemeral`, every environment is a database of its own on the throwaway
/// server (named like the environment), so the demo's staging and production differ.
fn ephemeral_db(ctx: &mut Context, name: &str) -> Result<Target, CliError> {
    let cluster = ctx
        ._cluster
        .as_ref()
        .ok_or_else(|| CliError::Failed("--ephemeral: no throwaway server".into()))?;
    let admin = Target::parse(&cluster.url("postgres"))?;
    let url = cluster.url(name);
    let mut db = crate::db::Db::connect(
        &admin,
        "pgrollout serve",
        ctx.global.timing.connect_timeout,
        &mut |_, _, _| {},
    )?;
    db.batch(&format!(
        "CREATE DATABASE {}",
        crate::sql::quote_ident(name)
    ))
    .map_err(|e| {
        CliError::Failed(format!(
            "--ephemeral: creating database {name}: {}",
            crate::db::conn::error_text(&e)
        ))
    })?;
    Ok(Target::parse(&url)?)
}
