"""Seconds to load the Dagster code location, before and after a change, in one run.

Loads ``orchestration.definitions`` (what ``dagster dev``, ``dagster definitions
validate`` and every run worker do first) in fresh interpreters, alternating between
this checkout and a git worktree of ``--before`` (default: the commit before the
lazy-import work), so both see the same machine load. Each tree is loaded with the
dependencies' bytecode (``make install`` compiles it now) and without it (as the
install step shipped before: with ``PYTHONDONTWRITEBYTECODE`` set, as on this
machine, every module was compiled from source in every process; simulated by an
empty ``PYTHONPYCACHEPREFIX``). Also lists which heavy libraries the import pulled
in. Prints a table and writes ``benchmarks/results/import_time.json``.

    .venv/bin/python benchmarks/import_time.py --before fbcba77 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "import_time.json"
HEAVY = ("lightgbm", "sklearn", "scipy", "matplotlib", "great_expectations", "pandas")
# Wall seconds of the import, and the CPU seconds of the whole interpreter (less
# sensitive to other work on the machine than wall time).
PROBE = (
    "import sys, time, json, resource; start = time.perf_counter(); import orchestration.definitions; "
    "seconds = time.perf_counter() - start; usage = resource.getrusage(resource.RUSAGE_SELF); "
    "import crm_warehouse; "
    f"print(json.dumps({{'seconds': seconds, 'cpu_seconds': usage.ru_utime + usage.ru_stime, "
    f"'package': crm_warehouse.__file__, 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))"
)


def load_once(checkout: Path, env: dict[str, str]) -> dict:
    """Import the definitions in a fresh interpreter whose working directory is ``checkout``."""
    wall = time.perf_counter()
    process = subprocess.run([sys.executable, "-c", PROBE], cwd=checkout, env=env, capture_output=True, text=True)
    if process.returncode != 0:
        raise RuntimeError(f"importing the definitions of {checkout} failed:\n{process.stderr[-3000:]}")
    result = json.loads(process.stdout.strip().splitlines()[-1])
    if not result["package"].startswith(str(checkout)):
        raise RuntimeError(f"{checkout} imported the package from {result['package']}")
    result["process_seconds"] = time.perf_counter() - wall
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="fbcba77", help="git revision to compare with (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="import_time_"))
    before = work / "before"
    try:
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(before), args.before], cwd=ROOT, check=True)
        env = {**os.environ, "CRM_DATA_DIR": str(work / "data"), "CRM_WAREHOUSE_PATH": str(work / "parse.duckdb")}
        dbt = Path(sys.executable).parent / "dbt"
        for checkout in (before, ROOT):  # each tree's definitions read its own dbt manifest
            if not (checkout / "dbt_project" / "target" / "manifest.json").exists():
                subprocess.run(
                    [str(dbt), "parse", "--profiles-dir", ".", "--quiet"],
                    cwd=checkout / "dbt_project",
                    env=env,
                    check=True,
                )
        no_bytecode = {**env, "PYTHONPYCACHEPREFIX": str(work / "no_pycache"), "PYTHONDONTWRITEBYTECODE": "1"}
        variants = {
            "before, no bytecode (as shipped before)": (before, no_bytecode),
            "before, bytecode": (before, env),
            "after, no bytecode": (ROOT, no_bytecode),
            "after, bytecode (as shipped now)": (ROOT, env),
        }
        for checkout, variant_env in variants.values():  # warm the file cache for every variant alike
            load_once(checkout, variant_env)
        runs: dict[str, list[dict]] = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, (checkout, variant_env) in variants.items():
                runs[name].append(load_once(checkout, variant_env))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=False)
        shutil.rmtree(work, ignore_errors=True)
    summary = {
        name: {
            "median_import_seconds": statistics.median(r["seconds"] for r in rows),
            "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in rows),
            "median_process_seconds": statistics.median(r["process_seconds"] for r in rows),
            "heavy_modules": rows[0]["heavy"],
        }
        for name, rows in runs.items()
    }
    shipped_before, shipped_after = summary[next(iter(variants))], summary[list(variants)[-1]]
    speedup = shipped_before["median_import_seconds"] / shipped_after["median_import_seconds"]
    cpu_speedup = shipped_before["median_cpu_seconds"] / shipped_after["median_cpu_seconds"]
    print(f"{'':40} {'import s':>9} {'CPU s':>7} {'process s':>10}  heavy libraries loaded")
    for name, row in summary.items():
        print(
            f"{name:40} {row['median_import_seconds']:9.2f} {row['median_cpu_seconds']:7.2f} "
            f"{row['median_process_seconds']:10.2f}  {', '.join(row['heavy_modules']) or 'none'}"
        )
    print(
        f"speed-up of the import, as shipped: {speedup:.1f}x wall, {cpu_speedup:.1f}x CPU "
        f"(load average {os.getloadavg()[0]:.1f})"
    )
    RESULTS.write_text(
        json.dumps(
            {
                "before": args.before,
                "repeats": args.repeats,
                "runs": summary,
                "speedup": speedup,
                "load_average": os.getloadavg()[0],
            },
            indent=1,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
