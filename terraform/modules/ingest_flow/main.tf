# The ingest and daily-report flow (seed 002): CSV/JSON files dropped in the raw bucket ->
# EventBridge (default bus) -> SQS (+DLQ) -> data_processor (validation, Parquet to the
# processed bucket, rows to PostgreSQL, metadata to DynamoDB, rejects with reasons);
# report_generator runs daily on an EventBridge Scheduler schedule and writes
# reports/YYYY-MM-DD/daily_report.{json,html}; alerts and reports go to one SNS topic.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "name" {
  type    = string
  default = "data-pipeline"
}
variable "environment" {
  type    = string
  default = "dev"
}
variable "bucket_suffix" {
  description = "Appended to bucket names (AWS: the account id, as in the seed)."
  type        = string
  default     = ""
}
variable "package" {
  description = "The ingest Lambda package in S3 (data_processor and report_generator)."
  type = object({
    s3_bucket         = string
    s3_key            = string
    s3_object_version = optional(string)
    source_code_hash  = string
  })
}
variable "database" {
  description = "The PostgreSQL database (RDS): endpoint, name and the secret holding its credentials."
  type = object({
    host                  = string
    port                  = number
    name                  = string
    secret_arn            = string
    secret_read_statement = any
  })
}
variable "vpc" {
  description = "Private subnets and security groups of the functions that reach the database."
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
}
variable "lambda_timeout_seconds" {
  type    = number
  default = 300
}
variable "lambda_memory_mb" {
  type    = number
  default = 512
}
variable "daily_report_time_utc" {
  description = "HH:MM (UTC) at which the previous day's report is generated."
  type        = string
  default     = "08:00"
  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", var.daily_report_time_utc))
    error_message = "daily_report_time_utc must be HH:MM, e.g. 08:00."
  }
}
variable "alert_email" {
  description = "Email subscribed to the alerts topic; empty for none."
  type        = string
  default     = ""
}
variable "raw_data_retention_days" {
  type    = number
  default = 90
}
variable "processed_data_retention_days" {
  type    = number
  default = 365
}
variable "max_receive_count" {
  description = "Deliveries of a file's event before it is dead-lettered."
  type        = number
  default     = 3
}
variable "dlq_alarm_threshold" {
  description = "The DLQ-depth alarm fires above this many messages."
  type        = number
  default     = 5
}
variable "force_destroy" {
  type    = bool
  default = false
}
variable "tags" {
  type    = map(string)
  default = {}
}

locals {
  raw_bucket       = "${var.name}-raw${var.bucket_suffix}"
  processed_bucket = "${var.name}-processed${var.bucket_suffix}"
  reports_bucket   = "${var.name}-reports${var.bucket_suffix}"
  report_time      = split(":", var.daily_report_time_utc)
  common_env = {
    RAW_BUCKET           = module.raw.name
    PROCESSED_BUCKET     = module.processed.name
    REPORTS_BUCKET       = module.reports.name
    EVENT_TABLE          = aws_dynamodb_table.events.name
    REPORT_HISTORY_TABLE = aws_dynamodb_table.reports.name
    ALERTS_TOPIC_ARN     = aws_sns_topic.alerts.arn
    DB_HOST              = var.database.host
    DB_PORT              = tostring(var.database.port)
    DB_NAME              = var.database.name
    DB_SECRET_ARN        = var.database.secret_arn
    ENVIRONMENT          = var.environment
    LOG_LEVEL            = "INFO"
  }
}

module "raw" {
  source            = "../bucket"
  name              = local.raw_bucket
  eventbridge       = true
  force_destroy     = var.force_destroy
  expire_after_days = { "" = var.raw_data_retention_days }
  tags              = var.tags
}

module "processed" {
  source        = "../bucket"
  name          = local.processed_bucket
  force_destroy = var.force_destroy
  expire_after_days = {
    "processed/" = var.processed_data_retention_days
    "rejects/"   = var.processed_data_retention_days
  }
  tags = var.tags
}

module "reports" {
  source        = "../bucket"
  name          = local.reports_bucket
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_sns_topic" "alerts" {
  name = "${var.name}-alerts"
  # checkov:skip=CKV_AWS_26: CloudWatch alarms publish here, and CloudWatch cannot publish to a topic encrypted with alias/aws/sns (only a CMK with a key policy allows it)
  tags = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alert_email == "" ? 0 : 1
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alert_email
}

resource "aws_dynamodb_table" "events" {
  name         = "${var.name}-event-metadata"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "object_key"
  attribute {
    name = "object_key"
    type = "S"
  }
  attribute {
    name = "status"
    type = "S"
  }
  attribute {
    name = "received_at"
    type = "S"
  }
  global_secondary_index {
    name            = "status-index"
    hash_key        = "status"
    range_key       = "received_at"
    projection_type = "ALL"
  }
  point_in_time_recovery {
    enabled = true
  }
  # checkov:skip=CKV_AWS_119: encrypted at rest with the AWS-owned DynamoDB key (the default); a customer-managed KMS key is an account-level decision
  tags = var.tags
}

