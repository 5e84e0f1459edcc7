# The refiner flow (seed 003): bucket data-repository with EventBridge notifications,
# default-bus rule forwarding S3 "Object Created" events to data-repository-bus, prefix
# routes to the RefinerInput and RefinerComplete queues (each with a DLQ), and the refiner
# Lambda consuming RefinerInput.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "bucket_name" {
  type    = string
  default = "data-repository"
}
variable "bus_name" {
  type    = string
  default = "data-repository-bus"
}
variable "name_prefix" {
  type    = string
  default = "dibbs-ecr"
}
variable "package" {
  description = "The refiner Lambda package in S3 (used when image_uri is null)."
  type = object({
    s3_bucket         = string
    s3_key            = string
    s3_object_version = optional(string)
    source_code_hash  = string
  })
  default = null
}
variable "image_uri" {
  description = "ECR image of the refiner (AWS); null to deploy the zip handler."
  type        = string
  default     = null
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
  input_prefix    = "RefinerInput/"
  output_prefix   = "RefinerOutput/"
  complete_prefix = "RefinerComplete/"
}

module "bucket" {
  source        = "../bucket"
  name          = var.bucket_name
  eventbridge   = true
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_cloudwatch_event_bus" "custom" {
  name = var.bus_name
  tags = var.tags
}

# AWS delivers S3 events only to the default bus; this rule copies them to the custom bus.
resource "aws_cloudwatch_event_rule" "forward" {
  name = "${var.name_prefix}-forward-s3-created"
  event_pattern = jsonencode({
    source        = ["aws.s3"]
    "detail-type" = ["Object Created"]
    detail        = { bucket = { name = [var.bucket_name] } }
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "forward" {
  rule      = aws_cloudwatch_event_rule.forward.name
  target_id = "custom-bus"
  arn       = aws_cloudwatch_event_bus.custom.arn
}

module "refiner_input" {
  source         = "../event_route"
  name           = "${var.name_prefix}-RefinerInput"
  event_bus_name = aws_cloudwatch_event_bus.custom.name
  bucket_name    = module.bucket.name
  prefix         = "/${local.input_prefix}"
  consumer = {
    name        = "${var.name_prefix}-refiner"
    handler     = "pipeline.refiner.handler.handler"
    package     = var.package
    image_uri   = var.image_uri
    timeout     = 900
    memory_size = 1024
    environment = {
      REFINER_OUTPUT_PREFIX   = "/${local.output_prefix}"
      REFINER_COMPLETE_PREFIX = "/${local.complete_prefix}"
      LOG_LEVEL               = "INFO"
    }
    policy_statements = [
      {
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = module.bucket.arn
      },
      {
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:GetObjectVersion"]
        Resource = "${module.bucket.arn}/${local.input_prefix}*"
      },
      {
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject"]
        Resource = ["${module.bucket.arn}/${local.output_prefix}*", "${module.bucket.arn}/${local.complete_prefix}*"]
      },
    ]
  }
  tags = var.tags
}

module "refiner_complete" {
  source         = "../event_route"
  name           = "${var.name_prefix}-RefinerComplete"
  event_bus_name = aws_cloudwatch_event_bus.custom.name
  bucket_name    = module.bucket.name
  prefix         = "/${local.complete_prefix}"
  tags           = var.tags
}

output "bucket" { value = module.bucket.name }
output "bus" { value = aws_cloudwatch_event_bus.custom.name }
output "input_queue_url" { value = module.refiner_input.queue_url }
output "input_dlq_url" { value = module.refiner_input.dlq_url }
output "complete_queue_url" { value = module.refiner_complete.queue_url }
output "complete_dlq_url" { value = module.refiner_complete.dlq_url }
output "function_name" { value = module.refiner_input.function_name }
