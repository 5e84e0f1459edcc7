# A small stack built to trigger the emulator pitfalls the harness must neutralise
# (shared/notes/emulators.md): a rule with a Lambda target, a rule on a custom bus that
# matches S3 events, and a schedule rule (no event pattern). Applied by tests/e2e.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}

provider "aws" {
  region = "us-east-1"
}

module "bucket" {
  source        = "../../../terraform/modules/bucket"
  name          = "pitfall-bucket"
  eventbridge   = true
  force_destroy = true
}

resource "aws_sqs_queue" "routed" { name = "pitfall-routed" }
resource "aws_sqs_queue" "leaks" { name = "pitfall-leaks" }

# Any S3 event on the default bus (any detail-type, so stray "Object Tags Added" would show).
resource "aws_cloudwatch_event_rule" "to_queue" {
  name          = "pitfall-to-queue"
  event_pattern = jsonencode({ source = ["aws.s3"] })
}
resource "aws_cloudwatch_event_target" "to_queue" {
  rule = aws_cloudwatch_event_rule.to_queue.name
  arn  = aws_sqs_queue.routed.arn
}

# A Lambda target on the default bus: breaks moto's S3 delivery unless the harness takes it.
module "echo" {
  source       = "../../../terraform/modules/lambda_function"
  name         = "pitfall-echo"
  handler      = "pipeline.refiner.handler.handler"
  package_path = "${path.module}/../../../build/lambda/refiner.zip"
}
resource "aws_cloudwatch_event_rule" "to_lambda" {
  name          = "pitfall-to-lambda"
  event_pattern = jsonencode({ source = ["aws.s3"], "detail-type" = ["Object Created"] })
}
resource "aws_cloudwatch_event_target" "to_lambda" {
  rule = aws_cloudwatch_event_rule.to_lambda.name
  arn  = module.echo.arn
}
resource "aws_lambda_permission" "events" {
  statement_id  = "events"
  action        = "lambda:InvokeFunction"
  function_name = module.echo.name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.to_lambda.arn
}

# AWS never delivers S3 events to a custom bus; moto did.
resource "aws_cloudwatch_event_bus" "custom" { name = "pitfall-bus" }
resource "aws_cloudwatch_event_rule" "custom_s3" {
  name           = "pitfall-custom-s3"
  event_bus_name = aws_cloudwatch_event_bus.custom.name
  event_pattern  = jsonencode({ source = ["aws.s3"] })
}
resource "aws_cloudwatch_event_target" "custom_s3" {
  rule           = aws_cloudwatch_event_rule.custom_s3.name
  event_bus_name = aws_cloudwatch_event_bus.custom.name
  arn            = aws_sqs_queue.leaks.arn
}

# A schedule rule: moto matches it against every event; the harness owns its firing.
resource "aws_cloudwatch_event_rule" "schedule" {
  name                = "pitfall-every-minute"
  schedule_expression = "rate(1 minute)"
}
resource "aws_cloudwatch_event_target" "schedule" {
  rule = aws_cloudwatch_event_rule.schedule.name
  arn  = aws_sqs_queue.leaks.arn
}
