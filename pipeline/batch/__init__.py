"""Seed 001, the batch flow: a scheduled ECS Fargate task aggregates `raw-data/YYYY-MM-DD/` into a report.

`processor` is the task's command (container `processor`): it reads one day's CSV, JSON and
JSON-lines objects, validates `key`/`value` records and writes `reports/YYYY-MM-DD.json`.
`reprocess` starts that task for a chosen day through `ecs.run_task` with a `RUN_DATE` override.
"""
