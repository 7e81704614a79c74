"""Retrain and score steps of the CLV and churn models, as the orchestration runs them.

``retrain_*`` fits a model on the warehouse, saves it under the models folder as
``<model id>.json`` and returns the ``analytics.model_runs`` row; ``score_*``
loads the newest saved model and scores every customer. Nothing here writes to
the warehouse: the caller appends the returned rows (``tables.append_rows``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from crm_warehouse.analytics.churn.config import ChurnConfig
from crm_warehouse.analytics.churn.model import ChurnFit, ChurnModel, score_churn_batches, train_churn_model
from crm_warehouse.analytics.clv.config import ClvConfig
from crm_warehouse.analytics.clv.warehouse import ClvFit, clv_models, clv_payload, fit_clv, score_clv_batches
from crm_warehouse.analytics.model_store import latest_model_path, load_model, new_model_id, save_model
from crm_warehouse.warehouse.analytics_tables import TABLE_COLUMNS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from crm_warehouse.warehouse.spark import SparkSqlConnection


class NoModelError(LookupError):
    """No saved model of the requested type: the retraining has not run yet."""


@dataclass(frozen=True)
class Retrained:
    """A fitted and saved model: its id, file, ``model_runs`` row and the fit itself."""

    model_id: str
    path: Path
    run: pd.DataFrame
    fit: ClvFit | ChurnFit


@dataclass(frozen=True)
class ScoredBatches:
    """Score rows ready for the analytics table, batch by batch as they are computed, and their model."""

    model_id: str
    batches: Iterator[pd.DataFrame]
    payload: dict[str, Any]


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC without a timezone, as the warehouse's TIMESTAMP columns hold it."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _stamped(payload: dict[str, Any], batches: Iterator[pd.DataFrame], scored_at: datetime) -> ScoredBatches:
    """``batches`` with the model's id and ``scored_at`` on every row, computed as they are read."""
    stamp = pd.Timestamp(_utc(scored_at))
    model_id = payload["model_id"]
    return ScoredBatches(
        model_id=model_id,
        batches=(rows.assign(model_id=model_id, scored_at=stamp) for rows in batches),
        payload=payload,
    )


def _run_row(**values: Any) -> pd.DataFrame:
    """One ``model_runs`` row; columns not given are missing."""
    row = {name: values.get(name) for name in TABLE_COLUMNS["model_runs"]}
    for name in ("parameters", "standard_errors"):
        row[name] = json.dumps(row[name])
    return pd.DataFrame([row])


def retrain_clv(
    con: duckdb.DuckDBPyConnection, models_dir: Path, as_of: date, fitted_at: datetime, config: ClvConfig | None = None
) -> Retrained:
    """Choose and fit the purchase model + Gamma-Gamma on the orders up to ``as_of``, save the model, describe the run."""
    config = config or ClvConfig()
    fit = fit_clv(con, as_of, config)
    model_id = new_model_id("clv", fitted_at)
    path = save_model(models_dir, model_id, clv_payload(fit, config, as_of))
    run = _run_row(
        model_id=model_id,
        model_type="clv",
        fitted_at=_utc(fitted_at),
        as_of_date=as_of,
        model_path=str(path),
        parameters={
            "purchase_model": fit.transaction_model.name,
            fit.transaction_model.name: fit.transaction_model.params,
            "gamma_gamma": fit.spend_model.params,
            "model_choice": fit.selection.as_dict(),
            "spend_scale": fit.spend_scale,
            "time_unit": config.time_unit,
            "horizon": config.horizon,
            "horizon_unit": config.horizon_unit,
            "monthly_discount_rate": config.monthly_discount_rate,
            "margin": config.margin,
        },
        standard_errors={
            fit.transaction_model.name: fit.transaction_model.standard_errors,
            "gamma_gamma": fit.spend_model.standard_errors,
        },
        training_start=fit.first_purchase_date,
        training_end=as_of,
        training_rows=fit.n_customers,
    )
    return Retrained(model_id=model_id, path=path, run=run, fit=fit)


def retrain_churn(
    con: duckdb.DuckDBPyConnection,
    models_dir: Path,
    as_of: date,
    fitted_at: datetime,
    config: ChurnConfig | None = None,
) -> Retrained:
    """Validate the churn recipe on a time split, refit it on the latest cutoffs, save it, describe the run."""
    config = config or ChurnConfig()
    fit = train_churn_model(con, as_of, config)
    model_id = new_model_id("churn", fitted_at)
    validation = fit.validation
    payload = {
        "model_type": "churn",
        "config": asdict(config),
        "validation": {
            "training_cutoffs": [c.isoformat() for c in validation.split.training],
            "validation_cutoff": validation.split.validation.isoformat(),
            "model": validation.model.as_dict(),
            "baseline": validation.baseline.as_dict(),
        },
        **fit.model.to_dict(),
    }
    path = save_model(models_dir, model_id, payload)
    cutoffs = fit.model.training_cutoffs
    run = _run_row(
        model_id=model_id,
        model_type="churn",
        fitted_at=_utc(fitted_at),
        as_of_date=fit.as_of,
        model_path=str(path),
        parameters={
            **fit.model.params,
            "horizon_days": config.horizon_days,
            "calibration": f"isotonic, cross-fitted over {config.calibration_folds} customer folds",
            "train_sample_rows": config.train_sample_rows,
            "training_cutoffs": [c.isoformat() for c in cutoffs],
            "validation_training_cutoffs": [c.isoformat() for c in validation.split.training],
        },
        standard_errors={
            "validation_auc": validation.model.auc_standard_error,
            "baseline_auc": validation.baseline.auc_standard_error,
        },
        training_start=cutoffs[0],
        training_end=cutoffs[-1] + timedelta(days=config.horizon_days),
        validation_cutoff=validation.split.validation,
        validation_auc=validation.model.auc,
        brier_score=validation.model.brier,
        calibration_error=validation.model.calibration_error,
        top_decile_lift=validation.model.lift,
        baseline_auc=validation.baseline.auc,
        training_rows=fit.model.training_rows,
        validation_rows=validation.model.rows,
    )
    return Retrained(model_id=model_id, path=path, run=run, fit=fit)


