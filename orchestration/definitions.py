"""The Dagster code location: assembles the parts, does no work of its own."""

from __future__ import annotations

import dagster as dg
from orchestration.assets.dbt import dbt_resource, dbt_scored_models, dbt_warehouse_models
from orchestration.assets.ingestion import ingestion_assets
from orchestration.assets.publish import build_publish_asset
from orchestration.resources import warehouse_from_settings

full_pipeline = dg.define_asset_job(
    "full_pipeline",
    selection=dg.AssetSelection.all(),
    description="Ingest every source, build and test the dbt warehouse, score the models.",
)

built_assets = [*ingestion_assets, dbt_warehouse_models, dbt_scored_models]

defs = dg.Definitions(
    assets=[*built_assets, build_publish_asset(built_assets)],
    jobs=[full_pipeline],
    resources={
        "warehouse": warehouse_from_settings(),
        "dbt": dbt_resource(),
    },
    # DuckDB allows one writer: steps of a run execute one after another in one process.
    executor=dg.in_process_executor,
)
