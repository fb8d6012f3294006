//! Command-line types. All `--help` text lives in these doc comments.

pub mod action;
pub mod ci;
pub mod commands;
pub mod lint_cmd;
pub mod pipeline_cmd;
pub mod settings;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Exit codes: the contract scripts and CI rely on.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The work failed: a migration error, a modified or failed migration, lint errors, drift.
    pub const FAILED: u8 = 1;
    /// Usage or configuration error: bad flags, unreadable pipeline file, bad database URL.
    pub const USAGE: u8 = 2;
    /// Refused by a safety gate: missing confirmation, production from an unexpected ref.
    pub const REFUSED: u8 = 3;
    /// Stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: u8 = 130;
}

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  the work failed (a migration error, a modified or failed migration, lint errors, drift)
  2  usage or configuration error (bad flags, bad database URL, unreadable files)
  3  refused by a safety gate (missing confirmation, production from an unexpected ref)
  130  interrupted (Ctrl-C or SIGTERM): stopped at a safe point, or at once on a second signal

Examples:
  pgrollout --ephemeral apply            apply migrations/ to a throwaway PostgreSQL
  DATABASE_URL=postgres://app@db/app pgrollout status
  pgrollout apply --dry-run              rehearse pending migrations, then roll back
  pgrollout new add_users_email          create migrations/<timestamp>_add_users_email.sql";

/// pgrollout — PostgreSQL migrations for CI: exactly once, under a lock, with clear errors.
///
/// Migrations are plain .sql files named <version>_<name>.sql in the migrations directory
/// (default ./migrations). Each runs in its own transaction together with its tracking row,
/// unless its section is marked `-- migrate:up transaction:false`.
#[derive(Debug, Parser)]
#[command(name = "pgrollout", version, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Database to work on, as a URL (postgres://user:password@host:5432/db?sslmode=require).
    ///
    /// sslmode follows libpq: disable, prefer (default), require (encrypt, no verification),
    /// verify-ca, verify-full; sslrootcert=/path/ca.crt names the CA. The password is never
    /// printed: URLs are always shown as postgres://user:***@host/db.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// Directory holding the migration files.
    #[arg(
        long,
        global = true,
        env = "PGROLLOUT_MIGRATIONS",
        hide_env_values = true,
        value_name = "DIR"
    )]
    pub migrations: Option<PathBuf>,

    /// The file layout of the migrations directory (detected from the files when not given).
    ///
    /// dbmate (also supabase, pgrollout): <version>_<name>.sql with -- migrate:up/down
    /// sections; golang-migrate (also sqlx): <version>_<name>.up.sql + .down.sql; flyway:
    /// V<1.2>__<desc>.sql and U… undo files; refinery: V<n>__/U<n>__<name>.sql; diesel:
    /// <version>_<name>/up.sql + down.sql directories; sqitch: sqitch.plan with deploy/ and
    /// revert/. Detection refuses a directory mixing two layouts. Also `layout:` in
    /// pgrollout.yml. Example: --layout flyway
    #[arg(long, global = true, env = "PGROLLOUT_LAYOUT", value_name = "NAME", value_parser = parse_layout)]
    pub layout: Option<crate::migration::Layout>,

    /// The character between version and name in dbmate-layout file names (default `_`).
    ///
    /// `-` reads `<digits>-<name>.sql` files, as docker-entrypoint init scripts are often
    /// named. Also `version_separator:` in pgrollout.yml. Example: --version-separator -
    #[arg(long, global = true, value_name = "CHAR", allow_hyphen_values = true)]
    pub version_separator: Option<char>,

    /// Start a throwaway local PostgreSQL, use it, and delete it on exit.
    ///
    /// Needs the PostgreSQL server binaries (initdb, pg_ctl: Debian package `postgresql`),
    /// found on PATH, under /usr/lib/postgresql/*/bin, or in $PGROLLOUT_PG_BIN.
    /// Overrides --database-url.
    #[arg(long, global = true)]
    pub ephemeral: bool,

    /// Schema holding pgrollout's tracking tables.
    #[arg(
        long,
        global = true,
        env = "PGROLLOUT_SCHEMA",
        hide_env_values = true,
        default_value = "pgrollout",
        value_name = "NAME"
    )]
    pub schema: String,

    /// Output format of the command's result (progress always goes to stderr).
    ///
    /// html and markdown are for `report` only.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    #[command(flatten)]
    pub timing: Timing,

    /// The pipeline file: environments, their steps and settings.
    ///
    /// When it exists, its `migrations:` and `settings:` also apply to the other commands
    /// (flags and environment variables win over it). A missing default file is fine; a
    /// file named with --config must exist.
    #[arg(
        long,
        global = true,
        env = "PGROLLOUT_CONFIG",
        hide_env_values = true,
        default_value = "pgrollout.yml",
        value_name = "FILE"
    )]
    pub config: PathBuf,

    /// Environment of the pipeline file to run (`pipeline run`).
    ///
    /// In GitHub Actions the event chooses it (a push matching on.branches/on.tags, or
    /// the workflow_dispatch `environment` input); --env must then agree with the event.
    #[arg(
        long = "env",
        global = true,
        env = "PGROLLOUT_ENV",
        hide_env_values = true,
        value_name = "NAME"
    )]
    pub env: Option<String>,

    /// Option ids left at their defaults (the pipeline file may set those).
    #[arg(skip)]
    pub defaulted: Vec<String>,

    /// Where `database_url` came from: `--database-url` or `DATABASE_URL`.
    #[arg(skip)]
    pub database_url_from: Option<&'static str>,

    /// The pipeline file, when one was found.
    #[arg(skip)]
    pub pipeline: Option<settings::Loaded>,
}

