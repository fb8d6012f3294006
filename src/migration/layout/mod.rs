//! Layouts: how a project's migration tool names and arranges its files. Each layout
//! reads a directory into [`Entry`]s (version, name, up file, down file, options); the
//! engine only ever sees the [`MigrationSet`](super::MigrationSet) built from them.
//! Pure: directory listing and file reads only.

use std::path::{Path, PathBuf};

use super::{FileError, Version};

mod diesel;
pub mod flyway;
pub use flyway::version as flyway_version;
pub(crate) mod native;
mod refinery;
mod sqitch;

/// A migration tool's file layout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `<version>_<name>.sql` with `-- migrate:up` / `-- migrate:down` sections
    /// (dbmate, Supabase CLI, pgrollout's own).
    #[default]
    Dbmate,
    /// `<version>_<name>.up.sql` + `.down.sql` pairs (golang-migrate, sqlx reversible).
    GolangMigrate,
    /// `V<version>__<desc>.sql`, `U<version>__<desc>.sql` undo files.
    Flyway,
    /// `V<n>__<name>.sql` / `U<n>__<name>.sql` (unversioned, ordered with the rest).
    Refinery,
    /// `<version>_<name>/up.sql` + `down.sql` directories, `metadata.toml`.
    Diesel,
    /// `sqitch.plan` with `deploy/`, `revert/`, `verify/`.
    Sqitch,
}

/// Every name `--layout` and `layout:` accept, with what each reads as.
pub const NAMES: &[(&str, Layout)] = &[
    ("dbmate", Layout::Dbmate),
    ("supabase", Layout::Dbmate),
    ("pgrollout", Layout::Dbmate),
    ("golang-migrate", Layout::GolangMigrate),
    ("sqlx", Layout::GolangMigrate),
    ("flyway", Layout::Flyway),
    ("refinery", Layout::Refinery),
    ("diesel", Layout::Diesel),
    ("sqitch", Layout::Sqitch),
];

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Dbmate => "dbmate",
            Layout::GolangMigrate => "golang-migrate",
            Layout::Flyway => "flyway",
            Layout::Refinery => "refinery",
            Layout::Diesel => "diesel",
            Layout::Sqitch => "sqitch",
        }
    }

    pub fn from_name(name: &str) -> Option<Layout> {
        let n = name.trim().to_ascii_lowercase();
        NAMES.iter().find(|(k, _)| *k == n).map(|(_, l)| *l)
    }

    /// What a file name looks like in this layout, for error messages.
    pub fn expected(self) -> &'static str {
        match self {
            Layout::Dbmate => "<version>_<name>.sql, the version made of digits",
            Layout::GolangMigrate => "<version>_<name>.up.sql and <version>_<name>.down.sql",
            Layout::Flyway => "V<version>__<description>.sql (or U… for undo), the version integers separated by . or _",
            Layout::Refinery => "V<n>__<name>.sql or U<n>__<name>.sql",
            Layout::Diesel => "<version>_<name>/up.sql (and down.sql) directories",
            Layout::Sqitch => "changes listed in sqitch.plan with deploy/<change>.sql",
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How to read a directory: the layout (detected when `None`) and, for the dbmate
/// layout, the character between version and name (`_` by default; `-` reads
/// `<digits>-<name>.sql` init scripts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayoutOptions {
    pub layout: Option<Layout>,
    pub separator: Option<char>,
}

/// One migration as a layout lists it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub version: Version,
    pub name: String,
    pub up: PathBuf,
    pub down: Option<PathBuf>,
    /// The layout's own "run outside a transaction" setting (diesel's metadata.toml,
    /// Flyway's `.sql.conf`, refinery's `-- +refinery NO TRANSACTION`).
    pub no_transaction: bool,
}

/// A repeatable migration as a layout lists it: no version; it runs again whenever its
/// checksum changes, after the versioned migrations, in description order.
#[derive(Debug, Clone)]
pub struct Repeatable {
    pub name: String,
    pub path: PathBuf,
}

