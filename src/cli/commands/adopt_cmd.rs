//! `pgrollout adopt --from TOOL [--dry-run]`.

use super::{load_set, read_state, with_lock, CliError, Context, Outcome};
use crate::engine::adopt::{self, Tool};
use crate::migration::{LayoutOptions, Migration};

pub fn adopt(ctx: &mut Context, tool: Tool, dry_run: bool) -> Result<Outcome, CliError> {
    let target = ctx.need_target("adopt")?;
    // The tool's own layout unless one is declared.
    let layout = LayoutOptions {
        layout: ctx.layout.layout.or(Some(tool.layout())),
        separator: ctx.layout.separator,
    };
    let set = load_set(&ctx.migrations_dir, &layout, true, ctx.reporter, true)?;
    let refuse = |e: adopt::AdoptError| match e {
        adopt::AdoptError::Refused(m) => CliError::Refused(m),
        other => CliError::Failed(other.to_string()),
    };
    if dry_run {
        // Read-only: no lock, no tracking schema created.
        let state = read_state(ctx, &target)?;
        if let Some(r) = state.rows.first() {
            return Err(already_tracked(&r.version, &r.name));
        }
        let mut s = crate::engine::connect(
            &target,
            &ctx.global.schema,
            ctx.global.timing.connect_timeout,
            ctx.reporter,
        )
        .map_err(|e| CliError::Failed(e.to_string()))?;
        let applied = adopt::read_applied(&mut s.db, tool).map_err(refuse)?;
        let mut list = adopt::match_files(&set, tool, &applied).map_err(refuse)?;
        if tool == Tool::Flyway {
            list.extend(adopt::flyway_repeatables(&mut s.db, &set).map_err(refuse)?);
        }
        return Ok(Outcome::ok(format!(
            "would adopt {} migration(s) from {} ({}); nothing written (--dry-run):\n{}",
            list.len(),
            tool.name(),
            tool.table(),
            summary(&list)
        )));
    }
    let run = ctx.ci.run_context(None);
    let list = with_lock(ctx, "adopt", |s, state, _| {
        if let Some(r) = state.rows.first() {
            return Err(already_tracked(&r.version, &r.name));
        }
        let applied = adopt::read_applied(&mut s.db, tool).map_err(refuse)?;
        let mut list = adopt::match_files(&set, tool, &applied).map_err(refuse)?;
        let repeatables = if tool == Tool::Flyway {
            adopt::flyway_repeatables(&mut s.db, &set).map_err(refuse)?
        } else {
            Vec::new()
        };
        adopt::write(&mut s.db, &s.tracking, &run, tool, &list, &repeatables).map_err(refuse)?;
        list.extend(repeatables);
        Ok(summary(&list))
    })?;
    let pending = set.migrations.len() + set.repeatables.len() - list.lines().count();
    Ok(Outcome::ok(format!(
        "adopted {} migration(s) from {} ({}, left untouched); {pending} pending:\n{list}",
        list.lines().count(),
        tool.name(),
        tool.table(),
    )))
}

fn already_tracked(version: &str, name: &str) -> CliError {
    CliError::Refused(format!(
        "pgrollout's tracking already has migrations (first: {version} {name}): adopt is only for a \
         database pgrollout has never migrated; nothing was adopted"
    ))
}

fn summary(list: &[&Migration]) -> String {
    list.iter()
        .map(|m| format!("  {} {}\n", m.version, m.name))
        .collect()
}
