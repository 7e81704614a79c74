"""SQL text the Python side writes: identifier quoting per engine.

Every identifier Python puts into SQL goes through :func:`quote_identifier`, so a
second engine (Spark quotes with backticks) needs a change here only.
"""

from __future__ import annotations

import re

#: Engines whose SQL the project writes, and the quote character of each.
_QUOTES = {"duckdb": '"', "postgres": '"', "spark": "`"}
_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def quote_identifier(name: str, dialect: str = "duckdb") -> str:
    """``name`` quoted for ``dialect``; a quote character inside the name is doubled."""
    try:
        quote = _QUOTES[dialect]
    except KeyError:
        raise ValueError(f"dialect={dialect!r} is not one of {sorted(_QUOTES)}") from None
    return quote + name.replace(quote, quote * 2) + quote


def safe_identifier(name: str, dialect: str = "duckdb") -> str:
    """``name`` quoted, refusing anything but a plain identifier (names that come from files or users)."""
    if not _PLAIN_IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return quote_identifier(name, dialect)


def qualified_name(schema: str, name: str, dialect: str = "duckdb") -> str:
    """``schema.name`` with both parts quoted."""
    return f"{quote_identifier(schema, dialect)}.{quote_identifier(name, dialect)}"
