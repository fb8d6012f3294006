//! Errors of the pipeline file, positioned at file:line:column.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading the pipeline file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{col}: {message}{}", path.display(), suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    Syntax {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
        suggestion: Option<String>,
    },
    #[error(
        "{}:{line}:{col}: a database URL is written in the pipeline file; the file is committed, \
         and a URL carries the password. Put the URL in a secret, expose it as an environment \
         variable in the workflow (env: STAGING_DATABASE_URL: ${{{{ secrets.STAGING_DATABASE_URL }}}}), \
         and name that variable with `database_url_env: STAGING_DATABASE_URL`",
        path.display()
    )]
    UrlInFile {
        path: PathBuf,
        line: usize,
        col: usize,
    },
    #[error("{}:{line}:{col}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
}

impl ConfigError {
    /// The message without its `file:line:col: ` prefix, for reporters that show the
    /// position apart (terminal lines, GitHub annotations).
    pub fn body(&self) -> String {
        let full = self.to_string();
        match self.position() {
            Some((path, line, col)) => full
                .strip_prefix(&format!("{}:{line}:{col}: ", path.display()))
                .unwrap_or(&full)
                .to_string(),
            None => full,
        }
    }

    /// File, line and column, when the error has them (for annotations).
    pub fn position(&self) -> Option<(&Path, usize, usize)> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax {
                path, line, col, ..
            }
            | ConfigError::UrlInFile { path, line, col }
            | ConfigError::Invalid {
                path, line, col, ..
            } => Some((path, *line, *col)),
        }
    }
}

/// Turn serde_yaml_ng's message ("unknown field `stpes`, expected one of `a`, `b` at line 5
/// column 5") into a positioned error with a suggestion.
pub(super) fn from_yaml(path: &Path, e: &serde_yaml_ng::Error) -> ConfigError {
    let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
    let mut message = e.to_string();
    if let Some(p) = message.rfind(" at line ") {
        message.truncate(p);
    }
    let suggestion = unknown_name(&message).and_then(|(word, expected)| {
        let known: Vec<&str> = expected.iter().map(String::as_str).collect();
        super::did_you_mean(&word, &known).map(str::to_string)
    });
    if let Some((word, _)) = unknown_name(&message) {
        if matches!(word.as_str(), "database_url" | "url" | "database-url") {
            message.push_str(
                "; URLs never go in the pipeline file: use `database_url_env: NAME_OF_VARIABLE`",
            );
            return ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                col,
                message,
                suggestion: None,
            };
        }
    }
    ConfigError::Syntax {
        path: path.to_path_buf(),
        line,
        col,
        message,
        suggestion,
    }
}

/// From "unknown field `x`, expected one of `a`, `b`" or "unknown variant `x`, expected
/// `a` or `b`": the unknown word and the expected ones.
fn unknown_name(message: &str) -> Option<(String, Vec<String>)> {
    let p = message
        .find("unknown field `")
        .map(|p| p + "unknown field `".len())
        .or_else(|| {
            message
                .find("unknown variant `")
                .map(|p| p + "unknown variant `".len())
        })?;
    let rest = &message[p..];
    let end = rest.find('`')?;
    let word = rest[..end].to_string();
    let expected: Vec<String> = rest[end + 1..]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((word, expected))
}

/// A pipeline file that is not UTF-8, positioned at its first bad byte (line and column
/// counted in the characters before it).
pub(super) fn not_utf8(path: &Path, bytes: &[u8], e: &std::str::Utf8Error) -> ConfigError {
    let good = &bytes[..e.valid_up_to()];
    let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        col,
        message: format!(
            "the pipeline file is not valid UTF-8 (byte 0x{:02x}); save it as UTF-8",
            bytes[e.valid_up_to()]
        ),
    }
}
