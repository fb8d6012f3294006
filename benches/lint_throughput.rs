//! Lint throughput: statements per second over a generated migration set.
//!
//! `cargo bench --bench lint_throughput [-- <files> <statements-per-file>]`
//!
//! Parsing is the splitter's job and is timed separately, so the number for lint is the
//! cost of the rules and the allow directives alone. The statements mix every rule's
//! typical trigger with plain SQL, one in ten carrying an allow directive.

use std::path::PathBuf;
use std::time::Instant;

use pgrollout::lint::{lint_migration, LintOptions};
use pgrollout::migration::{Migration, Section, Version};
use pgrollout::sql::{Item, LineIndex, Statement};

const TEMPLATES: &[&str] = &[
    "CREATE TABLE t{n} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, at timestamptz DEFAULT now())",
    "CREATE INDEX t{n}_name ON t{n} (name)",
    "ALTER TABLE users ADD COLUMN c{n} varchar(80)",
    "ALTER TABLE orders ADD CONSTRAINT fk{n} FOREIGN KEY (user_id) REFERENCES users (id)",
    "ALTER TABLE orders ALTER COLUMN total{n} TYPE bigint",
    "UPDATE users SET flag{n} = true WHERE id < {n}",
    "INSERT INTO audit (kind, payload) VALUES ('m{n}', '{{\"a\": 1}}'::jsonb)",
    "ALTER TABLE users RENAME COLUMN a{n} TO b{n}",
    "CREATE OR REPLACE FUNCTION f{n}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.at := now(); RETURN NEW; END $$",
    "DROP TABLE IF EXISTS old{n}",
];

fn build(files: usize, per_file: usize) -> Vec<Migration> {
    (0..files)
        .map(|f| {
            let mut source = String::new();
            for s in 0..per_file {
                let n = f * per_file + s;
                if s % 10 == 9 {
                    source.push_str(
                        "-- pgrollout:allow ban-drop-table generated for the benchmark\n",
                    );
                }
                source.push_str(&TEMPLATES[s % TEMPLATES.len()].replace("{n}", &n.to_string()));
                source.push_str(";\n");
            }
            let lines = LineIndex::new(&source);
            let items = split(&source, &lines);
            let path = PathBuf::from(format!("migrations/{f:05}_bench.sql"));
            Migration {
                version: Version {
                    text: format!("{f:05}"),
                    value: f as u128,
                },
                name: "bench".into(),
                path: path.clone(),
                allows: pgrollout::migration::parse::allows(&source),
                lines,
                up: Section {
                    path,
                    range: 0..source.len(),
                    no_transaction: false,
                    marker_line: None,
                    items,
                    parsed: true,
                },
                down: None,
                checksum: String::new(),
                source,
            }
        })
        .collect()
}

fn split(source: &str, lines: &LineIndex) -> Vec<Item> {
    pg_query::split_with_parser(source)
        .expect("generated SQL splits")
        .into_iter()
        .map(|s| {
            let lead = s.len() - s.trim_start().len();
            let start = s.as_ptr() as usize - source.as_ptr() as usize + lead;
            let text = s.trim();
            let span = start..start + text.len();
            let (line, col) = lines.line_col(source, start);
            let ast = pg_query::parse(text, 0)
                .expect("generated SQL parses")
                .protobuf
                .stmts
                .into_iter()
                .next()
                .and_then(|r| r.stmt)
                .and_then(|n| n.node)
                .map(Box::new);
            Item::Statement(Statement {
                span,
                line,
                col,
                terminated: true,
                ast,
                syntax_error: None,
                non_transactional: None,
                tx_control: None,
                copy_data: None,
            })
        })
        .collect()
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let files = args.first().copied().unwrap_or(2_000);
    let per_file = args.get(1).copied().unwrap_or(50);

    let t = Instant::now();
    let set = build(files, per_file);
    let parse = t.elapsed();
    let statements = files * per_file;

    let opts = LintOptions::default();
    let mut findings = 0;
    let t = Instant::now();
    for m in &set {
        findings += lint_migration(m, &opts).len();
    }
    let lint = t.elapsed();

    println!(
        "{files} files × {per_file} statements = {statements} statements, {findings} findings"
    );
    println!(
        "split+parse (pg_query): {:>8.1} ms  {:>10.0} statements/s",
        parse.as_secs_f64() * 1e3,
        statements as f64 / parse.as_secs_f64()
    );
    println!(
        "lint:                   {:>8.1} ms  {:>10.0} statements/s",
        lint.as_secs_f64() * 1e3,
        statements as f64 / lint.as_secs_f64()
    );
}
