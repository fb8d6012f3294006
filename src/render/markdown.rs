//! GitHub-flavoured Markdown: the report (for a job summary or a PR comment) and the
//! drift section of a pipeline step's summary.

use std::fmt::Write;

use crate::plan::State;
use crate::report::environments::{HealthStatus, Overview, Reach};
use crate::report::human_duration;
use crate::schema::DriftReport;
use crate::schema::Severity;

/// Make untrusted text (database messages, file names) inert in Markdown, in a table
/// cell or in prose, by backslash-escaping what could start a construct (CommonMark shows
/// an escaped punctuation character literally): `\\`, `` ` ``, `*`, `~`, `[`, `]`, `!`
/// and `|` always; `_` unless it is inside a word (where it cannot emphasise, so
/// `workflow_dispatch` stays readable); and what GitHub autolinks — the `:` of `://`,
/// the `.` of `www.`, and `@`. `&`, `<` and `>` become entities (no HTML); line breaks
/// become spaces. So `[x](url)` and `![p](url)` are text, not a link and a remote image.
pub fn cell(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for (i, &c) in chars.iter().enumerate() {
        let before = |n: usize| i.checked_sub(n).map(|j| chars[j]);
        let after = |n: usize| chars.get(i + n).copied();
        let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        let escape = match c {
            '\\' | '`' | '*' | '~' | '[' | ']' | '!' | '|' | '@' => true,
            '_' => !(word(before(1)) && word(after(1))),
            ':' => after(1) == Some('/') && after(2) == Some('/'),
            '.' => (1..=3).all(|n| before(n).is_some_and(|b| b.eq_ignore_ascii_case(&'w'))),
            _ => false,
        };
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' | '\n' => out.push(' '),
            c if escape => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Untrusted text as an inline code span that no content can end early: the fence is one
/// backtick longer than the longest run inside it, padded with a space when the text
/// starts or ends with a backtick. Nothing inside a code span is interpreted (no links,
/// no entities, so `<` stays `<`); only `|` is escaped, which GFM tables require even
/// inside code spans, and line breaks become spaces.
pub fn code(s: &str) -> String {
    let text = s.replace(['\r', '\n'], " ").replace('|', "\\|");
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

fn health_icon(h: HealthStatus) -> &'static str {
    match h {
        HealthStatus::Healthy => "🟢 healthy",
        HealthStatus::Warning => "🟡 warning",
        HealthStatus::Error => "🔴 error",
        HealthStatus::Unknown => "⚪ not checked",
    }
}

fn state_icon(s: State) -> &'static str {
    match s {
        State::Applied => "✅ applied",
        State::Pending => "⏳ pending",
        State::Modified => "❌ modified",
        State::MissingFile => "❌ missing file",
        State::Failed => "❌ failed",
        State::Running => "⚠️ running",
        State::Baseline => "☑️ baseline",
    }
}

fn ms(v: Option<i64>) -> String {
    v.map(|m| human_duration(std::time::Duration::from_millis(m.max(0) as u64)))
        .unwrap_or_default()
}

pub fn report(o: &Overview) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# Migration report: {}\n", health_icon(o.health));
    let _ = writeln!(
        m,
        "Generated {} by pgrollout {} from {}.\n",
        o.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
        o.tool_version,
        code(&o.migrations_dir)
    );
    m.push_str("| Environment | Health | Applied | Pending | Failed | Modified / missing | Notes |\n|---|---|--:|--:|--:|--:|---|\n");
    for e in &o.environments {
        let c = &e.counts;
        let notes = match e.reach {
            Reach::Ok => e.health.reasons.join("; "),
            _ => e.reason.clone().unwrap_or_default(),
        };
        let health = match e.reach {
            Reach::Ok => health_icon(e.health.status),
            Reach::Skipped => "⚪ skipped",
            Reach::Unreachable => "🔴 unreachable",
        };
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} |",
            cell(&e.name),
            health,
            c.applied + c.baseline,
            c.pending,
            c.failed,
            c.modified + c.missing_file,
            cell(&notes)
        );
    }
    let read: Vec<_> = o
        .environments
        .iter()
        .filter(|e| e.reach == Reach::Ok)
        .collect();
    if !read.is_empty() {
        m.push_str("\n## Migrations across environments\n\n| Version | Name |");
        for e in &read {
            let _ = write!(m, " {} |", cell(&e.name));
        }
        m.push_str("\n|---|---|");
        for _ in &read {
            m.push_str("---|");
        }
        m.push('\n');
        for r in &o.comparison {
            let _ = write!(m, "| {} | {} |", code(&r.version), cell(&r.name));
            for e in &read {
                let _ = write!(
                    m,
                    " {} |",
                    r.states.get(&e.name).map_or("—", |s| state_icon(*s))
                );
            }
            m.push('\n');
        }
    }
    for e in &read {
        let _ = writeln!(m, "\n## {}\n", cell(&e.name));
        if !e.slowest.is_empty() {
            m.push_str("Slowest migrations: ");
            let list: Vec<String> = e
                .slowest
                .iter()
                .map(|s| {
                    format!(
                        "{} {} ({})",
                        code(&s.version),
                        cell(&s.name),
                        ms(s.duration_ms)
                    )
                })
                .collect();
            m.push_str(&list.join(", "));
            m.push_str("\n\n");
        }
        m.push_str(
            "| Version | Name | Status | Applied at | By | Duration |\n|---|---|---|---|---|--:|\n",
        );
        for r in &e.migrations {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} |",
                code(&r.version),
                cell(&r.name),
                state_icon(r.state),
                r.applied_at
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default(),
                cell(r.applied_by.as_deref().unwrap_or_default()),
                ms(r.duration_ms)
            );
        }
        if !e.history.is_empty() {
            m.push_str("\n<details><summary>Recent activity</summary>\n\n| When | Action | Result | Migration | By | Note |\n|---|---|---|---|---|---|\n");
            for h in &e.history {
                let _ = writeln!(
                    m,
                    "| {} | {} | {} | {} {} | {} | {} |",
                    h.started_at.format("%Y-%m-%d %H:%M UTC"),
                    cell(&h.action),
                    cell(&h.status),
                    cell(h.version.as_deref().unwrap_or_default()),
                    cell(h.name.as_deref().unwrap_or_default()),
                    cell(&h.actor),
                    cell(
                        h.error
                            .as_deref()
                            .or(h.reason.as_deref())
                            .unwrap_or_default()
                    )
                );
            }
            m.push_str("\n</details>\n");
        }
        match e.backups.first() {
            Some(b) => {
                let _ = writeln!(
                    m,
                    "\nLast backup marker: **{}** at {} by {} (WAL {}).",
                    cell(&b.label),
                    b.created_at.format("%Y-%m-%d %H:%M UTC"),
                    cell(&b.actor),
                    cell(b.wal_lsn.as_deref().unwrap_or("?"))
                );
            }
            None => m.push_str("\nNo backup marker recorded.\n"),
        }
    }
    m
}

/// The drift section of a job summary.
pub fn drift_summary(r: &DriftReport) -> String {
    let mut m = String::new();
    let status = if r.critical > 0 {
        "🔴 critical drift"
    } else if r.warning > 0 {
        "🟡 drift (warnings)"
    } else if r.info > 0 {
        "🟢 no significant drift"
    } else {
        "🟢 no drift"
    };
    let _ = writeln!(
        m,
        "### Schema drift: {status}\n\nSource **{}** ({}) vs target **{}** ({}): {} critical, {} warning, {} info.\n",
        cell(&r.source.label),
        cell(&r.source.location),
        cell(&r.target.label),
        cell(&r.target.location),
        r.critical,
        r.warning,
        r.info
    );
    if !r.differences.is_empty() {
        m.push_str("| Severity | Object | Difference | What to do |\n|---|---|---|---|\n");
        for d in &r.differences {
            let sev = match d.severity {
                Severity::Critical => "🔴 critical",
                Severity::Warning => "🟡 warning",
                Severity::Info => "🔵 info",
            };
            let _ = writeln!(
                m,
                "| {sev} | {} | {} | {} |",
                code(&d.object),
                cell(&d.message),
                cell(&d.fix)
            );
        }
    }
    m
}
