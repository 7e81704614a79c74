"""Optional PostgreSQL serving target, switched on by ``CRM_POSTGRES_DSN``.

Reads the published serving file (read-only), so it needs no warehouse write slot.
"""

from pathlib import Path

import dagster as dg

from crm_warehouse.publish import PublishError
from crm_warehouse.settings import Settings
from orchestration.assets.publish import SERVING_KEY
from orchestration.resources import WarehouseResource

POSTGRES_KEY = dg.AssetKey(["serving", "postgres_marts"])


def postgres_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    """The PostgreSQL publish asset, or nothing when no DSN is configured."""
    if not settings.postgres_dsn:
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
        return dg.MaterializeResult(
            metadata={
                "tables": len(result.row_counts),
                "rows": sum(result.row_counts.values()),
                "seconds": round(result.seconds, 2),
                "swap_attempts": result.swap_attempts,
                "row_counts": dg.MetadataValue.json(result.row_counts),
            }
        )

    return [postgres_marts]
