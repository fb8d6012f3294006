//! What `apply` prints on stdout: the engine's report as lines for people or JSON for
//! machines. Here, not in `render/`, because it formats the engine's own result types,
//! and renderers stay below the engine.

use crate::engine::{ApplyError, ApplyReport};

pub(super) fn apply_text(r: &ApplyReport, dry_run: bool) -> String {
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

pub(super) fn apply_json(r: &ApplyReport, error: Option<&ApplyError>) -> String {
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
