"""A SQL shell on the serving file, read-only: the project's DuckDB command line (``make sql``).

    python -m crm_warehouse.sql                      # the serving file of the configuration
    python -m crm_warehouse.sql path/to/file.duckdb  # any DuckDB file, still read-only
    echo "select count(*) from marts.dim_customers;" | python -m crm_warehouse.sql

Statements end with ``;``. Results print as tables; ``.tables`` lists the tables and
``.quit`` (or Ctrl-D) leaves. It uses the DuckDB of this environment, so it always reads
the files this warehouse writes (the stand-alone ``duckdb`` CLI must be the same
version, 1.5). Exit status: 1 if any statement failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

from crm_warehouse.warehouse.duckdb_connection import connect

PROMPT, MORE = "crm> ", "...> "


def run_statement(con: duckdb.DuckDBPyConnection, statement: str) -> bool:
    """Run one statement and print its result; False when it failed."""
    try:
        relation = con.sql(statement)
        if relation is not None:
            relation.show(max_rows=200, max_width=200)
    except duckdb.Error as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    from crm_warehouse.settings import load_settings

    settings = load_settings()
    path = Path(args[0]) if args else settings.serving_path
    if not path.is_file():
        print(f"no DuckDB file at {path}: run `make run` first, or name a file", file=sys.stderr)
        return 2
    interactive = sys.stdin.isatty()
    ok = True
    with connect(settings, path, read_only=True) as con:
        if interactive:
            print(f"{path} (read-only). End statements with ';'. .tables lists tables, .quit leaves.")
        buffer = ""
        while True:
            try:
                line = input(MORE if buffer else PROMPT) if interactive else sys.stdin.readline()
            except EOFError:
                break
            if not interactive and line == "":
                break
            command = line.strip()
            if not buffer and command in (".quit", ".exit"):
                break
            if not buffer and command == ".tables":
                ok &= run_statement(con, "select table_schema, table_name from information_schema.tables order by 1, 2")
                continue
            buffer += line + ("\n" if interactive else "")
            while ";" in buffer:
                statement, buffer = buffer.split(";", 1)
                if statement.strip():
                    ok &= run_statement(con, statement)
            if not buffer.strip():
                buffer = ""
        if buffer.strip():
            ok &= run_statement(con, buffer)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
