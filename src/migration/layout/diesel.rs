//! diesel: one directory per migration, `<version>_<name>/up.sql` and `down.sql`. The
//! version is the directory name before the first `_` with its dashes removed
//! (`2019-01-01-000000_create_t` → `20190101000000`), as diesel records it. A
//! `metadata.toml` with `run_in_transaction = false` runs the migration outside a
//! transaction.

use std::path::Path;

use super::{file_name, read_dir, Entry, Found, Layout, Listing};
use crate::migration::FileError;

/// `2019-01-01-000000_create_t` → ("20190101000000", "create_t").
pub fn parse(dir_name: &str) -> Option<(String, String)> {
    let (v, name) = dir_name.split_once('_')?;
    let v: String = v.chars().filter(|c| *c != '-').collect();
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && !name.trim().is_empty())
        .then(|| (v, name.to_string()))
}

fn run_in_transaction_false(dir: &Path) -> Result<bool, FileError> {
    let meta = dir.join("metadata.toml");
    if !meta.is_file() {
        return Ok(false);
    }
    let text = std::fs::read_to_string(&meta).map_err(|source| FileError::Read {
        path: meta.clone(),
        source,
    })?;
    Ok(text.lines().any(|l| {
        l.split_once('=').is_some_and(|(k, v)| {
            k.trim() == "run_in_transaction" && v.split('#').next().unwrap_or("").trim() == "false"
        })
    }))
}

pub fn list(dir: &Path) -> Result<Listing, FileError> {
    let mut out = Listing::default();
    let mut found = Found::default();
    for path in read_dir(dir)? {
        let n = file_name(&path);
        if !path.is_dir() {
            if n.ends_with(".sql") {
                out.errors.push(FileError::LayoutName {
                    path,
                    layout: Layout::Diesel,
                });
            }
            continue;
        }
        let up = path.join("up.sql");
        if !up.is_file() {
            let has_sql = read_dir(&path)?
                .iter()
                .any(|p| file_name(p).ends_with(".sql"));
            if has_sql {
                out.errors.push(FileError::LayoutName {
                    path: up,
                    layout: Layout::Diesel,
                });
            }
            continue;
        }
        match parse(&n) {
            Some((v, name)) => found.insert_digits(&mut out, path, &v, name),
            None => out.errors.push(FileError::LayoutName {
                path,
                layout: Layout::Diesel,
            }),
        }
    }
    for (version, (dir, name)) in found.0 {
        let no_transaction = match run_in_transaction_false(&dir) {
            Ok(b) => b,
            Err(e) => {
                out.errors.push(e);
                continue;
            }
        };
        let down = Some(dir.join("down.sql")).filter(|d| d.is_file());
        out.push(Entry {
            version,
            name,
            up: dir.join("up.sql"),
            down,
            no_transaction,
        });
    }
    Ok(out)
}
