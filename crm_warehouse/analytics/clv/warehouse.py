"""CLV on the warehouse: fit BG/NBD + Gamma-Gamma on completed orders, score every CRM customer.

Reads ``marts.fct_orders`` (completed orders) and ``staging.stg_crm__customers``
(who is a customer, its type, whether its account is closed).

Spend is scaled by customer type before the Gamma-Gamma fit. A consumer spends
hundreds per order and a key account hundreds of thousands: one Gamma prior over
such a mixture has q <= 1 (infinite mean spend) and the fit is unusable. Dividing
each customer's mean spend by the median repeat spend of its type (``spend_scale``)
gives one fit of p and q with a gamma per type of ``gamma * spend_scale``; figures
are multiplied back. BG/NBD is fitted on all customers as they are.

Every CRM customer gets a row:

* customers with a completed order by the as-of date: the model's figures;
* prospects (no completed order yet): frequency, recency, T, monetary value,
  expected purchases, expected spend and CLV 0; ``p_alive`` and
  ``expected_avg_spend`` missing (the models describe buyers only);
* accounts closed by the as-of date: their history, with ``p_alive``, expected
  purchases, expected spend and CLV 0 (a closure is an observed dropout, which
  the purchase model cannot see).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from crm_warehouse.analytics.clv.bgnbd import BetaGeoModel
from crm_warehouse.analytics.clv.config import DAYS_PER_UNIT, ClvConfig, FitOptions
from crm_warehouse.analytics.clv.gamma_gamma import GammaGammaModel
from crm_warehouse.analytics.clv.lifetime_value import customer_lifetime_value, fit_and_score
from crm_warehouse.analytics.clv.summary import summarize_transactions_sql
from crm_warehouse.warehouse.relations import FCT_ORDERS, STG_CRM_CUSTOMERS

#: Columns of ``analytics.customer_clv`` this module fills (the asset adds model_id and scored_at).
CLV_SCORE_COLUMNS = (
    "customer_id",
    "frequency",
    "recency",
    "t",
    "monetary_value",
    "p_alive",
    "expected_purchases",
    "expected_avg_spend",
    "expected_spend",
    "clv",
    "horizon_months",
)
_ORDERS_VIEW = "clv_completed_orders"


def order_summary(con: duckdb.DuckDBPyConnection, as_of: date, config: ClvConfig) -> pd.DataFrame:
    """Frequency, recency, T and monetary value of every customer with a completed order by ``as_of``."""
    con.execute(
        f"""
        create or replace temp view {_ORDERS_VIEW} as
        select customer_id, order_date, order_revenue
        from {FCT_ORDERS.sql()}
        where order_status = 'completed'
        """
    )
    try:
        return summarize_transactions_sql(
            con,
            _ORDERS_VIEW,
            as_of=as_of,
            time_unit=config.time_unit,
            date_col="order_date",
            amount_col="order_revenue",
        )
    finally:
        con.execute(f"drop view if exists {_ORDERS_VIEW}")


def customer_types(con: duckdb.DuckDBPyConnection) -> pd.Series:
    """Customer type of every CRM customer, indexed by ``customer_id``."""
    frame = con.execute(f"select customer_id, customer_type from {STG_CRM_CUSTOMERS.sql()}").df()
    return frame.set_index("customer_id")["customer_type"]


def spend_scales(summary: pd.DataFrame, types: pd.Series) -> dict[str, float]:
    """Median mean repeat spend of the repeat buyers of each customer type, and ``"*"`` over all of them.

    ``summary`` needs ``frequency`` and ``monetary_value``, indexed by customer like ``types``.
    """
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    if repeat.empty:
        raise ValueError("no customer has a repeat purchase with positive spend: the spend model cannot be fitted")
    medians = repeat["monetary_value"].groupby(types.reindex(repeat.index)).median()
    return {**{str(k): float(v) for k, v in medians.items()}, "*": float(repeat["monetary_value"].median())}


def _scale_of(summary: pd.DataFrame, types: pd.Series, scales: dict[str, float]) -> np.ndarray:
    """Each customer's spend scale (its type's, or the overall one for a type without repeat buyers)."""
    return types.reindex(summary.index).map(scales).fillna(scales["*"]).to_numpy(dtype=np.float64)


@dataclass(frozen=True)
class ClvFit:
    """The two fitted models and the spend scale per customer type."""

    transaction_model: BetaGeoModel
    spend_model: GammaGammaModel
    spend_scale: dict[str, float]
    n_customers: int
    n_zero_spend_excluded: int
    first_purchase_date: date


def fit_clv(
    con: duckdb.DuckDBPyConnection, as_of: date, config: ClvConfig | None = None, options: FitOptions | None = None
) -> ClvFit:
    """Fit BG/NBD and the type-scaled Gamma-Gamma on the completed orders up to ``as_of``."""
    config = config or ClvConfig()
    summary = order_summary(con, as_of, config)
    types = customer_types(con)
    scales = spend_scales(summary, types)
    scaled = summary.assign(monetary_value=summary["monetary_value"] / _scale_of(summary, types, scales))
    result = fit_and_score(scaled, config, options)
    return ClvFit(
        transaction_model=result.transaction_model,
        spend_model=result.spend_model,
        spend_scale=scales,
        n_customers=len(summary),
        n_zero_spend_excluded=result.n_zero_spend_excluded,
        first_purchase_date=as_of - timedelta(days=round(float(summary["T"].max()) * DAYS_PER_UNIT[config.time_unit])),
    )


def clv_payload(fit: ClvFit, config: ClvConfig, as_of: date) -> dict[str, Any]:
    """JSON-ready description of a CLV fit: both models' estimates and covariances, settings, as-of date."""
    transaction, spend = fit.transaction_model, fit.spend_model
    return {
        "model_type": "clv",
        "as_of_date": as_of.isoformat(),
        "config": asdict(config),
        "spend_scale": fit.spend_scale,
        "bgnbd": {
            "params": transaction.params,
            "covariance": transaction.covariance.tolist(),
            "log_likelihood": transaction.log_likelihood,
            "n_customers": transaction.n_customers,
            "n_distinct": transaction.n_distinct,
        },
        "gamma_gamma": {
            "params": spend.params,
            "covariance": spend.covariance.tolist(),
            "log_likelihood": spend.log_likelihood,
            "n_customers": spend.n_customers,
            "frequency_monetary_corr": spend.frequency_monetary_corr,
            "independence_ok": spend.independence_ok,
        },
        "n_customers": fit.n_customers,
        "n_zero_spend_excluded": fit.n_zero_spend_excluded,
        "first_purchase_date": fit.first_purchase_date.isoformat(),
    }


