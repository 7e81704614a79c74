"""Ingestion against DuckDB's typed-read floor, per source: seconds and peak resident memory.

Not a test: prints a table and writes ``benchmarks/results/ingest_speed.json`` (or ``--out``).

    nice -n 10 .venv/bin/python benchmarks/ingest_speed.py --landing /work/bench/1m/landing --work /tmp/ingest_bench
    .venv/bin/python benchmarks/ingest_speed.py --landing /work/bench/3m/landing --work /tmp/ingest_bench \
        --out benchmarks/results/ingest_speed_3m.json

Two child processes read the same landing files, one after the other, each with its
resident memory sampled every 50 ms:

- the floor: DuckDB reading each source's files into a typed table with the
  contract's columns and types (``benchmarks/pipeline.py``'s ``floor_ingest``);
- ingestion: :func:`crm_warehouse.ingest.ingest_all`, one source at a time (each on its
  own connection, as the Dagster steps run), into a fresh warehouse file.

The warehouse and the floor's database are written under ``--work`` and removed at the
end. Both use the configuration's DuckDB bounds (``CRM_DUCKDB_MEMORY_LIMIT``, with
DuckDB's temp folder under ``--work``); ``CRM_INGEST_BATCH_BYTES`` and ``CRM_INGEST_BATCH_VALUES`` set the batch size,
as in a run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import RssSampler, mib
from benchmarks.pipeline import floor_ingest
from crm_warehouse.contracts import CONTRACTS
from crm_warehouse.settings import Settings, load_settings

RESULTS = Path(__file__).resolve().parent / "results" / "ingest_speed.json"


def bench_settings(landing: Path, work: Path) -> Settings:
    """The configuration of this shell, reading ``landing`` into a warehouse under ``work``."""
    return replace(
        load_settings(),
        landing_dir=landing,
        warehouse_path=work / "warehouse.duckdb",
        duckdb_temp_dir=work / "duckdb_tmp",
    )


def measure_floor(settings: Settings, work: Path) -> dict[str, Any]:
    database = work / "floor.duckdb"
    cpu = time.process_time()
    with RssSampler() as sampler:
        seconds = floor_ingest(settings, database)
    cpu = time.process_time() - cpu
    database.unlink()
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mib": mib(max(tree for _, tree, _ in sampler.samples))}


def measure_ingestion(settings: Settings) -> dict[str, Any]:
    from crm_warehouse.ingest import ingest_all

    rows: dict[str, dict[str, float]] = {}
    with RssSampler() as sampler:
        for contract in CONTRACTS:
            start, cpu = time.time(), time.process_time()
            (result,) = ingest_all(settings, "bench", [contract.table])
            end = time.time()
            rows[contract.table] = {
                "seconds": end - start,
                "cpu_seconds": time.process_time() - cpu,
                "peak_rss_mib": mib(sampler.peak_between(start, end)),
                "files": len(result.files),
                "rows_loaded": result.rows_loaded,
                "rows_quarantined": result.rows_quarantined,
                "files_refused": len(result.refused),
            }
    warehouse_bytes = settings.warehouse_path.stat().st_size
    settings.warehouse_path.unlink()
    return {
        "tables": rows,
        "batch_bytes": settings.ingest_batch_bytes,
        "batch_values": settings.ingest_batch_values,
        "duckdb_memory_limit": settings.duckdb_memory_limit,
        "warehouse_mib": mib(warehouse_bytes),
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(kind: str, landing: Path, work: Path, out: Path) -> None:
    settings = bench_settings(landing, work)
    result = measure_floor(settings, work) if kind == "floor" else measure_ingestion(settings)
    out.write_text(json.dumps(result))


def run_child(kind: str, landing: Path, work: Path) -> dict[str, Any]:
    out = work / f"{kind}.json"
    subprocess.run(
        [sys.executable, __file__, "--child", kind, "--landing", str(landing), "--work", str(work)], check=True
    )
    result = json.loads(out.read_text())
    out.unlink()
    return result


def print_table(floor: dict[str, Any], ingestion: dict[str, Any]) -> None:
    print(f"{'source':<22} {'files':>6} {'rows':>11} {'ingest s':>9} {'floor s':>8} {'ratio':>6} {'peak MiB':>9}")
    total = floor_total = 0.0
    for table, row in ingestion["tables"].items():
        floor_seconds = floor["seconds"][table]
        total += row["seconds"]
        floor_total += floor_seconds
        rows = row["rows_loaded"] + row["rows_quarantined"]
        print(
            f"{table:<22} {row['files']:>6} {rows:>11,} {row['seconds']:>9.1f} {floor_seconds:>8.1f} "
            f"{row['seconds'] / floor_seconds:>6.2f} {row['peak_rss_mib']:>9.0f}"
        )
    print(
        f"{'all sources':<22} {'':>6} {'':>11} {total:>9.1f} {floor_total:>8.1f} {total / floor_total:>6.2f} "
        f"{max(r['peak_rss_mib'] for r in ingestion['tables'].values()):>9.0f}"
    )
    cpu = sum(r["cpu_seconds"] for r in ingestion["tables"].values())
    print(
        f"CPU seconds (both cores; fairer on a busy machine): ingestion {cpu:.1f}, floor {floor['cpu_seconds']:.1f}, "
        f"ratio {cpu / floor['cpu_seconds']:.2f}"
    )
    print(
        f"floor peak RSS {floor['peak_rss_mib']:.0f} MiB; batch bytes {ingestion['batch_bytes']:,}, "
        f"values {ingestion['batch_values']:,}; "
        f"DuckDB memory_limit {ingestion['duckdb_memory_limit']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True, help="landing folder (only read)")
    parser.add_argument("--work", type=Path, required=True, help="folder for the warehouse files")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results file (default: {RESULTS.name})")
    parser.add_argument("--child", choices=("floor", "ingest"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.child:
        _child(args.child, args.landing.resolve(), args.work, args.work / f"{args.child}.json")
        return 0
    load_before = os.getloadavg()
    floor = run_child("floor", args.landing, args.work)
    ingestion = run_child("ingest", args.landing, args.work)
    result = {
        "landing": str(args.landing),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "duckdb": duckdb.__version__},
        "floor": floor,
        "ingestion": ingestion,
    }
    print_table(floor, ingestion)
    print(f"load average before {load_before[0]:.1f}, after {result['load_average_after'][0]:.1f}")
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
