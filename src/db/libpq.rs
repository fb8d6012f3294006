//! libpq's connection conventions, so a setting that works for `psql` works for pgrollout:
//! URI parsing (multi-host, `?host=/socket/dir`), the `PG*` environment variables as
//! defaults, the connection service file and the password file.
//!
//! Pure apart from reading the service and password files: the environment arrives as a
//! [`LibpqEnv`] the CLI builds once, so these rules are tested with plain values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `PG*` variables libpq reads, and the keyword each one defaults (libpq's
/// "Environment Variables"). Client-certificate variables are listed so that `Target`
/// refuses them by name instead of silently connecting without the certificate.
pub const ENV_KEYWORDS: &[(&str, &str)] = &[
    ("PGHOST", "host"),
    ("PGHOSTADDR", "hostaddr"),
    ("PGPORT", "port"),
    ("PGDATABASE", "dbname"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGPASSFILE", "passfile"),
    ("PGSERVICE", "service"),
    ("PGOPTIONS", "options"),
    ("PGAPPNAME", "application_name"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGSSLCRL", "sslcrl"),
    ("PGSSLCRLDIR", "sslcrldir"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
];

/// The variables that name *which* database to use: when one is set and no URL is given,
/// pgrollout connects with the environment alone, as `psql` would.
const TARGET_VARS: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGSERVICE",
];

/// What libpq would read from the process environment, captured once at the CLI edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LibpqEnv {
    /// `PG*` variables by name (only those in [`ENV_KEYWORDS`] plus PGSERVICEFILE and
    /// PGSYSCONFDIR), non-empty values only: libpq treats an empty variable as unset.
    pub vars: BTreeMap<String, String>,
    /// `$HOME`, for `~/.pgpass` and `~/.pg_service.conf`.
    pub home: Option<PathBuf>,
    /// The operating-system user name: libpq's default `user`.
    pub os_user: Option<String>,
    /// libpq's default host when none is given: the Unix-socket directory.
    pub default_host: Option<String>,
}

impl LibpqEnv {
    /// Capture the variables through `get` (the CLI passes `std::env::var`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> LibpqEnv {
        let mut vars = BTreeMap::new();
        let names = ENV_KEYWORDS
            .iter()
            .map(|(v, _)| *v)
            .chain(["PGSERVICEFILE", "PGSYSCONFDIR"]);
        for name in names {
            if let Some(v) = get(name).filter(|v| !v.is_empty()) {
                vars.insert(name.to_string(), v);
            }
        }
        // Debian's and the official image's libpq look in /var/run/postgresql; the
        // compiled-in default elsewhere is /tmp.
        let default_host = ["/var/run/postgresql", "/tmp"]
            .iter()
            .find(|d| Path::new(d).is_dir())
            .map(|d| d.to_string());
        LibpqEnv {
            vars,
            home: get("HOME").filter(|h| !h.is_empty()).map(PathBuf::from),
            os_user: get("USER")
                .or_else(|| get("LOGNAME"))
                .filter(|u| !u.is_empty()),
            default_host,
        }
    }

    /// True when a variable says which database to use (PGHOST, PGDATABASE, PGSERVICE…).
    pub fn names_a_database(&self) -> bool {
        TARGET_VARS.iter().any(|v| self.vars.contains_key(*v))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

/// Keyword/value pairs in the order given; a later value for a keyword wins (libpq).
pub type Pairs = Vec<(String, String)>;

pub fn get<'a>(pairs: &'a Pairs, key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn set_default(pairs: &mut Pairs, key: &str, value: &str) {
    if get(pairs, key).is_none() {
        pairs.push((key.to_string(), value.to_string()));
    }
}

/// A `postgres[ql]://[user[:password]@][host][:port][,host[:port]…][/dbname][?k=v&…]`
/// URI as libpq reads it (its "Connection URIs"): the user info ends at the first `@`
/// before any `/`; every component is percent-decoded; hosts may be a comma-separated
/// list, an IPv6 address in brackets, or empty (then `?host=/socket/dir` names a socket).
pub fn parse_uri(input: &str) -> Result<Pairs, String> {
    let rest = input
        .strip_prefix("postgresql://")
        .or_else(|| input.strip_prefix("postgres://"))
        .ok_or_else(|| "a URI starts with postgres:// or postgresql://".to_string())?;
    let mut pairs = Pairs::new();
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let userinfo_end = before_query.find(['@', '/']);
    let hostpart_and_path = match userinfo_end {
        Some(i) if before_query.as_bytes()[i] == b'@' => {
            let userinfo = &before_query[..i];
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                pairs.push(("user".into(), decode(user)?));
            }
            if let Some(p) = password {
                pairs.push(("password".into(), decode(p)?));
            }
            &before_query[i + 1..]
        }
        _ => before_query,
    };
    let (hostspec, dbname) = match hostpart_and_path.split_once('/') {
        Some((h, d)) => (h, Some(d)),
        None => (hostpart_and_path, None),
    };
    if !hostspec.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for spec in hostspec.split(',') {
            let (host, port) = if let Some(v6) = spec.strip_prefix('[') {
                let (addr, after) = v6.split_once(']').ok_or_else(|| {
                    format!("the IPv6 address `[{v6}` in the URI has no closing `]`")
                })?;
                let port = match after {
                    "" => "",
                    p => p.strip_prefix(':').ok_or_else(|| {
                        format!("unexpected `{p}` after the IPv6 address [{addr}] in the URI")
                    })?,
                };
                (addr.to_string(), port)
            } else {
                match spec.split_once(':') {
                    Some((h, p)) => (decode(h)?, p),
                    None => (decode(spec)?, ""),
                }
            };
            hosts.push(host);
            ports.push(decode(port)?);
        }
        if hosts.iter().any(|h| !h.is_empty()) {
            pairs.push(("host".into(), hosts.join(",")));
        }
        if ports.iter().any(|p| !p.is_empty()) {
            pairs.push(("port".into(), ports.join(",")));
        }
    }
    if let Some(db) = dbname.filter(|d| !d.is_empty()) {
        pairs.push(("dbname".into(), decode(db)?));
    }
    for param in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = param.split_once('=').ok_or_else(|| {
            format!(
                "the URI parameter `{}` has no `=value`",
                param.split(':').next().unwrap_or(param)
            )
        })?;
        let k = decode(k)?;
        let v = decode(v)?;
        // libpq's JDBC-compatible spelling.
        if k == "ssl" && v == "true" {
            pairs.push(("sslmode".into(), "require".into()));
        } else {
            pairs.push((k, v));
        }
    }
    Ok(pairs)
}

