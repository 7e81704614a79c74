"""Rendering typed tables into the landing-file formats and writing one file per export day.

CSV: UTF-8, header, comma separator, quotes only around values containing a comma or a
quote (quotes doubled inside), one record per physical line (a value with a line break is
an error), ``\\n`` line ends, empty field = null. JSONL: one compact object per line, nulls
as ``null``. Rows are rendered into an Arrow string array of lines; a day's file is then a
single slice of its data buffer, so writing millions of rows costs one ``write`` per file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crm_simulator.config import Window
from crm_simulator.dirty import (
    SPECS,
    KeyAllocator,
    break_json,
    corrupt_fields,
    make_dirty_rows,
    merge_order,
)
from crm_simulator.text import decimal_from_units, has_any_byte, lookup_text
from crm_warehouse.contracts import SourceContract

# Rows rendered at a time when writing (whole days per batch): bounds memory on big runs.
BATCH_ROWS = 1_000_000

_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def arrow_type(column_type: str, parquet: bool = False) -> pa.DataType:
    """Arrow type holding a contract column type (Parquet timestamps in microseconds)."""
    simple = {
        "VARCHAR": pa.string(),
        "TIMESTAMP": pa.timestamp("us" if parquet else "s"),
        "DATE": pa.date32(),
        "INTEGER": pa.int32(),
        "BOOLEAN": pa.bool_(),
        "DOUBLE": pa.float64(),
    }
    if column_type in simple:
        return simple[column_type]
    match = _DECIMAL.fullmatch(column_type)
    if match is None:
        raise ValueError(f"unsupported contract column type {column_type!r}")
    return pa.decimal128(int(match.group(1)), int(match.group(2)))


def schema_for(contract: SourceContract) -> pa.Schema:
    parquet = contract.format == "parquet"
    return pa.schema([pa.field(c.name, arrow_type(c.type, parquet)) for c in contract.columns])


def decimal_array(units: np.ndarray, column_type: str) -> pa.Array:
    """Decimal array from integers in units of the type's scale (e.g. cents for scale 2)."""
    return decimal_from_units(units, arrow_type(column_type))


def _text(column: pa.Array) -> pa.Array:
    """Plain text of a typed column (null stays null)."""
    if pa.types.is_string(column.type):
        if has_any_byte(column, "\n\r"):
            raise ValueError("a value has a line break; landing files need one record per physical line")
        return column
    if pa.types.is_integer(column.type) or pa.types.is_decimal(column.type):
        return lookup_text(column)
    if pa.types.is_boolean(column.type):
        text = pa.array(["false", "true"]).take(pc.fill_null(column, False).cast(pa.int8()))
        return pc.if_else(column.is_valid(), text, pa.scalar(None, pa.string())) if column.null_count else text
    return column.cast(pa.string())


def csv_fields(table: pa.Table) -> list[pa.Array]:
    """Each column rendered as CSV field text (quoted where needed; null -> empty)."""
    fields = []
    for column in table.columns:
        column = column.combine_chunks()
        text = _text(column)
        if pa.types.is_string(column.type) and has_any_byte(text, '",'):
            quoted = pc.binary_join_element_wise(
                pa.scalar('"'), pc.replace_substring(text, '"', '""'), pa.scalar('"'), ""
            )
            text = pc.if_else(pc.match_substring_regex(text, '[",]'), quoted, text)
        fields.append(pc.fill_null(text, ""))
    return fields


def json_fields(table: pa.Table) -> list[pa.Array]:
    """Each column rendered as a JSON value (strings and timestamps quoted; null -> null)."""
    fields = []
    for column in table.columns:
        column = column.combine_chunks()
        text = _text(column)
        if pa.types.is_string(column.type) or pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            if pa.types.is_string(column.type) and has_any_byte(text, '"\\'):
                text = pc.replace_substring(pc.replace_substring(text, "\\", "\\\\"), '"', '\\"')
            text = pc.binary_join_element_wise(pa.scalar('"'), text, pa.scalar('"'), "")
        fields.append(pc.fill_null(text, "null"))
    return fields


def csv_lines(fields: list[pa.Array]) -> pa.Array:
    """One line per row: fields joined by commas, ending in ``\n``."""
    parts: list[pa.Array | pa.Scalar] = []
    for field in fields:
        parts += [field, pa.scalar(",")]
    parts[-1] = pa.scalar("\n")
    return pc.binary_join_element_wise(*parts, "")


def json_lines(names: tuple[str, ...], fields: list[pa.Array]) -> pa.Array:
    """One compact JSON object per row, keys in contract order, ending in ``\n``."""
    parts: list[pa.Array | pa.Scalar] = []
    for i, (name, field) in enumerate(zip(names, fields, strict=True)):
        parts.append(pa.scalar(("{" if i == 0 else ",") + f'"{name}":'))
        parts.append(field)
    parts.append(pa.scalar("}\n"))
    return pc.binary_join_element_wise(*parts, "")


def csv_header(contract: SourceContract) -> bytes:
    return (",".join(contract.column_names) + "\n").encode()


