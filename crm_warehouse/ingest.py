"""Contract-checked ingestion of landing files into the ``raw`` schema of the warehouse (DuckDB's
file here; Spark's through :mod:`crm_warehouse.ingest_spark`).

Every file under the landing folder is accounted for (:func:`landing_inventory`):
it is a source's file (``<system>/<YYYY-MM-DD>[_<entity>].<ext>``, the extension in
any case), a hidden or partial file that is ignored by rule (:func:`is_ignored`), or
it is recorded in ``raw.unloaded_files`` as *not recognised* with the reason.

For each source table the new landing files are checked one by one (encoding,
header or schema against the contract), read with DuckDB's own readers, split into
fields, cast to the contract's types and judged against the contract. A file that
cannot be read is *refused*: it is recorded in ``raw.unloaded_files`` with the real
cause in one line and the other files of its batch load. Rows that pass go to
``raw.<table>``; rows that do not go to ``raw.quarantine`` with their file, line, raw
text and the reason. An ingestion ledger records every loaded file (path, content
hash, rows read, loaded, quarantined), so a file is loaded once, and for every file
``rows read = loaded + quarantined`` is proved against an independent count
(line ends in the file, or the Parquet footer) before the batch commits.

How a file is read: DuckDB's own reader first, the text split as the fallback.
DuckDB's CSV reader merges the lines after an unterminated quote into one rejected
record, drops them at the end of a file with no reject at all, and accepts quoting the
contract calls malformed (``ab"c``, ``1, "a"``). So it reads a CSV file only when the
file has no quote character and every CR is part of a line end (checked on the hashing
pass); JSON lines go through it as one text column per line. Its rows of a file are
kept only when they balance the file's line count (one row per line), and their
ordinals become line numbers. Every other file is split from ``read_text`` in SQL (a
plain split for lines without quotes, a strict RFC-4180 pattern for lines with
quotes), which keeps exact line numbers and every malformed line. Both give the same
text fields, judged by the same SQL (:func:`judge_sql`), so a row gets the same
reasons whichever way its file was read (``FileResult.read_by`` says which).
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Protocol

import duckdb

from crm_warehouse.contracts import (
    CONTRACTS,
    LEDGER_TABLE,
    QUARANTINE_TABLE,
    RAW_SCHEMA,
    SYSTEMS,
    UNLOADED_FILES_TABLE,
    Column,
    SourceContract,
    contract_for,
)
from crm_warehouse.settings import DEFAULT_INGEST_BATCH_BYTES, DEFAULT_INGEST_BATCH_VALUES, Settings
from crm_warehouse.warehouse.as_of import latest_order_date
from crm_warehouse.warehouse.catalog import WarehouseSql
from crm_warehouse.warehouse.duckdb_connection import connect
from crm_warehouse.warehouse.sql import safe_identifier

log = logging.getLogger(__name__)

_CSV_FIELD = r'(?:"(?:[^"]|"")*"|[^,"]*)'
_INTEGER_TEXT = r"-?[0-9]+"
_DATE_IN_NAME = r"([0-9]{4}-[0-9]{2}-[0-9]{2})"
_SOURCE_NAME = re.compile(r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})(?:_(?P<suffix>[A-Za-z0-9_]+))?\.(?P<ext>[A-Za-z0-9]+)")

# Characters a reader cannot see: C0 and C1 control characters (tab, CR and NUL
# included), DEL, zero-width characters and a byte-order mark inside the text.
_INVISIBLE = r"[\x00-\x1f\x7f-\x9f\x{200b}-\x{200d}\x{2060}\x{feff}]"
# White space at either end of a value, non-breaking and ideographic spaces included.
_SPACE = r"[\s\x{a0}\x{3000}]"

#: Names ingestion ignores, by rule: hidden (a path part starting with "."), partial
#: or temporary (ending in .part, .tmp or ~) and the delivery marker _SUCCESS.
IGNORED_SUFFIXES = (".part", ".tmp", "~")
SUCCESS_MARKER = "_SUCCESS"

REFUSED, NOT_RECOGNISED = "refused", "not_recognised"


class IngestionError(RuntimeError):
    """The landing folder is missing, or a batch failed its row accounting (a bug, never bad input)."""


@dataclass(frozen=True)
class FileResult:
    """Outcome for one loaded landing file."""

    table: str
    path: str
    content_hash: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    # READ_BY_READER, READ_BY_TEXT_SPLIT (CSV or JSON lines DuckDB's reader could not take) or READ_BY_PARQUET.
    read_by: str = ""


@dataclass(frozen=True)
class UnloadedFile:
    """A landing file that was not loaded: ``refused`` (with the cause) or ``not_recognised``."""

    path: str
    size: int
    outcome: str
    reason: str
    table: str | None = None

    def message(self) -> str:
        """One line a data engineer can act on."""
        what = "refused" if self.outcome == REFUSED else "not recognised"
        return f"{self.table or 'landing'}: {what} {self.path} ({self.size} bytes): {self.reason}"


@dataclass
class TableResult:
    """Outcome of ingesting one source table."""

    table: str
    run_id: str
    files: list[FileResult] = field(default_factory=list)
    skipped_files: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    table_rows: int = 0
    refused: list[UnloadedFile] = field(default_factory=list)
    unrecognised: list[UnloadedFile] = field(default_factory=list)
    # Rows loaded earlier and moved to quarantine in this run (their parent row went away).
    rows_moved_to_quarantine: int = 0

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)


def quarantine_blocks(rows_read: int, rows_quarantined: int, max_rate: float, min_rows: int) -> bool:
    """True when a run's quarantined rows of a source should stop the run.

    Both must hold: at least ``min_rows`` rows were quarantined, and they are more
    than ``max_rate`` of the rows read. A small delivery with one bad row passes; a
    mostly broken one, or a big one past the rate, blocks.
    """
    return rows_quarantined >= min_rows and rows_quarantined > max_rate * rows_read


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _raw(table: str) -> str:
    return f"{safe_identifier(RAW_SCHEMA)}.{safe_identifier(table)}"


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``raw`` schema, one table per contract, the quarantine, the ledger and unloaded files."""
    con.execute(f"create schema if not exists {safe_identifier(RAW_SCHEMA)}")
    for contract in CONTRACTS:
        columns = ",\n".join(f"{safe_identifier(c.name)} {c.type}" for c in contract.columns)
        con.execute(
            f"""create table if not exists {_raw(contract.table)} (
                {columns},
                _source_file varchar not null,
                _source_line bigint not null,
                _loaded_at timestamp not null,
                _run_id varchar not null
            )"""
        )
    con.execute(
        f"""create table if not exists {_raw(QUARANTINE_TABLE)} (
            source_table varchar not null,
            source_file varchar not null,
            source_line bigint not null,
            raw_record varchar,
            reason varchar not null,
            quarantined_at timestamp not null,
            run_id varchar not null
        )"""
    )
    con.execute(
        f"""create table if not exists {_raw(LEDGER_TABLE)} (
            source_table varchar not null,
            file_path varchar not null,
            content_hash varchar not null,
            file_bytes bigint not null,
            rows_read bigint not null,
            rows_loaded bigint not null,
            rows_quarantined bigint not null,
            loaded_at timestamp not null,
            run_id varchar not null,
            superseded_at timestamp,
            file_modified_ns bigint
        )"""
    )
    # Ledgers written before the column existed get it (null: such files are hashed once more).
    con.execute(f"alter table {_raw(LEDGER_TABLE)} add column if not exists file_modified_ns bigint")
    # The landing files of the latest run that were not loaded (refused or not recognised).
    con.execute(
        f"""create table if not exists {_raw(UNLOADED_FILES_TABLE)} (
            file_path varchar not null,
            file_bytes bigint not null,
            outcome varchar not null,
            reason varchar not null,
            source_table varchar,
            source_system varchar,
            seen_at timestamp not null,
            run_id varchar not null
        )"""
    )


#: A landing file's modification time is kept for skipping only once it is this old.
TRUSTED_MODIFIED_AGE_NS = 2_000_000_000


@dataclass(frozen=True)
class _LandingFile:
    path: Path
    relative: str
    content_hash: str
    size: int
    modified_ns: int | None
    newlines: int
    ends_with_newline: bool
    first_line: bytes
    # Every CR is part of a line end, so DuckDB's reader sees the lines we count (a CR
    # inside a line of an LF file would end a record there).
    plain_line_ends: bool = False
    # A quote character anywhere: CSV quoting, which DuckDB's reader parses more leniently.
    has_quotes: bool = True
    # Not valid UTF-8: what and where the first bad byte is (None: valid).
    utf8_error: str | None = None
    utf8_error_at: int = 0


