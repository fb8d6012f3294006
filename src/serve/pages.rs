//! The dashboard's pages: server-rendered HTML in the HTML report's look, working
//! without JavaScript; one small script (served from this server) streams a run's
//! events into the page. Every text from a database or a file goes through `esc`.

use std::fmt::Write;

use crate::plan::State;
use crate::render::html::{self, badge, esc, CSS};
use crate::report::environments::{EnvReport, Reach};

use super::runs::{Run, RunState};
use super::{App, ServeEnv};

const EXTRA_CSS: &str = "a{color:var(--info)}a.cardlink{color:inherit;text-decoration:none;display:block}\
a.cardlink:hover .card{border-color:var(--info)}nav{margin-bottom:10px;font-size:14px}\
form.actions{display:flex;flex-wrap:wrap;gap:8px;align-items:center;background:#fff;border:1px solid var(--line);border-radius:10px;padding:12px 14px}\
form.actions input,form.actions select,form.actions button{font:inherit;padding:4px 8px}\
.failure{background:var(--errbg);border:1px solid #ffcecb;border-radius:10px;padding:10px 14px;white-space:pre-wrap}\
#live ol{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;background:#fff;border:1px solid var(--line);border-radius:10px;padding:10px 10px 10px 40px}";

/// The script of the environment page's live run panel: Server-Sent Events in, text
/// nodes out (never HTML: event texts come from the database).
pub const LIVE_JS: &str = r#"(function(){
var box=document.getElementById('live');if(!box||!window.EventSource)return;
var list=box.querySelector('ol'),state=box.querySelector('.runstate');
function say(e){switch(e.kind){
case 'plan':return (e.dry_run?'will rehearse ':'will run ')+e.direction+': '+e.migrations.map(function(m){return m.version+' '+m.name}).join(', ');
case 'section_started':return e.direction+' '+e.version+' '+e.name+' …';
case 'section_finished':return (e.mode==='rehearsal'?'rehearsed ':(e.direction==='up'?'applied ':'rolled back '))+e.version+' '+e.name+' ('+e.duration_ms+' ms)';
case 'section_failed':return 'FAILED '+e.version+' '+e.name+(e.location?' at '+e.location:'')+': '+e.message;
case 'lock_waiting':return 'waiting for the migration lock'+(e.holder?' held by '+e.holder:'');
case 'lock_acquired':return 'migration lock taken';
case 'up_to_date':return 'nothing to do: up to date';
case 'run_finished':return 'run '+e.status+(e.error?': '+e.error:'');
default:return e.message?e.kind+': '+e.message:e.kind;}}
var es=new EventSource(box.getAttribute('data-events'));
es.onmessage=function(m){var e;try{e=JSON.parse(m.data)}catch(_){return}
var li=document.createElement('li');li.textContent=say(e);li.setAttribute('data-kind',e.kind);
if(e.version)li.setAttribute('data-version',e.version);list.appendChild(li);
if(e.kind==='run_finished'){es.close();state.textContent=e.status;
state.className='badge runstate s-'+(e.status==='succeeded'?'ok':'failed');box.setAttribute('data-state',e.status);}};
es.onerror=function(){if(box.getAttribute('data-state')==='running'){state.textContent='connection lost: reload';}es.close();};
})();
"#;

fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title><style>{CSS}{EXTRA_CSS}</style></head><body><main>",
        t = esc(title)
    )
}

const FOOT: &str = "<footer>pgrollout serve · API: <a href=\"/api/v1/environments\">/api/v1/environments</a></footer></main></body></html>\n";