/// A directory read by one layout.
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<Entry>,
    pub errors: Vec<FileError>,
    /// Entries of the directory that are neither read as migrations nor reported as
    /// errors (a README, a `.txt`): warned about, never silently skipped.
    pub stray: Vec<PathBuf>,
    /// Flyway's repeatable migrations (`R__<description>.sql`), in description order.
    pub repeatables: Vec<Repeatable>,
    /// What the layout read but pgrollout cannot check, said in `status` and `plan`
    /// (sqitch's dependencies on other projects' changes).
    pub notes: Vec<String>,
}

impl Listing {
    fn push(&mut self, e: Entry) {
        self.entries.push(e);
    }
}

/// The sorted entries of a directory (files and subdirectories).
pub(crate) fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, FileError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|source| FileError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    for e in entries {
        out.push(
            e.map_err(|source| FileError::ReadDir {
                dir: dir.to_path_buf(),
                source,
            })?
            .path(),
        );
    }
    // One directory's entries: see `read_dir_kinds`.
    out.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
    Ok(out)
}

/// What a directory entry is, from the directory listing itself (no `stat` per entry;
/// a symbolic link is followed, as opening it would).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    /// A FIFO, socket or device.
    Other,
    /// A dangling link, an entry that vanished: why it cannot be looked at.
    Unreadable(String),
}

/// [`read_dir`] with each entry's [`Kind`]: listing thousands of migrations costs one
/// `getdents` per block of entries instead of a `stat` per entry.
pub(crate) fn read_dir_kinds(dir: &Path) -> Result<Vec<(PathBuf, Kind)>, FileError> {
    let entries = std::fs::read_dir(dir).map_err(|source| FileError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|source| FileError::ReadDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let kind = |t: std::fs::FileType| {
            if t.is_file() {
                Kind::File
            } else if t.is_dir() {
                Kind::Dir
            } else {
                Kind::Other
            }
        };
        let k = match e.file_type() {
            Ok(t) if !t.is_symlink() => kind(t),
            _ => std::fs::metadata(e.path())
                .map_or_else(|e| Kind::Unreadable(e.to_string()), |m| kind(m.file_type())),
        };
        out.push((e.path(), k));
    }
    // Entries of one directory differ in their last component only: comparing the
    // bytes orders them as `Path`'s component-wise comparison would, at a fraction of
    // its cost (which showed at thousands of files).
    out.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
    Ok(out)
}

/// The regular `.sql` files of `dir` with their names, for the layouts with one file per
/// migration. An entry named like one (`.SQL`, a directory, a FIFO) that cannot be read
/// goes into `errors` instead, never opened.
pub(crate) fn sql_entries(
    top: &[(PathBuf, Kind)],
    errors: &mut Vec<FileError>,
) -> Vec<(PathBuf, String)> {
    let mut out = Vec::with_capacity(top.len());
    for (path, kind) in top {
        let name = file_name(path);
        let b = name.as_bytes();
        if b.len() < 4 || !b[b.len() - 4..].eq_ignore_ascii_case(b".sql") {
            continue;
        }
        match not_a_file(path, kind) {
            Some(e) => errors.push(e),
            None => out.push((path.clone(), name.into_owned())),
        }
    }
    out
}

/// Why an entry whose name ends in `.sql` in any case cannot be read as a migration file,
/// if it cannot: an upper-case extension (read by nobody, yet it looks like a migration),
/// a directory, or a special file — a FIFO would hang the read, so nothing is opened.
pub(crate) fn not_a_file(p: &Path, kind: &Kind) -> Option<FileError> {
    let name = file_name(p);
    let why = match kind {
        Kind::Dir => "a directory named like a migration file: migrations are files; rename or move it"
            .to_string(),
        Kind::Other => "not a regular file (a FIFO, socket or device): it is not opened; replace it with a file or move it"
            .to_string(),
        Kind::File if !name.ends_with(".sql") => format!(
            "the extension must be lower-case `.sql`: rename it to {}",
            name[..name.len() - 4].to_string() + ".sql"
        ),
        Kind::File => return None,
        Kind::Unreadable(e) => format!("cannot be read: {e}"),
    };
    Some(FileError::NotAFile {
        path: p.to_path_buf(),
        why,
    })
}

