"""Contract-checked ingestion of landing files into the ``raw`` schema of DuckDB.

For each source table the new landing files are read with DuckDB's own readers,
split into fields, cast to the contract's types and judged against the contract.
Rows that pass go to ``raw.<table>``; rows that do not go to ``raw.quarantine`` with
their file, line, raw text and the reason. An ingestion ledger records every file
(path, content hash, rows read, loaded, quarantined), so a file is loaded once, and
for every file ``rows read = loaded + quarantined`` is proved against an independent
count (newlines in the file, or the Parquet footer) before the batch commits.

Why CSV is split from ``read_text`` and not parsed by ``read_csv``: DuckDB's CSV
reader merges the lines after an unterminated quote into one rejected record, and at
the end of a file drops them with no reject at all, so it cannot account for every
row. Our contract is one record per physical line; lines are split in SQL (a plain
split for lines without quotes, a strict RFC-4180 pattern for lines with quotes),
which keeps exact line numbers and every malformed line.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from crm_warehouse.contracts import (
    CONTRACTS,
    LEDGER_TABLE,
    QUARANTINE_TABLE,
    RAW_SCHEMA,
    Column,
    SourceContract,
    contract_for,
)
from crm_warehouse.warehouse.as_of import latest_order_date
from crm_warehouse.warehouse.sql import safe_identifier

log = logging.getLogger(__name__)

# A batch holds at most this many bytes of landing files, so memory stays bounded
# however much history lands at once; each batch commits on its own.
BATCH_BYTES = 256 * 1024 * 1024

_CSV_FIELD = r'(?:"(?:[^"]|"")*"|[^,"]*)'
_INTEGER_TEXT = r"-?[0-9]+"
_DATE_IN_NAME = r"([0-9]{4}-[0-9]{2}-[0-9]{2})"


class IngestionError(RuntimeError):
    """A landing file cannot be ingested at all, or a batch failed its row accounting."""


@dataclass(frozen=True)
class FileResult:
    """Outcome for one landing file."""

    table: str
    path: str
    content_hash: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int


@dataclass
class TableResult:
    """Outcome of ingesting one source table."""

    table: str
    run_id: str
    files: list[FileResult] = field(default_factory=list)
    skipped_files: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    table_rows: int = 0

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _raw(table: str) -> str:
    return f"{safe_identifier(RAW_SCHEMA)}.{safe_identifier(table)}"


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``raw`` schema, one table per contract, the quarantine and the ledger."""
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


def _scan_file(path: Path, landing_dir: Path) -> _LandingFile:
    stat = path.stat()
    digest = hashlib.sha256()
    newlines = 0
    last = b""
    first_line = b""
    with path.open("rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            if not first_line:
                first_line = chunk.split(b"\n", 1)[0]
            digest.update(chunk)
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
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
        ends_with_newline=last == b"\n",
        first_line=first_line,
    )


def discover_files(landing_dir: Path, contract: SourceContract) -> list[Path]:
    """Landing files of ``contract``, in export-date order."""
    return sorted(landing_dir.glob(contract.file_glob))


@dataclass(frozen=True)
class _LedgerEntry:
    content_hash: str
    size: int
    modified_ns: int | None

    def unchanged(self, stat: os.stat_result) -> bool:
        """Same size and modification time as when loaded: the rule rsync uses to skip a file."""
        return (self.size, self.modified_ns) == (stat.st_size, stat.st_mtime_ns)


def _loaded_files(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, _LedgerEntry]:
    rows = con.execute(
        f"select file_path, content_hash, file_bytes, file_modified_ns from {_raw(LEDGER_TABLE)} "
        "where source_table = $table and superseded_at is null",
        {"table": table},
    ).fetchall()
    return {path: _LedgerEntry(content_hash, size, modified_ns) for path, content_hash, size, modified_ns in rows}


