"""Analytics assets: fit the CLV and churn models, and score every customer with the latest fits.

The model assets (``analytics/clv_model``, ``analytics/churn_model``) belong to the
weekly retraining and the first run; the scoring assets (``analytics/customer_clv``,
``analytics/customer_churn_scores``) run daily with the newest saved models and
fail with a clear message while none exists. The work is in
:mod:`crm_warehouse.analytics.model_runs`; these assets only open the warehouse,
call it, write the rows and report.
"""

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from crm_warehouse.warehouse.relations import CHURN_INPUTS as CHURN_RELATIONS
from crm_warehouse.warehouse.relations import CLV_INPUTS as CLV_RELATIONS
from crm_warehouse.warehouse.relations import Relation
from crm_warehouse.warehouse.spark import SparkSqlConnection, spark_session
from orchestration.metadata import image_metadata
from orchestration.resources import TRANSIENT_RETRY, WAREHOUSE_POOL, WarehouseResource

ANALYTICS_GROUP = "analytics"
KINDS = {"python", "duckdb"}
# DuckDB allows one writer: every asset that writes to the warehouse takes this pool.
OWNERS = ["team:data-science"]

CLV_MODEL_KEY = dg.AssetKey(["analytics", "clv_model"])
CHURN_MODEL_KEY = dg.AssetKey(["analytics", "churn_model"])
CUSTOMER_CLV_KEY = dg.AssetKey(["analytics", "customer_clv"])
CHURN_SCORES_KEY = dg.AssetKey(["analytics", "customer_churn_scores"])


def _keys(relations: tuple[Relation, ...]) -> list[dg.AssetKey]:
    return [dg.AssetKey(list(relation.asset_key_path)) for relation in relations]


#: dbt models the CLV steps read.
CLV_INPUTS = _keys(CLV_RELATIONS)
#: dbt models the churn steps read.
CHURN_INPUTS = _keys(CHURN_RELATIONS)

_NO_MODEL = (
    "No saved {kind} model in {folder}. Fit one first: run the retraining job (the weekly "
    "retrain schedule, or materialise {key} in the UI), or `make run`, which fits the models on the first run."
)


def _now() -> datetime:
    return datetime.now(UTC)


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {name: round(float(value), 6) for name, value in values.items()}


