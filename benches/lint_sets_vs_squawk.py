#!/usr/bin/env python3
"""`pgrollout lint --all` against Squawk on realistic generated migration sets, in one run.

    cargo build --release
    python3 -m venv /tmp/squawk && /tmp/squawk/bin/pip install squawk-cli   # not vendored
    python3 benches/lint_sets_vs_squawk.py --squawk /tmp/squawk/bin/squawk [--sizes 20,100,300,700]

Unlike `lint_vs_squawk.py` (one statement template per line, thousands of files), each
set here looks like a real project's history: the first files create tables with
10–20 columns, constraints and comments; later ones add columns, change types, add
indexes and foreign keys, create plpgsql functions with multi-line `$$` bodies and
triggers, views, enum types, seed rows; some files carry `-- migrate:down` sections
and allow directives. File sizes vary from a few lines to a few hundred. The generator
is seeded, so a size always gives the same set.

Both tools run end to end on every file of the set (read, split, parse, lint, JSON to
/dev/null): pgrollout as `pgrollout lint --all --format json` (no database, no pipeline
file — so it also builds its schema model from every file), Squawk as
`squawk --reporter json <files>`. Each tool runs `--repeat` times, alternating, and the
best wall-clock and best CPU (user + system) time count; on a shared machine the CPU time
is the steadier figure. Exit codes are ignored: both find problems.
"""

import argparse
import os
import random
import subprocess
import tempfile

from lint_vs_squawk import timed_cpu, tool_args  # the same timing and tools as the other comparison

TYPES = ["bigint", "integer", "text", "varchar(80)", "numeric(12,2)", "timestamptz", "boolean", "jsonb", "uuid", "date"]


def create_table(rng, t):
    cols = [f"  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"]
    for c in range(rng.randint(8, 18)):
        ty = rng.choice(TYPES)
        extra = rng.choice(["", " NOT NULL", " NOT NULL DEFAULT now()" if ty == "timestamptz" else "", " DEFAULT 0" if ty in ("bigint", "integer") else ""])
        cols.append(f"  c{c}_{t} {ty}{extra}")
    cols.append(f"  created_at timestamptz NOT NULL DEFAULT now()")
    body = ",\n".join(cols)
    out = [f"CREATE TABLE t{t} (\n{body}\n);", f"COMMENT ON TABLE t{t} IS 'table {t} of the generated set';"]
    if t > 0:
        out.append(f"CREATE INDEX t{t}_created ON t{t} (created_at);")
    return out


def function(rng, n, t):
    lines = [f"CREATE OR REPLACE FUNCTION f{n}_touch() RETURNS trigger LANGUAGE plpgsql AS $$",
             "DECLARE", "  v_count bigint;", "  v_note text := 'semi; colons; inside';", "BEGIN"]
    for i in range(rng.randint(5, 40)):
        lines.append(rng.choice([
            f"  IF NEW.c0_{t} IS NULL THEN NEW.c0_{t} := OLD.c0_{t}; END IF;",
            f"  SELECT count(*) INTO v_count FROM t{t} WHERE created_at > now() - interval '1 day';",
            "  RAISE NOTICE 'touched % rows; note: %', v_count, v_note;",
            "  -- a comment with 'quotes' and a ; inside a body is fine",
            "  PERFORM pg_notify('changes', json_build_object('id', NEW.id)::text);",
        ]))
    lines += ["  NEW.created_at := coalesce(NEW.created_at, now());", "  RETURN NEW;", "END", "$$;",
              f"CREATE TRIGGER t{t}_touch_{n} BEFORE INSERT OR UPDATE ON t{t} FOR EACH ROW EXECUTE FUNCTION f{n}_touch();"]
    return ["\n".join(lines[:-1]), lines[-1]]