#[derive(Debug, Args, Clone)]
pub struct Timing {
    /// lock_timeout for each migration: how long one statement may wait for a table lock
    /// before the migration is rolled back and retried (e.g. 5s, 500ms). At least 1ms
    /// (PostgreSQL reads less as no limit) and at most 2147483647ms.
    #[arg(long, global = true, env = "PGROLLOUT_LOCK_TIMEOUT", hide_env_values = true, value_parser = parse_duration, default_value = "5s", value_name = "DURATION")]
    pub lock_timeout: Duration,

    /// statement_timeout for each statement of a migration (0 = none; e.g. 15m).
    #[arg(long, global = true, env = "PGROLLOUT_STATEMENT_TIMEOUT", hide_env_values = true, value_parser = parse_duration, default_value = "0", value_name = "DURATION")]
    pub statement_timeout: Duration,

    /// How many times a migration that hit lock_timeout (SQLSTATE 55P03) is retried, with backoff.
    #[arg(
        long,
        global = true,
        env = "PGROLLOUT_LOCK_RETRIES",
        hide_env_values = true,
        default_value_t = 5,
        value_name = "N"
    )]
    pub lock_retries: u32,

    /// How long to wait for another runner's migration lock before failing (names the holder).
    #[arg(long, global = true, env = "PGROLLOUT_LOCK_WAIT", hide_env_values = true, value_parser = parse_duration, default_value = "10m", value_name = "DURATION")]
    pub lock_wait: Duration,

    /// How long to keep retrying while the database server is starting up.
    #[arg(long, global = true, env = "PGROLLOUT_CONNECT_TIMEOUT", hide_env_values = true, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// `report` only: one self-contained page.
    Html,
    /// `report` only: GitHub-flavoured Markdown.
    Markdown,
}

