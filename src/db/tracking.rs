//! The tracking schema: its versioned SQL, and every query the tool runs against it.

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::SimpleQueryMessage;

use super::conn::error_text;
use super::{quote_ident, Db};

mod rollback;
pub use rollback::{RollbackRecord, StoredDown};

/// The tracking schema's own migrations. Step N upgrades from version N to N+1; never
/// edit a shipped step, append a new one. `{s}` is the quoted schema name.
const STEPS: &[&str] = &[
    r#"
CREATE TABLE {s}.schema_migrations (
    version             numeric(38,0) PRIMARY KEY,
    version_text        text NOT NULL,
    name                text NOT NULL,
    checksum            text NOT NULL,
    status              text NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'baseline')),
    applied_at          timestamptz NOT NULL DEFAULT now(),
    applied_by          text NOT NULL,
    execution_time_ms   bigint,
    error_message       text,
    -- 0-based index of the statement running (or that failed) in a transaction:false migration
    statement_index     integer,
    no_transaction      boolean NOT NULL DEFAULT false,
    down_sql            text,
    down_no_transaction boolean NOT NULL DEFAULT false,
    run_id              text NOT NULL,
    environment         text
);

CREATE TABLE {s}.migration_history (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        text NOT NULL,
    action        text NOT NULL CHECK (action IN ('apply', 'rollback', 'baseline', 'repair', 'accept')),
    version       numeric(38,0),
    version_text  text,
    name          text,
    checksum      text,
    status        text NOT NULL CHECK (status IN ('started', 'completed', 'failed')),
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    duration_ms   bigint,
    error         text,
    reason        text,
    actor         text NOT NULL,
    environment   text,
    git_sha       text,
    git_ref       text,
    ci_run_url    text,
    tool_version  text NOT NULL
);

CREATE FUNCTION {s}.history_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'migration_history is an append-only audit log';
END
$fn$;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON {s}.migration_history
    FOR EACH ROW EXECUTE FUNCTION {s}.history_is_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON {s}.migration_history
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.history_is_append_only();

CREATE TABLE {s}.backup_markers (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    label            text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    actor            text NOT NULL,
    environment      text,
    git_sha          text,
    git_ref          text,
    ci_run_url       text,
    run_id           text,
    wal_lsn          pg_lsn,
    txid             bigint NOT NULL,
    dump_path        text,
    dump_size_bytes  bigint,
    dump_sha256      text
);

CREATE VIEW {s}.migration_status AS
    SELECT version_text AS version, name, status, applied_at, applied_by,
           execution_time_ms, checksum, error_message, environment
    FROM {s}.schema_migrations
    ORDER BY version;

CREATE FUNCTION {s}.migration_status() RETURNS SETOF {s}.migration_status
    LANGUAGE sql STABLE AS $fn$ SELECT * FROM {s}.migration_status $fn$;
"#,
    r#"
-- Which section a running/failed row is about: 'down' while a transaction:false
-- rollback runs statement by statement, and after it failed (statement_index then
-- points into the down SQL). `repair` returns such a row to 'completed'.
ALTER TABLE {s}.schema_migrations
    ADD COLUMN direction text NOT NULL DEFAULT 'up' CHECK (direction IN ('up', 'down'));
"#,
    r#"
