//! sqitch: the changes of `sqitch.plan`, in plan order, each `deploy/<change>.sql` with
//! `revert/<change>.sql` as its down. A change deployed again after a tag (reworked)
//! keeps its earlier script as `deploy/<change>@<tag>.sql`, the first tag after it.
//! sqitch changes have no version: the version is the change's position in the plan
//! (1, 2, …), stable as long as the plan is only appended to — sqitch's own rule.

use std::path::Path;

use super::{digits, Entry, Listing};
use crate::migration::FileError;

/// One change line of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub name: String,
    /// 1-based line in sqitch.plan.
    pub line: u32,
    /// Dependencies as written (`appschema`, `!conflict`, `other_project:change`).
    pub requires: Vec<String>,
    /// The script name: `name`, or `name@tag` for a reworked change's earlier instance.
    pub script: String,
}

/// Parse the plan text into changes (tags resolve reworked script names).
pub fn parse_plan(path: &Path, text: &str) -> Result<Vec<Change>, FileError> {
    let mut changes: Vec<Change> = Vec::new();
    // Changes since the last tag, by index: the next tag names their scripts if reworked.
    let mut untagged: Vec<usize> = Vec::new();
    let mut tags: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i as u32 + 1;
        let line = raw.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('%') {
            continue;
        }
        if let Some(tag) = line.strip_prefix('@') {
            let tag = tag.split_whitespace().next().unwrap_or("").to_string();
            for &c in &untagged {
                tags.push((c, tag.clone()));
            }
            untagged.clear();
            continue;
        }
        let mut rest = line;
        if let Some(r) = rest.strip_prefix('+') {
            rest = r;
        } else if rest.starts_with('-') {
            return Err(FileError::Directive {
                path: path.to_path_buf(),
                line: line_no,
                message: "a `-change` (revert) line in the plan: pgrollout reads deploy-only plans"
                    .into(),
            });
        }
        let name = rest.split_whitespace().next().unwrap_or("").to_string();
        let mut requires = Vec::new();
        if let (Some(open), Some(close)) = (rest.find('['), rest.find(']')) {
            if open < close {
                requires = rest[open + 1..close]
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
            }
        }
        untagged.push(changes.len());
        changes.push(Change {
            script: name.clone(),
            name,
            line: line_no,
            requires,
        });
    }
    // An earlier instance of a reworked change is the script `name@<first tag after it>`.
    for i in 0..changes.len() {
        let later = changes[i + 1..].iter().any(|c| c.name == changes[i].name);
        if !later {
            continue;
        }
        let Some((_, tag)) = tags.iter().find(|(c, _)| *c == i) else {
            return Err(FileError::Directive {
                path: path.to_path_buf(),
                line: changes[i].line,
                message: format!(
                    "change `{}` is planned again later without a tag in between: sqitch needs a tag before a rework",
                    changes[i].name
                ),
            });
        };
        changes[i].script = format!("{}@{tag}", changes[i].name);
    }
    Ok(changes)
}

pub fn list(dir: &Path) -> Result<Listing, FileError> {
    let plan = dir.join("sqitch.plan");
    let text = std::fs::read_to_string(&plan).map_err(|source| FileError::Read {
        path: plan.clone(),
        source,
    })?;
    let mut out = Listing::default();
    for (i, c) in parse_plan(&plan, &text)?.into_iter().enumerate() {
        let up = dir.join("deploy").join(format!("{}.sql", c.script));
        if !up.is_file() {
            out.errors.push(FileError::Directive {
                path: plan.clone(),
                line: c.line,
                message: format!(
                    "change `{}` has no deploy script {}",
                    c.script,
                    up.display()
                ),
            });
            continue;
        }
        let down =
            Some(dir.join("revert").join(format!("{}.sql", c.script))).filter(|d| d.is_file());
        for dep in c.requires.iter().filter(|d| d.contains(':')) {
            out.notes.push(format!(
                "{}:{}: change `{}` requires `{dep}` from another sqitch project; pgrollout \
                 does not read other projects, so make sure that change is deployed first",
                plan.display(),
                c.line,
                c.name
            ));
        }
        let version = digits(&plan, &(i + 1).to_string())?;
        out.push(Entry {
            version,
            name: c.script,
            up,
            down,
            no_transaction: false,
        });
    }
    Ok(out)
}
