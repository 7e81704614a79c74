"""Bring-your-own-data CLV scoring: a transactions file in, one row of scores per customer out.

Example::

    python -m crm_warehouse.analytics.clv.byod --transactions orders.csv \\
        --customer-col customer_id --date-col date --amount-col amount \\
        --as-of 1998-06-30 --horizon-months 12 --out scores.parquet

The file (CSV or Parquet) is read by DuckDB and summarised in SQL. The purchase
model (BG/NBD, MBG/NBD or Pareto/NBD) is chosen on a time split inside the
observed period (``--model auto``, the default; see
:mod:`crm_warehouse.analytics.clv.selection`), Gamma-Gamma is fitted for spend,
and every customer gets the columns of
:data:`crm_warehouse.analytics.clv.lifetime_value.CLV_COLUMNS` and a ``status``.

``churn_probability`` is the chosen model's probability that the customer makes
no purchase within the horizon after the as-of date. It is defined for one-time
buyers too and grows the longer a customer has been silent. It uses transactions
only; the warehouse's churn model with service and CRM signals is a separate step.

Rows are cleaned by documented rules, reported, never silently:

* dates are tried against every ``--date-format`` in the order given, then as
  ISO dates or timestamps; the first format that parses wins. Rows whose date
  parses under none, whose customer id is missing or whose amount is not a number
  are left out and reported with their line numbers (line 1 is the CSV header;
  for Parquet, the row number);
* rows identical in customer, timestamp (as parsed, time of day included when the
  file has one) and amount are taken as one order exported twice: all but one are dropped and
  the number is reported. Distinct orders of one day still add up to one purchase day;
* a customer whose first purchase is after the as-of date is not scored: its row
  has status ``first_purchase_after_as_of`` and empty scores.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from crm_warehouse.analytics.clv.config import DAYS_PER_UNIT, PURCHASE_MODELS, ClvConfig
from crm_warehouse.analytics.clv.lifetime_value import CLV_COLUMNS, ClvResult, fit_and_score
from crm_warehouse.analytics.clv.mle import ModelFitError
from crm_warehouse.analytics.clv.summary import summarize_transactions_sql
from crm_warehouse.settings import Settings, load_settings
from crm_warehouse.warehouse.duckdb_connection import connect

_READERS = {".csv": "read_csv", ".parquet": "read_parquet"}
_WRITERS = {".csv", ".parquet"}
_ROWS = "byod_rows"
_VIEW = "byod_transactions"
#: Line numbers listed per kind of bad row in the report (the count is always complete).
_MAX_LINES_SHOWN = 10
#: Of rows with the same customer, parsed timestamp and amount, the first in the file is kept.
_FIRST_OF_DUPLICATES = "row_number() over (partition by customer_id, purchase_time, amount order by __line) = 1"
SCORED = "scored"
NOT_YET_CUSTOMER = "first_purchase_after_as_of"


@dataclass(frozen=True)
class RowReport:
    """What happened to the rows of the file before the models saw them."""

    rows: int
    bad_dates: tuple[int, ...]
    missing_ids: tuple[int, ...]
    bad_amounts: tuple[int, ...]
    duplicates_dropped: int
    not_yet_customers: int
    line_label: str

    @property
    def rows_used(self) -> int:
        return self.rows - len(self.bad_dates) - len(self.missing_ids) - len(self.bad_amounts) - self.duplicates_dropped

    def lines(self) -> list[str]:
        """Report lines; empty when nothing was left out."""
        report = []
        for what, lines in (
            ("dates that match no format", self.bad_dates),
            ("missing customer ids", self.missing_ids),
            ("amounts that are not numbers", self.bad_amounts),
        ):
            if lines:
                shown = ", ".join(str(n) for n in lines[:_MAX_LINES_SHOWN])
                more = f" and {len(lines) - _MAX_LINES_SHOWN} more" if len(lines) > _MAX_LINES_SHOWN else ""
                report.append(f"left out {len(lines)} rows with {what} ({self.line_label} {shown}{more})")
        if self.duplicates_dropped:
            report.append(
                f"dropped {self.duplicates_dropped} duplicate rows (same customer, timestamp and amount as another row)"
            )
        if self.not_yet_customers:
            report.append(
                f"{self.not_yet_customers} customers first bought after the as-of date: "
                f"status {NOT_YET_CUSTOMER!r}, not scored"
            )
        return report


@dataclass(frozen=True)
class ByodResult:
    """The fit and scores, and the report of the rows."""

    clv: ClvResult
    scores: pd.DataFrame
    rows: RowReport


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _line_numbers(con: duckdb.DuckDBPyConnection, condition: str) -> tuple[int, ...]:
    rows = con.execute(f"select __line from {_ROWS} where {condition} order by __line").fetchall()
    return tuple(int(r[0]) for r in rows)


def _load(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    customer_col: str,
    date_col: str,
    amount_col: str,
    date_formats: Sequence[str],
    keep_duplicates: bool,
) -> tuple[RowReport, list[str]]:
    """Read the file into ``_ROWS``, clean it into the view ``_VIEW``; return the row report and the columns."""
    reader = _READERS[path.suffix.lower()]
    relation = getattr(con, reader)(str(path))
    relation.create_view("byod_file")
    if con.execute("select count(*) from byod_file").fetchone()[0] == 0:
        raise ValueError(f"{path}: the file has no transactions")
    columns = [d[0] for d in con.execute("select * from byod_file limit 0").description]
    missing = [c for c in (customer_col, date_col, amount_col) if c not in columns]
    if missing:
        raise ValueError(f"{path}: no column {missing} (columns: {columns})")
    # Insertion order is kept, so row_number() is the position in the file; a CSV header is line 1.
    offset = 1 if reader == "read_csv" else 0
    con.execute(f"create temp table {_ROWS} as select row_number() over () + {offset} as __line, * from byod_file")
    customer, day, amount = (_quote(c) for c in (customer_col, date_col, amount_col))
    text = f"cast({day} as varchar)"
    attempts = [f"try_strptime({text}, ${f'format_{i}'})" for i in range(len(date_formats))]
    attempts.append(f"try_cast({text} as timestamp)")
    params = {f"format_{i}": f for i, f in enumerate(date_formats)}
    con.execute(
        f"""
        create or replace temp table byod_parsed as
        select
            __line,
            {customer} as customer_id,
            coalesce({", ".join(attempts)}) as purchase_time,
            try_cast({amount} as double) as amount
        from {_ROWS}
        """,
        params,
    )
    bad_dates = _line_numbers(
        con, f"{day} is null or __line in (select __line from byod_parsed where purchase_time is null)"
    )
    missing_ids = _line_numbers(con, f"{customer} is null")
    bad_amounts = _line_numbers(con, "__line in (select __line from byod_parsed where amount is null)")
    negative = con.execute("select count(*), min(amount) from byod_parsed where amount < 0").fetchone()
    if negative[0]:
        raise ValueError(
            f"column {amount_col!r} has {negative[0]} negative amounts, e.g. {negative[1]}: "
            "pass purchases only (net refunds out first)"
        )
    con.execute(
        f"""
        create or replace temp view {_VIEW} as
        select customer_id, cast(purchase_time as date) as purchase_date, amount
        from byod_parsed
        where customer_id is not null and purchase_time is not null and amount is not null
        {"" if keep_duplicates else "qualify " + _FIRST_OF_DUPLICATES}
        """
    )
    clean = con.execute(
        "select count(*) from byod_parsed where customer_id is not null and purchase_time is not null "
        "and amount is not null"
    ).fetchone()[0]
    kept = con.execute(f"select count(*) from {_VIEW}").fetchone()[0]
    if kept == 0:
        raise ValueError(f"{path}: no row has a customer id, a date and an amount that can be read")
    rows = con.execute(f"select count(*) from {_ROWS}").fetchone()[0]
    report = RowReport(
        rows=rows,
        bad_dates=bad_dates,
        missing_ids=tuple(n for n in missing_ids if n not in set(bad_dates)),
        bad_amounts=tuple(n for n in bad_amounts if n not in set(bad_dates) | set(missing_ids)),
        duplicates_dropped=clean - kept,
        not_yet_customers=0,
        line_label="lines" if offset else "rows",
    )
    return report, columns


def score_transactions(
    path: Path,
    *,
    customer_col: str,
    date_col: str,
    amount_col: str,
    as_of: date,
    config: ClvConfig,
    settings: Settings,
    date_formats: Sequence[str] = (),
    keep_duplicates: bool = False,
) -> ByodResult:
    """Read a transactions file, choose and fit the models, and score every customer.

    Parameters
    ----------
    path : pathlib.Path
        ``.csv`` or ``.parquet`` file with one row per order and the columns
        ``customer_col``, ``date_col`` and ``amount_col``.
    as_of : datetime.date
        End of the observed period; later rows are ignored.
    config : ClvConfig
        Horizon, discounting, margin, time unit and model choice.
    settings : Settings
        The configuration; its DuckDB memory bounds apply to the file's reading.
    date_formats : sequence of str
        DuckDB ``strptime`` formats tried in order before ISO dates.
    keep_duplicates : bool
        Keep rows identical in customer, date and amount (dropped by default).

    Returns
    -------
    ByodResult
        Scores indexed by ``customer_col`` (columns :data:`CLV_COLUMNS` and
        ``status``), the models, and the report of the rows.

    Raises
    ------
    ValueError
        For an unsupported or missing file, an empty file, a missing column,
        negative amounts, no usable row, or a model that cannot be fitted
        (:class:`ModelFitError`, with advice on what to try).
    """
    if path.suffix.lower() not in _READERS:
        raise ValueError(f"{path}: unsupported file type {path.suffix!r}; use one of {sorted(_READERS)}")
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    con = connect(settings)
    try:
        report, _ = _load(con, path, customer_col, date_col, amount_col, date_formats, keep_duplicates)
        not_yet = con.execute(
            f"select customer_id from {_VIEW} group by customer_id having min(purchase_date) > $as_of "
            "order by customer_id",
            {"as_of": as_of},
        ).df()["customer_id"]
        if (
            con.execute(f"select count(*) from {_VIEW} where purchase_date <= $as_of", {"as_of": as_of}).fetchone()[0]
            == 0
        ):
            raise ValueError(f"{path}: no transactions on or before the as-of date {as_of}")

        def summarize(day: date) -> pd.DataFrame:
            return summarize_transactions_sql(
                con,
                _VIEW,
                as_of=day,
                time_unit=config.time_unit,
                date_col="purchase_date",
                amount_col="amount",
            )

        summary = summarize(as_of)
        try:
            result = fit_and_score(summary, config, summarize=summarize, as_of=as_of)
        except ModelFitError as exc:
            raise ModelFitError(f"{exc}\n{fit_advice(exc, config)}", model=exc.model) from exc
    finally:
        con.close()
    scores = result.scores.assign(status=SCORED)
    if len(not_yet):
        waiting = pd.DataFrame({"status": NOT_YET_CUSTOMER}, index=pd.Index(not_yet, name=scores.index.name))
        scores = pd.concat([scores, waiting]).sort_index()[scores.columns]
    scores = scores.rename_axis(customer_col)
    report = RowReport(**{**report.__dict__, "not_yet_customers": len(not_yet)})
    return ByodResult(clv=result, scores=scores, rows=report)


def fit_advice(error: ModelFitError, config: ClvConfig) -> str:
    """What to try after a failed fit, in words."""
    if error.model == "gamma_gamma":
        return (
            "What to try: the spend model needs repeat buyers whose order values vary and a finite mean spend; "
            "check the amount column (refunds netted out, one currency, no placeholder values), and give more history."
        )
    if "no customer made a repeat purchase" in str(error):
        return "What to try: more history (an earlier start or a later --as-of), so that some customers buy again."
    other_unit = "days" if config.time_unit == "weeks" else "weeks"
    tips = [f"--time-unit {other_unit}", "more history (an earlier start or a later --as-of)"]
    tips += [f"--model {m}" for m in ("pareto_nbd", "mbgnbd") if m != error.model]
    return "What to try: " + "; ".join(tips) + "."


def format_report(result: ByodResult, config: ClvConfig) -> str:
    """Rows left out, the model choice, the fitted parameters with standard errors, as printed by the CLI."""
    clv = result.clv
    purchases, spend = clv.transaction_model, clv.spend_model
    independence = "" if spend.independence_ok else "  WARNING: above threshold, independence doubtful"
    excluded = f", {clv.n_zero_spend_excluded} with zero repeat spend left out" if clv.n_zero_spend_excluded else ""
    scored = result.scores["status"].eq(SCORED)
    return "\n".join(
        [
            f"Rows: {result.rows.rows} read, {result.rows.rows_used} used",
            *(f"  {line}" for line in result.rows.lines()),
            clv.selection.report(),
            f"{purchases.label}: {purchases.n_customers:.0f} customers ({purchases.n_distinct} distinct rows), "
            f"log-likelihood {purchases.log_likelihood:.2f}, time unit {config.time_unit}",
            purchases.summary().to_string(float_format=lambda v: f"{v:.4f}"),
            f"Gamma-Gamma: {spend.n_customers:.0f} repeat buyers{excluded}, log-likelihood "
            f"{spend.log_likelihood:.2f}, corr(frequency, monetary_value) {spend.frequency_monetary_corr:.3f}"
            f"{independence}",
            spend.summary().to_string(float_format=lambda v: f"{v:.4f}"),
            f"CLV: {config.describe_horizon()}, discount {config.monthly_discount_rate:.2%} a month, "
            f"margin {config.margin:.0%}; intervals {config.interval_level:.0%} (parameter uncertainty); "
            f"churn_probability = P(no purchase in the {config.describe_horizon()} after the as-of date)",
            f"Scored {int(scored.sum())} customers: expected purchases {result.scores['expected_purchases'].sum():,.1f}, "
            f"CLV {result.scores['clv'].sum():,.2f}, mean churn probability "
            f"{np.nanmean(result.scores['churn_probability']):.3f}",
        ]
    )


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface; defaults of the CLV settings come from :class:`ClvConfig`."""
    defaults = ClvConfig()
    parser = argparse.ArgumentParser(
        prog="python -m crm_warehouse.analytics.clv.byod",
        description="Choose and fit a purchase model and Gamma-Gamma on a transactions file; write per-customer "
        "CLV, expected purchases (with intervals) and churn probability.",
    )
    parser.add_argument("--transactions", type=Path, required=True, help="input .csv or .parquet, one row per order")
    parser.add_argument("--customer-col", default="customer_id", help="customer id column (default: %(default)s)")
    parser.add_argument("--date-col", default="date", help="order date column (default: %(default)s)")
    parser.add_argument("--amount-col", default="amount", help="order amount column (default: %(default)s)")
    parser.add_argument(
        "--date-format",
        action="append",
        default=[],
        help="strptime format of the dates, e.g. %%Y%%m%%d; repeat for files with several formats "
        "(tried in order, then ISO)",
    )
    parser.add_argument("--as-of", type=_iso_date, required=True, help="end of the observed period, YYYY-MM-DD")
    horizon = parser.add_mutually_exclusive_group()
    horizon.add_argument("--horizon-months", type=float, help=f"default: {defaults.horizon:g} months")
    horizon.add_argument("--horizon-weeks", type=float)
    horizon.add_argument("--horizon-days", type=float)
    parser.add_argument(
        "--discount-rate", type=float, default=defaults.monthly_discount_rate, help="monthly, default: %(default)s"
    )
    parser.add_argument(
        "--margin", type=float, default=defaults.margin, help="profit share of spend, default: %(default)s"
    )
    parser.add_argument(
        "--time-unit", choices=sorted(DAYS_PER_UNIT), default=defaults.time_unit, help="default: %(default)s"
    )
    parser.add_argument(
        "--model",
        choices=["auto", *PURCHASE_MODELS],
        default=defaults.model,
        help="purchase model; auto chooses on a time split inside the observed period (default: %(default)s)",
    )
    parser.add_argument("--interval-level", type=float, default=defaults.interval_level, help="default: %(default)s")
    parser.add_argument(
        "--keep-duplicates",
        action="store_true",
        help="keep rows identical in customer, date and amount (by default all but one are dropped)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output .csv or .parquet")
    return parser


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date in YYYY-MM-DD form") from exc