// `defer`: a subcommand's arguments are built only when it is the one being parsed (or
// its help is shown), not on every start. Doc comments on the `Args` structs the
// variants flatten would then override the variants' own: keep those plain comments.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Create a new migration file with up and down sections, or with --pattern the safe
    /// multi-step sequence of files for a change that would lock a busy table.
    ///
    /// Writes <migrations>/<UTC YYYYMMDDHHMMSS>_<snake_case_name>.sql and prints its path.
    /// With --pattern NAME: one file per step, versions one second apart, each passing
    /// `pgrollout lint` and `pgrollout test`; the flags the pattern needs are listed below
    /// (a missing one is named). A column's current type, and an enum's last value, are
    /// read from the earlier migrations when the pattern needs them.
    #[command(after_help = new_after_help())]
    New {
        /// What the migration does, in a few words (not with --pattern, which names its files).
        #[arg(required_unless_present = "pattern", conflicts_with = "pattern")]
        name: Option<String>,
        #[command(flatten)]
        pattern: PatternFlags,
    },

    /// Show every migration: applied, pending, modified, missing file, failed.
    ///
    /// With --all: one table of versions × environments. An environment whose database
    /// cannot be reached is named with the reason and the others are still shown; the
    /// exit code is then 1.
    #[command(
        after_help = "Examples:\n  pgrollout status\n  pgrollout status --runs\n  pgrollout status --all --env-url staging=$STAGING_DATABASE_URL --env-url production=$PROD_DATABASE_URL"
    )]
    Status {
        /// Every environment, side by side.
        #[arg(long, conflicts_with = "runs")]
        all: bool,
        /// The runs as batches instead: run id, who, when, the versions each applied and
        /// rolled back (the newest 20; `rollback --run ID` undoes one).
        #[arg(long)]
        runs: bool,
        #[command(flatten)]
        envs: EnvUrls,
    },

    /// Compare database schemas and report drift; exit 1 on critical drift.
    ///
    /// The source is the reference, the target the database checked. Both are read from
    /// the system catalogs (no pg_dump): tables, columns, constraints, indexes (and INVALID
    /// ones), views, functions (body hashes), triggers, row-level security and policies,
    /// enums, sequences, extensions; owners and privileges with --privileges.
    /// With --against migrations the source is the schema the migration files build on a
    /// throwaway PostgreSQL: this finds changes made by hand (a production hotfix).
    /// Critical: an object on one side only, a type or nullability change, an INVALID
    /// index. Warning: defaults, comments, privileges, function bodies. Info: the rest.
    #[command(
        after_help = "Examples:\n  pgrollout drift --source $STAGING_DATABASE_URL --target $PROD_DATABASE_URL\n  pgrollout drift --target $PROD_DATABASE_URL --against migrations\n  pgrollout drift --source staging --target production --format json"
    )]
    Drift {
        /// The reference database: an environment name or a URL.
        #[arg(
            long,
            value_name = "ENV|URL",
            required_unless_present = "against",
            conflicts_with = "against"
        )]
        source: Option<String>,
        /// The database checked: an environment name or a URL (default: --database-url).
        #[arg(long, value_name = "ENV|URL")]
        target: Option<String>,
        /// Compare the target with what the migration files build instead of a source database.
        #[arg(long, value_enum, value_name = "WHAT")]
        against: Option<Against>,
        /// Only compare these schemas (repeatable; default: all but system schemas).
        #[arg(long, value_name = "SCHEMA")]
        include_schema: Vec<String>,
        /// Leave these schemas out (repeatable). The tracking schema is always left out.
        #[arg(long, value_name = "SCHEMA")]
        exclude_schema: Vec<String>,
        /// Also compare owners and privileges (GRANTs).
        #[arg(long)]
        privileges: bool,
    },

    /// Write a migration health report: HTML dashboard, JSON or Markdown.
    ///
    /// Health per environment (healthy: everything applied; warning: pending, running or
    /// slow migrations; error: failed or modified migrations, applied versions without a
    /// file, or the database unreachable), counts, every migration with applied-at,
    /// applied-by and duration, the slowest ones, recent history, backup markers, and
    /// migrations compared across environments. Exits 0 whenever the report is written.
    #[command(
        after_help = "Examples:\n  pgrollout report --format html --output report.html\n  pgrollout report --format html --output report.html --all --env-url staging=$STAGING_DATABASE_URL --env-url production=$PROD_DATABASE_URL\n  pgrollout report --format json"
    )]
    Report {
        /// Write the report to FILE instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Every environment (without it: the --database-url database, or the --env-url ones).
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        envs: EnvUrls,
        /// How many history rows and backup markers to show per environment.
        #[arg(long, default_value_t = 20, value_name = "N")]
        history: i64,
    },

    /// Check the migration files; with a database, also checksums and history.
    ///
    /// Without a database: names, duplicate versions, UTF-8, syntax (the real PostgreSQL
    /// parser), psql meta-commands, statements that cannot run in a transaction.
    /// With one: files changed after they were applied, applied versions missing from disk,
    /// pending versions older than the newest applied one, failed migrations.
    Validate {
        #[command(flatten)]
        plan: PlanFlags,
    },

    /// Show what `apply` would do, without changing anything.
    Plan {
        #[command(flatten)]
        plan: PlanFlags,
    },

    /// Apply pending migrations, each exactly once, under the migration lock.
    ///
    /// Each migration runs in one transaction with its tracking row (so it is applied
    /// completely or not at all), or — for `transaction:false` sections — statement by
    /// statement, recorded as running, then completed or failed.
    #[command(
        after_help = "Examples:\n  pgrollout apply\n  pgrollout apply --dry-run\n  pgrollout apply --target 20251105211941"
    )]
    Apply {
        /// Rehearse: run each pending transactional migration inside a transaction that is
        /// rolled back. Nothing is written, not even the tracking schema.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        plan: PlanFlags,
    },

    /// Mark an existing database as migrated up to VERSION without running those files.
    ///
    /// For adopting pgrollout on a database built before it: files up to and including
    /// VERSION are treated as applied; later ones are pending. Refused when the tracking
    /// schema already has rows.
    Baseline {
        /// Last version already present in the database.
        #[arg(long, value_name = "VERSION")]
        version: String,
    },

    /// Clear failed or interrupted migrations after fixing their cause, or accept an edited file.
    ///
    /// Without --accept: removes the tracking rows of failed/interrupted transaction:false
    /// migrations so the next apply runs them again from their first statement.
    /// With --accept VERSION --reason TEXT: records the file's current checksum for an
    /// intentionally edited, already-applied migration. Both leave an audit row in
    /// migration_history.
    #[command(
        after_help = "Examples:\n  pgrollout repair\n  pgrollout repair --accept 0003 --reason \"comment fixed, SQL unchanged\""
    )]
    Repair {
        /// Version of an applied migration whose edited file should be accepted.
        #[arg(long, value_name = "VERSION", requires = "reason")]
        accept: Option<String>,
        /// Why the edit is safe (stored in the audit log).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Clear failed migrations even though INVALID indexes remain in the database.
        #[arg(long)]
        force: bool,
    },
    /// Roll back the newest applied migrations with their down SQL, newest first.
    ///
    /// Runs under the migration lock. Each migration's down SQL runs in its own
    /// transaction together with the removal of its tracking row and a `rollback` row in
    /// migration_history; a `-- migrate:down transaction:false` section runs statement by
    /// statement. The down SQL that runs is the one stored when the migration was applied,
    /// so a rollback works even if the file changed or was deleted since. Every migration
    /// to undo is checked first: if one has no down SQL, nothing is rolled back.
    #[command(
        after_help = "Examples:\n  pgrollout rollback --steps 1\n  pgrollout rollback --last-run\n  pgrollout rollback --run 3f9c2a7d1b0e4c55 --dry-run\n  pgrollout rollback --to 20251107100000 --dry-run\n  pgrollout rollback --steps 2 --allow-generated"
    )]
    Rollback {
        /// Roll back the newest N applied migrations.
        #[arg(
            long,
            value_name = "N",
            required_unless_present_any = ["to", "last_run", "run"],
            conflicts_with_all = ["to", "last_run", "run"]
        )]
        steps: Option<u32>,
        /// Roll back every migration newer than VERSION; VERSION itself stays applied.
        #[arg(long, value_name = "VERSION", conflicts_with_all = ["last_run", "run"])]
        to: Option<String>,
        /// Roll back exactly the migrations the newest run applied (its batch), newest first.
        #[arg(long, conflicts_with = "run")]
        last_run: bool,
        /// Roll back exactly the migrations run ID applied, newest first (ids: `status --runs`).
        /// Refused while a later run's migrations are applied on top of them.
        #[arg(long, value_name = "ID")]
        run: Option<String>,
        /// Show the down SQL that would run and rehearse it in a transaction that is rolled
        /// back. Nothing is written; generated rollbacks are shown even without --allow-generated.
        #[arg(long)]
        dry_run: bool,
        /// Run generated rollbacks (DROP for CREATE, DROP COLUMN for ADD COLUMN) for
        /// migrations that have no down section. Review them first with --dry-run.
        #[arg(long, env = "PGROLLOUT_ALLOW_GENERATED", hide_env_values = true)]
        allow_generated: bool,
        /// When a file's down section differs from the one stored at apply time, run the
        /// file's (default: the stored one, with a warning).
        #[arg(long)]
        use_file_down: bool,
    },

    /// Take over another tool's migration history: its applied versions become pgrollout's.
    ///
    /// Reads the tool's table as the tool writes it (flyway_schema_history,
    /// schema_migrations of golang-migrate or dbmate, _sqlx_migrations,
    /// __diesel_schema_migrations, refinery_schema_history, sqitch.changes), matches each
    /// applied version to a file (read in the tool's layout unless --layout says
    /// otherwise), and records them — checksums and down SQL of the files as they are now,
    /// one audited `adopt` history row each — in one transaction under the migration lock.
    /// Refuses a failed or dirty history, an applied version without a file, and a
    /// database pgrollout already tracks. The old table is left untouched. See
    /// docs/adopting.md.
    #[command(after_help = "Examples:
  pgrollout adopt --from flyway --dry-run     show what would be recorded
  pgrollout adopt --from golang-migrate       then `pgrollout apply` runs only what is new")]
    Adopt {
        /// The tool whose history to take over: flyway, golang-migrate, dbmate, sqlx,
        /// diesel, refinery, sqitch.
        #[arg(long, value_name = "TOOL", value_parser = parse_tool)]
        from: crate::engine::adopt::Tool,
        /// Show what would be recorded; write nothing.
        #[arg(long)]
        dry_run: bool,
    },

    /// Record a backup marker: the WAL position and transaction id now, who and where.
    ///
    /// A row in the tracking schema's backup_markers table, written under the migration
    /// lock, for point-in-time recovery to just before a migration (restore with
    /// `recovery_target_lsn`). With --dump, first runs `pg_dump --format=custom` into
    /// --output-dir and records the file's path, size and SHA-256 with the marker.
    /// The pipeline's `backup-marker` step does the same.
    #[command(after_help = "Examples:
  pgrollout backup --label \"before the orders split\"
  pgrollout backup --dump --output-dir /backups --format json")]
    Backup {
        /// Also take a pg_dump (custom format) before writing the marker; needs pg_dump on PATH.
        #[arg(long)]
        dump: bool,
        /// Text stored with the marker (default `pgrollout backup`).
        #[arg(long, value_name = "TEXT")]
        label: Option<String>,
        /// Where --dump writes, mode 0600 (default: $GITHUB_WORKSPACE/pgrollout-backups on a
        /// runner, where a later step can upload it; else the current directory).
        #[arg(long, value_name = "DIR", requires = "dump")]
        output_dir: Option<PathBuf>,
    },

    /// Test every migration's rollback on a scratch database: up, down, up again.
    ///
    /// Each migration runs on its own copy of the schema built up to the one before it
    /// (CREATE DATABASE … TEMPLATE, so the role needs CREATEDB): applied, rolled back
    /// (the schema must match the one before it was applied) and applied again (the
    /// schema must match the first apply's), so one broken down does not hide the
    /// others. The copies are dropped afterwards. Schemas are compared
    /// from the catalog: tables, columns, constraints, indexes, views, functions,
    /// triggers, policies, enums, sequences, extensions. Each migration is reported as
    /// reversible, irreversible (no down SQL) or broken (with the difference or the
    /// error); exit code 1 when any is broken. Refuses a database that has objects or
    /// applied migrations of its own unless --force: use --ephemeral.
    #[command(
        after_help = "Examples:\n  pgrollout --ephemeral test\n  pgrollout --database-url postgres://ci@localhost/scratch test"
    )]
    Test {
        /// Test even though the database has objects or migrations of its own (it is
        /// the template of the copies the migrations run on; only they change).
        #[arg(long)]
        force: bool,
        /// Use generated rollbacks for migrations without a down section.
        #[arg(long, env = "PGROLLOUT_ALLOW_GENERATED", hide_env_values = true)]
        allow_generated: bool,
    },

    /// Check migrations for statements that lock tables, lose data or break running code.
    ///
    /// Lints the pending migrations when a database is given (--database-url,
    /// DATABASE_URL or --ephemeral), every file otherwise; --all lints every file even
    /// with a database. The earlier migrations of the set are always read first, so the
    /// rules know which tables exist and each column's type (`uuid → text` rewrites,
    /// `varchar(20) → text` does not). A scan or rewrite of a table the migration did not
    /// create is an error by default. With a database, findings also show the size of the
    /// table they touch, locking findings are errors on tables above
    /// `lint_size_threshold` and warnings below it, and findings on tables that do not
    /// exist yet become info. Each fix names the `new --pattern` that writes the safe steps.
    ///
    /// The pipeline file's `lint_disable`, `lint_severity`, `lint_size_threshold` and
    /// `lint_fail_on` apply (top-level `settings:`, merged with --env's). Rules and how to
    /// silence one: docs/lint-rules.md. Exits 1 when a finding is at or above --fail-on.
    #[command(after_help = "Examples:
  pgrollout lint                                   every file (no database given)
  DATABASE_URL=postgres://… pgrollout lint         the pending migrations, with table sizes
  pgrollout lint migrations/0042_add_index.sql     one file
  pgrollout lint --format json --fail-on warning")]
    Lint(LintArgs),

    /// Serve a dashboard and a JSON API over the pipeline file's environments.
    ///
    /// Pages (an overview card per environment, each environment's migrations, history,
    /// slowest migrations and last failure) and `/api/v1/` JSON for the same data; dry-run,
    /// apply and rollback on the environments whose `serve: { actions: [...] }` allows them
    /// (none by default), with the environment's `on.dispatch.confirm` phrase when it has
    /// one. Runs go through the same lock, executor and audit rows as the CLI, with the
    /// token's name as the actor, and stream their events to the page.
    ///
    /// Every route but /healthz needs a token of PGROLLOUT_SERVE_TOKENS=NAME:TOKEN,…
    /// (`Authorization: Bearer TOKEN`; the dashboard signs in with a form). Without
    /// tokens it starts only with --read-only on a loopback address. With --ephemeral,
    /// each environment gets its own database on the throwaway server. Routes, JSON and a
    /// reverse-proxy set-up: docs/serve.md.
    #[command(after_help = "Examples:
  PGROLLOUT_SERVE_TOKENS=me:$(openssl rand -hex 16) pgrollout --ephemeral serve
  pgrollout serve --read-only                       read-only dashboard on 127.0.0.1:8080
  curl -H \"Authorization: Bearer $TOKEN\" -d '{}' http://127.0.0.1:8080/api/v1/environments/staging/apply")]
    Serve {
        /// Address and port to listen on (port 0: any free port, printed at start).
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
        listen: std::net::SocketAddr,
        /// Show only: no action can be started. Without tokens, only this on loopback.
        #[arg(long)]
        read_only: bool,
    },

    /// Run the pipeline file's environments (`pipeline run`).
    Pipeline {
        #[command(subcommand)]
        command: PipelineCommand,
    },
}

