"""A local Spark for the tests (``scripts/spark.sh`` on free ports under a temp folder), and table comparison.

The tests ingest the test company on Spark, copy the scored analytics tables DuckDB holds
(:func:`crm_warehouse.warehouse.spark.copy_duckdb_schema`), build the dbt project there and
compare every table with DuckDB's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from crm_warehouse.contracts import CONTRACTS, LEDGER_TABLE, RAW_SCHEMA
from crm_warehouse.settings import PROJECT_ROOT, Settings, load_settings
from crm_warehouse.warehouse.spark import SparkSqlConnection, spark_session
from crm_warehouse.warehouse.sql import qualified_name

#: Relative tolerance for numbers: the engines add doubles in different orders.
REL_TOLERANCE = 1e-9
#: Below this a number is zero: a sum that cancels out can leave 1e-13 in one order and 0 in another.
ABS_TOLERANCE = 1e-12


@dataclass(frozen=True)
class LocalSpark:
    """A running local Spark: the settings that point at it, and the environment dbt needs for it."""

    settings: Settings
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def local_spark(root: Path, driver_memory: str | None = "1g") -> Iterator[LocalSpark]:
    """``scripts/spark.sh`` with its metastore and warehouse under ``root``, on free ports; stopped on exit.
    ``driver_memory``: the JVM's heap (None: the script's default). Also what benchmarks/pipeline.py starts."""
    env = dict(os.environ)
    env.update(
        CRM_DATA_DIR=str(root),
        CRM_ENGINE="spark",
        CRM_SPARK_THRIFT_PORT=str(_free_port()),
        CRM_SPARK_CONNECT_URL=f"sc://127.0.0.1:{_free_port()}",
    )
    if driver_memory:
        env["CRM_SPARK_DRIVER_MEMORY"] = driver_memory
    started = subprocess.run(
        ["bash", str(PROJECT_ROOT / "scripts" / "spark.sh")], env=env, capture_output=True, text=True, check=False
    )
    settings = load_settings(env)
    pid_file = settings.spark_metastore_dir / "thriftserver.pid"
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        # The last line is the configuration that points at the server.
        assert started.stdout.strip().splitlines()[-1].startswith("CRM_ENGINE=spark ")
        yield LocalSpark(settings=settings, env=env)
    finally:
        # Release this process's Spark Connect session while the server is up: left for exit,
        # the client retried the release against the stopped server for minutes (4 min in CI).
        if started.returncode == 0:
            spark_session(settings).stop()
        if pid_file.exists():
            # spark.sh starts the server in its own session: stop the whole group.
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    """Decimals as floats, timestamps without time zone, columns in name order."""
    frame = frame.reindex(sorted(frame.columns), axis=1).copy()
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object and values.map(lambda v: isinstance(v, Decimal)).any():
            frame[column] = values.map(lambda v: None if v is None or pd.isna(v) else float(v)).astype("float64")
        elif isinstance(values.dtype, pd.DatetimeTZDtype):
            frame[column] = values.dt.tz_localize(None)
    return frame


def _sorted(frame: pd.DataFrame, numeric: list[str]) -> pd.DataFrame:
    """Rows in one order on both engines: by the other columns as text first, then by the numbers
    (rounded, so the last digits do not decide; an int column may hold floats where it has nulls)."""
    keys = [frame[c].astype("string") for c in frame.columns if c not in numeric]
    keys += [frame[c].astype("float64").round(6) for c in numeric]
    ordered = pd.concat(keys, axis=1, keys=range(len(keys)))
    return frame.loc[ordered.sort_values(list(ordered.columns), na_position="first").index].reset_index(drop=True)


def table_differences(expected: pd.DataFrame, actual: pd.DataFrame) -> list[str]:
    """How ``actual`` differs from ``expected``: row count, columns, then each column's values
    (numbers within :data:`REL_TOLERANCE` relative, everything else exactly)."""
    if len(expected) != len(actual):
        return [f"{len(actual)} rows, expected {len(expected)}"]
    if sorted(expected.columns) != sorted(actual.columns):
        return [f"columns {sorted(actual.columns)}, expected {sorted(expected.columns)}"]
    expected, actual = _normalised(expected), _normalised(actual)
    numeric = [
        c
        for c in expected.columns
        if pd.api.types.is_numeric_dtype(expected[c])
        and pd.api.types.is_numeric_dtype(actual[c])
        and not pd.api.types.is_bool_dtype(expected[c])
    ]
    expected, actual = _sorted(expected, numeric), _sorted(actual, numeric)
    problems = []
    for column in expected.columns:
        mine, theirs = expected[column], actual[column]
        if pd.api.types.is_numeric_dtype(mine) and pd.api.types.is_numeric_dtype(theirs):
            left, right = mine.to_numpy(dtype="float64", na_value=np.nan), theirs.to_numpy("float64", na_value=np.nan)
            same = np.isclose(left, right, rtol=REL_TOLERANCE, atol=ABS_TOLERANCE, equal_nan=True)
        else:
            same = (mine.astype("string").fillna("<null>") == theirs.astype("string").fillna("<null>")).to_numpy()
        if not same.all():
            first = int(np.argmin(same))
            problems.append(
                f"{column}: {int((~same).sum())} rows differ, e.g. {theirs.iloc[first]!r} against {mine.iloc[first]!r}"
            )
    return problems


#: Columns that say when or in which run a row was written: they differ between two runs by nature.
WHEN = {"_loaded_at", "_run_id", "quarantined_at", "run_id", "loaded_at", "seen_at", "file_modified_ns"}


def _raw_tables(con: duckdb.DuckDBPyConnection | SparkSqlConnection) -> dict[str, pd.DataFrame]:
    """Every table of the raw schema without the columns that say when it was written; a ledger
    entry's supersession as a flag."""
    tables = {}
    for name in [c.table for c in CONTRACTS] + ["quarantine", LEDGER_TABLE, "unloaded_files"]:
        frame = con.execute(f"select * from {qualified_name(RAW_SCHEMA, name)}").df()
        if name == LEDGER_TABLE:
            frame["superseded"] = frame.pop("superseded_at").notna()
        if name == "quarantine":
            frame["raw_record"] = frame["raw_record"].map(_as_json_value)
        tables[name] = frame.drop(columns=[c for c in frame.columns if c in WHEN])
    return tables


def _as_json_value(record: str | None) -> str | None:
    """A JSON object's text in one spelling: a row moved to the quarantine after loading is kept as
    the JSON of its typed values, which Spark spells in its own way (``10.0`` for DuckDB's ``10.00``)."""
    try:
        value = json.loads(record)
    except (TypeError, ValueError):
        return record
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else record


def raw_differences(duck: duckdb.DuckDBPyConnection, spark: SparkSqlConnection) -> dict[str, list[str]]:
    """How Spark's raw schema differs from DuckDB's, by table (:func:`table_differences`); empty when equal."""
    expected, actual = _raw_tables(duck), _raw_tables(spark)
    problems = {name: table_differences(expected[name], actual[name]) for name in expected}
    return {name: found for name, found in problems.items() if found}
