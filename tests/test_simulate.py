"""Tests of the source-system simulator (crm_simulator).

Every run writes under pytest's tmp_path. The contract check below re-reads each landing
file independently of the simulator (Python csv/json parsers, DuckDB casts and the rule
predicates from contracts.py), so it catches both format slips in clean data and dirty
records that would not be detectable.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crm_simulator import SimulationConfig, simulate_company
from crm_simulator.__main__ import main
from crm_simulator.dirty import SPECS
from crm_simulator.files import csv_fields, csv_lines
from crm_simulator.lifecycle import STAGES
from crm_simulator.people import national_id_check
from crm_warehouse.contracts import CONTRACTS, SourceContract, contract_for

START = date(2024, 1, 1)
TIMESTAMP_TEXT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
DECIMAL_TYPE = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
# Which violation a dirty kind must produce (prefix of the reason the checker reports).
KIND_REASON = {
    "wrong_type": "cast:",
    "missing_key": "required:",
    "duplicate": "duplicate",
    "negative_quantity": "rule:quantity_positive",
    "future_date": "rule:",
    "orphan_customer": "fk:customer_id",
    "broken_quoting": "unparseable",
    "malformed_json": "unparseable",
    "out_of_range": "rule:",
}


@dataclass(frozen=True)
class Run:
    landing: Path
    truth: Path
    config: SimulationConfig


def _simulate(root: Path, **kwargs: object) -> Run:
    config = SimulationConfig(**kwargs)
    simulate_company(config, root / "landing")
    return Run(root / "landing", root / "truth", config)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _simulate(tmp_path_factory.mktemp("clean"), customers=3000, days=730, seed=7)


@pytest.fixture(scope="module")
def dirty_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _simulate(tmp_path_factory.mktemp("dirty"), customers=600, days=240, seed=3, dirty_rate=0.05)


def _hashes(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# --- an independent reader of the landing files ------------------------------------------


def _read_rows(contract: SourceContract, landing: Path) -> tuple[list[tuple], set[tuple[str, int]], list[str]]:
    """(rows as (file, line, export_date, *values), unparseable (file, line), format errors)."""
    rows, unparseable, errors = [], set(), []
    names = contract.column_names
    types = {c.name: c.type for c in contract.columns}
    for path in sorted(landing.glob(contract.file_glob)):
        rel = path.relative_to(landing).as_posix()
        exported = date.fromisoformat(path.name[:10])
        if contract.format == "parquet":
            table = pq.read_table(path)
            if tuple(table.column_names) != names:
                errors.append(f"{rel}: columns {table.column_names}")
            expected = {
                "VARCHAR": pa.types.is_string,
                "TIMESTAMP": pa.types.is_timestamp,
                "INTEGER": pa.types.is_int32,
                "DOUBLE": pa.types.is_float64,
            }
            for f in table.schema:
                if not expected[types[f.name]](f.type):
                    errors.append(f"{rel}: {f.name} stored as {f.type}")
            for i, record in enumerate(table.to_pylist(), start=1):
                rows.append((rel, i, exported, *(None if record[n] is None else str(record[n]) for n in names)))
            continue
        data = path.read_bytes()
        if b"\r" in data or not data.endswith(b"\n"):
            errors.append(f"{rel}: line endings")
        lines = data.decode("utf-8").split("\n")[:-1]
        first = 1
        if contract.format == "csv":
            if lines[0] != ",".join(names):
                errors.append(f"{rel}: header {lines[0]!r}")
            lines, first = lines[1:], 2
        if not lines:
            errors.append(f"{rel}: no records")
        for number, text in enumerate(lines, start=first):
            values = _parse_line(contract, text, types)
            if values is None:
                unparseable.add((rel, number))
            else:
                rows.append((rel, number, exported, *values))
    return rows, unparseable, errors


def _parse_line(contract: SourceContract, text: str, types: dict[str, str]) -> list[str | None] | None:
    names = contract.column_names
    if contract.format == "csv":
        try:
            fields = next(csv.reader([text], strict=True))
        except csv.Error:
            return None
        return [f if f != "" else None for f in fields] if len(fields) == len(names) else None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict) or tuple(record) != names:
        return None
    values = []
    for name in names:
        value = record[name]
        if value is None:
            values.append(None)
        elif types[name] == "BOOLEAN":
            values.append(("true" if value else "false") if isinstance(value, bool) else "not a boolean")
        elif types[name] in ("INTEGER", "DOUBLE") and isinstance(value, str):
            values.append(f"text {value}")
        else:
            values.append(str(value))
    return values


def _format_errors(contract: SourceContract, rows: list[tuple]) -> list[str]:
    """Text formats of the written values (clean files only)."""
    errors = []
    for column_index, column in enumerate(contract.columns, start=3):
        values = [r[column_index] for r in rows if r[column_index] is not None]
        if column.type == "TIMESTAMP":
            bad = [v for v in values if not TIMESTAMP_TEXT.fullmatch(v)]
        elif column.type == "DATE":
            bad = [v for v in values if not DATE_TEXT.fullmatch(v)]
        elif column.type == "BOOLEAN":
            bad = [v for v in values if v not in ("true", "false")]
        elif (match := DECIMAL_TYPE.fullmatch(column.type)) is not None:
            pattern = re.compile(rf"-?\d+(\.\d{{1,{match.group(2)}}})?")
            bad = [v for v in values if not pattern.fullmatch(v)]
        else:
            bad = []
        errors += [f"{contract.table}.{column.name}: {v!r}" for v in bad[:3]]
    return errors


def check_landing(landing: Path) -> tuple[dict[str, dict[tuple[str, int], set[str]]], list[str]]:
    """Contract violations per table and (file, line), plus format errors of the text."""
    con = duckdb.connect()
    violations: dict[str, dict[tuple[str, int], set[str]]] = {}
    format_errors: list[str] = []
    for contract in CONTRACTS:
        rows, unparseable, errors = _read_rows(contract, landing)
        format_errors += errors
        found: dict[tuple[str, int], set[str]] = {key: {"unparseable"} for key in unparseable}
        columns = ["_file", "_line", "_export_date", *contract.column_names]
        table = pa.table({name: [r[i] for r in rows] for i, name in enumerate(columns)}) if rows else None
        if table is None:
            violations[contract.table] = found
            continue
        format_errors += _format_errors(contract, rows)
        con.register("raw_rows", table)
        con.execute(f"create or replace table raw_{contract.table} as select * from raw_rows")
        typed = ", ".join(f"try_cast({c.name} as {c.type}) as {c.name}" for c in contract.columns)
        con.execute(
            f"create or replace view typed_{contract.table} as select _file, _line, _export_date::date as _export_date, {typed} from raw_{contract.table}"
        )
        checks = []
        for c in contract.columns:
            checks.append((f"cast:{c.name}", f"{c.name} is not null and try_cast({c.name} as {c.type}) is null", "raw"))
            if c.required:
                checks.append((f"required:{c.name}", f"{c.name} is null", "raw"))
        checks += [(f"rule:{r.name}", f"not coalesce({r.predicate}, true)", "typed") for r in contract.rules]
        key = contract.unique_key
        present = " and ".join(f"{k} is not null" for k in key)
        checks.append(("duplicate", f"{present} and count(*) over (partition by {', '.join(key)}) > 1", "typed"))
        for fk in contract.foreign_keys:
            checks.append(
                (
                    f"fk:{fk.column}",
                    f"{fk.column} is not null and {fk.column} not in (select {fk.references_column} from valid_{fk.references_table})",
                    "typed",
                )
            )
        for reason, condition, source in checks:
            relation = f"{source}_{contract.table}" if source == "raw" else f"typed_{contract.table}"
            query = f"select _file, _line from (select *, {condition} as bad from {relation}) where bad"
            for file, line in con.execute(query).fetchall():
                found.setdefault((file, line), set()).add(reason)
        # Rows that are fine apart from repeating (the original of a duplicate) stay referenceable.
        excluded = [k for k, v in found.items() if v != {"duplicate"}]
        con.register(
            "excluded",
            pa.table(
                {
                    "_file": pa.array([k[0] for k in excluded], pa.string()),
                    "_line": pa.array([k[1] for k in excluded], pa.int64()),
                }
            ),
        )
        con.execute(
            f"create or replace table valid_{contract.table} as select * from typed_{contract.table} anti join excluded using (_file, _line)"
        )
        con.unregister("excluded")
        con.unregister("raw_rows")
        violations[contract.table] = found
    return violations, format_errors


# --- determinism ---------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = _simulate(tmp_path / "a", customers=300, days=150, seed=5, dirty_rate=0.05)
    second = _simulate(tmp_path / "b", customers=300, days=150, seed=5, dirty_rate=0.05)
    assert _hashes(first.landing) == _hashes(second.landing)
    assert _hashes(first.truth) == _hashes(second.truth)
    assert len(_hashes(first.landing)) > 100


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    first = _simulate(tmp_path / "a", customers=300, days=150, seed=5)
    second = _simulate(tmp_path / "b", customers=300, days=150, seed=6)
    a, b = _hashes(first.landing), _hashes(second.landing)
    common = set(a) & set(b)
    assert sum(a[k] != b[k] for k in common) > 0.9 * len(common) - 1


# --- file layout and contracts ---------------------------------------------------------------


def test_files_are_laid_out_per_contract(clean_run: Run) -> None:
    landing, days = clean_run.landing, clean_run.config.days
    window = {(START + timedelta(days=d)).isoformat() for d in range(days)}
    written = {p.relative_to(landing).as_posix() for p in landing.rglob("*") if p.is_file()}
    expected = set()
    for contract in CONTRACTS:
        paths = sorted(landing.glob(contract.file_glob))
        assert paths, f"no files for {contract.table}"
        for path in paths:
            assert path.name[:10] in window
            assert path.relative_to(landing).as_posix() == contract.file_name(path.name[:10])
        expected |= {p.relative_to(landing).as_posix() for p in paths}
    assert written == expected, "files outside the contracts' layout"
    assert [p.name for p in (landing / "catalog").iterdir()] == [f"{START.isoformat()}.csv"]
    assert len(list(landing.glob("orders/*_orders.csv"))) > 700


def test_clean_files_follow_their_contracts(clean_run: Run) -> None:
    violations, format_errors = check_landing(clean_run.landing)
    assert format_errors == []
    assert {table: len(found) for table, found in violations.items()} == {c.table: 0 for c in CONTRACTS}


def test_versions_are_exported_on_the_days_they_change(clean_run: Run) -> None:
    con = duckdb.connect()
    landing = clean_run.landing
    con.execute(f"create view crm as select * from read_csv('{landing}/crm/*.csv', header=true, filename=true)")
    con.execute(
        f"create view tickets as select * from read_json('{landing}/support/*.jsonl', format='newline_delimited', filename=true)"
    )
    file_day = "regexp_extract(filename, '(\\d{4}-\\d{2}-\\d{2})')"
    assert con.sql(f"select count(*) from crm where updated_at::date::varchar <> {file_day}").fetchone()[0] == 0
    assert con.sql(f"select count(*) from tickets where updated_at::date::varchar <> {file_day}").fetchone()[0] == 0
    signups = con.sql("select count(*) from crm where updated_at = signup_at and status = 'active'").fetchone()[0]
    assert signups == clean_run.config.customers
    con.execute(
        "create view per_ticket as select ticket_id, count(*) as versions, bool_or(status = 'open') as has_open, "
        "bool_or(status = 'resolved') as has_resolved, count(distinct opened_at) as opened_values from tickets group by 1"
    )
    assert con.sql("select max(versions), max(opened_values) from per_ticket").fetchone() == (2, 1)
    assert (
        con.sql("select count(*) from per_ticket where versions = 2 and not (has_open and has_resolved)").fetchone()[0]
        == 0
    )
    assert con.sql("select count(*) from tickets where status = 'open' and resolved_at is not null").fetchone()[0] == 0


def test_csv_rendering_quotes_only_where_needed() -> None:
    table = pa.table(
        {"a": ["plain", 'Smart TV 55"', "Towel Set, 3 pcs", None], "b": pa.array([1, 2, None, 4], pa.int32())}
    )
    lines = csv_lines(csv_fields(table)).to_pylist()
    assert lines == ["plain,1\n", '"Smart TV 55""",2\n', '"Towel Set, 3 pcs",\n', ",4\n"]
    with pytest.raises(ValueError, match="line break"):
        csv_fields(pa.table({"a": ["two\nlines"]}))


