#!/usr/bin/env python3
"""Apply throughput and start-up against sqlx-cli, with psql as the yardstick, in one run.

    cargo build --release
    cargo install sqlx-cli --no-default-features --features postgres,rustls   # not vendored
    python3 benches/apply_vs_peers.py

The 1000 tiny and 200 realistic sets of apply_vs_psql.py, each applied on a fresh database
of a throwaway durable cluster by `pgrollout apply`, `sqlx migrate run` (one transaction per
migration, its own tracking table) and one psql session (`BEGIN; \\i file; COMMIT;` per
file), 3 runs each in alternating order: median time, ratio to psql, median peak RSS (GNU
time). Then the median start-up (`--version`) of each of 15 runs.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from apply_vs_psql import Cluster, gen_realistic, gen_tiny, pg_bin, psql_script  # noqa: E402

PGROLLOUT = os.path.join(HERE, "..", "target", "release", "pgrollout")


def measured(cmd):
    """(wall seconds, peak RSS KiB) of one run of `cmd`, which must succeed."""
    with tempfile.NamedTemporaryFile("r") as rss:
        start = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        if p.returncode != 0:
            sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}")
        return wall, int(rss.read().split()[-1])


def main():
    sqlx = shutil.which("sqlx")
    if not sqlx:
        sys.exit("sqlx not found: cargo install sqlx-cli --no-default-features --features postgres,rustls")
    if not os.access(PGROLLOUT, os.X_OK):
        sys.exit(f"{PGROLLOUT}: not found; run `cargo build --release` first")
    cluster = Cluster()
    work = tempfile.mkdtemp()
    try:
        for name, gen, n in (("tiny", gen_tiny, 1000), ("realistic", gen_realistic, 200)):
            d = os.path.join(work, name)
            gen(d, n)
            script = psql_script(d)
            url = cluster.url("b")
            tools = {
                "pgrollout": [PGROLLOUT, "--database-url", url, "--migrations", d, "apply"],
                "sqlx": [sqlx, "migrate", "run", "--source", d, "--database-url", url],
                "psql": [pg_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-f", script],
            }
            res = {k: [] for k in tools}
            for i in range(3):
                for k in (list(tools) if i % 2 == 0 else list(reversed(tools))):
                    cluster.fresh("b")
                    res[k].append(measured(tools[k]))
            med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
                   for k, v in res.items()}
            base = med["psql"][0]
            print(f"{n} {name}: " + "  ".join(
                f"{k} {t * 1e3:.0f}ms ({t / base:.2f}x psql, {r / 1024:.1f}MiB)" for k, (t, r) in med.items()))
        for k, cmd in (("pgrollout", [PGROLLOUT, "--version"]), ("sqlx", [sqlx, "--version"]),
                       ("psql", [pg_bin("psql"), "--version"])):
            print(f"start-up {k}: {statistics.median(measured(cmd)[0] for _ in range(15)) * 1e3:.1f}ms")
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