def alters(rng, n, tables):
    out = []
    for i in range(rng.randint(3, 25)):
        t = rng.randrange(tables)
        out.append(rng.choice([
            f"ALTER TABLE t{t} ADD COLUMN a{n}_{i} {rng.choice(TYPES)};",
            f"ALTER TABLE t{t} ALTER COLUMN c0_{t} TYPE text;",
            f"ALTER TABLE t{t} ALTER COLUMN c1_{t} SET NOT NULL;",
            f"ALTER TABLE t{t} ADD CONSTRAINT k{n}_{i} CHECK (id > 0) NOT VALID;",
            f"ALTER TABLE t{t} ADD CONSTRAINT fk{n}_{i} FOREIGN KEY (id) REFERENCES t{rng.randrange(tables)} (id) NOT VALID;",
            f"CREATE INDEX IF NOT EXISTS t{t}_a{n}_{i} ON t{t} (created_at, id);",
            f"ALTER TABLE t{t} RENAME COLUMN c2_{t} TO c2_{t}_{n};",
            f"UPDATE t{t} SET created_at = now() WHERE id < {i * 100};",
            f"INSERT INTO t{t} (created_at) VALUES (now()), (now() - interval '{i} days');",
            f"CREATE OR REPLACE VIEW v{n}_{i} AS SELECT id, created_at FROM t{t} WHERE created_at > now() - interval '7 days';",
            f"COMMENT ON COLUMN t{t}.created_at IS 'when the row was made ({n}.{i})';",
        ]))
    return out


def generate(directory, files, seed):
    rng = random.Random(seed)
    os.makedirs(directory)
    paths = []
    tables = 0
    for f in range(files):
        stmts = []
        if f < max(3, files // 10) or rng.random() < 0.15:
            for _ in range(rng.randint(1, 3)):
                stmts += create_table(rng, tables)
                tables += 1
        if rng.random() < 0.4:
            stmts += function(rng, f, rng.randrange(tables))
        if rng.random() < 0.1:
            stmts.append(f"CREATE TYPE e{f} AS ENUM ('a', 'b', 'c');")
        stmts += alters(rng, f, tables)
        text = "-- migrate:up\n"
        for s in stmts:
            if rng.random() < 0.05:
                text += "-- pgrollout:allow ban-drop-column generated for the benchmark\n"
            text += s + "\n"
        if rng.random() < 0.5:
            text += "\n-- migrate:down\nSELECT 1;\n"
        path = os.path.join(directory, f"{f + 1:05}_step.sql")
        with open(path, "w") as fh:
            fh.write(text)
        paths.append(path)
    return paths


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="20,100,300,700")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--seed", type=int, default=12)
    a = tool_args(p)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "PGROLLOUT_", "GITHUB_", "PG"))}
    version = subprocess.run([a.squawk, "--version"], capture_output=True, text=True).stdout.strip() or "squawk"
    print(f"{'files':>6} {'statements':>10} {'lines':>7}   {'pgrollout wall/cpu ms':>22} {version + ' wall/cpu ms':>26}   {'ratio wall':>10} {'ratio cpu':>9}")
    for size in [int(s) for s in a.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as work:
            paths = generate(os.path.join(work, "migrations"), size, a.seed)
            rel = [os.path.relpath(x, work) for x in paths]
            text = "".join(open(x).read() for x in paths)
            statements = text.count(";\n")
            tools = {
                "pgrollout": [a.pgrollout, "lint", "--all", "--format", "json"],
                "squawk": [a.squawk, "--reporter", "json", *rel],
            }
            wall = {name: float("inf") for name in tools}
            cpu = {name: float("inf") for name in tools}
            for _ in range(a.repeat):
                for name, cmd in tools.items():
                    w, c = timed_cpu(cmd, work, env)
                    wall[name], cpu[name] = min(wall[name], w), min(cpu[name], c)
            print(f"{size:>6} {statements:>10} {text.count(chr(10)):>7}   "
                  f"{wall['pgrollout'] * 1e3:>11.1f}/{cpu['pgrollout'] * 1e3:<10.1f} "
                  f"{wall['squawk'] * 1e3:>13.1f}/{cpu['squawk'] * 1e3:<12.1f}   "
                  f"{wall['squawk'] / wall['pgrollout']:>9.2f}x {cpu['squawk'] / cpu['pgrollout']:>8.2f}x")
    print("ratio = squawk time / pgrollout time (above 1: pgrollout is faster); best of --repeat runs each")


if __name__ == "__main__":
    main()
