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

/// Build the command line from `INPUT_*` values read with `var`. `args` is split with
/// POSIX shell-word rules (quotes and backslashes, no expansion), so
/// `repair --reason "fixed a typo"` is three words after `repair`; an unclosed quote is
/// an error.
pub fn plan(program: &str, var: impl Fn(&str) -> Option<String>) -> Result<ActionPlan, String> {
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
        Some(a) => argv.extend(shlex::split(&a).ok_or_else(|| {
            "the `args` input is not a valid command line: a quote is not closed, or it ends \
             in a backslash (it is split like a shell command: quote words with spaces as \
             \"fixed a typo\")"
                .to_string()
        })?),
        None => argv.extend(["pipeline".to_string(), "run".to_string()]),
    }
    Ok(ActionPlan {
        argv,
        working_directory: input("working-directory").map(|d| PathBuf::from(d.trim())),
        database_url: input("database-url").map(|u| u.trim().to_string()),
    })
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
        let p = plan("pgrollout", vars(&[])).unwrap();
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
        )
        .unwrap();
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

    #[test]
    fn args_split_like_a_shell_command_line() {
        let p = plan(
            "pgrollout",
            vars(&[(
                "INPUT_ARGS",
                "repair --reason \"fixed a typo\" 'it''s' a\\ b",
            )]),
        )
        .unwrap();
        assert_eq!(
            p.argv,
            [
                "pgrollout",
                "repair",
                "--reason",
                "fixed a typo",
                "its",
                "a b"
            ]
        );
        let e = plan(
            "pgrollout",
            vars(&[("INPUT_ARGS", "repair --reason \"oops")]),
        )
        .unwrap_err();
        assert!(e.contains("quote is not closed"), "{e}");
    }
}