-- The numeric key of a version. Digits are their own value (every version before this
-- step); a dotted version (Flyway's `1.2`, `1.10`) is packed so that numeric order is
-- the order of its integer parts: each part without leading zeros, prefixed by its length
-- in two digits, then `00`, right-padded to 38 digits. Trailing zero parts are dropped
-- (Flyway's 1.0 is 1). Mirrors `migration::Version::parse`; never change it.
CREATE FUNCTION {s}.version_key(v text) RETURNS numeric LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
DECLARE
    packed text := '';
    parts text[];
    p text;
    n int;
BEGIN
    IF position('.' in v) = 0 THEN
        RETURN v::numeric;
    END IF;
    parts := string_to_array(v, '.');
    n := array_length(parts, 1);
    WHILE n > 1 AND ltrim(parts[n], '0') = '' LOOP
        n := n - 1;
    END LOOP;
    FOR i IN 1..n LOOP
        IF parts[i] !~ '^[0-9]+$' THEN
            RAISE EXCEPTION 'version % is not integers separated by dots', v;
        END IF;
        p := ltrim(parts[i], '0');
        IF p = '' THEN
            p := '0';
        END IF;
        packed := packed || lpad(length(p)::text, 2, '0') || p;
    END LOOP;
    packed := packed || '00';
    IF length(packed) > 38 THEN
        RAISE EXCEPTION 'version % is too long for a 38-digit tracking key', v;
    END IF;
    RETURN rpad(packed, 38, '0')::numeric;
END
$fn$;

-- `adopt`: history taken over from another migration tool.
ALTER TABLE {s}.migration_history DROP CONSTRAINT migration_history_action_check;
ALTER TABLE {s}.migration_history ADD CONSTRAINT migration_history_action_check
    CHECK (action IN ('apply', 'rollback', 'baseline', 'repair', 'accept', 'adopt'));
"#,
];

/// The tracking schema version this build creates and understands.
pub const TRACKING_VERSION: i32 = STEPS.len() as i32;

#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error("reading the tracking schema {schema}: {}", error_text(.source))]
    Read {
        schema: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("creating or upgrading the tracking schema {schema} to version {step}: {}", error_text(.source))]
    Upgrade {
        schema: String,
        step: i32,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error(
        "the tracking schema {schema} is at version {found}, newer than this pgrollout understands \
         ({known}); upgrade pgrollout"
    )]
    TooNew {
        schema: String,
        found: i32,
        known: i32,
    },
    #[error("writing to the tracking schema {schema}: {}", error_text(.source))]
    Write {
        schema: String,
        #[source]
        source: tokio_postgres::Error,
    },
}

/// State of one tracking row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowStatus {
    Running,
    Completed,
    Failed,
    Baseline,
}

impl RowStatus {
    fn parse(s: &str) -> RowStatus {
        match s {
            "running" => RowStatus::Running,
            "failed" => RowStatus::Failed,
            "baseline" => RowStatus::Baseline,
            _ => RowStatus::Completed,
        }
    }
}

/// One row of `schema_migrations`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppliedRow {
    pub version: String,
    #[serde(skip)]
    pub value: u128,
    pub name: String,
    pub checksum: String,
    pub status: RowStatus,
    pub applied_at: chrono::DateTime<chrono::Utc>,
    pub applied_by: String,
    pub execution_time_ms: Option<i64>,
    pub error_message: Option<String>,
    pub statement_index: Option<i32>,
    pub no_transaction: bool,
    pub has_down: bool,
    /// The running/failed state belongs to the down section: a transaction:false
    /// rollback is running, or stopped at `statement_index` of its down SQL.
    pub rolling_back: bool,
    /// The run that wrote the row (for a `running` one: whose session may still be at it).
    #[serde(skip)]
    pub run_id: String,
}

/// What the tracking schema holds, read in one round trip.
#[derive(Debug, Clone)]
pub struct TrackingState {
    /// `None` when the schema does not exist yet.
    pub version: Option<i32>,
    pub rows: Vec<AppliedRow>,
}

impl TrackingState {
    pub fn is_current(&self) -> bool {
        self.version == Some(TRACKING_VERSION)
    }
}

/// The tracking table in one row: see [`Tracking::summary`].
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// `None` when the schema does not exist yet.
    pub version: Option<i32>,
    pub rows: usize,
    /// [`applied_digest`] of every row, in version order; `None` when there is none.
    pub digest: Option<String>,
}

/// SHA-256 (hex) of one line `<version> <checksum> <status>` per tracking row, in
/// version order, joined by LF: what [`Tracking::summary`] has the server compute.
/// Given the migrations on disk as completed rows, equality means every file is applied
/// unchanged and nothing else is recorded — a no-op, decided without fetching a row.
/// Compared within one run only (not stored), so it may change with the tool.
pub fn applied_digest<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (i, (version, checksum, status)) in rows.into_iter().enumerate() {
        if i > 0 {
            h.update(b"\n");
        }
        h.update(version.as_bytes());
        h.update(b" ");
        h.update(checksum.as_bytes());
        h.update(b" ");
        h.update(status.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Who and where, written into every history row.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    pub run_id: String,
    pub actor: String,
    pub environment: Option<String>,
    pub git_sha: Option<String>,
    pub git_ref: Option<String>,
    pub ci_run_url: Option<String>,
}

impl RunContext {
    /// For work on a scratch database nobody audits (drift's "against migrations"
    /// build): a fresh run id and `actor` naming the purpose.
    pub fn scratch(purpose: &str) -> RunContext {
        RunContext {
            run_id: new_run_id(),
            actor: purpose.to_string(),
            ..RunContext::default()
        }
    }
}

/// A random id shared by the history rows of one command.
pub fn new_run_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let n: u64 = rng.random();
    format!("{:016x}", n)
}

pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The history row written with a state change.
struct History<'a> {
    action: &'a str,
    version: Option<&'a str>,
    name: Option<&'a str>,
    checksum: Option<&'a str>,
    status: &'a str,
    duration_ms: Option<i64>,
    error: Option<&'a str>,
    reason: Option<&'a str>,
}

impl<'a> History<'a> {
    fn apply(
        version: &'a str,
        name: &'a str,
        checksum: &'a str,
        status: &'a str,
        duration_ms: Option<i64>,
        error: Option<&'a str>,
    ) -> History<'a> {
        History {
            action: "apply",
            version: Some(version),
            name: Some(name),
            checksum: Some(checksum),
            status,
            duration_ms,
            error,
            reason: None,
        }
    }
}

/// A row cleared by `repair`.
#[derive(Debug, Clone)]
pub struct ClearedRow {
    pub version: String,
    pub name: String,
    /// `failed` or `running`, as it was.
    pub status: String,
    pub statement_index: Option<i32>,
    /// The state was a transaction:false down's: the migration stays applied.
    pub down: bool,
}

/// The tracking schema of one database, by name.
#[derive(Debug, Clone)]
pub struct Tracking {
    pub schema: String,
    q: String,
}

impl Tracking {
    pub fn new(schema: &str) -> Tracking {
        Tracking {
            schema: schema.to_string(),
            q: quote_ident(schema),
        }
    }

    fn sql(&self, text: &str) -> String {
        text.replace("{s}", &self.q)
    }

    /// The key of the session advisory lock that serialises runners on this schema:
    /// the first 8 bytes of SHA-256("pgrollout:" + schema), stable across versions.
    pub fn lock_key(&self) -> i64 {
        self.key("pgrollout")
    }

    /// The key of the transaction-level advisory lock each migration transaction takes
    /// (see `HeldLock::check_in_transaction`): SHA-256("pgrollout-commit:" + schema).
    pub fn commit_key(&self) -> i64 {
        self.key("pgrollout-commit")
    }

    fn key(&self, prefix: &str) -> i64 {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(format!("{prefix}:{}", self.schema).as_bytes());
        i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
    }

    /// Read the schema version and every tracking row in one simple query (one round
    /// trip). A missing schema is not an error. It runs before the schema is upgraded:
    /// on a schema older than the `direction` column (step 2) the query is retried with
    /// that column read through `to_jsonb(m)`, where an absent column comes back NULL
    /// (not the first choice: it builds a JSON document of every row, the whole cost of
    /// the query at thousands of rows).
    pub fn read(&self, db: &mut Db) -> Result<TrackingState, TrackingError> {
        match self.read_with(db, "m.direction") {
            Err(TrackingError::Read { source, .. })
                if source.code() == Some(&SqlState::UNDEFINED_COLUMN) =>
            {
                self.read_with(db, "to_jsonb(m) ->> 'direction'")
            }
            other => other,
        }
    }

