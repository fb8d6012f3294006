#!/usr/bin/env python3
"""Benchmark: pgrollout apply vs psql applying the same files, in the same run.

Sets (generated into a temp dir):
  tiny      1000 migrations of one small statement each
  realistic  200 migrations of several statements (tables with foreign keys, indexes,
             a plpgsql function and trigger, a view, seed rows, an ALTER)
For each set, on a fresh database each time:
  pgrollout  `pgrollout apply` (tracking schema, lock, one transaction per migration
             with its tracking row)
  psql       one psql session running `BEGIN; \\i file; COMMIT;` per file with
             ON_ERROR_STOP — psql's fastest way to apply the files one transaction each
             (one process, one connection), and it records nothing.
No-op: `pgrollout apply` on a database with the 1000 tiny migrations applied, against
`psql -c 'select 1'` (one connection, one query).

Durability is on (fsync, synchronous_commit): each commit waits for the disk, as in
production. The median of --runs runs is reported, with the ratio pgrollout / psql.

Usage: python3 benches/apply_vs_psql.py [--runs 5] [--binary target/release/pgrollout]
Needs: the PostgreSQL server binaries (initdb, pg_ctl) and psql. Run as root or not.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

PG_BIN_CANDIDATES = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"]


def pg_bin(name):
    for d in [os.environ.get("PGROLLOUT_PG_BIN", "")] + PG_BIN_CANDIDATES:
        if d and os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    found = shutil.which(name)
    if not found:
        sys.exit(f"{name} not found: apt-get install postgresql")
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, extra=""):
        self.root = tempfile.mkdtemp(prefix="pgrollout-bench-")
        self.data = os.path.join(self.root, "data")
        self.port = free_port()
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        subprocess.run(self.as_pg + [pg_bin("initdb"), "-D", self.data, "-A", "trust", "-U", "postgres",
                                     "-E", "UTF8", "--locale=C"], check=True, stdout=subprocess.DEVNULL)
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=50 {extra}"
        self.log = os.path.join(self.root, "log")
        subprocess.run(self.as_pg + [pg_bin("pg_ctl"), "-D", self.data, "-o", opts, "-l",
                                     self.log, "-w", "start"], check=True,
                       stdout=subprocess.DEVNULL)

    def url(self, db):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}?sslmode=disable"

    def psql(self, db, *args, **kw):
        return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.url(db), *args],
                              check=True, stdout=subprocess.DEVNULL, **kw)

    def fresh(self, db):
        self.psql("postgres", "-c", f"DROP DATABASE IF EXISTS {db}", "-c", f"CREATE DATABASE {db}")

    def stop(self):
        subprocess.run(self.as_pg + [pg_bin("pg_ctl"), "-D", self.data, "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.root, ignore_errors=True)


def gen_tiny(d, n=1000):
    os.makedirs(d)
    for i in range(1, n + 1):
        with open(os.path.join(d, f"{i:05d}_tiny_{i}.sql"), "w") as f:
            f.write(f"CREATE TABLE tiny_{i} (id bigint PRIMARY KEY, v text);\n")


def gen_realistic(d, n=200):
    os.makedirs(d)
    for i in range(1, n + 1):
        prev = f"REFERENCES r_{i - 1} (id)" if i > 1 else ""
        body = f"""-- migration {i}: a table, an index, a trigger function, a view and seed data
CREATE TABLE r_{i} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id bigint {prev},
    name text NOT NULL,
    amount_cents bigint NOT NULL DEFAULT 0 CHECK (amount_cents >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX r_{i}_name_idx ON r_{i} (name);
CREATE FUNCTION r_{i}_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now(); -- keep it fresh; a ';' in a comment
    RETURN NEW;
END;
$$;
CREATE TRIGGER r_{i}_touch BEFORE UPDATE ON r_{i} FOR EACH ROW EXECUTE FUNCTION r_{i}_touch();
INSERT INTO r_{i} (name, amount_cents) SELECT 'row ' || g, g * 10 FROM generate_series(1, 50) AS g;
CREATE VIEW r_{i}_summary AS SELECT count(*) AS n, sum(amount_cents) AS total FROM r_{i};
ALTER TABLE r_{i} ADD COLUMN note text;
COMMENT ON TABLE r_{i} IS 'realistic migration {i}; with a semicolon';
"""
        with open(os.path.join(d, f"{i:05d}_realistic_{i}.sql"), "w") as f:
            f.write(body)


def psql_script(d):
    """One psql session, each file in its own transaction."""
    path = d + ".psql"
    with open(path, "w") as f:
        for name in sorted(os.listdir(d)):
            f.write("BEGIN;\n")
            f.write(f"\\i {os.path.join(d, name)}\n")
            f.write("COMMIT;\n")
    return path


def timed(cmd, **kw):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--binary", default="target/release/pgrollout")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: cargo build --release")

    work = tempfile.mkdtemp(prefix="pgrollout-bench-files-")
    os.chmod(work, 0o755)
    sets = {"tiny": os.path.join(work, "tiny"), "realistic": os.path.join(work, "realistic")}
    gen_tiny(sets["tiny"])
    gen_realistic(sets["realistic"])
    cluster = Cluster()
    results = {}
    try:
        for name, d in sets.items():
            script = psql_script(d)
            ours, theirs = [], []
            for run in range(args.runs):
                # Alternate who goes first, so neither always gets the warmer cache.
                order = ["pgrollout", "psql"] if run % 2 == 0 else ["psql", "pgrollout"]
                for who in order:
                    cluster.fresh("bench")
                    if who == "pgrollout":
                        ours.append(timed([binary, "--database-url", cluster.url("bench"), "--migrations", d, "apply"]))
                    else:
                        theirs.append(timed(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", cluster.url("bench"), "-f", script]))
            results[name] = (statistics.median(ours), statistics.median(theirs), len(os.listdir(d)))

        # No-op apply on 1000 applied migrations vs one connection + one query.
        cluster.fresh("bench")
        subprocess.run([binary, "--database-url", cluster.url("bench"), "--migrations", sets["tiny"], "apply"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        noop, select1 = [], []
        for _ in range(max(args.runs * 4, 20)):
            noop.append(timed([binary, "--database-url", cluster.url("bench"), "--migrations", sets["tiny"], "apply"]))
            select1.append(timed(["psql", "-X", "-q", cluster.url("bench"), "-c", "select 1"]))
        results["no-op apply (1000 applied)"] = (statistics.median(noop), statistics.median(select1), 1000)
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"{'set':<28} {'files':>5} {'pgrollout':>11} {'psql':>11} {'ratio':>7}")
    for name, (a, b, n) in results.items():
        print(f"{name:<28} {n:>5} {a * 1000:>9.1f}ms {b * 1000:>9.1f}ms {a / b:>6.2f}x")
    print("(psql side: one session, BEGIN; \\i file; COMMIT; per file; no-op side: psql -c 'select 1')")


if __name__ == "__main__":
    main()
