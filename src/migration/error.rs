use std::path::PathBuf;

/// Problems with migration files. Each names the file (and line where there is one)
/// and says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("reading migrations directory {dir}: {source}")]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: file name is not a migration name: expected <version>_<name>.sql \
         (or .up.sql/.down.sql), the version made of digits, e.g. 20251105211941_create_users.sql; \
         rename the file or move it out of the migrations directory"
    )]
    BadName { path: PathBuf },
    #[error("{path}: version {version} has more than 38 digits")]
    VersionTooLong { path: PathBuf, version: String },
    #[error(
        "{first} and {second} both have version {version}: each version must be unique; \
         renumber one of them"
    )]
    DuplicateVersion {
        version: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{path}:{line}:{col}: not valid UTF-8 (byte 0x{byte:02x}); save the file as UTF-8")]
    NotUtf8 {
        path: PathBuf,
        line: u32,
        col: u32,
        byte: u8,
    },
    #[error("{path}:{line}: {message}")]
    Directive {
        path: PathBuf,
        line: u32,
        message: String,
    },
    #[error(
        "{path}: a .down.sql file without its .up.sql file; add {expected} or remove the down file"
    )]
    OrphanDown { path: PathBuf, expected: String },
    #[error(
        "{path}: not a migration name in the {layout} layout: expected {}; rename the file, \
         move it out of the migrations directory, or declare the layout the project uses \
         (--layout, `layout:` in pgrollout.yml)", .layout.expected()
    )]
    LayoutName {
        path: PathBuf,
        layout: crate::migration::layout::Layout,
    },
    #[error(
        "{path}: not a migration name: it has `{found}` between version and name where `{expected}` \
         is expected; declare the separator with --version-separator {found} \
         (or `version_separator: \"{found}\"` in pgrollout.yml), or rename the file"
    )]
    Separator {
        path: PathBuf,
        found: char,
        expected: char,
    },
    /// An entry named like a migration that cannot be read as one: never skipped.
    #[error("{path}: {why}")]
    NotAFile { path: PathBuf, why: String },
    #[error(
        "{dir}: files of more than one layout: {found}; declare the one to read with \
         --layout NAME (or `layout:` in pgrollout.yml) and move the others out"
    )]
    AmbiguousLayout { dir: PathBuf, found: String },
    #[error("{path}: {message}")]
    Unsupported { path: PathBuf, message: String },
    #[error(
        "{dir}: {count} .sql file(s) (e.g. {example}) but none was read as a migration in the \
         {layout} layout; {hint}"
    )]
    NothingRead {
        dir: PathBuf,
        count: usize,
        example: PathBuf,
        layout: crate::migration::layout::Layout,
        hint: String,
    },
    #[error("{path}:{line}:{col}: {message}")]
    Sql {
        path: PathBuf,
        line: u32,
        col: u32,
        message: String,
    },
}

impl FileError {
    /// The files the error is about (for telling reported entries from stray ones).
    pub(crate) fn paths(&self) -> Vec<&std::path::Path> {
        use FileError::*;
        match self {
            ReadDir { dir, .. } | AmbiguousLayout { dir, .. } | NothingRead { dir, .. } => {
                vec![dir]
            }
            DuplicateVersion { first, second, .. } => vec![first, second],
            Read { path, .. }
            | BadName { path }
            | VersionTooLong { path, .. }
            | NotUtf8 { path, .. }
            | Directive { path, .. }
            | OrphanDown { path, .. }
            | LayoutName { path, .. }
            | Separator { path, .. }
            | NotAFile { path, .. }
            | Unsupported { path, .. }
            | Sql { path, .. } => vec![path],
        }
    }
}
