//! The CI context: who runs, where, for which event — read once from the process
//! environment at the CLI edge. Everything below (pipeline, engine, tracking, the
//! GitHub renderer) receives these values and never reads `GITHUB_*`, `INPUT_*` or
//! `RUNNER_TEMP` itself, so the core can be driven by a test, a server or another CI
//! with plain values.

use std::path::{Path, PathBuf};

use crate::db::tracking::{new_run_id, RunContext};
use crate::db::LibpqEnv;
use crate::pipeline::GitHubEvent;
use crate::render::github::Files;

/// The directory, under `$GITHUB_WORKSPACE`, that dumps go to on a runner.
pub const DUMP_DIR: &str = "pgrollout-backups";

/// A snapshot of the CI-related environment variables, taken when the command starts.
#[derive(Debug, Clone, Default)]
pub struct Ci {
    /// `GITHUB_ACTIONS=true`: the GitHub renderer is used.
    pub github_actions: bool,
    /// `GITHUB_ACTOR`, else `$USER`/`$LOGNAME`, else the OS user.
    pub actor: String,
    pub git_sha: Option<String>,
    pub git_ref: Option<String>,
    /// `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`.
    pub run_url: Option<String>,
    /// The runner's files (`GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`, `RUNNER_TEMP`,
    /// `GITHUB_WORKSPACE`).
    pub files: Files,
    event_name: Option<String>,
    event_path: Option<String>,
    input_environment: Option<String>,
    input_confirm: Option<String>,
    input_dry_run: Option<String>,
    /// The `PG*` variables and `$HOME`, for libpq's defaults under every database URL.
    pub libpq: LibpqEnv,
}

impl Ci {
    /// From the process environment (the binary).
    pub fn from_env() -> Ci {
        let mut ci = Ci::from_vars(|k| std::env::var(k).ok());
        if let (Some(w), Ok(cwd)) = (&ci.files.workspace, std::env::current_dir()) {
            ci.files.cwd_in_workspace = within(w, &cwd);
        }
        ci
    }

    /// From `var` (the environment in the binary, a map in tests). Empty values count
    /// as unset, as the runner sets unused inputs to "".
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Ci {
        let get = |k: &str| var(k).filter(|v| !v.is_empty());
        let path = |k: &str| get(k).map(PathBuf::from);
        let actor = get("GITHUB_ACTOR")
            .or_else(|| get("USER"))
            .or_else(|| get("LOGNAME"))
            .or_else(|| whoami::username().ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "unknown".into());
        let run_url = match (
            get("GITHUB_SERVER_URL"),
            get("GITHUB_REPOSITORY"),
            get("GITHUB_RUN_ID"),
        ) {
            (Some(s), Some(r), Some(id)) => Some(format!("{s}/{r}/actions/runs/{id}")),
            _ => None,
        };
        Ci {
            github_actions: var("GITHUB_ACTIONS").as_deref() == Some("true"),
            actor,
            git_sha: get("GITHUB_SHA"),
            git_ref: get("GITHUB_REF"),
            run_url,
            files: Files {
                output: path("GITHUB_OUTPUT"),
                step_summary: path("GITHUB_STEP_SUMMARY"),
                runner_temp: path("RUNNER_TEMP"),
                workspace: path("GITHUB_WORKSPACE"),
                cwd_in_workspace: None,
            },
            event_name: get("GITHUB_EVENT_NAME"),
            event_path: get("GITHUB_EVENT_PATH"),
            input_environment: get("INPUT_ENVIRONMENT"),
            input_confirm: get("INPUT_CONFIRM"),
            input_dry_run: get("INPUT_DRY-RUN"),
            libpq: LibpqEnv::from_lookup(&var),
        }
    }

    /// The action's `environment` input (`INPUT_ENVIRONMENT`).
    pub fn input_environment(&self) -> Option<&str> {
        self.input_environment.as_deref()
    }

