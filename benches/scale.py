#!/usr/bin/env python3
"""Scale benchmark: does pgrollout's cost stay flat as a project grows?

    scripts/bench                       # release build, then this script
    python3 benches/scale.py [--sizes 100,1000,5000] [--runs 5] [--noop-runs 15]

For each size N (default 100, 1 000 and 5 000) a set of N tiny migrations (one
`CREATE TABLE` each) is generated and, against a throwaway cluster with durability on
(fsync, synchronous_commit) and `log_connections`, measured in paired runs (the order
alternates, so neither side always gets the warmer cache), on a fresh database each time:

  apply    `pgrollout apply` of the N files, against one psql session running
           `BEGIN; \\i file; COMMIT;` per file (psql's fastest way to apply them one
           transaction each; it records nothing);
  no-op    `pgrollout apply` with the N migrations applied, against
           `psql -c 'select 1'` (one connection, one query);
  RSS      the peak resident set of each process (GNU time's %M), pgrollout's
           against psql's in the same pair.

Times and RSS are medians; each ratio is pgrollout / psql of the same run. Then:

  realistic `pgrollout apply` of 200 realistic migrations (--realistic) against the same
           psql session;
  start-up `pgrollout --version` against `psql --version` (process start, no work);
  lint     with Squawk installed (on PATH or --squawk), `lint --all` against Squawk on the
           realistic generated sets of lint_sets_vs_squawk.py (--lint-sizes): best CPU
           time and the peak RSS of those runs;
  pipeline one `pipeline run` of a production-like environment (health, validate,
           backup-marker, dry-run, apply, verify, smoke-test) applying the first 100 tiny
           migrations: the time of each step (from the run's JSON summary) and the
           number of connections the server accepted for the run (counted from its
           log_connections lines for that database).

Needs: PostgreSQL's server binaries (initdb, pg_ctl, psql; PGROLLOUT_PG_BIN to choose) and
GNU time (/usr/bin/time, apt-get install time).
Run as root (the cluster then runs as user postgres) or as any user.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apply_vs_psql import Cluster, gen_realistic, gen_tiny, pg_bin, psql_script  # noqa: E402
from lint_sets_vs_squawk import generate as gen_lint_set  # noqa: E402
from lint_vs_squawk import timed_cpu  # noqa: E402


def measured(cmd, env=None, capture=False):
    """Run `cmd`; (wall seconds, peak RSS in KiB, stdout).

    The RSS comes from GNU time, not from this process's wait4: a child forked (or
    vforked) from Python is charged Python's own resident set until it execs, which would
    hide anything smaller. time's own fork adds the same ~1 ms to both sides of a pair.
    """
    with tempfile.NamedTemporaryFile("r") as rss:
        t = time.perf_counter()
        p = subprocess.run([TIME, "-f", "%M", "-o", rss.name, *cmd], env=env,
                           stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - t
        if p.returncode != 0 and not capture:
            sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}")
        kib = int(rss.read().split()[-1])
    return elapsed, kib, p.stdout or b""


TIME = "/usr/bin/time"


def paired(runs, a, b, before=None):
    """Median (time, rss) of `a` and of `b`, run in alternating order, `runs` times each."""
    res = {"a": [], "b": []}
    for i in range(runs):
        for who in (("a", "b") if i % 2 == 0 else ("b", "a")):
            if before:
                before()
            t, rss, _ = measured(a if who == "a" else b)
            res[who].append((t, rss))
    med = lambda xs, k: statistics.median(x[k] for x in xs)  # noqa: E731
    return (med(res["a"], 0), med(res["a"], 1)), (med(res["b"], 0), med(res["b"], 1))


PIPELINE = """migrations: {dir}
environments:
  bench:
    database_url_env: BENCH_DATABASE_URL
    steps:
      - health
      - validate
      - backup-marker
      - dry-run
      - apply
      - verify
      - smoke-test:
          - name: first table readable
            sql: SELECT count(*) >= 0 FROM tiny_1