/// A path segment for a URL (environment names are YAML keys: anything goes).
pub fn url_part(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub fn error_page(message: &str) -> String {
    format!(
        "{}<nav><a href=\"/\">← Overview</a></nav><h1>Error</h1><p class=\"failure\">{}</p>{FOOT}",
        head("pgrollout: error"),
        esc(message)
    )
}

pub fn login(problem: Option<&str>) -> String {
    format!(
        "{}<h1>pgrollout</h1><p>Sign in with a token of <code>PGROLLOUT_SERVE_TOKENS</code> \
         (scripts send it as <code>Authorization: Bearer TOKEN</code> instead).</p>{}\
         <form class=\"actions\" method=\"post\" action=\"/login\"><label>Token \
         <input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\">Sign in</button></form>{FOOT}",
        head("pgrollout: sign in"),
        problem
            .map(|p| format!("<p class=\"err\">{}</p>", esc(p)))
            .unwrap_or_default()
    )
}

/// The last failure in an environment: a failed migration's recorded error, else the
/// newest failed history row's.
pub fn last_failure(e: &EnvReport) -> Option<serde_json::Value> {
    if let Some(m) = e
        .migrations
        .iter()
        .find(|m| m.state == State::Failed && m.error.is_some())
    {
        return Some(serde_json::json!({"version": m.version, "name": m.name, "error": m.error}));
    }
    e.history
        .iter()
        .find(|h| h.status == "failed" && h.error.is_some())
        .map(|h| serde_json::json!({"version": h.version, "name": h.name, "error": h.error, "at": h.started_at}))
}

pub fn overview(app: &App, reports: &[EnvReport]) -> String {
    let mut h = head("pgrollout dashboard");
    let _ = write!(
        h,
        "<h1>Migrations</h1><div class=\"meta\">pgrollout {} · migrations from <code>{}</code>{}</div>\
         <h2>Environments</h2><div class=\"cards\" id=\"environments\">",
        esc(env!("CARGO_PKG_VERSION")),
        esc(&app.setup.migrations_dir.display().to_string()),
        if app.setup.read_only { " · read-only" } else { "" }
    );
    for e in reports {
        let mut card = String::new();
        html::card(&mut card, e);
        let last = e
            .history
            .first()
            .map(|r| {
                format!(
                    "<div class=\"small\">Last run: {} {} by {} · {}</div>",
                    esc(&r.action),
                    badge(&r.status, &r.status),
                    esc(&r.actor),
                    esc(&r.started_at.format("%Y-%m-%d %H:%M UTC").to_string())
                )
            })
            .unwrap_or_default();
        // The run line goes inside the card, before its closing tag.
        if let Some(end) = card.rfind("</div>") {
            card.insert_str(end, &last);
        }
        let _ = write!(
            h,
            "<a class=\"cardlink\" href=\"/environments/{}\">{card}</a>",
            url_part(&e.name)
        );
    }
    h.push_str("</div>");
    h.push_str(FOOT);
    h
}

fn run_state(s: RunState) -> String {
    match s {
        RunState::Running => badge("running", "running"),
        RunState::Succeeded => badge("ok", "succeeded"),
        RunState::Failed => badge("failed", "failed"),
    }
}

/// What an environment's page shows.
pub struct EnvPage<'a> {
    pub env: &'a ServeEnv,
    pub report: &'a EnvReport,
    /// The runs this server started there, newest first.
    pub runs: &'a [std::sync::Arc<Run>],
    /// The run to stream live, if any.
    pub watch: Option<&'a Run>,
    pub form_token: &'a str,
    pub filter: &'a super::HistoryFilter,
    pub findings: &'a [crate::lint::Finding],
}

