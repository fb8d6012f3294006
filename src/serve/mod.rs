//! `pgrollout serve`: a dashboard and a JSON API over the pipeline file's environments.
//!
//! axum on a Tokio runtime of its own, started only by this command. Handlers never
//! block the runtime: reading an environment happens on the blocking pool, and a run
//! (dry-run, apply, rollback) on a thread of its own through the engine — so it takes
//! the same migration lock, runs the same executor and writes the same audit rows as the
//! CLI, with the token's name as the actor. Every route but `/healthz` needs a token;
//! every text from a database or a file name is escaped in the pages.

pub mod auth;
mod pages;
pub mod runs;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::config::ServeAction;
use crate::db::tracking::RunContext;
use crate::db::Target;
use crate::engine::RunOptions;
use crate::environments::{self, EnvReport, Environment, OverviewOptions};
use crate::migration::{LayoutOptions, MigrationSet};
use crate::report::{redact, Event, Reporter, Silent};

pub use auth::Token;
use runs::{ActionRequest, Runs};

/// The JSON API's version (`/api/v1/`); its responses are documented in docs/serve.md.
pub const API_VERSION: u32 = 1;

/// History rows (and runs, backup markers) read for an environment's page and API.
const HISTORY_ROWS: i64 = 200;

/// Request bodies larger than this are refused (413): an action's body is a few fields.
pub const MAX_BODY: usize = 16 * 1024;

/// One environment the server shows, with what it may do there.
#[derive(Debug, Clone)]
pub struct ServeEnv {
    pub name: String,
    pub target: Option<Target>,
    /// Why there is no target (its URL variable is not set…).
    pub skipped: Option<String>,
    /// `serve.actions` of the pipeline file.
    pub actions: Vec<ServeAction>,
    /// The phrase a request must carry (`on.dispatch.confirm`), when there is one.
    pub confirm: Option<String>,
    /// The environment's merged run settings.
    pub opts: RunOptions,
    /// Where the outcome of a run is sent (`notify:`), when it is set up.
    pub notify: Option<crate::notify::Webhook>,
    /// The environment's lint rule choices (`lint_disable`, `lint_severity`).
    pub lint: crate::lint::LintOptions,
}

/// Everything `serve` needs, merged by the CLI.
pub struct Setup {
    pub listen: SocketAddr,
    pub read_only: bool,
    pub tokens: Vec<Token>,
    pub envs: Vec<ServeEnv>,
    pub migrations_dir: PathBuf,
    pub layout: LayoutOptions,
    pub schema: String,
    /// git sha/ref and CI URL for the history rows (actor and run id are set per run).
    pub run_base: RunContext,
    /// Passwords known up front: never in a page, a response or the log.
    pub secrets: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Refused(String),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the server's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("serving HTTP: {0}")]
    Io(std::io::Error),
}

/// Whether serving without tokens is allowed: only read-only, and only on loopback.
pub fn check_open(listen: &SocketAddr, read_only: bool, tokens: &[Token]) -> Result<(), String> {
    if !tokens.is_empty() {
        return Ok(());
    }
    if read_only && listen.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "no tokens: set {}=NAME:TOKEN[,NAME:TOKEN…] (make a token with `openssl rand -hex 32`); \
         only `--read-only` on a loopback --listen address (e.g. 127.0.0.1:8080) runs without one",
        auth::TOKENS_ENV
    ))
}

struct App {
    setup: Setup,
    envs: Vec<Arc<ServeEnv>>,
    runs: Runs,
    form_key: [u8; 32],
}

/// Who a request is.
#[derive(Debug, Clone)]
enum Caller {
    /// A token's holder (by header, or the dashboard's login cookie).
    Token { name: String },
    /// No tokens are configured (read-only on loopback).
    Anonymous,
}

impl Caller {
    fn name(&self) -> &str {
        match self {
            Caller::Token { name, .. } => name,
            Caller::Anonymous => "anonymous",
        }
    }
}

type Shared = Arc<App>;