def _typed_expression(column: Column) -> tuple[str, str]:
    """SQL for the typed value of a text field and for "the text did not fit the type".

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
    fits = f"{typed} is not null"
    if pattern:
        fits += f" and regexp_full_match({text}, '{pattern}')"
        typed = f"case when regexp_full_match({text}, '{pattern}') then {typed} end"
    return typed, f"({text} is not null and not ({fits}))"


def _parse_text_lines(contract: SourceContract) -> str:
    """SQL over ``read_text($files)`` giving one row per data line with text fields.

    Columns: _source_file, _source_line, raw_record, parse_error, f_<column>...
    """
    names = contract.column_names
    n = len(names)
    lines = f"""
        split as (
            select filename, string_split(content, chr(10)) as lines from read_text($files)
        ),
        lines as (
            select filename, unnest(lines) as line, generate_subscripts(lines, 1) as line_no,
                   len(lines) as line_count
            from split
        ),
        data_lines as (
            select * from lines
            where line_no > {_header_lines(contract)} and not (line_no = line_count and line = '')
        )"""
    if contract.format == "jsonl":
        fields = ",\n".join(
            f"case when parse_error is null then json_extract_string(line, '$.{c}') end as f_{c}" for c in names
        )
        return f"""
        with {lines},
        judged as (
            select filename, line_no, line,
                   case
                       when line = '' then 'empty line'
                       when not json_valid(line) then 'malformed JSON'
                       when json_type(line) <> 'OBJECT' then 'JSON line is not an object'
                   end as parse_error
            from data_lines
        )
        select filename as _source_file, line_no as _source_line, line as raw_record,
               parse_error, {fields}
        from judged"""
    # CSV: fields of lines with no quote come from a plain split; lines with quotes
    # must match the strict pattern, then each quoted field is unquoted.
    pieces = ",\n".join(
        f"""nullif(case when starts_with(fields[{i + 1}], '"')
                 then replace(fields[{i + 1}][2:-2], '""', '"')
                 else fields[{i + 1}] end, '') as f_{name}"""
        for i, name in enumerate(names)
    )
    return f"""
        with {lines},
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


def _parse_parquet(contract: SourceContract) -> str:
    fields = ",\n".join(f"cast({safe_identifier(c)} as varchar) as f_{c}" for c in contract.column_names)
    return f"""
        select filename as _source_file, file_row_number + 1 as _source_line,
               to_json(columns_only) as raw_record, null::varchar as parse_error, {fields}
        from (
            select *, struct_pack({", ".join(f"{safe_identifier(c)} := {safe_identifier(c)}" for c in contract.column_names)})
                   as columns_only
            from read_parquet($files, filename = true, file_row_number = true, union_by_name = true)
        )"""


def _judge_sql(contract: SourceContract) -> str:
    """SQL over the parsed batch (table ``_parsed``) giving typed values and a reason.

    ``reason`` lists every broken part of the contract, most basic first; null means
    the row is loaded.
    """
    typed: list[str] = []
    type_checks: list[str] = []
    for column in contract.columns:
        expression, misfit = _typed_expression(column)
        typed.append(f"{expression} as {safe_identifier(column.name)}")
        type_checks.append(
            f"case when {misfit} then 'bad type: {column.name}=' || f_{column.name} || ' is not {column.type}' end"
        )
    required = [
        f"case when f_{c.name} is null then 'missing required value: {c.name}' end"
        for c in contract.columns
        if c.required
    ]
    rules = [f"case when not coalesce({r.predicate}, true) then {_literal(r.reason)} end" for r in contract.rules]
    foreign = [
        f"""case when {safe_identifier(fk.column)} is not null and {safe_identifier(fk.column)} not in (
                select {safe_identifier(fk.references_column)} from {_raw(fk.references_table)}
            ) then {_literal(f"orphan {fk.column}: not in {fk.references_table}")} end"""
        for fk in contract.foreign_keys
    ]
    key = ", ".join(safe_identifier(c) for c in contract.unique_key)
    key_null = " or ".join(f"{safe_identifier(c)} is null" for c in contract.unique_key)
    key_matches = " and ".join(f"loaded.{safe_identifier(c)} = keyed.{safe_identifier(c)}" for c in contract.unique_key)
    contract_reasons = ", ".join(required + type_checks)
    return f"""
        with typed as (
            select _source_file, _source_line, raw_record, parse_error,
                   try_cast(regexp_extract(_source_file, '{_DATE_IN_NAME}', 1) as date) as _export_date,
                   {", ".join(typed)},
                   {", ".join(f"f_{c}" for c in contract.column_names)}
            from _parsed
        ),
        basic as (
            select *, coalesce(parse_error, nullif(concat_ws('; ', {contract_reasons}), '')) as basic_reason
            from typed
        ),
        ruled as (
            select *, nullif(concat_ws('; ', basic_reason{"".join(", " + r for r in rules)}), '')
                      as rule_reason
            from basic
        ),
        keyed as (
            select *,
                   case when rule_reason is null and not ({key_null}) then
                       row_number() over (partition by {key} order by _source_file, _source_line)
                   end as key_rank
            from ruled
        ),
        final as (
            select *,
                   nullif(concat_ws('; ',
                       rule_reason,
                       case when key_rank > 1 then 'duplicate key ({", ".join(contract.unique_key)})' end,
                       case when key_rank = 1 and exists (
                                select 1 from {_raw(contract.table)} as loaded where {key_matches})
                            then 'duplicate key ({", ".join(contract.unique_key)}): already loaded' end
                       {"".join(", " + f for f in foreign)}
                   ), '') as reason
            from keyed
        )
        select * exclude ({", ".join(f"f_{c}" for c in contract.column_names)}) from final"""


