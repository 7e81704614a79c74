"""Optional PostgreSQL serving target of the DuckDB engine, switched on by ``CRM_POSTGRES_DSN``.

Reads the published serving file (read-only), so it needs no warehouse write slot.
"""

from pathlib import Path

import dagster as dg

from crm_warehouse.publish import PublishError
from crm_warehouse.settings import Settings
from orchestration.assets.publish import SERVING_KEY, postgres_publish_metadata
from orchestration.resources import WarehouseResource

POSTGRES_KEY = dg.AssetKey(["serving", "postgres_marts"])


def postgres_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    """The PostgreSQL publish asset, or nothing when no DSN is configured.

    On Spark there is no serving file to copy: the serving step itself publishes to
    PostgreSQL (:func:`orchestration.assets.publish.build_publish_asset`).
    """
    if not settings.postgres_dsn or settings.engine == "spark":
        return []
    # psycopg loads only where PostgreSQL serving is configured.
    from crm_warehouse.publish_postgres import READER_ROLE, publish_to_postgres

    if not settings.postgres_bi_password:
        raise ValueError(
            f"CRM_POSTGRES_DSN is set but CRM_POSTGRES_BI_PASSWORD is not: set the password of {READER_ROLE}"
        )
    dsn = settings.postgres_dsn
    reader_password = settings.postgres_bi_password

    @dg.asset(
        key=POSTGRES_KEY,
        deps=[SERVING_KEY],
        group_name="publish",
        kinds={"postgres"},
        owners=["team:data-engineering"],
        description=(
            "The serving file's marts and analytics copied to PostgreSQL, swapped in atomically; "
            f"BI reads schema marts as {READER_ROLE}."
        ),
    )
    def postgres_marts(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        try:
            result = publish_to_postgres(
                Path(warehouse.serving_path), dsn, reader_password, context.run_id, settings=warehouse.settings
            )
        except PublishError as exc:
            raise dg.Failure(str(exc)) from exc
        context.log.info(f"published {len(result.row_counts)} tables to PostgreSQL in {result.seconds:.1f} s")
        return dg.MaterializeResult(metadata=postgres_publish_metadata(result))

    return [postgres_marts]
