"""The event-driven data pipeline: production code deployed to AWS. Never imports the harness."""