impl App {
    fn caller(&self, headers: &HeaderMap, allow_cookie: bool) -> Option<Caller> {
        if self.setup.tokens.is_empty() {
            return Some(Caller::Anonymous);
        }
        let text = |h| headers.get(h).and_then(|v| v.to_str().ok());
        if let Some(t) = text(header::AUTHORIZATION).and_then(auth::bearer) {
            return auth::check(&self.setup.tokens, t).map(|t| Caller::Token {
                name: t.name.clone(),
            });
        }
        if allow_cookie {
            if let Some(t) = text(header::COOKIE).and_then(|c| auth::cookie(c, auth::COOKIE)) {
                return auth::check(&self.setup.tokens, t).map(|t| Caller::Token {
                    name: t.name.clone(),
                });
            }
        }
        None
    }

    fn env(&self, name: &str) -> Option<Arc<ServeEnv>> {
        self.envs.iter().find(|e| e.name == name).cloned()
    }

    fn load(&self) -> Result<MigrationSet, String> {
        load(&self.setup.migrations_dir, &self.setup.layout)
    }

    fn redact(&self, text: &str) -> String {
        redact(text, &self.setup.secrets)
    }

    /// Read environments (on the blocking pool: the engine's sessions block).
    async fn read(
        self: &Arc<Self>,
        only: Option<String>,
        history: i64,
    ) -> Result<Vec<EnvReport>, String> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || {
            let set = app.load()?;
            let list: Vec<Environment> = app
                .envs
                .iter()
                .filter(|e| only.as_deref().is_none_or(|n| n == e.name))
                .map(|e| Environment {
                    name: e.name.clone(),
                    target: e.target.clone(),
                    skipped: e.skipped.clone(),
                })
                .collect();
            let opts = OverviewOptions {
                schema: app.setup.schema.clone(),
                connect_retry: Duration::from_secs(3),
                history_limit: history,
                slowest: 5,
            };
            let dir = app.setup.migrations_dir.display().to_string();
            Ok(environments::gather(&set, &dir, &list, &opts, &mut Silent).environments)
        })
        .await
        .map_err(|e| format!("reading the environments: {e}"))?
    }
}

impl App {
    /// Lint findings of the migrations `report` shows as pending (from the files, without
    /// the live table sizes `pgrollout lint` adds).
    async fn lint_pending(
        self: &Arc<Self>,
        env: &Arc<ServeEnv>,
        report: &EnvReport,
    ) -> Vec<crate::lint::Finding> {
        let pending: Vec<String> = report
            .migrations
            .iter()
            .filter(|m| {
                matches!(
                    m.state,
                    crate::plan::State::Pending | crate::plan::State::Failed
                )
            })
            .map(|m| m.version.clone())
            .collect();
        if pending.is_empty() {
            return Vec::new();
        }
        let (app, env) = (self.clone(), env.clone());
        tokio::task::spawn_blocking(move || {
            let Ok(set) = app.load() else {
                return Vec::new();
            };
            set.migrations
                .iter()
                .filter(|m| pending.contains(&m.version.text))
                .flat_map(|m| crate::lint::lint_migration(m, &env.lint))
                .collect()
        })
        .await
        .unwrap_or_default()
    }
}

fn load(dir: &std::path::Path, layout: &LayoutOptions) -> Result<MigrationSet, String> {
    MigrationSet::load_in(dir, layout, true).map_err(|errors| {
        format!(
            "{} problem(s) reading the migration files in {}: {}",
            errors.len(),
            dir.display(),
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })
}

/// Serve until Ctrl-C/SIGTERM (the process's cancel signal); then stop taking requests,
/// let running migrations finish or fail cleanly at their next safe point, and return.
pub fn serve(setup: Setup, reporter: &mut dyn Reporter) -> Result<(), ServeError> {
    check_open(&setup.listen, setup.read_only, &setup.tokens).map_err(ServeError::Refused)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(setup.listen))
        .map_err(|source| ServeError::Bind {
            addr: setup.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServeError::Io)?;
    let envs = setup.envs.iter().cloned().map(Arc::new).collect();
    let app = Arc::new(App {
        setup,
        envs,
        runs: Runs::default(),
        form_key: rand::random(),
    });
    reporter.event(&Event::Info {
        message: &format!(
            "serving the dashboard on http://{addr}/ ({} environment(s){}{}); Ctrl-C stops",
            app.envs.len(),
            if app.setup.read_only {
                ", read-only"
            } else {
                ""
            },
            if app.setup.tokens.is_empty() {
                ", no token needed"
            } else {
                ""
            }
        ),
    });
    if !addr.ip().is_loopback() {
        reporter.event(&Event::Diagnostic {
            level: crate::report::Level::Warning,
            location: None,
            message: "listening beyond loopback over plain HTTP: tokens and the sign-in cookie travel in clear; \
                      put the server behind a TLS reverse proxy (docs/serve.md)",
        });
    }
    let router = router(app.clone());
    let mut cancel = crate::cancel_receiver();
    let result = rt.block_on(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                if !crate::cancelled() {
                    let _ = cancel.changed().await;
                }
            })
            .await
    });
    reporter.event(&Event::Info {
        message: "stopping: no new requests; waiting for running migrations to finish",
    });
    app.runs.join_all();
    // Streams still open end with the runtime.
    drop(rt);
    result.map_err(ServeError::Io)
}