// `pgrollout pipeline …`. (A plain comment: with `defer`, a doc comment here would become
// the about text of `pipeline` when it is built, replacing the variant's.)
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum PipelineCommand {
    /// Run an environment's steps from the pipeline file, gated by the trigger.
    ///
    /// The environment comes from --env, or in GitHub Actions from the event: a push to a
    /// branch matching `on.branches`; a push of a tag matching `on.tags` (a `v*.*.*`
    /// pattern also requires a valid semantic version, so v1.2 and v01.2.3 are refused);
    /// a workflow_dispatch whose `confirm` input equals the environment's phrase exactly,
    /// and which writes nothing unless its `dry_run` input is false.
    ///
    /// An event that selects no environment exits 0 with a notice; a refused gate exits 3
    /// and touches nothing. The database URL comes from the variable the environment
    /// names (`database_url_env`), else from --database-url / DATABASE_URL.
    #[command(after_help = "Examples:
          STAGING_DATABASE_URL=postgres://… pgrollout pipeline run --env staging
          pgrollout pipeline run --env production --confirm MIGRATE-PRODUCTION --review-delay 3s
          pgrollout pipeline run --env production --confirm MIGRATE-PRODUCTION --dry-run")]
    Run(PipelineRunArgs),
}

#[derive(Debug, Args, Clone)]
pub struct PipelineRunArgs {
    /// The environment's confirmation phrase (`on.dispatch.confirm`), for runs outside a
    /// workflow_dispatch; must match exactly.
    #[arg(
        long,
        env = "PGROLLOUT_CONFIRM",
        hide_env_values = true,
        value_name = "PHRASE"
    )]
    pub confirm: Option<String>,

    /// Run only the read-only and rehearsal steps: nothing is written.
    #[arg(long)]
    pub dry_run: bool,

    /// Replace the duration of every `review-delay` step (e.g. 3s for a local run).
    #[arg(long, env = "PGROLLOUT_REVIEW_DELAY", hide_env_values = true, value_parser = parse_duration, value_name = "DURATION")]
    pub review_delay: Option<Duration>,
}

