//! dbmate, Supabase CLI, golang-migrate and sqlx: `<version>_<name>.sql` (sections
//! `-- migrate:up` / `-- migrate:down`) or `<version>_<name>.up.sql` + `.down.sql`.
//! The character between version and name is configurable (`-` for `<digits>-<name>.sql`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{digits, file_name, sql_entries, Entry, Listing};
use crate::migration::{Direction, FileError, FileName, Version};

/// `0003_add_users.up.sql` → ("0003", "add_users", Some(Up)), with `sep` after the digits.
pub fn parse(file_name: &str, sep: char) -> Option<FileName> {
    let (version, name, pair) = shape(file_name, sep)?;
    Some(FileName {
        version: version.to_string(),
        name: name.to_string(),
        pair,
    })
}

/// [`parse`] without copying the parts out of the name (the layout is detected from
/// every entry of the directory).
pub(crate) fn shape(file_name: &str, sep: char) -> Option<(&str, &str, Option<Direction>)> {
    let stem = file_name.strip_suffix(".sql")?;
    let (stem, pair) = if let Some(s) = stem.strip_suffix(".up") {
        (s, Some(Direction::Up))
    } else if let Some(s) = stem.strip_suffix(".down") {
        (s, Some(Direction::Down))
    } else {
        (stem, None)
    };
    let (version, name) = stem.split_once(sep)?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) || name.trim().is_empty()
    {
        return None;
    }
    Some((version, name, pair))
}

/// Files found for one version: the up (or single) file with its name, the down file.
type Found = (Option<(PathBuf, String)>, Option<PathBuf>);

pub(crate) fn list(top: &[(PathBuf, super::Kind)], sep: char) -> Listing {
    let mut out = Listing::default();
    let mut found: BTreeMap<Version, Found> = BTreeMap::new();
    for (path, name) in sql_entries(top, &mut out.errors) {
        let Some(parsed) = parse(&name, sep) else {
            let other = if sep == '_' { '-' } else { '_' };
            out.errors.push(if parse(&name, other).is_some() {
                FileError::Separator {
                    path,
                    found: other,
                    expected: sep,
                }
            } else {
                FileError::BadName { path }
            });
            continue;
        };
        let version = match digits(&path, &parsed.version) {
            Ok(v) => v,
            Err(e) => {
                out.errors.push(e);
                continue;
            }
        };
        let slot = found.entry(version.clone()).or_default();
        let existing = match parsed.pair {
            Some(Direction::Down) => slot.1.replace(path.clone()),
            _ => slot.0.replace((path.clone(), parsed.name)).map(|(p, _)| p),
        };
        if let Some(first) = existing {
            out.errors.push(FileError::DuplicateVersion {
                version: version.text,
                first,
                second: path,
            });
        }
    }
    out.entries.reserve_exact(found.len());
    for (version, (up, down)) in found {
        match (up, down) {
            (Some((up, name)), down) => out.push(Entry {
                version,
                name,
                up,
                down,
                no_transaction: false,
            }),
            (None, Some(down)) => {
                let expected = file_name(&down).replace(".down.sql", ".up.sql");
                out.errors.push(FileError::OrphanDown {
                    path: down,
                    expected,
                });
            }
            (None, None) => {}
        }
    }
    out
}