/// Percent-decoding: `%00` is an error (libpq's rule: it would cut the value short); a `%`
/// not followed by two hex digits is kept as it is (libpq refuses it, but earlier
/// pgrollout versions accepted such passwords, and keeping them literal is unambiguous).
/// `+` stays `+`.
fn decode(s: &str) -> Result<String, String> {
    if s.contains("%00") {
        return Err("forbidden value %00 in the URI".to_string());
    }
    Ok(percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned())
}

/// Fill in what `pairs` leaves unset, in libpq's order: the service file's entry for
/// `service` (given or PGSERVICE), then the `PG*` variables, then the built-in defaults
/// (host: the socket directory, user: the OS user, dbname: the user).
pub fn add_defaults(pairs: &mut Pairs, env: &LibpqEnv) -> Result<(), String> {
    let service = get(pairs, "service")
        .or(env.get("PGSERVICE"))
        .map(str::to_string);
    if let Some(name) = service {
        for (k, v) in service_entry(&name, env)? {
            if k == "service" {
                return Err(format!(
                    "service `{name}`: nested service specifications are not supported"
                ));
            }
            set_default(pairs, &k, &v);
        }
    }
    for (var, key) in ENV_KEYWORDS {
        if let Some(v) = env.get(var) {
            // A host or hostaddr given by the URL or the service replaces the whole host
            // list: PGHOST must not be combined with a hostaddr from the URL.
            if (*key == "host" || *key == "hostaddr")
                && (get(pairs, "host").is_some() || get(pairs, "hostaddr").is_some())
            {
                continue;
            }
            set_default(pairs, key, v);
        }
    }
    if get(pairs, "host").is_none() && get(pairs, "hostaddr").is_none() {
        if let Some(h) = &env.default_host {
            set_default(pairs, "host", h);
        }
    }
    if let Some(u) = &env.os_user {
        set_default(pairs, "user", u);
    }
    if let Some(u) = get(pairs, "user").map(str::to_string) {
        set_default(pairs, "dbname", &u);
    }
    Ok(())
}

