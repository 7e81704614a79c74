"""Source rows as each system exports them: contract-typed Arrow tables sorted by export day."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crm_simulator import ids
from crm_simulator.catalog import Catalogue, category_codes
from crm_simulator.config import Window
from crm_simulator.files import SourceRows, decimal_array, schema_for
from crm_simulator.lifecycle import Plan
from crm_simulator.marketing import Touches
from crm_simulator.orders import Orders
from crm_simulator.people import make_people
from crm_simulator.service import Surveys, Tickets
from crm_simulator.text import codes_text
from crm_warehouse.contracts import (
    ACQUISITION_CHANNELS,
    CLOSE_REASONS,
    CUSTOMER_TYPES,
    FAULT_PARTIES,
    GENDERS,
    ORDER_CHANNELS,
    ORDER_STATUSES,
    TICKET_CATEGORIES,
    TICKET_CHANNELS,
    TICKET_TYPES,
    TOUCH_CHANNELS,
    TOUCH_TYPES,
    SourceContract,
)

# Acquisition channel mix by customer type (rows: CUSTOMER_TYPES; columns: ACQUISITION_CHANNELS).
_ACQUISITION = np.array(
    [
        [0.35, 0.35, 0.15, 0.00, 0.10, 0.05],
        [0.05, 0.05, 0.15, 0.45, 0.15, 0.15],
        [0.00, 0.00, 0.30, 0.20, 0.20, 0.30],
        [0.00, 0.10, 0.10, 0.30, 0.20, 0.30],
    ]
)


def _codes(codes: tuple[str, ...], index: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Code names by index; null where ``valid`` is false."""
    text = codes_text(codes, np.where(valid, index, 0) if valid is not None else index)
    return text if valid is None else pc.if_else(pa.array(valid), text, pa.scalar(None, pa.string()))


def _timestamps(window: Window, t: np.ndarray, parquet: bool = False) -> pa.Array:
    """Timestamps from fractional days; non-finite values become null."""
    finite = np.isfinite(t)
    seconds = window.epoch_seconds(np.where(finite, t, 0.0))
    if parquet:
        return pa.array(seconds * 1_000_000, pa.timestamp("us"), mask=~finite)
    return pa.array(seconds, pa.timestamp("s"), mask=~finite)


def _sorted(
    contract: SourceContract, columns: dict[str, pa.Array], day: np.ndarray, within_day: np.ndarray
) -> SourceRows:
    """The rows as a contract-typed table, sorted by export day, then ``within_day``."""
    table = pa.table(columns, schema=schema_for(contract))
    order = np.lexsort((np.arange(len(day)), within_day, day))
    if np.any(order != np.arange(len(order))):
        table = table.take(pa.array(order))
    return SourceRows(contract, table, day[order])


def catalog_rows(contract: SourceContract, catalogue: Catalogue, window: Window) -> SourceRows:
    """The catalogue as reference data: one version of every product, on the first day."""
    n = catalogue.size
    columns = {
        "product_id": ids.format_ids(ids.PRODUCT_ID, np.arange(1, n + 1)),
        "product_name": pa.array(catalogue.name, pa.string()),
        "category": _codes(category_codes(), catalogue.category),
        "list_price": decimal_array(catalogue.list_price_cents, "DECIMAL(12,2)"),
        "unit_cost": decimal_array(catalogue.unit_cost_cents, "DECIMAL(12,2)"),
        "updated_at": _timestamps(window, np.zeros(n)),
    }
    return _sorted(contract, columns, np.zeros(n, dtype=np.int64), np.arange(n))