def test_personal_data_looks_real(clean_run: Run) -> None:
    con = duckdb.connect()
    con.execute(
        f"create view crm as select * from read_csv('{clean_run.landing}/crm/*.csv', header=true, all_varchar=true)"
    )
    rows = con.sql("select name_zh, name_latin, phone, email, national_id, birth_date, gender from crm").fetchall()
    for name_zh, name_latin, phone, email, national_id, birth_date, gender in rows:
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,3}", name_zh)
        assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", name_latin)
        assert re.fullmatch(r"1[3-9]\d{9}", phone)
        if email is not None:
            assert email.startswith(name_latin.replace(" ", "").lower())
        if national_id is not None:
            assert national_id[6:14] == birth_date.replace("-", "")
            assert int(national_id[16]) % 2 == (gender == "M")
            body = np.array([[int(c) for c in national_id[:17]]])
            assert national_id_check(body)[0] == national_id[17]
    wallets = dict(
        con.sql("select customer_type, median(estimated_annual_wallet::double) from crm group by 1").fetchall()
    )
    assert wallets["key_account"] > wallets["distributor"] > 10 * wallets["consumer"]


def test_national_id_check_digit_of_the_textbook_example() -> None:
    assert national_id_check(np.array([[int(c) for c in "11010519491231002"]]))[0] == "X"


