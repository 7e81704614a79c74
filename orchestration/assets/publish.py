"""Publish: the audited marts and analytics tables become what BI reads.

Downstream of every mart and analytics asset, so a failed blocking check anywhere
upstream stops the run before this step and yesterday's published copy stays. On
DuckDB the step writes the serving file (and ``postgres_marts`` may copy it on to
PostgreSQL); on Spark it publishes to PostgreSQL itself: Parquet tables in a Hive
metastore cannot be swapped together, and PostgreSQL's one-transaction swap can.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from crm_warehouse.publish import PublishError, publish
from orchestration.metadata import image_metadata
from orchestration.resources import TRANSIENT_RETRY, WAREHOUSE_POOL, WarehouseResource

if TYPE_CHECKING:
    from crm_warehouse.publish_postgres import PostgresPublishResult

PUBLISHED_LAYERS = ("marts", "analytics")
SERVING_KEY = dg.AssetKey(["serving", "crm_serving"])


def _checks_passed_in_run(context: dg.AssetExecutionContext) -> int:
    records = context.instance.get_records_for_run(
        context.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    return sum(1 for r in records if r.event_log_entry.dagster_event.event_specific_data.passed)


def _mart_charts(context: dg.AssetExecutionContext, con) -> dict[str, dg.MetadataValue]:
    """Pictures of what was published; they illustrate and must not fail a done publish."""
    # matplotlib loads when a publish draws, not when the code location loads.
    from crm_warehouse.mart_charts import stage_distribution_png, transitions_png, value_matrix_png

    charts = {
        "stage_distribution": (stage_distribution_png, "Customers by lifecycle stage"),
        "lifecycle_transitions": (transitions_png, "Lifecycle transitions"),
        "value_matrix": (value_matrix_png, "Customer value matrix"),
    }
    metadata = {}
    for name, (draw, title) in charts.items():
        try:
            metadata[name] = image_metadata(draw(con), title)
        except Exception as exc:
            context.log.warning(f"chart {name} not drawn: {exc}")
    return metadata


def postgres_publish_metadata(result: "PostgresPublishResult") -> dict[str, object]:
    """What a publish to PostgreSQL reports (the serving step on Spark, ``postgres_marts`` on DuckDB)."""
    return {
        "tables": len(result.row_counts),
        "rows": sum(result.row_counts.values()),
        "seconds": round(result.seconds, 2),
        "swap_attempts": result.swap_attempts,
        "row_counts": dg.MetadataValue.json(result.row_counts),
    }


def _publish_from_spark(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, checks_passed: int
) -> dg.MaterializeResult:
    """Spark's audited tables to PostgreSQL's serving schemas, swapped in atomically."""
    settings = warehouse.settings
    if not (settings.postgres_dsn and settings.postgres_bi_password):
        raise dg.Failure(
            "CRM_ENGINE=spark publishes to PostgreSQL: set CRM_POSTGRES_DSN (the loader role) and "
            "CRM_POSTGRES_BI_PASSWORD (bi_reader's); scripts/postgres.sh starts a local server",
            allow_retries=False,
        )
    # psycopg and pyspark load only where Spark publishes.
    from crm_warehouse.publish_postgres import publish_spark_to_postgres
    from crm_warehouse.warehouse.spark import spark_session

    try:
        result = publish_spark_to_postgres(
            spark_session(settings),
            settings.postgres_dsn,
            settings.postgres_bi_password,
            context.run_id,
            checks_passed=checks_passed,
        )
    except PublishError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from exc
    context.log.info(f"published {len(result.row_counts)} tables from Spark to PostgreSQL in {result.seconds:.1f} s")
    return dg.MaterializeResult(
        metadata={"target": "postgres", "checks_passed": checks_passed, **postgres_publish_metadata(result)}
    )


def build_publish_asset(upstream: Sequence[dg.AssetsDefinition], engine: str = "duckdb") -> dg.AssetsDefinition:
    """The serving asset of ``engine``, depending on every published-layer asset among ``upstream``."""
    published = sorted(
        {key for assets in upstream for key in assets.keys if key.path[0] in PUBLISHED_LAYERS},
        key=lambda k: k.to_user_string(),
    )
    on_spark = engine == "spark"

    @dg.asset(
        key=SERVING_KEY,
        deps=published,
        group_name="publish",
        kinds={"spark", "postgres"} if on_spark else {"duckdb"},
        owners=["team:data-engineering"],
        pool=WAREHOUSE_POOL,
        retry_policy=TRANSIENT_RETRY,
        description=(
            "PostgreSQL's serving schemas: Spark's audited marts and analytics tables, swapped in "
            "atomically with a publish_log. BI tools read them as bi_reader."
            if on_spark
            else "The BI serving file: audited marts and analytics tables, swapped in atomically "
            "with a publish_log. BI tools open it read-only."
        ),
    )
    def crm_serving(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        checks_passed = _checks_passed_in_run(context)
        if on_spark:
            return _publish_from_spark(context, warehouse, checks_passed)
        serving_path = Path(warehouse.serving_path)
        with warehouse.writer_turn(), warehouse.connect() as con:
            try:
                result = publish(con, serving_path, context.run_id, checks_passed)
            except PublishError as exc:
                raise dg.Failure(str(exc), allow_retries=False) from exc
            charts = _mart_charts(context, con)
        context.log.info(f"published {len(result.row_counts)} tables to {serving_path}")
        return dg.MaterializeResult(
            metadata={
                "serving_path": dg.MetadataValue.path(str(serving_path)),
                "tables": len(result.row_counts),
                "checks_passed": checks_passed,
                "row_counts": dg.MetadataValue.json(result.row_counts),
                **charts,
            }
        )

    return crm_serving