resource "aws_dynamodb_table" "reports" {
  name         = "${var.name}-report-history"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "report_date"
  attribute {
    name = "report_date"
    type = "S"
  }
  point_in_time_recovery {
    enabled = true
  }
  # checkov:skip=CKV_AWS_119: encrypted at rest with the AWS-owned DynamoDB key (the default); a customer-managed KMS key is an account-level decision
  tags = var.tags
}

module "ingest" {
  source            = "../event_route"
  name              = "${var.name}-processing"
  event_bus_name    = "default"
  bucket_name       = module.raw.name
  prefix            = ""
  max_receive_count = var.max_receive_count
  consumer = {
    name        = "${var.name}-data-processor"
    handler     = "pipeline.ingest.processor.handler"
    package     = var.package
    vpc         = var.vpc
    timeout     = var.lambda_timeout_seconds
    memory_size = var.lambda_memory_mb
    batch_size  = 5
    environment = local.common_env
    policy_statements = [
      { Effect = "Allow", Action = ["s3:GetObject", "s3:GetObjectVersion"], Resource = "${module.raw.arn}/*" },
      {
        Effect   = "Allow"
        Action   = ["s3:PutObject"]
        Resource = ["${module.processed.arn}/processed/*", "${module.processed.arn}/rejects/*"]
      },
      {
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
        Resource = aws_dynamodb_table.events.arn
      },
      { Effect = "Allow", Action = ["sns:Publish"], Resource = aws_sns_topic.alerts.arn },
      var.database.secret_read_statement,
    ]
  }
  tags = var.tags
}

module "report_generator" {
  source      = "../lambda_function"
  name        = "${var.name}-report-generator"
  handler     = "pipeline.ingest.report.handler"
  package     = var.package
  vpc         = var.vpc
  timeout     = var.lambda_timeout_seconds
  memory_size = var.lambda_memory_mb
  environment = local.common_env
  policy_statements = [
    { Effect = "Allow", Action = ["s3:PutObject"], Resource = "${module.reports.arn}/reports/*" },
    { Effect = "Allow", Action = ["dynamodb:PutItem"], Resource = aws_dynamodb_table.reports.arn },
    { Effect = "Allow", Action = ["sns:Publish"], Resource = aws_sns_topic.alerts.arn },
    var.database.secret_read_statement,
  ]
  tags = var.tags
}

module "daily_report" {
  source              = "../schedule"
  name                = "${var.name}-daily-report"
  schedule_expression = "cron(${tonumber(local.report_time[1])} ${tonumber(local.report_time[0])} * * ? *)"
  timezone            = "UTC"
  target_arn          = module.report_generator.arn
  # Scheduler fills in <aws.scheduler.scheduled-time>; jsonencode would escape the brackets.
  target_input = replace(replace(jsonencode({
    report         = "daily"
    scheduled_time = "<aws.scheduler.scheduled-time>"
  }), "\\u003c", "<"), "\\u003e", ">")
  maximum_retry_attempts = 2
  tags                   = var.tags
}

# The seed's alarms; all of them notify the alerts topic.
resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  alarm_name          = "${var.name}-dlq-depth"
  alarm_description   = "More than ${var.dlq_alarm_threshold} files dead-lettered by data_processor"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = module.ingest.dlq_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = var.dlq_alarm_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "error_rate" {
  alarm_name          = "${var.name}-data-processor-error-rate"
  alarm_description   = "data_processor errors above 1% of invocations"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 1
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  metric_query {
    id          = "rate"
    expression  = "IF(invocations > 0, 100 * errors / invocations, 0)"
    label       = "Error rate (%)"
    return_data = true
  }
  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Errors"
      dimensions  = { FunctionName = module.ingest.function_name }
      period      = 300
      stat        = "Sum"
    }
  }
  metric_query {
    id = "invocations"
    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Invocations"
      dimensions  = { FunctionName = module.ingest.function_name }
      period      = 300
      stat        = "Sum"
    }
  }
  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "latency" {
  alarm_name          = "${var.name}-data-processor-latency-p99"
  alarm_description   = "data_processor p99 duration above 30 s"
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  dimensions          = { FunctionName = module.ingest.function_name }
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 1
  threshold           = 30000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "stale" {
  alarm_name          = "${var.name}-stale-data"
  alarm_description   = "No file processed for an hour"
  namespace           = "AWS/Lambda"
  metric_name         = "Invocations"
  dimensions          = { FunctionName = module.ingest.function_name }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  tags                = var.tags
}

output "raw_bucket" { value = module.raw.name }
output "processed_bucket" { value = module.processed.name }
output "reports_bucket" { value = module.reports.name }
output "processing_queue_url" { value = module.ingest.queue_url }
output "dlq_url" { value = module.ingest.dlq_url }
output "dlq_name" { value = module.ingest.dlq_name }
output "event_table" { value = aws_dynamodb_table.events.name }
output "report_history_table" { value = aws_dynamodb_table.reports.name }
output "alerts_topic_arn" { value = aws_sns_topic.alerts.arn }
output "data_processor" { value = module.ingest.function_name }
output "report_generator" { value = module.report_generator.name }
output "daily_report_schedule" { value = module.daily_report.name }
