"""``python -m crm_warehouse.quality``: run the suites against the warehouse."""

from crm_warehouse.quality.run import main

raise SystemExit(main())