pub fn environment(app: &App, p: &EnvPage) -> String {
    let EnvPage {
        env,
        report: e,
        runs,
        watch,
        form_token,
        filter,
        findings,
    } = *p;
    let mut h = head(&format!("pgrollout: {}", e.name));
    let _ = write!(
        h,
        "<nav><a href=\"/\">← Overview</a></nav><h1 data-env=\"{n}\">{n}</h1><div class=\"meta\">{}</div>",
        esc(e.target.as_deref().unwrap_or_default()),
        n = esc(&e.name),
    );
    if e.reach != Reach::Ok {
        let _ = write!(
            h,
            "<p class=\"failure\">{}</p>",
            esc(e.reason.as_deref().unwrap_or("not read"))
        );
    }
    if let Some(f) = last_failure(e) {
        let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
        let _ = write!(
            h,
            "<h2>Last failure</h2><div class=\"failure\" id=\"last-failure\"><b class=\"mono\">{}</b> {}\n{}</div>",
            esc(&s("version")),
            esc(&s("name")),
            esc(&s("error"))
        );
    }
    actions_form(&mut h, app, env, form_token);
    if let Some(run) = watch {
        let state = run.state();
        let _ = write!(
            h,
            "<h2>Run {id}</h2><section id=\"live\" data-events=\"/api/v1/runs/{id}/events\" data-state=\"{st}\">\
             <div>{} by {} {}</div><ol></ol><noscript>Reload the page to see the run's progress.</noscript></section>\
             <script src=\"/assets/live.js\"></script>",
            esc(run.action.as_str()),
            esc(&run.actor),
            run_state(state).replacen("class=\"badge", "class=\"badge runstate", 1),
            id = esc(&run.id),
            st = if state == RunState::Running { "running" } else { "done" },
        );
    }
    if !runs.is_empty() {
        h.push_str("<h2>Runs started here</h2><div class=\"wrap\"><table><thead><tr><th>Run</th><th>Action</th><th>By</th><th>Started</th><th>Result</th></tr></thead><tbody>");
        for r in runs {
            let _ = write!(
                h,
                "<tr><td class=\"mono\"><a href=\"/environments/{}?run={id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                url_part(&e.name),
                esc(r.action.as_str()),
                esc(&r.actor),
                esc(&r.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
                run_state(r.state()),
                id = esc(&r.id),
            );
        }
        h.push_str("</tbody></table></div>");
    }
    lint_table(&mut h, findings);
    if e.reach == Reach::Ok {
        filter_form(&mut h, &e.name, filter);
        let base = format!("/environments/{}/migrations/", url_part(&e.name));
        html::env_details_linked(&mut h, e, Some(&base));
    }
    h.push_str(FOOT);
    h
}

fn actions_form(h: &mut String, app: &App, env: &ServeEnv, form_token: &str) {
    if app.setup.read_only || env.actions.is_empty() {
        h.push_str("<p class=\"small\">No actions: this environment is read-only here (allow some with <code>serve: { actions: [dry-run, apply] }</code> in pgrollout.yml).</p>");
        return;
    }
    let _ = write!(
        h,
        "<h2>Actions</h2><form class=\"actions\" method=\"post\" action=\"/environments/{}/actions\">\
         <input type=\"hidden\" name=\"form_token\" value=\"{}\"><select name=\"action\">",
        url_part(&env.name),
        esc(form_token)
    );
    for a in &env.actions {
        let _ = write!(h, "<option value=\"{0}\">{0}</option>", esc(a.as_str()));
    }
    h.push_str("</select>");
    if env.actions.contains(&crate::config::ServeAction::Rollback) {
        h.push_str("<label>steps (rollback) <input name=\"steps\" type=\"number\" min=\"1\" value=\"1\" style=\"width:5em\"></label>");
    }
    if env.confirm.is_some() {
        h.push_str("<label>confirmation phrase <input name=\"confirm\" required autocomplete=\"off\"></label>");
    }
    h.push_str("<button type=\"submit\" id=\"run\">Run</button></form>");
}

/// The history filters: a plain GET form, so they work without JavaScript.
fn filter_form(h: &mut String, env: &str, f: &super::HistoryFilter) {
    let field = |name: &str, label: &str, v: &Option<String>| {
        format!(
            "<label>{label} <input name=\"{name}\" value=\"{}\" size=\"12\"></label>",
            esc(v.as_deref().unwrap_or_default())
        )
    };
    let _ = write!(
        h,
        "<form class=\"actions\" id=\"filters\" method=\"get\" action=\"/environments/{}\">History: {}{}{}{}<button type=\"submit\">Filter</button></form>",
        url_part(env),
        field("action", "action", &f.action),
        field("status", "status", &f.status),
        field("actor", "actor", &f.actor),
        field("batch", "run", &f.batch),
    );
}

/// A migration's page: its SQL and its history in one environment.
pub fn migration(v: &super::MigrationView) -> String {
    let mut h = head(&format!("pgrollout: {} {}", v.version, v.name));
    let _ = write!(
        h,
        "<nav><a href=\"/\">← Overview</a> · <a href=\"/environments/{}\">{}</a></nav>\
         <h1><span class=\"mono\">{}</span> {}</h1><div class=\"meta\">{} · {}</div>",
        url_part(&v.env),
        esc(&v.env),
        esc(&v.version),
        esc(&v.name),
        esc(v.path.as_deref().unwrap_or("no file on disk")),
        match v.state.and_then(|s| serde_json::to_value(s).ok()) {
            Some(serde_json::Value::String(s)) => badge(&s, &s.replace('_', " ")),
            _ => badge("unknown", "state unknown"),
        }
    );
    if let Some(p) = &v.problem {
        let _ = write!(h, "<p class=\"failure\">{}</p>", esc(p));
    }
    let sql = |h: &mut String, title: &str, id: &str, text: Option<&str>| {
        let _ = write!(
            h,
            "<h2>{title}</h2>{}",
            match text {
                Some(t) => format!(
                    "<pre class=\"wrap mono\" id=\"{id}\" style=\"padding:10px\">{}</pre>",
                    esc(t)
                ),
                None => "<p class=\"small\">None.</p>".to_string(),
            }
        );
    };
    sql(&mut h, "Up (the file)", "up", v.up.as_deref());
    match &v.stored_down {
        Some(stored) => sql(
            &mut h,
            "Down (stored when it was applied: what a rollback runs)",
            "stored-down",
            stored.as_deref(),
        ),
        None => h.push_str("<p class=\"small\">Not applied here: no down SQL is stored.</p>"),
    }
    sql(
        &mut h,
        "Down (the file)",
        "file-down",
        v.file_down.as_deref(),
    );
    h.push_str("<h2>History</h2>");
    if v.history.is_empty() {
        h.push_str("<p class=\"small\">No history recorded.</p>");
    } else {
        h.push_str("<div class=\"wrap\"><table><thead><tr><th>When</th><th>Action</th><th>Result</th><th>By</th><th>Run</th><th>Error / note</th></tr></thead><tbody>");
        for r in &v.history {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"err\">{}</td></tr>",
                esc(&r.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
                esc(&r.action),
                badge(&r.status, &r.status),
                esc(&r.actor),
                esc(&r.run_id),
                esc(r.error.as_deref().or(r.reason.as_deref()).unwrap_or_default()),
            );
        }
        h.push_str("</tbody></table></div>");
    }
    h.push_str(FOOT);
    h
}

/// Lint findings of the pending migrations, most severe first.
fn lint_table(h: &mut String, findings: &[crate::lint::Finding]) {
    if findings.is_empty() {
        return;
    }
    let mut sorted: Vec<&crate::lint::Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    h.push_str("<h2>Lint findings of pending migrations</h2><div class=\"wrap\"><table id=\"lint\"><thead><tr><th>Severity</th><th>Where</th><th>Rule</th><th>Finding</th></tr></thead><tbody>");
    for f in sorted {
        let sev = f.severity.as_str();
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"mono\">{}:{}:{}</td><td class=\"mono\">{}</td><td>{}<div class=\"small\">{}</div></td></tr>",
            badge(if sev == "info" { "none" } else { sev }, sev),
            esc(&f.path.display().to_string()),
            f.line,
            f.col,
            esc(f.rule),
            esc(&f.message),
            esc(&f.fix),
        );
    }
    h.push_str("</tbody></table></div>");
}
