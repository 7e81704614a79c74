"""Bad records added to the landing files (``--dirty-rate``).

A bad record is a copy of a real row of the same file that is then corrupted, placed at a
random position of that file. Every corrupted copy gets a fresh key (nothing references it,
and it does not collide with the original), except a ``duplicate`` (an exact copy) and a
``missing_key`` (key emptied). Clean rows are never changed, so the clean data stays
complete. Each kind breaks the contract in a way ingestion can see:

=================  ==========================================================
kind               contract check it fails
=================  ==========================================================
wrong_type         a value does not cast to the column type
missing_key        a required key column is empty
duplicate          the unique key (primary key + version column) repeats
negative_quantity  rule ``quantity_positive``
future_date        rule ``*_not_in_future`` (time after the file's export day)
orphan_customer    foreign key to ``crm_customers.customer_id``
broken_quoting     CSV: a quoted field with an unescaped quote (still one line)
malformed_json     JSONL: the line is not a JSON object
out_of_range       a range rule (scores, discount, price, wallet)
=================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crm_simulator import ids
from crm_simulator.config import SECONDS_PER_DAY
from crm_simulator.text import decimal_from_units
from crm_simulator.truth import DIRTY_KINDS
from crm_warehouse.contracts import SourceContract


@dataclass(frozen=True)
class DirtySpec:
    """How a table's rows are corrupted. ``future`` lists timestamp columns moved together
    (the first is pushed past the export day); ``out_of_range`` is (column, value in the
    column's storage units, e.g. cents)."""

    key: str
    key_family: str
    wrong_type: tuple[str, str] | None = None
    future: tuple[str, ...] = ()
    quote_column: str | None = None
    out_of_range: tuple[str, int] | None = None
    negative: str | None = None
    fresh_key_column: str | None = None

    def kinds(self, contract: SourceContract) -> tuple[str, ...]:
        has_customer_fk = any(fk.column == "customer_id" for fk in contract.foreign_keys)
        usable = {
            "wrong_type": self.wrong_type is not None and contract.format != "parquet",
            "missing_key": True,
            "duplicate": True,
            "negative_quantity": self.negative is not None,
            "future_date": bool(self.future),
            "orphan_customer": has_customer_fk,
            "broken_quoting": self.quote_column is not None and contract.format == "csv",
            "malformed_json": contract.format == "jsonl",
            "out_of_range": self.out_of_range is not None,
        }
        return tuple(kind for kind in DIRTY_KINDS if usable[kind])


SPECS: dict[str, DirtySpec] = {
    "catalog_products": DirtySpec(
        key="product_id",
        key_family="product",
        wrong_type=("list_price", "abc"),
        quote_column="list_price",
        out_of_range=("list_price", -500),
    ),
    "crm_customers": DirtySpec(
        key="customer_id",
        key_family="customer",
        wrong_type=("signup_at", "2024-13-45"),
        future=("signup_at", "updated_at", "closed_at"),
        quote_column="customer_type",
        out_of_range=("estimated_annual_wallet", -100_000),
    ),
    "orders_orders": DirtySpec(
        key="order_id",
        key_family="order",
        wrong_type=("ordered_at", "2024-13-45"),
        future=("ordered_at",),
        quote_column="channel",
    ),
    "orders_order_lines": DirtySpec(
        key="order_id",
        key_family="line_number",
        wrong_type=("quantity", "abc"),
        quote_column="product_id",
        out_of_range=("discount_rate", 12_500),
        negative="quantity",
        fresh_key_column="line_number",
    ),
    "support_tickets": DirtySpec(
        key="ticket_id",
        key_family="ticket",
        wrong_type=("opened_at", "2024-13-45"),
        future=("opened_at", "first_response_at", "resolved_at", "updated_at"),
        out_of_range=("satisfaction_after", 7),
    ),
    "surveys_responses": DirtySpec(
        key="response_id",
        key_family="response",
        future=("responded_at",),
        out_of_range=("csat", 7),
    ),
    "marketing_touches": DirtySpec(
        key="touch_id",
        key_family="touch",
        wrong_type=("sent_at", "2024-13-45"),
        future=("sent_at", "responded_at"),
        quote_column="channel",
    ),
}

_ID_SPECS: dict[str, tuple[str, int]] = {
    "customer": ids.CUSTOMER_ID,
    "order": ids.ORDER_ID,
    "ticket": ids.TICKET_ID,
    "response": ids.RESPONSE_ID,
    "touch": ids.TOUCH_ID,
    "product": ids.PRODUCT_ID,
}
# Fresh line numbers sit far above any real order's line count.
FIRST_FRESH_LINE_NUMBER = 10_000


class KeyAllocator:
    """Hands out keys no clean row uses; families continue after the real entities."""

    def __init__(self, first_free: dict[str, int]) -> None:
        self._next = dict(first_free)
        self._next.setdefault("line_number", FIRST_FRESH_LINE_NUMBER)

    def numbers(self, family: str, count: int) -> np.ndarray:
        start = self._next[family]
        self._next[family] = start + count
        return np.arange(start, start + count, dtype=np.int64)

    def keys(self, family: str, count: int) -> pa.Array:
        numbers = self.numbers(family, count)
        if family == "line_number":
            return pa.array(numbers.astype(np.int32), pa.int32())
        return ids.format_ids(_ID_SPECS[family], numbers)


@dataclass(frozen=True)
class DirtyRows:
    """Corrupted copies (typed), the clean row each follows, and what was done to it."""

    table: pa.Table
    day: np.ndarray
    after: np.ndarray
    kind: np.ndarray
    column: np.ndarray


def _replace(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), table.schema.field(name), values)


