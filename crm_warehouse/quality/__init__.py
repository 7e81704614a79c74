"""Data quality: expectation suites run with Great Expectations on the DuckDB warehouse.

Pure Python (no Dagster): :mod:`orchestration.checks.quality` turns each suite into
an asset check. Engine choice and suite format: ``docs/data_quality.md``.

- :mod:`.suites` loads and checks suite files (imports no GX, so it is cheap);
- :mod:`.run` validates a table (:func:`~.run.validate_and_record`) and has the CLI;
- :mod:`.gx_sql` runs GX on DuckDB through SQL; :mod:`.sql_checks` runs our own checks;
- :mod:`.results` holds the result types and ``audit.dq_results``.
"""
