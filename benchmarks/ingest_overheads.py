"""Measure the per-file and repeated work in ingestion against a cheaper equivalent.

Not a test: prints a table and writes ``benchmarks/results/ingest_overheads.json``.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/ingest_overheads.py --customers 100000

Simulates a company into a temp folder, then for every source table times, on the
same landing files and in one DuckDB connection, what :mod:`crm_warehouse.ingest`
does today next to an equivalent that gives the same answer:

- header check: a second ``read_text`` of every file, split into all its lines for
  line 1, vs. the first line read in Python (``_scan_file`` already reads each file);
- Parquet: ``parquet_schema`` and ``parquet_file_metadata`` once per file vs. once
  per batch over the file list;
- lineage path: ``update _parsed set _source_file = ...`` after the parse vs. the
  same expression in the parse's select;
- ledger: ``executemany`` of one row per file vs. one ``insert ... select unnest``;
- change detection: SHA-256 of every landing file (every run) vs. ``stat`` only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crm_simulator.company import simulate_company
from crm_simulator.config import SimulationConfig
from crm_warehouse import ingest
from crm_warehouse.contracts import CONTRACTS, LEDGER_TABLE, RAW_SCHEMA, SourceContract

RESULTS = Path(__file__).resolve().parent / "results" / "ingest_overheads.json"


def seconds(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def measure(landing: Path, con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    ingest.create_raw_tables(con)
    return [measure_contract(landing, con, contract) for contract in CONTRACTS]


def measure_contract(landing: Path, con: duckdb.DuckDBPyConnection, contract: SourceContract) -> dict[str, Any]:
    paths = ingest.discover_files(landing, contract)
    files = [str(p) for p in paths]
    scanned = []
    row: dict[str, Any] = {
        "table": contract.table,
        "files": len(files),
        "sha256_scan": seconds(lambda: scanned.extend(ingest._scan_file(p, landing) for p in paths)),
        "stat_only": seconds(lambda: [p.stat() for p in paths]),
    }
    if contract.format == "csv":
        row["header_check"] = seconds(
            lambda: con.execute(
                "select filename, string_split(content, chr(10))[1] from read_text($files)", {"files": files}
            ).fetchall()
        )
        row["header_check_alternative"] = seconds(lambda: [open(f, "rb").readline() for f in files])
    if contract.format == "parquet":
        row["parquet_per_file"] = seconds(
            lambda: [
                (
                    con.execute("select name from parquet_schema($f)", {"f": f}).fetchall(),
                    con.execute("select sum(num_rows) from parquet_file_metadata($f)", {"f": f}).fetchone(),
                )
                for f in files
            ]
        )
        row["parquet_per_file_alternative"] = seconds(
            lambda: (
                con.execute("select file_name, name from parquet_schema($f)", {"f": files}).fetchall(),
                con.execute(
                    "select file_name, sum(num_rows) from parquet_file_metadata($f) group by 1", {"f": files}
                ).fetchall(),
            )
        )
    sql = (
        ingest._parse_parquet(contract)
        if contract.format == "parquet"
        else ingest._parse_lines(contract, ingest._text_lines(contract))
    )
    row["parse"] = seconds(lambda: con.execute(f"create or replace temp table _parsed as {sql}", {"files": files}))
    row["path_update"] = seconds(
        lambda: con.execute(
            "update _parsed set _source_file = replace(substr(_source_file, length($prefix) + 1), '\\', '/')",
            {"prefix": str(landing) + "/"},
        )
    )
    inline = (
        f"select * replace (replace(substr(_source_file, length($prefix) + 1), '\\', '/') as _source_file) from ({sql})"
    )
    row["parse_with_path_inline"] = seconds(
        lambda: con.execute(
            f"create or replace temp table _parsed as {inline}", {"files": files, "prefix": str(landing) + "/"}
        )
    )
    ledger = [(contract.table, f.relative, f.content_hash, f.size, 1, 1, 0, "bench") for f in scanned]
    # Both inside a transaction, as in ingest._load_batch.
    con.execute("begin transaction")
    row["ledger_executemany"] = seconds(
        lambda: con.executemany(
            f"insert into {RAW_SCHEMA}.{LEDGER_TABLE} values ($1, $2, $3, $4, $5, $6, $7, now(), $8, null, null)",
            ledger,
        )
    )
    con.execute("commit")
    columns = list(zip(*ledger, strict=True))
    con.execute("begin transaction")
    row["ledger_one_insert"] = seconds(
        lambda: con.execute(
            f"""insert into {RAW_SCHEMA}.{LEDGER_TABLE}
            select unnest($t), unnest($p), unnest($h), unnest($b), unnest($r), unnest($l), unnest($q),
                   now(), unnest($run), null, null""",
            {
                "t": list(columns[0]),
                "p": list(columns[1]),
                "h": list(columns[2]),
                "b": list(columns[3]),
                "r": list(columns[4]),
                "l": list(columns[5]),
                "q": list(columns[6]),
                "run": list(columns[7]),
            },
        )
    )
    con.execute("commit")
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=730)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ingest_overheads_"))
    try:
        simulate_company(SimulationConfig(customers=args.customers, days=args.days), work / "landing", work / "truth")
        with duckdb.connect(str(work / "bench.duckdb")) as con:
            rows = measure((work / "landing").resolve(), con)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    keys = [k for k in rows[0] if k not in ("table", "files")] + [
        "header_check",
        "header_check_alternative",
        "parquet_per_file",
        "parquet_per_file_alternative",
    ]
    keys = list(dict.fromkeys(keys))
    print(
        f"{args.customers:,} customers, {args.days} days; seconds (load average {os.getloadavg()[0]:.1f}, "
        "2 shared cores)"
    )
    print(f"{'measure':<30}" + "".join(f"{r['table'][:14]:>15}" for r in rows) + f"{'total':>9}")
    for key in keys:
        values = [r.get(key) for r in rows]
        print(
            f"{key:<30}"
            + "".join(f"{v:15.3f}" if v is not None else f"{'':>15}" for v in values)
            + f"{sum(v for v in values if v is not None):9.2f}"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"customers": args.customers, "days": args.days, "load_average": os.getloadavg(), "seconds": rows}, indent=1
        )
    )
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