# --- realism on a fixed seed -------------------------------------------------------------------


def _csv(landing: Path, table: str) -> str:
    """A DuckDB read_csv call for a clean source, typed per its contract."""
    contract = contract_for(table)
    columns = ", ".join(f"'{c.name}': '{c.type}'" for c in contract.columns)
    return f"read_csv('{landing}/{contract.file_glob}', header=true, columns={{{columns}}})"


@pytest.fixture(scope="module")
def warehouse(clean_run: Run) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    landing, truth = clean_run.landing, clean_run.truth
    con.execute(f"""
        create view orders as select * from {_csv(landing, "orders_orders")};
        create view lines as select * from {_csv(landing, "orders_order_lines")};
        create view crm as select * from {_csv(landing, "crm_customers")};
        create view tickets as select * from read_json('{landing}/support/*.jsonl', format='newline_delimited');
        create view truth as select * from read_parquet('{truth}/customers.parquet');
        create view stages as select * from read_parquet('{truth}/stages_monthly.parquet');
    """)
    return con


def test_volumes_match_the_scale_target(warehouse: duckdb.DuckDBPyConnection, clean_run: Run) -> None:
    n = clean_run.config.customers
    orders, lines, buyers = warehouse.sql(
        "select (select count(*) from orders), (select count(*) from lines), (select count(distinct customer_id) from orders)"
    ).fetchone()
    assert 2.0 <= lines / orders <= 3.0
    assert 8.0 <= lines / n <= 13.0
    assert 0.15 <= 1 - buyers / n <= 0.25


