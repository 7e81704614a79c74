"""Publish: the audited marts and analytics tables become the BI serving file.

Downstream of every mart and analytics asset, so a failed blocking check anywhere
upstream stops the run before this step and yesterday's serving copy stays.
"""

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from crm_warehouse.publish import PublishError, publish
from orchestration.metadata import image_metadata
from orchestration.resources import TRANSIENT_RETRY, WAREHOUSE_POOL, WarehouseResource

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


def build_publish_asset(upstream: Sequence[dg.AssetsDefinition]) -> dg.AssetsDefinition:
    """The serving asset, depending on every published-layer asset among ``upstream``."""
    published = sorted(
        {key for assets in upstream for key in assets.keys if key.path[0] in PUBLISHED_LAYERS},
        key=lambda k: k.to_user_string(),
    )

    @dg.asset(
        key=SERVING_KEY,
        deps=published,
        group_name="publish",
        kinds={"duckdb"},
        owners=["team:data-engineering"],
        pool=WAREHOUSE_POOL,
        retry_policy=TRANSIENT_RETRY,
        description=(
            "The BI serving file: audited marts and analytics tables, swapped in atomically "
            "with a publish_log. BI tools open it read-only."
        ),
    )
    def crm_serving(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        serving_path = Path(warehouse.serving_path)
        checks_passed = _checks_passed_in_run(context)
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
