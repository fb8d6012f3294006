//! Terminal and JSON rendering of drift results and of `status --all`.

use crate::report::environments::{Overview, Reach};
use crate::schema::DriftReport;
use crate::schema::Severity;

use super::text::state_word;

/// One line per difference, most severe first, each with what to do.
pub fn drift_text(r: &DriftReport) -> String {
    let mut out = format!(
        "source: {} ({})\ntarget: {} ({})\n\n",
        r.source.label, r.source.location, r.target.label, r.target.location
    );
    for d in &r.differences {
        let tag = match d.severity {
            Severity::Critical => "CRITICAL",
            Severity::Warning => "warning ",
            Severity::Info => "info    ",
        };
        out.push_str(&format!("{tag} {}\n         fix: {}\n", d.message, d.fix));
    }
    if r.differences.is_empty() {
        out.push_str("✓ no drift: the schemas match\n");
    } else {
        out.push_str(&format!(
            "\n{} critical, {} warning, {} info{}\n",
            r.critical,
            r.warning,
            r.info,
            if r.has_critical() {
                " — critical drift"
            } else {
                ""
            }
        ));
    }
    out
}

pub fn drift_json(r: &DriftReport) -> String {
    serde_json::to_string_pretty(r).expect("serialisable") + "\n"
}

/// Versions × environments, then which environments were not read and why.
pub fn status_all_text(o: &Overview) -> String {
    let read: Vec<_> = o
        .environments
        .iter()
        .filter(|e| e.reach == Reach::Ok)
        .collect();
    let mut headers = vec!["VERSION".to_string(), "NAME".to_string()];
    headers.extend(read.iter().map(|e| e.name.clone()));
    let rows: Vec<Vec<String>> = o
        .comparison
        .iter()
        .map(|r| {
            let mut row = vec![r.version.clone(), r.name.clone()];
            row.extend(read.iter().map(|e| {
                r.states
                    .get(&e.name)
                    .map_or("-".to_string(), |s| state_word(*s).to_string())
            }));
            row
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        s.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = String::new();
    if !read.is_empty() {
        out.push_str(&line(&headers));
        for r in &rows {
            out.push_str(&line(r));
        }
        out.push('\n');
    }
    for e in &o.environments {
        match e.reach {
            Reach::Ok => out.push_str(&format!(
                "{}: {} applied, {} pending{}{}{} — {}\n",
                e.name,
                e.counts.applied + e.counts.baseline,
                e.counts.pending,
                nonzero(", {} failed", e.counts.failed),
                nonzero(", {} modified", e.counts.modified),
                nonzero(", {} missing file", e.counts.missing_file),
                serde_json::to_value(e.health.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            )),
            Reach::Skipped => out.push_str(&format!(
                "{}: {}\n",
                e.name,
                e.reason.as_deref().unwrap_or("skipped")
            )),
            Reach::Unreachable => out.push_str(&format!(
                "{}: UNREACHABLE: {}\n",
                e.name,
                e.reason.as_deref().unwrap_or_default()
            )),
        }
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

/// `status --all --format json`: the environments (how each was read) and the matrix.
pub fn status_all_json(o: &Overview) -> String {
    let envs: Vec<serde_json::Value> = o
        .environments
        .iter()
        .map(|e| {
            serde_json::json!({
                "name": e.name,
                "reach": e.reach,
                "reason": e.reason,
                "target": e.target,
                "health": e.health,
                "counts": e.counts,
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "format_version": 1,
        "environments": envs,
        "migrations": o.comparison,
    }))
    .expect("serialisable")
        + "\n"
}

/// `report --format json`: the whole [`Overview`] (docs/report.schema.json).
pub fn report_json(o: &Overview) -> String {
    serde_json::to_string_pretty(o).expect("serialisable") + "\n"
}