def test_unresolved_complaints_come_before_more_churn(warehouse: duckdb.DuckDBPyConnection) -> None:
    rates = dict(
        warehouse.sql("""
        with latest as (
            select * from tickets qualify row_number() over (partition by ticket_id order by updated_at desc) = 1
        ),
        unresolved as (
            select distinct customer_id from latest
            where ticket_type = 'complaint' and status = 'open'
              and opened_at < (select max(updated_at) from tickets) - interval 30 day
        ),
        closed as (select distinct customer_id from crm where status = 'closed')
        select b.customer_id in (select customer_id from unresolved) as has_unresolved,
               avg((b.customer_id in (select customer_id from closed))::int) as closed_rate
        from (select distinct customer_id from orders) b group by 1
    """).fetchall()
    )
    assert rates[True] > rates[False] + 0.15


def test_closed_accounts_have_a_reason_and_stop_buying(warehouse: duckdb.DuckDBPyConnection) -> None:
    warehouse.execute("create or replace view closed as select * from crm where status = 'closed'")
    assert warehouse.sql("select count(*) from closed").fetchone()[0] > 100
    assert (
        warehouse.sql(
            "select count(*) from closed where close_reason is null or closed_at is null or closed_at <> updated_at"
        ).fetchone()[0]
        == 0
    )
    reasons = dict(warehouse.sql("select close_reason, count(*) from closed group by 1").fetchall())
    assert set(reasons) == {"company_dropped", "dissatisfied", "poached", "attracted", "forced", "other"}
    assert max(reasons, key=reasons.get) == "dissatisfied"
    late = warehouse.sql(
        "select count(*) from orders o join closed c using (customer_id) where o.ordered_at > c.closed_at"
    ).fetchone()[0]
    assert late == 0
    buyers_closed = warehouse.sql(
        "select count(distinct customer_id) from closed where customer_id in (select customer_id from orders)"
    ).fetchone()[0]
    churned_silently = warehouse.sql(
        "select count(*) from truth where pattern is not null and not closes_account"
    ).fetchone()[0]
    assert churned_silently < 0.25 * (buyers_closed + churned_silently)