/// What `drift --against` compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Against {
    /// The schema the migration files build on a throwaway PostgreSQL.
    Migrations,
}

#[derive(Debug, Args, Clone, Default)]
pub struct EnvUrls {
    /// An environment and its database, as NAME=URL (repeatable). An empty URL lists the
    /// environment as skipped.
    #[arg(long = "env-url", value_name = "NAME=URL")]
    pub env_url: Vec<String>,
}

// `new --pattern` and its parameters (src/migration/patterns.rs has what each writes).
// A plain comment: a doc comment here would become the about text of `new` when its
// deferred arguments are built, replacing the variant's.
#[derive(Debug, Args, Clone, Default)]
pub struct PatternFlags {
    /// Write the files of this safe-change pattern (listed below).
    #[arg(long, value_name = "NAME", value_parser = pattern_names())]
    pub pattern: Option<String>,
    /// The table (`orders`, `app.orders`).
    #[arg(long, value_name = "TABLE")]
    pub table: Option<String>,
    /// The column; for add-index, several separated by commas.
    #[arg(long, value_name = "COLUMN")]
    pub column: Option<String>,
    /// The new type (change-column-type), the column's type when the migrations do not
    /// say (rename-column, drop-column --contract), or the enum type (add-enum-value).
    #[arg(long = "type", value_name = "TYPE")]
    pub type_name: Option<String>,
    /// The referenced table and column: `customers(id)`, or `customers` for its primary key.
    #[arg(long, value_name = "TABLE[(COLUMN)]")]
    pub references: Option<String>,
    /// The CHECK condition (add-check), e.g. 'total >= 0'.
    #[arg(long, value_name = "EXPR")]
    pub check: Option<String>,
    /// Name of the index or constraint (default: derived from table and column).
    #[arg(long, value_name = "NAME")]
    pub constraint: Option<String>,
    /// The new column name (rename-column).
    #[arg(long, value_name = "COLUMN")]
    pub to: Option<String>,
    /// The enum label to add (add-enum-value).
    #[arg(long, value_name = "LABEL")]
    pub value: Option<String>,
    /// Place the enum label after this one (default: after the last known one).
    #[arg(long, value_name = "LABEL")]
    pub after: Option<String>,
    /// Place the enum label before this one.
    #[arg(long, value_name = "LABEL")]
    pub before: Option<String>,
    /// The later step of rename-column and drop-column: drop the old column, once no
    /// running code uses it.
    #[arg(long)]
    pub contract: bool,
}