/// The entry `[name]` of the first service file that has it: PGSERVICEFILE or
/// `~/.pg_service.conf`, then `PGSYSCONFDIR/pg_service.conf` (libpq's "The Connection
/// Service File"). A name found in neither is an error that says where it looked.
fn service_entry(name: &str, env: &LibpqEnv) -> Result<Pairs, String> {
    let mut files = Vec::new();
    match env.get("PGSERVICEFILE") {
        Some(f) => files.push(PathBuf::from(f)),
        None => files.extend(env.home.as_ref().map(|h| h.join(".pg_service.conf"))),
    }
    files.push(
        PathBuf::from(env.get("PGSYSCONFDIR").unwrap_or("/etc/postgresql-common"))
            .join("pg_service.conf"),
    );
    for file in &files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("reading service file {}: {e}", file.display())),
        };
        if let Some(entry) = parse_service_file(&text, name, file)? {
            return Ok(entry);
        }
    }
    let looked: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    Err(format!(
        "definition of service `{name}` not found (looked in {}; PGSERVICEFILE and \
         PGSYSCONFDIR say where the service file is)",
        looked.join(", ")
    ))
}

fn parse_service_file(text: &str, name: &str, file: &Path) -> Result<Option<Pairs>, String> {
    let mut current: Option<&str> = None;
    let mut found: Option<Pairs> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            if found.is_some() {
                break;
            }
            current = Some(section.trim_end_matches(']'));
            if current == Some(name) {
                found = Some(Pairs::new());
            }
            continue;
        }
        if current != Some(name) {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| {
            format!(
                "{}:{}: syntax error in service file (expected key=value)",
                file.display(),
                n + 1
            )
        })?;
        if let Some(entry) = found.as_mut() {
            entry.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok(found)
}

/// The password-file line for this connection, as libpq's "The Password File" reads it:
/// `hostname:port:database:username:password`, `*` matching anything, `\:` and `\\` as
/// escapes, a socket connection matching `localhost`. A file readable by group or others
/// is ignored with the warning libpq gives.
pub struct Passfile {
    pub password: Option<String>,
    pub warning: Option<String>,
}

pub fn password_from_file(pairs: &Pairs, env: &LibpqEnv) -> Passfile {
    let none = Passfile {
        password: None,
        warning: None,
    };
    let path = match get(pairs, "passfile").or(env.get("PGPASSFILE")) {
        Some(p) => PathBuf::from(p),
        None => match &env.home {
            Some(h) => h.join(".pgpass"),
            None => return none,
        },
    };
    let Ok(meta) = std::fs::metadata(&path) else {
        return none;
    };
    if !meta.is_file() {
        return Passfile {
            password: None,
            warning: Some(format!(
                "password file \"{}\" is not a plain file",
                path.display()
            )),
        };
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Passfile {
                password: None,
                warning: Some(format!(
                    "password file \"{}\" has group or world access; permissions should be \
                     u=rw (0600) or less (it was ignored)",
                    path.display()
                )),
            };
        }
    }
    let Ok(text) = std::fs::read_to_string(&path) else {
        return none;
    };
    // With several hosts libpq looks each one up as it tries it; pgrollout's driver
    // takes one password, so the first host's entry is used.
    let first = |key: &str, default: &str| -> String {
        get(pairs, key)
            .and_then(|v| v.split(',').next())
            .filter(|v| !v.is_empty())
            .unwrap_or(default)
            .to_string()
    };
    let mut host = first("host", "localhost");
    if host.starts_with('/') {
        host = "localhost".into();
    }
    let port = first("port", "5432");
    let want = [host, port, first("dbname", ""), first("user", "")];
    Passfile {
        password: match_passfile(&text, &want),
        warning: None,
    }
}

