# A Lambda function with its own execution role, log group and least-privilege policy.
# Code comes from a zip in S3 (`package`, the way large packages deploy), a local zip
# (`package_path`), or a container image (`image_uri`). With `vpc` the function runs in the
# given private subnets and security groups (the ENI permissions come from AWS's managed
# AWSLambdaVPCAccessExecutionRole policy).
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "name" { type = string }
variable "handler" {
  type    = string
  default = null
}
variable "package" {
  description = "The zip in S3: bucket, key, version id and base64 SHA-256 of the zip."
  type = object({
    s3_bucket         = string
    s3_key            = string
    s3_object_version = optional(string)
    source_code_hash  = string
  })
  default = null
}
variable "package_path" {
  description = "A local zip, uploaded directly (small functions, test stacks)."
  type        = string
  default     = null
}
variable "image_uri" {
  type    = string
  default = null
}
variable "runtime" {
  type    = string
  default = "python3.13"
}
variable "architecture" {
  type    = string
  default = "x86_64"
}
variable "timeout" {
  type    = number
  default = 30
}
variable "memory_size" {
  type    = number
  default = 256
}
variable "environment" {
  type    = map(string)
  default = {}
}
variable "policy_statements" {
  description = "IAM statements (Effect/Action/Resource objects) the function needs beyond logs."
  type        = any
  default     = []
}
variable "vpc" {
  description = "Private subnets and security groups, for functions that reach VPC-only stores."
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
  default = null
}
variable "log_retention_days" {
  type    = number
  default = 365
}
variable "tags" {
  type    = map(string)
  default = {}
}

data "aws_partition" "current" {}

locals {
  from_image = var.image_uri != null
  from_s3    = !local.from_image && var.package != null
}

resource "aws_iam_role" "this" {
  name = "${var.name}-role"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  # checkov:skip=CKV_AWS_158: logs are encrypted with the CloudWatch Logs service key; a customer-managed KMS key is an account-level decision
  tags = var.tags
}

resource "aws_iam_role_policy" "this" {
  name = "${var.name}-policy"
  role = aws_iam_role.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([{
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = "${aws_cloudwatch_log_group.this.arn}:*"
    }], var.policy_statements)
  })
}

resource "aws_iam_role_policy_attachment" "vpc" {
  count      = var.vpc == null ? 0 : 1
  role       = aws_iam_role.this.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

resource "aws_lambda_function" "this" {
  function_name     = var.name
  role              = aws_iam_role.this.arn
  package_type      = local.from_image ? "Image" : "Zip"
  image_uri         = var.image_uri
  s3_bucket         = local.from_s3 ? var.package.s3_bucket : null
  s3_key            = local.from_s3 ? var.package.s3_key : null
  s3_object_version = local.from_s3 ? var.package.s3_object_version : null
  filename          = local.from_image || local.from_s3 ? null : var.package_path
  source_code_hash  = local.from_image ? null : local.from_s3 ? var.package.source_code_hash : filebase64sha256(var.package_path)
  handler           = local.from_image ? null : var.handler
  runtime           = local.from_image ? null : var.runtime
  architectures     = [var.architecture]
  timeout           = var.timeout
  memory_size       = var.memory_size
  environment {
    variables = var.environment
  }
  dynamic "vpc_config" {
    for_each = var.vpc == null ? [] : [var.vpc]
    content {
      subnet_ids         = vpc_config.value.subnet_ids
      security_group_ids = vpc_config.value.security_group_ids
    }
  }
  # checkov:skip=CKV_AWS_50: X-Ray tracing is an observability choice with its own cost; logs and CloudWatch metrics cover this pipeline
  # checkov:skip=CKV_AWS_115: no reserved concurrency: the SQS event-source mappings bound concurrency, and reserving it takes from the account pool
  # checkov:skip=CKV_AWS_116: every asynchronous or queue-fed invocation already has a dead-letter queue on its source (SQS redrive, Scheduler DLQ)
  # checkov:skip=CKV_AWS_117: functions that reach VPC-only stores are in the VPC; the others call only public AWS APIs and need no VPC
  # checkov:skip=CKV_AWS_173: the environment holds names and ARNs only, no secrets (those are read from Secrets Manager)
  # checkov:skip=CKV_AWS_272: code signing needs a signing profile and a signed upload pipeline, not set up for this project
  depends_on = [aws_iam_role_policy.this, aws_iam_role_policy_attachment.vpc, aws_cloudwatch_log_group.this]
  tags       = var.tags
}

output "name" { value = aws_lambda_function.this.function_name }
output "arn" { value = aws_lambda_function.this.arn }
output "role_arn" { value = aws_iam_role.this.arn }
output "role_name" { value = aws_iam_role.this.name }
