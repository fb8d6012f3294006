//! Flyway: `V<version>__<description>.sql` versioned migrations, `U<version>__…` undo
//! files (read as downs), `R__<description>.sql` repeatables. Versions are integers
//! separated by `.` or `_` and compared part by part, so `V1_10` comes after `V1_2`.
//! A `<file>.sql.conf` with `executeInTransaction=false` runs the file outside a
//! transaction, as Flyway does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{file_name, sql_entries, Entry, Layout, Listing, Repeatable};
use crate::migration::{FileError, Version};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Versioned,
    Undo,
    Repeatable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub kind: Kind,
    /// The version as Flyway shows it (`_` read as `.`); empty for a repeatable.
    pub version: String,
    pub description: String,
}

/// Take a Flyway file name apart. `None` when it is not one.
pub fn parse(file_name: &str) -> Option<Name> {
    let stem = file_name.strip_suffix(".sql")?;
    let kind = match stem.as_bytes().first()? {
        b'V' => Kind::Versioned,
        b'U' => Kind::Undo,
        b'R' => Kind::Repeatable,
        _ => return None,
    };
    let (version, description) = stem[1..].split_once("__")?;
    if description.trim().is_empty() {
        return None;
    }
    let version = version.replace('_', ".");
    let ok = match kind {
        Kind::Repeatable => version.is_empty(),
        _ => crate::migration::dotted_key(&version).is_some(),
    };
    ok.then(|| Name {
        kind,
        version,
        description: description.to_string(),
    })
}

/// Flyway's version as pgrollout keys it: always dotted (`1` is Flyway's `1.0`), so
/// every version of the project has the same packed key and `1` < `1.1` < `2`.
pub fn version(text: &str) -> Option<Version> {
    let text = if text.contains('.') {
        text.to_string()
    } else {
        format!("{text}.0")
    };
    Version::parse(&text)
}

/// `V`/`U` files share their shape with refinery's. They are Flyway's when a version
/// has several parts, a repeatable exists, or an undo file has a versioned twin (in
/// refinery `U` files are unversioned migrations with versions of their own).
pub fn flyway_or_refinery(paths: &[PathBuf]) -> Layout {
    let names: Vec<Name> = paths.iter().filter_map(|p| parse(&file_name(p))).collect();
    let flyway_only = names.iter().any(|n| {
        n.kind == Kind::Repeatable
            || n.version.contains('.')
            || (n.kind == Kind::Undo
                && names
                    .iter()
                    .any(|v| v.kind == Kind::Versioned && v.version == n.version))
    });
    let undo = names.iter().any(|n| n.kind == Kind::Undo);
    if undo && !flyway_only {
        Layout::Refinery
    } else {
        Layout::Flyway
    }
}

fn no_transaction_conf(path: &Path) -> Result<bool, FileError> {
    let conf = PathBuf::from(format!("{}.conf", path.display()));
    if !conf.is_file() {
        return Ok(false);
    }
    let text = std::fs::read_to_string(&conf).map_err(|source| FileError::Read {
        path: conf.clone(),
        source,
    })?;
    Ok(text.lines().any(|l| {
        l.split_once('=').is_some_and(|(k, v)| {
            k.trim() == "executeInTransaction" && v.trim().eq_ignore_ascii_case("false")
        })
    }))
}

pub(crate) fn list(top: &[(PathBuf, super::Kind)]) -> Listing {
    let mut out = Listing::default();
    let mut ups: BTreeMap<Version, (PathBuf, String)> = BTreeMap::new();
    let mut downs: BTreeMap<Version, PathBuf> = BTreeMap::new();
    // Flyway runs repeatables in the order of their descriptions.
    let mut repeatables: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (path, n) in sql_entries(top, &mut out.errors) {
        let Some(name) = parse(&n) else {
            out.errors.push(FileError::LayoutName {
                path,
                layout: Layout::Flyway,
            });
            continue;
        };
        if name.kind == Kind::Repeatable {
            match no_transaction_conf(&path) {
                Ok(false) => {}
                Ok(true) => {
                    out.errors.push(FileError::Unsupported {
                        path,
                        message: "a repeatable migration with executeInTransaction=false: \
                                  pgrollout runs repeatables in a transaction, with their record; \
                                  move the non-transactional SQL into a versioned migration"
                            .into(),
                    });
                    continue;
                }
                Err(e) => {
                    out.errors.push(e);
                    continue;
                }
            }
            if let Some(first) = repeatables.insert(name.description.clone(), path.clone()) {
                out.errors.push(FileError::DuplicateVersion {
                    version: format!("R__{}", name.description),
                    first,
                    second: path,
                });
            }
            continue;
        }
        let Some(v) = version(&name.version) else {
            out.errors.push(FileError::VersionTooLong {
                path,
                version: name.version,
            });
            continue;
        };
        let existing = if name.kind == Kind::Undo {
            downs.insert(v.clone(), path.clone())
        } else {
            ups.insert(v.clone(), (path.clone(), name.description))
                .map(|(p, _)| p)
        };
        if let Some(first) = existing {
            out.errors.push(FileError::DuplicateVersion {
                version: v.text,
                first,
                second: path,
            });
        }
    }
    out.repeatables = repeatables
        .into_iter()
        .map(|(name, path)| Repeatable { name, path })
        .collect();
    for (v, down) in &downs {
        if !ups.contains_key(v) {
            out.errors.push(FileError::OrphanDown {
                path: down.clone(),
                expected: format!("V{}__<description>.sql", v.text),
            });
        }
    }
    for (version, (up, name)) in ups {
        let no_transaction = match no_transaction_conf(&up) {
            Ok(b) => b,
            Err(e) => {
                out.errors.push(e);
                continue;
            }
        };
        let down = downs.remove(&version);
        out.push(Entry {
            version,
            name,
            up,
            down,
            no_transaction,
        });
    }
    out
}

/// Flyway's checksum of a file, as `flyway_schema_history.checksum` holds it: CRC-32 of
/// each line's UTF-8 bytes without its line break (`\n`, `\r\n` or `\r`, as Java's
/// `readLine` splits), fed in order, the byte-order mark dropped; read as a signed
/// 32-bit integer.
pub fn checksum(text: &str) -> i32 {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut crc = crc32fast::Hasher::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        crc.update(&rest.as_bytes()[..end]);
        rest = &rest[end..];
        if let Some(r) = rest.strip_prefix("\r\n") {
            rest = r;
        } else if !rest.is_empty() {
            rest = &rest[1..];
        }
    }
    crc.finalize() as i32
}

#[cfg(test)]
mod checksum_tests {
    use super::checksum;

    #[test]
    fn line_breaks_and_the_bom_do_not_change_it() {
        let lf = checksum("CREATE VIEW v AS\nSELECT 1;\n");
        assert_eq!(lf, checksum("CREATE VIEW v AS\r\nSELECT 1;"));
        assert_eq!(lf, checksum("\u{feff}CREATE VIEW v AS\rSELECT 1;\n"));
        // CRC-32 of the two lines' bytes, concatenated.
        assert_eq!(lf, crc32fast::hash(b"CREATE VIEW v ASSELECT 1;") as i32);
        assert_ne!(lf, checksum("CREATE VIEW v AS\nSELECT 2;\n"));
    }
}
