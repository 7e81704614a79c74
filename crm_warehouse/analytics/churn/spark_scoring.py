"""Churn scoring on Spark's workers: nothing collects all customers to one process.

Spark computes every open account's features with the SQL of
:func:`~crm_warehouse.analytics.churn.features.open_account_batches` (written once,
translated by sqlglot), and ``mapInPandas`` applies the saved model to each
partition's rows on the workers, with the same code the DuckDB path runs per batch
(:func:`~crm_warehouse.analytics.churn.model.score_rows`). The scores go straight
from the workers into ``analytics.customer_churn_scores``; the driver only plans
the job and reads a summary back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd

from crm_warehouse.analytics.churn.config import ChurnConfig
from crm_warehouse.analytics.churn.features import open_accounts_query, typed_features
from crm_warehouse.analytics.churn.model import ChurnModel, score_rows
from crm_warehouse.warehouse.analytics_tables import SCHEMA, TABLE_COLUMNS, append_from_workers
from crm_warehouse.warehouse.spark import SparkSqlConnection

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

TABLE = "customer_churn_scores"


def score_churn_on_spark(
    session: SparkSession, con: SparkSqlConnection, payload: dict[str, Any], cutoff: date, scored_at: pd.Timestamp
) -> dict[str | None, tuple[int, float]]:
    """Score every account open at ``cutoff`` with the saved churn model ``payload`` on Spark's
    workers and append the rows to ``analytics.customer_churn_scores`` (``scored_at`` and the
    model id stamped on each). Returns rows and probability sum per risk band (None: not scored)."""
    config = ChurnConfig(**payload["config"])
    model_id = payload["model_id"]
    horizon_days = ChurnModel.from_dict(payload).horizon_days
    sql, parameters = open_accounts_query(con, cutoff, horizon_days, config.recent_months)
    columns = list(TABLE_COLUMNS[TABLE])

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = ChurnModel.from_dict(payload)  # once per partition, on the worker
        for batch in batches:
            rows = score_rows(typed_features(batch), model, config)
            yield rows.assign(model_id=model_id, scored_at=scored_at)[columns]

    append_from_workers(session, con, TABLE, sql, parameters, score)
    summary = con.execute(
        f"""select risk_band, count(*), coalesce(sum(churn_probability), 0)
            from {SCHEMA}.{TABLE} where model_id = $model_id and scored_at = $scored_at group by 1""",
        {"model_id": model_id, "scored_at": scored_at.to_pydatetime()},
    ).fetchall()
    return {band: (int(rows), float(total)) for band, rows, total in summary}
