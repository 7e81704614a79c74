"""Time one more day through ``daily_pipeline`` against a full rebuild, after each history length.

Not a test: prints a table per history length and writes ``benchmarks/results/incremental.json``.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/incremental.py                  # 100,000 customers, 730 and 1,095 days
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/incremental.py --customers 10000 --days 730

For each history length the company (the same number of customers, signing up over
the window) is simulated over ``days + 1`` days. The landing folder first gets every
file but the last day's, and ``full_pipeline`` builds the warehouse (and fits and
saves the models). Then the last day's files are added and ``daily_pipeline`` runs:
ingestion skips the files in the ledger, dbt builds its incremental models
incrementally, the saved models score, checks run, publish. Last, a full rebuild of
the same ``days + 1`` days: a fresh warehouse, every file, ``full_pipeline`` with dbt
``--full-refresh``. Both jobs run in process on the real definitions; step seconds
and peak memory as in ``benchmarks/pipeline.py``. With the customers fixed, a cost
that grows from the shorter history to the longer one grows with history; a daily
run should not. Also timed: hashing every landing file (what ingestion would cost if
it found new files by content instead of by size and modification time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import mib, pipeline_environment, remove_dbt_targets, run_job
from benchmarks.pipeline import step_group

RESULTS = Path(__file__).resolve().parent / "results" / "incremental.json"
GROUPS = ("ingest", "dbt", "analytics", "checks", "publish")


def _link_files(source: Path, landing: Path, keep: Any) -> tuple[int, int]:
    """Hard-link the landing files for which ``keep(name)`` holds; (files, bytes)."""
    files = n_bytes = 0
    for path in source.rglob("*"):
        if path.is_file() and keep(path.name):
            target = landing / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.link(path, target)
                files += 1
                n_bytes += path.stat().st_size
    return files, n_bytes


def _hash_all(landing: Path) -> float:
    start = time.perf_counter()
    for path in sorted(landing.rglob("*")):
        if path.is_file():
            hashlib.sha256(path.read_bytes()).hexdigest()
    return time.perf_counter() - start


def _groups(run: dict[str, Any]) -> dict[str, float]:
    totals = dict.fromkeys(GROUPS, 0.0)
    for s in run["steps"]:
        group = step_group(s["step"])
        if group == "analytics" and s["step"].endswith(("clv_model", "churn_model")):
            group = "model fitting"
        totals[group] = totals.get(group, 0.0) + s["seconds"]
    return totals


def _full_refresh_config() -> dict[str, Any]:
    from orchestration.assets.dbt import dbt_scored_models, dbt_warehouse_models

    return {"ops": {a.op.name: {"config": {"full_refresh": True}} for a in (dbt_warehouse_models, dbt_scored_models)}}


def bench(customers: int, days: int, work: Path) -> dict[str, Any]:
    from crm_simulator.company import simulate_company
    from crm_simulator.config import SimulationConfig

    config = SimulationConfig(customers=customers, days=days + 1)
    new_day = (config.start_date + timedelta(days=days)).isoformat()
    with pipeline_environment(work) as paths:
        simulated = work / "simulated"
        simulate_company(config, simulated / "landing", simulated / "truth")
        history = _link_files(simulated / "landing", paths["landing"], lambda name: not name.startswith(new_day))
        print(f"  {history[0]} history files ({mib(history[1]):.0f} MiB); initial full_pipeline ...", flush=True)
        initial = run_job("full_pipeline", paths)
        if not initial["success"]:
            raise SystemExit("the initial full_pipeline failed: nothing to compare")
        day = _link_files(simulated / "landing", paths["landing"], lambda name: name.startswith(new_day))
        print(f"  added {day[0]} files of {new_day} ({mib(day[1]):.2f} MiB); daily_pipeline ...", flush=True)
        daily = run_job("daily_pipeline", paths)
        hash_seconds = _hash_all(paths["landing"])
        rebuild_paths = {
            **paths,
            **{k: work / "rebuild" / paths[k].relative_to(work) for k in ("warehouse", "serving", "models", "dq_docs")},
        }
        print("  full rebuild (fresh warehouse, dbt --full-refresh) ...", flush=True)
        rebuild = run_job("full_pipeline", rebuild_paths, _full_refresh_config())
        for run in (initial, daily, rebuild):
            remove_dbt_targets(run.pop("dbt_targets"))
    return {
        "customers": customers,
        "history_days": days,
        "new_day": new_day,
        "history_files": history[0],
        "history_mib": mib(history[1]),
        "day_files": day[0],
        "day_mib": mib(day[1]),
        "hash_all_landing_seconds": hash_seconds,
        "initial": initial,
        "daily": daily,
        "rebuild": rebuild,
    }


def print_table(result: dict[str, Any]) -> None:
    daily, rebuild = result["daily"], result["rebuild"]
    load = os.getloadavg()
    print(
        f"\n{result['customers']:,} customers, {result['history_days']} days of history "
        f"({result['history_mib']:.0f} MiB) + 1 day ({result['day_files']} files, {result['day_mib']:.2f} MiB); "
        f"load average {load[0]:.1f} on 2 shared cores"
    )
    print(f"{'step':<44} {'daily s':>8} {'MiB':>6} {'rebuild s':>10} {'MiB':>6}")
    rebuilt = {s["step"]: s for s in rebuild["steps"]}
    for s in daily["steps"]:
        r = rebuilt.get(s["step"], {"seconds": 0.0, "peak_rss_mib": 0.0})
        print(
            f"{s['step']:<44} {s['seconds']:8.1f} {s['peak_rss_mib']:6.0f} {r['seconds']:10.1f} {r['peak_rss_mib']:6.0f}"
        )
    for step in rebuilt.keys() - {s["step"] for s in daily["steps"]}:
        print(f"{step:<44} {'':>8} {'':>6} {rebuilt[step]['seconds']:10.1f} {rebuilt[step]['peak_rss_mib']:6.0f}")
    d, r = _groups(daily), _groups(rebuild)
    for group in sorted(d.keys() | r.keys()):
        print(f"= {group:<42} {d.get(group, 0.0):8.1f} {'':>6} {r.get(group, 0.0):10.1f}")
    print(
        f"= {'job wall':<42} {daily['seconds']:8.1f} {daily['peak_rss_mib']:6.0f} "
        f"{rebuild['seconds']:10.1f} {rebuild['peak_rss_mib']:6.0f}"
    )
    print(
        "hashing every landing file (ingestion skips unchanged files by size and time instead): "
        f"{result['hash_all_landing_seconds']:.1f} s"
    )
    for invocation, models in daily.get("dbt_model_seconds", {}).items():
        slowest = ", ".join(f"{name} {seconds:.1f}" for name, seconds in list(models.items())[:6])
        print(f"daily {invocation}, slowest models (s): {slowest}")


def print_growth(results: list[dict[str, Any]]) -> None:
    """Daily and rebuild seconds per step group, shortest history against longest."""
    if len(results) < 2:
        return
    short, long = results[0], results[-1]
    print(
        f"\nfrom {short['history_days']} to {long['history_days']} days of history "
        f"({short['history_mib']:.0f} -> {long['history_mib']:.0f} MiB), {long['customers']:,} customers:"
    )
    print(f"{'step group':<24} {'daily s':>16} {'rebuild s':>16}")
    d0, r0, d1, r1 = (
        _groups(short["daily"]),
        _groups(short["rebuild"]),
        _groups(long["daily"]),
        _groups(long["rebuild"]),
    )
    for group in sorted(d1.keys() | r1.keys()):
        print(
            f"{group:<24} {d0.get(group, 0.0):7.1f} -> {d1.get(group, 0.0):6.1f} "
            f"{r0.get(group, 0.0):7.1f} -> {r1.get(group, 0.0):6.1f}"
        )
    print(
        f"{'job wall':<24} {short['daily']['seconds']:7.1f} -> {long['daily']['seconds']:6.1f} "
        f"{short['rebuild']['seconds']:7.1f} -> {long['rebuild']['seconds']:6.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument(
        "--days", type=int, nargs="+", default=[730, 1095], help="days of history before the new day (one or more)"
    )
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    results = []
    for days in sorted(args.days):
        print(f"{args.customers:,} customers, {days} days of history:", flush=True)
        work = Path(tempfile.mkdtemp(prefix=f"incremental_bench_{args.customers}_{days}_"))
        try:
            result = bench(args.customers, days, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        result["load_average"] = os.getloadavg()
        print_table(result)
        results.append(result)
    print_growth(results)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
