//! `pgrollout new --pattern`: every pattern's files lint clean (exit 0) and pass the
//! reversibility test on the harness's PostgreSQL, and applied to a table with rows they
//! end where the change meant to go (the batched backfills included).

use crate::common;
use crate::lint::{json, Workspace};

/// Orders with rows: 25 000, so a backfill takes three batches.
const BASE: &str = "-- migrate:up\n\
CREATE TABLE customers (id bigint PRIMARY KEY, name text);\n\
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, total integer, label varchar(20), note text, legacy text);\n\
CREATE TYPE order_status AS ENUM ('new', 'paid');\n\
INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 100) g;\n\
INSERT INTO orders SELECT g, 1 + g % 100, g, 'l' || g, 'n', 'x' FROM generate_series(1, 25000) g;\n\
-- migrate:down\n\
DROP TABLE orders;\nDROP TABLE customers;\nDROP TYPE order_status;\n";

/// The invocations, in the order a team would write them.
const PATTERNS: &[&[&str]] = &[
    &["add-index", "--table", "orders", "--column", "customer_id"],
    &[
        "add-foreign-key",
        "--table",
        "orders",
        "--column",
        "customer_id",
        "--references",
        "customers(id)",
    ],
    &[
        "add-check",
        "--table",
        "orders",
        "--check",
        "customer_id > 0",
        "--constraint",
        "orders_customer_ok",
    ],
    &["add-not-null", "--table", "orders", "--column", "label"],
    &[
        "change-column-type",
        "--table",
        "orders",
        "--column",
        "total",
        "--type",
        "bigint",
    ],
    &[
        "rename-column",
        "--table",
        "orders",
        "--column",
        "note",
        "--to",
        "remark",
    ],
    &[
        "rename-column",
        "--table",
        "orders",
        "--column",
        "note",
        "--to",
        "remark",
        "--contract",
    ],
    &["drop-column", "--table", "orders", "--column", "legacy"],
    &[
        "drop-column",
        "--table",
        "orders",
        "--column",
        "legacy",
        "--contract",
    ],
    &["drop-column", "--table", "orders", "--column", "total_old"],
    &[
        "drop-column",
        "--table",
        "orders",
        "--column",
        "total_old",
        "--contract",
    ],
    &[
        "add-enum-value",
        "--type",
        "order_status",
        "--value",
        "shipped",
    ],
];

#[test]
fn every_pattern_lints_clean_passes_test_and_applies() {
    let w = Workspace::new(&[("0001_base.sql", BASE)]);
    let mut written = Vec::new();
    for p in PATTERNS {
        let mut args = vec!["new", "--pattern"];
        args.extend_from_slice(p);
        let r = w.run(&args, &[]);
        assert_eq!(r.code, 0, "{p:?}: {}", r.debug());
        let paths: Vec<String> = r.stdout.lines().map(str::to_string).collect();
        assert!(!paths.is_empty(), "{p:?}");
        written.push((p[0], paths));
    }
    let counts: Vec<(&str, usize)> = written.iter().map(|(p, f)| (*p, f.len())).collect();
    assert_eq!(
        counts,
        [
            ("add-index", 1),
            ("add-foreign-key", 2),
            ("add-check", 2),
            ("add-not-null", 3),
            ("change-column-type", 3),
            ("rename-column", 2),
            ("rename-column", 1),
            ("drop-column", 1),
            ("drop-column", 1),
            ("drop-column", 1),
            ("drop-column", 1),
            ("add-enum-value", 1),
        ]
    );
    let index = std::fs::read_to_string(w.dir.path().join(&written[0].1[0])).unwrap();
    assert!(index.contains("-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_idx ON orders (customer_id);"), "{index}");
    // The type of `note` (text) and of `total_old` (integer) come from the migrations.
    let contract = std::fs::read_to_string(w.dir.path().join(&written[6].1[0])).unwrap();
    assert!(contract.contains("ADD COLUMN note text;"), "{contract}");
    let enum_file = std::fs::read_to_string(w.dir.path().join(&written[11].1[0])).unwrap();
    assert!(
        enum_file.contains("ADD VALUE IF NOT EXISTS 'shipped' AFTER 'paid';"),
        "{enum_file}"
    );

    // Lint: nothing at all in the pattern files (the base migration is not theirs).
    let r = w.run(&["lint", "--format", "json", "--fail-on", "info"], &[]);
    let v = json(&r);
    let findings: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"] != "migrations/0001_base.sql")
        .map(|f| format!("{}:{} {} {}", f["path"], f["line"], f["rule"], f["message"]))
        .collect();
    assert!(findings.is_empty(), "{findings:#?}");
    assert_eq!(v["files"], 20);
    let r = w.run(&["lint"], &[]);
    assert_eq!(r.code, 0, "{}", r.debug());

    // The reversibility test: up, down, up for each file on a scratch database.
    let db = common::fresh_db();
    let r = w.run(
        &["test", "--format", "json"],
        &[("DATABASE_URL", db.url.as_str())],
    );
    assert_eq!(r.code, 0, "{}", r.debug());
    let t = json(&r);
    let verdicts: Vec<(String, String)> = t["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(verdicts.len(), 20, "{verdicts:?}");
    for (name, verdict) in &verdicts {
        let want = if name.starts_with("add_shipped") {
            "irreversible"
        } else {
            "reversible"
        };
        assert_eq!(verdict, want, "{name}: {}", r.stdout);
    }

    // Applied for real on rows: every change landed, every row backfilled.
    let db = common::fresh_db();
    let r = w.run(&["apply"], &[("DATABASE_URL", db.url.as_str())]);
    assert_eq!(r.code, 0, "{}", r.debug());
    let rows = common::query_strings(
        &db.url,
        "SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', ' ORDER BY column_name) \
           FROM information_schema.columns WHERE table_name = 'orders';\n\
         SELECT count(*) FILTER (WHERE total = id AND remark = 'n') FROM orders;\n\
         SELECT string_agg(conname || ' ' || convalidated, ', ' ORDER BY conname) FROM pg_constraint \
          WHERE conrelid = 'orders'::regclass AND contype <> 'p';\n\
         SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_customer_id_idx'::regclass;\n\
         SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = 'order_status'::regtype;",
    );
    let got: Vec<String> = rows
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_default())
        .collect();
    assert_eq!(
        got,
        [
            "customer_id bigint YES, id bigint NO, label character varying NO, remark text YES, total bigint YES",
            "25000",
            "orders_customer_id_fkey true, orders_customer_ok true",
            "t",
            "new,paid,shipped",
        ]
    );
}

