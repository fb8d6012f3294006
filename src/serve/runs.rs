//! Runs started from the server: each on its own thread through the engine's one apply
//! (or rollback) path — the same lock, executor and audit rows as the CLI — with a
//! [`Reporter`] that turns its events into JSON lines, kept for late readers and
//! broadcast to the Server-Sent-Events streams watching it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::config::ServeAction;
use crate::db::tracking::RunContext;
use crate::engine::rollback::{self, RollbackOptions, RollbackTarget};
use crate::engine::{self, ApplyFailure};
use crate::migration::MigrationSet;
use crate::notify::{Notice, Recorder};
use crate::report::{redact, Event, Reporter};

use super::ServeEnv;

/// What a run asks for, from the request body.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// The environment's confirmation phrase (`on.dispatch.confirm`), when it has one.
    #[serde(default)]
    pub confirm: Option<String>,
    /// rollback: how many migrations (default 1).
    #[serde(default)]
    pub steps: Option<u32>,
    /// rollback: roll back every migration newer than this version.
    #[serde(default)]
    pub to: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Succeeded,
    Failed,
}

/// One run and everything it reported so far.
pub struct Run {
    pub id: String,
    pub environment: String,
    pub action: ServeAction,
    pub actor: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<str>>,
}

struct Inner {
    state: RunState,
    error: Option<String>,
    /// Every event as a JSON text, in order.
    log: Vec<Arc<str>>,
}