def clv_models(payload: dict[str, Any]) -> tuple[ClvFit, ClvConfig]:
    """The fit and settings saved by :func:`clv_payload`."""
    try:
        bgnbd, spend = payload["bgnbd"], payload["gamma_gamma"]
        transaction_model = BetaGeoModel(
            **bgnbd["params"],
            covariance=np.asarray(bgnbd["covariance"], dtype=np.float64),
            log_likelihood=float(bgnbd["log_likelihood"]),
            n_customers=float(bgnbd["n_customers"]),
            n_distinct=int(bgnbd["n_distinct"]),
        )
        spend_model = GammaGammaModel(
            **spend["params"],
            covariance=np.asarray(spend["covariance"], dtype=np.float64),
            log_likelihood=float(spend["log_likelihood"]),
            n_customers=float(spend["n_customers"]),
            frequency_monetary_corr=float(spend["frequency_monetary_corr"]),
            independence_ok=bool(spend["independence_ok"]),
        )
        fit = ClvFit(
            transaction_model=transaction_model,
            spend_model=spend_model,
            spend_scale={str(k): float(v) for k, v in payload["spend_scale"].items()},
            n_customers=int(payload["n_customers"]),
            n_zero_spend_excluded=int(payload["n_zero_spend_excluded"]),
            first_purchase_date=date.fromisoformat(payload["first_purchase_date"]),
        )
        config = ClvConfig(**payload["config"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a saved CLV model: {exc!r} missing or malformed") from exc
    return fit, config


def score_clv(con: duckdb.DuckDBPyConnection, fit: ClvFit, config: ClvConfig, as_of: date) -> pd.DataFrame:
    """CLV figures of every CRM customer at ``as_of`` (rules for prospects and closed accounts: module docstring).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CLV_SCORE_COLUMNS`, one row per customer of
        ``staging.stg_crm__customers``, sorted by ``customer_id``.
    """
    summary = order_summary(con, as_of, config)
    scale = _scale_of(summary, customer_types(con), fit.spend_scale)
    scaled = summary.assign(monetary_value=summary["monetary_value"] / scale)
    scores = customer_lifetime_value(fit.transaction_model, fit.spend_model, scaled, config)
    for column in ("monetary_value", "expected_avg_spend", "expected_spend", "clv"):
        scores[column] = scores[column] * scale
    scores = scores.rename(columns={"T": "t"}).rename_axis("customer_id").reset_index()
    customers = con.execute(
        """
        select customer_id, coalesce(closed_date <= $as_of, false) as is_closed
        from staging.stg_crm__customers
        order by customer_id
        """,
        {"as_of": as_of},
    ).df()
    result = customers.merge(scores, on="customer_id", how="left", validate="one_to_one")
    prospect = result["frequency"].isna().to_numpy()
    for column in ("frequency", "recency", "t", "monetary_value", "expected_purchases", "expected_spend", "clv"):
        result[column] = result[column].astype(np.float64).fillna(0.0)
    closed = result["is_closed"].to_numpy(dtype=bool) & ~prospect
    result.loc[closed, ["p_alive", "expected_purchases", "expected_spend", "clv"]] = 0.0
    result["horizon_months"] = np.int32(config.horizon_months)
    return result[list(CLV_SCORE_COLUMNS)]