fn match_passfile(text: &str, want: &[String; 4]) -> Option<String> {
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_passfile_line(line);
        if fields.len() < 5 {
            continue;
        }
        let matches = want
            .iter()
            .zip(&fields)
            .all(|(w, (f, star))| *star || f == w);
        if matches {
            // The password is the rest of the line, colons (escaped or not) included.
            return Some(
                fields[4..]
                    .iter()
                    .map(|(f, _)| f.as_str())
                    .collect::<Vec<_>>()
                    .join(":"),
            );
        }
    }
    None
}

/// Fields of one password-file line, unescaped, each with whether it was a bare `*`.
fn split_passfile_line(line: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut escaped_any = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                field.extend(chars.next());
                escaped_any = true;
            }
            ':' if out.len() < 4 => {
                let star = field == "*" && !escaped_any;
                out.push((std::mem::take(&mut field), star));
                escaped_any = false;
            }
            c => field.push(c),
        }
    }
    out.push((field, false));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> LibpqEnv {
        LibpqEnv {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..LibpqEnv::default()
        }
    }

    #[test]
    fn uri_with_several_hosts_and_a_socket_parameter() {
        let p = parse_uri(
            "postgres://u:p%40ss@h1:5432,[::1]:5433,h3/db?target_session_attrs=read-write",
        )
        .unwrap();
        assert_eq!(get(&p, "host"), Some("h1,::1,h3"));
        assert_eq!(get(&p, "port"), Some("5432,5433,"));
        assert_eq!(get(&p, "password"), Some("p@ss"));
        assert_eq!(get(&p, "target_session_attrs"), Some("read-write"));
        let p = parse_uri("postgres://u@/db?host=/cloudsql/proj:region:inst").unwrap();
        assert_eq!(get(&p, "host"), Some("/cloudsql/proj:region:inst"));
        assert_eq!(get(&p, "dbname"), Some("db"));
        assert!(parse_uri("postgres://u@h/db?x=%00").is_err());
        assert_eq!(
            get(&parse_uri("postgres://u:a%zz@h/db").unwrap(), "password"),
            Some("a%zz")
        );
    }

    #[test]
    fn environment_fills_only_what_the_url_leaves_out() {
        let mut p = parse_uri("postgres://app@db.example/app").unwrap();
        add_defaults(
            &mut p,
            &env(&[
                ("PGHOST", "other"),
                ("PGPORT", "6543"),
                ("PGSSLMODE", "require"),
            ]),
        )
        .unwrap();
        assert_eq!(get(&p, "host"), Some("db.example"));
        assert_eq!(get(&p, "port"), Some("6543"));
        assert_eq!(get(&p, "sslmode"), Some("require"));
        assert_eq!(get(&p, "dbname"), Some("app"));
    }

    #[test]
    fn passfile_wildcards_and_escapes() {
        let text =
            "# comment\nother:*:*:*:nope\nlocalhost:5432:*:app:pa\\:ss\\\\w\n*:*:*:*:fallback\n";
        let want = |h: &str, u: &str| {
            [
                h.to_string(),
                "5432".to_string(),
                "db".to_string(),
                u.to_string(),
            ]
        };
        assert_eq!(
            match_passfile(text, &want("localhost", "app")).as_deref(),
            Some("pa:ss\\w")
        );
        assert_eq!(
            match_passfile(text, &want("x", "y")).as_deref(),
            Some("fallback")
        );
        // An escaped `*` is a literal star, not a wildcard.
        assert_eq!(match_passfile("\\*:*:*:*:lit\n", &want("h", "u")), None);
    }

    #[test]
    fn service_file_entry_is_found_by_name() {
        let text = "[a]\nhost=h1\n\n[b]\nhost = h2\nport=6000\n[c]\nhost=h3\n";
        let e = parse_service_file(text, "b", Path::new("f"))
            .unwrap()
            .unwrap();
        assert_eq!(
            e,
            vec![("host".into(), "h2".into()), ("port".into(), "6000".into())]
        );
        assert!(parse_service_file(text, "z", Path::new("f"))
            .unwrap()
            .is_none());
    }
}
