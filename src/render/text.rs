//! Rendering of command results (stdout): tables for people, JSON for machines.
//! The JSON shapes carry `"format_version": 1`; fields are only ever added.

use crate::execute::{ApplyError, ApplyReport};
use crate::plan::{Entry, Plan, Problem, State};

fn state_word(s: State) -> &'static str {
    match s {
        State::Applied => "applied",
        State::Pending => "pending",
        State::Modified => "MODIFIED",
        State::MissingFile => "MISSING FILE",
        State::Failed => "FAILED",
        State::Running => "RUNNING",
        State::Baseline => "baseline",
    }
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

pub fn status_table(entries: &[Entry], no_schema: bool) -> String {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let (at, by, ms) =
                e.applied
                    .as_ref()
                    .map_or((String::new(), String::new(), String::new()), |r| {
                        (
                            r.applied_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            r.applied_by.clone(),
                            r.execution_time_ms
                                .map(|m| format!("{m} ms"))
                                .unwrap_or_default(),
                        )
                    });
            let mut state = state_word(e.state).to_string();
            if e.out_of_order {
                state.push_str(" (out of order)");
            }
            vec![e.version.clone(), e.name.clone(), state, at, by, ms]
        })
        .collect();
    let mut out = table(
        &["VERSION", "NAME", "STATE", "APPLIED AT (UTC)", "BY", "TIME"],
        &rows,
    );
    let count = |s: State| entries.iter().filter(|e| e.state == s).count();
    out.push_str(&format!(
        "\n{} applied, {} pending{}{}{}{}\n",
        count(State::Applied) + count(State::Baseline),
        count(State::Pending),
        nonzero(", {} modified", count(State::Modified)),
        nonzero(", {} missing file", count(State::MissingFile)),
        nonzero(", {} failed", count(State::Failed)),
        nonzero(", {} running/interrupted", count(State::Running)),
    ));
    if no_schema {
        out.push_str(
            "(the tracking schema does not exist yet: nothing has been applied by pgrollout)\n",
        );
    }
    out
}

fn nonzero(fmt: &str, n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        fmt.replace("{}", &n.to_string())
    }
}

pub fn status_json(entries: &[Entry], tracking_exists: bool) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "format_version": 1,
        "tracking_schema_exists": tracking_exists,
        "migrations": entries,
    }))
    .expect("serialisable")
        + "\n"
}

pub fn plan_text(p: &Plan) -> String {
    if p.to_apply.is_empty() {
        return "nothing to apply\n".into();
    }
    let rows: Vec<Vec<String>> = p
        .to_apply
        .iter()
        .map(|m| {
            vec![
                m.version.text.clone(),
                m.name.clone(),
                if m.up.no_transaction {
                    "statement by statement (transaction:false)".into()
                } else {
                    "one transaction".to_string()
                },
                m.statements().count().to_string(),
                down_word(m).into(),
            ]
        })
        .collect();
    let mut out = format!(
        "{} migration(s) would be applied, in this order:\n\n",
        p.to_apply.len()
    );
    out.push_str(&table(
        &["VERSION", "NAME", "RUNS", "STATEMENTS", "DOWN"],
        &rows,
    ));
    for m in &p.to_apply {
        if let (None, Ok(g)) = (&m.down, crate::rollback::generate::generate(m)) {
            out.push_str(&format!(
                "\n{} has no down section; generated rollback (runs only with --allow-generated):\n",
                m.version
            ));
            for l in g.sql.lines() {
                out.push_str(&format!("    {l}\n"));
            }
        }
    }
    out
}

/// The DOWN column: `yes`, `generated` (no down section, but a safe inverse exists) or `no`.
fn down_word(m: &crate::migration::Migration) -> &'static str {
    if m.down.is_some() {
        "yes"
    } else if crate::rollback::generate::generate(m).is_ok() {
        "generated"
    } else {
        "no"
    }
}

pub fn plan_json(p: &Plan, problems: &[Problem]) -> String {
    let items: Vec<serde_json::Value> = p
        .to_apply
        .iter()
        .map(|m| {
            serde_json::json!({
                "version": m.version.text,
                "name": m.name,
                "path": m.path,
                "transaction": !m.up.no_transaction,
                "statements": m.statements().count(),
                "checksum": m.checksum,
                "has_down": m.down.is_some(),
                "generated_down": m.down.is_none().then(|| crate::rollback::generate::generate(m).ok().map(|g| g.sql)).flatten(),
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "format_version": 1,
        "to_apply": items,
        "problems": problems,
    }))
    .expect("serialisable")
        + "\n"
}

pub fn apply_text(r: &ApplyReport, dry_run: bool) -> String {
    let mut out = String::new();
    if dry_run {
        for a in &r.rehearsed {
            out.push_str(&format!(
                "rehearsed  {}  {}  ({} ms, rolled back)\n",
                a.version, a.name, a.duration_ms
            ));
        }
        for a in &r.not_rehearsed {
            out.push_str(&format!(
                "skipped    {}  {}  (transaction:false: not rehearsable)\n",
                a.version, a.name
            ));
        }
        if r.rehearsed.is_empty() && r.not_rehearsed.is_empty() {
            out.push_str("nothing pending to rehearse\n");
        } else {
            out.push_str("dry run: nothing was written\n");
        }
        return out;
    }
    for a in &r.applied {
        out.push_str(&format!(
            "applied  {}  {}  ({} ms)\n",
            a.version, a.name, a.duration_ms
        ));
    }
    if r.applied.is_empty() {
        out.push_str("nothing to apply: the database is up to date\n");
    } else {
        out.push_str(&format!("{} migration(s) applied\n", r.applied.len()));
    }
    if !r.pending.is_empty() {
        out.push_str(&format!(
            "{} still pending: {}\n",
            r.pending.len(),
            r.pending.join(", ")
        ));
    }
    out
}

pub fn apply_json(r: &ApplyReport, error: Option<&ApplyError>) -> String {
    let err = error.map(|e| match e {
        ApplyError::Migration(me) => serde_json::to_value(me).expect("serialisable"),
        ApplyError::Files(p) | ApplyError::Blocked(p) => {
            serde_json::json!({ "message": e.to_string(), "problems": p })
        }
        other => serde_json::json!({ "message": other.to_string() }),
    });
    serde_json::to_string_pretty(&serde_json::json!({
        "format_version": 1,
        "status": if error.is_some() { "failed" } else { "ok" },
        "applied": r.applied,
        "rehearsed": r.rehearsed,
        "not_rehearsed": r.not_rehearsed,
        "pending": r.pending,
        "server_version": r.server_version,
        "error": err,
    }))
    .expect("serialisable")
        + "\n"
}