    fn read_with(&self, db: &mut Db, direction: &str) -> Result<TrackingState, TrackingError> {
        let sql = self.sql(&format!(
            "SELECT (SELECT version FROM {{s}}.tracking_version), m.version_text, m.version::text, m.name, \
             m.checksum, m.status, (extract(epoch FROM m.applied_at) * 1000)::bigint, m.applied_by, \
             m.execution_time_ms, m.error_message, m.statement_index, m.no_transaction, m.down_sql IS NOT NULL, \
             ({direction}) = 'down', m.run_id \
             FROM (SELECT 1) AS one LEFT JOIN {{s}}.schema_migrations AS m ON true ORDER BY m.version",
        ));
        let messages = match db.run(|c| async move { c.simple_query(&sql).await }) {
            Ok(m) => m,
            Err(e) => {
                let code = e.code();
                if code == Some(&SqlState::UNDEFINED_TABLE)
                    || code == Some(&SqlState::INVALID_SCHEMA_NAME)
                {
                    return Ok(TrackingState {
                        version: None,
                        rows: Vec::new(),
                    });
                }
                return Err(TrackingError::Read {
                    schema: self.schema.clone(),
                    source: e,
                });
            }
        };
        let mut version = None;
        let mut rows = Vec::new();
        for m in messages {
            let SimpleQueryMessage::Row(r) = m else {
                continue;
            };
            version = r.get(0).and_then(|v| v.parse().ok());
            let Some(vtext) = r.get(1) else { continue };
            let ms: i64 = r.get(6).and_then(|v| v.parse().ok()).unwrap_or(0);
            rows.push(AppliedRow {
                version: vtext.to_string(),
                value: r.get(2).and_then(|v| v.parse().ok()).unwrap_or(0),
                name: r.get(3).unwrap_or_default().to_string(),
                checksum: r.get(4).unwrap_or_default().to_string(),
                status: RowStatus::parse(r.get(5).unwrap_or_default()),
                applied_at: chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default(),
                applied_by: r.get(7).unwrap_or_default().to_string(),
                execution_time_ms: r.get(8).and_then(|v| v.parse().ok()),
                error_message: r.get(9).map(str::to_string),
                statement_index: r.get(10).and_then(|v| v.parse().ok()),
                no_transaction: r.get(11) == Some("t"),
                has_down: r.get(12) == Some("t"),
                rolling_back: r.get(13) == Some("t"),
                run_id: r.get(14).unwrap_or_default().to_string(),
            });
        }
        Ok(TrackingState { version, rows })
    }

    /// What a no-op `apply` needs to know, in one simple query that returns one row
    /// whatever the number of migrations: the schema version, the number of rows, and
    /// [`applied_digest`] of the rows as the server computes it. A missing schema is not
    /// an error. Also notes the session's server process ([`Db::backend_pid`]).
    pub fn summary(&self, db: &mut Db) -> Result<Summary, TrackingError> {
        let sql = self.sql(
            "SELECT (SELECT version FROM {s}.tracking_version), count(*), \
             encode(sha256(convert_to(string_agg(version_text || ' ' || checksum || ' ' || status, \
               E'\\n' ORDER BY version), 'UTF8')), 'hex'), pg_backend_pid() \
             FROM {s}.schema_migrations",
        );
        let messages = match db.run(|c| async move { c.simple_query(&sql).await }) {
            Ok(m) => m,
            Err(e)
                if e.code() == Some(&SqlState::UNDEFINED_TABLE)
                    || e.code() == Some(&SqlState::INVALID_SCHEMA_NAME) =>
            {
                return Ok(Summary::default())
            }
            Err(source) => {
                return Err(TrackingError::Read {
                    schema: self.schema.clone(),
                    source,
                })
            }
        };
        let mut out = Summary::default();
        for m in messages {
            if let SimpleQueryMessage::Row(r) = m {
                out.version = r.get(0).and_then(|v| v.parse().ok());
                out.rows = r.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
                out.digest = r.get(2).map(str::to_string);
                if db.backend_pid == 0 {
                    db.backend_pid = r.get(3).and_then(|v| v.parse().ok()).unwrap_or(0);
                }
            }
        }
        Ok(out)
    }

    /// Create the schema or bring it up to [`TRACKING_VERSION`]. Call only while holding
    /// the advisory lock. Returns the version found before (None: created).
    pub fn ensure(&self, db: &mut Db, found: Option<i32>) -> Result<Option<i32>, TrackingError> {
        let from = found.unwrap_or(0);
        if from > TRACKING_VERSION {
            return Err(TrackingError::TooNew {
                schema: self.schema.clone(),
                found: from,
                known: TRACKING_VERSION,
            });
        }
        for (i, step) in STEPS.iter().enumerate().skip(from as usize) {
            let step_no = i as i32 + 1;
            let mut sql = String::from("BEGIN;\n");
            if i == 0 {
                sql.push_str(&self.sql(
                    "CREATE SCHEMA IF NOT EXISTS {s};\n\
                     CREATE TABLE {s}.tracking_version (\n\
                         id boolean PRIMARY KEY DEFAULT true CHECK (id),\n\
                         version integer NOT NULL,\n\
                         tool_version text NOT NULL,\n\
                         upgraded_at timestamptz NOT NULL DEFAULT now());\n\
                     INSERT INTO {s}.tracking_version (version, tool_version) VALUES (0, '');\n",
                ));
            }
            sql.push_str(&self.sql(step));
            sql.push_str(&self.sql(&format!(
                "\nUPDATE {{s}}.tracking_version SET version = {step_no}, tool_version = '{TOOL_VERSION}', upgraded_at = now();\nCOMMIT;"
            )));
            if let Err(source) = db.batch(&sql) {
                let _ = db.batch("ROLLBACK");
                return Err(TrackingError::Upgrade {
                    schema: self.schema.clone(),
                    step: step_no,
                    source,
                });
            }
        }
        Ok(found)
    }