def _scan_file(path: Path, landing_dir: Path) -> _LandingFile:
    """Hash the file and count its line ends (LF; CR in a file without LF) in one read."""
    stat = path.stat()
    digest = hashlib.sha256()
    lf = cr = crlf = 0
    has_quotes = False
    last = b""
    head = b""
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8_error = None
    utf8_error_at = offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            if not head:
                head = chunk[:65536]  # the header line is taken from it
            digest.update(chunk)
            lf += chunk.count(b"\n")
            # Membership tests run at memory speed, counts several times slower: most
            # files have no CR and no quote, so only those that do are counted.
            if b"\r" in chunk:
                cr += chunk.count(b"\r")
                crlf += chunk.count(b"\r\n")
            crlf += last == b"\r" and chunk.startswith(b"\n")
            has_quotes = has_quotes or b'"' in chunk
            last = chunk[-1:]
            # ASCII is valid UTF-8; the decoder sees the rest, and any chunk after one
            # that ended inside a character.
            pending = decoder.getstate()[0]  # the start of a character the previous read ended in
            if utf8_error is None and (pending or not chunk.isascii()):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    # The decoder reports positions in the pending bytes and this read together.
                    utf8_error_at = offset - len(pending) + exc.start
                    utf8_error = f"invalid byte 0x{exc.object[exc.start]:02x} at byte {utf8_error_at}"
            offset += len(chunk)
    if utf8_error is None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_error = f"truncated character at the end (byte {offset})"
    # A file with CR line ends only (classic Mac) counts CRs; otherwise LFs (CRLF included).
    newlines, terminator = (lf, b"\n") if lf or not cr else (cr, b"\r")
    return _LandingFile(
        path=path,
        relative=path.relative_to(landing_dir).as_posix(),
        content_hash=digest.hexdigest(),
        size=stat.st_size,
        # A file modified within the last seconds may change again within the clock's
        # granularity without its time moving ("racy git"): its time is not trusted
        # and the next run hashes it again.
        modified_ns=stat.st_mtime_ns if stat.st_mtime_ns < time.time_ns() - TRUSTED_MODIFIED_AGE_NS else None,
        newlines=newlines,
        ends_with_newline=last == terminator,
        first_line=re.split(rb"\r\n|\n|\r", head.removeprefix(codecs.BOM_UTF8), maxsplit=1)[0],
        plain_line_ends=_plain_line_ends(lf, cr, crlf),
        has_quotes=has_quotes,
        utf8_error=utf8_error,
        utf8_error_at=utf8_error_at,
    )


def _plain_line_ends(lf: int, cr: int, crlf: int) -> bool:
    """Every CR is part of a line end: CRLF, or CR in a file without LF."""
    return cr == crlf or not lf


def is_ignored(relative_path: str) -> bool:
    """True for landing files ingestion ignores by rule: hidden, partial or temporary, or the _SUCCESS marker."""
    parts = relative_path.split("/")
    name = parts[-1]
    return any(p.startswith(".") for p in parts) or name.lower().endswith(IGNORED_SUFFIXES) or name == SUCCESS_MARKER


def _date_problem(text: str) -> str | None:
    try:
        date.fromisoformat(text)
    except ValueError as exc:
        return str(exc)
    return None


@functools.lru_cache(maxsize=65536)
def recognise(relative_path: str) -> tuple[SourceContract | None, str | None]:
    """(the contract whose file this is, or None; why not, or why it is refused by its name).

    ``(contract, None)``: a source file. ``(contract, reason)``: the source's file by
    its name but refused by it (an impossible date). ``(None, reason)``: not recognised.
    """
    parts = PurePosixPath(relative_path).parts
    if len(parts) == 1:
        return None, f"not in a source-system folder (expected one of {', '.join(SYSTEMS)})"
    system = parts[0]
    if system not in SYSTEMS:
        return None, f"folder {system!r} is not a source system (expected one of {', '.join(SYSTEMS)})"
    expected = " or ".join(c.file_name("YYYY-MM-DD") for c in CONTRACTS if c.system == system)
    if len(parts) > 2:
        return None, f"in a sub-folder of {system}/: files must lie directly in it, named {expected}"
    match = _SOURCE_NAME.fullmatch(parts[1])
    for contract in CONTRACTS:
        if (
            match
            and contract.system == system
            and (match["suffix"] or None) == contract.file_suffix
            and match["ext"].lower() == contract.extension
        ):
            problem = _date_problem(match["date"])
            if problem:
                return contract, (
                    f"the date {match['date']} in the file name is not a real date ({problem}); "
                    "rename the file to its export date"
                )
            return contract, None
    return None, f"name does not match {expected}"


@dataclass
class LandingInventory:
    """Every file under the landing folder, classified (paths relative to the landing root)."""

    landing_dir: Path
    relative_files: dict[str, list[str]] = field(default_factory=dict)
    refused_by_name: list[UnloadedFile] = field(default_factory=list)
    unrecognised: list[UnloadedFile] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def files(self, table: str) -> list[Path]:
        """The files of raw table ``table``, in export-date order."""
        return [self.landing_dir / relative for relative in self.relative_files[table]]

    def unrecognised_for(self, contract: SourceContract) -> list[UnloadedFile]:
        """Not-recognised files a source reports: those in its system folder and those outside every system folder."""
        return [f for f in self.unrecognised if _system_folder(f.path) in (contract.system, None)]


def _system_folder(relative_path: str) -> str | None:
    """The source-system folder a landing path lies in, or None."""
    first, slash, _ = relative_path.partition("/")
    return first if slash and first in SYSTEMS else None


def landing_inventory(landing_dir: Path) -> LandingInventory:
    """Walk the whole landing folder once and classify every file (string work only: a sensor-fast scan)."""
    landing_dir = Path(landing_dir)
    inventory = LandingInventory(landing_dir, relative_files={c.table: [] for c in CONTRACTS})
    root = str(landing_dir)
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        prefix = os.path.relpath(folder, root).replace(os.sep, "/")
        prefix = "" if prefix == "." else prefix + "/"
        for name in sorted(names):
            relative = prefix + name
            if is_ignored(relative):
                inventory.ignored.append(relative)
                continue
            contract, problem = recognise(relative)
            if contract is not None and not problem:
                inventory.relative_files[contract.table].append(relative)
                continue
            try:
                size = os.stat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                continue  # removed between listing and stat
            if contract is None:
                inventory.unrecognised.append(UnloadedFile(relative, size, NOT_RECOGNISED, problem or ""))
            else:
                inventory.refused_by_name.append(UnloadedFile(relative, size, REFUSED, problem, contract.table))
    for paths in inventory.relative_files.values():
        paths.sort()
    return inventory


def discover_files(landing_dir: Path, contract: SourceContract) -> list[Path]:
    """Landing files of ``contract``, in export-date order (upper-case extensions included)."""
    return landing_inventory(landing_dir).files(contract.table)


@dataclass(frozen=True)
class _LedgerEntry:
    content_hash: str
    size: int
    modified_ns: int | None

    def unchanged(self, stat: os.stat_result) -> bool:
        """Same size and modification time as when loaded: the rule rsync uses to skip a file."""
        return (self.size, self.modified_ns) == (stat.st_size, stat.st_mtime_ns)


def loaded_files(con: WarehouseSql, table: str) -> dict[str, _LedgerEntry]:
    """The live ledger entries of ``table``'s files, by landing path."""
    rows = con.execute(
        f"select file_path, content_hash, file_bytes, file_modified_ns from {_raw(LEDGER_TABLE)} "
        "where source_table = $table and superseded_at is null",
        {"table": table},
    ).fetchall()
    return {path: _LedgerEntry(content_hash, size, modified_ns) for path, content_hash, size, modified_ns in rows}


def show_macro() -> str:
    """SQL macro ``_crm_show(text)``: the text as is, or quoted with invisible characters escaped (as Python's repr)."""
    escaped = (
        "case when c = chr(9) then '\\t' when c = chr(10) then '\\n' when c = chr(13) then '\\r' "
        f"when c <> ' ' and regexp_matches(c, '{_INVISIBLE}|{_SPACE}') then "
        "case when unicode(c) < 256 then printf('\\x%02x', unicode(c)) else printf('\\u%04x', unicode(c)) end "
        "else c end"
    )
    return f"""create or replace temp macro _crm_show(t) as
        case when regexp_matches(t, '{_INVISIBLE}|^{_SPACE}|{_SPACE}$')
             then '''' || array_to_string(list_transform(string_split(t, ''), c -> {escaped}), '') || ''''
             else t end"""


def _typed_expression(column: Column) -> str:
    """SQL for the typed value of a text field: null when the text does not fit the type.

    ``try_cast`` alone rounds ``'1.5'`` to an INTEGER and extra decimals to the
    scale, which would silently change data; the text pattern is checked first.
    """
    text = f"f_{column.name}"
    typed = f"try_cast({text} as {column.type})"
    pattern = None
    if column.type in ("INTEGER", "BIGINT"):
        pattern = _INTEGER_TEXT
    elif column.type.startswith("DECIMAL"):
        scale = int(column.type.rstrip(")").split(",")[1])
        pattern = rf"-?[0-9]+(\.[0-9]{{1,{scale}}})?"
    if pattern:
        typed = f"case when regexp_full_match({text}, '{pattern}') then {typed} end"
    return typed