fn router(app: Shared) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/assets/live.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], pages::LIVE_JS) }),
        )
        .route("/", get(overview_page))
        .route("/login", get(login_page).post(login))
        .route("/environments/{name}", get(env_page))
        .route("/environments/{name}/actions", post(form_action))
        .route(
            "/environments/{name}/migrations/{version}",
            get(migration_page),
        )
        .route("/api/v1/environments", get(api_envs))
        .route("/api/v1/environments/{name}", get(api_env))
        .route("/api/v1/environments/{name}/{action}", post(api_action))
        .route("/api/v1/runs/{id}", get(api_run))
        .route("/api/v1/runs/{id}/events", get(run_events))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

/// No framing by other sites, no sniffing, no caching of pages with database state.
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, header::HeaderValue::from_static(v));
    };
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::CACHE_CONTROL, "no-store");
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    r
}

fn api_error(status: StatusCode, message: &str) -> Response {
    let mut r = (status, Json(json!({ "error": message }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"pgrollout\""),
        );
    }
    r
}

fn unauthorized_api() -> Response {
    api_error(
        StatusCode::UNAUTHORIZED,
        "missing or unknown token: send `Authorization: Bearer TOKEN` with a token of PGROLLOUT_SERVE_TOKENS",
    )
}

fn page_error(status: StatusCode, message: &str) -> Response {
    (status, Html(pages::error_page(message))).into_response()
}

fn no_env_page(name: &str) -> Response {
    page_error(
        StatusCode::NOT_FOUND,
        &format!("no environment named `{name}`"),
    )
}

fn unauthorized_page() -> Response {
    (StatusCode::UNAUTHORIZED, Html(pages::login(None))).into_response()
}

// ---------------------------------------------------------------------------------------
// Pages.

async fn overview_page(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if app.caller(&headers, true).is_none() {
        return unauthorized_page();
    }
    match app.read(None, 5).await {
        Ok(reports) => Html(app.redact(&pages::overview(&app, &reports))).into_response(),
        Err(e) => page_error(StatusCode::INTERNAL_SERVER_ERROR, &app.redact(&e)),
    }
}

#[derive(serde::Deserialize)]
struct EnvQuery {
    /// A run of this server to watch live.
    run: Option<String>,
    #[serde(flatten)]
    filter: HistoryFilter,
}

/// History filters of an environment's page and API: rows whose field equals each
/// given value (`batch` is the run id).
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct HistoryFilter {
    pub action: Option<String>,
    pub status: Option<String>,
    pub actor: Option<String>,
    pub batch: Option<String>,
}

impl HistoryFilter {
    fn apply(&self, history: &mut Vec<crate::report::environments::HistoryRow>) {
        let keep = |want: &Option<String>, have: &str| {
            want.as_deref()
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .is_none_or(|w| w == have)
        };
        history.retain(|h| {
            keep(&self.action, &h.action)
                && keep(&self.status, &h.status)
                && keep(&self.actor, &h.actor)
                && keep(&self.batch, &h.run_id)
        });
    }
}

async fn env_page(
    State(app): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<EnvQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(caller) = app.caller(&headers, true) else {
        return unauthorized_page();
    };
    let Some(env) = app.env(&name) else {
        return no_env_page(&name);
    };
    match app.read(Some(name), HISTORY_ROWS).await {
        Ok(mut reports) if !reports.is_empty() => {
            let mut report = reports.remove(0);
            q.filter.apply(&mut report.history);
            let form = auth::form_token(&app.form_key, caller.name());
            let runs = app.runs.of(&env.name, 10);
            let watch = q.run.and_then(|id| app.runs.get(&id));
            let findings = app.lint_pending(&env, &report).await;
            let page = pages::environment(
                &app,
                &pages::EnvPage {
                    env: &env,
                    report: &report,
                    runs: &runs,
                    watch: watch.as_deref(),
                    form_token: &form,
                    filter: &q.filter,
                    findings: &findings,
                },
            );
            Html(app.redact(&page)).into_response()
        }
        Ok(_) => page_error(StatusCode::NOT_FOUND, "no such environment"),
        Err(e) => page_error(StatusCode::INTERNAL_SERVER_ERROR, &app.redact(&e)),
    }
}

