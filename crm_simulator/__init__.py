"""Source-system simulator: one retailer's CRM, orders, support, surveys and marketing exports.

Plain Python (no Dagster). ``simulate_company`` writes the landing files described by
``crm_warehouse.contracts`` plus a ground-truth folder; ``python -m crm_simulator``
is the command-line entry point.
"""

from crm_simulator.company import SimulationSummary, simulate_company
from crm_simulator.config import Behaviour, SimulationConfig

__all__ = ["Behaviour", "SimulationConfig", "SimulationSummary", "simulate_company"]
