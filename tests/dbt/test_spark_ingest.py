"""Ingestion on Spark keeps every promise of DuckDB's: the bad-input corpus delivered to both
engines gives the same raw tables, quarantine (file, line, raw record, reason), ledger and
unloaded files; a corrected re-delivery moves the same orphans; a run that stopped before its
ledger is repaired by the next run, exactly once.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from spark_engine import LocalSpark, raw_differences
from test_bad_input_corpus import BAD_DAY, BASE_DAY, COMPANIONS, KINDS, LOADS, baseline_files

from crm_warehouse.contracts import CONTRACTS, RAW_SCHEMA
from crm_warehouse.ingest import TableResult, ingest_table
from crm_warehouse.ingest_spark import SparkRawStore
from crm_warehouse.warehouse.spark import SparkSqlConnection

pytestmark = [pytest.mark.slow, pytest.mark.spark]

#: Kinds that re-deliver a baseline file: delivered in a run of their own, after the corpus.
REDELIVERIES = [k for k in KINDS if k.path in {c.file_name(BASE_DAY) for c in CONTRACTS} and k.outcome == LOADS]


class StoppedRun(Exception):
    """A run that stops half-way (a killed process, a lost executor)."""


def _corpus_files() -> dict[str, bytes]:
    """Every kind of the corpus that needs no contract change, each at a path of its own: kinds
    delivered as the source's file of the bad day get a day each (a name's date decides nothing else)."""
    files: dict[str, bytes] = {}
    first = date.fromisoformat("2024-04-01")
    for number, kind in enumerate(k for k in KINDS if not k.contract_changes and k not in REDELIVERIES):
        relative = kind.relative
        if relative == kind.contract.file_name(BAD_DAY):
            relative = kind.contract.file_name((first + timedelta(days=number)).isoformat())
        files.setdefault(relative, kind.data())
    files.update(dict(COMPANIONS.values()))
    return files


def _write(landing: Path, files: dict[str, bytes]) -> None:
    for relative, content in files.items():
        (landing / relative).parent.mkdir(parents=True, exist_ok=True)
        (landing / relative).write_bytes(content)


def _ingest(target: duckdb.DuckDBPyConnection | SparkRawStore, landing: Path, run_id: str) -> list[TableResult]:
    return [ingest_table(target, contract, landing, run_id=run_id) for contract in CONTRACTS]


def _summary(results: list[TableResult]) -> list[tuple]:
    return [
        (r.table, len(r.files), r.skipped_files, r.rows_loaded, r.rows_quarantined, r.rows_moved_to_quarantine)
        + (sorted(f.path for f in r.refused), sorted(f.path for f in r.unrecognised))
        for r in results
    ]


def test_ingestion_on_spark_gives_duckdbs_tables_for_every_kind_of_bad_input(
    local_spark_server: LocalSpark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    with (
        duckdb.connect(str(tmp_path / "warehouse.duckdb")) as duck,
        SparkSqlConnection(local_spark_server.settings) as spark,
        duckdb.connect() as parse,
    ):
        # Another test's raw tables (the dbt build's) may be there: this one starts from none.
        spark.execute_spark(f"drop database if exists {RAW_SCHEMA} cascade")
        store = SparkRawStore(spark, parse)

        runs = {
            "baseline": baseline_files(),
            "corpus": _corpus_files(),
            "redelivery": {k.relative: k.data() for k in REDELIVERIES},
        }
        for run_id, files in runs.items():
            _write(landing, files)
            on_duckdb, on_spark = _ingest(duck, landing, run_id), _ingest(store, landing, run_id)
            assert _summary(on_spark) == _summary(on_duckdb), run_id
            assert raw_differences(duck, spark) == {}, run_id

        assert sum(r.rows_moved_to_quarantine for r in on_duckdb) == len(REDELIVERIES) == 2
        # What the corpus exercises, on Spark as on DuckDB (the tables are equal).
        assert spark.execute("select count(*), count(distinct reason) from raw.quarantine").fetchone() == (46, 20)
        unloaded = spark.execute("select outcome, count(*) from raw.unloaded_files group by 1 order by 1").fetchall()
        assert unloaded == [("not_recognised", 7), ("refused", 17)]

        # A run that stops after writing a file's rows, before its ledger entry: the next run
        # loads the file again into its emptied partitions, and nothing is doubled.
        relative = "crm/2024-05-20.csv"
        (landing / relative).write_bytes((landing / "crm/2024-03-03.csv").read_bytes().replace(b"C20", b"C30"))
        assert [len(r.files) for r in _ingest(duck, landing, "late")][1] == 1

        rewrite_ledger = SparkRawStore._rewrite_ledger

        def stop(store: SparkRawStore, *args: object, **kwargs: object) -> None:
            if kwargs.get("added"):  # the entries of a loaded batch (not a remembered modification time)
                raise StoppedRun("the run stopped before its ledger")
            rewrite_ledger(store, *args, **kwargs)

        with monkeypatch.context() as patched:
            patched.setattr(SparkRawStore, "_rewrite_ledger", stop)
            with pytest.raises(StoppedRun):
                _ingest(store, landing, "stopped")
        assert spark.execute(f"select count(*) from raw.crm_customers where _source_file = '{relative}'").fetchone()[0]
        again = {r.table: r for r in _ingest(store, landing, "after_stop")}
        assert (len(again["crm_customers"].files), again["crm_customers"].rows_loaded) == (1, 1)
        assert raw_differences(duck, spark) == {}
