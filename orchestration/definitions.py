"""The Dagster code location: assembles the parts, does no work of its own."""

from collections.abc import Sequence

import dagster as dg

from crm_warehouse.settings import load_settings
from orchestration.assets.analytics import analytics_assets, model_assets
from orchestration.assets.dbt import dbt_resource, dbt_scored_models, dbt_warehouse_models, exposure_specs
from orchestration.assets.ingestion import ingestion_assets
from orchestration.assets.postgres import postgres_assets
from orchestration.assets.publish import SERVING_KEY, build_publish_asset
from orchestration.checks.quality import quality_checks
from orchestration.ops import build_ops_definitions
from orchestration.resources import RECENT_ROWS, VALIDATED_ROWS_TAG, WarehouseResource

MODEL_FITTING = dg.AssetSelection.assets(*model_assets)

full_pipeline = dg.define_asset_job(
    "full_pipeline",
    selection=dg.AssetSelection.all(),
    description="Everything, models fitted afresh: ingest, dbt, fit and score, checks, publish (make run).",
)
daily_pipeline = dg.define_asset_job(
    "daily_pipeline",
    selection=dg.AssetSelection.all() - MODEL_FITTING,
    description=(
        "The daily run: ingest new files, build dbt incrementally, score with the saved models, "
        "test and check the rows it wrote, publish."
    ),
    tags={VALIDATED_ROWS_TAG: RECENT_ROWS},
)
retrain_models = dg.define_asset_job(
    "retrain_models",
    selection=MODEL_FITTING,
    description="Weekly: refit the CLV and churn models on the current warehouse and save them by model id.",
)


def build_definitions(warehouse: WarehouseResource, extra_assets: Sequence[dg.AssetsDefinition] = ()) -> dg.Definitions:
    """Every asset, check, job, schedule and sensor, bound to ``warehouse``.

    ``extra_assets``: optional publish targets (PostgreSQL when configured).
    """
    built_assets = [*ingestion_assets, dbt_warehouse_models, *analytics_assets, dbt_scored_models]
    schedules, sensors = build_ops_definitions(daily_pipeline, retrain_models, warehouse.settings)
    return dg.Definitions(
        assets=[
            *built_assets,
            build_publish_asset(built_assets, warehouse.settings.engine),
            *extra_assets,
            *exposure_specs([SERVING_KEY]),
        ],
        asset_checks=quality_checks,
        jobs=[full_pipeline, daily_pipeline, retrain_models],
        schedules=schedules,
        sensors=sensors,
        resources={"warehouse": warehouse, "dbt": dbt_resource(warehouse.settings)},
        # DuckDB allows one writer: the steps of a run execute one after another.
        executor=dg.in_process_executor,
    )


# The configuration is read once, here; everything below receives it.
_settings = load_settings()
defs = build_definitions(WarehouseResource.from_settings(_settings), extra_assets=postgres_assets(_settings))