def test_true_stages_follow_the_lifecycle(warehouse: duckdb.DuckDBPyConnection, clean_run: Run) -> None:
    order = "list_position(['prospect', 'exploration', 'formation', 'stability', 'decline', 'churned'], true_stage)"
    backwards = warehouse.sql(f"""
        select count(*) from (
            select {order} < lag({order}) over (partition by customer_id order by month_end) as back from stages
        ) where back
    """).fetchone()[0]
    assert backwards == 0
    assert set(warehouse.sql("select distinct true_stage from stages").fetchall()) == {(s,) for s in STAGES}
    last_month = warehouse.sql("select count(distinct month_end), max(month_end) from stages").fetchone()
    assert last_month == (24, date(2024, 12, 31) + timedelta(days=365))
    covered = warehouse.sql("select count(distinct customer_id) from stages").fetchone()[0]
    assert covered == clean_run.config.customers
    patterns = dict(
        warehouse.sql("select pattern, count(*) from truth where pattern is not null group by 1").fetchall()
    )
    assert set(patterns) == {"I", "II", "III", "IV"}


def test_true_stages_agree_with_plain_facts(warehouse: duckdb.DuckDBPyConnection) -> None:
    mismatches = warehouse.sql("""
        with first_order as (
            select customer_id, min(ordered_at)::date as first_day from orders where status = 'completed' group by 1
        ),
        closed as (select customer_id, closed_at::date as closed_day from crm where status = 'closed')
        select
            count(*) filter (where (true_stage = 'prospect') <> (f.first_day is null or f.first_day > s.month_end)),
            count(*) filter (where c.closed_day <= s.month_end and true_stage <> 'churned')
        from stages s left join first_order f using (customer_id) left join closed c using (customer_id)
    """).fetchone()
    assert mismatches == (0, 0)


def test_stages_look_like_table_3_1(warehouse: duckdb.DuckDBPyConnection) -> None:
    by_stage = {
        row[0]: row[1:]
        for row in warehouse.sql("""
            with per_order as (
                select o.customer_id, o.ordered_at, count(*) as n_lines, avg(l.discount_rate) as discount
                from orders o join lines l using (order_id) where o.status = 'completed' group by all
            ),
            staged as (
                select p.*, s.true_stage from per_order p
                join stages s on s.customer_id = p.customer_id and s.month_end = last_day(p.ordered_at::date)
            ),
            tickets_per_month as (
                select s.true_stage, count(t.ticket_id) * 1.0 / count(distinct (s.customer_id, s.month_end)) as per_month
                from stages s left join (select distinct ticket_id, customer_id, opened_at from tickets) t
                  on t.customer_id = s.customer_id and last_day(t.opened_at::date) = s.month_end
                group by 1
            )
            select true_stage, avg(n_lines), avg(discount), any_value(per_month)
            from staged join tickets_per_month using (true_stage) group by 1
        """).fetchall()
    }
    lines, discount, tickets = ({k: v[i] for k, v in by_stage.items()} for i in range(3))
    assert lines["exploration"] < lines["formation"] <= lines["stability"] + 0.1
    assert discount["exploration"] > discount["formation"] > discount["stability"] < discount["decline"]
    assert tickets["exploration"] > tickets["formation"] > tickets["stability"] < tickets["decline"]


# --- dirty records -----------------------------------------------------------------------------


def test_dirty_rate_zero_writes_an_empty_manifest(clean_run: Run) -> None:
    manifest = pq.read_table(clean_run.truth / "dirty_records.parquet")
    assert manifest.num_rows == 0
    assert manifest.column_names == ["source_table", "file", "line", "kind", "column_name"]


def test_dirty_records_are_exactly_the_contract_violations(dirty_run: Run) -> None:
    manifest = pq.read_table(dirty_run.truth / "dirty_records.parquet").to_pylist()
    violations, _ = check_landing(dirty_run.landing)
    for contract in CONTRACTS:
        table = contract.table
        listed = [m for m in manifest if m["source_table"] == table]
        assert {m["kind"] for m in listed} == set(SPECS[table].kinds(contract)), table
        found = violations[table]
        for m in listed:
            key = (m["file"], m["line"])
            assert (dirty_run.landing / m["file"]).exists()
            reasons = found.get(key, set())
            assert any(r.startswith(KIND_REASON[m["kind"]]) for r in reasons), (table, m, reasons)
        # Anything else flagged must be the original of an injected duplicate.
        listed_keys = {(m["file"], m["line"]) for m in listed}
        extra = {k: v for k, v in found.items() if k not in listed_keys}
        assert all(v == {"duplicate"} for v in extra.values()), (table, list(extra.items())[:3])
        duplicates = sum(m["kind"] == "duplicate" for m in listed)
        assert len(extra) <= duplicates


