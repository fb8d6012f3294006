//! Action mode: the container's entrypoint runs `pgrollout action`, and the action's
//! inputs (`INPUT_<NAME>`, hyphens kept, values not trimmed) become a command line.
//!
//! `environment`, `confirm` and `dry-run` are read by `pipeline run` itself (next to the
//! `workflow_dispatch` payload); this module handles the rest.

use std::path::PathBuf;

/// The inputs the action declares; `action.yml` is checked against this list.
pub const INPUTS: &[&str] = &[
    "config",
    "environment",
    "confirm",
    "dry-run",
    "database-url",
    "working-directory",
    "args",
];

/// What action mode does before parsing the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPlan {
    pub argv: Vec<String>,
    pub working_directory: Option<PathBuf>,
    /// Exported as `DATABASE_URL` (the fallback when the environment's variable is unset).
    pub database_url: Option<String>,
}

/// Build the command line from `INPUT_*` values read with `var`.
pub fn plan(program: &str, var: impl Fn(&str) -> Option<String>) -> ActionPlan {
    let input = |name: &str| {
        var(&format!("INPUT_{}", name.replace(' ', "_").to_uppercase()))
            .filter(|v| !v.trim().is_empty())
    };
    let mut argv = vec![program.to_string()];
    if let Some(c) = input("config") {
        argv.push("--config".into());
        argv.push(c.trim().to_string());
    }
    match input("args") {
        // A whole pgrollout command instead of `pipeline run` (e.g. `status`, `plan`).
        Some(a) => argv.extend(a.split_whitespace().map(str::to_string)),
        None => argv.extend(["pipeline".to_string(), "run".to_string()]),
    }
    ActionPlan {
        argv,
        working_directory: input("working-directory").map(|d| PathBuf::from(d.trim())),
        database_url: input("database-url").map(|u| u.trim().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults_to_pipeline_run() {
        let p = plan("pgrollout", vars(&[]));
        assert_eq!(p.argv, ["pgrollout", "pipeline", "run"]);
        assert_eq!(p.working_directory, None);
    }

    #[test]
    fn inputs_with_hyphens_and_padding() {
        let p = plan(
            "pgrollout",
            vars(&[
                ("INPUT_CONFIG", "deploy/pgrollout.yml "),
                ("INPUT_WORKING-DIRECTORY", " db"),
                ("INPUT_DATABASE-URL", "postgres://u:p@h/d\n"),
                ("INPUT_ARGS", "status --all"),
            ]),
        );
        assert_eq!(
            p.argv,
            [
                "pgrollout",
                "--config",
                "deploy/pgrollout.yml",
                "status",
                "--all"
            ]
        );
        assert_eq!(p.working_directory, Some(PathBuf::from("db")));
        assert_eq!(p.database_url.as_deref(), Some("postgres://u:p@h/d"));
    }
}