impl PatternFlags {
    /// The first pattern parameter given, for "needs --pattern".
    pub fn first_given(&self) -> Option<&'static str> {
        [
            ("--table", self.table.is_some()),
            ("--column", self.column.is_some()),
            ("--type", self.type_name.is_some()),
            ("--references", self.references.is_some()),
            ("--check", self.check.is_some()),
            ("--constraint", self.constraint.is_some()),
            ("--to", self.to.is_some()),
            ("--value", self.value.is_some()),
            ("--after", self.after.is_some()),
            ("--before", self.before.is_some()),
            ("--contract", self.contract),
        ]
        .into_iter()
        .find(|(_, given)| *given)
        .map(|(flag, _)| flag)
    }
}

fn pattern_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        crate::migration::patterns::Pattern::ALL.map(|p| p.name()),
    )
}

fn new_after_help() -> String {
    let mut s = String::from("Patterns (--pattern NAME, then its flags):\n");
    for p in crate::migration::patterns::Pattern::ALL {
        s.push_str(&format!("  {:<19} {}\n", p.name(), p.summary()));
    }
    s.push_str(
        "\nExamples:\n  pgrollout new \"Add users email\"   →  migrations/20261123190501_add_users_email.sql\n  \
         pgrollout new --pattern add-index --table orders --column customer_id\n  \
         pgrollout new --pattern add-foreign-key --table orders --column customer_id --references 'customers(id)'\n  \
         pgrollout new --pattern change-column-type --table orders --column total --type 'numeric(12,2)'",
    );
    s
}

