"""PostgreSQL serving target against a real server (scripts/postgres.sh or CRM_POSTGRES_DSN)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import psycopg
import pytest
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from serving import READER_PASSWORD

from crm_warehouse.publish import publish
from crm_warehouse.publish_postgres import READER_ROLE, publish_to_postgres
from crm_warehouse.settings import Settings, load_settings


@pytest.fixture
def pg(loader_dsn: str):
    """A clean database: no published schemas, no publish_log, no raw schema."""
    with psycopg.connect(loader_dsn, autocommit=True) as con:
        for schema in _user_schemas(con) - {"public"}:
            con.execute(f'drop schema "{schema}" cascade')
        con.execute("drop table if exists public.publish_log")
        yield con


def _user_schemas(con: psycopg.Connection) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "select nspname from pg_namespace where nspname !~ '^pg_' and nspname <> 'information_schema'"
        ).fetchall()
    }


def _reader_dsn(loader_dsn: str) -> str:
    return make_conninfo(**{**conninfo_to_dict(loader_dsn), "user": READER_ROLE, "password": READER_PASSWORD})


def _settings(tmp_path: Path) -> Settings:
    return load_settings({"CRM_DATA_DIR": str(tmp_path)})


def build_serving(tmp_path: Path, customers: int, name: str) -> Path:
    """A serving file like the pipeline's, with ``customers`` customers and 3 orders each."""
    warehouse_path = tmp_path / f"{name}_warehouse.duckdb"
    with duckdb.connect(str(warehouse_path)) as con:
        con.execute("create schema marts; create schema analytics")
        con.execute(
            """create table marts.dim_customers as
               select 'C' || lpad(i::varchar, 6, '0') as customer_id, 'stability' as stage_code,
                      (i * 10.5)::decimal(14, 2) as revenue, date '2024-01-01' + i::integer as signup_date
               from range($n) t(i)""",
            {"n": customers},
        )
        con.execute(
            """create table marts.fct_orders as
               select 'O' || i::varchar as order_id, 'C' || lpad((i // 3)::varchar, 6, '0') as customer_id,
                      timestamp '2024-01-01 10:00:00' + to_seconds(i) as ordered_at
               from range($n) t(i)""",
            {"n": customers * 3},
        )
        con.execute(
            "create table analytics.customer_clv as select customer_id, revenue * 2 as clv,"
            " cast(current_timestamp as timestamp) as scored_at from marts.dim_customers"
        )
        serving = tmp_path / name / "crm_serving.duckdb"
        publish(con, serving, f"build-{name}", checks_passed=7)
    warehouse_path.unlink()
    return serving


def published_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as con:
        return _counts(con)


def _counts(con: psycopg.Connection) -> dict[str, int]:
    # One statement: one snapshot of all tables, as a BI query would read them.
    row = con.execute(
        """select (select count(*) from marts.dim_customers), (select count(*) from marts.fct_orders),
                  (select count(*) from analytics.customer_clv)"""
    ).fetchone()
    return dict(zip(["marts.dim_customers", "marts.fct_orders", "analytics.customer_clv"], row, strict=True))


def test_tables_and_row_counts_arrive_with_a_publish_log(pg, loader_dsn, tmp_path):
    serving = build_serving(tmp_path, 200, "v1")

    result = publish_to_postgres(serving, loader_dsn, READER_PASSWORD, "run-1", settings=_settings(tmp_path))

    expected = {"analytics.customer_clv": 200, "marts.dim_customers": 200, "marts.fct_orders": 600}
    assert result.row_counts == expected
    assert published_counts(loader_dsn) == expected
    logged = pg.execute(
        "select table_name, row_count, checks_passed from publish_log where run_id = %s", ("run-1",)
    ).fetchall()
    assert sorted(logged) == [(name, rows, 7) for name, rows in sorted(expected.items())]
    types = dict(
        pg.execute(
            """select column_name, data_type from information_schema.columns
               where table_schema = 'marts' and table_name = 'dim_customers'"""
        ).fetchall()
    )
    assert types == {
        "customer_id": "character varying",
        "stage_code": "character varying",
        "revenue": "numeric",
        "signup_date": "date",
    }


def test_publishing_twice_leaves_no_stray_schemas_and_keeps_the_log(pg, loader_dsn, tmp_path):
    publish_to_postgres(
        build_serving(tmp_path, 100, "v1"), loader_dsn, READER_PASSWORD, "run-1", settings=_settings(tmp_path)
    )
    publish_to_postgres(
        build_serving(tmp_path, 150, "v2"), loader_dsn, READER_PASSWORD, "run-2", settings=_settings(tmp_path)
    )

    assert _user_schemas(pg) == {"public", "marts", "analytics"}
    assert published_counts(loader_dsn)["marts.dim_customers"] == 150
    assert pg.execute("select count(distinct run_id) from publish_log").fetchone()[0] == 2


def test_failed_load_keeps_the_previous_copy_and_cleans_up(pg, loader_dsn, tmp_path):
    publish_to_postgres(
        build_serving(tmp_path, 100, "v1"), loader_dsn, READER_PASSWORD, "run-1", settings=_settings(tmp_path)
    )
    broken = tmp_path / "broken" / "crm_serving.duckdb"
    broken.parent.mkdir()
    broken.write_bytes(b"not a duckdb file")

    with pytest.raises(duckdb.Error):
        publish_to_postgres(broken, loader_dsn, READER_PASSWORD, "run-2", settings=_settings(tmp_path))

    assert published_counts(loader_dsn)["marts.dim_customers"] == 100
    assert _user_schemas(pg) == {"public", "marts", "analytics"}


