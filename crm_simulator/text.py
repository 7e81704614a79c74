"""Fast text rendering of large columns (Arrow's generic casts are the simulator's bottleneck).

Fixed-width keys are built as a byte matrix with numpy; integers and decimals with few
distinct values are looked up from a small rendered table; codes are taken from their list.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# "00" .. "99" as byte pairs: two digits per integer division.
_PAIRS = np.array([[48 + i // 10, 48 + i % 10] for i in range(100)], dtype=np.uint8)
# Columns with at most this many distinct values are rendered through a lookup table.
LOOKUP_LIMIT = 2_000_000


def fixed_width(chars: np.ndarray) -> pa.Array:
    """String array from an (n, width) uint8 matrix of UTF-8 bytes (one row per value)."""
    n, width = chars.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars))).cast(
        pa.string()
    )


def id_text(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + ``numbers`` zero-padded to ``width`` digits (more if a number needs them)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers) and numbers.min() < 0:
        raise ValueError(f"ids must be non-negative, got {numbers.min()}")
    largest = int(numbers.max()) if len(numbers) else 0
    width = max(width, len(str(largest)))
    head = prefix.encode()
    chars = np.empty((len(numbers), len(head) + width), dtype=np.uint8)
    chars[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
    # 32-bit division is much faster than 64-bit; ids stay far below 2**32.
    rest = numbers.astype(np.uint32 if largest < 2**32 else np.uint64)
    position = chars.shape[1]
    while position - 2 >= len(head):
        chars[:, position - 2 : position] = _PAIRS[rest % 100]
        rest //= 100
        position -= 2
    if position > len(head):
        chars[:, position - 1] = 48 + rest % 10
    return fixed_width(chars)


def codes_text(codes: tuple[str, ...], index: np.ndarray) -> pa.Array:
    """The code at each position of ``index`` (an index into ``codes``)."""
    return pa.array(codes, pa.string()).take(pa.array(np.asarray(index, dtype=np.int64)))


def lookup_text(values: pa.Array) -> pa.Array:
    """Text of an integer or decimal column: a lookup table when its range is small, else a cast.

    Nulls stay null.
    """
    if pa.types.is_decimal(values.type):
        scale = values.type.scale
        units = _decimal_units(values)
    elif pa.types.is_integer(values.type):
        scale = 0
        units = pc.fill_null(values, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    else:
        raise ValueError(f"lookup_text renders integers and decimals, not {values.type}")
    if len(units) == 0:
        return pa.array([], pa.string())
    low, high = int(units.min()), int(units.max())
    if high - low >= LOOKUP_LIMIT:
        return values.cast(pa.string())
    table_units = np.arange(low, high + 1, dtype=np.int64)
    if scale:
        table = decimal_from_units(table_units, values.type).cast(pa.string())
    else:
        table = pa.array(table_units).cast(pa.string())
    text = table.take(pa.array(units - low))
    if values.null_count:
        text = pc.if_else(values.is_valid(), text, pa.scalar(None, pa.string()))
    return text


def _decimal_units(values: pa.Array) -> np.ndarray:
    """Unscaled integers of a decimal128 array whose values fit in 64 bits."""
    words = np.frombuffer(values.buffers()[1], dtype=np.int64)[2 * values.offset : 2 * (values.offset + len(values))]
    units = words[0::2].copy()
    if values.null_count:
        units[~values.is_valid().to_numpy(zero_copy_only=False)] = 0
    return units


def decimal_from_units(units: np.ndarray, dtype: pa.DataType) -> pa.Array:
    """Decimal array of ``dtype`` from unscaled integers (e.g. cents for scale 2)."""
    units = np.asarray(units, dtype=np.int64)
    words = np.stack([units, np.where(units < 0, -1, 0).astype(np.int64)], axis=1)
    return pa.Array.from_buffers(dtype, len(units), [None, pa.py_buffer(np.ascontiguousarray(words).tobytes())])


def has_any_byte(values: pa.Array, characters: str) -> bool:
    """Whether any value of a string array contains one of ``characters`` (ASCII)."""
    if len(values) == 0:
        return False
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32 if pa.types.is_string(values.type) else np.int64)
    data = values.buffers()[2]
    if data is None:
        return False
    first, last = int(offsets[values.offset]), int(offsets[values.offset + len(values)])
    raw = np.frombuffer(data, dtype=np.uint8)[first:last]
    return any(bool((raw == code).any()) for code in characters.encode())
