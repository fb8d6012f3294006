//! Plain renderings of findings. The reporters decide where they go.

use super::Finding;

/// `path:line:col: severity[rule] message` and an indented `fix:` line per finding.
pub fn render_terminal(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "{}:{}:{}: {}[{}] {}\n",
            f.path.display(),
            f.line,
            f.col,
            f.severity,
            f.rule,
            f.message
        ));
        if !f.fix.is_empty() {
            out.push_str(&format!("  fix: {}\n", f.fix));
        }
    }
    out
}

/// The findings as a JSON array (the fields of [`Finding`]).
pub fn render_json(findings: &[Finding]) -> String {
    serde_json::to_string_pretty(findings).expect("findings serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::testing::lint;

    #[test]
    fn terminal_format() {
        let f = lint("SELECT 1;\n  DROP TABLE users;\n");
        assert_eq!(
            render_terminal(&f),
            "migrations/001_test.sql:2:3: error[ban-drop-table] DROP TABLE deletes `users` and all its data; code still using it fails\n  \
             fix: first deploy code that no longer uses `users`, then drop it in a later migration with `-- pgrollout:allow ban-drop-table <reason>`\n"
        );
    }

    #[test]
    fn json_format() {
        let f = lint("DROP TABLE users;");
        let v: serde_json::Value = serde_json::from_str(&render_json(&f)).unwrap();
        assert_eq!(v[0]["rule"], "ban-drop-table");
        assert_eq!(v[0]["severity"], "error");
        assert_eq!(v[0]["line"], 1);
        assert_eq!(v[0]["table"], "users");
    }
}
