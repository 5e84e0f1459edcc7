# A minimal stack for the scheduler benchmark: one function, one rule firing every minute.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}

provider "aws" {
  region = "us-east-1"
}

# The refiner's handler does nothing with a scheduled event (it has no SQS records).
module "tick" {
  source       = "../../terraform/modules/lambda_function"
  name         = "bench-tick"
  handler      = "pipeline.refiner.handler.handler"
  package_path = "${path.module}/../../build/lambda/refiner.zip"
}

resource "aws_cloudwatch_event_rule" "every_minute" {
  name                = "bench-every-minute"
  schedule_expression = "rate(1 minute)"
}

resource "aws_cloudwatch_event_target" "tick" {
  rule = aws_cloudwatch_event_rule.every_minute.name
  arn  = module.tick.arn
}

resource "aws_lambda_permission" "events" {
  statement_id  = "events"
  action        = "lambda:InvokeFunction"
  function_name = module.tick.name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.every_minute.arn
}
