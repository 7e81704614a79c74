"""The Dagster code location: assembles the parts, does no work of its own."""

import dagster as dg

from orchestration.assets.dbt import dbt_resource, dbt_scored_models, dbt_warehouse_models
from orchestration.assets.ingestion import ingestion_assets
from orchestration.assets.publish import build_publish_asset
from orchestration.checks.quality import quality_checks
from orchestration.resources import WarehouseResource, warehouse_from_settings

full_pipeline = dg.define_asset_job(
    "full_pipeline",
    selection=dg.AssetSelection.all(),
    description="Ingest every source, build and test the dbt warehouse, score the models, publish.",
)


def build_definitions(warehouse: WarehouseResource) -> dg.Definitions:
    """Every asset, check, job, schedule and sensor, bound to ``warehouse``."""
    built_assets = [*ingestion_assets, dbt_warehouse_models, dbt_scored_models]
    return dg.Definitions(
        assets=[*built_assets, build_publish_asset(built_assets)],
        asset_checks=quality_checks,
        jobs=[full_pipeline],
        resources={"warehouse": warehouse, "dbt": dbt_resource()},
        # DuckDB allows one writer: the steps of a run execute one after another.
        executor=dg.in_process_executor,
    )


defs = build_definitions(warehouse_from_settings())
