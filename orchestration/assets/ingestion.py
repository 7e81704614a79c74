"""Ingestion assets: one per source table, each loading new landing files into ``raw``.

The real work is :mod:`crm_warehouse.ingest`; these assets only call it and report.
"""

from datetime import date

import dagster as dg

from crm_warehouse.contracts import CONTRACTS, SourceContract
from crm_warehouse.ingest import (
    IngestionError,
    TableResult,
    ingest_table,
    quarantine_blocks,
    source_freshness,
)
from orchestration.resources import TRANSIENT_RETRY, WAREHOUSE_POOL, WarehouseResource

INGESTION_GROUP = "ingestion"
QUARANTINE_CHECK = "quarantine_rate"
FRESHNESS_CHECK = "freshness"
LANDING_FILES_CHECK = "landing_files"
# Files listed in a check's description; the metadata table lists them all.
LISTED_FILES = 5


def raw_asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", table])


def _reasons_markdown(reasons: dict[str, int]) -> str:
    if not reasons:
        return "No rows quarantined in this run."
    rows = "\n".join(f"| {count} | {reason.replace('|', '/')} |" for reason, count in reasons.items())
    return "| rows | reason |\n|---:|---|\n" + rows


def _unloaded_markdown(result: TableResult) -> str:
    files = [*result.refused, *result.unrecognised]
    if not files:
        return "Every landing file of this source was loaded or already loaded."
    rows = "\n".join(f"| {f.outcome} | {f.path} | {f.size} | {f.reason.replace('|', '/')} |" for f in files)
    return "| outcome | file | bytes | why |\n|---|---|---:|---|\n" + rows


def _landing_files_result(result: TableResult) -> dg.AssetCheckResult:
    """Refused files fail the check at error severity, files not recognised at warning; neither blocks."""
    files = [*result.refused, *result.unrecognised]
    shown = "; ".join(f.message() for f in files[:LISTED_FILES])
    more = f" and {len(files) - LISTED_FILES} more" if len(files) > LISTED_FILES else ""
    return dg.AssetCheckResult(
        check_name=LANDING_FILES_CHECK,
        passed=not files,
        severity=dg.AssetCheckSeverity.ERROR if result.refused else dg.AssetCheckSeverity.WARN,
        metadata={
            "files_refused": len(result.refused),
            "files_not_recognised": len(result.unrecognised),
            "unloaded_files": dg.MetadataValue.md(_unloaded_markdown(result)),
        },
        description=(shown + more) if files else "every landing file was loaded (or was already)",
    )


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
    if newest and as_of is None:
        # Before the first order is loaded there is no as-of date (resolve_as_of): nothing to judge against.
        return [
            dg.AssetCheckResult(
                check_name=FRESHNESS_CHECK,
                passed=True,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"newest_record": str(newest), "as_of_date": "None", "max_lag_days": contract.max_lag_days},
                description="not judged: no as-of date yet (no order loaded and CRM_AS_OF_DATE unset)",
            )
        ]
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
                description="This run's quarantined rows of the source stop the run only when there are at "
                "least CRM_MIN_QUARANTINE_ROWS of them and they are more than CRM_MAX_QUARANTINE_RATE "
                "(or CRM_MAX_QUARANTINE_RATE_<TABLE>) of the rows read; a mostly broken delivery stops the run.",
            ),
            dg.AssetCheckSpec(
                LANDING_FILES_CHECK,
                asset=raw_asset_key(contract.table),
                description="Every landing file of the source was loaded: a refused file (error severity) or a "
                "file in its folder not recognised as any source's (warning) is listed with the reason, "
                "also in raw.unloaded_files. Does not block.",
            ),
            *(
                [
                    dg.AssetCheckSpec(
                        FRESHNESS_CHECK,
                        asset=raw_asset_key(contract.table),
                        description=f"The newest {contract.loaded_at_field} is at most {contract.max_lag_days} "
                        "days before the run's as-of date (CRM_AS_OF_DATE, default the date of the latest "
                        "loaded order). Warns, does not block.",
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
        with warehouse.raw_store() as store:
            try:
                result = ingest_table(
                    store,
                    contract,
                    warehouse.landing_dir,
                    context.run_id,
                    progress=context.log.info,
                    reload_dates=config.reload_dates(),
                    batch_bytes=warehouse.settings.ingest_batch_bytes,
                    batch_values=warehouse.settings.ingest_batch_values,
                )
            except IngestionError as exc:
                raise dg.Failure(str(exc), allow_retries=False) from exc
            newest, as_of = source_freshness(store.sql, contract, warehouse.as_of)
        context.log.info(
            f"{contract.table}: {len(result.files)} new files, {result.skipped_files} already loaded; "
            f"{result.rows_loaded} rows loaded, {result.rows_quarantined} quarantined"
        )
        rate = result.rows_quarantined / result.rows_read if result.rows_read else 0.0
        max_rate = warehouse.quarantine_rate_for(contract.table)
        blocks = quarantine_blocks(result.rows_read, result.rows_quarantined, max_rate, warehouse.min_quarantine_rows)
        return dg.MaterializeResult(
            check_results=[
                dg.AssetCheckResult(
                    check_name=QUARANTINE_CHECK,
                    passed=not blocks,
                    severity=dg.AssetCheckSeverity.ERROR,
                    metadata={
                        "quarantine_rate": rate,
                        "max_quarantine_rate": max_rate,
                        "min_quarantine_rows": warehouse.min_quarantine_rows,
                        "rows_read": result.rows_read,
                        "rows_quarantined": result.rows_quarantined,
                        "quarantine_reasons": dg.MetadataValue.md(_reasons_markdown(result.quarantine_reasons)),
                    },
                    description=f"{result.rows_quarantined} of {result.rows_read} rows read in this run "
                    f"({rate:.2%}) were quarantined; the run stops from {warehouse.min_quarantine_rows} rows "
                    f"above {max_rate:.2%}",
                ),
                _landing_files_result(result),
                *_freshness_results(contract, newest, as_of),
            ],
            metadata={
                "dagster/row_count": result.table_rows,
                "files_loaded": len(result.files),
                "files_skipped_already_loaded": result.skipped_files,
                "rows_read": result.rows_read,
                "rows_loaded": result.rows_loaded,
                "rows_quarantined": result.rows_quarantined,
                "rows_moved_to_quarantine": result.rows_moved_to_quarantine,
                "files_refused": len(result.refused),
                "files_not_recognised": len(result.unrecognised),
                "quarantine_reasons": dg.MetadataValue.md(_reasons_markdown(result.quarantine_reasons)),
            },
        )

    return ingest


ingestion_assets = [_ingestion_asset(contract) for contract in CONTRACTS]
