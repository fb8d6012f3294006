//! Shadow rehearsal: `lint --rehearse` against a database whose `orders` has 1 M rows
//! (and with `--ephemeral`), and the pipeline's `dry-run` step, which must not hold a
//! lock on a production table while it rewrites or scans it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::common::{self, Pgrollout, Run, TestDb};

const BASE: &str = "CREATE TABLE customers (id uuid PRIMARY KEY, code bigint UNIQUE);\n\
CREATE TABLE orders (id bigint PRIMARY KEY, total numeric, label varchar(20), customer_id uuid, customer_code bigint);\n";

/// Line 1: an index built without CONCURRENTLY; 2: a foreign key without NOT VALID;
/// 3 and 4: type changes that rewrite; 5: a binary-coercible one that does not.
const CHANGE: &str = "CREATE INDEX orders_label ON orders (label);\n\
ALTER TABLE orders ADD CONSTRAINT orders_customer FOREIGN KEY (customer_code) REFERENCES customers (code);\n\
ALTER TABLE orders ALTER COLUMN total TYPE text;\n\
ALTER TABLE orders ALTER COLUMN customer_id TYPE text;\n\
ALTER TABLE orders ALTER COLUMN label TYPE text;\n";

const ROWS: i64 = 1_000_000;

fn workspace(files: &[(&str, &str)], pipeline: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    for (name, sql) in files {
        std::fs::write(dir.path().join("migrations").join(name), sql).unwrap();
    }
    if let Some(p) = pipeline {
        std::fs::write(dir.path().join("pgrollout.yml"), p).unwrap();
    }
    dir
}

fn command(dir: &Path) -> Pgrollout {
    Pgrollout::new()
        .cwd(dir)
        .env("PGROLLOUT_CONNECT_TIMEOUT", "10s")
}

/// A database with 001 applied by pgrollout and 1 M rows in `orders` (analyzed, so the
/// catalog's row estimate is live), copied from a template built once per test run.
fn big_orders() -> TestDb {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        let db = common::fresh_db();
        let dir = workspace(&[("001_orders.sql", BASE)], None);
        command(dir.path())
            .database_url(&db.url)
            .arg("apply")
            .run()
            .ok();
        common::exec(
            &db.url,
            &format!(
                "INSERT INTO customers SELECT gen_random_uuid(), g FROM generate_series(1, 10) g;\n\
                 INSERT INTO orders SELECT g, g, 'x', NULL, 1 + g % 10 FROM generate_series(1, {ROWS}) g;\n\
                 ANALYZE customers; ANALYZE orders;"
            ),
        );
        // Kept for the whole run: the template of every copy.
        let name = db.name.clone();
        std::mem::forget(db);
        name
    });
    common::db_from_template(template)
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{}", r.debug()))
}

/// (rule, line, severity, message) of each `observed-*` finding.
fn observed(v: &serde_json::Value) -> Vec<(String, u64, String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"].as_str().unwrap().starts_with("observed-"))
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
                f["severity"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn at<'a>(
    found: &'a [(String, u64, String, String)],
    rule: &str,
    line: u64,
) -> &'a (String, u64, String, String) {
    found
        .iter()
        .find(|f| f.0 == rule && f.1 == line)
        .unwrap_or_else(|| panic!("no {rule} at line {line} in {found:#?}"))
}

