"""Churn: point-in-time features from the warehouse, the LightGBM model, plain-language drivers."""
