//! A simulated GitHub Actions runner for the real binary: a workspace with a pipeline
//! file and migrations, the env files (`GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`,
//! `RUNNER_TEMP`) and nothing of the caller's environment but PATH.

use std::path::PathBuf;

use super::{Pgrollout, Run};

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new(pipeline: &str, migrations: &[(&str, &str)]) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pgrollout.yml"), pipeline).unwrap();
        std::fs::create_dir(dir.path().join("migrations")).unwrap();
        for (name, sql) in migrations {
            std::fs::write(dir.path().join("migrations").join(name), sql).unwrap();
        }
        Workspace { dir }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn add(&self, name: &str, sql: &str) {
        std::fs::write(self.path("migrations").join(name), sql).unwrap();
    }

    pub fn event(&self, json: serde_json::Value) -> String {
        let p = self.path("event.json");
        std::fs::write(&p, json.to_string()).unwrap();
        p.display().to_string()
    }

    /// The binary as a runner starts it in this workspace, before the given variables.
    pub fn command(&self) -> Pgrollout {
        Pgrollout::new()
            .cwd(self.dir.path())
            .runner_files(self.dir.path())
            .env("GITHUB_ACTOR", "mona")
            .env("PGROLLOUT_CONNECT_TIMEOUT", "5s")
    }

    /// Run the binary with only PATH, HOME, the runner's and the given variables set.
    pub fn run(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        self.command().args(args).envs(vars).run()
    }
}

/// A `workflow_dispatch` of the pipeline with these inputs, production's URL set, and no
/// review delay.
pub fn dispatch(ws: &Workspace, db: &str, inputs: serde_json::Value) -> Run {
    let ev = ws.event(serde_json::json!({
        "inputs": inputs,
        "ref": "refs/heads/main",
        "sender": {"login": "mona"}
    }));
    ws.run(
        &["pipeline", "run", "--review-delay", "0s"],
        &[
            ("GITHUB_EVENT_NAME", "workflow_dispatch"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_EVENT_PATH", &ev),
            ("PROD_DATABASE_URL", db),
        ],
    )
}

/// A push to `staging` with staging's URL set.
pub fn push_staging(ws: &Workspace, db: &str) -> Run {
    ws.run(
        &["pipeline", "run"],
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/staging"),
            ("STAGING_DATABASE_URL", db),
        ],
    )
}

pub fn tracking_schema_exists(url: &str) -> bool {
    super::query_strings(
        url,
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgrollout'",
    )[0][0]
        .as_deref()
        == Some("1")
}

/// The versions recorded in the tracking schema (none when it does not exist).
pub fn applied(url: &str) -> Vec<String> {
    if !tracking_schema_exists(url) {
        return Vec::new();
    }
    super::query_strings(
        url,
        "SELECT version_text FROM pgrollout.schema_migrations ORDER BY version",
    )
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect()
}