#[test]
fn rehearse_reports_observed_locks_rewrites_scans_and_sizes() {
    let db = big_orders();
    let dir = workspace(
        &[("001_orders.sql", BASE), ("002_change.sql", CHANGE)],
        None,
    );
    let r = command(dir.path())
        .database_url(&db.url)
        .args(["--format", "json", "lint", "--rehearse"])
        .run();
    let v = json(&r);
    let found = observed(&v);

    let index = at(&found, "observed-scan", 1);
    assert!(
        index.3.contains("takes SHARE on `orders` (1 M rows, ") && index.3.contains("scans it"),
        "{index:?}"
    );
    let fk = at(&found, "observed-scan", 2);
    assert!(
        fk.3.contains("takes SHARE ROW EXCLUSIVE on `orders` (1 M rows, ")
            && fk.3.contains("scans it"),
        "{fk:?}"
    );
    let total = at(&found, "observed-rewrite", 3);
    assert!(
        total.3.contains("ACCESS EXCLUSIVE on `orders` (1 M rows, ")
            && total.3.contains("MB)")
            && total.3.contains("rewrites it")
            && total.3.contains("every read and write"),
        "{total:?}"
    );
    at(&found, "observed-rewrite", 4);
    assert!(
        !found.iter().any(|f| f.1 == 5),
        "varchar(20) → text is binary-coercible: no rewrite, no scan: {found:#?}"
    );
    // The guesses from the syntax are replaced on the statements that were observed.
    let rules: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(
        !rules.contains(&"require-concurrent-index-creation")
            && !rules.contains(&"column-type-rewrite"),
        "{rules:?}"
    );
    // `orders` is under the default lint_size_threshold (1 GB): warnings, exit 0.
    assert!(
        found
            .iter()
            .filter(|f| f.0 != "observed-lock")
            .all(|f| f.2 == "warning"),
        "{found:#?}"
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    // Nothing of it reached the target.
    assert_eq!(
        common::query_strings(
            &db.url,
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'total'"
        ),
        vec![vec![Some("numeric".to_string())]]
    );

    // Over the threshold, the same findings are errors and fail the lint.
    std::fs::write(
        dir.path().join("pgrollout.yml"),
        "settings: { lint_size_threshold: 1MB }\nenvironments:\n  ci:\n    database_url_env: CI_DATABASE_URL\n    steps: [lint]\n",
    )
    .unwrap();
    let r = command(dir.path())
        .database_url(&db.url)
        .args(["--format", "json", "lint", "--rehearse"])
        .run();
    let found = observed(&json(&r));
    assert_eq!(at(&found, "observed-rewrite", 3).2, "error", "{found:#?}");
    assert_eq!(at(&found, "observed-scan", 1).2, "error", "{found:#?}");
    assert_eq!(r.code, 1, "{}", r.debug());
}

#[test]
fn rehearse_on_ephemeral_builds_the_schema_from_earlier_migrations() {
    let allowed = CHANGE.replace(
        "ALTER TABLE orders ALTER COLUMN total",
        "-- pgrollout:allow observed-rewrite orders is tiny in every environment\nALTER TABLE orders ALTER COLUMN total",
    );
    let dir = workspace(
        &[("001_orders.sql", BASE), ("002_change.sql", &allowed)],
        None,
    );
    let r = command(dir.path())
        .args(["--ephemeral", "--format", "json", "lint", "--rehearse"])
        .run();
    let found = observed(&json(&r));
    // Lines moved down by one: the directive is line 3.
    at(&found, "observed-scan", 1);
    at(&found, "observed-scan", 2);
    assert!(
        !found.iter().any(|f| f.1 == 4),
        "the allow suppresses the rewrite at line 4: {found:#?}"
    );
    let customer = at(&found, "observed-rewrite", 5);
    // No target, so no live sizes: the rewrite of an existing table is an error.
    assert_eq!(customer.2, "error", "{customer:?}");
    assert!(!customer.3.contains("rows"), "{customer:?}");
    assert_eq!(r.code, 1, "{}", r.debug());

    // Without --rehearse, the allow of an observed rule is not reported as unused.
    let r = command(dir.path()).args(["--format", "json", "lint"]).run();
    let v = json(&r);
    assert!(
        !v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "unused-allow"),
        "{}",
        r.debug()
    );
}

const PIPELINE: &str =
    "environments:\n  production:\n    database_url_env: PROD_DATABASE_URL\n    \
settings: { lock_timeout: 1s }\n    steps: [dry-run]\n";

/// A session that runs `SELECT … FROM orders` over and over while the dry-run runs and
/// keeps the longest one it saw.
struct Probe {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    worst_ms: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Probe {
    fn start(url: &str) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let worst_ms = Arc::new(AtomicU64::new(0));
        let mut client = common::connect(url).unwrap();
        let (s, c, w) = (stop.clone(), count.clone(), worst_ms.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let started = Instant::now();
                client
                    .simple_query("SELECT id FROM orders WHERE id = 42")
                    .unwrap();
                w.fetch_max(started.elapsed().as_millis() as u64, Ordering::SeqCst);
                c.fetch_add(1, Ordering::SeqCst);
            }
        });
        Probe {
            stop,
            count,
            worst_ms,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        (
            self.count.load(Ordering::SeqCst),
            self.worst_ms.load(Ordering::SeqCst),
        )
    }
}