    /// Record a completed transactional migration. Runs inside the migration's own
    /// transaction (pipelined after its SQL), so the change and its record commit together.
    /// `now()` is the transaction start, so the duration is measured by the server.
    pub fn record_applied_sql(&self) -> String {
        self.sql(
            "WITH m AS (\
               INSERT INTO {s}.schema_migrations (version, version_text, name, checksum, status, applied_at, \
                 applied_by, execution_time_ms, down_sql, down_no_transaction, no_transaction, run_id, environment) \
               VALUES ({s}.version_key($1), $1, $2, $3, 'completed', now(), $6, \
                 (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint, $4, $5, false, $7, $8) \
               RETURNING execution_time_ms) \
             INSERT INTO {s}.migration_history (run_id, action, version, version_text, name, checksum, status, \
               started_at, finished_at, duration_ms, actor, environment, git_sha, git_ref, ci_run_url, tool_version) \
             SELECT $7, 'apply', {s}.version_key($1), $1, $2, $3, 'completed', now(), clock_timestamp(), \
               m.execution_time_ms, $6, $8, $9, $10, $11, $12 FROM m",
        )
    }

    /// Record a repeatable migration that ran: a history row (`version` NULL,
    /// `version_text` `R`, as Flyway keeps repeatables without a version) carrying the
    /// checksum it ran with. Runs inside its transaction, like [`Self::record_applied_sql`].
    pub fn record_repeatable_sql(&self) -> String {
        self.sql(
            "INSERT INTO {s}.migration_history (run_id, action, version, version_text, name, checksum, status, \
               started_at, finished_at, duration_ms, actor, environment, git_sha, git_ref, ci_run_url, tool_version) \
             VALUES ($4, 'apply', NULL, 'R', $1, $2, 'completed', now(), clock_timestamp(), \
               (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint, $3, $5, $6, $7, $8, $9)",
        )
    }