/// One migration in one environment: its SQL (the file's up and down, the down stored
/// when it was applied) and its history.
pub(crate) struct MigrationView {
    pub env: String,
    pub version: String,
    pub name: String,
    pub path: Option<String>,
    pub up: Option<String>,
    pub file_down: Option<String>,
    /// None: not applied here (or the environment could not be read).
    pub stored_down: Option<Option<String>>,
    pub state: Option<crate::plan::State>,
    pub history: Vec<crate::report::environments::HistoryRow>,
    pub problem: Option<String>,
}

impl App {
    fn migration(&self, env: &ServeEnv, version: &str) -> Result<MigrationView, String> {
        let set = self.load()?;
        let v = crate::migration::Version::parse(version)
            .ok_or_else(|| format!("`{version}` is not a migration version"))?;
        let file = set.get(&v);
        let mut view = MigrationView {
            env: env.name.clone(),
            version: file.map_or(v.text.clone(), |m| m.version.text.clone()),
            name: file.map(|m| m.name.clone()).unwrap_or_default(),
            path: file.map(|m| m.path.display().to_string()),
            up: file.map(|m| m.source[m.up.range.clone()].to_string()),
            file_down: file.and_then(|m| m.down_text().map(str::to_string)),
            stored_down: None,
            state: None,
            history: Vec::new(),
            problem: None,
        };
        let Some(target) = &env.target else {
            view.problem = env.skipped.clone();
            return Ok(view);
        };
        let mut read = || -> Result<(), String> {
            let schema = &self.setup.schema;
            let mut s = crate::engine::connect(target, schema, Duration::from_secs(3), &mut Silent)
                .map_err(|e| e.to_string())?;
            let state = s.tracking.read(&mut s.db).map_err(|e| e.to_string())?;
            let entries = crate::plan::status(&set, &state.rows);
            let entry = entries.iter().find(|e| {
                crate::migration::Version::parse(&e.version).is_some_and(|x| x.value == v.value)
            });
            view.state = entry.map(|e| e.state);
            if let Some(e) = entry.filter(|e| e.applied.is_some()) {
                view.name = e.name.clone();
                let stored = s
                    .tracking
                    .stored_downs(&mut s.db)
                    .map_err(|e| e.to_string())?;
                view.stored_down = Some(
                    stored
                        .into_iter()
                        .find(|d| d.version == e.version)
                        .and_then(|d| d.sql),
                );
            }
            view.history = crate::db::history::recent_history(&mut s.db, schema, HISTORY_ROWS)
                .map_err(|e| crate::db::conn::error_text(&e))?
                .into_iter()
                .filter(|h| {
                    h.version
                        .as_deref()
                        .and_then(crate::migration::Version::parse)
                        .is_some_and(|x| x.value == v.value)
                })
                .collect();
            Ok(())
        };
        if let Err(e) = read() {
            view.problem = Some(e);
        }
        if view.path.is_none() && view.state.is_none() {
            return Err(format!(
                "no migration {version} in the files or in environment `{}`",
                env.name
            ));
        }
        Ok(view)
    }
}

async fn migration_page(
    State(app): State<Shared>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if app.caller(&headers, true).is_none() {
        return unauthorized_page();
    }
    let Some(env) = app.env(&name) else {
        return no_env_page(&name);
    };
    let a = app.clone();
    let view = tokio::task::spawn_blocking(move || a.migration(&env, &version)).await;
    match view {
        Ok(Ok(v)) => Html(app.redact(&pages::migration(&v))).into_response(),
        Ok(Err(e)) => page_error(StatusCode::NOT_FOUND, &app.redact(&e)),
        Err(e) => page_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn login_page() -> Response {
    Html(pages::login(None)).into_response()
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

/// The dashboard's sign-in: a valid token becomes an HttpOnly, SameSite=Strict cookie.
async fn login(State(app): State<Shared>, axum::Form(f): axum::Form<LoginForm>) -> Response {
    if auth::check(&app.setup.tokens, f.token.trim()).is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            Html(pages::login(Some("unknown token"))),
        )
            .into_response();
    }
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict",
        auth::COOKIE,
        f.token.trim()
    );
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = header::HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(serde::Deserialize)]
struct ActionForm {
    action: String,
    form_token: String,
    #[serde(default)]
    confirm: Option<String>,
    #[serde(default)]
    steps: Option<String>,
}

