//! refinery: `V<n>__<name>.sql` and `U<n>__<name>.sql` (versioned and unversioned,
//! both ordered by their integer), no downs. A file containing the line
//! `-- +refinery NO TRANSACTION` runs outside a transaction, as refinery does.

use std::path::PathBuf;

use super::{sql_entries, Entry, Found, Layout, Listing};
use crate::migration::FileError;

fn parse(file_name: &str) -> Option<(String, String)> {
    let stem = file_name.strip_suffix(".sql")?;
    let rest = stem.strip_prefix('V').or_else(|| stem.strip_prefix('U'))?;
    let (n, name) = rest.split_once("__")?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !name.trim().is_empty())
        .then(|| (n.to_string(), name.to_string()))
}

pub(crate) fn list(top: &[(PathBuf, super::Kind)]) -> Listing {
    let mut out = Listing::default();
    let mut found = Found::default();
    for (path, n) in sql_entries(top, &mut out.errors) {
        match parse(&n) {
            Some((v, name)) => found.insert_digits(&mut out, path, &v, name),
            None => out.errors.push(FileError::LayoutName {
                path,
                layout: Layout::Refinery,
            }),
        }
    }
    for (version, (up, name)) in found.0 {
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
    out
}
