"""Ingestion assets: one per source table, each loading new landing files into ``raw``.

The real work is :mod:`crm_warehouse.ingest`; these assets only call it and report.
"""

from datetime import date

import dagster as dg

from crm_warehouse.contracts import CONTRACTS, SourceContract
from crm_warehouse.ingest import IngestionError, ingest_table, source_freshness
from orchestration.resources import TRANSIENT_RETRY, WAREHOUSE_POOL, WarehouseResource

INGESTION_GROUP = "ingestion"
QUARANTINE_CHECK = "quarantine_rate"
FRESHNESS_CHECK = "freshness"


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
            raise dg.Failure(f"backfill range is empty: {first} is after {last}", allow_retries=False)
        return first, last


def _freshness_results(contract: SourceContract, newest: date | None, as_of: date | None) -> list[dg.AssetCheckResult]:
    if contract.max_lag_days is None:
        return []
    lag = (as_of - newest).days if newest and as_of else None
    return [
        dg.AssetCheckResult(
            check_name=FRESHNESS_CHECK,
            passed=lag is not None and lag <= contract.max_lag_days,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "newest_record": str(newest),
                "as_of_date": str(as_of),
                "lag_days": lag if lag is not None else -1,
                "max_lag_days": contract.max_lag_days,
            },
            description=(
                f"newest {contract.loaded_at_field} {newest}, {lag} days before the as-of date {as_of}"
                if lag is not None
                else "no records yet"
            ),
        )
    ]


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
        retry_policy=TRANSIENT_RETRY,
        check_specs=[
            dg.AssetCheckSpec(
                QUARANTINE_CHECK,
                asset=raw_asset_key(contract.table),
                blocking=True,
                description="Share of this run's rows of the source that broke the contract "
                "stays at or below CRM_MAX_QUARANTINE_RATE; a mostly broken delivery stops the run.",
            ),
            *(
                [
                    dg.AssetCheckSpec(
                        FRESHNESS_CHECK,
                        asset=raw_asset_key(contract.table),
                        description=f"The newest {contract.loaded_at_field} is at most {contract.max_lag_days} "
                        "days before the run's as-of date (CRM_AS_OF_DATE, default the latest export date "
                        "of any source). Warns, does not block.",
                    )
                ]
                if contract.max_lag_days is not None
                else []
            ),
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
                raise dg.Failure(str(exc), allow_retries=False) from exc
            newest, as_of = source_freshness(con, contract, warehouse.as_of)
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
                ),
                *_freshness_results(contract, newest, as_of),
            ],
            metadata={
                "dagster/row_count": result.table_rows,
                "files_loaded": len(result.files),
                "files_skipped_already_loaded": result.skipped_files,
                "rows_read": result.rows_read,
                "rows_loaded": result.rows_loaded,
                "rows_quarantined": result.rows_quarantined,
                "quarantine_reasons": dg.MetadataValue.md(_reasons_markdown(result.quarantine_reasons)),
            },
        )

    return ingest


ingestion_assets = [_ingestion_asset(contract) for contract in CONTRACTS]
