"""How near ingestion's own SQL can come to DuckDB's typed read, on one batch of one source.

Not a test: prints a table and writes ``benchmarks/results/ingest_floor_gap.json`` (one entry per source).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/ingest_floor_gap.py --landing /path/to/landing
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/ingest_floor_gap.py --customers 100000  # simulates

The middle batch (``CRM_INGEST_BATCH_BYTES``, ``CRM_INGEST_BATCH_VALUES``) of ``--table`` (default: order lines),
in a warehouse where the tables it refers to are loaded first by ingestion, timed as:

- *floor*: DuckDB's typed read into a table of the database (``benchmarks/pipeline.py``'s floor);
- *read as text*: ingestion's ``_read_batch`` (DuckDB's reader, every field text);
- *row rules to raw*: each row typed and judged alone (the contract's text checks,
  types and rules: ``judge_sql``'s first stage), written straight into the raw table:
  the least a design that keeps the text checks must do after reading;
- *read + row rules, one statement*: the two above fused, no table between them
  (no line numbers or export dates: a lower bound, not an ingestion);
- *judge*, *write loaded rows*: what ingestion does (keys and parents included).

Then what DuckDB's typed reader returns for texts the contract quarantines: the
reason ingestion reads text and types it itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import bench_settings, timed
from benchmarks.pipeline import floor_reader_sql
from crm_simulator.company import simulate_company
from crm_simulator.config import SimulationConfig
from crm_warehouse import ingest
from crm_warehouse.contracts import SourceContract, contract_for
from crm_warehouse.warehouse.duckdb_connection import connect

RESULTS = Path(__file__).resolve().parent / "results" / "ingest_floor_gap.json"

#: Texts the contract quarantines (``_typed_expression``), read by DuckDB's typed reader.
LOSSY_TEXTS = {"INTEGER": ["1.5", " 7"], "DECIMAL(12,2)": ["1.234"]}


def parents_of(contract: SourceContract) -> list[str]:
    """Tables ``contract`` refers to, directly or through them, parents first."""
    order: list[str] = []
    for fk in contract.foreign_keys:
        for table in [*parents_of(contract_for(fk.references_table)), fk.references_table]:
            if table not in order:
                order.append(table)
    return order


def typed_reader_readings(work: Path) -> list[dict[str, Any]]:
    """What ``read_csv`` with a column's type (rejects stored) gives for each of ``LOSSY_TEXTS``."""
    readings = []
    with duckdb.connect() as con:
        for column_type, texts in LOSSY_TEXTS.items():
            for text in texts:
                path = work / "lossy.csv"
                path.write_text(f"value\n{text}\n", encoding="utf-8")
                rows = con.execute(
                    f"""select value::varchar from read_csv($file, header = true, auto_detect = false,
                            columns = {{'value': '{column_type}'}}, store_rejects = true)""",
                    {"file": str(path)},
                ).fetchall()
                rejected = con.execute("select count(*) from reject_errors").fetchone()[0]
                readings.append(
                    {"type": column_type, "text": text, "read_as": rows[0][0] if rows else None, "rejected": rejected}
                )
    return readings


def one_pass_parsed(contract: SourceContract) -> str:
    """CTE ``_parsed`` straight from DuckDB's reader (every field text), for rules in the same statement.

    No line numbers (0) and no export dates: a lower bound of reading and judging rows
    in one pass, not a correct ingestion.
    """
    if contract.format == "csv":
        n = len(contract.column_names)
        reader = ingest._read_csv_fields(contract, range(1, n + 1), n)
    else:
        reader = ingest._parse_lines(contract, ingest._reader_lines())
    return f"""_parsed as (
        select * replace (coalesce(_source_line, 0) as _source_line), null::date as _export_date
        from ({reader}))"""


