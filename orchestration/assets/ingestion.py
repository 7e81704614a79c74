"""Ingestion assets: one per source table, each loading new landing files into ``raw``.

The real work is :mod:`crm_warehouse.ingest`; these assets only call it and report.
"""

from datetime import date

import dagster as dg

from crm_warehouse.contracts import CONTRACTS, SourceContract
from crm_warehouse.ingest import IngestionError, ingest_table
from orchestration.resources import WAREHOUSE_POOL, WarehouseResource

INGESTION_GROUP = "ingestion"
QUARANTINE_CHECK = "quarantine_rate"


def raw_asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", table])


def _reasons_markdown(reasons: dict[str, int]) -> str:
    if not reasons:
        return "No rows quarantined in this run."
    rows = "\n".join(f"| {count} | {reason.replace('|', '/')} |" for reason, count in reasons.items())
    return "| rows | reason |\n|---:|---|\n" + rows


class IngestionConfig(dg.Config):
    """Run config of an ingestion asset. A backfill sets both dates (YYYY-MM-DD)."""

    reload_from: str | None = None
    reload_to: str | None = None

    def reload_dates(self) -> tuple[date, date] | None:
        if not (self.reload_from and self.reload_to):
            return None
        first, last = date.fromisoformat(self.reload_from), date.fromisoformat(self.reload_to)
        if first > last:
            raise dg.Failure(f"backfill range is empty: {first} is after {last}")
        return first, last


def _ingestion_asset(contract: SourceContract) -> dg.AssetsDefinition:
    @dg.asset(
        key=raw_asset_key(contract.table),
        group_name=INGESTION_GROUP,
        kinds={"duckdb", contract.format},
        description=f"{contract.description} Loaded from landing/{contract.file_glob} into raw.{contract.table}.",
        deps=[raw_asset_key(fk.references_table) for fk in contract.foreign_keys],
        owners=["team:data-engineering"],
        tags={"layer": "raw", "source_system": contract.system},
        metadata={"contract_columns": ", ".join(contract.column_names)},
        pool=WAREHOUSE_POOL,
        check_specs=[
            dg.AssetCheckSpec(
                QUARANTINE_CHECK,
                asset=raw_asset_key(contract.table),
                blocking=True,
                description="Share of this run's rows of the source that broke the contract "
                "stays at or below CRM_MAX_QUARANTINE_RATE; a mostly broken delivery stops the run.",
            )
        ],
    )
    def ingest(
        context: dg.AssetExecutionContext, config: IngestionConfig, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        with warehouse.connect() as con:
            try:
                result = ingest_table(
                    con,
                    contract,
                    warehouse.landing_dir,
                    context.run_id,
                    progress=context.log.info,
                    reload_dates=config.reload_dates(),
                )
            except IngestionError as exc:
                raise dg.Failure(str(exc)) from exc
        context.log.info(
            f"{contract.table}: {len(result.files)} new files, {result.skipped_files} already loaded; "
            f"{result.rows_loaded} rows loaded, {result.rows_quarantined} quarantined"
        )
        rate = result.rows_quarantined / result.rows_read if result.rows_read else 0.0
        return dg.MaterializeResult(
            check_results=[
                dg.AssetCheckResult(
                    check_name=QUARANTINE_CHECK,
                    passed=rate <= warehouse.max_quarantine_rate,
                    severity=dg.AssetCheckSeverity.ERROR,
                    metadata={
                        "quarantine_rate": rate,
                        "max_quarantine_rate": warehouse.max_quarantine_rate,
                        "rows_read": result.rows_read,
                        "rows_quarantined": result.rows_quarantined,
                    },
                    description=f"{rate:.2%} of {result.rows_read} rows read in this run were quarantined",
                )
            ],
            metadata={
                "dagster/row_count": result.table_rows,
                "files_loaded": len(result.files),
                "files_skipped_already_loaded": result.skipped_files,
                "rows_read": result.rows_read,
                "rows_loaded": result.rows_loaded,
                "rows_quarantined": result.rows_quarantined,
                "quarantine_reasons": dg.MetadataValue.md(_reasons_markdown(result.quarantine_reasons)),
            }
        )

    return ingest


ingestion_assets = [_ingestion_asset(contract) for contract in CONTRACTS]
