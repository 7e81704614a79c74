"""Customer-lifetime-value models on transactions: BG/NBD, MBG/NBD and Pareto/NBD purchases, Gamma-Gamma spend, CLV.

Pure Python (numpy, scipy, pandas, DuckDB); no Dagster. Typical use::

    config = ClvConfig()
    summary = summarize_transactions_sql(con, "orders", as_of=day, time_unit=config.time_unit)
    result = fit_and_score(summary, config, summarize=..., as_of=day)   # .scores, .transaction_model, .selection

The names below are imported on first use (PEP 562), so reading the settings
(``ClvConfig``) does not load scipy.
"""

from importlib import import_module

_EXPORTS = {
    "ModelFitError": "mle",
    "BetaGeoModel": "bgnbd",
    "fit_bgnbd": "bgnbd",
    "ModifiedBetaGeoModel": "mbgnbd",
    "fit_mbgnbd": "mbgnbd",
    "ParetoNBDModel": "pareto_nbd",
    "fit_pareto_nbd": "pareto_nbd",
    "ModelSelection": "selection",
    "PurchaseModel": "selection",
    "fit_purchase_model": "selection",
    "CLV_COLUMNS": "lifetime_value",
    "ClvModels": "lifetime_value",
    "ClvResult": "lifetime_value",
    "customer_lifetime_value": "lifetime_value",
    "fit_and_score": "lifetime_value",
    "fit_models": "lifetime_value",
    "ClvConfig": "config",
    "FitOptions": "config",
    "GammaGammaModel": "gamma_gamma",
    "SpendFrequencyCorrelationWarning": "gamma_gamma",
    "fit_gamma_gamma": "gamma_gamma",
    "SUMMARY_COLUMNS": "summary",
    "calibration_and_holdout": "summary",
    "summarize_transactions": "summary",
    "summarize_transactions_sql": "summary",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
