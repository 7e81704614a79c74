"""CLV on the warehouse: fit a purchase model + Gamma-Gamma on completed orders, score every CRM customer.

Reads ``marts.fct_orders`` (completed orders) and ``staging.stg_crm__customers``
(who is a customer, its type, whether its account is closed).

Spend is scaled by customer type before the Gamma-Gamma fit. A consumer spends
hundreds per order and a key account hundreds of thousands: one Gamma prior over
such a mixture has q <= 1 (infinite mean spend) and the fit is unusable. Dividing
each customer's mean spend by the median repeat spend of its type (``spend_scale``)
gives one fit of p and q with a gamma per type of ``gamma * spend_scale``; figures
are multiplied back. The purchase model (BG/NBD, MBG/NBD or Pareto/NBD, chosen
on a time split inside the calibration period unless ``ClvConfig.model`` names
one; see :mod:`crm_warehouse.analytics.clv.selection`) is fitted on all customers
as they are.

Every CRM customer gets a row:

* customers with a completed order by the as-of date: the model's figures,
  intervals of expected purchases and CLV, and ``churn_probability``, the
  purchase model's probability of no completed order within the horizon;
* prospects (no completed order yet): frequency, recency, T, monetary value,
  expected purchases, expected spend, CLV and their intervals 0; ``p_alive``,
  ``expected_avg_spend`` and ``churn_probability`` missing (the models describe
  buyers only, and a prospect has no purchase to stop);
* accounts closed by the as-of date: their history, with ``p_alive``, expected
  purchases, expected spend, CLV and intervals 0 and ``churn_probability`` 1 (a
  closure is an observed dropout, which the purchase model cannot see).

The warehouse's main churn score stays the LightGBM churn model
(``analytics.customer_churn_scores``); this ``churn_probability`` is the
transactions-only estimate beside the CLV.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from crm_warehouse.analytics.clv.bgnbd import BetaGeoModel
from crm_warehouse.analytics.clv.config import DAYS_PER_UNIT, ClvConfig, FitOptions
from crm_warehouse.analytics.clv.gamma_gamma import GammaGammaModel
from crm_warehouse.analytics.clv.lifetime_value import customer_lifetime_value, fit_models
from crm_warehouse.analytics.clv.mbgnbd import ModifiedBetaGeoModel
from crm_warehouse.analytics.clv.pareto_nbd import ParetoNBDModel
from crm_warehouse.analytics.clv.selection import ModelSelection, PurchaseModel
from crm_warehouse.analytics.clv.summary import summarize_transactions_sql, summary_frame, summary_query
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
    "expected_purchases_low",
    "expected_purchases_high",
    "expected_avg_spend",
    "expected_spend",
    "clv",
    "clv_low",
    "clv_high",
    "churn_probability",
    "purchase_model",
    "horizon_months",
)
_MODEL_CLASSES: dict[str, type] = {
    "bgnbd": BetaGeoModel,
    "mbgnbd": ModifiedBetaGeoModel,
    "pareto_nbd": ParetoNBDModel,
}
#: Columns set to 0 for prospects (no purchase yet) and for closed accounts (an observed dropout).
_ZERO_WITHOUT_PURCHASES = (
    "expected_purchases",
    "expected_purchases_low",
    "expected_purchases_high",
    "expected_spend",
    "clv",
    "clv_low",
    "clv_high",
)
#: The transactions of the CLV models: completed orders.
_COMPLETED_ORDERS = {
    "relation": str(FCT_ORDERS),
    "date_col": "order_date",
    "amount_col": "order_revenue",
    "where": "order_status = 'completed'",
}


def order_summary(
    con: duckdb.DuckDBPyConnection, as_of: date, config: ClvConfig, *, check_source: bool = True
) -> pd.DataFrame:
    """Frequency, recency, T and monetary value of every customer with a completed order by ``as_of``.

    ``check_source``: check every order's values first (:func:`summary_query`); a second summary of
    the same orders in one fit skips it.
    """
    return summarize_transactions_sql(
        con, as_of=as_of, time_unit=config.time_unit, check_source=check_source, **_COMPLETED_ORDERS
    )


def typed_order_summary(con: duckdb.DuckDBPyConnection, as_of: date, config: ClvConfig) -> pd.DataFrame:
    """:func:`order_summary` (its source checked) with each buyer's ``customer_type``, joined in the
    warehouse: missing for a buyer the CRM does not know, who gets the overall spend scale."""
    summary, params = summary_query(con, as_of=as_of, time_unit=config.time_unit, **_COMPLETED_ORDERS)
    typed = f"""
        select s.*, c.customer_type
        from ({summary}) as s
        left join {STG_CRM_CUSTOMERS.sql()} as c on c.customer_id = s.customer_id"""
    return summary_frame(con, typed, params)


def spend_scales(summary: pd.DataFrame, types: pd.Series) -> dict[str, float]:
    """Median mean repeat spend of the repeat buyers of each customer type, and ``"*"`` over all of them.

    ``summary`` needs ``frequency`` and ``monetary_value``, indexed by customer like ``types``.
    """
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    if repeat.empty:
        raise ValueError("no customer has a repeat purchase with positive spend: the spend model cannot be fitted")
    medians = repeat["monetary_value"].groupby(types.reindex(repeat.index)).median()
    return {**{str(k): float(v) for k, v in medians.items()}, "*": float(repeat["monetary_value"].median())}


def _scale_of(types: pd.Series, scales: dict[str, float]) -> np.ndarray:
    """Each customer's spend scale from its type (the overall one for a type without repeat buyers)."""
    return types.map(scales).fillna(scales["*"]).to_numpy(dtype=np.float64)


