"""Before/after CPU time of the backtest benchmark job for two source trees, interleaved.

    .venv/bin/python -m benchmarks.ab_backtest --base ../main-checkout --new . [--rounds 3]

Each round runs, alternately, one subprocess per tree (``PYTHONPATH`` = that tree) that
times ``run_algorithm`` of the SMA-cross job (``benchmarks/rustybt_job.py``) ``--runs``
times after a warm-up (a ``gc.collect()`` before each, so no run inherits another's
garbage), measuring *process CPU time* (``time.process_time``), which a loaded machine
disturbs far less than wall time. Needs the harness's data and bundle first
(``python -m benchmarks.run_all --only backtest --jobs rustybt`` creates them under
``--bench-dir``). Prints every run, the minimum, median and maximum per tree and the
load average; results go in ``benchmarks/recorded.md`` by hand (they need two checkouts,
so ``make bench`` cannot regenerate them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

_CHILD = """
import gc, json, sys, time
sys.path.insert(0, "benchmarks"); sys.path.insert(0, "benchmarks/peers")
import rustybt_job
data, bundle, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
rustybt_job.run(data, bundle)  # warm-up: imports, bundle load
out = []
for _ in range(runs):
    gc.collect()  # every run starts with the same garbage-collector state
    t0 = time.process_time()
    r = rustybt_job.run(data, bundle)
    out.append(time.process_time() - t0)
print(json.dumps({"cpu_s": out, "orders": r["orders"]}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--new", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bench-dir", type=Path, default=Path(".bench"))
    parser.add_argument("--tag", default="10x20-s20240102")
    args = parser.parse_args(argv)
    data = args.bench_dir.resolve() / "data" / args.tag
    results: dict[str, list[float]] = {"base": [], "new": []}
    for _ in range(args.rounds):
        for name, tree in (("base", args.base), ("new", args.new)):
            env = dict(os.environ)
            env.update(
                PYTHONPATH=str(tree.resolve()),
                PYTHONHASHSEED="0",
                RUSTYBT_ROOT=str(args.bench_dir.resolve() / "rustybt"),
            )
            proc = subprocess.run(
                [sys.executable, "-c", _CHILD, str(data), f"bench-{args.tag}", str(args.runs)],
                cwd=tree.resolve(),
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=True,
            )
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            results[name] += got["cpu_s"]
            print(name, " ".join(f"{x:.3f}" for x in got["cpu_s"]), "orders", got["orders"])
    for name, xs in results.items():
        xs = sorted(xs)
        print(
            f"{name}: min {xs[0]:.3f} s, median {xs[len(xs) // 2]:.3f} s, max {xs[-1]:.3f} s "
            f"over {len(xs)} runs"
        )
    print(
        "load average (1, 5, 15 min) at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
