"""Customer-lifetime-value models on transactions: BG/NBD, MBG/NBD and Pareto/NBD purchases, Gamma-Gamma spend, CLV.

Pure Python (numpy, scipy, pandas, DuckDB); no Dagster. Typical use::

    config = ClvConfig()
    summary = summarize_transactions_sql(con, "orders", as_of=day, time_unit=config.time_unit)
    result = fit_and_score(summary, config, summarize=..., as_of=day)   # .scores, .transaction_model, .selection
"""

from crm_warehouse.analytics.clv.bgnbd import BetaGeoModel, fit_bgnbd
from crm_warehouse.analytics.clv.config import ClvConfig, FitOptions
from crm_warehouse.analytics.clv.gamma_gamma import GammaGammaModel, SpendFrequencyCorrelationWarning, fit_gamma_gamma
from crm_warehouse.analytics.clv.lifetime_value import CLV_COLUMNS, ClvResult, customer_lifetime_value, fit_and_score
from crm_warehouse.analytics.clv.mbgnbd import ModifiedBetaGeoModel, fit_mbgnbd
from crm_warehouse.analytics.clv.mle import ModelFitError
from crm_warehouse.analytics.clv.pareto_nbd import ParetoNBDModel, fit_pareto_nbd
from crm_warehouse.analytics.clv.selection import ModelSelection, PurchaseModel, fit_purchase_model
from crm_warehouse.analytics.clv.summary import (
    SUMMARY_COLUMNS,
    calibration_and_holdout,
    summarize_transactions,
    summarize_transactions_sql,
)

__all__ = [
    "CLV_COLUMNS",
    "SUMMARY_COLUMNS",
    "BetaGeoModel",
    "ClvConfig",
    "ClvResult",
    "FitOptions",
    "GammaGammaModel",
    "ModelFitError",
    "ModelSelection",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "PurchaseModel",
    "SpendFrequencyCorrelationWarning",
    "calibration_and_holdout",
    "customer_lifetime_value",
    "fit_and_score",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_mbgnbd",
    "fit_pareto_nbd",
    "fit_purchase_model",
    "summarize_transactions",
    "summarize_transactions_sql",
]