#[test]
fn production_dry_run_never_blocks_readers_of_a_big_table() {
    let db = big_orders();
    let dir = workspace(
        &[
            ("001_orders.sql", BASE),
            ("002_change.sql", CHANGE),
            (
                "003_note.sql",
                "ALTER TABLE customers ADD COLUMN note text;\n",
            ),
        ],
        Some(PIPELINE),
    );
    let probe = Probe::start(&db.url);
    let seen = probe.count.clone();
    common::wait_until("the probe has run a query", Duration::from_secs(10), || {
        seen.load(Ordering::SeqCst) > 0
    });
    let before = seen.load(Ordering::SeqCst);
    let r = command(dir.path())
        .env("PROD_DATABASE_URL", &db.url)
        .args(["pipeline", "run", "--env", "production"])
        .run();
    let during = seen.load(Ordering::SeqCst) - before;
    let (_, worst_ms) = probe.finish();
    assert_eq!(r.code, 0, "{}", r.debug());
    assert!(during > 0, "the probe ran no query during the dry-run");
    assert!(
        worst_ms < 1000,
        "a SELECT on orders waited {worst_ms} ms (lock_timeout is 1 s) during the dry-run:\n{}",
        r.debug()
    );
    let out = r.all();
    assert!(
        out.contains("002 change: rehearsed on the shadow only (line 1: `CREATE INDEX orders_label ON orders (label)` scans `orders` under SHARE"),
        "{out}"
    );
    assert!(
        out.contains("003 note: rehearsed on the shadow only (it comes after 002 change, which was not rehearsed on the target)"),
        "{out}"
    );
    assert!(out.contains("2 on the shadow only"), "{out}");
    // No row changed, nothing applied, the schema as it was.
    assert_eq!(
        common::query_strings(
            &db.url,
            "SELECT count(*), sum(customer_code), (SELECT count(*) FROM pgrollout.schema_migrations) FROM orders"
        ),
        vec![vec![
            Some(ROWS.to_string()),
            Some((1..=ROWS).map(|g| 1 + g % 10).sum::<i64>().to_string()),
            Some("1".to_string())
        ]]
    );
}

#[test]
fn production_dry_run_rehearses_catalog_only_migrations_on_the_target() {
    let db = big_orders();
    let dir = workspace(
        &[
            ("001_orders.sql", BASE),
            (
                "002_note.sql",
                "ALTER TABLE customers ADD COLUMN note text;\n",
            ),
            (
                "003_bad.sql",
                "ALTER TABLE orders ADD CONSTRAINT positive CHECK (total > 0);\n",
            ),
        ],
        Some(PIPELINE),
    );
    let r = command(dir.path())
        .env("PROD_DATABASE_URL", &db.url)
        .args(["pipeline", "run", "--env", "production"])
        .run();
    assert_eq!(r.code, 0, "{}", r.debug());
    let out = r.all();
    assert!(
        out.contains("002 note: rehearsed on the shadow and on the target (rolled back)"),
        "{out}"
    );
    assert!(
        out.contains("003 bad: rehearsed on the shadow only (line 1: `ALTER TABLE orders ADD CONSTRAINT positive CHECK (total > 0)` scans `orders` under ACCESS EXCLUSIVE"),
        "{out}"
    );
    assert!(out.contains("shadow database ready"), "{out}");
}

#[test]
fn production_dry_run_fails_on_the_shadow_before_touching_the_target() {
    let db = big_orders();
    let dir = workspace(
        &[
            ("001_orders.sql", BASE),
            ("002_typo.sql", "ALTER TABLE orderz ADD COLUMN note text;\n"),
        ],
        Some(PIPELINE),
    );
    let r = command(dir.path())
        .env("PROD_DATABASE_URL", &db.url)
        .args(["pipeline", "run", "--env", "production"])
        .run();
    assert_eq!(r.code, 1, "{}", r.debug());
    assert!(
        r.all()
            .contains("rehearsed on a shadow of the target's schema; the target was not touched"),
        "{}",
        r.debug()
    );
}

#[test]
fn production_dry_run_without_a_shadow_skips_the_target_and_says_why() {
    let db = big_orders();
    let dir = workspace(
        &[
            ("001_orders.sql", BASE),
            (
                "002_note.sql",
                "ALTER TABLE customers ADD COLUMN note text;\n",
            ),
        ],
        Some(PIPELINE),
    );
    let no_server = tempfile::tempdir().unwrap();
    let r = command(dir.path())
        .env("PROD_DATABASE_URL", &db.url)
        .env("PGROLLOUT_PG_BIN", no_server.path())
        .args(["pipeline", "run", "--env", "production"])
        .run();
    assert_eq!(r.code, 0, "{}", r.debug());
    let out = r.all();
    assert!(
        out.contains("dry-run: the target rehearsal is skipped: without a shadow database nothing shows which migrations are catalog-only"),
        "{out}"
    );
    assert!(
        out.contains(
            "002 note: not rehearsed (no shadow database could be built: see the warning above)"
        ),
        "{out}"
    );
    assert!(
        !out.contains("rehearsed on the shadow and on the target"),
        "{out}"
    );
    assert!(
        out.contains("1 not rehearsed: no shadow database could be built, so the target rehearsal was skipped"),
        "{out}"
    );
}
