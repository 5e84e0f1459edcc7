# A Lambda function with its own execution role, log group and least-privilege policy.
# Code comes either from a zip (`package_path` + `handler`) or a container image (`image_uri`).
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
variable "package_path" {
  type    = string
  default = null
}
variable "image_uri" {
  type    = string
  default = null
}
variable "runtime" {
  type    = string
  default = "python3.11"
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
variable "log_retention_days" {
  type    = number
  default = 14
}
variable "tags" {
  type    = map(string)
  default = {}
}

locals {
  from_image = var.image_uri != null
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
  tags              = var.tags
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

resource "aws_lambda_function" "this" {
  function_name    = var.name
  role             = aws_iam_role.this.arn
  package_type     = local.from_image ? "Image" : "Zip"
  image_uri        = var.image_uri
  filename         = local.from_image ? null : var.package_path
  source_code_hash = local.from_image ? null : filebase64sha256(var.package_path)
  handler          = local.from_image ? null : var.handler
  runtime          = local.from_image ? null : var.runtime
  timeout          = var.timeout
  memory_size      = var.memory_size
  environment {
    variables = var.environment
  }
  depends_on = [aws_iam_role_policy.this, aws_cloudwatch_log_group.this]
  tags       = var.tags
}

output "name" { value = aws_lambda_function.this.function_name }
output "arn" { value = aws_lambda_function.this.arn }
output "role_arn" { value = aws_iam_role.this.arn }
output "role_name" { value = aws_iam_role.this.name }