def _text_lines(contract: SourceContract) -> str:
    """CTEs ending in ``data_lines(filename, line_no, line)``: the data lines of ``read_text($files)``.

    The fallback and the exact count: every physical line, numbered from 1 (the header
    included). Lines end in LF, CRLF or (in a file with no LF) CR; a UTF-8 byte-order
    mark is dropped. Holds each file as one text value, so only files DuckDB's reader
    cannot take as one record per line come this way.
    """
    return f"""
        content as (
            select filename,
                   case when starts_with(content, chr(65279)) then content[2:] else content end as content
            from read_text($files)
        ),
        split as (
            select filename,
                   string_split(content, case when contains(content, chr(10)) or not contains(content, chr(13))
                                              then chr(10) else chr(13) end) as lines
            from content
        ),
        numbered as (
            select filename, unnest(lines) as line, generate_subscripts(lines, 1) as line_no,
                   len(lines) as line_count
            from split
        ),
        lines as (
            select filename, line_no, line_count,
                   case when ends_with(line, chr(13)) then line[:-2] else line end as line
            from numbered
        ),
        data_lines as (
            select filename, line_no, line from lines
            where line_no > {_header_lines(contract)} and not (line_no = line_count and line = '')
        )"""


# DuckDB's CSV reader, told everything: no sniffing, no quoting (it only reads files
# without quote characters), a line with the wrong number of fields skipped rather
# than padded. The count of what it returns per file is the proof it read every line.
_READER_OPTIONS = (
    "auto_detect = false, quote = '', escape = '', strict_mode = true, null_padding = false, "
    "ignore_errors = true, filename = true"
)


def _reader_lines() -> str:
    """CTE ``data_lines(filename, line_no, line)`` of JSON lines read by DuckDB's CSV reader as one column.

    ``line_no`` is null: the row's place in ``_read_rows`` gives its line number
    (:func:`_read_with_reader`).
    """
    return f"""
        data_lines as (
            select filename, null::bigint as line_no, coalesce(line, '') as line
            from read_csv($files, header = false, columns = {{'line': 'VARCHAR'}}, delim = $delimiter,
                          {_READER_OPTIONS})
        )"""


def _parse_lines(
    contract: SourceContract, data_lines: str, positions: Sequence[int] | None = None, field_count: int | None = None
) -> str:
    """SQL over the CTEs ``data_lines`` giving one row per data line with text fields.

    Columns: _source_file, _source_line, raw_record, parse_error, f_<column>...
    ``positions`` (CSV): the 1-based field of each contract column in the file's
    header (default: the contract's order); ``field_count``: fields per line.
    """
    names = contract.column_names
    positions = list(positions or range(1, len(names) + 1))
    n = field_count or len(names)
    if contract.format == "jsonl":
        # One parse of each line for all its fields.
        paths = ", ".join(f"'$.{c}'" for c in names)
        fields = ",\n".join(f"values[{i}] as f_{c}" for i, c in enumerate(names, start=1))
        return f"""
        with {data_lines},
        judged as (
            select filename, line_no, line,
                   case
                       when line = '' then 'empty line'
                       when not json_valid(line) then 'malformed JSON'
                       when json_type(line) <> 'OBJECT' then 'JSON line is not an object'
                   end as parse_error
            from data_lines
        ),
        extracted as (
            select *, case when parse_error is null then json_extract_string(line, [{paths}]) end as values
            from judged
        )
        select filename as _source_file, line_no as _source_line, line as raw_record,
               parse_error, {fields}
        from extracted"""
    # CSV: fields of lines with no quote come from a plain split; lines with quotes
    # must match the strict pattern, then each quoted field is unquoted.
    pieces = ",\n".join(
        f"""nullif(case when starts_with(fields[{p}], '"')
                 then replace(fields[{p}][2:-2], '""', '"')
                 else fields[{p}] end, '') as f_{name}"""
        for p, name in zip(positions, names, strict=True)
    )
    return f"""
        with {data_lines},
        split_fields as (
            select filename, line_no, line,
                   case when contains(line, '"')
                        then regexp_extract_all(line, '(?:^|,)({_CSV_FIELD})', 1)
                        else string_split(line, ',') end as fields,
                   case when contains(line, '"')
                        then regexp_full_match(line, '{_CSV_FIELD}(?:,{_CSV_FIELD}){{{n - 1}}}')
                        else len(string_split(line, ',')) = {n} end as well_formed
            from data_lines
        ),
        judged as (
            select filename, line_no, line,
                   case
                       when line = '' then 'empty line'
                       when not well_formed and contains(line, '"')
                           then 'malformed CSV line: broken quoting or wrong number of fields (expected {n})'
                       when not well_formed
                           then 'malformed CSV line: expected {n} fields, found ' || len(fields)
                   end as parse_error,
                   case when well_formed then fields end as fields
            from split_fields
        )
        select filename as _source_file, line_no as _source_line, line as raw_record,
               parse_error, {pieces}
        from judged"""


def _read_csv_fields(contract: SourceContract, positions: Sequence[int], field_count: int) -> str:
    """SQL reading CSV ``$files`` (no quote characters) with DuckDB's reader, every field as text.

    The same rows as :func:`_parse_lines` gives for a file of well-formed lines, but
    ``_source_line`` is null (the row's place in ``_read_rows`` gives it,
    :func:`_read_with_reader`) and ``raw_record`` is left null (the lines of
    quarantined rows are looked up afterwards).
    """
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(1, field_count + 1))
    fields = ", ".join(f"c{p} as f_{name}" for p, name in zip(positions, contract.column_names, strict=True))
    return f"""
        select filename as _source_file, null::bigint as _source_line, null as raw_record, null as parse_error,
               {fields}
        from read_csv($files, header = true, columns = {{{columns}}}, delim = ',', {_READER_OPTIONS})"""


def _parse_parquet(contract: SourceContract) -> str:
    fields = ",\n".join(f"cast({safe_identifier(c)} as varchar) as f_{c}" for c in contract.column_names)
    return f"""
        select filename as _source_file, file_row_number + 1 as _source_line,
               to_json(columns_only)::varchar as raw_record, null::varchar as parse_error, {fields}
        from (
            select *, struct_pack({", ".join(f"{safe_identifier(c)} := {safe_identifier(c)}" for c in contract.column_names)})
                   as columns_only
            from read_parquet($files, filename = true, file_row_number = true, union_by_name = true)
        )"""


def judge_sql(contract: SourceContract, ruled: str | None = None) -> str:
    """SQL over the parsed batch (``_parsed``: each row's lineage, its file's export date, its text fields)
    giving typed values and a reason.

    ``reason`` lists every broken part of the contract, most basic first; null means
    the row is loaded. Invisible characters and padded keys are shown escaped (the
    function of :func:`show_macro`).

    The contract's rules in one text, DuckDB's dialect: on Spark the same text runs
    translated (:class:`~crm_warehouse.warehouse.spark.SparkSqlConnection`) and gives
    the same verdicts (``tests/dbt/test_spark.py``).

    ``ruled``: a table holding the rows of :func:`ruled_rows_sql` of this batch, read
    instead of computing them again (Spark computes a CTE once per reference).
    """
    stages = _judge_stages(contract)
    first = f"ruled as (select * from {ruled})" if ruled else stages.ruled
    return f"with {first}, {stages.rest}"


def ruled_rows_sql(contract: SourceContract) -> str:
    """The first stage of :func:`judge_sql`: each parsed row typed, with the reasons found in the row alone."""
    return f"with {_judge_stages(contract).ruled} select * from ruled"


@dataclass(frozen=True)
class _JudgeStages:
    """:func:`judge_sql` in two parts: CTEs up to ``ruled`` (a row alone), and what follows (keys and parents)."""

    ruled: str
    rest: str


