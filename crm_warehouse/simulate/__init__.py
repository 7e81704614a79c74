"""Source-system simulator: one retailer's CRM, orders, support, surveys and marketing exports.

Plain Python (no Dagster). ``simulate_company`` writes the landing files described by
``crm_warehouse.contracts`` plus a ground-truth folder; ``python -m crm_warehouse.simulate``
is the command-line entry point.
"""

from crm_warehouse.simulate.company import SimulationSummary, simulate_company
from crm_warehouse.simulate.config import Behaviour, SimulationConfig

__all__ = ["Behaviour", "SimulationConfig", "SimulationSummary", "simulate_company"]