    /// The checksum each repeatable migration last ran with, by name. No tracking
    /// schema yet: none has run.
    pub fn read_repeatables(
        &self,
        db: &mut Db,
    ) -> Result<std::collections::HashMap<String, String>, TrackingError> {
        let sql = self.sql(
            "SELECT DISTINCT ON (name) name, checksum FROM {s}.migration_history \
             WHERE version IS NULL AND version_text = 'R' AND action IN ('apply', 'adopt') \
               AND status = 'completed' \
             ORDER BY name, id DESC",
        );
        let messages = match db.run(|c| async move { c.simple_query(&sql).await }) {
            Ok(m) => m,
            Err(e) => {
                let code = e.code();
                if code == Some(&SqlState::UNDEFINED_TABLE)
                    || code == Some(&SqlState::INVALID_SCHEMA_NAME)
                {
                    return Ok(Default::default());
                }
                return Err(TrackingError::Read {
                    schema: self.schema.clone(),
                    source: e,
                });
            }
        };
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some((
                    r.get(0).unwrap_or_default().to_string(),
                    r.get(1).unwrap_or_default().to_string(),
                )),
                _ => None,
            })
            .collect())
    }

    /// Append a history row (outside any migration transaction).
    #[allow(clippy::too_many_arguments)]
    pub fn history(
        &self,
        db: &mut Db,
        ctx: &RunContext,
        action: &str,
        version: Option<&str>,
        name: Option<&str>,
        checksum: Option<&str>,
        status: &str,
        duration_ms: Option<i64>,
        error: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), TrackingError> {
        let entry = History {
            action,
            version,
            name,
            checksum,
            status,
            duration_ms,
            error,
            reason,
        };
        self.change_with_history(db, ctx, None, &entry)
    }

    /// Write `change` (a statement on `schema_migrations` whose parameters are numbered
    /// from $16) and its history row as ONE statement: they commit together, so a crash
    /// cannot leave a state change without its audit row, and it costs one round trip.
    fn change_with_history(
        &self,
        db: &mut Db,
        ctx: &RunContext,
        change: Option<(&str, &[&(dyn tokio_postgres::types::ToSql + Sync)])>,
        h: &History<'_>,
    ) -> Result<(), TrackingError> {
        let mut sql = String::new();
        if let Some((c, _)) = change {
            sql.push_str(&format!("WITH change AS ({}) ", self.sql(c)));
        }
        sql.push_str(&self.sql(
            "INSERT INTO {s}.migration_history (run_id, action, version, version_text, name, checksum, status, \
               started_at, finished_at, duration_ms, error, reason, actor, environment, git_sha, git_ref, ci_run_url, tool_version) \
             VALUES ($1, $2, CASE WHEN $3 = 'R' THEN NULL ELSE {s}.version_key($3) END, $3, $4, $5, $6, \
               clock_timestamp() - make_interval(secs => coalesce($7::bigint, 0) / 1000.0), \
               CASE WHEN $6 = 'started' THEN NULL ELSE clock_timestamp() END, $7::bigint, $8, $9, $10, $11, $12, $13, $14, $15)",
        ));
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![
            &ctx.run_id,
            &h.action,
            &h.version,
            &h.name,
            &h.checksum,
            &h.status,
            &h.duration_ms,
            &h.error,
            &h.reason,
            &ctx.actor,
            &ctx.environment,
            &ctx.git_sha,
            &ctx.git_ref,
            &ctx.ci_run_url,
            &TOOL_VERSION,
        ];
        if let Some((_, p)) = change {
            params.extend_from_slice(p);
        }
        db.execute(&sql, &params)
            .map(|_| ())
            .map_err(|source| self.write_err(source))
    }

    pub(crate) fn write_err(&self, source: tokio_postgres::Error) -> TrackingError {
        TrackingError::Write {
            schema: self.schema.clone(),
            source,
        }
    }

    /// Mark a transaction:false migration as running (a retry after `repair` overwrites
    /// the cleared slot). Autocommit: the row must survive a crash.
    #[allow(clippy::too_many_arguments)]
    pub fn start_non_transactional(
        &self,
        db: &mut Db,
        ctx: &RunContext,
        version: &str,
        name: &str,
        checksum: &str,
        down_sql: Option<&str>,
        down_no_tx: bool,
    ) -> Result<(), TrackingError> {
        self.change_with_history(
            db,
            ctx,
            Some((
                "INSERT INTO {s}.schema_migrations (version, version_text, name, checksum, status, applied_at, \
                   applied_by, statement_index, no_transaction, down_sql, down_no_transaction, run_id, environment) \
                 VALUES ({s}.version_key($16), $16, $17, $18, 'running', now(), $19, 0, true, $20, $21, $22, $23)",
                &[
                    &version,
                    &name,
                    &checksum,
                    &ctx.actor,
                    &down_sql,
                    &down_no_tx,
                    &ctx.run_id,
                    &ctx.environment,
                ],
            )),
            &History::apply(version, name, checksum, "started", None, None),
        )
    }

    pub fn set_statement_index(
        &self,
        db: &mut Db,
        version: &str,
        index: i32,
    ) -> Result<(), TrackingError> {
        let sql = self.sql("UPDATE {s}.schema_migrations SET statement_index = $2 WHERE version = {s}.version_key($1)");
        db.execute(&sql, &[&version, &index])
            .map(|_| ())
            .map_err(|e| self.write_err(e))
    }

    pub fn finish_non_transactional(
        &self,
        db: &mut Db,
        ctx: &RunContext,
        version: &str,
        name: &str,
        checksum: &str,
        duration_ms: i64,
    ) -> Result<(), TrackingError> {
        self.change_with_history(
            db,
            ctx,
            Some((
                "UPDATE {s}.schema_migrations SET status = 'completed', statement_index = NULL, \
                   error_message = NULL, execution_time_ms = $17, applied_at = now() \
                 WHERE version = {s}.version_key($16)",
                &[&version, &duration_ms],
            )),
            &History::apply(
                version,
                name,
                checksum,
                "completed",
                Some(duration_ms),
                None,
            ),
        )
    }

    /// A transaction:false section stopped at statement `index`: the row (running since
    /// [`Self::start_non_transactional`] or [`Self::start_rollback`]) becomes `failed`.
    /// `checksum` is None for a down section (its history row is a `rollback`).
    #[allow(clippy::too_many_arguments)]
    pub fn fail_non_transactional(
        &self,
        db: &mut Db,
        ctx: &RunContext,
        version: &str,
        name: &str,
        checksum: Option<&str>,
        index: i32,
        error: &str,
        duration_ms: i64,
    ) -> Result<(), TrackingError> {
        let history = History {
            action: if checksum.is_some() {
                "apply"
            } else {
                "rollback"
            },
            version: Some(version),
            name: Some(name),
            checksum,
            status: "failed",
            duration_ms: Some(duration_ms),
            error: Some(error),
            reason: None,
        };
        self.change_with_history(
            db,
            ctx,
            Some((
                "UPDATE {s}.schema_migrations SET status = 'failed', statement_index = $17, \
                   error_message = $18, execution_time_ms = $19 WHERE version = {s}.version_key($16)",
                &[&version, &index, &error, &duration_ms],
            )),
            &history,
        )
    }

    /// Clear failed/interrupted rows; returns what was cleared. A row whose up section
    /// failed is removed, so the migration runs again; a row whose transaction:false
    /// down failed is the migration still applied (in part undone), so it goes back to
    /// `completed` and `rollback` can run its down SQL again.
    pub fn clear_failed(&self, db: &mut Db) -> Result<Vec<ClearedRow>, TrackingError> {
        let sql = self.sql(
            "WITH up AS (\
               DELETE FROM {s}.schema_migrations WHERE status IN ('failed', 'running') AND direction = 'up' \
               RETURNING version, version_text, name, status, statement_index, false AS down), \
             down AS (\
               UPDATE {s}.schema_migrations AS n SET status = 'completed', direction = 'up', \
                 statement_index = NULL, error_message = NULL \
               FROM (SELECT version, status, statement_index FROM {s}.schema_migrations \
                     WHERE status IN ('failed', 'running') AND direction = 'down' FOR UPDATE) AS o \
               WHERE n.version = o.version \
               RETURNING n.version, n.version_text, n.name, o.status, o.statement_index, true AS down) \
             SELECT version_text, name, status, statement_index, down, version FROM up \
             UNION ALL SELECT version_text, name, status, statement_index, down, version FROM down ORDER BY 6",
        );
        let rows = db.query(&sql, &[]).map_err(|e| self.write_err(e))?;
        Ok(rows
            .iter()
            .map(|r| ClearedRow {
                version: r.get(0),
                name: r.get(1),
                status: r.get(2),
                statement_index: r.get(3),
                down: r.get(4),
            })
            .collect())
    }

    /// Re-bless an edited file: store its new checksum. Returns the old checksum, or None
    /// when the version has no completed row.
    pub fn accept_checksum(
        &self,
        db: &mut Db,
        version: &str,
        checksum: &str,
    ) -> Result<Option<String>, TrackingError> {
        let sql = self.sql(
            "UPDATE {s}.schema_migrations AS n SET checksum = $2 \
             FROM (SELECT version, checksum FROM {s}.schema_migrations WHERE version = {s}.version_key($1) FOR UPDATE) AS o \
             WHERE n.version = o.version AND n.status = 'completed' RETURNING o.checksum",
        );
        let rows = db
            .query(&sql, &[&version, &checksum])
            .map_err(|e| self.write_err(e))?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    pub fn insert_baseline(
        &self,
        db: &mut Db,
        ctx: &RunContext,
        version: &str,
        name: &str,
        checksum: &str,
    ) -> Result<(), TrackingError> {
        self.change_with_history(
            db,
            ctx,
            Some((
                "INSERT INTO {s}.schema_migrations (version, version_text, name, checksum, status, \
                   applied_by, run_id, environment) \
                 VALUES ({s}.version_key($16), $16, $17, $18, 'baseline', $19, $20, $21)",
                &[
                    &version,
                    &name,
                    &checksum,
                    &ctx.actor,
                    &ctx.run_id,
                    &ctx.environment,
                ],
            )),
            &History {
                action: "baseline",
                status: "completed",
                duration_ms: Some(0),
                ..History::apply(version, name, checksum, "completed", None, None)
            },
        )
    }

    /// Record a migration another tool applied (`adopt`): a completed row with the
    /// file's checksum and down SQL as they are now, and its `adopt` history row.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_adopted(
        &self,
        db: &mut Db,
        ctx: &RunContext,
        version: &str,
        name: &str,
        checksum: &str,
        no_transaction: bool,
        down: Option<(&str, bool)>,
        reason: &str,
    ) -> Result<(), TrackingError> {
        let down_sql = down.map(|d| d.0);
        let down_no_tx = down.is_some_and(|d| d.1);
        self.change_with_history(
            db,
            ctx,
            Some((
                "INSERT INTO {s}.schema_migrations (version, version_text, name, checksum, status, \
                   applied_by, execution_time_ms, no_transaction, down_sql, down_no_transaction, run_id, environment) \
                 VALUES ({s}.version_key($16), $16, $17, $18, 'completed', $19, 0, $20, $21, $22, $23, $24)",
                &[
                    &version,
                    &name,
                    &checksum,
                    &ctx.actor,
                    &no_transaction,
                    &down_sql,
                    &down_no_tx,
                    &ctx.run_id,
                    &ctx.environment,
                ],
            )),
            &History {
                action: "adopt",
                status: "completed",
                duration_ms: Some(0),
                reason: Some(reason),
                ..History::apply(version, name, checksum, "completed", None, None)
            },
        )
    }

    /// Indexes left INVALID (a failed CREATE INDEX CONCURRENTLY leaves one behind).
    pub fn invalid_indexes(&self, db: &mut Db) -> Result<Vec<String>, TrackingError> {
        let rows = db
            .query(
                "SELECT i.indexrelid::regclass::text FROM pg_index AS i WHERE NOT i.indisvalid ORDER BY 1",
                &[],
            )
            .map_err(|source| TrackingError::Read {
                schema: self.schema.clone(),
                source,
            })?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

/// A tracking statement's parameters: its own, then the run context's seven (actor,
/// run id, environment, git sha, git ref, CI run URL, tool version) numbered after them.
fn with_context<'p>(
    own: &[&'p (dyn ToSql + Sync)],
    ctx: &'p RunContext,
) -> Vec<&'p (dyn ToSql + Sync)> {
    let mut params = own.to_vec();
    params.extend_from_slice(&[
        &ctx.actor as &(dyn ToSql + Sync),
        &ctx.run_id,
        &ctx.environment,
        &ctx.git_sha,
        &ctx.git_ref,
        &ctx.ci_run_url,
        &TOOL_VERSION,
    ]);
    params
}

