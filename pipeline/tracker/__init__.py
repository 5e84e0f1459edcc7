"""Seed 004, the tracker: an orchestrator Lambda launches an EC2 worker that copies input to output.

`orchestrator` is the Lambda; `user_data` writes the instance's bootstrap script; `sqs_worker`
is the standalone script the instance downloads from S3 and runs (it imports no `pipeline`
module, because on EC2 it is the only file there).
"""