def _shift_future(
    table: pa.Table, columns: tuple[str, ...], day: np.ndarray, day0_epoch: int, rng: np.random.Generator
) -> pa.Table:
    """Move the timestamp columns forward together so the first lands after the export day."""
    unit = 1_000_000 if table.schema.field(columns[0]).type.unit == "us" else 1

    def as_int(name: str) -> tuple[np.ndarray, np.ndarray]:
        column = table.column(name).combine_chunks()
        values = pc.fill_null(column.cast(pa.int64()), 0).to_numpy()
        return values, column.is_null().to_numpy(zero_copy_only=False)

    main, _ = as_int(columns[0])
    day_end = (day0_epoch + (day + 1) * SECONDS_PER_DAY) * unit
    shift = day_end - main + rng.integers(3_600, 20 * SECONDS_PER_DAY, len(day)) * unit
    for name in columns:
        values, null = as_int(name)
        shifted = pa.array(values + shift, pa.int64()).cast(table.schema.field(name).type)
        table = _replace(table, name, pc.if_else(pa.array(null), pa.scalar(None, shifted.type), shifted))
    return table


def _set_value(table: pa.Table, name: str, value: int) -> pa.Table:
    field_type = table.schema.field(name).type
    n = table.num_rows
    if pa.types.is_decimal(field_type):
        values = decimal_from_units(np.full(n, value), field_type)
    else:
        values = pa.array(np.full(n, value), field_type)
    return _replace(table, name, values)


def make_dirty_rows(
    contract: SourceContract,
    table: pa.Table,
    day: np.ndarray,
    rate: float,
    rng: np.random.Generator,
    keys: KeyAllocator,
    orphan_ids: Callable[[int], pa.Array],
    day0_epoch: int,
) -> DirtyRows | None:
    """Corrupted copies of about ``rate`` x rows of ``table`` (rows sorted by export ``day``)."""
    spec = SPECS[contract.table]
    n = table.num_rows
    if rate <= 0 or n == 0:
        return None
    kinds = spec.kinds(contract)
    per_kind = max(1, round(rate * n / len(kinds)))
    day_start = np.searchsorted(day, day, side="left")
    day_stop = np.searchsorted(day, day, side="right")
    parts, part_kind, part_column, part_source = [], [], [], []
    for kind in kinds:
        source = np.sort(rng.integers(0, n, per_kind))
        copy = table.take(pa.array(source))
        column = None
        if kind == "missing_key":
            column = spec.key
            copy = _replace(copy, spec.key, pa.nulls(per_kind, copy.schema.field(spec.key).type))
        elif kind != "duplicate":
            fresh = spec.fresh_key_column or spec.key
            copy = _replace(copy, fresh, keys.keys(spec.key_family, per_kind))
            if kind == "wrong_type":
                column = spec.wrong_type[0]
            elif kind == "future_date":
                column = spec.future[0]
                copy = _shift_future(copy, spec.future, day[source], day0_epoch, rng)
            elif kind == "orphan_customer":
                column = "customer_id"
                copy = _replace(copy, "customer_id", orphan_ids(per_kind))
            elif kind == "broken_quoting":
                column = spec.quote_column
            elif kind == "out_of_range":
                column = spec.out_of_range[0]
                copy = _set_value(copy, *spec.out_of_range)
            elif kind == "negative_quantity":
                column = spec.negative
                copy = _replace(copy, column, pc.negate(copy.column(column)))
        parts.append(copy)
        part_kind.append(np.full(per_kind, kind, dtype=object))
        part_column.append(np.full(per_kind, column, dtype=object))
        part_source.append(source)
    source = np.concatenate(part_source)
    after = day_start[source] + (rng.random(len(source)) * (day_stop[source] - day_start[source])).astype(np.int64)
    return DirtyRows(
        table=pa.concat_tables(parts),
        day=day[source],
        after=after,
        kind=np.concatenate(part_kind),
        column=np.concatenate(part_column),
    )


def corrupt_fields(
    spec: DirtySpec, names: tuple[str, ...], fields: list[pa.Array], kind: np.ndarray, json: bool
) -> list[pa.Array]:
    """Apply the text-level corruptions (wrong types, broken quoting) to rendered fields."""
    fields = list(fields)
    if spec.wrong_type is not None:
        name, text = spec.wrong_type
        j = names.index(name)
        literal = f'"{text}"' if json else text
        fields[j] = pc.if_else(pa.array(kind == "wrong_type"), pa.scalar(literal), fields[j])
    if spec.quote_column is not None and not json:
        j = names.index(spec.quote_column)
        value = fields[j]
        broken = pc.binary_join_element_wise(
            pa.scalar('"'),
            pc.utf8_slice_codeunits(value, 0, 1),
            pa.scalar('"'),
            pc.utf8_slice_codeunits(value, 1, -1),
            pa.scalar('"'),
            pc.utf8_slice_codeunits(value, -1),
            pa.scalar('"'),
            "",
        )
        fields[j] = pc.if_else(pa.array(kind == "broken_quoting"), broken, value)
    return fields


def break_json(lines: pa.Array, kind: np.ndarray) -> pa.Array:
    """Cut the last key/value pair and the closing brace off the ``malformed_json`` lines."""
    cut = pc.replace_substring_regex(lines, pattern=r',"[a-z_]+":[^,]*}\n$', replacement="\n")
    return pc.if_else(pa.array(kind == "malformed_json"), cut, lines)


def merge_order(n_clean: int, after: np.ndarray) -> np.ndarray:
    """Positions (into clean rows followed by dirty rows) in file order: each dirty row
    right after the clean row it follows."""
    key = np.concatenate([2 * np.arange(n_clean, dtype=np.int64), 2 * after + 1])
    return np.argsort(key, kind="stable")
