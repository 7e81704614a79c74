"""Bring-your-own-data CLV scoring: a transactions file in, one row of scores per customer out.

Example::

    python -m crm_warehouse.analytics.clv.byod --transactions orders.csv \\
        --customer-col customer_id --date-col date --amount-col amount \\
        --as-of 1998-06-30 --horizon-months 12 --out scores.parquet

The file (CSV or Parquet) is read by DuckDB and summarised in SQL; BG/NBD and
Gamma-Gamma are fitted on it and every customer gets the columns of
:data:`crm_warehouse.analytics.clv.lifetime_value.CLV_COLUMNS` plus ``churn_probability``.

``churn_probability`` is the BG/NBD probability that the customer has dropped out
by the end of the horizon, ``1 - P(alive at as_of + horizon | history)``. It
counts both customers already gone unseen and those expected to leave during the
horizon, so it is at least ``1 - p_alive``. It uses transactions only; a churn
model with service and CRM signals is a separate step.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb

from crm_warehouse.analytics.clv.config import DAYS_PER_UNIT, ClvConfig
from crm_warehouse.analytics.clv.lifetime_value import ClvResult, fit_and_score
from crm_warehouse.analytics.clv.summary import summarize_transactions_sql

_READERS = {".csv": "read_csv", ".parquet": "read_parquet"}
_WRITERS = {".csv", ".parquet"}
_VIEW = "byod_transactions"


def score_transactions(
    path: Path,
    *,
    customer_col: str,
    date_col: str,
    amount_col: str,
    as_of: date,
    config: ClvConfig,
    date_format: str | None = None,
) -> ClvResult:
    """Read a transactions file, fit both models and score every customer.

    Parameters
    ----------
    path : pathlib.Path
        ``.csv`` or ``.parquet`` file with one row per order and the columns
        ``customer_col``, ``date_col`` and ``amount_col``.
    as_of : datetime.date
        End of the observed period; later rows are ignored.
    config : ClvConfig
        Horizon, discounting, margin and time unit.
    date_format : str, optional
        DuckDB ``strptime`` format when the dates are not ISO.

    Returns
    -------
    ClvResult
        Scores indexed by ``customer_col`` (with ``churn_probability`` added) and the models.

    Raises
    ------
    ValueError
        For an unsupported or missing file, an empty file, a missing column, bad
        dates or amounts, or a model that cannot be fitted.
    """
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(f"{path}: unsupported file type {path.suffix!r}; use one of {sorted(_READERS)}")
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    con = duckdb.connect()
    try:
        relation = getattr(con, reader)(str(path))
        if relation.aggregate("count(*)").fetchone()[0] == 0:
            raise ValueError(f"{path}: the file has no transactions")
        relation.create_view(_VIEW)
        summary = summarize_transactions_sql(
            con,
            _VIEW,
            as_of=as_of,
            time_unit=config.time_unit,
            customer_col=customer_col,
            date_col=date_col,
            amount_col=amount_col,
            date_format=date_format,
        )
    finally:
        con.close()
    result = fit_and_score(summary, config)
    alive_at_end = result.transaction_model.probability_alive_at(
        config.horizon_months * config.units_per_month, summary["frequency"], summary["recency"], summary["T"]
    )
    return replace(result, scores=result.scores.assign(churn_probability=1.0 - alive_at_end))


def format_report(result: ClvResult, config: ClvConfig) -> str:
    """The fitted parameters with standard errors, as printed by the CLI."""
    purchases, spend = result.transaction_model, result.spend_model
    independence = "" if spend.independence_ok else "  WARNING: above threshold, independence doubtful"
    excluded = (
        f", {result.n_zero_spend_excluded} with zero repeat spend left out" if result.n_zero_spend_excluded else ""
    )
    return "\n".join(
        [
            f"BG/NBD: {purchases.n_customers:.0f} customers ({purchases.n_distinct} distinct rows), "
            f"log-likelihood {purchases.log_likelihood:.2f}, time unit {config.time_unit}",
            purchases.summary().to_string(float_format=lambda v: f"{v:.4f}"),
            f"Gamma-Gamma: {spend.n_customers:.0f} repeat buyers{excluded}, log-likelihood "
            f"{spend.log_likelihood:.2f}, corr(frequency, monetary_value) {spend.frequency_monetary_corr:.3f}"
            f"{independence}",
            spend.summary().to_string(float_format=lambda v: f"{v:.4f}"),
            f"CLV: {config.horizon_months} months, discount {config.monthly_discount_rate:.2%} a month, "
            f"margin {config.margin:.0%}",
        ]
    )


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface; defaults of the CLV settings come from :class:`ClvConfig`."""
    defaults = ClvConfig()
    parser = argparse.ArgumentParser(
        prog="python -m crm_warehouse.analytics.clv.byod",
        description="Fit BG/NBD + Gamma-Gamma on a transactions file and write per-customer CLV scores.",
    )
    parser.add_argument("--transactions", type=Path, required=True, help="input .csv or .parquet, one row per order")
    parser.add_argument("--customer-col", default="customer_id", help="customer id column (default: %(default)s)")
    parser.add_argument("--date-col", default="date", help="order date column (default: %(default)s)")
    parser.add_argument("--amount-col", default="amount", help="order amount column (default: %(default)s)")
    parser.add_argument("--date-format", help="strptime format of the dates when not ISO, e.g. %%Y%%m%%d")
    parser.add_argument("--as-of", type=_iso_date, required=True, help="end of the observed period, YYYY-MM-DD")
    parser.add_argument("--horizon-months", type=int, default=defaults.horizon_months, help="default: %(default)s")
    parser.add_argument(
        "--discount-rate", type=float, default=defaults.monthly_discount_rate, help="monthly, default: %(default)s"
    )
    parser.add_argument(
        "--margin", type=float, default=defaults.margin, help="profit share of spend, default: %(default)s"
    )
    parser.add_argument(
        "--time-unit", choices=sorted(DAYS_PER_UNIT), default=defaults.time_unit, help="default: %(default)s"
    )
    parser.add_argument("--out", type=Path, required=True, help="output .csv or .parquet")
    return parser


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date in YYYY-MM-DD form") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 on a data or model error, with the reason on stderr)."""
    args = build_parser().parse_args(argv)
    try:
        if args.out.suffix.lower() not in _WRITERS:
            raise ValueError(f"{args.out}: unsupported output type {args.out.suffix!r}; use one of {sorted(_WRITERS)}")
        config = ClvConfig(
            horizon_months=args.horizon_months,
            monthly_discount_rate=args.discount_rate,
            margin=args.margin,
            time_unit=args.time_unit,
        )
        result = score_transactions(
            args.transactions,
            customer_col=args.customer_col,
            date_col=args.date_col,
            amount_col=args.amount_col,
            as_of=args.as_of,
            config=config,
            date_format=args.date_format,
        )
    except (ValueError, duckdb.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix.lower() == ".csv":
        result.scores.to_csv(args.out)
    else:
        result.scores.to_parquet(args.out)
    print(format_report(result, config))
    print(f"wrote {len(result.scores)} customers to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
