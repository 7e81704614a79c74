"""Mart pictures on hand-made marts."""

from __future__ import annotations

import duckdb
import pytest

from crm_warehouse.mart_charts import stage_distribution_png, transitions_png, value_matrix_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def marts():
    with duckdb.connect() as con:
        con.execute("create schema marts")
        con.execute("""create table marts.customer_lifecycle as
                       select * from (values ('C1', 'stability'), ('C2', 'decline'), ('C3', 'stability'))
                       t(customer_id, stage_code)""")
        con.execute("""create table marts.lifecycle_transitions as
                       select * from (values (date '2025-11-01', 'formation', 'stability', 4),
                                             (date '2025-12-01', 'stability', 'decline', 2))
                       t(month_start, from_stage_code, to_stage_code, customers)""")
        con.execute("""create table marts.customer_value_segments as
                       select * from (values ('high', 'high', 'IV'), ('low', 'low', 'I'), ('low', 'low', 'I'))
                       t(current_value_level, growth_potential_level, value_class_code)""")
        yield con


@pytest.mark.parametrize("draw", [stage_distribution_png, transitions_png, value_matrix_png])
def test_each_chart_is_a_png(marts, draw):
    png = draw(marts)
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 5000


def test_charts_fail_clearly_without_the_marts():
    with duckdb.connect() as con, pytest.raises(duckdb.CatalogException, match="customer_lifecycle"):
        stage_distribution_png(con)
