"""The relations the Python side reads or writes, each with its Dagster asset key.

dbt owns the models; Python reads a few of them (the CLV and churn steps) and
writes the ``raw`` and ``analytics`` schemas. Naming them here, once, keeps a dbt
rename from breaking Python silently: every model in :data:`DBT_MODELS_READ` has an
enforced dbt contract (``contract: {enforced: true}``), and a test checks that this
list and the contracts agree. Asset keys are plain tuples so this module imports no
Dagster; the orchestration layer turns them into ``AssetKey``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm_warehouse.warehouse.catalog import table_exists
from crm_warehouse.warehouse.sql import qualified_name


@dataclass(frozen=True)
class Relation:
    """A table or view of the warehouse: ``schema.name``; its asset key is ``[schema, name]``."""

    schema: str
    name: str

    @property
    def asset_key_path(self) -> tuple[str, str]:
        return (self.schema, self.name)

    def sql(self, dialect: str = "duckdb") -> str:
        """The quoted name to put into SQL text."""
        return qualified_name(self.schema, self.name, dialect)

    def exists(self, con: Any) -> bool:
        """Whether the warehouse behind ``con`` (DuckDB or Spark) has this table or view."""
        return table_exists(con, self.schema, self.name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


# Sources Python writes: the raw tables of the ingestion contracts (crm_warehouse.contracts).
RAW_ORDERS = Relation("raw", "orders_orders")

# dbt models Python reads.
STG_CRM_CUSTOMERS = Relation("staging", "stg_crm__customers")
INT_CALENDAR_AS_OF = Relation("intermediate", "int_calendar__as_of")
INT_CUSTOMER_MONTHS_PANEL = Relation("intermediate", "int_customer_months__panel")
INT_CUSTOMER_MONTHS_STAGED = Relation("intermediate", "int_customer_months__staged")
INT_CUSTOMER_MONTHS_ACTIVITY = Relation("intermediate", "int_customer_months__activity")
INT_ORDER_DAYS_SEQUENCED = Relation("intermediate", "int_order_days__sequenced")
FCT_ORDERS = Relation("marts", "fct_orders")

#: What the CLV steps read.
CLV_INPUTS: tuple[Relation, ...] = (FCT_ORDERS, STG_CRM_CUSTOMERS)
#: What the churn steps read.
CHURN_INPUTS: tuple[Relation, ...] = (
    INT_CUSTOMER_MONTHS_PANEL,
    INT_CUSTOMER_MONTHS_STAGED,
    INT_CUSTOMER_MONTHS_ACTIVITY,
    INT_ORDER_DAYS_SEQUENCED,
    INT_CALENDAR_AS_OF,
    STG_CRM_CUSTOMERS,
)
#: Every dbt model Python reads: each has an enforced dbt contract.
DBT_MODELS_READ: tuple[Relation, ...] = tuple(dict.fromkeys((*CLV_INPUTS, *CHURN_INPUTS)))
