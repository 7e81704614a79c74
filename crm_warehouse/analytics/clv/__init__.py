"""Customer-lifetime-value models on transactions: BG/NBD purchases, Gamma-Gamma spend, discounted CLV.

Pure Python (numpy, scipy, pandas, DuckDB); no Dagster. Typical use::

    config = ClvConfig()
    summary = summarize_transactions_sql(con, "orders", as_of=day, time_unit=config.time_unit)
    result = fit_and_score(summary, config)   # result.scores, .transaction_model, .spend_model
"""

from crm_warehouse.analytics.clv.bgnbd import BetaGeoModel, fit_bgnbd
from crm_warehouse.analytics.clv.config import ClvConfig, FitOptions
from crm_warehouse.analytics.clv.gamma_gamma import GammaGammaModel, SpendFrequencyCorrelationWarning, fit_gamma_gamma
from crm_warehouse.analytics.clv.lifetime_value import CLV_COLUMNS, ClvResult, customer_lifetime_value, fit_and_score
from crm_warehouse.analytics.clv.mbgnbd import ModifiedBetaGeoModel, fit_mbgnbd
from crm_warehouse.analytics.clv.mle import ModelFitError
from crm_warehouse.analytics.clv.pareto_nbd import ParetoNBDModel, fit_pareto_nbd
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
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "SpendFrequencyCorrelationWarning",
    "calibration_and_holdout",
    "customer_lifetime_value",
    "fit_and_score",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_mbgnbd",
    "fit_pareto_nbd",
    "summarize_transactions",
    "summarize_transactions_sql",
]
