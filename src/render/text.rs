//! Rendering of command results (stdout): tables for people, JSON for machines.
//! The JSON shapes carry `"format_version": 1`; fields are only ever added.

use crate::plan::{Entry, Plan, Problem, State};
use crate::report::RunningRow;

/// How a migration's state reads in tables.
pub(super) fn state_word(s: State) -> &'static str {
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
            if e.applied.as_ref().is_some_and(|r| r.rolling_back)
                && matches!(e.state, State::Failed | State::Running)
            {
                // The state is its transaction:false down's, not its up's.
                state = format!("ROLLBACK {state}");
            }
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

/// `status --runs`: one line per run, newest first — the batches `rollback --run ID` undoes.
pub fn runs_table(runs: &[crate::report::environments::RunBatch]) -> String {
    if runs.is_empty() {
        return "no runs recorded: nothing has been applied or rolled back by pgrollout\n".into();
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let mut what = Vec::new();
            for (verb, list) in [
                ("applied", &r.applied),
                ("rolled back", &r.rolled_back),
                ("failed", &r.failed),
            ] {
                if !list.is_empty() {
                    what.push(format!("{verb} {}", list.join(", ")));
                }
            }
            vec![
                r.run_id.clone(),
                r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                r.actor.clone(),
                what.join("; "),
            ]
        })
        .collect();
    table(&["RUN", "WHEN (UTC)", "ACTOR", "MIGRATIONS"], &rows)
}

/// What `status` adds under the table for each migration recorded as running: whether
/// it is running now or was interrupted, and what to do.
pub fn running_notes(rows: &[RunningRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let at = r
            .statement_index
            .map_or(String::new(), |i| format!(" at statement {}", i + 1));
        out.push_str(&format!(
            "\nmigration {} {} is recorded as running{at} since {} (run {}):\n",
            r.version, r.name, r.since, r.run_id
        ));
        match (&r.runner, &r.lock_holder) {
            (Some(live), _) => out.push_str(&format!(
                "  it is running now: its runner is connected as {live}.\n  Wait for it to finish; do not run `pgrollout repair` meanwhile.\n"
            )),
            (None, holder) => {
                out.push_str("  it was interrupted: no session of that run is connected");
                match holder {
                    Some(h) => out.push_str(&format!(
                        " (the migration lock is held now by {h}, another runner)"
                    )),
                    None => out.push_str(", and no runner holds the migration lock"),
                }
                out.push_str(
                    ".\n  The statements before that one are in effect. Check that one's effect, then run \
                     `pgrollout repair` and `pgrollout apply` (it reruns from its first statement).\n",
                );
            }
        }
    }
    out
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
        if let (None, Ok(g)) = (&m.down, crate::migration::inverse::generate(m)) {
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
    } else if crate::migration::inverse::generate(m).is_ok() {
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
                "generated_down": m.down.is_none().then(|| crate::migration::inverse::generate(m).ok().map(|g| g.sql)).flatten(),
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