/// The entry's name, borrowed when it is UTF-8 (as migration names are).
pub(crate) fn file_name(p: &Path) -> std::borrow::Cow<'_, str> {
    p.file_name()
        .map_or(std::borrow::Cow::Borrowed(""), |f| f.to_string_lossy())
}

fn is_sql_file(p: &Path) -> bool {
    p.is_file() && file_name(p).ends_with(".sql")
}

/// Decide the layout from the shapes of the files. An error when the shapes of two
/// layouts are mixed (say which files look like which, and ask to declare one).
pub fn detect(dir: &Path, separator: Option<char>) -> Result<Layout, FileError> {
    detect_in(dir, &read_dir_kinds(dir)?, separator)
}

/// [`detect`] on the directory's listing `top`, read once by the caller.
fn detect_in(
    dir: &Path,
    top: &[(PathBuf, Kind)],
    separator: Option<char>,
) -> Result<Layout, FileError> {
    if top
        .iter()
        .any(|(p, k)| *k == Kind::File && file_name(p) == "sqitch.plan")
    {
        return Ok(Layout::Sqitch);
    }
    // The first file of each shape, to name in an error.
    let mut shapes: Vec<(Layout, PathBuf)> = Vec::new();
    for (p, kind) in top {
        let shape = if *kind == Kind::Dir && p.join("up.sql").is_file() {
            Some(Layout::Diesel)
        } else if *kind == Kind::File && file_name(p).ends_with(".sql") {
            let n = file_name(p);
            match native::shape(&n, separator.unwrap_or('_')) {
                Some((_, _, Some(_))) => Some(Layout::GolangMigrate),
                Some((_, _, None)) => Some(Layout::Dbmate),
                None => flyway::parse(&n).map(|_| Layout::Flyway),
            }
        } else {
            None
        };
        if let Some(l) = shape.filter(|l| !shapes.iter().any(|(s, _)| s == l)) {
            let file = if l == Layout::Diesel {
                p.join("up.sql")
            } else {
                p.clone()
            };
            shapes.push((l, file));
        }
    }
    let has = |l: Layout| shapes.iter().find(|(s, _)| *s == l).map(|(_, p)| p);
    // dbmate single files and golang-migrate pairs are read by one reader: not a mix.
    let native = has(Layout::GolangMigrate).or(has(Layout::Dbmate));
    let families: Vec<(&str, &PathBuf)> = [
        native.map(|p| ("dbmate/golang-migrate", p)),
        has(Layout::Flyway).map(|p| ("flyway/refinery", p)),
        has(Layout::Diesel).map(|p| ("diesel", p)),
    ]
    .into_iter()
    .flatten()
    .collect();
    if families.len() > 1 {
        return Err(FileError::AmbiguousLayout {
            dir: dir.to_path_buf(),
            found: families
                .iter()
                .map(|(l, p)| format!("{} ({l})", p.display()))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if has(Layout::Diesel).is_some() {
        return Ok(Layout::Diesel);
    }
    if has(Layout::Flyway).is_some() {
        let paths: Vec<PathBuf> = top.iter().map(|(p, _)| p.clone()).collect();
        return Ok(flyway::flyway_or_refinery(&paths));
    }
    if has(Layout::GolangMigrate).is_some() {
        return Ok(Layout::GolangMigrate);
    }
    Ok(Layout::Dbmate)
}

/// Read `dir` with the declared layout, or the detected one.
pub fn list(dir: &Path, opts: &LayoutOptions) -> Result<(Layout, Listing), FileError> {
    // The directory is listed once: thousands of entries cost a listing each time.
    let top = read_dir_kinds(dir)?;
    let layout = match opts.layout {
        Some(l) => l,
        None => detect_in(dir, &top, opts.separator)?,
    };
    let listing = match layout {
        Layout::Dbmate | Layout::GolangMigrate => native::list(&top, opts.separator.unwrap_or('_')),
        Layout::Flyway => flyway::list(&top),
        Layout::Refinery => refinery::list(&top),
        Layout::Diesel => diesel::list(dir)?,
        Layout::Sqitch => sqitch::list(dir)?,
    };
    let mut listing = listing;
    listing.stray = stray(&top, layout, &listing);
    Ok((layout, listing))
}

/// The top-level entries of `dir` that `listing` neither read nor reported. Hidden
/// entries (`.gitkeep`, `.DS_Store`) are left out unless they end in `.sql`, and so are
/// the companions a layout reads itself: Flyway's `<file>.sql.conf`, sqitch's plan,
/// configuration and script directories.
fn stray(top: &[(PathBuf, Kind)], layout: Layout, listing: &Listing) -> Vec<PathBuf> {
    // Compared as the bytes they were listed with (all are `dir` joined with a name),
    // not component by component as `Path`'s `Hash` and `Eq` would.
    let mut used: std::collections::HashSet<&std::ffi::OsStr> = std::collections::HashSet::new();
    used.extend(listing.repeatables.iter().map(|r| r.path.as_os_str()));
    for e in &listing.entries {
        for p in std::iter::once(&e.up).chain(e.down.as_ref()) {
            used.insert(p.as_os_str());
            // diesel's `<version>_<name>/up.sql`: the directory is the migration.
            if layout == Layout::Diesel {
                used.extend(p.parent().map(Path::as_os_str));
            }
        }
    }
    for e in &listing.errors {
        used.extend(e.paths().into_iter().map(Path::as_os_str));
    }
    let companion = |name: &str| match layout {
        Layout::Flyway => name.ends_with(".sql.conf"),
        Layout::Sqitch => matches!(
            name,
            "sqitch.plan" | "sqitch.conf" | "deploy" | "revert" | "verify"
        ),
        _ => false,
    };
    let mut out = Vec::new();
    for (p, _) in top {
        let name = file_name(p);
        let hidden = name.starts_with('.') && !name.to_ascii_lowercase().ends_with(".sql");
        if !hidden && !companion(&name) && !used.contains(p.as_os_str()) {
            out.push(p.clone());
        }
    }
    out
}

/// `.sql` files under `dir` (two levels deep: diesel's directories, sqitch's deploy/),
/// for the "read nothing" check: a directory with SQL files of which none became a
/// migration is never "0 migrations".
pub fn sql_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(top) = read_dir(dir) else {
        return out;
    };
    for p in top {
        if is_sql_file(&p) {
            out.push(p);
        } else if p.is_dir() {
            if let Ok(inner) = read_dir(&p) {
                out.extend(inner.into_iter().filter(|q| is_sql_file(q)));
            }
        }
    }
    out
}

/// What to declare when `files` were found but none was read as a migration.
pub fn hint(dir: &Path, files: &[PathBuf]) -> String {
    let names: Vec<String> = files.iter().map(|f| file_name(f).into_owned()).collect();
    let layout = if dir.join("sqitch.plan").is_file() {
        Some(Layout::Sqitch)
    } else if names.iter().any(|n| n == "up.sql") {
        Some(Layout::Diesel)
    } else if names.iter().any(|n| flyway::parse(n).is_some()) {
        Some(Layout::Flyway)
    } else {
        None
    };
    match layout {
        Some(l) => format!(
            "they look like the {l} layout: declare it with --layout {l} (or `layout: {l}` in pgrollout.yml)"
        ),
        None if names.iter().any(|n| native::parse(n, '-').is_some()) => {
            "they look like <digits>-<name>.sql: declare the separator with --version-separator - \
             (or `version_separator: \"-\"` in pgrollout.yml)"
                .into()
        }
        None => format!(
            "no layout pgrollout knows reads them; the layouts are: {}",
            NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Migrations found so far by version (path and name), for layouts with one file or
/// directory per version.
#[derive(Default)]
struct Found(std::collections::BTreeMap<Version, (PathBuf, String)>);

impl Found {
    /// Record `path` under the version `digits`; a bad or duplicate version is an error.
    fn insert_digits(&mut self, out: &mut Listing, path: PathBuf, text: &str, name: String) {
        let v = match digits(&path, text) {
            Ok(v) => v,
            Err(e) => return out.errors.push(e),
        };
        if let Some((first, _)) = self.0.insert(v.clone(), (path.clone(), name)) {
            out.errors.push(FileError::DuplicateVersion {
                version: v.text,
                first,
                second: path,
            });
        }
    }
}

/// A version from digits, or an error naming the file.
fn digits(path: &Path, text: &str) -> Result<Version, FileError> {
    Version::parse(text).ok_or_else(|| FileError::VersionTooLong {
        path: path.to_path_buf(),
        version: text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_versions_order_by_integer_parts() {
        let v = |t: &str| flyway::version(t).unwrap();
        assert!(v("1.2") < v("1.10"));
        assert!(v("1") < v("1.1"));
        assert!(v("1.10") < v("2"));
        assert!(v("9") < v("10"));
        assert_eq!(v("1"), v("1.0.0"));
        assert_eq!(v("1.02"), v("1.2"));
        assert!(v("20220110.1703") < v("20220110.1704"));
        assert!(crate::migration::dotted_key("1..2").is_none());
        assert!(crate::migration::dotted_key(&"9".repeat(37)).is_none());
    }

    #[test]
    fn flyway_names() {
        let n = flyway::parse("V1_2__add_x.sql").unwrap();
        assert_eq!(
            (n.kind, n.version.as_str(), n.description.as_str()),
            (flyway::Kind::Versioned, "1.2", "add_x")
        );
        assert_eq!(
            flyway::parse("U3__undo.sql").unwrap().kind,
            flyway::Kind::Undo
        );
        assert_eq!(
            flyway::parse("R__views.sql").unwrap().kind,
            flyway::Kind::Repeatable
        );
        for bad in [
            "V1_x.sql",
            "V__x.sql",
            "Va__x.sql",
            "V1__.sql",
            "R1__x.sql",
            "1_x.sql",
        ] {
            assert!(flyway::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn diesel_directory_names() {
        assert_eq!(
            diesel::parse("2019-01-01-000000_create_t"),
            Some(("20190101000000".into(), "create_t".into()))
        );
        assert!(diesel::parse("create_t").is_none());
    }

    #[test]
    fn native_separator() {
        assert!(native::parse("0001-init.sql", '_').is_none());
        let f = native::parse("0001-init.sql", '-').unwrap();
        assert_eq!((f.version.as_str(), f.name.as_str()), ("0001", "init"));
    }

    #[test]
    fn sqitch_plan_order_tags_and_reworks() {
        let plan = "%syntax-version=1.0.0\n%project=flipr\n\n\
            appschema 2024-01-01T00:00:00Z A <a@x> # schema\n\
            users [appschema] 2024-01-02T00:00:00Z A <a@x> # users\n\
            @v1.0 2024-01-03T00:00:00Z A <a@x> # tag\n\
            users [users@v1.0 other:thing] 2024-01-04T00:00:00Z A <a@x> # rework\n";
        let c = sqitch::parse_plan(Path::new("sqitch.plan"), plan).unwrap();
        let scripts: Vec<&str> = c.iter().map(|c| c.script.as_str()).collect();
        assert_eq!(scripts, ["appschema", "users@v1.0", "users"]);
        assert_eq!(c[2].requires, ["users@v1.0", "other:thing"]);
        assert_eq!(c[1].line, 5);
        let no_tag = "a 2024-01-01T00:00:00Z A <a@x>\na 2024-01-02T00:00:00Z A <a@x>\n";
        assert!(sqitch::parse_plan(Path::new("p"), no_tag).is_err());
    }
}