def _judge_stages(contract: SourceContract) -> _JudgeStages:
    typed: list[str] = []
    type_checks: list[str] = []
    for column in contract.columns:
        name = safe_identifier(column.name)
        typed.append(f"{_typed_expression(column)} as {name}")
        type_checks.append(
            f"case when f_{column.name} is not null and {name} is null then 'bad type: {column.name}=' "
            f"|| _crm_show(f_{column.name}) || ' is not {column.type}' end"
        )
    # One pattern over the row's fields run together finds the rare row to look at field by field.
    invisible = [
        f"case when regexp_matches(concat({', '.join(f'f_{c}' for c in contract.column_names)}), '{_INVISIBLE}') "
        "then concat_ws('; ', "
        + ", ".join(
            f"case when regexp_matches(f_{c}, '{_INVISIBLE}') then "
            f"'{c}=' || _crm_show(f_{c}) || ' contains control or invisible characters' end"
            for c in contract.column_names
        )
        + ") end"
    ]
    varchar_keys = [c.name for c in contract.columns if c.name in contract.key_columns and c.type == "VARCHAR"]
    padded = [
        f"case when regexp_matches(f_{c}, '^{_SPACE}|{_SPACE}$') then "
        f"'{c}=' || _crm_show(f_{c}) || ' has leading/trailing spaces' end"
        for c in varchar_keys
    ]
    required = [
        f"case when f_{c.name} is null then 'missing required value: {c.name}' end"
        for c in contract.columns
        if c.required
    ]
    rules = [f"case when not coalesce({r.predicate}, true) then {_literal(r.reason)} end" for r in contract.rules]
    # Key lookups join the loaded tables to the batch's own keys, so each batch hashes
    # its keys and scans the loaded table (and its zone maps) instead of hashing the
    # whole loaded table: the cost of a batch stays flat as the table grows.
    found_parents = [
        f"""found_{i} as (
                select distinct parent.{safe_identifier(fk.references_column)} as value
                from {_raw(fk.references_table)} as parent
                semi join (select distinct {safe_identifier(fk.column)} as value from keyed) as batch
                    on parent.{safe_identifier(fk.references_column)} = batch.value
            )"""
        for i, fk in enumerate(contract.foreign_keys)
    ]
    # A left join to each distinct set of found keys, not "exists": DuckDB plans "exists" as a
    # delim join per condition (judging 1.2 M order lines took 3.4 s, 1.6 s with the joins), and
    # Spark plans "not in" as a nested loop over batch x parents (93 s for the 105,000 order
    # lines of 10,000 customers).
    foreign = [
        f"""case when keyed.{safe_identifier(fk.column)} is not null and found_{i}.value is null
            then {_literal(f"orphan {fk.column}: not in {fk.references_table}")} end"""
        for i, fk in enumerate(contract.foreign_keys)
    ]
    foreign_joins = "".join(
        f" left join found_{i} on found_{i}.value = keyed.{safe_identifier(fk.column)}"
        for i, fk in enumerate(contract.foreign_keys)
    )
    key = ", ".join(safe_identifier(c) for c in contract.unique_key)
    key_null = " or ".join(f"{safe_identifier(c)} is null" for c in contract.unique_key)
    key_on = " and ".join(f"loaded.{safe_identifier(c)} = batch.{safe_identifier(c)}" for c in contract.unique_key)
    key_select = ", ".join(f"loaded.{safe_identifier(c)}" for c in contract.unique_key)
    key_matches = " and ".join(
        f"already_loaded.{safe_identifier(c)} = keyed.{safe_identifier(c)}" for c in contract.unique_key
    )
    found_key = safe_identifier(contract.unique_key[0])
    contract_reasons = ", ".join(invisible + padded + required + type_checks)
    if contract.trim_values:
        texts = ", ".join(
            f"nullif(regexp_replace(f_{c}, '^{_SPACE}+|{_SPACE}+$', '', 'g'), '') as f_{c}"
            for c in contract.column_names
        )
    else:
        texts = ", ".join(f"f_{c}" for c in contract.column_names)
    # A line of text is looked up again for the few quarantined rows (_add_quarantined_lines)
    # rather than carried through every stage: a JSON line is most of a ticket's bytes.
    # Parquet rows have no line: their record is the row as JSON.
    raw_record = "raw_record" if contract.format == "parquet" else "null::varchar as raw_record"
    ruled = f"""
        texts as (
            select _source_file, _source_line, {raw_record}, parse_error, _export_date, {texts} from _parsed
        ),
        typed as (
            select _source_file, _source_line, raw_record, parse_error, _export_date,
                   {", ".join(typed)},
                   {", ".join(f"f_{c}" for c in contract.column_names)}
            from texts
        ),
        basic as (
            select *, coalesce(parse_error, nullif(concat_ws('; ', {contract_reasons}), '')) as basic_reason
            from typed
        ),
        ruled as (
            select *, nullif(concat_ws('; ', basic_reason{"".join(", " + r for r in rules)}), '')
                      as rule_reason
            from basic
        )"""
    rest = f"""
        candidates as (
            select {key}, _source_file, _source_line from ruled where rule_reason is null and not ({key_null})
        ),
        -- Duplicate keys are rare: a hash aggregate finds them, and only their rows are ranked.
        duplicated as (
            select {key} from candidates group by {key} having count(*) > 1
        ),
        ranked as (
            select _source_file, _source_line,
                   row_number() over (partition by {key} order by _source_file, _source_line) as key_rank
            from candidates semi join duplicated using ({key})
        ),
        keyed as (
            select ruled.*,
                   case when rule_reason is null and not ({key_null}) then coalesce(ranked.key_rank, 1) end as key_rank
            from ruled left join ranked using (_source_file, _source_line)
        ),
        already_loaded as (
            select distinct {key_select}
            from {_raw(contract.table)} as loaded
            semi join (select {key} from keyed where key_rank = 1) as batch on {key_on}
        ),
        {"".join(f + "," for f in found_parents)}
        final as (
            select keyed.*,
                   nullif(concat_ws('; ',
                       rule_reason,
                       case when key_rank > 1 then 'duplicate key ({", ".join(contract.unique_key)})' end,
                       case when key_rank = 1 and already_loaded.{found_key} is not null
                            then 'duplicate key ({", ".join(contract.unique_key)}): already loaded' end
                       {"".join(", " + f for f in foreign)}
                   ), '') as reason
            -- Only equalities in the ON clauses: "key_rank = 1" there (one side alone) made DuckDB
            -- join by a nested loop, batch x loaded keys (361,127 customers sent again: 91 s). A
            -- row matches at most one loaded key, and the case above asks for key_rank = 1.
            from keyed
                left join already_loaded on {key_matches}{foreign_joins}
        )
        -- What the writes read: lineage, typed values, the verdict (a narrower table is written faster).
        select _source_file, _source_line, raw_record, {", ".join(safe_identifier(c) for c in contract.column_names)},
               reason
        from final"""
    return _JudgeStages(ruled=ruled, rest=rest)


#: Columns every row carries while it is judged besides the contract's: file, line,
#: raw record and verdict.
JUDGING_COLUMNS = 4


def _batches(
    files: Sequence[_LandingFile], batch_bytes: int, batch_values: int | None = None, columns: int = 1
) -> list[list[_LandingFile]]:
    """Consecutive files of at most ``batch_bytes`` and ``batch_values`` values (lines x
    ``columns``; None: no bound) together, a file over a bound alone, so memory stays bounded.

    Ingestion's memory follows a batch's values more than its bytes: 64 MiB are 177,665
    tickets (350 bytes a JSON line) but 1.2 M order lines (54 bytes). With 12 M values at
    1M customers every source peaked at 1.2-1.4 GiB, and tickets took 22 s instead of 30 s
    in batches of 64 MiB (docs/performance.md).
    """
    batches: list[list[_LandingFile]] = []
    current: list[_LandingFile] = []
    size = values = 0
    for f in files:
        file_values = f.newlines * columns
        over_values = batch_values is not None and values + file_values > batch_values
        if current and (size + f.size > batch_bytes or over_values):
            batches.append(current)
            current, size, values = [], 0, 0
        current.append(f)
        size += f.size
        values += file_values
    if current:
        batches.append(current)
    return batches


def contract_batches(
    contract: SourceContract, files: Sequence[_LandingFile], batch_bytes: int, batch_values: int
) -> list[list[_LandingFile]]:
    """:func:`_batches` of ``contract``'s files: each line counts its columns and the judging's."""
    # A Parquet file's line ends are bytes of its encoding, no count of its rows.
    values = None if contract.format == "parquet" else batch_values
    return _batches(files, batch_bytes, values, len(contract.columns) + JUDGING_COLUMNS)


def guess_encoding(data: bytes) -> str:
    """The encoding non-UTF-8 text most likely is in, for a refusal message (a small heuristic)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or data[:400].count(b"\x00") * 4 > len(data[:400]):
        return "UTF-16"
    # GBK / GB18030 Chinese: non-ASCII bytes come in pairs, both 0xA1-0xFE (the GB2312 area).
    non_ascii = paired = 0
    i = 0
    while i < len(data):
        byte = data[i]
        if byte < 0x80:
            i += 1
            continue
        if 0xA1 <= byte <= 0xF7 and i + 1 < len(data) and 0xA1 <= data[i + 1] <= 0xFE:
            non_ascii += 2
            paired += 2
            i += 2
            continue
        non_ascii += 1
        i += 1
    if non_ascii and paired >= 0.9 * non_ascii:
        return "GBK (GB2312/GB18030)"
    return "Latin-1 (ISO-8859-1/cp1252)"


def _one_line(error: BaseException, replacements: dict[str, str] | None = None) -> str:
    """DuckDB's message on one line (its first lines, without the SQL it points at)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    kept = []
    for line in lines:
        if line.startswith("LINE ") or line.startswith("^"):
            break
        kept.append(line)
    text = " ".join(kept) or type(error).__name__
    for old, new in (replacements or {}).items():
        text = text.replace(old, new)
    # Bytes of a broken file can end up in the message: show them escaped.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:500])


@dataclass(frozen=True)
class _Prepared:
    """A file that passed its file-level checks: what to read and how."""

    file: _LandingFile
    read_path: str
    positions: tuple[int, ...] | None = None
    field_count: int | None = None


def _header_lines(contract: SourceContract) -> int:
    return 1 if contract.format == "csv" else 0


def _drift_problem(contract: SourceContract, columns: Sequence[str]) -> str | None:
    """Why the columns a file has break the contract's schema rule, or None."""
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        return f"column(s) {duplicated} appear more than once"
    missing = [c for c in contract.column_names if c not in columns]
    extra = [c for c in columns if c not in contract.column_names]
    problems = []
    if missing:
        problems.append(f"column(s) {missing} of the contract are missing")
    if extra and contract.extra_columns == "refuse":
        problems.append(f"column(s) {extra} are not in the contract (extra_columns='refuse')")
    return "; ".join(problems) or None


