//! refinery: `V<n>__<name>.sql` and `U<n>__<name>.sql` (versioned and unversioned,
//! both ordered by their integer), no downs. A file containing the line
//! `-- +refinery NO TRANSACTION` runs outside a transaction, as refinery does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{digits, file_name, read_dir, Entry, Layout, Listing};
use crate::migration::{FileError, Version};

fn parse(file_name: &str) -> Option<(String, String)> {
    let stem = file_name.strip_suffix(".sql")?;
    let rest = stem.strip_prefix('V').or_else(|| stem.strip_prefix('U'))?;
    let (n, name) = rest.split_once("__")?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !name.trim().is_empty())
        .then(|| (n.to_string(), name.to_string()))
}

pub fn list(dir: &Path) -> Result<Listing, FileError> {
    let mut out = Listing::default();
    let mut found: BTreeMap<Version, (PathBuf, String)> = BTreeMap::new();
    for path in read_dir(dir)? {
        let n = file_name(&path);
        if !n.ends_with(".sql") || path.is_dir() {
            continue;
        }
        let Some((v, name)) = parse(&n) else {
            out.errors.push(FileError::LayoutName {
                path,
                layout: Layout::Refinery,
            });
            continue;
        };
        let v = match digits(&path, &v) {
            Ok(v) => v,
            Err(e) => {
                out.errors.push(e);
                continue;
            }
        };
        if let Some((first, _)) = found.insert(v.clone(), (path.clone(), name)) {
            out.errors.push(FileError::DuplicateVersion {
                version: v.text,
                first,
                second: path,
            });
        }
    }
    for (version, (up, name)) in found {
        let no_transaction = match std::fs::read_to_string(&up) {
            Ok(text) => text
                .lines()
                .any(|l| l.trim() == "-- +refinery NO TRANSACTION"),
            // Read errors (and non-UTF-8) are reported when the file is loaded.
            Err(_) => false,
        };
        out.push(Entry {
            version,
            name,
            up,
            down: None,
            no_transaction,
        });
    }
    Ok(out)
}
