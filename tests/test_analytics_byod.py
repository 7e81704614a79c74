"""Bring-your-own-data CLI end to end on the CDNOW sample, and its error messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crm_warehouse.analytics.clv import CLV_COLUMNS
from crm_warehouse.analytics.clv.byod import main

CDNOW_SAMPLE = Path(__file__).parent / "data" / "cdnow" / "CDNOW_sample.txt"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def orders() -> pd.DataFrame:
    """The CDNOW sample orders with a text id, ISO dates and the dollar amount."""
    columns = ["master_id", "customer_id", "date", "cds", "amount"]
    raw = pd.read_csv(CDNOW_SAMPLE, sep=r"\s+", header=None, names=columns)
    return pd.DataFrame(
        {
            "customer_id": "C" + raw["customer_id"].astype(str).str.zfill(4),
            "order_date": pd.to_datetime(raw["date"].astype(str), format="%Y%m%d").dt.date,
            "dollars": raw["amount"],
        }
    )


def _arguments(path: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--transactions", str(path),
        "--customer-col", "customer_id",
        "--date-col", "order_date",
        "--amount-col", "dollars",
        "--as-of", "1997-09-30",
        "--out", str(out),
        *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_cli_scores_cdnow_sample(orders, tmp_path, capsys, suffix):
    source = tmp_path / f"orders{suffix}"
    if suffix == ".csv":
        orders.to_csv(source, index=False)
    else:
        orders.to_parquet(source, index=False)
    out = tmp_path / "out" / f"scores{suffix}"
    status = main(_arguments(source, out, "--horizon-months", "12", "--discount-rate", "0.01", "--margin", "0.3"))
    printed = capsys.readouterr().out
    assert status == 0
    scores = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out).reset_index()
    assert len(scores) == 2357
    assert list(scores.columns) == ["customer_id", *CLV_COLUMNS, "churn_probability"]
    assert scores["customer_id"].iloc[0] == "C0001"
    assert np.isfinite(scores[list(CLV_COLUMNS)].to_numpy()).all()
    # Dropping out by the horizon end includes those already gone now.
    assert (scores["churn_probability"] >= 1 - scores["p_alive"] - 1e-12).all()
    assert scores["churn_probability"].between(0, 1).all()
    np.testing.assert_allclose(scores["clv"].sum() / scores["expected_spend"].sum(), 0.3 * 0.94, atol=0.01)
    for line in ("r ", "alpha ", "a ", "b ", "p ", "q ", "gamma "):
        assert any(row.startswith(line) for row in printed.splitlines()), line
    assert "0.2426     0.0126" in printed
    assert "6.2496     1.1901" in printed
    assert "wrote 2357 customers" in printed


def test_cli_as_a_module_with_yyyymmdd_dates(tmp_path):
    raw = pd.read_csv(CDNOW_SAMPLE, sep=r"\s+", header=None, names=["master", "id", "day", "cds", "usd"])
    source = tmp_path / "raw.csv"
    raw.to_csv(source, index=False)
    out = tmp_path / "scores.csv"
    command = [
        sys.executable, "-m", "crm_warehouse.analytics.clv.byod",
        "--transactions", str(source), "--customer-col", "id", "--date-col", "day", "--amount-col", "usd",
        "--date-format", "%Y%m%d", "--as-of", "1997-09-30", "--out", str(out),
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT_ROOT, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "Gamma-Gamma: 946 repeat buyers" in completed.stdout
    assert len(pd.read_csv(out)) == 2357


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("customer_id,order_date,amount\nA,1997-01-01,3.0\n", (), "no column ['dollars']"),
        (
            "customer_id,order_date,dollars\nA,1997-01-01,3.0\nA,1997-02-30,4.0\n",
            (),
            "'order_date' has 1 values that are not dates, e.g. '1997-02-30'",
        ),
        ("", (), "the file has no transactions"),
        ("customer_id,order_date,dollars\n", (), "the file has no transactions"),
        ("customer_id,order_date,dollars\nA,1997-01-01,3.0\n", ("--margin", "2"), "margin=2.0 must be in"),
        ("customer_id,order_date,dollars\nA,1997-01-01,3.0\n", (), "no customer made a repeat purchase"),
    ],
)
def test_cli_data_errors(tmp_path, capsys, content, extra, message):
    source = tmp_path / "orders.csv"
    source.write_text(content)
    out = tmp_path / "scores.csv"
    assert main(_arguments(source, out, *extra)) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_cli_file_errors(tmp_path, capsys):
    assert main(_arguments(tmp_path / "missing.csv", tmp_path / "s.csv")) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "orders.xlsx").write_text("x")
    assert main(_arguments(tmp_path / "orders.xlsx", tmp_path / "s.csv")) == 2
    assert "unsupported file type '.xlsx'" in capsys.readouterr().err
    assert main(_arguments(tmp_path / "orders.xlsx", tmp_path / "s.json")) == 2
    assert "unsupported output type '.json'" in capsys.readouterr().err


def test_cli_bad_as_of(tmp_path, capsys):
    arguments = _arguments(tmp_path / "orders.csv", tmp_path / "s.csv")
    arguments[arguments.index("--as-of") + 1] = "30/09/1997"
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2
    assert "'30/09/1997' is not a date in YYYY-MM-DD form" in capsys.readouterr().err