def _latest(models_dir: Path, model_type: str) -> dict[str, Any]:
    path = latest_model_path(models_dir, model_type)
    if path is None:
        raise NoModelError(f"no saved {model_type} model in {models_dir}")
    return load_model(path)


def score_with_latest_clv(
    con: duckdb.DuckDBPyConnection, models_dir: Path, as_of: date, scored_at: datetime
) -> ScoredBatches:
    """CLV of every CRM customer at ``as_of`` with the newest saved CLV model, in batches.

    The batches are computed while they are read (``ClvConfig.score_batch_rows``
    customers each, :func:`~crm_warehouse.analytics.clv.warehouse.score_clv_batches`);
    ``con`` streams the customers until the last batch is read and must not run other
    statements meanwhile.

    Raises
    ------
    NoModelError
        When no CLV model has been saved yet.
    """
    payload = _latest(models_dir, "clv")
    fit, config = clv_models(payload)
    return _stamped(payload, score_clv_batches(con, fit, config, as_of), scored_at)


def score_with_latest_clv_on_spark(
    session: SparkSession, con: SparkSqlConnection, models_dir: Path, as_of: date, scored_at: datetime
) -> dict[str, Any]:
    """:func:`score_with_latest_clv` on Spark's workers (``mapInPandas``): the rows go from the workers
    into ``analytics.customer_clv``, stamped ``scored_at``. Returns the model's payload.

    Raises
    ------
    NoModelError
        When no CLV model has been saved yet.
    """
    from crm_warehouse.analytics.clv.spark_scoring import score_clv_on_spark  # pyspark loads only here

    payload = _latest(models_dir, "clv")
    score_clv_on_spark(session, con, payload, as_of, pd.Timestamp(_utc(scored_at)))
    return payload


#: At most this many CLVs of a scoring run are read back for its distribution plot (a random sample beyond).
PLOTTED_CLVS = 200_000


@dataclass(frozen=True)
class ClvRunFigures:
    """What one CLV scoring run wrote to ``analytics.customer_clv``, computed by the warehouse.

    ``plotted``: every CLV of the run, or a random sample of :data:`PLOTTED_CLVS` of them
    (``rows`` says how many there are), for the distribution plot.
    """

    rows: int
    customers_with_clv: int
    total_clv: float
    median_positive_clv: float
    mean_p_alive: float
    plotted: pd.Series


def clv_run_figures(
    con: duckdb.DuckDBPyConnection | SparkSqlConnection, model_id: str, scored_at: datetime
) -> ClvRunFigures:
    """The figures of the scoring run of ``model_id`` at ``scored_at`` (DuckDB or Spark)."""
    run = {"model_id": model_id, "scored_at": _utc(scored_at)}
    where = "where model_id = $model_id and scored_at = $scored_at"
    rows, positive, total, median, mean_p_alive = con.execute(
        f"""select count(*), count(*) filter (where clv > 0), coalesce(sum(clv), 0),
                   coalesce(median(clv) filter (where clv > 0), 0), avg(p_alive)
            from analytics.customer_clv {where}""",
        run,
    ).fetchone()
    # hash(customer_id) orders the customers pseudo-randomly and the same way on every run.
    sample = f" order by hash(customer_id) limit {PLOTTED_CLVS}" if rows > PLOTTED_CLVS else ""
    plotted = con.execute(f"select clv from analytics.customer_clv {where}{sample}", run).df()["clv"]
    return ClvRunFigures(
        rows=int(rows),
        customers_with_clv=int(positive),
        total_clv=float(total),
        median_positive_clv=float(median),
        mean_p_alive=float("nan") if mean_p_alive is None else float(mean_p_alive),
        plotted=plotted,
    )


def score_with_latest_churn_on_spark(
    session: SparkSession, con: SparkSqlConnection, models_dir: Path, cutoff: date, scored_at: datetime
) -> tuple[dict[str, Any], dict[str | None, tuple[int, float]]]:
    """:func:`score_with_latest_churn` on Spark's workers (``mapInPandas``): the rows go from the workers
    into ``analytics.customer_churn_scores``. Returns the model's payload and, per risk band (None: not
    scored), the rows written and their probability sum.

    Raises
    ------
    NoModelError
        When no churn model has been saved yet.
    """
    from crm_warehouse.analytics.churn.spark_scoring import score_churn_on_spark  # pyspark loads only here

    payload = _latest(models_dir, "churn")
    return payload, score_churn_on_spark(session, con, payload, cutoff, pd.Timestamp(_utc(scored_at)))


def score_with_latest_churn(
    con: duckdb.DuckDBPyConnection, models_dir: Path, cutoff: date, scored_at: datetime
) -> ScoredBatches:
    """Churn scores of every open account at ``cutoff`` with the newest saved churn model, in batches.

    The batches are computed while they are read (``ChurnConfig.score_batch_rows``
    customers each), so memory follows the batch size; ``con`` streams the
    features until the last batch is read and must not run other statements meanwhile.

    Raises
    ------
    NoModelError
        When no churn model has been saved yet.
    """
    payload = _latest(models_dir, "churn")
    model = ChurnModel.from_dict(payload)
    # Settings the model was saved with; one added since (e.g. score_batch_rows) takes its default.
    config = ChurnConfig(**payload["config"])
    return _stamped(payload, score_churn_batches(con, model, cutoff, config), scored_at)
