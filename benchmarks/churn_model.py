"""Churn model against BG/NBD and against the simulator's truth, on several simulated companies.

Not a test: prints one line per company.

    .venv/bin/python benchmarks/churn_model.py                          # 3,000 customers, seeds 7 11 23
    .venv/bin/python benchmarks/churn_model.py --customers 10000 --seeds 7

Each company is simulated, ingested and built with the dbt models the analytics
read (as the tests do, ``tests/analytics_warehouse.py``) in a temporary folder.
The churn recipe is validated on its time split (:func:`train_churn_model`); the
figures are on the validation cutoff, against the observed label and against the
true churn in the window (latent dropout or closure by the window's end).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crm_simulator.config import SimulationConfig
from crm_warehouse.analytics.churn.config import ChurnConfig
from crm_warehouse.analytics.churn.features import warehouse_as_of
from crm_warehouse.analytics.churn.model import train_churn_model
from crm_warehouse.analytics.metrics import auc
from crm_warehouse.settings import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "tests"))
from analytics_warehouse import build_warehouse


def true_churn(truth_dir: Path, cutoff: date, horizon_days: int) -> pd.Series:
    truth = pd.read_parquet(truth_dir / "customers.parquet").set_index("customer_id")
    window_end = pd.Timestamp(cutoff) + pd.Timedelta(days=horizon_days + 1)
    return (truth["dropout_at"] < window_end) | (truth["closed_at"] < window_end)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 23])
    args = parser.parse_args()
    config = ChurnConfig()
    print(
        "customers seed val.rows churn | AUC   BG/NBD  Brier  BG/NBD  ECE    lift | truth: AUC  BG/NBD | build s fit s"
    )
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix="churn_benchmark_") as folder:
            started = time.perf_counter()
            simulation = SimulationConfig(customers=args.customers, days=args.days, seed=seed)
            company = build_warehouse(Path(folder), simulation)
            built = time.perf_counter() - started
            with duckdb.connect(str(company.warehouse_path), read_only=True) as con:
                started = time.perf_counter()
                fit = train_churn_model(con, warehouse_as_of(con), config)
                fitted = time.perf_counter() - started
            validation = fit.validation
            cases = validation.cases.set_index("customer_id")
            truth = true_churn(company.truth_dir, validation.split.validation, config.horizon_days).reindex(cases.index)
            model, baseline = validation.model, validation.baseline
            print(
                f"{args.customers:>9} {seed:>4}  {model.rows:>8} {model.positive_rate:5.1%} | "
                f"{model.auc:.3f} {baseline.auc:.3f}   {model.brier:.4f} {baseline.brier:.4f}  "
                f"{model.calibration_error:.4f} {model.lift:4.2f} | "
                f"{auc(truth, cases['churn_probability']):.3f}  {auc(truth, cases['baseline_probability']):.3f} | "
                f"{built:7.0f} {fitted:6.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