@dg.asset(
    key=CLV_MODEL_KEY,
    deps=CLV_INPUTS,
    group_name=ANALYTICS_GROUP,
    kinds=KINDS,
    owners=OWNERS,
    pool=WAREHOUSE_POOL,
    retry_policy=TRANSIENT_RETRY,
)
def clv_model(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Choose and fit the purchase model and Gamma-Gamma on the completed orders; save the CLV model (weekly)."""
    # The model libraries load when a step runs, not when the code location loads.
    from crm_warehouse.analytics.model_runs import retrain_clv
    from crm_warehouse.warehouse.analytics_tables import append_rows

    with warehouse.writer() as con:
        as_of = warehouse.resolve_as_of(con)
        try:
            retrained = retrain_clv(con, Path(warehouse.models_dir), as_of, _now(), warehouse.settings.clv)
        except ValueError as exc:
            raise dg.Failure(
                f"the CLV model could not be fitted on the orders up to {as_of}: {exc}", allow_retries=False
            ) from exc
        append_rows(con, "model_runs", retrained.run)
    fit = retrained.fit
    context.log.info(f"saved CLV model {retrained.model_id} to {retrained.path}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": fit.n_customers,
            "model_id": retrained.model_id,
            "model_path": dg.MetadataValue.path(str(retrained.path)),
            "as_of_date": as_of.isoformat(),
            "purchase_model": fit.transaction_model.label,
            "model_choice": fit.selection.reason,
            "purchase_model_parameters": dg.MetadataValue.json(_rounded(fit.transaction_model.params)),
            "purchase_model_standard_errors": dg.MetadataValue.json(_rounded(fit.transaction_model.standard_errors)),
            "gamma_gamma_parameters": dg.MetadataValue.json(_rounded(fit.spend_model.params)),
            "gamma_gamma_standard_errors": dg.MetadataValue.json(_rounded(fit.spend_model.standard_errors)),
            "spend_scale_by_customer_type": dg.MetadataValue.json(_rounded(fit.spend_scale)),
            "spend_frequency_correlation": float(fit.spend_model.frequency_monetary_corr),
        }
    )


@dg.asset(
    key=CHURN_MODEL_KEY,
    deps=CHURN_INPUTS,
    group_name=ANALYTICS_GROUP,
    kinds=KINDS,
    owners=OWNERS,
    pool=WAREHOUSE_POOL,
    retry_policy=TRANSIENT_RETRY,
)
def churn_model(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Validate the churn model on a time split against BG/NBD, refit it on the latest months and save it."""
    import numpy as np

    from crm_warehouse.analytics.model_runs import retrain_churn
    from crm_warehouse.analytics.plots import calibration_plot_png
    from crm_warehouse.warehouse.analytics_tables import append_rows

    with warehouse.writer() as con:
        as_of = warehouse.resolve_as_of(con)
        try:
            retrained = retrain_churn(con, Path(warehouse.models_dir), as_of, _now(), warehouse.settings.churn)
        except ValueError as exc:
            raise dg.Failure(f"the churn model could not be fitted: {exc}", allow_retries=False) from exc
        append_rows(con, "model_runs", retrained.run)
    validation = retrained.fit.validation
    cases = validation.cases
    figures = validation.model
    context.log.info(
        f"saved churn model {retrained.model_id}: validation AUC {figures.auc:.3f} "
        f"(BG/NBD {validation.baseline.auc:.3f}), ECE {figures.calibration_error:.3f}"
    )
    plot = calibration_plot_png(
        cases["churned"].to_numpy(dtype=np.float64),
        cases["churn_probability"].to_numpy(),
        baseline=cases["baseline_probability"].to_numpy(),
        title=f"Churn calibration at the validation cutoff {validation.split.validation}",
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": retrained.fit.model.training_rows,
            "model_id": retrained.model_id,
            "model_path": dg.MetadataValue.path(str(retrained.path)),
            "training_cutoffs": ", ".join(c.isoformat() for c in retrained.fit.model.training_cutoffs),
            "validation_cutoff": validation.split.validation.isoformat(),
            "validation_rows": figures.rows,
            "validation_churn_rate": figures.positive_rate,
            "validation_auc": figures.auc,
            "validation_auc_standard_error": figures.auc_standard_error,
            "brier_score": figures.brier,
            "expected_calibration_error": figures.calibration_error,
            "top_decile_lift": figures.lift,
            "baseline_bgnbd_auc": validation.baseline.auc,
            "parameters": dg.MetadataValue.json(retrained.fit.model.params),
            "calibration_plot": image_metadata(plot, "churn calibration"),
        }
    )


@dg.asset(
    key=CUSTOMER_CLV_KEY,
    deps=[CLV_MODEL_KEY, *CLV_INPUTS],
    group_name=ANALYTICS_GROUP,
    kinds=KINDS,
    owners=OWNERS,
    pool=WAREHOUSE_POOL,
    retry_policy=TRANSIENT_RETRY,
)
def customer_clv(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Score every CRM customer's lifetime value with the latest CLV model into analytics.customer_clv."""
    from crm_warehouse.analytics.model_runs import (
        NoModelError,
        clv_run_figures,
        score_with_latest_clv,
        score_with_latest_clv_on_spark,
    )
    from crm_warehouse.analytics.plots import clv_distribution_png
    from crm_warehouse.warehouse.analytics_tables import append_batches, table_rows

    scored_at = _now()
    with warehouse.writer() as con:
        as_of = warehouse.resolve_as_of(con)
        try:
            if isinstance(con, SparkSqlConnection):
                payload = score_with_latest_clv_on_spark(
                    spark_session(warehouse.settings), con, Path(warehouse.models_dir), as_of, scored_at
                )
            else:
                # The scores stream from a second connection while this one writes them, in one transaction.
                scored = score_with_latest_clv(con.cursor(), Path(warehouse.models_dir), as_of, scored_at)
                payload = scored.payload
                append_batches(con, "customer_clv", scored.batches)
        except NoModelError as exc:
            raise dg.Failure(
                _NO_MODEL.format(kind="CLV", folder=warehouse.models_dir, key=CLV_MODEL_KEY.to_user_string()),
                allow_retries=False,
            ) from exc
        except ValueError as exc:
            raise dg.Failure(f"CLV scoring at {as_of} failed: {exc}", allow_retries=False) from exc
        model_id = payload["model_id"]
        # The figures come from what was written, the same way on both engines.
        figures = clv_run_figures(con, model_id, scored_at)
        total = table_rows(con, "customer_clv")
    context.log.info(f"scored {figures.rows} customers with CLV model {model_id}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": figures.rows,
            "table_rows_all_runs": total,
            "model_id": model_id,
            "as_of_date": as_of.isoformat(),
            "customers_with_clv": figures.customers_with_clv,
            "total_clv": figures.total_clv,
            "median_positive_clv": figures.median_positive_clv,
            "mean_p_alive": figures.mean_p_alive,
            "parameters": dg.MetadataValue.json(
                {
                    payload["purchase_model"]["name"]: _rounded(payload["purchase_model"]["params"]),
                    "gamma_gamma": _rounded(payload["gamma_gamma"]["params"]),
                }
            ),
            "clv_distribution": image_metadata(
                clv_distribution_png(figures.plotted, sampled_from=figures.rows), "CLV distribution"
            ),
        }
    )