@dataclass(frozen=True)
class ClvFit:
    """The two fitted models, why the purchase model was chosen, and the spend scale per customer type."""

    transaction_model: PurchaseModel
    spend_model: GammaGammaModel
    spend_scale: dict[str, float]
    n_customers: int
    n_zero_spend_excluded: int
    first_purchase_date: date
    selection: ModelSelection


def fit_clv(
    con: duckdb.DuckDBPyConnection, as_of: date, config: ClvConfig | None = None, options: FitOptions | None = None
) -> ClvFit:
    """Choose and fit the purchase model and fit the type-scaled Gamma-Gamma on the completed orders up to ``as_of``."""
    config = config or ClvConfig()
    # The types come joined to the buyers: aligning millions of string ids in pandas took seconds.
    summary = typed_order_summary(con, as_of, config)
    types = summary.pop("customer_type")
    scales = spend_scales(summary, types)
    scaled = summary.assign(monetary_value=summary["monetary_value"] / _scale_of(types, scales))
    # The selection's summary at its cut reads the same orders, checked just above. Fitted only:
    # the customer_clv step scores every CRM customer.
    result = fit_models(
        scaled,
        config,
        options,
        summarize=lambda day: order_summary(con, day, config, check_source=False),
        as_of=as_of,
    )
    return ClvFit(
        transaction_model=result.transaction_model,
        spend_model=result.spend_model,
        spend_scale=scales,
        n_customers=len(summary),
        n_zero_spend_excluded=result.n_zero_spend_excluded,
        first_purchase_date=as_of - timedelta(days=round(float(summary["T"].max()) * DAYS_PER_UNIT[config.time_unit])),
        selection=result.selection,
    )