/// The record of a repeatable migration that ran, written by the statement
/// [`Tracking::record_repeatable_sql`] prepares, inside its transaction.
pub struct RepeatableRecord<'a> {
    pub name: &'a str,
    pub checksum: &'a str,
    pub ctx: &'a RunContext,
}

impl RepeatableRecord<'_> {
    pub async fn insert(
        &self,
        c: &tokio_postgres::Client,
        stmt: &tokio_postgres::Statement,
    ) -> Result<u64, tokio_postgres::Error> {
        let own: [&(dyn ToSql + Sync); 2] = [&self.name, &self.checksum];
        c.execute(stmt, &with_context(&own, self.ctx)).await
    }
}

/// The tracking row of a transactional migration, written by the statement
/// [`Tracking::record_applied_sql`] prepares, inside the migration's transaction.
pub struct AppliedRecord<'a> {
    pub version: &'a str,
    pub name: &'a str,
    pub checksum: &'a str,
    pub down_sql: Option<&'a str>,
    pub down_no_transaction: bool,
    pub ctx: &'a RunContext,
}

impl AppliedRecord<'_> {
    /// Send the insert; awaiting it is the caller's business (it may be pipelined).
    pub async fn insert(
        &self,
        c: &tokio_postgres::Client,
        stmt: &tokio_postgres::Statement,
    ) -> Result<u64, tokio_postgres::Error> {
        let own: [&(dyn ToSql + Sync); 5] = [
            &self.version,
            &self.name,
            &self.checksum,
            &self.down_sql,
            &self.down_no_transaction,
        ];
        c.execute(stmt, &with_context(&own, self.ctx)).await
    }
}