#[derive(Debug, Args, Clone)]
pub struct LintArgs {
    /// Migration files to lint (paths of files in the migrations directory).
    ///
    /// Default: the pending migrations with a database, every file without one.
    #[arg(value_name = "FILES")]
    pub files: Vec<PathBuf>,

    /// Lint every migration file, even the ones a given database has already applied.
    #[arg(long, conflicts_with = "files")]
    pub all: bool,

    /// Also rehearse the migrations on a shadow database and report what each statement
    /// really did: the locks it took, the tables it rewrote or scanned, with their live
    /// sizes.
    ///
    /// With a database (--database-url, DATABASE_URL, PG* variables): a throwaway PostgreSQL gets
    /// its schema from `pg_dump --schema-only` (no rows; the database is only read) and
    /// the pending migrations run there. With --ephemeral: the migrations before the
    /// first linted one are applied to the throwaway server first. Needs initdb/pg_ctl
    /// (as --ephemeral) and, with a database, pg_dump. Findings: observed-rewrite,
    /// observed-scan, observed-lock (docs/lint-rules.md, "Rehearsal").
    ///
    /// Example: pgrollout --database-url "$STAGING_DATABASE_URL" lint --rehearse
    #[arg(long)]
    pub rehearse: bool,

    /// Lowest severity that makes the command exit 1 (default: the pipeline file's
    /// `lint_fail_on`, else error).
    #[arg(
        long,
        value_enum,
        env = "PGROLLOUT_LINT_FAIL_ON",
        value_name = "SEVERITY"
    )]
    pub fail_on: Option<FailOnArg>,
}