def test_dirty_rows_are_added_not_replacing(dirty_run: Run, tmp_path: Path) -> None:
    clean = _simulate(tmp_path, customers=600, days=240, seed=3)
    manifest = pq.read_table(dirty_run.truth / "dirty_records.parquet").to_pylist()
    injected = {(m["file"], m["line"]) for m in manifest}
    for contract in CONTRACTS:
        if contract.format == "parquet":
            continue
        for path in sorted(clean.landing.glob(contract.file_glob)):
            rel = path.relative_to(clean.landing).as_posix()
            first = 2 if contract.format == "csv" else 1
            dirty_lines = (dirty_run.landing / rel).read_text(encoding="utf-8").split("\n")[first - 1 : -1]
            kept = [text for number, text in enumerate(dirty_lines, start=first) if (rel, number) not in injected]
            assert kept == path.read_text(encoding="utf-8").split("\n")[first - 1 : -1], rel
    injected_per_table: dict[str, int] = {}
    for m in manifest:
        injected_per_table[m["source_table"]] = injected_per_table.get(m["source_table"], 0) + 1
    for table in ("orders_orders", "orders_order_lines", "support_tickets", "marketing_touches", "crm_customers"):
        contract = contract_for(table)
        clean_rows = sum(
            p.read_text(encoding="utf-8").count("\n") - (contract.format == "csv")
            for p in clean.landing.glob(contract.file_glob)
        )
        assert 0.03 <= injected_per_table[table] / clean_rows <= 0.08, table


# --- configuration and command line -----------------------------------------------------------


def test_truth_folder_never_inside_landing(tmp_path: Path) -> None:
    config = SimulationConfig(customers=50, days=30)
    with pytest.raises(ValueError, match="truth_dir"):
        simulate_company(config, tmp_path / "landing", tmp_path / "landing" / "truth")
    summary = simulate_company(config, tmp_path / "data" / "landing")
    assert summary.truth_dir == tmp_path / "data" / "truth"
    assert sorted(p.name for p in summary.truth_dir.iterdir()) == [
        "customers.parquet",
        "dirty_records.parquet",
        "stages_monthly.parquet",
    ]


def test_rerun_replaces_previous_files(tmp_path: Path) -> None:
    simulate_company(SimulationConfig(customers=80, days=60, seed=1), tmp_path / "landing")
    simulate_company(SimulationConfig(customers=80, days=20, seed=1), tmp_path / "landing")
    days = {p.name[:10] for p in (tmp_path / "landing").rglob("*.*")}
    assert max(days) < (START + timedelta(days=20)).isoformat()


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="dirty_rate"):
        SimulationConfig(dirty_rate=1.5)
    with pytest.raises(ValueError, match="customers"):
        SimulationConfig(customers=0)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--customers",
            "120",
            "--days",
            "45",
            "--seed",
            "2",
            "--out",
            str(tmp_path / "landing"),
            "--start-date",
            "2025-03-01",
            "--dirty-rate",
            "0.02",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "orders_order_lines" in out and "files" in out
    assert (tmp_path / "landing" / "catalog" / "2025-03-01.csv").exists()
    assert (tmp_path / "truth" / "stages_monthly.parquet").exists()
    assert (
        main(
            ["--out", str(tmp_path / "x"), "--truth-out", str(tmp_path / "x" / "t"), "--customers", "5", "--days", "5"]
        )
        == 2
    )


def test_exported_timestamps_are_not_in_the_future(clean_run: Run) -> None:
    con = duckdb.connect()
    late = con.sql(f"""
        select count(*) from read_csv('{clean_run.landing}/orders/*_orders.csv', header=true, filename=true)
        where ordered_at::date::varchar <> regexp_extract(filename, '(\\d{{4}}-\\d{{2}}-\\d{{2}})')
    """).fetchone()[0]
    assert late == 0