def _batches(files: Sequence[_LandingFile]) -> list[list[_LandingFile]]:
    batches: list[list[_LandingFile]] = []
    current: list[_LandingFile] = []
    size = 0
    for f in files:
        if current and size + f.size > BATCH_BYTES:
            batches.append(current)
            current, size = [], 0
        current.append(f)
        size += f.size
    if current:
        batches.append(current)
    return batches


def _read_batch(
    con: duckdb.DuckDBPyConnection, contract: SourceContract, batch: list[_LandingFile], landing_dir: Path
) -> None:
    """Parse ``batch`` into the temp table ``_parsed``; name the file that cannot be read."""
    sql = _parse_parquet(contract) if contract.format == "parquet" else _parse_text_lines(contract)
    try:
        con.execute(
            f"create or replace temp table _parsed as {sql}",
            {"files": [str(f.path) for f in batch]},
        )
    except duckdb.Error as batch_error:
        for f in batch:
            try:
                con.execute(f"select count(*) from ({sql})", {"files": [str(f.path)]})
            except duckdb.Error as file_error:
                raise IngestionError(f"{contract.table}: cannot read {f.path}: {file_error}") from file_error
        raise IngestionError(f"{contract.table}: cannot read batch: {batch_error}") from batch_error
    # Lineage keeps the path relative to the landing root, so it survives a move.
    con.execute(
        "update _parsed set _source_file = replace(substr(_source_file, length($prefix) + 1), '\\', '/')",
        {"prefix": str(landing_dir) + "/"},
    )
    if contract.format != "parquet":
        _check_headers(con, contract, batch)
    else:
        _check_parquet_columns(con, contract, batch)


def _check_headers(con: duckdb.DuckDBPyConnection, contract: SourceContract, batch: list[_LandingFile]) -> None:
    if contract.format == "jsonl":
        # JSON lines have no header: line 1 is data, already in the batch.
        return
    expected = ",".join(contract.column_names)
    for f in batch:
        # The scan that hashed the file kept its first line; no second read.
        header = f.first_line.decode("utf-8", errors="replace").rstrip("\r")
        if header != expected:
            raise IngestionError(
                f"{contract.table}: cannot read {f.path}: header {header!r} does not match "
                f"the contract's columns {expected!r}"
            )


def _check_parquet_columns(con: duckdb.DuckDBPyConnection, contract: SourceContract, batch: list[_LandingFile]) -> None:
    columns: dict[str, set[str]] = {str(f.path): set() for f in batch}
    for file_name, name in con.execute(
        "select file_name, name from parquet_schema($files)", {"files": list(columns)}
    ).fetchall():
        columns[file_name].add(name)
    for f in batch:
        missing = [c for c in contract.column_names if c not in columns[str(f.path)]]
        if missing:
            raise IngestionError(
                f"{contract.table}: cannot read {f.path}: columns {missing} of the contract are missing"
            )