/// `--fail-on`: the same values as the pipeline file's `lint_fail_on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOnArg {
    Error,
    Warning,
    Info,
    /// Report findings, never fail.
    Never,
}

impl From<FailOnArg> for crate::config::FailOn {
    fn from(a: FailOnArg) -> Self {
        match a {
            FailOnArg::Error => crate::config::FailOn::Error,
            FailOnArg::Warning => crate::config::FailOn::Warning,
            FailOnArg::Info => crate::config::FailOn::Info,
            FailOnArg::Never => crate::config::FailOn::Never,
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct PlanFlags {
    /// Stop after this version (it is included).
    #[arg(long, value_name = "VERSION")]
    pub target: Option<String>,
    /// Allow applying pending migrations older than the newest applied one.
    #[arg(long)]
    pub allow_out_of_order: bool,
    /// Allow applied migrations whose files are no longer on disk.
    #[arg(long)]
    pub allow_missing: bool,
}

pub use crate::config::parse_duration;

/// `--from TOOL` of `adopt`.
pub fn parse_tool(s: &str) -> Result<crate::engine::adopt::Tool, String> {
    crate::engine::adopt::Tool::from_name(s).ok_or_else(|| {
        format!(
            "unknown tool `{s}`: use one of {}",
            crate::engine::adopt::TOOLS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// `--layout NAME`: one of the names in [`crate::migration::layout::NAMES`].
pub fn parse_layout(s: &str) -> Result<crate::migration::Layout, String> {
    crate::migration::Layout::from_name(s).ok_or_else(|| {
        format!(
            "unknown layout `{s}`: use one of {}",
            crate::migration::layout::NAMES
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// With `defer`, an `Args` struct's or nested enum's doc comment would replace the
    /// variant's description once the subcommand is built (for its own `--help`).
    #[test]
    fn deferred_subcommands_keep_the_variant_description() {
        use clap::CommandFactory;
        let mut cli = Cli::command();
        let before: Vec<(String, Option<String>)> = cli
            .get_subcommands()
            .map(|c| {
                (
                    c.get_name().to_string(),
                    c.get_about().map(|a| a.to_string()),
                )
            })
            .collect();
        cli.build();
        for (name, about) in before {
            let sub = cli.find_subcommand(&name).unwrap();
            assert_eq!(sub.get_about().map(|a| a.to_string()), about, "{name}");
        }
        let new = cli.find_subcommand("new").unwrap();
        assert!(new.get_arguments().any(|a| a.get_id() == "pattern"));
    }
}