def day_bounds(day: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct days of a day-sorted array with each day's [start, stop) row range."""
    if len(day) and np.any(np.diff(day) < 0):
        raise ValueError("rows must be sorted by export day before writing")
    days, starts = np.unique(day, return_index=True)
    stops = np.append(starts[1:], len(day)) if len(day) else starts
    return days, starts, stops


def write_text_files(lines: pa.Array, day: np.ndarray, header: bytes, path_for_day: Callable[[int], Path]) -> int:
    """Write each day's slice of ``lines`` (after ``header``) to its file; returns the file count."""
    offset_type = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    offsets = np.frombuffer(lines.buffers()[1], dtype=offset_type)[lines.offset : lines.offset + len(lines) + 1]
    data = memoryview(lines.buffers()[2]) if len(lines) else memoryview(b"")
    days, starts, stops = day_bounds(day)
    for d, a, z in zip(days, starts, stops, strict=True):
        path = path_for_day(int(d))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            handle.write(header)
            handle.write(data[offsets[a] : offsets[z]])
    return len(days)


def write_parquet_files(table: pa.Table, day: np.ndarray, path_for_day: Callable[[int], Path]) -> int:
    """Write each day's rows of ``table`` to its Parquet file; returns the file count."""
    days, starts, stops = day_bounds(day)
    for d, a, z in zip(days, starts, stops, strict=True):
        path = path_for_day(int(d))
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.slice(int(a), int(z - a)), path, compression="zstd")
    return len(days)


@dataclass(frozen=True)
class SourceRows:
    """A source's rows, typed per its contract and sorted by export day."""

    contract: SourceContract
    table: pa.Table
    day: np.ndarray


def _batches(day: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """[start, stop) row ranges of whole days, each at most ``limit`` rows unless one day is bigger."""
    _, starts, stops = day_bounds(day)
    edges, batch_start = [], 0
    for start, stop in zip(starts, stops, strict=True):
        if stop - batch_start > limit and start > batch_start:
            edges.append((batch_start, int(start)))
            batch_start = int(start)
    if len(day):
        edges.append((batch_start, len(day)))
    return edges


def _render(contract: SourceContract, table: pa.Table, dirty_kind: np.ndarray | None) -> pa.Array:
    """Lines of a CSV or JSONL file body; ``dirty_kind`` marks rows to corrupt at the text level."""
    json = contract.format == "jsonl"
    fields = (json_fields if json else csv_fields)(table)
    if dirty_kind is not None:
        fields = corrupt_fields(SPECS[contract.table], contract.column_names, fields, dirty_kind, json)
    lines = json_lines(contract.column_names, fields) if json else csv_lines(fields)
    if dirty_kind is not None and json:
        lines = break_json(lines, dirty_kind)
    return lines


def write_source(
    rows: SourceRows,
    out_dir: Path,
    window: Window,
    dirty_rate: float,
    rng: np.random.Generator,
    keys: KeyAllocator,
) -> tuple[int, int, pa.Table | None]:
    """Write a source's files (with injected bad rows); returns files, dirty rows, manifest.

    Rows are rendered in batches of whole days to bound memory.
    """
    contract = rows.contract
    dirty = make_dirty_rows(
        contract,
        rows.table,
        rows.day,
        dirty_rate,
        rng,
        keys,
        lambda count: keys.keys("customer", count),
        window.start_epoch,
    )
    n_clean = rows.table.num_rows
    after = dirty.after if dirty is not None else np.zeros(0, dtype=np.int64)
    order = merge_order(n_clean, after)
    day = np.concatenate([rows.day, dirty.day if dirty is not None else np.zeros(0, dtype=np.int64)])[order]

    def path_for_day(d: int) -> Path:
        return out_dir / contract.file_name(window.date_str(d))

    files = 0
    for start, stop in _batches(day, BATCH_ROWS):
        index = order[start:stop]
        is_clean = index < n_clean
        clean = index[is_clean]
        first_clean = int(clean[0]) if len(clean) else 0
        clean_table = rows.table.slice(first_clean, len(clean))
        dirty_index = index[~is_clean] - n_clean
        if contract.format == "parquet":
            parts = [clean_table] + ([dirty.table.take(pa.array(dirty_index))] if len(dirty_index) else [])
        else:
            parts = [_render(contract, clean_table, None)]
            if len(dirty_index):
                parts.append(_render(contract, dirty.table.take(pa.array(dirty_index)), dirty.kind[dirty_index]))
        body = pa.concat_tables(parts) if contract.format == "parquet" else pa.concat_arrays(parts)
        if len(dirty_index):
            local = np.where(is_clean, index - first_clean, len(clean) + np.cumsum(~is_clean) - 1)
            body = body.take(pa.array(local))
        if contract.format == "parquet":
            files += write_parquet_files(body, day[start:stop], path_for_day)
        else:
            header = b"" if contract.format == "jsonl" else csv_header(contract)
            files += write_text_files(body, day[start:stop], header, path_for_day)
    if dirty is None:
        return files, 0, None

    first_line = 2 if contract.format == "csv" else 1
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    dirty_position = position[n_clean:]
    days, starts, _ = day_bounds(day)
    file_of = np.searchsorted(days, day[dirty_position])
    file_names = np.array([contract.file_name(window.date_str(d)) for d in days], dtype=object)
    manifest = pa.table(
        {
            "source_table": pa.array([contract.table] * len(dirty_position), pa.string()),
            "file": pa.array(file_names[file_of], pa.string()),
            "line": pa.array(dirty_position - starts[file_of] + first_line, pa.int64()),
            "kind": pa.array(dirty.kind, pa.string()),
            "column_name": pa.array(dirty.column, pa.string()),
        }
    )
    by_place = np.lexsort((manifest["line"].to_numpy(), file_of))
    return files, len(dirty_position), manifest.take(pa.array(by_place))
