"""The ingest flow (seed 002): raw files and direct payloads to Parquet, PostgreSQL and a daily report.

- `parsing`: bytes of a `.csv`, `.json`, `.jsonl`/`.ndjson` object to raw records (`ParseError`
  when the file as a whole is unusable).
- `schema`: one raw record to a validated, normalised record or a list of readable reasons.
- `storage`: deterministic S3 keys, Parquet and rejects files in the processed bucket.
- `db`: PostgreSQL (credentials from Secrets Manager, migrations, idempotent upserts, report SQL).
- `metadata`: the per-object status item in the event table and the once-per-version alert marker.
- `processor`: the data_processor Lambda (SQS batches of S3 events, or `{"data": [...]}`).
- `report`: the report_generator Lambda (daily, on a schedule).
"""
