#!/usr/bin/env python3
"""Benchmark: shadow rehearsal of 50 pending migrations on a 300-table schema.

Generates (into a temp dir) one migration creating 300 tables (each with a primary key,
a foreign key to the previous table, an index and five columns) and 50 pending ones of
three statements each (ADD COLUMN, CREATE INDEX, ALTER COLUMN TYPE on one of the
tables), then times from the command's start to its findings:

  target     `pgrollout lint --rehearse` against a database with the 300 tables applied:
             role list, pg_dump --schema-only, a throwaway cluster (initdb), restore,
             the 50 migrations observed statement by statement;
  ephemeral  `pgrollout --ephemeral lint --rehearse`: initdb, the 300-table migration
             applied, the 50 observed;
  startup    `pgrollout --ephemeral status`: initdb and start-up alone, to subtract.

    cargo build --release
    python3 benches/rehearse_shadow.py --pgrollout target/release/pgrollout --url postgres://…/db

`--url` names an empty database it may fill (superuser not needed); without it the
`target` case is skipped.
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time

TABLES = 300
PENDING = 50


def write_set(d):
    os.makedirs(os.path.join(d, "migrations"))
    lines = []
    for i in range(TABLES):
        fk = f", parent_id bigint REFERENCES t{i - 1} (id)" if i else ""
        lines.append(
            f"CREATE TABLE t{i} (id bigint PRIMARY KEY, name text, qty integer, price numeric, "
            f"at timestamptz, label varchar(20){fk});\nCREATE INDEX t{i}_name ON t{i} (name);\n"
        )
    with open(os.path.join(d, "migrations", "001_schema.sql"), "w") as f:
        f.write("".join(lines))
    for j in range(PENDING):
        t = j * (TABLES // PENDING)
        with open(os.path.join(d, "migrations", f"{j + 2:03d}_change_{j}.sql"), "w") as f:
            f.write(
                f"ALTER TABLE t{t} ADD COLUMN note_{j} text;\n"
                f"CREATE INDEX t{t}_qty_{j} ON t{t} (qty);\n"
                f"ALTER TABLE t{t} ALTER COLUMN price TYPE text;\n"
            )


def timed(cmd, cwd, env):
    started = time.monotonic()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.monotonic() - started
    if r.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return took, r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pgrollout", default="target/release/pgrollout")
    ap.add_argument("--url", help="an empty database for the `target` case")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    exe = os.path.abspath(a.pgrollout)
    with tempfile.TemporaryDirectory() as d:
        write_set(d)
        env = dict(os.environ)
        cases = {
            "startup": [exe, "--ephemeral", "status"],
            "ephemeral": [exe, "--ephemeral", "lint", "--rehearse", "--fail-on", "never"],
        }
        if a.url:
            env["DATABASE_URL"] = a.url
            subprocess.run([exe, "apply", "--target", "001"], cwd=d, env=env, check=True,
                           capture_output=True)
            cases["target"] = [exe, "lint", "--rehearse", "--fail-on", "never"]
        for name, cmd in cases.items():
            runs = [timed(cmd, d, env if name == "target" else {k: v for k, v in env.items() if k != "DATABASE_URL"})
                    for _ in range(a.runs)]
            print(f"{name:10} median {statistics.median(t for t, _ in runs):6.2f} s   {runs[-1][1]}")


if __name__ == "__main__":
    main()
