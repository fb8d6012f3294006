//! `new --pattern NAME`: the files of a safe-change pattern, with what the earlier
//! migrations say about the column or enum filled in.

use super::{CliError, Context, Outcome};
use crate::cli::PatternFlags;
use crate::lint::schema_model::ColumnKnowledge;
use crate::lint::SchemaModel;
use crate::migration::patterns::{self, Pattern, PatternArgs};
use crate::migration::{MigrationSet, Version};

pub(super) fn pattern(
    ctx: &mut Context,
    name: &str,
    f: &PatternFlags,
) -> Result<Outcome, CliError> {
    let pattern = Pattern::parse(name).ok_or_else(|| {
        CliError::Usage(format!(
            "--pattern {name}: no such pattern (see pgrollout new --help)"
        ))
    })?;
    let dir = ctx.migrations_dir.clone();
    // A directory that does not exist yet, or does not load, has nothing to tell.
    let set = MigrationSet::load(&dir).ok();
    let model = set
        .as_ref()
        .map(|s| SchemaModel::of(&s.migrations))
        .unwrap_or_default();
    let known_type = match (&f.table, &f.column) {
        (Some(t), Some(c)) => match model.column_of(t, c) {
            ColumnKnowledge::Typed(ty) if ty.typmods.is_some() => Some(ty.display()),
            _ => None,
        },
        _ => None,
    };
    let enum_last = f
        .type_name
        .as_deref()
        .and_then(|t| model.enum_values(t))
        .and_then(|v| v.last().cloned());
    let args = PatternArgs {
        table: f.table.clone(),
        column: f.column.clone(),
        type_name: f.type_name.clone(),
        references: f.references.clone(),
        check: f.check.clone(),
        constraint: f.constraint.clone(),
        to: f.to.clone(),
        value: f.value.clone(),
        after: f.after.clone(),
        before: f.before.clone(),
        contract: f.contract,
        known_type,
        enum_last,
    };
    let files = patterns::render(pattern, &args).map_err(|e| CliError::Usage(e.to_string()))?;

    std::fs::create_dir_all(&dir).map_err(CliError::io("creating", &dir))?;
    // The steps must run after every existing migration: when the newest one is a
    // timestamp from the last minutes (another pattern just written), start after it.
    let newest = set
        .as_ref()
        .and_then(|s| s.migrations.last())
        .map_or(0, |m| m.version.value);
    let stamp = |secs: i64| {
        (chrono::Utc::now() + chrono::Duration::seconds(secs))
            .format("%Y%m%d%H%M%S")
            .to_string()
    };
    let offset = (0..600)
        .find(|o| Version::parse(&stamp(*o)).is_some_and(|v| v.value > newest))
        .ok_or_else(|| {
            CliError::Failed(format!(
                "the newest migration in {} has a version later than now plus 10 minutes; \
                 pattern files are named by UTC time and would sort before it",
                dir.display()
            ))
        })?;
    let mut planned = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let version = stamp(offset + i as i64);
        planned.push((dir.join(format!("{version}_{}.sql", file.name)), &file.text));
    }
    for (path, text) in &planned {
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(CliError::io("creating", path))?;
        std::io::Write::write_all(&mut out, text.as_bytes())
            .map_err(CliError::io("writing", path))?;
    }
    let paths: Vec<&std::path::Path> = planned.iter().map(|(p, _)| p.as_path()).collect();
    Ok(Outcome::ok(if ctx.json() {
        serde_json::json!({ "pattern": pattern.name(), "paths": paths }).to_string() + "\n"
    } else {
        paths.iter().map(|p| format!("{}\n", p.display())).collect()
    }))
}