"""


def connections(log, db, since):
    """Connections the server authorised for `db` after byte offset `since` of its log."""
    with open(log, "rb") as f:
        f.seek(since)
        text = f.read().decode("utf-8", "replace")
    return sum(1 for line in text.splitlines()
               if "connection authorized" in line and f"database={db} " in line + " ")


def lint_vs_squawk(binary, args):
    """`pgrollout lint --all` against Squawk on generated realistic sets: best CPU time and
    the peak RSS of the same runs, alternating. Nothing when Squawk is not installed."""
    if not args.squawk:
        return [], ""
    version = subprocess.run([args.squawk, "--version"], capture_output=True, text=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "PGROLLOUT_", "GITHUB_", "PG"))}
    rows = []
    for size in [int(x) for x in args.lint_sizes.split(",") if x]:
        with tempfile.TemporaryDirectory() as work:
            paths = gen_lint_set(os.path.join(work, "migrations"), size, 12)
            rel = [os.path.relpath(x, work) for x in paths]
            statements = sum(open(x).read().count(";\n") for x in paths)
            tools = {
                "pgrollout": [TIME, "-f", "%M", "-o", os.path.join(work, "rss"), binary, "lint", "--all", "--format", "json"],
                "squawk": [TIME, "-f", "%M", "-o", os.path.join(work, "rss"), args.squawk, "--reporter", "json", *rel],
            }
            best = {name: (float("inf"), 0) for name in tools}
            for i in range(max(args.runs, 1)):
                for name in (list(tools) if i % 2 == 0 else list(reversed(tools))):
                    _, cpu = timed_cpu(tools[name], work, env)
                    with open(os.path.join(work, "rss")) as f:
                        rss = int(f.read().split()[-1])
                    if cpu < best[name][0]:
                        best[name] = (cpu, rss)
            rows.append((size, statements, best["pgrollout"], best["squawk"]))
    return rows, version or "squawk"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--runs", type=int, default=5, help="paired runs of each apply")
    ap.add_argument("--noop-runs", type=int, default=15, help="paired runs of each no-op")
    ap.add_argument("--no-apply", action="store_true", help="skip the timed applies (no-op rows only)")
    ap.add_argument("--binary", default="target/release/pgrollout")
    ap.add_argument("--realistic", type=int, default=200,
                    help="also apply this many realistic migrations (0: skip)")
    ap.add_argument("--squawk", default=shutil.which("squawk"),
                    help="Squawk binary for the lint comparison (default: squawk on PATH)")
    ap.add_argument("--lint-sizes", default="100,700", help="files in each generated lint set")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: cargo build --release")
    sizes = [int(s) for s in args.sizes.split(",")]
    # The server's own psql binary: Debian's /usr/bin/psql is a Perl wrapper that would
    # add ~30 ms and its own memory to every psql run.
    psql_bin = pg_bin("psql")

    work = tempfile.mkdtemp(prefix="pgrollout-scale-")
    os.chmod(work, 0o755)
    cluster = Cluster(extra="-c log_connections=on")
    rows = []
    try:
        for n in sizes:
            d = os.path.join(work, f"tiny{n}")
            gen_tiny(d, n)
            script = psql_script(d)
            ours = [binary, "--database-url", cluster.url("bench"), "--migrations", d, "apply"]
            psql = [psql_bin, "-X", "-q", "-v", "ON_ERROR_STOP=1", cluster.url("bench"), "-f", script]
            if not args.no_apply:
                (at, ar), (pt, pr) = paired(args.runs, ours, psql, before=lambda: cluster.fresh("bench"))
                rows.append((f"apply {n}", at, pt, ar, pr))
            # No-op: the set applied once, then apply again and again.
            cluster.fresh("bench")
            measured(ours)
            select1 = [psql_bin, "-X", "-q", cluster.url("bench"), "-c", "select 1"]
            (nt, nr), (st, sr) = paired(args.noop_runs, ours, select1)
            rows.append((f"no-op {n} applied", nt, st, nr, sr))

        if args.realistic and not args.no_apply:
            d = os.path.join(work, "realistic")
            gen_realistic(d, args.realistic)
            script = psql_script(d)
            ours = [binary, "--database-url", cluster.url("bench"), "--migrations", d, "apply"]
            psql = [psql_bin, "-X", "-q", "-v", "ON_ERROR_STOP=1", cluster.url("bench"), "-f", script]
            (at, ar), (pt, pr) = paired(args.runs, ours, psql, before=lambda: cluster.fresh("bench"))
            rows.append((f"apply {args.realistic} realistic", at, pt, ar, pr))

        (vt, vr), (pvt, pvr) = paired(args.noop_runs, [binary, "--version"], [psql_bin, "--version"])
        rows.append(("start-up (--version)", vt, pvt, vr, pvr))

        # The pipeline: one run, its connections counted by the server.
        d = os.path.join(work, "pipe")
        gen_tiny(d, 100)
        cfg = os.path.join(work, "pgrollout.yml")
        with open(cfg, "w") as f:
            f.write(PIPELINE.format(dir=d))
        cluster.fresh("pipe")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "PGROLLOUT_", "INPUT_"))}
        env["BENCH_DATABASE_URL"] = cluster.url("pipe")
        since = os.path.getsize(cluster.log)
        pt_wall, p_rss, out = measured([binary, "--config", cfg, "--format", "json", "pipeline", "run",
                                        "--env", "bench"], env=env, capture=True)
        conns = connections(cluster.log, "pipe", since)
        summary = json.loads(out or b"{}")
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)

    lint_rows, squawk_version = lint_vs_squawk(binary, args)

    print(f"{'measure':<24} {'pgrollout':>10} {'psql':>10} {'ratio':>6}   {'RSS':>9} {'psql RSS':>9} {'ratio':>6}")
    for name, a, b, ar, br in rows:
        print(f"{name:<24} {a * 1e3:>8.1f}ms {b * 1e3:>8.1f}ms {a / b:>5.2f}x   "
              f"{ar / 1024:>6.1f}MiB {br / 1024:>6.1f}MiB {ar / br:>5.2f}x")
    print("(apply: psql runs BEGIN; \\i file; COMMIT; per file in one session; "
          "no-op: psql -c 'select 1'; start-up: psql --version; medians of paired runs)")
    if lint_rows:
        print()
        print(f"{'lint --all vs ' + squawk_version:<30} {'pgrollout':>10} {'squawk':>10} {'speed':>6}   "
              f"{'RSS':>9} {'squawk RSS':>10} {'ratio':>6}")
        for files, stmts, (pc, pr), (sc, sr) in lint_rows:
            print(f"{f'{files} files, {stmts} statements':<30} {pc * 1e3:>8.1f}ms {sc * 1e3:>8.1f}ms "
                  f"{sc / pc:>5.2f}x   {pr / 1024:>6.1f}MiB {sr / 1024:>7.1f}MiB {pr / sr:>5.2f}x")
        print("(CPU time, best of --runs alternating runs; speed = squawk CPU / pgrollout CPU, above 1: "
              "pgrollout is faster; RSS ratio = pgrollout / squawk)")
    elif not args.squawk:
        print()
        print("lint vs Squawk: skipped, no squawk on PATH (pip install squawk-cli; or --squawk PATH)")
    print()
    print(f"pipeline run, 100 pending: {pt_wall * 1e3:.1f}ms, peak RSS {p_rss / 1024:.1f}MiB, "
          f"status {summary.get('status', '?')}, {conns} connection(s) to the database")
    for s in summary.get("steps", []):
        print(f"  {s['name']:<14} {s['duration_ms']:>6}ms  {s['status']}")


if __name__ == "__main__":
    main()