impl Run {
    fn new(id: String, env: &str, action: ServeAction, actor: &str) -> Arc<Run> {
        Arc::new(Run {
            id,
            environment: env.to_string(),
            action,
            actor: actor.to_string(),
            started_at: chrono::Utc::now(),
            inner: Mutex::new(Inner {
                state: RunState::Running,
                error: None,
                log: Vec::new(),
            }),
            tx: broadcast::channel(1024).0,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record and broadcast one event (under the lock, so a reader that replays the
    /// log and then subscribes misses nothing and sees nothing twice).
    fn push(&self, v: Value) {
        let text: Arc<str> = v.to_string().into();
        let mut inner = self.lock();
        inner.log.push(text.clone());
        let _ = self.tx.send(text);
    }

    pub fn state(&self) -> RunState {
        self.lock().state
    }

    /// The events so far, and a receiver of the ones after them.
    pub fn subscribe(&self) -> (Vec<Arc<str>>, broadcast::Receiver<Arc<str>>) {
        let inner = self.lock();
        (inner.log.clone(), self.tx.subscribe())
    }

    pub fn json(&self, with_events: bool) -> Value {
        let inner = self.lock();
        let mut v = json!({
            "run_id": self.id,
            "environment": self.environment,
            "action": self.action.as_str(),
            "actor": self.actor,
            "started_at": self.started_at,
            "status": inner.state,
            "error": inner.error,
            "events_url": format!("/api/v1/runs/{}/events", self.id),
        });
        if with_events {
            v["events"] = Value::Array(
                inner
                    .log
                    .iter()
                    .map(|t| serde_json::from_str(t).unwrap_or(Value::Null))
                    .collect(),
            );
        }
        v
    }

    fn finish(&self, ok: bool, error: Option<String>, result: Value) {
        self.push(json!({
            "kind": "run_finished",
            "status": if ok { "succeeded" } else { "failed" },
            "error": error,
            "result": result,
        }));
        let mut inner = self.lock();
        inner.state = if ok {
            RunState::Succeeded
        } else {
            RunState::Failed
        };
        inner.error = error;
    }
}

/// How many runs (with their events) the server keeps in memory.
pub const KEPT_RUNS: usize = 200;

/// The runs this server started, by id.
#[derive(Default)]
pub struct Runs {
    runs: Mutex<BTreeMap<String, Arc<Run>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Runs {
    pub fn get(&self, id: &str) -> Option<Arc<Run>> {
        self.runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// The newest runs on `env`, newest first.
    pub fn of(&self, env: &str, limit: usize) -> Vec<Arc<Run>> {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<Arc<Run>> = runs
            .values()
            .filter(|r| r.environment == env)
            .cloned()
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.started_at));
        v.truncate(limit);
        v
    }

    /// Start `action` on `env` on a thread of its own; the run's id is its history rows'.
    pub fn start(
        &self,
        env: Arc<ServeEnv>,
        action: ServeAction,
        request: ActionRequest,
        mut ctx: RunContext,
        load: Box<dyn FnOnce() -> Result<MigrationSet, String> + Send>,
        secrets: Vec<String>,
    ) -> Arc<Run> {
        ctx.run_id = crate::db::tracking::new_run_id();
        ctx.environment = Some(env.name.clone());
        let run = Run::new(ctx.run_id.clone(), &env.name, action, &ctx.actor);
        {
            let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            // Memory stays bounded: the oldest finished runs go (their rows stay in
            // migration_history).
            while runs.len() >= KEPT_RUNS {
                let oldest = runs
                    .values()
                    .filter(|r| r.state() != RunState::Running)
                    .min_by_key(|r| r.started_at)
                    .map(|r| r.id.clone());
                match oldest {
                    Some(id) => runs.remove(&id),
                    None => break,
                };
            }
            runs.insert(run.id.clone(), run.clone());
        }
        let r = run.clone();
        let handle = std::thread::spawn(move || {
            let mut forward = Forward {
                run: r.clone(),
                secrets,
            };
            let mut recorder = Recorder::new(&mut forward);
            let ended = execute(&env, action, &request, &ctx, load, &mut recorder);
            let facts = recorder.facts;
            if let Some(hook) = &env.notify {
                let (succeeded, message) = match &ended {
                    Ok(_) => (true, None),
                    Err((_, e)) => (false, Some(e.as_str())),
                };
                let status = match (succeeded, action) {
                    (true, ServeAction::DryRun) => "dry-run",
                    (true, _) => "success",
                    (false, _) => "failed",
                };
                let notice = Notice {
                    environment: &env.name,
                    status,
                    succeeded,
                    action: action.as_str(),
                    run_id: &ctx.run_id,
                    actor: &ctx.actor,
                    run_url: ctx.ci_run_url.as_deref(),
                    message,
                    facts: &facts,
                };
                let secrets = forward.secrets.clone();
                crate::notify::send(hook, &notice, &secrets, &mut forward);
            }
            forward.done(ended);
        });
        let mut threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        threads.retain(|t| !t.is_finished());
        threads.push(handle);
        run
    }

    /// Wait for every run still going (at shutdown: they stop at their next safe point).
    pub fn join_all(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// What a run ended with: its report as JSON, and the error when it failed.
type Ended = Result<Value, (Value, String)>;

fn execute(
    env: &ServeEnv,
    action: ServeAction,
    request: &ActionRequest,
    ctx: &RunContext,
    load: Box<dyn FnOnce() -> Result<MigrationSet, String> + Send>,
    reporter: &mut dyn Reporter,
) -> Ended {
    let Some(target) = &env.target else {
        let why = env
            .skipped
            .clone()
            .unwrap_or_else(|| "no database URL".into());
        return Err((Value::Null, why));
    };
    let set = load().map_err(|e| (Value::Null, e))?;
    match action {
        ServeAction::DryRun | ServeAction::Apply => {
            let mut opts = env.opts.clone();
            opts.dry_run = action == ServeAction::DryRun;
            engine::apply(target, &set, &opts, ctx, reporter)
                .map(|r| value(&r))
                .map_err(|ApplyFailure { report, error }| (value(&report), error.to_string()))
        }
        ServeAction::Rollback => {
            let target_spec = match (&request.to, request.steps) {
                (Some(v), None) => match crate::migration::Version::parse(v) {
                    Some(v) => RollbackTarget::To(v),
                    None => {
                        return Err((
                            Value::Null,
                            format!("`to`: `{v}` is not a migration version"),
                        ))
                    }
                },
                (None, n) => RollbackTarget::Steps(n.unwrap_or(1)),
                (Some(_), Some(_)) => {
                    return Err((Value::Null, "give `steps` or `to`, not both".into()))
                }
            };
            let opts = RollbackOptions {
                run: env.opts.clone(),
                target: target_spec,
                dry_run: false,
                allow_generated: false,
                use_file_down: false,
            };
            rollback::rollback(target, &set, &opts, ctx, reporter)
                .map(|r| value(&r))
                .map_err(|rollback::RollbackFailure { report, error }| {
                    (value(&report), error.to_string())
                })
        }
    }
}

/// A run's report as JSON.
fn value<T: serde::Serialize>(report: &T) -> Value {
    serde_json::to_value(report).unwrap_or_default()
}

/// The run's reporter: every event as JSON into the run's log and broadcast, with the
/// secrets the run learns masked.
struct Forward {
    run: Arc<Run>,
    secrets: Vec<String>,
}

impl Forward {
    /// The run is over: its report (what was done, also on failure) and error, masked.
    fn done(&self, ended: Ended) {
        match ended {
            Ok(v) => self.run.finish(true, None, v),
            Err((v, e)) => self.run.finish(false, Some(redact(&e, &self.secrets)), v),
        }
    }
}

impl Reporter for Forward {
    fn event(&mut self, event: &Event<'_>) {
        if let Event::Secret { value } = event {
            self.secrets.push(value.to_string());
            return;
        }
        if let Some(v) = event_json(event) {
            let text = redact(&v.to_string(), &self.secrets);
            if let Ok(v) = serde_json::from_str(&text) {
                self.run.push(v);
            }
        }
    }
}

/// The JSON form of the events a watcher of a run cares about (`kind` names the event);
/// None for the rest.
pub fn event_json(event: &Event<'_>) -> Option<Value> {
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    Some(match event {
        Event::Connecting { target } => json!({"kind": "connecting", "target": target}),
        Event::Connected { server_version, .. } => {
            json!({"kind": "connected", "server_version": server_version})
        }
        Event::LockWaiting { waited, holder } => json!({
            "kind": "lock_waiting",
            "waited_ms": ms(*waited),
            "holder": holder.map(|h| h.to_string()),
        }),
        Event::LockAcquired { waited } => {
            json!({"kind": "lock_acquired", "waited_ms": ms(*waited)})
        }
        Event::UpToDate { applied } => json!({"kind": "up_to_date", "applied": applied}),
        Event::PlanReady {
            direction,
            migrations,
            dry_run,
        } => json!({
            "kind": "plan",
            "direction": direction,
            "dry_run": dry_run,
            "migrations": migrations.iter().map(|(v, n)| json!({"version": v, "name": n})).collect::<Vec<_>>(),
        }),
        Event::SectionStarted {
            direction,
            version,
            name,
            mode,
            ..
        } => {
            json!({"kind": "section_started", "direction": direction, "version": version, "name": name, "mode": mode})
        }
        Event::SectionFinished {
            direction,
            version,
            name,
            mode,
            duration,
        } => {
            json!({"kind": "section_finished", "direction": direction, "version": version, "name": name, "mode": mode, "duration_ms": ms(*duration)})
        }
        Event::SectionNotRehearsed {
            direction,
            version,
            name,
            reason,
        } => {
            json!({"kind": "section_not_rehearsed", "direction": direction, "version": version, "name": name, "reason": reason})
        }
        Event::SectionFailed {
            direction,
            version,
            name,
            location,
            message,
        } => {
            json!({"kind": "section_failed", "direction": direction, "version": version, "name": name,
                    "location": location.map(|l| l.to_string()), "message": message})
        }
        Event::LockTimeoutRetry {
            version,
            attempt,
            max,
            message,
            ..
        } => {
            json!({"kind": "lock_timeout_retry", "version": version, "attempt": attempt, "max": max, "message": message})
        }
        Event::ServerNotice {
            version,
            severity,
            message,
        } => {
            json!({"kind": "notice", "version": version, "severity": severity, "message": message})
        }
        Event::Diagnostic {
            level,
            location,
            message,
        } => {
            json!({"kind": "diagnostic", "level": level, "location": location.map(|l| l.to_string()), "message": message})
        }
        Event::Info { message } => json!({"kind": "info", "message": message}),
        _ => return None,
    })
}