    /// Who and where, for the history rows of one command (a new run id each call).
    pub fn run_context(&self, environment: Option<String>) -> RunContext {
        RunContext {
            run_id: new_run_id(),
            actor: self.actor.clone(),
            environment,
            git_sha: self.git_sha.clone(),
            git_ref: self.git_ref.clone(),
            ci_run_url: self.run_url.clone(),
        }
    }

    /// Where a dump goes when no directory is given, and whether that is the CI job's
    /// workspace: `$GITHUB_WORKSPACE/pgrollout-backups` on a runner — where a later step
    /// of the job can upload it as an artifact, which `$RUNNER_TEMP` inside the action's
    /// container is not — else `fallback`.
    pub fn dump_dir(&self, fallback: impl FnOnce() -> PathBuf) -> (PathBuf, bool) {
        match &self.files.workspace {
            Some(w) => (w.join(DUMP_DIR), true),
            None => (fallback(), false),
        }
    }

    /// The event that triggered the workflow, with its payload read from
    /// `GITHUB_EVENT_PATH`.
    pub fn event(&self) -> Result<GitHubEvent, String> {
        let payload = match &self.event_path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("reading the event payload GITHUB_EVENT_PATH={p}: {e}"))?;
                serde_json::from_str(&text)
                    .map_err(|e| format!("the event payload {p} is not JSON: {e}"))?
            }
            None => serde_json::Value::Null,
        };
        Ok(GitHubEvent {
            name: self.event_name.clone(),
            git_ref: self.git_ref.clone(),
            payload,
            input_environment: self.input_environment.clone(),
            input_confirm: self.input_confirm.clone(),
            input_dry_run: self.input_dry_run.clone(),
        })
    }
}

/// `dir` relative to `workspace` when it lies inside it (`None` at its root or outside),
/// comparing canonical paths: the runner's `GITHUB_WORKSPACE` may be spelled through a
/// symlink.
pub fn within(workspace: &Path, dir: &Path) -> Option<PathBuf> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let rel = canon(dir)
        .strip_prefix(canon(workspace))
        .ok()?
        .to_path_buf();
    (!rel.as_os_str().is_empty()).then_some(rel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn ci(vars: &[(&str, &str)]) -> Ci {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ci::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn actor_and_run_url_from_github() {
        let c = ci(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_ACTOR", "octocat"),
            ("USER", "runner"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_RUN_ID", "42"),
        ]);
        assert!(c.github_actions);
        let r = c.run_context(Some("production".into()));
        assert_eq!(r.actor, "octocat");
        assert_eq!(
            r.ci_run_url.as_deref(),
            Some("https://github.com/o/r/actions/runs/42")
        );
        assert_eq!(r.environment.as_deref(), Some("production"));
    }

    #[test]
    fn empty_values_are_unset() {
        let c = ci(&[("GITHUB_ACTOR", ""), ("USER", "dev"), ("RUNNER_TEMP", "")]);
        assert!(!c.github_actions);
        assert_eq!(c.actor, "dev");
        assert_eq!(
            c.dump_dir(|| PathBuf::from("/fallback")),
            (PathBuf::from("/fallback"), false)
        );
        let c = ci(&[("GITHUB_WORKSPACE", "/ws"), ("RUNNER_TEMP", "/tmp/r")]);
        assert_eq!(
            c.dump_dir(|| PathBuf::from("/fallback")),
            (PathBuf::from("/ws/pgrollout-backups"), true)
        );
        assert!(c.run_context(None).ci_run_url.is_none());
    }

    #[test]
    fn event_payload_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("event.json");
        std::fs::write(&p, "{not json").unwrap();
        let c = ci(&[("GITHUB_EVENT_PATH", p.to_str().unwrap())]);
        let e = c.event().unwrap_err();
        assert!(e.contains("event.json") && e.contains("not JSON"), "{e}");
    }
}
