#!/usr/bin/env python3
"""Lint throughput, pgrollout against Squawk, on the same generated migration set.

    cargo build --release
    python3 -m venv /tmp/squawk && /tmp/squawk/bin/pip install squawk-cli   # not vendored
    python3 benches/lint_vs_squawk.py --squawk /tmp/squawk/bin/squawk [--files 2000 --per-file 50]

The set is the one `benches/lint_throughput.rs` lints in memory (the same ten statement
templates, one in ten statements under an allow directive), written to files. Both tools
run end to end on every file: read, split, parse, lint, report as JSON to /dev/null.
pgrollout runs as `pgrollout lint --all --format json` with no database and no pipeline
file; Squawk as `squawk --reporter json <files>`. Each tool runs `--repeat` times
(alternating) and the best time counts. Exit codes are ignored: both find problems.
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

TEMPLATES = [
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
]


def generate(directory, files, per_file):
    os.makedirs(directory)
    paths = []
    for f in range(files):
        lines = []
        for s in range(per_file):
            n = f * per_file + s
            if s % 10 == 9:
                lines.append("-- pgrollout:allow ban-drop-table generated for the benchmark")
            # str.format would need the braces doubled; the Rust bench uses replace too.
            lines.append(TEMPLATES[s % len(TEMPLATES)].replace("{n}", str(n)).replace("{{", "{").replace("}}", "}") + ";")
        path = os.path.join(directory, f"{f:05}_bench.sql")
        with open(path, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def timed(cmd, cwd, env):
    return timed_cpu(cmd, cwd, env)[0]


def timed_cpu(cmd, cwd, env):
    """Wall-clock and CPU (user + system) seconds of one run of `cmd`. CPU time is the
    steadier figure on a shared machine: waiting for a core does not count."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def tool_args(p):
    """Adds --pgrollout and --squawk to `p`, parses, and exits when either is missing."""
    here = os.path.dirname(os.path.abspath(__file__))
    p.add_argument("--pgrollout", default=os.path.join(here, "..", "target", "release", "pgrollout"))
    p.add_argument("--squawk", default=shutil.which("squawk"))
    a = p.parse_args()
    if not os.access(a.pgrollout, os.X_OK):
        sys.exit(f"{a.pgrollout}: not found; run `cargo build --release` first")
    if not a.squawk:
        sys.exit("squawk not found: pass --squawk PATH (pip install squawk-cli in a venv)")
    return a


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=2000)
    p.add_argument("--per-file", type=int, default=50)
    p.add_argument("--repeat", type=int, default=3)
    a = tool_args(p)

    with tempfile.TemporaryDirectory() as work:
        paths = generate(os.path.join(work, "migrations"), a.files, a.per_file)
        rel = [os.path.relpath(x, work) for x in paths]
        statements = a.files * a.per_file
        # No DATABASE_URL, no pipeline file, no GitHub mode: files only, for both tools.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DATABASE_URL", "PGROLLOUT_", "GITHUB_"))}
        version = subprocess.run([a.squawk, "--version"], capture_output=True, text=True).stdout.strip()
        tools = {
            "pgrollout": [a.pgrollout, "lint", "--all", "--format", "json"],
            version or "squawk": [a.squawk, "--reporter", "json", *rel],
        }
        best = {name: float("inf") for name in tools}
        for _ in range(a.repeat):
            for name, cmd in tools.items():
                best[name] = min(best[name], timed(cmd, work, env))
        print(f"{a.files} files x {a.per_file} statements = {statements} statements, best of {a.repeat}")
        for name, t in best.items():
            print(f"{name:<16} {t * 1e3:9.1f} ms  {statements / t:12.0f} statements/s")
        names = list(best)
        print(f"pgrollout is {best[names[1]] / best[names[0]]:.2f}x the speed of {names[1]}")


if __name__ == "__main__":
    main()