#[test]
fn missing_and_bad_flags_are_usage_errors_naming_the_flag() {
    let w = Workspace::new(&[("0001_base.sql", BASE)]);
    for (args, want) in [
        (
            &["new", "--pattern", "add-foreign-key", "--table", "orders", "--column", "customer_id"][..],
            "error: --pattern add-foreign-key needs --references: the referenced table and column",
        ),
        (
            &["new", "--pattern", "change-column-type", "--table", "orders", "--column", "total"][..],
            "error: --pattern change-column-type needs --type",
        ),
        (
            &["new", "--pattern", "rename-column", "--table", "ghosts", "--column", "a", "--to", "b"][..],
            "error: --pattern rename-column needs --type: the type of ghosts.a is not known from the migrations",
        ),
        (
            &["new", "--pattern", "add-index", "--table", "orders;drop", "--column", "a"][..],
            "error: --pattern add-index: --table `orders;drop` is not a plain SQL name",
        ),
        (
            &["new", "--pattern", "add-check", "--table", "orders", "--check", "total >="][..],
            "error: --pattern add-check: the SQL written from the flags does not parse",
        ),
    ] {
        let r = w.run(args, &[]);
        assert_eq!(r.code, 2, "{args:?}: {}", r.debug());
        assert!(r.stderr.starts_with(want), "{args:?}: {}", r.debug());
    }
    let r = w.run(&["new", "--pattern", "add-idx"], &[]);
    assert_eq!(r.code, 2, "{}", r.debug());
    assert!(
        r.stderr
            .contains("possible values: add-index, add-foreign-key"),
        "{}",
        r.debug()
    );
    let r = w.run(&["new", "--table", "orders", "x"], &[]);
    assert_eq!(
        r.code,
        2,
        "flags of a pattern need --pattern: {}",
        r.debug()
    );
    // Nothing was written by any of them.
    assert_eq!(
        std::fs::read_dir(w.dir.path().join("migrations"))
            .unwrap()
            .count(),
        1
    );
    // --help lists every pattern with its flags.
    let r = w.run(&["new", "--help"], &[]);
    for p in [
        "add-index",
        "add-foreign-key",
        "add-check",
        "add-not-null",
        "change-column-type",
        "rename-column",
        "drop-column",
        "add-enum-value",
    ] {
        assert!(r.stdout.contains(&format!("  {p} ")), "{p}: {}", r.stdout);
    }
}
