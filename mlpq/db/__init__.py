"""The job ledger: SQLAlchemy schema, engines and the queries on jobs and metrics."""
