"""Ingestion of whole simulated companies: clean, dirty, and re-run."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from crm_simulator import SimulationConfig, simulate_company
from crm_warehouse.contracts import CONTRACTS
from crm_warehouse.ingest import ingest_all
from crm_warehouse.settings import load_settings


@pytest.fixture(scope="module")
def dirty_company(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("dirty")
    simulate_company(
        SimulationConfig(customers=600, days=400, seed=11, dirty_rate=0.02), root / "landing", root / "truth"
    )
    settings = load_settings({"CRM_DATA_DIR": str(root)})
    ingest_all(settings, run_id="dirty-run")
    return root, settings.warehouse_path


def test_every_injected_bad_row_is_quarantined_and_nothing_else(dirty_company):
    root, warehouse = dirty_company
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute(
            "create temp table injected as select * from read_parquet(?)",
            [str(root / "truth" / "dirty_records.parquet")],
        )
        injected = con.execute("select count(*) from injected").fetchone()[0]
        kinds = {k for (k,) in con.execute("select distinct kind from injected").fetchall()}
        quarantined = con.execute("select count(*) from raw.quarantine").fetchone()[0]
        # Non-duplicates are quarantined at the very line the simulator recorded.
        missed = con.execute(
            """select m.source_table, m.file, m.line, m.kind from injected m
               anti join raw.quarantine q
                 on q.source_table = m.source_table and q.source_file = m.file and q.source_line = m.line
               where m.kind <> 'duplicate'"""
        ).fetchall()
        # Of two identical lines either may be called the duplicate: match on the text.
        duplicates_per_file = con.execute(
            """select m.file, count(*) from injected m where m.kind = 'duplicate' group by 1 order by 1"""
        ).fetchall()
        quarantined_duplicates = con.execute(
            """select source_file, count(*) from raw.quarantine where reason like 'duplicate key%'
               group by 1 order by 1"""
        ).fetchall()
    assert injected > 100
    assert {"wrong_type", "missing_key", "duplicate", "future_date", "orphan_customer", "broken_quoting"} <= kinds
    assert missed == []
    assert duplicates_per_file == quarantined_duplicates
    assert quarantined == injected


def test_ledger_proves_every_row_of_every_file_is_accounted_for(dirty_company):
    root, warehouse = dirty_company
    with duckdb.connect(str(warehouse), read_only=True) as con:
        unbalanced = con.execute(
            "select file_path from raw.ingestion_ledger where rows_read <> rows_loaded + rows_quarantined"
        ).fetchall()
        files_in_ledger = con.execute("select count(*) from raw.ingestion_ledger").fetchone()[0]
        for contract in CONTRACTS:
            loaded = con.execute(
                "select coalesce(sum(rows_loaded), 0) from raw.ingestion_ledger where source_table = ?",
                [contract.table],
            ).fetchone()[0]
            in_table = con.execute(f"select count(*) from raw.{contract.table}").fetchone()[0]
            assert loaded == in_table, contract.table
    landing_files = sum(len(list((root / "landing").glob(c.file_glob))) for c in CONTRACTS)
    assert unbalanced == []
    assert files_in_ledger == landing_files


def test_rerun_loads_nothing_twice(dirty_company):
    root, warehouse = dirty_company
    results = ingest_all(load_settings({"CRM_DATA_DIR": str(root)}), run_id="second-run")
    assert sum(len(r.files) for r in results) == 0
    assert sum(r.skipped_files for r in results) > 0
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from raw.ingestion_ledger where run_id = 'second-run'").fetchone() == (0,)


def test_clean_company_quarantines_nothing(company, tmp_path):
    settings = load_settings({"CRM_DATA_DIR": str(tmp_path), "CRM_LANDING_DIR": str(company.landing)})
    results = ingest_all(settings, run_id="clean")
    assert all(r.rows_quarantined == 0 for r in results), {r.table: r.quarantine_reasons for r in results}
    assert {r.table: r.rows_loaded > 0 for r in results} == {c.table: True for c in CONTRACTS}