def clv_payload(fit: ClvFit, config: ClvConfig, as_of: date) -> dict[str, Any]:
    """JSON-ready description of a CLV fit: both models' estimates and covariances, settings, as-of date."""
    transaction, spend = fit.transaction_model, fit.spend_model
    return {
        "model_type": "clv",
        "as_of_date": as_of.isoformat(),
        "config": asdict(config),
        "spend_scale": fit.spend_scale,
        "selection": fit.selection.as_dict(),
        "purchase_model": {
            "name": transaction.name,
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
        # Models saved before the choice of purchase model hold BG/NBD under "bgnbd".
        purchases = payload["purchase_model"] if "purchase_model" in payload else {**payload["bgnbd"], "name": "bgnbd"}
        spend = payload["gamma_gamma"]
        transaction_model = _MODEL_CLASSES[purchases["name"]](
            **purchases["params"],
            covariance=np.asarray(purchases["covariance"], dtype=np.float64),
            log_likelihood=float(purchases["log_likelihood"]),
            n_customers=float(purchases["n_customers"]),
            n_distinct=int(purchases["n_distinct"]),
        )
        saved_selection = payload.get("selection") or {
            "chosen": purchases["name"],
            "reason": "saved before model choice",
        }
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
            selection=ModelSelection(
                chosen=saved_selection["chosen"],
                reason=saved_selection["reason"],
                ranking=tuple(saved_selection.get("ranking", (saved_selection["chosen"],))),
            ),
        )
        config = ClvConfig.from_dict(payload["config"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a saved CLV model: {exc!r} missing or malformed") from exc
    return fit, config


def clv_inputs_query(con: duckdb.DuckDBPyConnection, as_of: date, config: ClvConfig) -> tuple[str, dict[str, Any]]:
    """SQL (DuckDB's dialect) and parameters of what scoring reads: every CRM customer's
    ``customer_id``, ``customer_type``, ``is_closed`` at ``as_of`` and its completed orders'
    ``frequency``, ``recency``, ``"T"``, ``monetary_value`` (null for a prospect), in no order."""
    summary, params = summary_query(con, as_of=as_of, time_unit=config.time_unit, **_COMPLETED_ORDERS)
    query = f"""
        select c.customer_id, c.customer_type, coalesce(c.closed_date <= $as_of, false) as is_closed,
               s.frequency, s.recency, s."T", s.monetary_value
        from {STG_CRM_CUSTOMERS.sql()} as c
        left join ({summary}) as s on s.customer_id = c.customer_id"""
    return query, params


def clv_rows(inputs: pd.DataFrame, fit: ClvFit, config: ClvConfig) -> pd.DataFrame:
    """CLV figures (:data:`CLV_SCORE_COLUMNS`) of the customers of ``inputs`` (rows of
    :func:`clv_inputs_query`), in their order. Each row's figures depend on that row alone, so
    a batch of customers (a Spark partition) gets what it would get among all of them."""
    inputs = inputs.reset_index(drop=True)
    buyer = inputs["frequency"].notna().to_numpy()
    result = pd.DataFrame({"customer_id": inputs["customer_id"]})
    for column in CLV_SCORE_COLUMNS[1:-2]:
        result[column] = np.nan
    if buyer.any():
        buyers = inputs[buyer]
        scale = _scale_of(buyers["customer_type"], fit.spend_scale)
        summary = pd.DataFrame(
            {
                "frequency": buyers["frequency"].astype("int64"),
                "recency": buyers["recency"].astype(np.float64),
                "T": buyers["T"].astype(np.float64),
                "monetary_value": buyers["monetary_value"].astype(np.float64) / scale,
            }
        )
        scores = customer_lifetime_value(fit.transaction_model, fit.spend_model, summary, config)
        for column in ("monetary_value", "expected_avg_spend", "expected_spend", "clv", "clv_low", "clv_high"):
            scores[column] = scores[column] * scale
        scores = scores.rename(columns={"T": "t"})
        result.loc[buyer, list(scores.columns)] = scores.to_numpy(dtype=np.float64)
    for column in ("frequency", "recency", "t", "monetary_value", *_ZERO_WITHOUT_PURCHASES):
        result[column] = result[column].fillna(0.0)
    closed = inputs["is_closed"].to_numpy(dtype=bool) & buyer
    result.loc[closed, ["p_alive", *_ZERO_WITHOUT_PURCHASES]] = 0.0
    result.loc[closed, "churn_probability"] = 1.0
    result["purchase_model"] = fit.transaction_model.name
    # The column is whole months; a horizon in days or weeks is rounded (the model run records it exactly).
    result["horizon_months"] = np.int32(round(config.horizon_months))
    return result[list(CLV_SCORE_COLUMNS)]


def score_clv_batches(
    con: duckdb.DuckDBPyConnection, fit: ClvFit, config: ClvConfig, as_of: date
) -> Iterator[pd.DataFrame]:
    """:func:`score_clv` in batches of at most ``config.score_batch_rows`` customers, in ``customer_id`` order.

    The customers stream from DuckDB batch by batch, so memory follows the batch size, not the
    number of customers; ``con`` streams until the last batch is read and must not run other
    statements meanwhile. The check that some customer has a completed order comes after the
    last batch: a caller writing the batches writes them in one transaction.

    Raises
    ------
    ValueError
        When no customer has a completed order by ``as_of``.
    """
    query, params = clv_inputs_query(con, as_of, config)
    reader = con.execute(f"{query}\norder by c.customer_id", params).to_arrow_reader(config.score_batch_rows)
    buyers = 0
    for batch in reader:
        inputs = batch.to_pandas()
        buyers += int(inputs["frequency"].notna().sum())
        yield clv_rows(inputs, fit, config)
    if not buyers:
        raise ValueError(f"no completed order on or before as_of={as_of}")


def score_clv(con: duckdb.DuckDBPyConnection, fit: ClvFit, config: ClvConfig, as_of: date) -> pd.DataFrame:
    """CLV figures of every CRM customer at ``as_of`` (rules for prospects and closed accounts: module docstring).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CLV_SCORE_COLUMNS`, one row per customer of
        ``staging.stg_crm__customers``, sorted by ``customer_id``.

    Raises
    ------
    ValueError
        When no customer has a completed order by ``as_of``.
    """
    return pd.concat(score_clv_batches(con, fit, config, as_of), ignore_index=True)
