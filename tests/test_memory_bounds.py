"""Every DuckDB connection of the project is bounded by the configuration's memory limit (issue 15)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crm_warehouse.settings import GIB, PROJECT_ROOT, default_duckdb_memory_limit, load_settings
from crm_warehouse.warehouse.duckdb_connection import connect


@pytest.mark.parametrize(
    ("machine", "limit"),
    [(2 * GIB, "1024MiB"), (6 * GIB, "1536MiB"), (24 * GIB, "2048MiB"), (512 * GIB, "2048MiB")],
)
def test_the_default_limit_is_a_quarter_of_the_machine_between_one_and_two_gib(machine: int, limit: str):
    assert default_duckdb_memory_limit(machine) == limit


def test_a_limit_that_is_not_an_amount_of_memory_is_refused():
    with pytest.raises(ValueError, match="CRM_DUCKDB_MEMORY_LIMIT='lots' is not an amount of memory"):
        load_settings({"CRM_DUCKDB_MEMORY_LIMIT": "lots"})
    with pytest.raises(ValueError, match="not an amount of memory"):
        load_settings({"CRM_DUCKDB_MEMORY_LIMIT": "3"})


def test_a_connection_carries_the_configured_limit_and_spill_folder(tmp_path: Path):
    settings = load_settings({"CRM_DATA_DIR": str(tmp_path), "CRM_DUCKDB_MEMORY_LIMIT": "700MiB"})
    with connect(settings, tmp_path / "w.duckdb") as con:
        limit, temp, background_purge = con.execute(
            "select current_setting('memory_limit'), current_setting('temp_directory'),"
            " current_setting('allocator_background_threads')"
        ).fetchone()
    assert limit == "700.0 MiB"
    assert background_purge is True
    assert Path(temp) == tmp_path / "tmp" / "duckdb"
    assert Path(temp).is_dir()


def test_the_resource_connection_is_bounded_too(tmp_path: Path):
    from orchestration.resources import WarehouseResource

    settings = load_settings({"CRM_DATA_DIR": str(tmp_path), "CRM_DUCKDB_MEMORY_LIMIT": "1GiB"})
    with WarehouseResource(settings_json=settings.to_json()).connect() as con:
        assert con.execute("select current_setting('memory_limit')").fetchone() == ("1.0 GiB",)


def test_a_query_larger_than_the_limit_spills_and_finishes(tmp_path: Path):
    settings = load_settings({"CRM_DATA_DIR": str(tmp_path), "CRM_DUCKDB_MEMORY_LIMIT": "64MiB"})
    with connect(settings, tmp_path / "w.duckdb") as con:
        con.execute("set threads = 1")
        # ~160 MB of distinct strings sorted: more than the limit holds, so DuckDB must spill.
        rows = con.execute(
            "select count(*), count(distinct s) from "
            "(select md5(i::varchar) || md5((i + 1)::varchar) as s from range(2000000) t(i) order by s)"
        ).fetchone()
    assert rows == (2_000_000, 2_000_000)


def test_no_code_opens_duckdb_outside_the_bounded_connection():
    """``duckdb.connect`` appears only in the one module that applies the bounds."""
    pattern = re.compile(r"duckdb\.connect\(")
    offenders = [
        str(path.relative_to(PROJECT_ROOT))
        for folder in ("crm_warehouse", "orchestration")
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py"))
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == ["crm_warehouse/warehouse/duckdb_connection.py"]