/// A button of the environment page: signed in by cookie, guarded by the form token.
async fn form_action(
    State(app): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<ActionForm>,
) -> Response {
    let Some(caller) = app.caller(&headers, true) else {
        return unauthorized_page();
    };
    if !auth::same(
        &f.form_token,
        &auth::form_token(&app.form_key, caller.name()),
    ) {
        return page_error(
            StatusCode::FORBIDDEN,
            "the form is stale or from another site: reload the page",
        );
    }
    let steps = match f.steps.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => match s.parse() {
            Ok(n) => Some(n),
            Err(_) => return page_error(StatusCode::BAD_REQUEST, "steps must be a number"),
        },
        None => None,
    };
    let request = ActionRequest {
        confirm: f.confirm.filter(|c| !c.is_empty()),
        steps,
        to: None,
    };
    match start(&app, &caller, &name, &f.action, request) {
        Ok(run) => Redirect::to(&format!(
            "/environments/{}?run={}",
            pages::url_part(&name),
            run.id
        ))
        .into_response(),
        Err((status, msg)) => (status, Html(pages::error_page(&msg))).into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// The JSON API.

fn env_json(app: &App, e: &EnvReport, full: bool) -> Value {
    let env = app.env(&e.name);
    let mut v = json!({
        "name": e.name,
        "reach": e.reach,
        "reason": e.reason,
        "target": e.target,
        "server_version": e.server_version,
        "health": e.health,
        "counts": e.counts,
        "last_run": e.history.first(),
        "last_backup": e.backups.first(),
        "actions": env.as_ref().map(|x| x.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>()).unwrap_or_default(),
        "confirm_required": env.as_ref().is_some_and(|x| x.confirm.is_some()),
    });
    if full {
        v["migrations"] = json!(e.migrations);
        v["slowest"] = json!(e.slowest);
        v["history"] = json!(e.history);
        v["backups"] = json!(e.backups);
        v["batches"] = json!(e.runs);
        v["last_failure"] = json!(pages::last_failure(e));
        v["runs"] = Value::Array(
            app.runs
                .of(&e.name, 10)
                .iter()
                .map(|r| r.json(false))
                .collect(),
        );
    }
    v
}

fn redacted_json(app: &App, v: Value) -> Response {
    let text = app.redact(&v.to_string());
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

async fn api_envs(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if app.caller(&headers, true).is_none() {
        return unauthorized_api();
    }
    match app.read(None, 1).await {
        Ok(reports) => redacted_json(
            &app,
            json!({
                "api_version": API_VERSION,
                "environments": reports.iter().map(|e| env_json(&app, e, false)).collect::<Vec<_>>(),
            }),
        ),
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, &app.redact(&e)),
    }
}

async fn api_env(
    State(app): State<Shared>,
    Path(name): Path<String>,
    Query(filter): Query<HistoryFilter>,
    headers: HeaderMap,
) -> Response {
    if app.caller(&headers, true).is_none() {
        return unauthorized_api();
    }
    if app.env(&name).is_none() {
        return api_error(
            StatusCode::NOT_FOUND,
            &format!("no environment named `{name}`"),
        );
    }
    match app.read(Some(name), HISTORY_ROWS).await {
        Ok(mut reports) => match reports.first_mut() {
            Some(e) => {
                filter.apply(&mut e.history);
                let env = app.env(&e.name).expect("checked above");
                let findings = app.lint_pending(&env, e).await;
                let mut v = env_json(&app, e, true);
                v["lint"] = json!(findings);
                v["api_version"] = json!(API_VERSION);
                redacted_json(&app, v)
            }
            None => api_error(StatusCode::NOT_FOUND, "no such environment"),
        },
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, &app.redact(&e)),
    }
}

