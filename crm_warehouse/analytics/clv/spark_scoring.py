"""CLV scoring on Spark's workers: nothing collects all customers to one process.

Spark computes every CRM customer's order summary with the SQL of
:func:`~crm_warehouse.analytics.clv.warehouse.clv_inputs_query` (written once,
translated by sqlglot), and ``mapInPandas`` applies the saved models to each
partition's rows on the workers, with the function the DuckDB path runs on all
rows at once (:func:`~crm_warehouse.analytics.clv.warehouse.clv_rows`: each row's
figures depend on that row alone). The figures go straight from the workers into
``analytics.customer_clv``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd

from crm_warehouse.analytics.clv.warehouse import clv_inputs_query, clv_models, clv_rows
from crm_warehouse.warehouse.analytics_tables import TABLE_COLUMNS, append_from_workers
from crm_warehouse.warehouse.spark import SparkSqlConnection

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

TABLE = "customer_clv"


def score_clv_on_spark(
    session: SparkSession, con: SparkSqlConnection, payload: dict[str, Any], as_of: date, scored_at: pd.Timestamp
) -> None:
    """Score every CRM customer at ``as_of`` with the saved CLV model ``payload`` on Spark's workers and
    append the rows to ``analytics.customer_clv`` (``scored_at`` and the model id stamped on each).

    Raises
    ------
    ValueError
        When no customer has a completed order by ``as_of`` (as the DuckDB path).
    """
    _, config = clv_models(payload)
    model_id = payload["model_id"]
    sql, parameters = clv_inputs_query(con, as_of, config)
    buyers = con.execute(f"select count(*) from ({sql}) as inputs where frequency is not null", parameters)
    if not buyers.fetchone()[0]:
        raise ValueError(f"no completed order on or before as_of={as_of}")
    columns = list(TABLE_COLUMNS[TABLE])

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        fit, _ = clv_models(payload)  # once per partition, on the worker
        for batch in batches:
            yield clv_rows(batch, fit, config).assign(model_id=model_id, scored_at=scored_at)[columns]

    append_from_workers(session, con, TABLE, sql, parameters, score)
