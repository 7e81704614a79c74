"""Holdout accuracy of the purchase models on CDNOW, beside lifetimes' BG/NBD on the same split.

Not a test: prints a table and writes ``benchmarks/results/clv_models.json``.

    .venv/bin/python benchmarks/clv_models.py

For the 2,357-customer sample and the full file (23,570 customers): calibration
1997-01-01..1997-09-30, holdout 1997-10-01..1998-06-30 (39 weeks), time in weeks.
Every model is fitted on the calibration period and predicts the 39 holdout
weeks. Figures per model:

* MAE: mean absolute error per customer of the predicted number of repeat
  purchase days in the holdout;
* predicted vs actual: totals over all customers;
* activity AUC: how well the expected purchases rank "buys again in the holdout";
* churn AUC: how well the churn probability ranks "no purchase in the holdout".
  Ours is P(no purchase in the 39 weeks); for lifetimes' BG/NBD it is the old
  ``1 - P(alive)``, the score the command used to write;
* churn ECE: expected calibration error of that probability (10 bins), with its
  mean beside the observed share of customers without a purchase.

The "command" row is ``python -m crm_warehouse.analytics.clv.byod`` as a user
calls it (``--as-of 1997-09-30 --horizon-months 9 --time-unit weeks``, model
chosen automatically on a time split inside calibration; 9 months is 39.1 weeks).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter

from crm_warehouse.analytics.clv import calibration_and_holdout, fit_purchase_model
from crm_warehouse.analytics.clv.byod import main as byod_main
from crm_warehouse.analytics.clv.selection import LABELS
from crm_warehouse.analytics.metrics import auc, expected_calibration_error

CDNOW = Path(__file__).resolve().parent.parent / "tests" / "data" / "cdnow"
CALIBRATION_END = "1997-09-30"
OBSERVATION_END = "1998-06-30"
RESULTS = Path(__file__).resolve().parent / "results" / "clv_models.json"


def read_orders(name: str) -> pd.DataFrame:
    """Raw CDNOW orders as customer_id, date (int YYYYMMDD), amount."""
    if name == "sample":
        columns = ["master_id", "customer_id", "date", "cds", "amount"]
        return pd.read_csv(CDNOW / "CDNOW_sample.txt", sep=r"\s+", header=None, names=columns)
    raw = pd.read_csv(CDNOW / "CDNOW_master.txt", sep=r"\s+")
    return raw.rename(columns={"dollar_value": "amount"})


def _figures(label: str, predicted: np.ndarray, churn: np.ndarray, actual: np.ndarray, seconds: float) -> dict:
    return {
        "model": label,
        "mae": float(np.abs(predicted - actual).mean()),
        "predicted": float(predicted.sum()),
        "actual": int(actual.sum()),
        "activity_auc": auc(actual > 0, predicted / predicted.max()),
        "churn_auc": auc(actual == 0, np.clip(churn, 0.0, 1.0)),
        "churn_mean": float(np.mean(churn)),
        "no_purchase_rate": float(np.mean(actual == 0)),
        "churn_calibration_error": expected_calibration_error(actual == 0, np.clip(churn, 0.0, 1.0)),
        "seconds": round(seconds, 2),
    }


def _command(orders: pd.DataFrame, data: pd.DataFrame, actual: np.ndarray) -> tuple[dict, str]:
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "orders.csv", Path(tmp) / "scores.csv"
        orders[["customer_id", "date", "amount"]].to_csv(source, index=False)
        arguments = [
            "--transactions", str(source), "--date-format", "%Y%m%d", "--as-of", CALIBRATION_END,
            "--horizon-months", "9", "--time-unit", "weeks", "--out", str(out),
        ]  # fmt: skip
        printed = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(printed):
            status = byod_main(arguments)
        seconds = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"the command failed with status {status}")
        scores = pd.read_csv(out, index_col="customer_id").reindex(data.index)
    report = printed.getvalue()
    chosen = next(line for line in report.splitlines() if line.startswith("Model choice:"))
    figures = _figures(
        "command (" + chosen.split(":")[1].split(".")[0].strip() + ")",
        scores["expected_purchases"].to_numpy(),
        scores["churn_probability"].to_numpy(),
        actual,
        seconds,
    )
    return figures, report


def run(name: str) -> dict:
    orders = read_orders(name)
    data = calibration_and_holdout(
        orders, calibration_end=CALIBRATION_END, observation_end=OBSERVATION_END, time_unit="weeks",
        date_format="%Y%m%d",
    )  # fmt: skip
    actual = data["frequency_holdout"].to_numpy()
    horizon = float(data["duration_holdout"].iloc[0])
    columns = [data[c].to_numpy(np.float64) for c in ("frequency", "recency", "T")]
    rows = []
    for model_name in ("bgnbd", "mbgnbd", "pareto_nbd"):
        start = time.perf_counter()
        model = fit_purchase_model(model_name, data)
        predicted = model.conditional_expected_purchases(horizon, *columns)
        churn = model.conditional_probability_no_purchase(horizon, *columns)
        rows.append(_figures(LABELS[model_name], predicted, churn, actual, time.perf_counter() - start))
        rows[-1]["params"] = model.params
    start = time.perf_counter()
    reference = BetaGeoFitter().fit(data["frequency"], data["recency"], data["T"])
    predicted = reference.conditional_expected_number_of_purchases_up_to_time(horizon, *columns)
    old_churn = 1.0 - reference.conditional_probability_alive(*columns)
    rows.append(
        _figures("lifetimes BG/NBD (churn: 1 - P(alive))", predicted, old_churn, actual, time.perf_counter() - start)
    )
    command, report = _command(orders, data, actual)
    rows.append(command)
    return {"data": name, "customers": len(data), "rows": rows, "command_report": report}


def main() -> int:
    results = {
        "calibration_end": CALIBRATION_END,
        "observation_end": OBSERVATION_END,
        "time_unit": "weeks",
        "lifetimes": version("lifetimes"),
        "python": sys.version.split()[0],
        "datasets": [run("sample"), run("master")],
    }
    for dataset in results["datasets"]:
        print(f"\nCDNOW {dataset['data']} ({dataset['customers']:,} customers)")
        print(
            f"{'model':<40} {'MAE':>7} {'predicted':>10} {'actual':>7} {'act. AUC':>8} {'churn AUC':>9} "
            f"{'churn ECE':>9} {'mean':>6} {'rate':>6}"
        )
        for row in dataset["rows"]:
            print(
                f"{row['model']:<40} {row['mae']:7.4f} {row['predicted']:10,.1f} {row['actual']:7,} "
                f"{row['activity_auc']:8.4f} {row['churn_auc']:9.4f} {row['churn_calibration_error']:9.4f} "
                f"{row['churn_mean']:6.3f} {row['no_purchase_rate']:6.3f}"
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