def _parquet_columns(con: duckdb.DuckDBPyConnection, batch: list[_LandingFile]) -> dict[str, list[str]]:
    """Top-level column names of each Parquet file (by relative path), from one read of the footers.

    Empty when some footer cannot be read: each file is then checked on its own.
    """
    try:
        rows = con.execute(
            "select file_name, name, num_children from parquet_schema($files)", {"files": [str(f.path) for f in batch]}
        ).fetchall()
    except duckdb.Error:
        return {}
    by_file: dict[str, list[tuple[str, int]]] = {}
    for file_name, name, children in rows:
        by_file.setdefault(file_name, []).append((name, children or 0))
    columns: dict[str, list[str]] = {}
    for f in batch:
        elements = by_file.get(str(f.path), [])
        names, i = [], 1  # element 0 is the schema's root; its children are the columns, each with its subtree
        while i < len(elements):
            names.append(elements[i][0])
            pending = elements[i][1]
            i += 1
            while pending:
                pending += elements[i][1] - 1
                i += 1
        columns[f.relative] = names
    return columns


def _prepare(
    con: duckdb.DuckDBPyConnection,
    contract: SourceContract,
    f: _LandingFile,
    workdir: Path,
    parquet_columns: list[str] | None = None,
) -> _Prepared | str:
    """File-level checks before reading: encoding, header or schema. The file to read, or why it is refused."""
    if contract.format == "parquet":
        if parquet_columns is None:
            try:
                description = con.execute(
                    "select * from read_parquet($file) limit 0", {"file": str(f.path)}
                ).description
            except duckdb.Error as exc:
                return "cannot be read as Parquet: " + _one_line(exc)
            parquet_columns = [d[0] for d in description]
        problem = _drift_problem(contract, parquet_columns)
        return problem or _Prepared(f, str(f.path))
    read_path = str(f.path)
    first_line = f.first_line
    if contract.encoding.replace("_", "-").lower() in ("utf-8", "utf8"):
        if f.utf8_error:
            with f.path.open("rb") as handle:
                # Judge the encoding from the text around the first bad byte, not from an ASCII header.
                handle.seek(max(f.utf8_error_at - 1024, 0))
                sample = handle.read(1 << 16)
            return (
                f"not UTF-8 ({f.utf8_error}); looks like {guess_encoding(sample)}: "
                "export it as UTF-8, or set the contract's encoding"
            )
    else:
        try:
            text = f.path.read_bytes().decode(contract.encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            return f"not {contract.encoding} as the contract says: {exc}"
        converted = workdir / f"{len(list(workdir.iterdir()))}.txt"
        converted.write_text(text, encoding="utf-8", newline="")
        read_path = str(converted)
        first_line = re.split(rb"\r\n|\n|\r", text.encode("utf-8").removeprefix(codecs.BOM_UTF8), maxsplit=1)[0]
        # Count the line ends of the decoded text: in another encoding a byte 0x0A need not be one.
        lf, cr = text.count("\n"), text.count("\r")
        newlines, terminator = (lf, "\n") if lf or not cr else (cr, "\r")
        f = replace(
            f,
            newlines=newlines,
            ends_with_newline=text.endswith(terminator),
            plain_line_ends=_plain_line_ends(lf, cr, text.count("\r\n")),
            has_quotes='"' in text,
        )
    if contract.format == "jsonl":
        return _Prepared(f, read_path)
    if f.size == 0:
        return f"empty file: expected the header line {','.join(contract.column_names)!r}"
    header = first_line.decode("utf-8", errors="replace")
    columns = next(csv.reader([header]), [])
    problem = _drift_problem(contract, columns)
    if problem:
        return f"header {header!r} does not match the contract: {problem}"
    positions = tuple(columns.index(c) + 1 for c in contract.column_names)
    return _Prepared(f, read_path, positions, len(columns))


PARSED_COLUMNS = "_source_file varchar, _source_line bigint, raw_record varchar, parse_error varchar"

#: How a file's rows were read (``FileResult.read_by``).
READ_BY_READER, READ_BY_TEXT_SPLIT, READ_BY_PARQUET = "duckdb reader", "text split", "parquet reader"


def _takes_reader(contract: SourceContract, f: _LandingFile) -> bool:
    """Whether DuckDB's reader can read ``f`` as one record per line (its count then proves it did)."""
    if contract.format == "csv":
        return f.plain_line_ends and not f.has_quotes
    return contract.format == "jsonl" and f.plain_line_ends


def _read_batch(
    con: duckdb.DuckDBPyConnection, contract: SourceContract, batch: list[_LandingFile], workdir: Path
) -> tuple[list[_LandingFile], list[UnloadedFile], dict[str, str]]:
    """Parse the readable files of ``batch`` into ``_parsed`` (a view over the temp table ``_read_rows``).

    CSV and JSON lines are read by DuckDB's reader when a file qualifies
    (:func:`_takes_reader`) and, per file, kept only when the reader returned as many
    rows as the file has lines by the independent count; every other file is split
    from ``read_text``. Runs outside any transaction, so a file DuckDB cannot read is
    refused with DuckDB's own message and the others are read. Returns (files read,
    files refused, how each read file was read by relative path).
    """
    fields = ", ".join(f"f_{c} varchar" for c in contract.column_names)
    con.execute(f"create or replace temp table _read_rows ({PARSED_COLUMNS}, {fields})")
    refused: list[UnloadedFile] = []

    def refuse(f: _LandingFile, reason: str) -> None:
        refused.append(UnloadedFile(f.relative, f.size, REFUSED, reason, contract.table))

    prepared: list[_Prepared] = []
    schemas = _parquet_columns(con, batch) if contract.format == "parquet" else {}
    for f in batch:
        outcome = _prepare(con, contract, f, workdir, schemas.get(f.relative))
        if isinstance(outcome, str):
            refuse(f, outcome)
        else:
            prepared.append(outcome)
    by_reader = [p for p in prepared if _takes_reader(contract, p.file)]
    line_bases = _read_with_reader(con, contract, by_reader)
    read_by = {p.file.relative: READ_BY_READER for p in by_reader if p.read_path in line_bases}
    split = [p for p in prepared if p.file.relative not in read_by]
    for p, problem in _insert_grouped(con, contract, split):
        refuse(p.file, "DuckDB cannot read it: " + _one_line(problem, {p.read_path: p.file.relative}))
    refused_paths = {r.path for r in refused}
    read = [p for p in prepared if p.file.relative not in refused_paths]
    fallback = READ_BY_PARQUET if contract.format == "parquet" else READ_BY_TEXT_SPLIT
    for p in read:
        read_by.setdefault(p.file.relative, fallback)
    # Lineage keeps the path relative to the landing root, so it survives a move; the
    # reader's ordinals become line numbers per file.
    con.execute(
        """create or replace temp table _read_names as
           select unnest($reads) as read_path, unnest($relatives) as relative, unnest($bases) as line_base,
                  unnest($dates)::date as export_date""",
        {
            "reads": [p.read_path for p in read],
            "relatives": [p.file.relative for p in read],
            "bases": [line_bases.get(p.read_path, 0) for p in read],
            "dates": [export_date(p.file.relative) for p in read],
        },
    )
    con.execute(
        """create or replace temp view _parsed as
           select names.relative as _source_file,
                  coalesce(rows._source_line, rows.rowid) - names.line_base as _source_line,
                  names.export_date as _export_date,
                  rows.* exclude (_source_file, _source_line)
           from _read_rows as rows join _read_names as names on rows._source_file = names.read_path"""
    )
    read_files = [p.file for p in read]
    read_paths = {p.file.relative: p.read_path for p in read}
    for f, problem in _file_content_problems(con, contract, read_files).items():
        refuse(f, problem)
        con.execute("delete from _read_rows where _source_file = $path", {"path": read_paths[f.relative]})
    refused_paths = {r.path for r in refused}
    return [f for f in read_files if f.relative not in refused_paths], refused, read_by


def _read_with_reader(
    con: duckdb.DuckDBPyConnection, contract: SourceContract, files: list[_Prepared]
) -> dict[str, int]:
    """Read ``files`` with DuckDB's reader into ``_read_rows``; keep each file whose rows balance.

    The reader's rows go into ``_read_rows`` in the order of the files' lines (DuckDB
    keeps insertion order, which ingestion makes sure of), so a row's ``rowid`` is its
    place in the read: numbering rows as they are read (``with ordinality``) took 60 %
    longer than the read itself. A file balances when the reader returned one row per
    line by the independent count, as consecutive rows. Returns, per read path of a
    kept file, what to subtract from a rowid for the line number; the rows of the other
    files are removed again (they take the text split).
    """
    if not files:
        return {}
    con.execute("set preserve_insertion_order = true")  # the default; line numbers depend on it
    failed = _insert_grouped(con, contract, files, reader=True)
    failed_paths = {p.read_path for p, _ in failed}
    stats = {
        path: (rows, first, last)
        for path, rows, first, last in con.execute(
            "select _source_file, count(*), min(rowid), max(rowid) from _read_rows group by 1"
        ).fetchall()
    }
    expected = _expected_rows(con, contract, [p.file for p in files])
    bases: dict[str, int] = {}
    for p in files:
        if p.read_path in failed_paths:
            continue
        rows, first, last = stats.get(p.read_path, (0, 1, 0))
        if rows == expected[p.file.relative] and last - first + 1 == rows:
            bases[p.read_path] = first - 1 - _header_lines(contract)
        else:
            log.info(
                f"{contract.table}: {p.file.relative}: DuckDB's reader returned {rows} rows for "
                f"{expected[p.file.relative]} lines; reading it by the text split"
            )
            con.execute("delete from _read_rows where _source_file = $path", {"path": p.read_path})
    return bases


def _insert_grouped(
    con: duckdb.DuckDBPyConnection, contract: SourceContract, files: list[_Prepared], reader: bool = False
) -> list[tuple[_Prepared, duckdb.Error]]:
    """Insert the rows of ``files`` into ``_read_rows``, one statement per column layout (one per batch, normally).

    ``reader``: DuckDB's reader, else the text split (Parquet: ``read_parquet``). When a
    statement fails its files are read one by one; returns the files that failed alone.
    """
    groups: dict[tuple[tuple[int, ...] | None, int | None], list[_Prepared]] = {}
    for p in files:
        groups.setdefault((p.positions, p.field_count), []).append(p)
    failed: list[tuple[_Prepared, duckdb.Error]] = []
    for (positions, field_count), group in groups.items():
        parameters: dict[str, object] = {}
        if contract.format == "parquet":
            sql = _parse_parquet(contract)
        elif not reader:
            sql = _parse_lines(contract, _text_lines(contract), positions, field_count)
        elif contract.format == "csv":
            sql = _read_csv_fields(contract, positions or (), field_count or 0)
        else:
            sql = _parse_lines(contract, _reader_lines())
            parameters["delimiter"] = "\x00"  # no column split: NUL is no character of valid JSON text
        try:
            con.execute(f"insert into _read_rows {sql}", {**parameters, "files": [p.read_path for p in group]})
        except duckdb.Error:
            # One file spoils the statement: read them one by one to find it.
            for p in group:
                try:
                    con.execute(f"insert into _read_rows {sql}", {**parameters, "files": [p.read_path]})
                except duckdb.Error as exc:
                    failed.append((p, exc))
    return failed


def _file_content_problems(
    con: duckdb.DuckDBPyConnection, contract: SourceContract, files: list[_LandingFile]
) -> dict[_LandingFile, str]:
    """File-level problems found in the parsed rows: JSON-lines schema drift, line counts that do not agree."""
    problems: dict[_LandingFile, str] = {}
    by_path = {f.relative: f for f in files}
    if contract.format == "jsonl" and files:
        keys = con.execute(
            """select _source_file, list(distinct key order by key) from (
                   select _source_file, unnest(keys) as key from (
                       -- Lines of one file share their keys, normally: unnest each distinct key list once.
                       select distinct _source_file, json_keys(raw_record) as keys from _parsed
                       where parse_error is null))
               group by 1"""
        ).fetchall()
        seen = {path: names for path, names in keys}
        for path, f in by_path.items():
            if path not in seen:
                continue  # no JSON object at all: every line is quarantined on its own
            names = seen[path]
            missing = [c for c in contract.column_names if c not in names]
            extra = [k for k in names if k not in contract.column_names]
            parts = []
            if missing:
                parts.append(f"field(s) {missing} of the contract are missing from every line")
            if extra and contract.extra_columns == "refuse":
                parts.append(f"field(s) {extra} are not in the contract (extra_columns='refuse')")
            if parts:
                problems[f] = "; ".join(parts)
    counts = dict(con.execute("select _source_file, count(*) from _parsed group by 1").fetchall())
    expected = _expected_rows(con, contract, files)
    for f in files:
        if f not in problems and counts.get(f.relative, 0) != expected[f.relative]:
            problems[f] = (
                f"the file holds {expected[f.relative]} rows by an independent count, "
                f"the parser read {counts.get(f.relative, 0)}"
            )
    return problems


def _expected_rows(
    con: duckdb.DuckDBPyConnection, contract: SourceContract, batch: list[_LandingFile]
) -> dict[str, int]:
    """Rows per file (by relative path) by a count independent of the parser."""
    if not batch:
        return {}
    if contract.format == "parquet":
        footer_rows = dict(
            con.execute(
                "select file_name, sum(num_rows) from parquet_file_metadata($files) group by 1",
                {"files": [str(f.path) for f in batch]},
            ).fetchall()
        )
        return {f.relative: int(footer_rows.get(str(f.path), 0)) for f in batch}
    header_lines = _header_lines(contract)
    return {
        f.relative: max(f.newlines + (0 if f.ends_with_newline or f.size == 0 else 1) - header_lines, 0) for f in batch
    }


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("begin transaction")
    try:
        yield
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _load_batch(
    con: duckdb.DuckDBPyConnection,
    contract: SourceContract,
    batch: list[_LandingFile],
    run_id: str,
    known: set[str],
    workdir: Path,
) -> tuple[list[FileResult], list[UnloadedFile]]:
    """Load the readable files of ``batch`` in one transaction; the others are refused, not loaded."""
    read, refused, read_by = _read_batch(con, contract, batch, workdir)
    if not read:
        return [], refused
    # A corrected file replaces everything its earlier version loaded (a refused one replaces nothing).
    replaced = sorted(f.relative for f in read if f.relative in known)
    columns = ", ".join(safe_identifier(c) for c in contract.column_names)
    table = _raw(contract.table)

    def judge() -> None:
        con.execute(f"create or replace temp table _judged as {judge_sql(contract)}")
        _add_quarantined_lines(con, contract)

    if not replaced:
        # Judged before the transaction: DuckDB keeps a table created inside one in its
        # transaction-local storage, and reading it from there made the inserts below take
        # twice as long (1.0 s against 0.5 s for 1.2 M order lines). Only this step writes
        # the table, so the verdicts are the same.
        judge()
    with _transaction(con):
        if replaced:
            con.execute(f"delete from {table} where list_contains($paths, _source_file)", {"paths": replaced})
            con.execute(
                f"delete from {_raw(QUARANTINE_TABLE)} where source_table = $t and list_contains($paths, source_file)",
                {"t": contract.table, "paths": replaced},
            )
            _supersede(con, contract, replaced)
            judge()  # after the earlier version's rows are gone: its keys are no duplicates
        con.execute(
            f"""insert into {table}
                select {columns}, _source_file, _source_line, now(), $run_id
                from _judged where reason is null""",
            {"run_id": run_id},
        )
        con.execute(
            f"""insert into {_raw(QUARANTINE_TABLE)}
                select $table, _source_file, _source_line, raw_record, reason, now(), $run_id
                from _judged where reason is not null""",
            {"table": contract.table, "run_id": run_id},
        )
        results = [replace(r, read_by=read_by[r.path]) for r in _account(con, con, contract, read, run_id)]
        # One insert per batch: executemany costs a statement per file.
        con.execute(
            f"""insert into {_raw(LEDGER_TABLE)}
                select $table, unnest($paths), unnest($hashes), unnest($sizes), unnest($read),
                       unnest($loaded), unnest($quarantined), now(), $run_id, null, unnest($modified)""",
            {
                "table": contract.table,
                "paths": [r.path for r in results],
                "hashes": [r.content_hash for r in results],
                "sizes": [f.size for f in read],
                "modified": [f.modified_ns for f in read],
                "read": [r.rows_read for r in results],
                "loaded": [r.rows_loaded for r in results],
                "quarantined": [r.rows_quarantined for r in results],
                "run_id": run_id,
            },
        )
    return results, refused


def _supersede(con: duckdb.DuckDBPyConnection, contract: SourceContract, paths: Sequence[str]) -> None:
    con.execute(
        f"update {_raw(LEDGER_TABLE)} set superseded_at = now() "
        "where source_table = $t and superseded_at is null and list_contains($paths, file_path)",
        {"t": contract.table, "paths": list(paths)},
    )


def quarantined_lines_sql(contract: SourceContract) -> str:
    """SQL giving ``(relative, line_no, line)``: the data lines of the read files ``$files`` (their read paths)
    as they are in the files, for the raw records of rows DuckDB's CSV reader read as fields only."""
    return f"""with {_text_lines(contract)}
        select names.relative, data_lines.line_no, data_lines.line
        from data_lines join _read_names as names on data_lines.filename = names.read_path"""


def read_paths_of(con: duckdb.DuckDBPyConnection, relatives: Sequence[str]) -> list[str]:
    """The paths the parser read for landing files ``relatives`` of the batch in ``_read_names``."""
    read_paths = dict(con.execute("select relative, read_path from _read_names").fetchall())
    return [read_paths[path] for path in relatives]


def _add_quarantined_lines(con: duckdb.DuckDBPyConnection, contract: SourceContract) -> None:
    """Give quarantined rows read by DuckDB's CSV reader their line as it is in the file.

    The reader returns fields, not lines; the few files with a quarantined row are read
    once more, as text, for the raw records.
    """
    paths = [
        path
        for (path,) in con.execute(
            "select distinct _source_file from _judged where reason is not null and raw_record is null"
        ).fetchall()
    ]
    if not paths:
        return
    con.execute(
        f"""update _judged set raw_record = lines.line
            from ({quarantined_lines_sql(contract)}) as lines
            where _judged.reason is not null and _judged.raw_record is null
              and _judged._source_file = lines.relative and _judged._source_line = lines.line_no""",
        {"files": read_paths_of(con, paths)},
    )


def _account(
    parsed: duckdb.DuckDBPyConnection,
    stored: WarehouseSql,
    contract: SourceContract,
    batch: list[_LandingFile],
    run_id: str,
) -> list[FileResult]:
    """Prove, per file, rows read = loaded + quarantined, against an independent count.

    ``parsed`` holds the batch as parsed (``_parsed``, DuckDB); ``stored`` the raw tables
    and the quarantine it was written to (the same connection, or Spark).
    """
    paths = {"paths": [f.relative for f in batch]}
    read = dict(parsed.execute("select _source_file, count(*) from _parsed group by 1").fetchall())
    loaded = dict(
        stored.execute(
            f"""select _source_file, count(*) from {_raw(contract.table)}
                where _run_id = $run_id and list_contains($paths, _source_file) group by 1""",
            {"run_id": run_id, **paths},
        ).fetchall()
    )
    quarantined = dict(
        stored.execute(
            f"""select source_file, count(*) from {_raw(QUARANTINE_TABLE)}
                where run_id = $run_id and source_table = $table and list_contains($paths, source_file)
                group by 1""",
            {"run_id": run_id, "table": contract.table, **paths},
        ).fetchall()
    )
    results = []
    expected_rows = _expected_rows(parsed, contract, batch)
    for f in batch:
        rows_read, rows_loaded = read.get(f.relative, 0), loaded.get(f.relative, 0)
        rows_quarantined, expected = quarantined.get(f.relative, 0), expected_rows[f.relative]
        if rows_read != expected or rows_read != rows_loaded + rows_quarantined:
            raise IngestionError(
                f"{contract.table}: row accounting failed for {f.relative}: the file holds {expected} "
                f"rows, the parser read {rows_read}, {rows_loaded} were loaded and {rows_quarantined} quarantined"
            )
        results.append(FileResult(contract.table, f.relative, f.content_hash, rows_read, rows_loaded, rows_quarantined))
    return results


def _move_to_quarantine(
    con: duckdb.DuckDBPyConnection, contract: SourceContract, condition: str, reason_sql: str, run_id: str
) -> int:
    """Move loaded rows of ``contract``'s table matching ``condition`` to the quarantine, keeping the ledger true.

    Their file's live ledger entry counts them as quarantined from now on, so
    ``rows read = loaded + quarantined`` still holds per file. Call inside a transaction.
    """
    table = _raw(contract.table)
    record = ", ".join(f"{safe_identifier(c)} := {safe_identifier(c)}" for c in contract.column_names)
    con.execute(
        f"""create or replace temp table _moved as
            select _source_file, _source_line, to_json(struct_pack({record}))::varchar as raw_record,
                   {reason_sql} as reason
            from {table} where {condition}"""
    )
    moved = con.execute("select count(*) from _moved").fetchone()[0]
    if not moved:
        return 0
    con.execute(
        f"""insert into {_raw(QUARANTINE_TABLE)}
            select $table, _source_file, _source_line, raw_record, reason, now(), $run_id from _moved""",
        {"table": contract.table, "run_id": run_id},
    )
    con.execute(
        f"""delete from {table} using _moved
            where {table}._source_file = _moved._source_file and {table}._source_line = _moved._source_line"""
    )
    con.execute(
        f"""update {_raw(LEDGER_TABLE)} as ledger
            set rows_loaded = rows_loaded - moved.n, rows_quarantined = rows_quarantined + moved.n
            from (select _source_file, count(*) as n from _moved group by 1) as moved
            where ledger.source_table = $table and ledger.superseded_at is null
              and ledger.file_path = moved._source_file""",
        {"table": contract.table},
    )
    return moved


def _quarantine_orphaned_children(store: RawStore, parent: SourceContract, run_id: str) -> int:
    """After ``parent``'s rows changed under loaded data: move child rows whose parent is gone to quarantine."""
    moved = 0
    with store.transaction():
        for child in CONTRACTS:
            for fk in child.foreign_keys:
                if fk.references_table != parent.table:
                    continue
                column = f"{safe_identifier(child.table)}.{safe_identifier(fk.column)}"
                # "not exists": Spark runs "not in" as a nested loop over both tables (judge_sql).
                moved += store.move_to_quarantine(
                    child,
                    f"""{column} is not null and not exists (
                            select 1 from {_raw(parent.table)} as parent
                            where parent.{safe_identifier(fk.references_column)} = {column})""",
                    _literal(
                        f"orphan {fk.column}: not in {parent.table} any more "
                        f"(its row was dropped by a re-delivered {parent.table} file)"
                    ),
                    run_id,
                )
    return moved


def _repair_ledger(store: RawStore, contract: SourceContract, run_id: str) -> list[str]:
    """Undo loads of files whose name an older version accepted but this one refuses (an impossible date).

    Their rows move to the quarantine and their ledger entries are superseded, so
    they cannot poison later runs; the files themselves (if still there) are refused.
    """
    bad = sorted(path for path in loaded_files(store.sql, contract.table) if recognise(path)[1] is not None)
    if not bad:
        return []
    with store.transaction():
        store.move_to_quarantine(
            contract,
            f"list_contains({_literal_list(bad)}, _source_file)",
            "'loaded by an older version from a file whose name is not a real date; moved to quarantine'",
            run_id,
        )
        store.supersede(contract, bad)
    log.warning(f"{contract.table}: moved the rows of {bad} to quarantine: their names are not real dates")
    return bad


def _literal_list(texts: Sequence[str]) -> str:
    return "[" + ", ".join(_literal(t) for t in texts) + "]::varchar[]"


#: The rows of ``raw.unloaded_files`` a source's run replaces: its own, and unrecognised files in its folder.
UNLOADED_OF_SOURCE = (
    "source_table = $table or (source_table is null and (source_system = $system or source_system is null))"
)


def unloaded_values(rows: Sequence[UnloadedFile], run_id: str) -> dict[str, object]:
    """Parameters of :data:`UNLOADED_INSERT` for ``rows``."""
    return {
        "paths": [f.path for f in rows],
        "sizes": [f.size for f in rows],
        "outcomes": [f.outcome for f in rows],
        "reasons": [f.reason for f in rows],
        "tables": [f.table for f in rows],
        "systems": [_system_folder(f.path) for f in rows],
        "run_id": run_id,
    }


#: The select of new ``raw.unloaded_files`` rows, parameters from :func:`unloaded_values`.
UNLOADED_INSERT = """select unnest($paths), unnest($sizes), unnest($outcomes), unnest($reasons),
                           unnest($tables), unnest($systems), now(), $run_id"""


def _record_unloaded(
    con: duckdb.DuckDBPyConnection, contract: SourceContract, rows: list[UnloadedFile], run_id: str
) -> None:
    """Replace this source's rows of ``raw.unloaded_files`` with what this run found."""
    with _transaction(con):
        con.execute(
            f"delete from {_raw(UNLOADED_FILES_TABLE)} where {UNLOADED_OF_SOURCE}",
            {"table": contract.table, "system": contract.system},
        )
        if rows:
            con.execute(f"insert into {_raw(UNLOADED_FILES_TABLE)} {UNLOADED_INSERT}", unloaded_values(rows, run_id))


def export_date(relative_path: str) -> date | None:
    """The export date in a landing file's name, or None (no date, or not a real date)."""
    match = re.search(_DATE_IN_NAME, relative_path)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


class RawStore(Protocol):
    """Where ingestion writes: the raw tables, the quarantine, the ledger and the unloaded files.

    :class:`DuckDBRawStore` (one transaction per batch) or
    :class:`crm_warehouse.ingest_spark.SparkRawStore` (partitions replaced per file, the
    ledger written last). Files are found, scanned and parsed the same way for both.
    """

    #: SQL on the stored tables, DuckDB's dialect (translated for Spark).
    sql: WarehouseSql

    def create_tables(self) -> None: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def remember_modified(self, contract: SourceContract, touched: list[_LandingFile]) -> None: ...

    def load_batch(
        self, contract: SourceContract, batch: list[_LandingFile], run_id: str, known: set[str], workdir: Path
    ) -> tuple[list[FileResult], list[UnloadedFile]]: ...

    def move_to_quarantine(self, contract: SourceContract, condition: str, reason_sql: str, run_id: str) -> int: ...

    def supersede(self, contract: SourceContract, paths: Sequence[str]) -> None: ...

    def record_unloaded(self, contract: SourceContract, rows: list[UnloadedFile], run_id: str) -> None: ...


class DuckDBRawStore:
    """The raw schema of a DuckDB warehouse: each batch, move and repair is one transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.sql = con

    def create_tables(self) -> None:
        create_raw_tables(self.sql)
        self.sql.execute(show_macro())

    def transaction(self) -> AbstractContextManager[None]:
        return _transaction(self.sql)

    def remember_modified(self, contract: SourceContract, touched: list[_LandingFile]) -> None:
        self.sql.execute(
            f"""update {_raw(LEDGER_TABLE)} as ledger set file_modified_ns = touched.modified_ns
                from (select unnest($paths) as file_path, unnest($modified) as modified_ns) as touched
                where ledger.source_table = $table and ledger.superseded_at is null
                  and ledger.file_path = touched.file_path""",
            {
                "table": contract.table,
                "paths": [f.relative for f in touched],
                "modified": [f.modified_ns for f in touched],
            },
        )

    def load_batch(
        self, contract: SourceContract, batch: list[_LandingFile], run_id: str, known: set[str], workdir: Path
    ) -> tuple[list[FileResult], list[UnloadedFile]]:
        return _load_batch(self.sql, contract, batch, run_id, known, workdir)

    def move_to_quarantine(self, contract: SourceContract, condition: str, reason_sql: str, run_id: str) -> int:
        return _move_to_quarantine(self.sql, contract, condition, reason_sql, run_id)

    def supersede(self, contract: SourceContract, paths: Sequence[str]) -> None:
        _supersede(self.sql, contract, paths)

    def record_unloaded(self, contract: SourceContract, rows: list[UnloadedFile], run_id: str) -> None:
        _record_unloaded(self.sql, contract, rows, run_id)


def ingest_table(
    con: duckdb.DuckDBPyConnection | RawStore,
    contract: SourceContract,
    landing_dir: Path,
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
    reload_dates: tuple[date, date] | None = None,
    batch_bytes: int = DEFAULT_INGEST_BATCH_BYTES,
    batch_values: int = DEFAULT_INGEST_BATCH_VALUES,
) -> TableResult:
    """Load the new and changed landing files of ``contract`` into ``raw.<table>``.

    A file whose path, size and modification time are in the ledger is skipped
    without being read; one whose time changed is hashed and skipped when its content
    hash is in the ledger. A file whose path is there with another hash (a corrected
    re-delivery) replaces the rows its earlier version loaded; child rows whose parent
    row went away with it are moved to the quarantine. ``reload_dates`` (first, last
    export date) re-processes the files of that range even when unchanged, replacing
    their rows: a backfill, which gives the same tables however often it runs. Files
    are read and committed in batches of at most ``batch_bytes`` (``CRM_INGEST_BATCH_BYTES``)
    and ``batch_values`` field values (``CRM_INGEST_BATCH_VALUES``; Parquet: bytes only).

    A file that cannot be loaded is refused (``result.refused``, ``raw.unloaded_files``)
    and the other files load; a file that is no source's is listed as not recognised
    (``result.unrecognised``). Raises :class:`IngestionError` only when the landing
    folder is missing or row accounting fails; batches committed before that stay.
    """
    landing_dir = Path(landing_dir).resolve()
    if not landing_dir.is_dir():
        raise IngestionError(
            f"landing folder {landing_dir} does not exist: generate demo data with "
            "`make data` or point CRM_LANDING_DIR at your exports"
        )
    run_id = run_id or uuid.uuid4().hex
    store = DuckDBRawStore(con) if isinstance(con, duckdb.DuckDBPyConnection) else con
    store.create_tables()
    repaired = _repair_ledger(store, contract, run_id)
    inventory = landing_inventory(landing_dir)
    known = loaded_files(store.sql, contract.table)
    new: list[_LandingFile] = []
    touched: list[_LandingFile] = []
    skipped = 0
    for relative in inventory.relative_files[contract.table]:
        path = landing_dir / relative
        loaded = known.get(relative)
        if _in_range(relative, reload_dates):
            new.append(_scan_file(path, landing_dir))
        elif loaded is not None and loaded.unchanged(path.stat()):
            # Only new or changed files are read: a daily run costs the day, not the history.
            skipped += 1
        else:
            scanned = _scan_file(path, landing_dir)
            if loaded is not None and loaded.content_hash == scanned.content_hash:
                skipped += 1
                touched.append(scanned)
            else:
                new.append(scanned)
    if touched:
        # Same content under a new modification time: remember the time so the next run skips it unread.
        store.remember_modified(contract, touched)
    result = TableResult(
        table=contract.table,
        run_id=run_id,
        skipped_files=skipped,
        refused=[f for f in inventory.refused_by_name if f.table == contract.table],
        unrecognised=inventory.unrecognised_for(contract),
    )
    batches = contract_batches(contract, new, batch_bytes, batch_values)
    workdir = Path(tempfile.mkdtemp(prefix="crm_ingest_"))
    try:
        for number, batch in enumerate(batches, start=1):
            files, refused = store.load_batch(contract, batch, run_id, set(known), workdir)
            result.files.extend(files)
            result.refused.extend(refused)
            message = (
                f"{contract.table}: batch {number}/{len(batches)}, {len(batch)} files, "
                f"{result.rows_loaded} rows loaded, {result.rows_quarantined} quarantined so far"
            )
            log.info(message)
            if progress:
                progress(message)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for unloaded in result.refused:
        log.warning(unloaded.message())
        if progress:
            progress(unloaded.message())
    if repaired or any(f.path in known for f in result.files):
        result.rows_moved_to_quarantine = _quarantine_orphaned_children(store, contract, run_id)
    store.record_unloaded(contract, [*result.refused, *result.unrecognised], run_id)
    result.quarantine_reasons = dict(
        store.sql.execute(
            f"""select reason, count(*) from {_raw(QUARANTINE_TABLE)}
                where run_id = $run_id and source_table = $table group by 1 order by 2 desc, 1""",
            {"run_id": run_id, "table": contract.table},
        ).fetchall()
    )
    result.table_rows = store.sql.execute(f"select count(*) from {_raw(contract.table)}").fetchone()[0]
    return result


def _in_range(relative_path: str, dates: tuple[date, date] | None) -> bool:
    if dates is None:
        return False
    day = export_date(relative_path)
    return day is not None and dates[0] <= day <= dates[1]


def source_freshness(
    con: WarehouseSql, contract: SourceContract, as_of: date | None = None
) -> tuple[date | None, date | None]:
    """(newest record date of ``contract``'s table, the as-of date it is judged against).

    The as-of date is ``as_of`` or, by default, the warehouse's
    (:func:`crm_warehouse.warehouse.as_of.latest_order_date`); None before any order
    is loaded. A source that stopped delivering while orders go on falls behind it.
    """
    as_of = as_of or latest_order_date(con)
    field = contract.loaded_at_field
    if field is None:
        return None, as_of
    newest = con.execute(f"select max({safe_identifier(field)})::date from {_raw(contract.table)}").fetchone()[0]
    return newest, as_of


def ingest_all(settings: Settings, run_id: str | None = None, tables: Sequence[str] | None = None) -> list[TableResult]:
    """Ingest every source table (or only ``tables``, none when empty) of ``settings.landing_dir``
    in dependency order, into the configured engine's raw schema."""
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    run_id = run_id or uuid.uuid4().hex
    contracts = list(CONTRACTS) if tables is None else [contract_for(t) for t in tables]
    if settings.engine == "spark":
        from crm_warehouse.ingest_spark import spark_raw_store  # it builds on this module

        store = spark_raw_store(settings)
    else:
        store = connect(settings, settings.warehouse_path)
    with store as target:
        return [
            ingest_table(
                target,
                c,
                settings.landing_dir,
                run_id,
                batch_bytes=settings.ingest_batch_bytes,
                batch_values=settings.ingest_batch_values,
            )
            for c in contracts
        ]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m crm_warehouse.ingest --landing DIR --warehouse FILE``.

    Exits 1 when a file was refused (the others are loaded) or ingestion failed.
    """
    import argparse

    from crm_warehouse.settings import load_settings

    settings = load_settings()
    parser = argparse.ArgumentParser(
        description="Load landing files into the raw schema of the warehouse: the DuckDB file, or Spark's "
        "raw database with CRM_ENGINE=spark."
    )
    parser.add_argument("--landing", type=Path, default=settings.landing_dir, help="landing folder")
    parser.add_argument("--warehouse", type=Path, default=settings.warehouse_path, help="DuckDB file (engine duckdb)")
    parser.add_argument("--table", action="append", help="only this raw table (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        chosen = replace(settings, warehouse_path=args.warehouse.resolve(), landing_dir=args.landing.resolve())
        results = ingest_all(chosen, tables=args.table)
    except IngestionError as exc:
        print(f"ingestion failed: {exc}")
        return 1
    for r in results:
        print(
            f"{r.table:<22} files {len(r.files):>5} new, {r.skipped_files:>5} skipped, {len(r.refused):>3} refused; "
            f"rows {r.rows_loaded:>9} loaded, {r.rows_quarantined:>6} quarantined"
        )
        for reason, count in r.quarantine_reasons.items():
            print(f"    {count:>6} quarantined: {reason}")
    unloaded = {f.path: f for r in results for f in (*r.refused, *r.unrecognised)}
    for f in unloaded.values():
        print(f.message())
    return 1 if any(r.refused for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
