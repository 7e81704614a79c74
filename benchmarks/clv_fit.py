"""Benchmark the BG/NBD + Gamma-Gamma fits against lifetimes on simulated customers.

Not a test: prints a table and writes ``benchmarks/results/clv_fit.json``.

    .venv/bin/python benchmarks/clv_fit.py                 # 100,000 and 1,000,000 customers
    .venv/bin/python benchmarks/clv_fit.py --sizes 20000   # quick run

Customers are drawn from the BG/NBD + Gamma-Gamma generative process itself
(:func:`crm_warehouse.analytics.clv.synthetic.simulate_customers`, seeded, CDNOW-like
parameters, first purchases spread over 78 weeks, purchase days recorded as
dates). Both libraries fit exactly the same arrays: ours with its defaults,
lifetimes' ``BetaGeoFitter`` / ``GammaGammaFitter`` with theirs, on one row per
customer as lifetimes is normally used. Each fit runs in a fresh process so that
its time and its peak memory (resident-set high-water mark above the loaded
data, reset through ``/proc/self/clear_refs``) are its own; times are the best of
``REPEATS`` fits, wall clock and CPU. Exit status 1 if any
parameter differs from lifetimes by more than ``TOLERANCE``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from crm_warehouse.analytics.clv.synthetic import simulate_customers

BGNBD_PARAMS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GAMMA_GAMMA_PARAMS = {"p": 6.25, "q": 3.74, "gamma": 15.44}
MAX_T_DAYS = 546
TIME_UNIT = "weeks"
TOLERANCE = 1e-4
#: Times are the best of this many fits (lifetimes: one fit above LIFETIMES_REPEAT_MAX_N customers).
REPEATS = 3
LIFETIMES_REPEAT_MAX_N = 100_000
RESULTS = Path(__file__).resolve().parent / "results" / "clv_fit.json"


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def _fit_ours(frequency: np.ndarray, recency: np.ndarray, t_obs: np.ndarray, monetary: np.ndarray) -> tuple:
    from crm_warehouse.analytics.clv import fit_bgnbd, fit_gamma_gamma

    purchases = fit_bgnbd(frequency, recency, t_obs)
    spend = fit_gamma_gamma(frequency, monetary)
    return purchases, spend, {**purchases.params, **spend.params}


def _fit_lifetimes(frequency: np.ndarray, recency: np.ndarray, t_obs: np.ndarray, monetary: np.ndarray) -> tuple:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    purchases = BetaGeoFitter().fit(frequency, recency, t_obs)
    repeat = frequency > 0
    spend = GammaGammaFitter().fit(frequency[repeat], monetary[repeat])
    return purchases, spend, {**purchases.params_.to_dict(), **spend.params_.rename({"v": "gamma"}).to_dict()}


def _fit_in_child(library: str, data_path: str, repeats: int) -> dict[str, object]:
    """Fit both models ``repeats`` times with ``library``; best times and peak memory of this process only."""
    # Import before timing: module loading is not part of the fit.
    importlib.import_module("crm_warehouse.analytics.clv" if library == "ours" else "lifetimes")
    fit = _fit_ours if library == "ours" else _fit_lifetimes
    arrays = np.load(data_path)
    columns = [arrays[k] for k in ("frequency", "recency", "T", "monetary_value")]
    exact_peak = _reset_peak()
    baseline = _rss_kib("VmRSS") if exact_peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu = [], []
    for _ in range(repeats):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        purchases, spend, params = fit(*columns)
        wall.append(time.perf_counter() - wall_start)
        cpu.append(time.process_time() - cpu_start)
    peak = _rss_kib("VmHWM") if exact_peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result: dict[str, object] = {
        "params": {k: float(v) for k, v in params.items()},
        "repeats": repeats,
        "fit_seconds": min(wall),
        "fit_seconds_all": wall,
        "fit_cpu_seconds": min(cpu),
        "peak_mib": (peak - baseline) / 1024,
        "peak_method": "VmHWM after clear_refs" if exact_peak else "ru_maxrss (includes data loading)",
    }
    if library == "ours":
        import pandas as pd

        from crm_warehouse.analytics.clv import ClvConfig, customer_lifetime_value

        summary = pd.DataFrame(dict(zip(("frequency", "recency", "T", "monetary_value"), columns, strict=True)))
        start = time.perf_counter()
        customer_lifetime_value(purchases, spend, summary, ClvConfig(time_unit=TIME_UNIT))
        result["clv_seconds"] = time.perf_counter() - start
        result["n_distinct"] = purchases.n_distinct
    return result


def _run(library: str, data_path: Path, repeats: int) -> dict[str, object]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_fit_in_child, (library, str(data_path), repeats))


def benchmark(n: int, seed: int, workdir: Path) -> dict[str, object]:
    """Simulate ``n`` customers and fit them with both libraries."""
    summary = simulate_customers(
        n, BGNBD_PARAMS, GAMMA_GAMMA_PARAMS, max_T_days=MAX_T_DAYS, time_unit=TIME_UNIT, seed=seed
    )
    data_path = workdir / f"customers_{n}.npz"
    np.savez(data_path, **{c: summary[c].to_numpy(dtype=np.float64) for c in summary.columns})
    ours = _run("ours", data_path, REPEATS)
    theirs = _run("lifetimes", data_path, REPEATS if n <= LIFETIMES_REPEAT_MAX_N else 1)
    differences = {k: abs(ours["params"][k] - theirs["params"][k]) for k in ours["params"]}
    return {
        "n_customers": n,
        "n_repeat_buyers": int((summary["frequency"] > 0).sum()),
        "n_distinct_triples": ours["n_distinct"],
        "ours": ours,
        "lifetimes": theirs,
        "speedup": theirs["fit_seconds"] / ours["fit_seconds"],
        "max_abs_param_difference": max(differences.values()),
        "param_differences": differences,
        "agree": max(differences.values()) <= TOLERANCE,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=20260401)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    load_at_start = list(os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        rows = [benchmark(n, args.seed, Path(tmp)) for n in args.sizes]
    header = (
        f"{'n':>10} {'distinct':>9} {'ours s':>8} {'(cpu)':>7} {'lifetimes s':>12} {'(cpu)':>7} {'ratio':>7} "
        f"{'ours MiB':>9} {'lifetimes MiB':>14} {'max |dparam|':>13} {'ours CLV s':>11}"
    )
    print(header)
    for row in rows:
        ours, theirs = row["ours"], row["lifetimes"]
        print(
            f"{row['n_customers']:>10,} {row['n_distinct_triples']:>9,} {ours['fit_seconds']:>8.3f} "
            f"{ours['fit_cpu_seconds']:>7.3f} {theirs['fit_seconds']:>12.2f} {theirs['fit_cpu_seconds']:>7.2f} "
            f"{row['speedup']:>6.1f}x {ours['peak_mib']:>9.1f} {theirs['peak_mib']:>14.1f} "
            f"{row['max_abs_param_difference']:>13.2e} {ours['clv_seconds']:>11.2f}"
        )
    print(f"load average (1, 5, 15 min) at start {load_at_start}, at end {list(os.getloadavg())}")
    for row in rows:
        for library in ("ours", "lifetimes"):
            params = ", ".join(f"{k}={v:.6f}" for k, v in row[library]["params"].items())
            print(f"n={row['n_customers']:,} {library + ':':<10} {params}")
    report = {
        "description": "BG/NBD + Gamma-Gamma fit: crm_warehouse.analytics.clv vs lifetimes on simulated customers",
        "true_params": {**BGNBD_PARAMS, **GAMMA_GAMMA_PARAMS},
        "simulation": {"max_T_days": MAX_T_DAYS, "time_unit": TIME_UNIT, "seed": args.seed, "day_resolution": True},
        "tolerance": TOLERANCE,
        "load_average_at_start": load_at_start,
        "load_average_at_end": list(os.getloadavg()),
        "environment": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": multiprocessing.cpu_count(),
            **{pkg: version(pkg) for pkg in ("numpy", "scipy", "pandas", "lifetimes", "autograd")},
        },
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(row["agree"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
