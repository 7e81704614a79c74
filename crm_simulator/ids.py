"""Business keys of the simulated systems: a letter and a zero-padded number."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from crm_simulator.text import id_text

# (prefix, digits) per entity; numbers start at 1.
CUSTOMER_ID = ("C", 7)
ORDER_ID = ("O", 9)
TICKET_ID = ("T", 9)
RESPONSE_ID = ("S", 9)
TOUCH_ID = ("M", 9)
PRODUCT_ID = ("P", 4)


def format_ids(spec: tuple[str, int], numbers: np.ndarray) -> pa.Array:
    """``spec`` prefix followed by ``numbers`` zero-padded to ``spec`` digits (wider if needed)."""
    prefix, width = spec
    return id_text(prefix, numbers, width)


def customer_ids(index: np.ndarray) -> pa.Array:
    """CRM ids of customers by 0-based index (C0000001 is index 0)."""
    return format_ids(CUSTOMER_ID, np.asarray(index, dtype=np.int64) + 1)