def crm_rows(
    contract: SourceContract, plan: Plan, window: Window, rng: np.random.Generator, people_rng: np.random.Generator
) -> SourceRows:
    """Signup versions, yearly wallet reviews of organisations, and closure versions."""
    n, days = plan.size, window.days
    people = make_people(people_rng, plan.female, plan.birth_day, window.epoch_days())
    acquisition = (np.cumsum(_ACQUISITION[plan.customer_type], axis=1) <= rng.random(n)[:, None]).sum(axis=1)
    email = pa.array(people.email, mask=rng.random(n) < 0.08)
    national_id = pa.array(people.national_id, mask=rng.random(n) < 0.12)
    reviewed_wallet = plan.wallet * np.exp(0.03 + 0.1 * rng.standard_normal(n))

    review_at = plan.signup + 365.0
    reviewed = (plan.customer_type != CUSTOMER_TYPES.index("consumer")) & (review_at < np.minimum(plan.close_at, days))
    closed = plan.close_at < days
    customer = np.concatenate([np.arange(n), np.flatnonzero(reviewed), np.flatnonzero(closed)])
    version = np.concatenate([np.zeros(n), np.ones(reviewed.sum()), np.full(closed.sum(), 2)]).astype(np.int8)
    updated = np.concatenate([plan.signup, review_at[reviewed], plan.close_at[closed]])
    wallet = np.where(reviewed[customer] & (version > 0), reviewed_wallet[customer], plan.wallet[customer])
    is_closed = version == 2
    take = pa.array(customer)
    columns = {
        "customer_id": ids.customer_ids(customer),
        "name_zh": people.name_zh.take(take),
        "name_latin": people.name_latin.take(take),
        "gender": _codes(GENDERS, np.where(plan.female[customer], 0, 1)),
        "birth_date": pa.array((plan.birth_day[customer] + window.epoch_days()).astype(np.int32), pa.date32()),
        "city": people.city.take(take),
        "customer_type": _codes(CUSTOMER_TYPES, plan.customer_type[customer]),
        "acquisition_channel": _codes(ACQUISITION_CHANNELS, acquisition[customer]),
        "signup_at": _timestamps(window, plan.signup[customer]),
        "email": email.take(take),
        "phone": people.phone.take(take),
        "national_id": national_id.take(take),
        "estimated_annual_wallet": decimal_array(np.round(wallet * 100.0).astype(np.int64), "DECIMAL(14,2)"),
        "status": _codes(("active", "closed"), is_closed.astype(np.int64)),
        "closed_at": _timestamps(window, np.where(is_closed, updated, np.inf)),
        "close_reason": _codes(CLOSE_REASONS, plan.close_reason[customer], is_closed),
        "updated_at": _timestamps(window, updated),
    }
    return _sorted(contract, columns, np.floor(updated).astype(np.int64), updated)


def order_rows(contract: SourceContract, orders: Orders) -> SourceRows:
    """Order headers, exported on the day they were placed with their final status."""
    n = orders.size
    columns = {
        "order_id": ids.format_ids(ids.ORDER_ID, np.arange(1, n + 1)),
        "customer_id": ids.customer_ids(orders.customer),
        "ordered_at": pa.array(orders.seconds, pa.timestamp("s")),
        "channel": _codes(ORDER_CHANNELS, orders.channel),
        "status": _codes(ORDER_STATUSES, orders.status),
    }
    return _sorted(contract, columns, orders.day, orders.seconds)


def line_rows(contract: SourceContract, orders: Orders, catalogue: Catalogue) -> SourceRows:
    """Order lines, exported with their header."""
    columns = {
        "order_id": ids.format_ids(ids.ORDER_ID, orders.line_order + 1),
        "line_number": pa.array(orders.line_number.astype(np.int32)),
        "product_id": ids.format_ids(ids.PRODUCT_ID, orders.product + 1),
        "category": _codes(category_codes(), catalogue.category[orders.product]),
        "quantity": pa.array(orders.quantity.astype(np.int32)),
        "unit_price": decimal_array(orders.unit_price_cents, "DECIMAL(12,2)"),
        "discount_rate": decimal_array(orders.discount_bp, "DECIMAL(5,4)"),
        "unit_cost": decimal_array(orders.unit_cost_cents, "DECIMAL(12,2)"),
    }
    # Lines are already in order-id order, and order ids follow time.
    m = len(orders.line_order)
    return _sorted(contract, columns, orders.day[orders.line_order], np.arange(m))


