"""Customer analytics, plain Python with no Dagster.

* :mod:`crm_warehouse.analytics.clv`: purchase and spend models, discounted CLV;
* :mod:`crm_warehouse.analytics.churn`: the LightGBM churn model, its features and drivers;
* shared: :mod:`~crm_warehouse.analytics.metrics` (classifier scores),
  :mod:`~crm_warehouse.analytics.model_store` (saved fits),
  :mod:`~crm_warehouse.analytics.model_runs` (the retrain and score steps),
  :mod:`~crm_warehouse.analytics.plots` (PNG pictures).

Nothing is imported here, so importing one part does not load the heavy libraries of another.
"""