def _expected_rows(
    con: duckdb.DuckDBPyConnection, contract: SourceContract, batch: list[_LandingFile]
) -> dict[str, int]:
    """Rows per file (by relative path) by a count independent of the parser."""
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


def _header_lines(contract: SourceContract) -> int:
    return 1 if contract.format == "csv" else 0


def _load_batch(
    con: duckdb.DuckDBPyConnection,
    contract: SourceContract,
    batch: list[_LandingFile],
    run_id: str,
    replaced: set[str],
    landing_dir: Path,
) -> list[FileResult]:
    columns = ", ".join(safe_identifier(c) for c in contract.column_names)
    table = _raw(contract.table)
    con.execute("begin transaction")
    try:
        if replaced:
            # A corrected file replaces everything its earlier version loaded.
            con.execute(f"delete from {table} where list_contains($paths, _source_file)", {"paths": sorted(replaced)})
            con.execute(
                f"delete from {_raw(QUARANTINE_TABLE)} where source_table = $t and list_contains($paths, source_file)",
                {"t": contract.table, "paths": sorted(replaced)},
            )
            con.execute(
                f"update {_raw(LEDGER_TABLE)} set superseded_at = now() "
                "where source_table = $t and superseded_at is null and list_contains($paths, file_path)",
                {"t": contract.table, "paths": sorted(replaced)},
            )
        _read_batch(con, contract, batch, landing_dir)
        con.execute(f"create or replace temp table _judged as {_judge_sql(contract)}")
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
        results = _account(con, contract, batch, run_id)
        # One insert per batch: executemany costs a statement per file.
        con.execute(
            f"""insert into {_raw(LEDGER_TABLE)}
                select $table, unnest($paths), unnest($hashes), unnest($sizes), unnest($read),
                       unnest($loaded), unnest($quarantined), now(), $run_id, null, unnest($modified)""",
            {
                "table": contract.table,
                "paths": [r.path for r in results],
                "hashes": [r.content_hash for r in results],
                "sizes": [f.size for f in batch],
                "modified": [f.modified_ns for f in batch],
                "read": [r.rows_read for r in results],
                "loaded": [r.rows_loaded for r in results],
                "quarantined": [r.rows_quarantined for r in results],
                "run_id": run_id,
            },
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return results


def _account(
    con: duckdb.DuckDBPyConnection, contract: SourceContract, batch: list[_LandingFile], run_id: str
) -> list[FileResult]:
    """Prove, per file, rows read = loaded + quarantined, against an independent count."""
    counts = {
        path: (read, loaded, quarantined)
        for path, read, loaded, quarantined in con.execute(
            f"""
            with parsed as (select _source_file as path, count(*) as n from _parsed group by 1),
            loaded as (select _source_file as path, count(*) as n from {_raw(contract.table)}
                       where _run_id = $run_id group by 1),
            quarantined as (select source_file as path, count(*) as n from {_raw(QUARANTINE_TABLE)}
                            where run_id = $run_id and source_table = $table group by 1)
            select parsed.path, parsed.n, coalesce(loaded.n, 0), coalesce(quarantined.n, 0)
            from parsed
            left join loaded using (path)
            left join quarantined using (path)
            """,
            {"run_id": run_id, "table": contract.table},
        ).fetchall()
    }
    results = []
    expected_rows = _expected_rows(con, contract, batch)
    for f in batch:
        read, loaded, quarantined = counts.get(f.relative, (0, 0, 0))
        expected = expected_rows[f.relative]
        if read != expected or read != loaded + quarantined:
            raise IngestionError(
                f"{contract.table}: row accounting failed for {f.relative}: the file holds {expected} "
                f"rows, the parser read {read}, {loaded} were loaded and {quarantined} quarantined"
            )
        results.append(FileResult(contract.table, f.relative, f.content_hash, read, loaded, quarantined))
    return results


def export_date(relative_path: str) -> date | None:
    """The export date in a landing file's name, or None."""
    match = re.search(_DATE_IN_NAME, relative_path)
    return date.fromisoformat(match.group(1)) if match else None


def ingest_table(
    con: duckdb.DuckDBPyConnection,
    contract: SourceContract,
    landing_dir: Path,
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
    reload_dates: tuple[date, date] | None = None,
) -> TableResult:
    """Load the new and changed landing files of ``contract`` into ``raw.<table>``.

    A file whose path, size and modification time are in the ledger is skipped
    without being read; one whose time changed is hashed and skipped when its content
    hash is in the ledger. A file whose path is there with another hash (a corrected
    re-delivery) replaces the rows its earlier version loaded. ``reload_dates`` (first, last export date) re-processes
    the files of that range even when unchanged, replacing their rows: a backfill,
    which gives the same tables however often it runs. Raises
    :class:`IngestionError` naming the file when a file cannot be read, and when row
    accounting fails; batches committed before that stay.
    """
    landing_dir = Path(landing_dir).resolve()
    if not landing_dir.is_dir():
        raise IngestionError(
            f"landing folder {landing_dir} does not exist: generate demo data with "
            "`make data` or point CRM_LANDING_DIR at your exports"
        )
    run_id = run_id or uuid.uuid4().hex
    create_raw_tables(con)
    known = _loaded_files(con, contract.table)
    new: list[_LandingFile] = []
    touched: list[_LandingFile] = []
    skipped = 0
    for path in discover_files(landing_dir, contract):
        relative = path.relative_to(landing_dir).as_posix()
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
        con.execute(
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
    result = TableResult(table=contract.table, run_id=run_id, skipped_files=skipped)
    batches = _batches(new)
    for number, batch in enumerate(batches, start=1):
        replaced = {f.relative for f in batch if f.relative in known}
        result.files.extend(_load_batch(con, contract, batch, run_id, replaced, landing_dir))
        message = (
            f"{contract.table}: batch {number}/{len(batches)}, {len(batch)} files, "
            f"{result.rows_loaded} rows loaded, {result.rows_quarantined} quarantined so far"
        )
        log.info(message)
        if progress:
            progress(message)
    result.quarantine_reasons = dict(
        con.execute(
            f"""select reason, count(*) from {_raw(QUARANTINE_TABLE)}
                where run_id = $run_id and source_table = $table group by 1 order by 2 desc""",
            {"run_id": run_id, "table": contract.table},
        ).fetchall()
    )
    result.table_rows = con.execute(f"select count(*) from {_raw(contract.table)}").fetchone()[0]
    return result


def _in_range(relative_path: str, dates: tuple[date, date] | None) -> bool:
    if dates is None:
        return False
    day = export_date(relative_path)
    return day is not None and dates[0] <= day <= dates[1]


def source_freshness(
    con: duckdb.DuckDBPyConnection, contract: SourceContract, as_of: date | None = None
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


def ingest_all(
    warehouse_path: Path, landing_dir: Path, run_id: str | None = None, tables: Sequence[str] | None = None
) -> list[TableResult]:
    """Ingest every source table (or ``tables``) in dependency order."""
    warehouse_path = Path(warehouse_path)
    warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    run_id = run_id or uuid.uuid4().hex
    contracts = [contract_for(t) for t in tables] if tables else list(CONTRACTS)
    with duckdb.connect(str(warehouse_path)) as con:
        return [ingest_table(con, c, Path(landing_dir), run_id) for c in contracts]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m crm_warehouse.ingest --landing DIR --warehouse FILE``."""
    import argparse

    from crm_warehouse.settings import load_settings

    settings = load_settings()
    parser = argparse.ArgumentParser(description="Load landing files into the raw schema of a DuckDB warehouse.")
    parser.add_argument("--landing", type=Path, default=settings.landing_dir, help="landing folder")
    parser.add_argument("--warehouse", type=Path, default=settings.warehouse_path, help="DuckDB file")
    parser.add_argument("--table", action="append", help="only this raw table (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        results = ingest_all(args.warehouse, args.landing, tables=args.table)
    except IngestionError as exc:
        print(f"ingestion failed: {exc}")
        return 1
    for r in results:
        print(
            f"{r.table:<22} files {len(r.files):>5} new, {r.skipped_files:>5} skipped; "
            f"rows {r.rows_loaded:>9} loaded, {r.rows_quarantined:>6} quarantined"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