def measure(landing: Path, work: Path, table: str) -> dict[str, Any]:
    contract = contract_for(table)
    settings = replace(bench_settings(work), landing_dir=landing)
    ingest.ingest_all(settings, "parents", parents_of(contract))
    relatives = ingest.landing_inventory(landing).relative_files[table]
    files = [ingest._scan_file(landing / r, landing) for r in relatives]
    batches = ingest.contract_batches(contract, files, settings.ingest_batch_bytes, settings.ingest_batch_values)
    batch = batches[len(batches) // 2]
    columns = ", ".join(contract.column_names)
    raw = f"raw.{table}"
    seconds: dict[str, float] = {}

    def timed_as(name: str, step: Callable[[], Any]) -> None:
        seconds[name] = timed(step)["seconds"]

    with connect(settings, settings.warehouse_path) as con:
        ingest.DuckDBRawStore(con).create_tables()
        paths = {"files": [str(f.path) for f in batch]}
        # Into the database file, as the floor of benchmarks/pipeline.py writes (a temp table stays in memory).
        timed_as(
            "floor",
            lambda: con.execute(f"create table bench_floor as select * from {floor_reader_sql(contract)}", paths),
        )
        con.execute("drop table bench_floor")
        timed_as("read as text", lambda: ingest._read_batch(con, contract, batch, work))
        rows = con.execute("select count(*) from _parsed").fetchone()[0]
        ruled = ingest._judge_stages(contract).ruled
        con.execute("begin transaction")
        timed_as(
            "row rules to raw",
            lambda: con.execute(
                f"""insert into {raw} with {ruled}
                    select {columns}, _source_file, _source_line, now(), 'bench' from ruled where rule_reason is null"""
            ),
        )
        con.execute("rollback")
        if contract.format != "parquet":
            con.execute("begin transaction")
            timed_as(
                "read + row rules, one statement",
                lambda: con.execute(
                    f"""insert into {raw} with {one_pass_parsed(contract)}, {ruled}
                        select {columns}, _source_file, _source_line, now(), 'bench' from ruled
                        where rule_reason is null""",
                    {**paths, **({"delimiter": "\x00"} if contract.format == "jsonl" else {})},
                ),
            )
            con.execute("rollback")
        # As ingestion does for a batch that replaces no file: judged, then written in a transaction.
        timed_as("judge", lambda: con.execute(f"create temp table _judged as {ingest.judge_sql(contract)}"))
        con.execute("begin transaction")
        timed_as(
            "write loaded rows",
            lambda: con.execute(
                f"insert into {raw} select {columns}, _source_file, _source_line, now(), 'bench' "
                "from _judged where reason is null"
            ),
        )
        con.execute("rollback")
    return {
        "table": table,
        "files": len(batch),
        "bytes": sum(f.size for f in batch),
        "rows": rows,
        "seconds": seconds,
        "read_then_row_rules": seconds["read as text"] + seconds["row rules to raw"],
        "ingestion": seconds["read as text"] + seconds["judge"] + seconds["write loaded rows"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, help="landing folder to read (default: simulate one)")
    parser.add_argument("--customers", type=int, default=100_000, help="company size to simulate without --landing")
    parser.add_argument("--table", default="orders_order_lines")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ingest_floor_gap_"))
    try:
        landing = args.landing
        if landing is None:
            landing = work / "landing"
            simulate_company(SimulationConfig(customers=args.customers, days=730), landing, work / "truth")
        result = measure(landing.resolve(), work, args.table)
        result["typed_reader"] = typed_reader_readings(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    floor = result["seconds"]["floor"]
    print(
        f"{args.table}: middle batch, {result['files']} files, {result['bytes'] / 2**20:.0f} MiB, "
        f"{result['rows']:,} rows (load average {os.getloadavg()[0]:.1f})"
    )
    for name, value in result["seconds"].items():
        print(f"  {name:<32} {value:6.2f} s  {value / floor:4.1f}x the floor")
    for name in ("read_then_row_rules", "ingestion"):
        print(f"  {name:<32} {result[name]:6.2f} s  {result[name] / floor:4.1f}x the floor")
    print("DuckDB's typed reader on texts the contract quarantines:")
    for reading in result["typed_reader"]:
        print(
            f"  {reading['type']:<14} {reading['text']!r:<12} read as {reading['read_as']!r}, rejected {reading['rejected']}"
        )
    # One entry per source: the results of the other sources are kept.
    tables = json.loads(RESULTS.read_text()).get("tables", {}) if RESULTS.exists() else {}
    tables[args.table] = {"landing": str(args.landing), "load_average": os.getloadavg(), **result}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"tables": tables}, indent=1))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