def config_from_args(args: argparse.Namespace) -> ClvConfig:
    """The CLV settings of parsed command-line arguments."""
    horizon, unit = ClvConfig().horizon, "months"
    for name in ("months", "weeks", "days"):
        value = getattr(args, f"horizon_{name}")
        if value is not None:
            horizon, unit = value, name
    return ClvConfig(
        horizon=horizon,
        horizon_unit=unit,
        monthly_discount_rate=args.discount_rate,
        margin=args.margin,
        time_unit=args.time_unit,
        model=args.model,
        interval_level=args.interval_level,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 on a data or model error, with the reason on stderr)."""
    args = build_parser().parse_args(argv)
    try:
        if args.out.suffix.lower() not in _WRITERS:
            raise ValueError(f"{args.out}: unsupported output type {args.out.suffix!r}; use one of {sorted(_WRITERS)}")
        config = config_from_args(args)
        result = score_transactions(
            args.transactions,
            customer_col=args.customer_col,
            date_col=args.date_col,
            amount_col=args.amount_col,
            as_of=args.as_of,
            config=config,
            settings=load_settings(),
            date_formats=args.date_format,
            keep_duplicates=args.keep_duplicates,
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


__all__ = ["CLV_COLUMNS", "ByodResult", "RowReport", "fit_advice", "format_report", "main", "score_transactions"]
