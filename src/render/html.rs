//! The HTML report: one self-contained file (inline CSS, no scripts, no external
//! resources) that reads on a phone and prints. It is the dashboard CI uploads as an
//! artifact.

use std::fmt::Write;

use crate::plan::State;
use crate::report::environments::{EnvReport, HealthStatus, MigrationRow, Overview, Reach};
use crate::report::human_duration;

/// Escape text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The report's style sheet (also the dashboard's, which `pgrollout serve` renders).
pub const CSS: &str = r#"
:root{--ok:#1a7f37;--okbg:#dafbe1;--warn:#9a6700;--warnbg:#fff8c5;--err:#cf222e;--errbg:#ffebe9;
--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--fg:#1f2328;--info:#0969da;--infobg:#ddf4ff}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1180px;margin:0 auto;padding:20px 16px 40px}
h1{font-size:22px;margin:0}h2{font-size:18px;margin:28px 0 10px}h3{font-size:15px;margin:18px 0 8px}
.meta{color:var(--muted);font-size:13px;margin-top:4px}
.banner{display:flex;gap:16px;align-items:flex-start;border-radius:10px;padding:16px 18px;margin:18px 0;border:1px solid}
.banner .big{font-size:24px;font-weight:700;white-space:nowrap}
.banner ul{margin:4px 0 0;padding-left:18px}
.b-healthy{background:var(--okbg);border-color:#aceebb;color:#0d4a1f}
.b-warning{background:var(--warnbg);border-color:#eac54f;color:#4d2d00}
.b-error{background:var(--errbg);border-color:#ffcecb;color:#82071e}
.b-unknown{background:#eef1f4;border-color:var(--line);color:var(--muted)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:14px 16px;border-top:5px solid var(--line)}
.card.healthy{border-top-color:var(--ok)}.card.warning{border-top-color:#d4a72c}.card.error{border-top-color:var(--err)}
.card h3{margin:0 0 6px;display:flex;justify-content:space-between;align-items:center;gap:8px}
.nums{display:grid;grid-template-columns:repeat(4,1fr);gap:8px;margin:8px 0}.nums b{display:block;font-size:20px}.nums span{font-size:12px;color:var(--muted)}
.small{font-size:13px;color:var(--muted)}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600;white-space:nowrap;border:1px solid transparent}
.s-applied,.s-healthy,.s-completed,.s-ok{background:var(--okbg);color:var(--ok);border-color:#aceebb}
.s-pending,.s-warning,.s-running,.s-started,.s-skipped{background:var(--warnbg);color:var(--warn);border-color:#eac54f}
.s-failed,.s-modified,.s-missing_file,.s-error,.s-unreachable{background:var(--errbg);color:var(--err);border-color:#ffcecb}
.s-baseline,.s-unknown,.s-none{background:#eef1f4;color:var(--muted);border-color:var(--line)}
.wrap{overflow-x:auto;background:#fff;border:1px solid var(--line);border-radius:10px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#f6f8fa;font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}
tr:last-child td{border-bottom:0}
tr.diff td{background:#fff8c5}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
.bar{height:8px;background:#e6eaef;border-radius:4px;min-width:80px}.bar i{display:block;height:8px;border-radius:4px;background:#8c959f}
details{margin:14px 0;background:#fff;border:1px solid var(--line);border-radius:10px;padding:4px 14px 12px}
summary{cursor:pointer;font-weight:600;padding:8px 0;font-size:16px}
.err{color:var(--err)}
footer{margin-top:30px;color:var(--muted);font-size:12px}
@media (max-width:600px){body{font-size:14px}.banner{flex-direction:column;gap:6px}th,td{padding:6px}.hide-sm{display:none}}
@media print{body{background:#fff}main{max-width:none;padding:0}.card,.wrap,details{break-inside:avoid;border-color:#999}
details{border:0;padding:0}summary{list-style:none}.banner{border-width:2px}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"#;

fn state_word(s: State) -> &'static str {
    match s {
        State::Applied => "applied",
        State::Pending => "pending",
        State::Modified => "modified",
        State::MissingFile => "missing file",
        State::Failed => "failed",
        State::Running => "running",
        State::Baseline => "baseline",
    }
}

fn state_class(s: State) -> &'static str {
    match s {
        State::Applied => "applied",
        State::Pending => "pending",
        State::Modified => "modified",
        State::MissingFile => "missing_file",
        State::Failed => "failed",
        State::Running => "running",
        State::Baseline => "baseline",
    }
}

/// A coloured status pill; `class` picks the colour (`s-<class>`).
pub fn badge(class: &str, text: &str) -> String {
    format!(
        "<span class=\"badge s-{}\">{}</span>",
        esc(class),
        esc(text)
    )
}

fn health_word(h: HealthStatus) -> (&'static str, &'static str) {
    match h {
        HealthStatus::Healthy => ("healthy", "Healthy"),
        HealthStatus::Warning => ("warning", "Needs attention"),
        HealthStatus::Error => ("error", "Action required"),
        HealthStatus::Unknown => ("unknown", "Not checked"),
    }
}

fn ms(v: Option<i64>) -> String {
    v.map(|m| human_duration(std::time::Duration::from_millis(m.max(0) as u64)))
        .unwrap_or_default()
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// Render the whole report.
pub fn render(o: &Overview) -> String {
    let mut h = String::new();
    let title = if o.environments.len() == 1 {
        format!("Migration report — {}", o.environments[0].name)
    } else {
        "Migration report".to_string()
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"generator\" content=\"pgrollout {ver}\">\
         <title>{t}</title><style>{CSS}</style></head><body><main>\
         <h1>{t}</h1><div class=\"meta\">Generated {gen} by pgrollout {ver} · migrations from <code>{dir}</code></div>",
        t = esc(&title),
        gen = esc(&o.generated_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        ver = esc(&o.tool_version),
        dir = esc(&o.migrations_dir),
    );

    // The answer first: overall health and why.
    let (class, word) = health_word(o.health);
    let mut reasons = String::new();
    for e in o.environments.iter().filter(|e| e.reach != Reach::Skipped) {
        for r in &e.health.reasons {
            let _ = write!(reasons, "<li><b>{}</b>: {}</li>", esc(&e.name), esc(r));
        }
    }
    let summary = match o.health {
        HealthStatus::Healthy => "Every environment read has every migration applied successfully.",
        HealthStatus::Unknown => "No environment could be read.",
        _ => "",
    };
    let _ = write!(
        h,
        "<section class=\"banner b-{class}\" id=\"health\" data-health=\"{class}\"><div class=\"big\">{word}</div><div>{summary}{}<div class=\"small\">{read} of {total} environment(s) read</div></div></section>",
        if reasons.is_empty() { String::new() } else { format!("<ul>{reasons}</ul>") },
        read = o.environments.iter().filter(|e| e.reach == Reach::Ok).count(),
        total = o.environments.len()
    );

    // One card per environment.
    h.push_str("<h2>Environments</h2><div class=\"cards\">");
    for e in &o.environments {
        card(&mut h, e);
    }
    h.push_str("</div>");

    comparison(&mut h, o);

    for e in o.environments.iter().filter(|e| e.reach == Reach::Ok) {
        env_details(&mut h, e);
    }

    let _ = writeln!(
        h,
        "<footer>pgrollout report format {} · states: applied, pending, failed, modified (file changed after it was applied), \
         missing file (applied, but no file on disk), running (in progress or interrupted), baseline.</footer></main></body></html>",
        o.format_version
    );
    h
}

/// One environment's card: health, counts, latest migration, last backup marker.
pub fn card(h: &mut String, e: &EnvReport) {
    let (class, word) = health_word(e.health.status);
    let reach = match e.reach {
        Reach::Ok => badge(class, word),
        Reach::Skipped => badge("skipped", "skipped"),
        Reach::Unreachable => badge("unreachable", "unreachable"),
    };
    let _ = write!(
        h,
        "<div class=\"card {class}\" data-env=\"{}\"><h3><span>{}</span>{reach}</h3>",
        esc(&e.name),
        esc(&e.name)
    );
    if e.reach != Reach::Ok {
        let _ = write!(
            h,
            "<div class=\"small\">{}</div></div>",
            esc(e.reason.as_deref().unwrap_or_default())
        );
        return;
    }
    let c = &e.counts;
    let num = |n: usize, label: &str, cls: &str| {
        format!(
            "<div><b class=\"{}\">{n}</b><span>{label}</span></div>",
            if n > 0 { cls } else { "" }
        )
    };
    let _ = write!(
        h,
        "<div class=\"nums\">{}{}{}{}</div>",
        num(c.applied + c.baseline, "applied", ""),
        num(c.pending, "pending", ""),
        num(c.failed, "failed", "err"),
        num(c.modified + c.missing_file, "modified", "err"),
    );
    let last = e
        .migrations
        .iter()
        .filter(|m| m.applied_at.is_some() && m.state != State::Pending)
        .max_by_key(|m| m.applied_at);
    if let Some(m) = last {
        let _ = write!(
            h,
            "<div class=\"small\">Latest: <span class=\"mono\">{}</span> {} · {}</div>",
            esc(&m.version),
            esc(&m.name),
            esc(&when(m.applied_at))
        );
    }
    match e.backups.first() {
        Some(b) => {
            let _ = write!(
                h,
                "<div class=\"small\">Last backup marker: {} · {}</div>",
                esc(&b.label),
                esc(&when(Some(b.created_at)))
            );
        }
        None => h.push_str("<div class=\"small\">No backup marker recorded</div>"),
    }
    let _ = write!(
        h,
        "<div class=\"small\">PostgreSQL {}</div></div>",
        esc(e.server_version.as_deref().unwrap_or("?"))
    );
}

fn comparison(h: &mut String, o: &Overview) {
    let read: Vec<&EnvReport> = o
        .environments
        .iter()
        .filter(|e| e.reach == Reach::Ok)
        .collect();
    if read.is_empty() {
        return;
    }
    h.push_str("<h2>Migrations across environments</h2>");
    let differing = o.comparison.iter().filter(|r| !r.consistent).count();
    if read.len() > 1 {
        let _ = write!(
            h,
            "<p class=\"small\">{} of {} migrations are in the same state everywhere{}</p>",
            o.comparison.len() - differing,
            o.comparison.len(),
            if differing > 0 {
                "; rows that differ are highlighted."
            } else {
                "."
            }
        );
    }
    h.push_str(
        "<div class=\"wrap\"><table id=\"comparison\"><thead><tr><th>Version</th><th>Name</th>",
    );
    for e in &read {
        let _ = write!(h, "<th>{}</th>", esc(&e.name));
    }
    h.push_str("</tr></thead><tbody>");
    for r in &o.comparison {
        let _ = write!(
            h,
            "<tr{}><td class=\"mono\">{}</td><td>{}</td>",
            if r.consistent { "" } else { " class=\"diff\"" },
            esc(&r.version),
            esc(&r.name)
        );
        for e in &read {
            let cell = match r.states.get(&e.name) {
                Some(s) => badge(state_class(*s), state_word(*s)),
                None => badge("none", "—"),
            };
            let _ = write!(h, "<td>{cell}</td>");
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table></div>");
}

/// One environment's details: slowest migrations, every migration, history, backups.
pub fn env_details(h: &mut String, e: &EnvReport) {
    env_details_linked(h, e, None)
}

/// [`env_details`] with each migration's name a link to `{link_base}{version}` (the
/// dashboard's migration pages).
pub fn env_details_linked(h: &mut String, e: &EnvReport, link_base: Option<&str>) {
    let (class, word) = health_word(e.health.status);
    let _ = write!(
        h,
        "<details open id=\"env-{}\"><summary>{} {}</summary><div class=\"small\">{}</div>",
        esc(&e.name),
        esc(&e.name),
        badge(class, word),
        esc(e.target.as_deref().unwrap_or_default())
    );

    if !e.slowest.is_empty() {
        h.push_str("<h3>Slowest migrations</h3><div class=\"wrap\"><table><thead><tr><th>Version</th><th>Name</th><th>Duration</th><th class=\"hide-sm\"></th></tr></thead><tbody>");
        let max = e
            .slowest
            .iter()
            .filter_map(|m| m.duration_ms)
            .max()
            .unwrap_or(1)
            .max(1);
        for m in &e.slowest {
            let pct = m.duration_ms.unwrap_or(0) * 100 / max;
            let _ = write!(
                h,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"hide-sm\"><div class=\"bar\"><i style=\"width:{pct}%\"></i></div></td></tr>",
                esc(&m.version),
                esc(&m.name),
                esc(&ms(m.duration_ms))
            );
        }
        h.push_str("</tbody></table></div>");
    }

    h.push_str("<h3>Migrations</h3>");
    migration_table(h, &e.migrations, link_base);

    h.push_str("<h3>Recent activity</h3>");
    if e.history.is_empty() {
        h.push_str("<p class=\"small\">No history recorded.</p>");
    } else {
        h.push_str("<div class=\"wrap\"><table><thead><tr><th>When</th><th>Action</th><th>Result</th><th>Migration</th><th>Duration</th><th>By</th><th class=\"hide-sm\">Ref / note</th></tr></thead><tbody>");
        for r in &e.history {
            let note = r
                .error
                .as_deref()
                .map(|x| format!("<span class=\"err\">{}</span>", esc(x)))
                .or_else(|| r.reason.as_deref().map(esc))
                .or_else(|| {
                    r.git_ref
                        .as_deref()
                        .map(|g| format!("<code>{}</code>", esc(g)))
                })
                .unwrap_or_default();
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><span class=\"mono\">{}</span> {}</td><td class=\"num\">{}</td><td>{}</td><td class=\"hide-sm\">{note}</td></tr>",
                esc(&when(Some(r.started_at))),
                esc(&r.action),
                badge(&r.status, &r.status),
                esc(r.version.as_deref().unwrap_or_default()),
                esc(r.name.as_deref().unwrap_or_default()),
                esc(&ms(r.duration_ms)),
                esc(&r.actor),
            );
        }
        h.push_str("</tbody></table></div>");
    }

    runs_table(h, &e.runs);

    h.push_str("<h3>Backup markers</h3>");
    if e.backups.is_empty() {
        h.push_str("<p class=\"small\">No backup marker recorded.</p>");
    } else {
        h.push_str("<div class=\"wrap\"><table><thead><tr><th>When</th><th>Label</th><th>By</th><th>WAL LSN</th><th class=\"hide-sm\">Dump</th></tr></thead><tbody>");
        for b in &e.backups {
            let dump = b
                .dump_path
                .as_deref()
                .map(|p| {
                    format!(
                        "<code>{}</code> {}",
                        esc(p),
                        esc(&b
                            .dump_size_bytes
                            .map(|s| format!("({s} bytes)"))
                            .unwrap_or_default())
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"hide-sm\">{dump}</td></tr>",
                esc(&when(Some(b.created_at))),
                esc(&b.label),
                esc(&b.actor),
                esc(b.wal_lsn.as_deref().unwrap_or_default()),
            );
        }
        h.push_str("</tbody></table></div>");
    }
    h.push_str("</details>");
}

/// The runs as batches: who ran what together (`rollback --run ID` undoes one).
fn runs_table(h: &mut String, runs: &[crate::report::environments::RunBatch]) {
    if runs.is_empty() {
        return;
    }
    h.push_str("<h3>Runs</h3><div class=\"wrap\"><table id=\"runs\"><thead><tr><th>Run</th><th>When</th><th>By</th><th>Applied</th><th>Rolled back</th><th class=\"hide-sm\">Failed</th></tr></thead><tbody>");
    let list = |v: &[String]| esc(&v.join(", "));
    for r in runs {
        let _ = write!(
            h,
            "<tr data-run=\"{id}\"><td class=\"mono\">{id}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono err hide-sm\">{}</td></tr>",
            esc(&when(Some(r.started_at))),
            esc(&r.actor),
            list(&r.applied),
            list(&r.rolled_back),
            list(&r.failed),
            id = esc(&r.run_id),
        );
    }
    h.push_str("</tbody></table></div>");
}

fn migration_table(h: &mut String, rows: &[MigrationRow], link_base: Option<&str>) {
    h.push_str("<div class=\"wrap\"><table><thead><tr><th>Version</th><th>Name</th><th>Status</th><th>Applied at</th><th class=\"hide-sm\">By</th><th>Duration</th></tr></thead><tbody>");
    for m in rows {
        let err = m
            .error
            .as_deref()
            .map(|e| format!("<div class=\"small err\">{}</div>", esc(e)))
            .unwrap_or_default();
        let _ = write!(
            h,
            "<tr><td class=\"mono\">{}</td><td>{}{err}</td><td>{}</td><td>{}</td><td class=\"hide-sm\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&m.version),
            match link_base {
                Some(base) => format!(
                    "<a href=\"{}{}\">{}</a>",
                    esc(base),
                    esc(&m.version),
                    esc(&m.name)
                ),
                None => esc(&m.name),
            },
            badge(state_class(m.state), state_word(m.state)),
            esc(&when(m.applied_at)),
            esc(m.applied_by.as_deref().unwrap_or_default()),
            esc(&ms(m.duration_ms)),
        );
    }
    h.push_str("</tbody></table></div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(esc("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
    }
}
