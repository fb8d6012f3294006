//! A simulated GitHub Actions runner for the real binary: a workspace with a pipeline
//! file and migrations, the env files (`GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`,
//! `RUNNER_TEMP`) and nothing of the caller's environment but PATH.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub outputs: BTreeMap<String, String>,
    pub summary: String,
}

impl Workspace {
    pub fn new(pipeline: &str, migrations: &[(&str, &str)]) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pgrollout.yml"), pipeline).unwrap();
        std::fs::create_dir(dir.path().join("migrations")).unwrap();
        for (name, sql) in migrations {
            std::fs::write(dir.path().join("migrations").join(name), sql).unwrap();
        }
        std::fs::create_dir(dir.path().join("runner_temp")).unwrap();
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

    /// Run the binary with only PATH, HOME and the given variables set, as on a runner.
    pub fn run(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let out = self.path("github_output");
        let summary = self.path("step_summary");
        std::fs::write(&out, "").unwrap();
        std::fs::write(&summary, "").unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgrollout"));
        cmd.current_dir(self.dir.path())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", &out)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("RUNNER_TEMP", self.path("runner_temp"))
            .env("GITHUB_ACTOR", "mona")
            .env("PGROLLOUT_CONNECT_TIMEOUT", "5s");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let o = cmd.output().unwrap();
        let outputs = parse_outputs(&std::fs::read_to_string(&out).unwrap());
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            outputs,
            summary: std::fs::read_to_string(&summary).unwrap(),
        }
    }
}

impl Run {
    /// Lines the runner treats as workflow commands (first non-blank chars `::`, or a
    /// legacy `##[` anywhere), from both streams, split like the runner splits.
    pub fn commands(&self) -> Vec<String> {
        format!("{}\n{}", self.stdout, self.stderr)
            .split(['\r', '\n'])
            .filter(|l| l.trim_start().starts_with("::") || l.contains("##["))
            .map(str::to_string)
            .collect()
    }

    pub fn annotations(&self, kind: &str) -> Vec<String> {
        self.commands()
            .into_iter()
            .filter(|c| {
                c.starts_with(&format!("::{kind} ")) || c.starts_with(&format!("::{kind}::"))
            })
            .collect()
    }

    pub fn debug(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}\n--- summary\n{}",
            self.code, self.stdout, self.stderr, self.summary
        )
    }
}

/// `$GITHUB_OUTPUT` parsed like the runner: `name<<DELIM`, lines, a line equal to DELIM.
pub fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    assert!(!text.contains('\r'), "GITHUB_OUTPUT must be LF only");
    let mut out = BTreeMap::new();
    let mut lines = text.split('\n');
    while let Some(l) = lines.next() {
        if l.is_empty() {
            continue;
        }
        let (name, d) = l.split_once("<<").expect("heredoc form");
        assert!(d.starts_with("ghadelimiter_"), "{d}");
        let mut v = Vec::new();
        let mut closed = false;
        for x in lines.by_ref() {
            if x == d {
                closed = true;
                break;
            }
            v.push(x);
        }
        assert!(closed, "delimiter {d} not closed");
        out.insert(name.to_string(), v.join("\n"));
    }
    out
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
