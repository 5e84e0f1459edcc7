# An EventBridge Scheduler schedule with its own role, for a Lambda, SQS or ECS RunTask
# target.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "name" { type = string }
variable "schedule_expression" {
  description = "cron(...), rate(...) or at(...)."
  type        = string
}
variable "timezone" {
  type    = string
  default = "UTC"
}
variable "start_date" {
  type    = string
  default = null
}
variable "end_date" {
  type    = string
  default = null
}
variable "flexible_window_minutes" {
  description = "0 for OFF; otherwise the maximum window of a FLEXIBLE time window."
  type        = number
  default     = 0
}
variable "target_arn" { type = string }
variable "target_input" {
  type    = string
  default = null
}
variable "ecs" {
  description = "For an ECS cluster target: the task definition and network."
  type = object({
    task_definition_arn = string
    subnets             = list(string)
    security_groups     = optional(list(string), [])
    pass_role_arns      = list(string)
  })
  default = null
}
variable "maximum_retry_attempts" {
  type    = number
  default = 2
}
variable "maximum_event_age_in_seconds" {
  type    = number
  default = 3600
}
variable "dead_letter_arn" {
  type    = string
  default = null
}
variable "tags" {
  type    = map(string)
  default = {}
}

locals {
  is_ecs    = var.ecs != null
  is_lambda = strcontains(var.target_arn, ":lambda:")
  is_sqs    = strcontains(var.target_arn, ":sqs:")
  statements = concat(
    local.is_lambda ? [{ Effect = "Allow", Action = ["lambda:InvokeFunction"], Resource = [var.target_arn] }] : [],
    local.is_sqs ? [{ Effect = "Allow", Action = ["sqs:SendMessage"], Resource = [var.target_arn] }] : [],
    local.is_ecs ? [
      { Effect = "Allow", Action = ["ecs:RunTask"], Resource = [var.ecs.task_definition_arn] },
      { Effect = "Allow", Action = ["iam:PassRole"], Resource = var.ecs.pass_role_arns },
    ] : [],
    var.dead_letter_arn == null ? [] : [{ Effect = "Allow", Action = ["sqs:SendMessage"], Resource = [var.dead_letter_arn] }],
  )
}

resource "aws_iam_role" "this" {
  name = "${var.name}-scheduler"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "scheduler.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-scheduler"
  role   = aws_iam_role.this.id
  policy = jsonencode({ Version = "2012-10-17", Statement = local.statements })
}

resource "aws_scheduler_schedule" "this" {
  name                         = var.name
  schedule_expression          = var.schedule_expression
  schedule_expression_timezone = var.timezone
  start_date                   = var.start_date
  end_date                     = var.end_date
  # checkov:skip=CKV_AWS_297: the schedule (target ARN and input) is encrypted with an AWS-owned key; a customer-managed KMS key is an account-level decision

  flexible_time_window {
    mode                      = var.flexible_window_minutes > 0 ? "FLEXIBLE" : "OFF"
    maximum_window_in_minutes = var.flexible_window_minutes > 0 ? var.flexible_window_minutes : null
  }

  target {
    arn      = var.target_arn
    role_arn = aws_iam_role.this.arn
    input    = var.target_input

    retry_policy {
      maximum_retry_attempts       = var.maximum_retry_attempts
      maximum_event_age_in_seconds = var.maximum_event_age_in_seconds
    }

    dynamic "dead_letter_config" {
      for_each = var.dead_letter_arn == null ? [] : [var.dead_letter_arn]
      content {
        arn = dead_letter_config.value
      }
    }

    dynamic "ecs_parameters" {
      for_each = local.is_ecs ? [var.ecs] : []
      content {
        task_definition_arn = ecs_parameters.value.task_definition_arn
        launch_type         = "FARGATE"
        task_count          = 1
        network_configuration {
          subnets          = ecs_parameters.value.subnets
          security_groups  = ecs_parameters.value.security_groups
          assign_public_ip = false
        }
      }
    }
  }
}

output "name" { value = aws_scheduler_schedule.this.name }
output "arn" { value = aws_scheduler_schedule.this.arn }
