"""Source contracts: the one place that says what each source system exports.

Every landing file is checked against its contract on ingestion. A contract names
the columns (with the DuckDB type they are cast to), the keys that must be present,
the row-level rules a record must satisfy, and where the files live. The simulator
writes files that follow these contracts, ingestion enforces them, and the dbt
sources describe the resulting ``raw`` tables.

Landing layout: ``<landing>/<system>/<YYYY-MM-DD>.<ext>`` for a system that exports
one entity, ``<landing>/<system>/<YYYY-MM-DD>_<entity>.<ext>`` for one that exports
several (orders: headers and lines). The date in the name is the export day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FileFormat = Literal["csv", "jsonl", "parquet"]
ExtraColumns = Literal["refuse", "ignore"]

RAW_SCHEMA = "raw"
QUARANTINE_TABLE = "quarantine"
LEDGER_TABLE = "ingestion_ledger"
#: Landing files that were not loaded: refused (with the reason) or not recognised as any source's file.
UNLOADED_FILES_TABLE = "unloaded_files"

# Code lists shared by the simulator, the contracts and the dbt accepted_values tests.
CUSTOMER_TYPES = ("consumer", "distributor", "key_account", "public_body")
CUSTOMER_STATUSES = ("active", "closed")
CLOSE_REASONS = ("company_dropped", "dissatisfied", "poached", "attracted", "forced", "other")
ACQUISITION_CHANNELS = ("store", "online", "referral", "partner", "event", "telesales")
GENDERS = ("F", "M")
ORDER_CHANNELS = ("store", "online", "app", "phone", "partner")
ORDER_STATUSES = ("completed", "cancelled", "refunded")
TICKET_CHANNELS = ("phone", "email", "chat", "store", "app")
TICKET_TYPES = ("inquiry", "complaint", "praise")
TICKET_CATEGORIES = ("product_quality", "delivery", "billing", "service_attitude", "account", "other")
FAULT_PARTIES = ("company", "customer", "third_party", "none")
TICKET_STATUSES = ("open", "resolved")
TOUCH_CHANNELS = ("sms", "email", "call", "letter", "gift")
TOUCH_TYPES = ("birthday_greeting", "care_call", "promotion", "win_back", "new_product", "holiday_greeting")


@dataclass(frozen=True)
class Column:
    """One exported column.

    ``type`` is the DuckDB type the text is cast to; a value that does not cast is a
    contract breach. ``required`` columns must be present and non-empty.
    """

    name: str
    type: str
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Rule:
    """A row-level rule over the typed columns: ``predicate`` must be true.

    ``predicate`` is a DuckDB SQL boolean expression over the typed column names and
    ``_export_date`` (the date in the file name). A null result counts as passing, so
    rules only judge the values that are present; presence is ``required``'s job.
    """

    name: str
    predicate: str
    reason: str


@dataclass(frozen=True)
class ForeignKey:
    """A reference to a key of another source table (checked at ingestion)."""

    column: str
    references_table: str
    references_column: str


@dataclass(frozen=True)
class SourceContract:
    system: str
    entity: str
    format: FileFormat
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    description: str
    rules: tuple[Rule, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    # Sources whose records are re-exported when they change keep every version;
    # their key is unique per (primary key, version column).
    version_column: str | None = None
    # Several entities in one system folder are told apart by a file-name suffix.
    file_suffix: str | None = None
    loaded_at_field: str | None = None
    # How many days the newest record may lag the run's as-of date before the source
    # counts as stale (None: reference data, not expected to change daily).
    max_lag_days: int | None = 2
    # Text encoding of CSV / JSON lines files. A file that is not valid in it is refused
    # with the encoding it looks like; another encoding (e.g. "gb18030", "cp1252") is
    # converted to UTF-8 on reading. A UTF-8 byte-order mark is always accepted.
    encoding: str = "utf-8"
    # Schema drift, the same rule for CSV (header), Parquet (schema) and JSON lines (keys):
    # a column of the contract missing from a file refuses the file; columns in another
    # order are matched by name; a column the contract does not know refuses the file
    # ("refuse") or is dropped on reading ("ignore").
    extra_columns: ExtraColumns = "refuse"
    # True: leading and trailing white space of every field is removed before judging.
    # False: a padded key (primary, version or foreign key column) is quarantined.
    trim_values: bool = False

    @property
    def table(self) -> str:
        """Name of the raw table (schema ``raw``)."""
        return f"{self.system}_{self.entity}"

    @property
    def extension(self) -> str:
        return self.format

    @property
    def key_columns(self) -> tuple[str, ...]:
        """Columns that identify or reference records: primary, version and foreign key columns."""
        return tuple(dict.fromkeys((*self.unique_key, *(fk.column for fk in self.foreign_keys))))

    @property
    def file_glob(self) -> str:
        """Glob, relative to the landing root, matching this source's files (lower-case extension).

        Ingestion itself recognises files by :func:`crm_warehouse.ingest.recognise`, which
        also accepts an upper-case extension and reports every other file.
        """
        stem = "????-??-??" + (f"_{self.file_suffix}" if self.file_suffix else "")
        return f"{self.system}/{stem}.{self.extension}"

    def file_name(self, export_date: str) -> str:
        """Relative path of the file exported on ``export_date`` (YYYY-MM-DD)."""
        stem = export_date + (f"_{self.file_suffix}" if self.file_suffix else "")
        return f"{self.system}/{stem}.{self.extension}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def unique_key(self) -> tuple[str, ...]:
        return self.primary_key + ((self.version_column,) if self.version_column else ())


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} in ({quoted})"


def _not_after_export(column: str) -> Rule:
    # Export files are written at the end of their day; a time after that is in the future.
    return Rule(
        name=f"{column}_not_in_future",
        predicate=f"{column} < _export_date + interval 1 day",
        reason=f"future date: {column} is after the file's export date",
    )


CATALOG_PRODUCTS = SourceContract(
    system="catalog",
    entity="products",
    format="csv",
    description="Product catalogue (reference data): one row per product.",
    columns=(
        Column("product_id", "VARCHAR", required=True, description="Product code, e.g. P0001."),
        Column("product_name", "VARCHAR", required=True, description="Product name."),
        Column("category", "VARCHAR", required=True, description="Product category code."),
        Column("list_price", "DECIMAL(12,2)", required=True, description="List price per unit."),
        Column("unit_cost", "DECIMAL(12,2)", required=True, description="Cost per unit."),
        Column("updated_at", "TIMESTAMP", required=True, description="When the catalogue row last changed."),
    ),
    primary_key=("product_id",),
    version_column="updated_at",
    rules=(
        Rule("price_positive", "list_price > 0", "non-positive list_price"),
        Rule("cost_not_negative", "unit_cost >= 0", "negative unit_cost"),
    ),
    loaded_at_field="updated_at",
    max_lag_days=None,
)

CRM_CUSTOMERS = SourceContract(
    system="crm",
    entity="customers",
    format="csv",
    description=(
        "CRM customer records. A customer is exported on the day it is created and again"
        " on every day it changes (for example when the account closes); every version is kept."
    ),
    columns=(
        Column("customer_id", "VARCHAR", required=True, description="CRM customer id, e.g. C0000001."),
        Column("name_zh", "VARCHAR", description="Name in Chinese characters (personal data)."),
        Column("name_latin", "VARCHAR", description="Name in Latin letters (personal data)."),
        Column("gender", "VARCHAR", description="F or M."),
        Column("birth_date", "DATE", description="Date of birth (personal data)."),
        Column("city", "VARCHAR", description="City of residence or registration."),
        Column(
            "customer_type", "VARCHAR", required=True, description="consumer, distributor, key_account or public_body."
        ),
        Column("acquisition_channel", "VARCHAR", description="How the customer was won."),
        Column("signup_at", "TIMESTAMP", required=True, description="When the CRM record was created."),
        Column("email", "VARCHAR", description="E-mail address (personal data)."),
        Column("phone", "VARCHAR", description="Mobile phone number (personal data)."),
        Column("national_id", "VARCHAR", description="18-character national id number (personal data)."),
        Column(
            "estimated_annual_wallet",
            "DECIMAL(14,2)",
            description="Estimated total yearly spend in the category, all suppliers.",
        ),
        Column("status", "VARCHAR", required=True, description="active or closed."),
        Column("closed_at", "TIMESTAMP", description="When the account was closed; empty while active."),
        Column("close_reason", "VARCHAR", description="Churn reason code when closed (domain.md section 4)."),
        Column("updated_at", "TIMESTAMP", required=True, description="When this version of the record was written."),
    ),
    primary_key=("customer_id",),
    version_column="updated_at",
    rules=(
        Rule("customer_type_known", _in("customer_type", CUSTOMER_TYPES), "unknown customer_type"),
        Rule("status_known", _in("status", CUSTOMER_STATUSES), "unknown status"),
        Rule("gender_known", _in("gender", GENDERS), "unknown gender"),
        Rule("close_reason_known", _in("close_reason", CLOSE_REASONS), "unknown close_reason"),
        Rule(
            "closed_has_reason",
            "status <> 'closed' or (closed_at is not null and close_reason is not null)",
            "closed account without closed_at or close_reason",
        ),
        Rule("wallet_not_negative", "estimated_annual_wallet >= 0", "negative estimated_annual_wallet"),
        _not_after_export("signup_at"),
        _not_after_export("updated_at"),
    ),
    loaded_at_field="updated_at",
)

ORDERS_ORDERS = SourceContract(
    system="orders",
    entity="orders",
    format="csv",
    file_suffix="orders",
    description="Order headers, exported on the day the order was placed.",
    columns=(
        Column("order_id", "VARCHAR", required=True, description="Order id, e.g. O000000001."),
        Column("customer_id", "VARCHAR", required=True, description="CRM customer id."),
        Column("ordered_at", "TIMESTAMP", required=True, description="When the order was placed."),
        Column("channel", "VARCHAR", required=True, description="Sales channel."),
        Column("status", "VARCHAR", required=True, description="completed, cancelled or refunded."),
    ),
    primary_key=("order_id",),
    foreign_keys=(ForeignKey("customer_id", "crm_customers", "customer_id"),),
    rules=(
        Rule("channel_known", _in("channel", ORDER_CHANNELS), "unknown channel"),
        Rule("status_known", _in("status", ORDER_STATUSES), "unknown status"),
        _not_after_export("ordered_at"),
    ),
    loaded_at_field="ordered_at",
)

ORDERS_ORDER_LINES = SourceContract(
    system="orders",
    entity="order_lines",
    format="csv",
    file_suffix="order_lines",
    description="Order lines, exported with their order header.",
    columns=(
        Column("order_id", "VARCHAR", required=True, description="Order id of the header."),
        Column("line_number", "INTEGER", required=True, description="Line number within the order, from 1."),
        Column("product_id", "VARCHAR", required=True, description="Product code."),
        Column("category", "VARCHAR", required=True, description="Product category code."),
        Column("quantity", "INTEGER", required=True, description="Units bought."),
        Column("unit_price", "DECIMAL(12,2)", required=True, description="Price per unit before discount."),
        Column(
            "discount_rate", "DECIMAL(5,4)", required=True, description="Discount as a fraction of the price, 0 to <1."
        ),
        Column("unit_cost", "DECIMAL(12,2)", required=True, description="Cost per unit."),
    ),
    primary_key=("order_id", "line_number"),
    foreign_keys=(
        ForeignKey("order_id", "orders_orders", "order_id"),
        ForeignKey("product_id", "catalog_products", "product_id"),
    ),
    rules=(
        Rule("quantity_positive", "quantity > 0", "non-positive quantity"),
        Rule("price_not_negative", "unit_price >= 0", "negative unit_price"),
        Rule("discount_in_range", "discount_rate >= 0 and discount_rate < 1", "discount_rate outside [0, 1)"),
        Rule("cost_not_negative", "unit_cost >= 0", "negative unit_cost"),
    ),
    # Lines carry no time of their own; their freshness is their order headers'.
    max_lag_days=None,
)

SUPPORT_TICKETS = SourceContract(
    system="support",
    entity="tickets",
    format="jsonl",
    description=(
        "Service tickets (JSON lines). A ticket is exported when opened and again when resolved; every version is kept."
    ),
    columns=(
        Column("ticket_id", "VARCHAR", required=True, description="Ticket id, e.g. T000000001."),
        Column("customer_id", "VARCHAR", required=True, description="CRM customer id."),
        Column("opened_at", "TIMESTAMP", required=True, description="When the customer contacted us."),
        Column("first_response_at", "TIMESTAMP", description="First answer by an agent."),
        Column("resolved_at", "TIMESTAMP", description="When the ticket was resolved; empty while open."),
        Column("channel", "VARCHAR", required=True, description="Contact channel."),
        Column("ticket_type", "VARCHAR", required=True, description="inquiry, complaint or praise."),
        Column("category", "VARCHAR", description="What the ticket is about."),
        Column("fault_party", "VARCHAR", description="Who caused the problem: company, customer, third_party, none."),
        Column(
            "first_contact_resolved", "BOOLEAN", description="Resolved in the first contact, no transfer or call-back."
        ),
        Column("escalated", "BOOLEAN", description="Escalated to a supervisor or specialist team."),
        Column("satisfaction_after", "INTEGER", description="Customer's rating of the handling, 1-5."),
        Column("status", "VARCHAR", required=True, description="open or resolved."),
        Column("updated_at", "TIMESTAMP", required=True, description="When this version was written."),
    ),
    primary_key=("ticket_id",),
    version_column="updated_at",
    foreign_keys=(ForeignKey("customer_id", "crm_customers", "customer_id"),),
    rules=(
        Rule("channel_known", _in("channel", TICKET_CHANNELS), "unknown channel"),
        Rule("type_known", _in("ticket_type", TICKET_TYPES), "unknown ticket_type"),
        Rule("category_known", _in("category", TICKET_CATEGORIES), "unknown category"),
        Rule("fault_party_known", _in("fault_party", FAULT_PARTIES), "unknown fault_party"),
        Rule("status_known", _in("status", TICKET_STATUSES), "unknown status"),
        Rule("satisfaction_in_range", "satisfaction_after between 1 and 5", "satisfaction_after outside 1-5"),
        Rule("response_after_open", "first_response_at >= opened_at", "first_response_at before opened_at"),
        Rule("resolved_after_open", "resolved_at >= opened_at", "resolved_at before opened_at"),
        _not_after_export("opened_at"),
        _not_after_export("updated_at"),
    ),
    loaded_at_field="updated_at",
)

SURVEYS_RESPONSES = SourceContract(
    system="surveys",
    entity="responses",
    format="parquet",
    description="Satisfaction survey responses (Parquet).",
    columns=(
        Column("response_id", "VARCHAR", required=True, description="Response id, e.g. S000000001."),
        Column("customer_id", "VARCHAR", required=True, description="CRM customer id."),
        Column("responded_at", "TIMESTAMP", required=True, description="When the survey was answered."),
        Column("csat", "INTEGER", description="Customer satisfaction, 1-5."),
        Column("nps", "INTEGER", description="Likelihood to recommend, 0-10."),
        Column("expectation_score", "DOUBLE", description="What the customer expected, 1-10."),
        Column("perception_score", "DOUBLE", description="What the customer perceived, 1-10."),
        Column("repurchase_intent", "INTEGER", description="Intent to buy again, 1-5."),
    ),
    primary_key=("response_id",),
    foreign_keys=(ForeignKey("customer_id", "crm_customers", "customer_id"),),
    rules=(
        Rule("csat_in_range", "csat between 1 and 5", "csat outside 1-5"),
        Rule("nps_in_range", "nps between 0 and 10", "nps outside 0-10"),
        Rule("expectation_in_range", "expectation_score between 1 and 10", "expectation_score outside 1-10"),
        Rule("perception_in_range", "perception_score between 1 and 10", "perception_score outside 1-10"),
        Rule("intent_in_range", "repurchase_intent between 1 and 5", "repurchase_intent outside 1-5"),
        _not_after_export("responded_at"),
    ),
    loaded_at_field="responded_at",
    max_lag_days=7,
)

MARKETING_TOUCHES = SourceContract(
    system="marketing",
    entity="touches",
    format="csv",
    description="Marketing touches sent to customers, exported on the day they were sent.",
    columns=(
        Column("touch_id", "VARCHAR", required=True, description="Touch id, e.g. M000000001."),
        Column("customer_id", "VARCHAR", required=True, description="CRM customer id."),
        Column("campaign_id", "VARCHAR", required=True, description="Campaign code."),
        Column("campaign_name", "VARCHAR", description="Campaign name."),
        Column("channel", "VARCHAR", required=True, description="sms, email, call, letter or gift."),
        Column("touch_type", "VARCHAR", required=True, description="Purpose of the touch."),
        Column("sent_at", "TIMESTAMP", required=True, description="When it was sent."),
        Column("responded", "BOOLEAN", required=True, description="Whether the customer responded."),
        Column("responded_at", "TIMESTAMP", description="When the customer responded."),
    ),
    primary_key=("touch_id",),
    foreign_keys=(ForeignKey("customer_id", "crm_customers", "customer_id"),),
    rules=(
        Rule("channel_known", _in("channel", TOUCH_CHANNELS), "unknown channel"),
        Rule("touch_type_known", _in("touch_type", TOUCH_TYPES), "unknown touch_type"),
        Rule("response_after_send", "responded_at >= sent_at", "responded_at before sent_at"),
        _not_after_export("sent_at"),
    ),
    loaded_at_field="sent_at",
    max_lag_days=7,
)

# In load order: referenced tables first, so foreign keys can be checked on arrival.
CONTRACTS: tuple[SourceContract, ...] = (
    CATALOG_PRODUCTS,
    CRM_CUSTOMERS,
    ORDERS_ORDERS,
    ORDERS_ORDER_LINES,
    SUPPORT_TICKETS,
    SURVEYS_RESPONSES,
    MARKETING_TOUCHES,
)

SYSTEMS: tuple[str, ...] = tuple(dict.fromkeys(c.system for c in CONTRACTS))


def contract_for(table: str) -> SourceContract:
    """The contract of raw table ``table`` (e.g. ``orders_order_lines``)."""
    for contract in CONTRACTS:
        if contract.table == table:
            return contract
    known = ", ".join(c.table for c in CONTRACTS)
    raise KeyError(f"no source contract for table {table!r}; known tables: {known}")
