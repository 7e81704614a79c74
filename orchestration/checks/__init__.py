"""Asset checks contributed by plain-Python quality code (Great Expectations suites)."""
