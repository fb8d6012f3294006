//! Who may use the server: named bearer tokens from `PGROLLOUT_SERVE_TOKENS`, compared
//! in constant time, and the same-site form token that guards the dashboard's buttons.

use std::fmt::Write;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The environment variable holding the tokens: `name:token,name:token`.
pub const TOKENS_ENV: &str = "PGROLLOUT_SERVE_TOKENS";

/// The cookie the login form sets, holding the token (HttpOnly, SameSite=Strict).
pub const COOKIE: &str = "pgrollout_token";

/// A token and the name it acts under (the history rows' `actor`).
#[derive(Clone)]
pub struct Token {
    pub name: String,
    secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({}, ***)", self.name)
    }
}

impl Token {
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

/// Shortest accepted token: anything shorter is guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// `name:token,…` → tokens. Empty entries are ignored; a malformed one is an error
/// that names its position, never its text (it is a secret).
pub fn parse_tokens(spec: &str) -> Result<Vec<Token>, String> {
    let mut out: Vec<Token> = Vec::new();
    for (i, part) in spec.split(',').enumerate() {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((name, secret)) = part.split_once(':') else {
            return Err(format!(
                "{TOKENS_ENV}: entry {} is not NAME:TOKEN (e.g. ci-bot:$(openssl rand -hex 32))",
                i + 1
            ));
        };
        let (name, secret) = (name.trim(), secret.trim());
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        {
            return Err(format!(
                "{TOKENS_ENV}: entry {}: the name must be letters, digits, `-`, `_`, `.` or `@`",
                i + 1
            ));
        }
        if !secret.chars().all(|c| c.is_ascii_graphic() && c != ';') {
            return Err(format!(
                "{TOKENS_ENV}: the token of `{name}` must be printable ASCII without spaces or `;` \
                 (it travels in a header and a cookie)"
            ));
        }
        if secret.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "{TOKENS_ENV}: the token of `{name}` is shorter than {MIN_TOKEN_LEN} characters; \
                 make one with `openssl rand -hex 32`"
            ));
        }
        if out.iter().any(|t| t.name == name) {
            return Err(format!("{TOKENS_ENV}: `{name}` is named twice"));
        }
        out.push(Token {
            name: name.to_string(),
            secret: secret.to_string(),
        });
    }
    Ok(out)
}

/// The token `given` matches, if any. Every token is compared, each in constant time
/// over SHA-256 digests (equal lengths: the time says nothing about a token's length
/// either), so the time taken says nothing about which one, or how much of one, matched.
pub fn check<'t>(tokens: &'t [Token], given: &str) -> Option<&'t Token> {
    let given = Sha256::digest(given.as_bytes());
    let mut found = None;
    for t in tokens {
        if bool::from(Sha256::digest(t.secret.as_bytes()).ct_eq(&given)) {
            found = Some(t);
        }
    }
    found
}

/// The value of `Authorization: Bearer …`, if that is how the header reads.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, value) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| value.trim())
        .filter(|v| !v.is_empty())
}

/// The value of cookie `name` in a `Cookie:` header.
pub fn cookie<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The form token of the dashboard's action buttons for `who`: a keyed SHA-256 of the
/// token's name under a secret made at start-up. A page of another site can neither
/// read it (same-origin policy) nor send the cookie with its forms (SameSite=Strict).
pub fn form_token(key: &[u8; 32], who: &str) -> String {
    let mut h = Sha256::new();
    h.update(key);
    h.update(b"pgrollout serve form token\0");
    h.update(who.as_bytes());
    h.finalize().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Constant-time equality of two texts (form tokens, confirmation phrases).
pub fn same(a: &str, b: &str) -> bool {
    bool::from(Sha256::digest(a.as_bytes()).ct_eq(&Sha256::digest(b.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_and_match() {
        let t = parse_tokens("alice:0123456789abcdef0, bot:fedcba9876543210f,").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(check(&t, "fedcba9876543210f").unwrap().name, "bot");
        assert!(check(&t, "fedcba9876543210").is_none());
        assert!(check(&t, "").is_none());
        assert!(parse_tokens("alice").is_err());
        assert!(parse_tokens("alice:short").is_err());
        assert!(parse_tokens("alice:0123456789abcdef;0").is_err());
        assert!(parse_tokens("alice:0123456789abcdéf0").is_err());
        let e = parse_tokens("a:0123456789abcdef0,a:0123456789abcdef1").unwrap_err();
        assert!(!e.contains("0123456789abcdef"), "{e}");
    }

    #[test]
    fn headers() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(cookie("a=1; pgrollout_token=xyz", COOKIE), Some("xyz"));
        assert_eq!(cookie("pgrollout_tokenx=1", COOKIE), None);
    }
}