/// `POST /api/v1/environments/{name}/{dry-run|apply|rollback}`: only with a token in
/// the `Authorization` header (never the cookie: a header is what no other site's page
/// can make a browser send).
async fn api_action(
    State(app): State<Shared>,
    Path((name, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(caller) = app.caller(&headers, false) else {
        return unauthorized_api();
    };
    let request: ActionRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ActionRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    &format!("the body is not {{\"confirm\": \"…\", \"steps\": N}}: {e}"),
                )
            }
        }
    };
    match start(&app, &caller, &name, &action, request) {
        Ok(run) => {
            let mut v = run.json(false);
            v["status_url"] = json!(format!("/api/v1/runs/{}", run.id));
            (StatusCode::ACCEPTED, Json(v)).into_response()
        }
        Err((status, msg)) => api_error(status, &msg),
    }
}

/// The checks every action passes, then the run.
fn start(
    app: &Shared,
    caller: &Caller,
    name: &str,
    action: &str,
    request: ActionRequest,
) -> Result<Arc<runs::Run>, (StatusCode, String)> {
    let Some(env) = app.env(name) else {
        return Err((
            StatusCode::NOT_FOUND,
            format!("no environment named `{name}`"),
        ));
    };
    let action = match action {
        "dry-run" => ServeAction::DryRun,
        "apply" => ServeAction::Apply,
        "rollback" => ServeAction::Rollback,
        other => {
            return Err((
                StatusCode::NOT_FOUND,
                format!("unknown action `{other}`: use dry-run, apply or rollback"),
            ))
        }
    };
    if app.setup.read_only {
        return Err((
            StatusCode::FORBIDDEN,
            "the server runs with --read-only: no actions".into(),
        ));
    }
    if let Caller::Anonymous = caller {
        return Err((StatusCode::FORBIDDEN, "actions need a token".into()));
    }
    if !env.actions.contains(&action) {
        return Err((
            StatusCode::FORBIDDEN,
            format!(
                "environment `{name}` does not allow `{}` from the server: list it in pgrollout.yml \
                 under environments.{name}.serve.actions",
                action.as_str()
            ),
        ));
    }
    if let Some(phrase) = &env.confirm {
        let given = request.confirm.as_deref().unwrap_or("");
        if !auth::same(given, phrase) {
            return Err((
                StatusCode::FORBIDDEN,
                format!(
                    "environment `{name}` needs its confirmation phrase (on.dispatch.confirm) in `confirm`, typed exactly; {}",
                    if given.is_empty() { "none was given" } else { "the one given is not it" }
                ),
            ));
        }
    }
    if action == ServeAction::Rollback && request.steps == Some(0) {
        return Err((StatusCode::BAD_REQUEST, "`steps` must be at least 1".into()));
    }
    let mut ctx = app.setup.run_base.clone();
    ctx.actor = caller.name().to_string();
    let (dir, layout) = (app.setup.migrations_dir.clone(), app.setup.layout.clone());
    Ok(app.runs.start(
        env,
        action,
        request,
        ctx,
        Box::new(move || load(&dir, &layout)),
        app.setup.secrets.clone(),
    ))
}

async fn api_run(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if app.caller(&headers, true).is_none() {
        return unauthorized_api();
    }
    match app.runs.get(&id) {
        Some(run) => redacted_json(&app, run.json(true)),
        None => api_error(
            StatusCode::NOT_FOUND,
            &format!("no run `{id}` started by this server"),
        ),
    }
}

/// Server-Sent Events: every event of the run so far, then each as it happens; the
/// stream ends after `run_finished`.
async fn run_events(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if app.caller(&headers, true).is_none() {
        return unauthorized_api();
    }
    let Some(run) = app.runs.get(&id) else {
        return api_error(
            StatusCode::NOT_FOUND,
            &format!("no run `{id}` started by this server"),
        );
    };
    let (past, rx) = run.subscribe();
    let finished = |t: &str| t.contains("\"kind\":\"run_finished\"");
    let done = past.iter().any(|t| finished(t));
    let past = futures_util::stream::iter(past);
    let live = futures_util::stream::unfold((rx, done), move |(mut rx, done)| async move {
        if done {
            return None;
        }
        loop {
            match rx.recv().await {
                Ok(t) => {
                    let end = finished(&t);
                    return Some((t, (rx, end)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    });
    use futures_util::StreamExt;
    let stream = past
        .chain(live)
        .map(|t| Ok::<_, std::convert::Infallible>(SseEvent::default().data(t.as_ref())));
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
