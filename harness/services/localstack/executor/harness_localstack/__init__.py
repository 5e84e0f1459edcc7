"""LocalStack plugins for the pipeline harness, installed into LocalStack's own venv.

Never imported by the harness itself (it runs on Python 3.11 without LocalStack); LocalStack
finds these modules through the entry points in this package's pyproject.toml.
"""
