# A prefix route: S3 "Object Created" events on `event_bus_name` whose key starts with
# `prefix` go to an SQS queue (with DLQ); optionally a Lambda consumes that queue.
# The consumer is either a zip handler or a container image, so a new route is one module
# block with a prefix plus a handler or an image URI.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "name" {
  description = "Queue and rule name, e.g. dibbs-ecr-RefinerInput."
  type        = string
}
variable "event_bus_name" { type = string }
variable "bucket_name" { type = string }
variable "prefix" {
  description = "Object key prefix; a leading slash (as in /RefinerInput/) is ignored."
  type        = string
}
variable "max_receive_count" {
  type    = number
  default = 5
}
variable "consumer" {
  description = "Optional Lambda consuming the queue: name plus handler+package_path or image_uri."
  type = object({
    name    = string
    handler = optional(string)
    package = optional(object({
      s3_bucket         = string
      s3_key            = string
      s3_object_version = optional(string)
      source_code_hash  = string
    }))
    package_path = optional(string)
    image_uri    = optional(string)
    vpc = optional(object({
      subnet_ids         = list(string)
      security_group_ids = list(string)
    }))
    timeout           = optional(number, 900)
    memory_size       = optional(number, 1024)
    environment       = optional(map(string), {})
    policy_statements = optional(any, [])
    batch_size        = optional(number, 10)
  })
  default = null
}
variable "tags" {
  type    = map(string)
  default = {}
}

locals {
  key_prefix = trimprefix(var.prefix, "/")
  # AWS requires the queue's visibility timeout to be at least the consumer's timeout.
  visibility_timeout = var.consumer == null ? 30 : var.consumer.timeout
}

resource "aws_cloudwatch_event_rule" "this" {
  name           = var.name
  event_bus_name = var.event_bus_name
  description    = "S3 objects created under ${local.key_prefix} in ${var.bucket_name}"
  event_pattern = jsonencode({
    source        = ["aws.s3"]
    "detail-type" = ["Object Created"]
    detail = {
      bucket = { name = [var.bucket_name] }
      object = { key = [{ prefix = local.key_prefix }] }
    }
  })
  tags = var.tags
}

module "queue" {
  source                     = "../queue_with_dlq"
  name                       = var.name
  max_receive_count          = var.max_receive_count
  visibility_timeout_seconds = local.visibility_timeout
  allowed_rule_arns          = [aws_cloudwatch_event_rule.this.arn]
  tags                       = var.tags
}

resource "aws_cloudwatch_event_target" "queue" {
  rule           = aws_cloudwatch_event_rule.this.name
  event_bus_name = var.event_bus_name
  target_id      = "queue"
  arn            = module.queue.arn
}

module "consumer" {
  count        = var.consumer == null ? 0 : 1
  source       = "../lambda_function"
  name         = var.consumer.name
  handler      = var.consumer.handler
  package      = var.consumer.package
  package_path = var.consumer.package_path
  vpc          = var.consumer.vpc
  image_uri    = var.consumer.image_uri
  timeout      = var.consumer.timeout
  memory_size  = var.consumer.memory_size
  environment  = var.consumer.environment
  policy_statements = concat(var.consumer.policy_statements, [{
    Effect   = "Allow"
    Action   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
    Resource = module.queue.arn
  }])
  tags = var.tags
}

resource "aws_lambda_event_source_mapping" "consumer" {
  count                   = var.consumer == null ? 0 : 1
  event_source_arn        = module.queue.arn
  function_name           = module.consumer[0].arn
  batch_size              = var.consumer.batch_size
  function_response_types = ["ReportBatchItemFailures"]
}

output "queue_name" { value = module.queue.name }
output "queue_url" { value = module.queue.url }
output "dlq_name" { value = module.queue.dlq_name }
output "dlq_url" { value = module.queue.dlq_url }
output "rule_arn" { value = aws_cloudwatch_event_rule.this.arn }
output "function_name" { value = var.consumer == null ? null : module.consumer[0].name }