def _wait_for_a_blocked_swap(pg: psycopg.Connection, publisher: threading.Thread) -> bool:
    deadline = time.monotonic() + 60
    while publisher.is_alive() and time.monotonic() < deadline:
        waiting = pg.execute(
            "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query ilike 'drop schema%'"
        ).fetchone()[0]
        if waiting:
            return True
        time.sleep(0.05)
    return False


def test_readers_see_the_old_or_the_new_copy_never_a_mix(pg, loader_dsn, tmp_path):
    publish_to_postgres(
        build_serving(tmp_path, 100, "v1"), loader_dsn, READER_PASSWORD, "run-1", settings=_settings(tmp_path)
    )
    old = published_counts(loader_dsn)
    new_serving = build_serving(tmp_path, 3000, "v2")
    new = {"marts.dim_customers": 3000, "marts.fct_orders": 9000, "analytics.customer_clv": 3000}

    seen: list[dict[str, int]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def poll() -> None:
        # Bounded: at most 2000 queries or 60 s, in autocommit (each query its own snapshot).
        deadline = time.monotonic() + 60
        try:
            with psycopg.connect(loader_dsn, autocommit=True) as con:
                while not stop.is_set() and len(seen) < 2000 and time.monotonic() < deadline:
                    seen.append(_counts(con))
        except BaseException as exc:
            failures.append(exc)

    publisher_result: list[object] = []

    def run_publish() -> None:
        try:
            publisher_result.append(
                publish_to_postgres(new_serving, loader_dsn, READER_PASSWORD, "run-2", settings=_settings(tmp_path))
            )
        except BaseException as exc:
            failures.append(exc)

    poller = threading.Thread(target=poll)
    poller.start()
    # A BI session in a repeatable-read transaction, mid-way through its reads.
    with psycopg.connect(loader_dsn) as held:
        held.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        assert held.execute("select count(*) from marts.dim_customers").fetchone()[0] == 100
        publisher = threading.Thread(target=run_publish)
        publisher.start()
        assert _wait_for_a_blocked_swap(pg, publisher), "the swap never waited for the open transaction"
        # The swap waits for this transaction: it still reads the old copy, whole.
        assert _counts(held) == old
        held.commit()
    publisher.join(timeout=120)
    stop.set()
    poller.join(timeout=30)

    assert not failures, failures
    assert publisher_result, "the publish did not finish"
    assert published_counts(loader_dsn) == new
    assert seen, "the reader thread ran no query"
    assert {tuple(c.values()) for c in seen} <= {tuple(old.values()), tuple(new.values())}


def test_bi_reader_reads_marts_and_nothing_else(pg, loader_dsn, tmp_path):
    publish_to_postgres(
        build_serving(tmp_path, 50, "v1"), loader_dsn, READER_PASSWORD, "run-1", settings=_settings(tmp_path)
    )
    pg.execute("create schema raw; create table raw.customers as select 'secret' as national_id")

    with psycopg.connect(_reader_dsn(loader_dsn), autocommit=True) as reader:
        assert reader.execute("select count(*) from marts.dim_customers").fetchone()[0] == 50
        forbidden = [
            "insert into marts.dim_customers (customer_id) values ('X')",
            "delete from marts.fct_orders",
            "create table marts.scratch (i int)",
            "create schema scratch",
            "create temporary table scratch (i int)",
            "select * from raw.customers",
            "select * from analytics.customer_clv",
            "select * from public.publish_log",
            "create table public.scratch (i int)",
        ]
        for statement in forbidden:
            with pytest.raises((errors.InsufficientPrivilege, errors.ReadOnlySqlTransaction)):
                reader.execute(statement)
        # Read-only sessions are a default the role may lift; the grants still hold.
        reader.execute("set default_transaction_read_only = off")
        with pytest.raises(errors.InsufficientPrivilege):
            reader.execute("create table marts.scratch (i int)")
        with pytest.raises(errors.InsufficientPrivilege):
            reader.execute("update marts.dim_customers set stage_code = 'x'")


def test_postgres_asset_is_off_without_a_dsn_and_publishes_with_one(pg, loader_dsn, tmp_path):
    import dagster as dg

    from orchestration.assets.postgres import POSTGRES_KEY, postgres_assets
    from orchestration.resources import WarehouseResource

    assert postgres_assets(load_settings({"CRM_DATA_DIR": str(tmp_path)})) == []
    with pytest.raises(ValueError, match="CRM_POSTGRES_BI_PASSWORD"):
        postgres_assets(load_settings({"CRM_DATA_DIR": str(tmp_path), "CRM_POSTGRES_DSN": loader_dsn}))

    serving = build_serving(tmp_path, 80, "v1")
    settings = load_settings(
        {
            "CRM_DATA_DIR": str(tmp_path),
            "CRM_SERVING_PATH": str(serving),
            "CRM_POSTGRES_DSN": loader_dsn,
            "CRM_POSTGRES_BI_PASSWORD": READER_PASSWORD,
        }
    )
    [asset] = postgres_assets(settings)
    resources = {"warehouse": WarehouseResource.from_settings(settings)}
    node = dg.Definitions(assets=[asset], resources=resources).resolve_asset_graph().get(POSTGRES_KEY)
    assert node.group_name == "publish" and "postgres" in node.kinds
    assert [k.to_user_string() for k in node.parent_keys] == ["serving/crm_serving"]

    result = dg.materialize([asset], resources=resources)

    assert result.success
    [materialisation] = result.asset_materializations_for_node(asset.op.name)
    assert materialisation.metadata["rows"].value == 80 + 240 + 80
    assert published_counts(loader_dsn)["marts.dim_customers"] == 80
