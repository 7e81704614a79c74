"""Churn fit and scoring seconds on a built warehouse, with the validation figures.

Not a test: prints one line per run and records it in ``benchmarks/results/churn_scale.json``
(under ``--label``, replacing an earlier run of that label).

    .venv/bin/python benchmarks/churn_scale.py --warehouse /work/bench/B/crm.duckdb --label 1M
    .venv/bin/python benchmarks/churn_scale.py --warehouse W --label 100k-sample-25k --train-sample-rows 25000

The warehouse needs the dbt models the churn model reads (``tests/analytics_warehouse.py``
builds them; a ``make run`` warehouse has them); it is opened read-only, with the
configuration's DuckDB memory bounds (``CRM_DUCKDB_MEMORY_LIMIT``, ``CRM_DUCKDB_TEMP_DIR``). Fit is
:func:`train_churn_model` (validation fit, its calibration folds, the final fit,
the BG/NBD baseline); scoring is every batch of :func:`score_churn_batches` at the
as-of date, read as the asset reads them, without writing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import record_run
from crm_warehouse.analytics.churn.config import ChurnConfig
from crm_warehouse.analytics.churn.features import warehouse_as_of
from crm_warehouse.analytics.churn.model import score_churn_batches, train_churn_model
from crm_warehouse.settings import load_settings
from crm_warehouse.warehouse.duckdb_connection import connect

RESULTS = Path(__file__).resolve().parent / "results" / "churn_scale.json"


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--label", required=True, help="name of the run in the results file, e.g. 100k")
    parser.add_argument("--train-sample-rows", type=int, default=ChurnConfig.train_sample_rows)
    args = parser.parse_args()
    config = replace(ChurnConfig(), train_sample_rows=args.train_sample_rows)
    load_at_start = os.getloadavg()
    # The project's connection: memory_limit and temp_directory of the configuration (CRM_DUCKDB_*).
    settings = load_settings()
    with connect(settings, args.warehouse, read_only=True) as con:
        as_of = warehouse_as_of(con)
        started, cpu = time.perf_counter(), _cpu_seconds()
        fit = train_churn_model(con, as_of, config)
        fit_seconds, fit_cpu = time.perf_counter() - started, _cpu_seconds() - cpu
        started, cpu = time.perf_counter(), _cpu_seconds()
        open_accounts = scored = 0
        for batch in score_churn_batches(con, fit.model, as_of, config):
            open_accounts += len(batch)
            scored += int(batch["churn_probability"].notna().sum())
        score_seconds, score_cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    figures = fit.validation.model
    run = {
        "warehouse": str(args.warehouse),
        "duckdb_memory_limit": settings.duckdb_memory_limit,
        "as_of": as_of.isoformat(),
        "train_sample_rows": config.train_sample_rows,
        "training_rows": fit.model.training_rows,
        "validation_rows": figures.rows,
        "validation_auc": round(figures.auc, 4),
        "validation_ece": round(figures.calibration_error, 4),
        "validation_brier": round(figures.brier, 4),
        "baseline_bgnbd_auc": round(fit.validation.baseline.auc, 4),
        "fit_seconds": round(fit_seconds, 1),
        "fit_cpu_seconds": round(fit_cpu, 1),
        "open_accounts": open_accounts,
        "scored_accounts": scored,
        "score_seconds": round(score_seconds, 1),
        "score_cpu_seconds": round(score_cpu, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average_at_start": [round(x, 2) for x in load_at_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps({"label": args.label, **run}))
    record_run(RESULTS, args.label, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