def ticket_rows(contract: SourceContract, tickets: Tickets, window: Window) -> SourceRows:
    """Open versions (on the opening day, unless resolved that day) and resolved versions."""
    by_open = np.lexsort((tickets.customer, tickets.opened))
    t = {f.name: getattr(tickets, f.name)[by_open] for f in fields(tickets)}
    opened_day = np.floor(t["opened"])
    resolved_inside = t["resolved"] < window.days
    open_version = np.floor(t["resolved"]) != opened_day
    responded_same_day = np.floor(t["first_response"]) == opened_day
    ticket = np.concatenate([np.flatnonzero(open_version), np.flatnonzero(resolved_inside)])
    resolved = np.concatenate([np.zeros(open_version.sum(), dtype=bool), np.ones(resolved_inside.sum(), dtype=bool)])
    first_response = np.where(resolved | responded_same_day[ticket], t["first_response"][ticket], np.inf)
    updated = np.where(
        resolved, t["resolved"][ticket], np.where(np.isfinite(first_response), first_response, t["opened"][ticket])
    )
    rating = t["satisfaction_after"][ticket]
    fault = t["fault_party"][ticket]
    columns = {
        "ticket_id": ids.format_ids(ids.TICKET_ID, ticket + 1),
        "customer_id": ids.customer_ids(t["customer"][ticket]),
        "opened_at": _timestamps(window, t["opened"][ticket]),
        "first_response_at": _timestamps(window, first_response),
        "resolved_at": _timestamps(window, np.where(resolved, t["resolved"][ticket], np.inf)),
        "channel": _codes(TICKET_CHANNELS, t["channel"][ticket]),
        "ticket_type": _codes(TICKET_TYPES, t["ticket_type"][ticket]),
        "category": _codes(TICKET_CATEGORIES, t["category"][ticket]),
        "fault_party": _codes(FAULT_PARTIES, fault, resolved),
        "first_contact_resolved": pa.array(t["first_contact_resolved"][ticket], mask=~resolved),
        "escalated": pa.array(t["escalated"][ticket], mask=~resolved),
        "satisfaction_after": pa.array(rating.astype(np.int32), mask=~resolved | (rating == 0)),
        "status": _codes(("open", "resolved"), resolved.astype(np.int64)),
        "updated_at": _timestamps(window, updated),
    }
    return _sorted(contract, columns, np.floor(updated).astype(np.int64), updated)


def survey_rows(contract: SourceContract, surveys: Surveys, window: Window) -> SourceRows:
    """Survey responses (native Parquet types; unanswered scores are null)."""
    order = np.lexsort((surveys.customer, surveys.responded))

    def score(values: np.ndarray, dtype: pa.DataType) -> pa.Array:
        v = values[order]
        return pa.array(
            np.nan_to_num(v).astype(np.int32 if dtype == pa.int32() else np.float64), dtype, mask=np.isnan(v)
        )

    columns = {
        "response_id": ids.format_ids(ids.RESPONSE_ID, np.arange(1, len(order) + 1)),
        "customer_id": ids.customer_ids(surveys.customer[order]),
        "responded_at": _timestamps(window, surveys.responded[order], parquet=True),
        "csat": score(surveys.csat, pa.int32()),
        "nps": score(surveys.nps, pa.int32()),
        "expectation_score": score(surveys.expectation, pa.float64()),
        "perception_score": score(surveys.perception, pa.float64()),
        "repurchase_intent": score(surveys.repurchase_intent, pa.int32()),
    }
    responded = surveys.responded[order]
    return _sorted(contract, columns, np.floor(responded).astype(np.int64), responded)


def touch_rows(contract: SourceContract, touches: Touches, window: Window) -> SourceRows:
    """Marketing touches, exported on the day they were sent with the response as known."""
    order = np.lexsort((touches.customer, touches.sent))
    responded_at = touches.responded_at[order]
    campaign = touches.campaign[order]
    columns = {
        "touch_id": ids.format_ids(ids.TOUCH_ID, np.arange(1, len(order) + 1)),
        "customer_id": ids.customer_ids(touches.customer[order]),
        "campaign_id": _codes(touches.campaign_ids, campaign),
        "campaign_name": _codes(touches.campaign_names, campaign),
        "channel": _codes(TOUCH_CHANNELS, touches.channel[order]),
        "touch_type": _codes(TOUCH_TYPES, touches.touch_type[order]),
        "sent_at": _timestamps(window, touches.sent[order]),
        "responded": pa.array(np.isfinite(responded_at)),
        "responded_at": _timestamps(window, responded_at),
    }
    sent = touches.sent[order]
    return _sorted(contract, columns, np.floor(sent).astype(np.int64), sent)
