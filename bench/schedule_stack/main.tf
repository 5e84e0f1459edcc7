# A minimal stack for the scheduler benchmark: one function, one rule firing every minute.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
  backend "local" {}
}

variable "aws_endpoint" { type = string }
variable "emulator" { type = string }
variable "package_path" { type = string }

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  skip_region_validation      = true
  s3_use_path_style           = true
  endpoints {
    events = var.aws_endpoint
    iam    = var.aws_endpoint
    lambda = var.aws_endpoint
    logs   = var.aws_endpoint
    sts    = var.aws_endpoint
  }
}

# The refiner's handler does nothing with a scheduled event (it has no SQS records).
module "tick" {
  source       = "../../terraform/modules/lambda_function"
  name         = "bench-tick"
  handler      = "pipeline.refiner.handler.handler"
  package_path = var.package_path
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