@dg.asset(
    key=CHURN_SCORES_KEY,
    deps=[CHURN_MODEL_KEY, *CHURN_INPUTS],
    group_name=ANALYTICS_GROUP,
    kinds=KINDS,
    owners=OWNERS,
    pool=WAREHOUSE_POOL,
    retry_policy=TRANSIENT_RETRY,
)
def customer_churn_scores(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Score every open account's churn risk and top drivers with the latest churn model."""
    from crm_warehouse.analytics.model_runs import (
        NoModelError,
        score_with_latest_churn,
        score_with_latest_churn_on_spark,
    )
    from crm_warehouse.warehouse.analytics_tables import append_batches, table_rows

    with warehouse.writer() as con:
        cutoff = warehouse.resolve_as_of(con)
        try:
            if isinstance(con, SparkSqlConnection):
                payload, by_band = score_with_latest_churn_on_spark(
                    spark_session(warehouse.settings), con, Path(warehouse.models_dir), cutoff, _now()
                )
                model_id = payload["model_id"]
                written = sum(rows for rows, _ in by_band.values())
                probability_sum = sum(total for _, total in by_band.values())
                band_counts = Counter({band or "not scored": rows for band, (rows, _) in by_band.items()})
            else:
                # The scores stream from a second connection while this one writes them, in one transaction.
                scored = score_with_latest_churn(con.cursor(), Path(warehouse.models_dir), cutoff, _now())
                payload, model_id = scored.payload, scored.model_id
                probability_sum, band_counts = 0.0, Counter()

                def tally(rows: Any) -> None:  # a batch of scores (pandas), once written
                    nonlocal probability_sum
                    probability_sum += float(rows["churn_probability"].sum())
                    band_counts.update(rows["risk_band"].fillna("not scored"))

                written = append_batches(con, "customer_churn_scores", scored.batches, tally)
        except NoModelError as exc:
            raise dg.Failure(
                _NO_MODEL.format(kind="churn", folder=warehouse.models_dir, key=CHURN_MODEL_KEY.to_user_string()),
                allow_retries=False,
            ) from exc
        except ValueError as exc:
            raise dg.Failure(f"churn scoring at {cutoff} failed: {exc}", allow_retries=False) from exc
        total = table_rows(con, "customer_churn_scores")
    bands = dict(band_counts)
    scored_rows = written - bands.get("not scored", 0)
    validation: dict[str, Any] = payload["validation"]
    context.log.info(f"scored {written} open accounts with churn model {model_id}: {bands}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "table_rows_all_runs": total,
            "model_id": model_id,
            "cutoff": cutoff.isoformat(),
            "risk_bands": dg.MetadataValue.json({str(k): int(v) for k, v in bands.items()}),
            "mean_churn_probability": probability_sum / scored_rows if scored_rows else float("nan"),
            "validation_auc": validation["model"]["auc"],
            "brier_score": validation["model"]["brier"],
            "expected_calibration_error": validation["model"]["calibration_error"],
            "top_decile_lift": validation["model"]["lift"],
            "baseline_bgnbd_auc": validation["baseline"]["auc"],
        }
    )


#: Fit and save the models: the weekly retraining job and the first run.
model_assets = [clv_model, churn_model]
#: Score every customer with the latest saved models: the daily pipeline.
scoring_assets = [customer_clv, customer_churn_scores]
analytics_assets = [*model_assets, *scoring_assets]
