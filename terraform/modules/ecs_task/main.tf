# An ECS Fargate task definition with its execution role, task role and log group.
# Where the emulator has no ECS (community LocalStack), `create_ecs = false` records the
# same definition in a terraform_data resource instead, so the harness still knows which
# command and environment to run and Terraform still applies cleanly.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "family" { type = string }
variable "container_name" { type = string }
variable "image" { type = string }
variable "command" {
  description = "The container's command; the harness runs it as a local process."
  type        = list(string)
}
variable "environment" {
  type    = map(string)
  default = {}
}
variable "cpu" {
  type    = number
  default = 256
}
variable "memory" {
  type    = number
  default = 512
}
variable "task_policy_statements" {
  type    = any
  default = []
}
variable "efs_volumes" {
  description = "EFS volumes: name -> {file_system_id, access_point_id, container_path}; mounted read-write."
  type = map(object({
    file_system_id  = string
    access_point_id = optional(string)
    container_path  = string
  }))
  default = {}
}
variable "stop_timeout" {
  description = "Seconds between SIGTERM and SIGKILL when the task is stopped (Fargate max 120)."
  type        = number
  default     = 30
}
variable "log_group_name" { type = string }
variable "log_retention_days" {
  type    = number
  default = 30
}
variable "create_ecs" {
  type    = bool
  default = true
}
variable "tags" {
  type    = map(string)
  default = {}
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  container_definitions = jsonencode([{
    name        = var.container_name
    image       = var.image
    essential   = true
    command     = var.command
    stopTimeout = var.stop_timeout
    mountPoints = [for name in sort(keys(var.efs_volumes)) : {
      sourceVolume  = name
      containerPath = var.efs_volumes[name].container_path
      readOnly      = false
    }]
    environment = [for k in sort(keys(var.environment)) : { name = k, value = var.environment[k] }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.log_group_name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = var.container_name
      }
    }
  }])
  task_definition_arn = var.create_ecs ? aws_ecs_task_definition.this[0].arn : "arn:aws:ecs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:task-definition/${var.family}:1"
}

resource "aws_cloudwatch_log_group" "this" {
  name              = var.log_group_name
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.family}-execution"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "execution" {
  name = "${var.family}-execution"
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
        Resource = "*"
      },
      {
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "${aws_cloudwatch_log_group.this.arn}:*"
      },
    ]
  })
}

resource "aws_iam_role" "task" {
  name               = "${var.family}-task"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "task" {
  count = length(var.task_policy_statements) > 0 ? 1 : 0
  name  = "${var.family}-task"
  role  = aws_iam_role.task.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = var.task_policy_statements
  })
}

resource "aws_ecs_task_definition" "this" {
  count                    = var.create_ecs ? 1 : 0
  family                   = var.family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = local.container_definitions
  dynamic "volume" {
    for_each = var.efs_volumes
    content {
      name = volume.key
      efs_volume_configuration {
        file_system_id     = volume.value.file_system_id
        transit_encryption = "ENABLED"
        dynamic "authorization_config" {
          for_each = volume.value.access_point_id == null ? [] : [volume.value.access_point_id]
          content {
            access_point_id = authorization_config.value
            iam             = "ENABLED"
          }
        }
      }
    }
  }
  tags = var.tags
}

# The definition as data, for emulators without ECS (read by the harness, ignored by AWS).
resource "terraform_data" "task_definition" {
  count = var.create_ecs ? 0 : 1
  input = {
    kind                  = "harness_ecs_task_definition"
    family                = var.family
    arn                   = local.task_definition_arn
    task_role_arn         = aws_iam_role.task.arn
    container_definitions = local.container_definitions
    volumes               = { for name, v in var.efs_volumes : name => v.file_system_id }
  }
}

output "task_definition_arn" { value = local.task_definition_arn }
output "task_role_arn" { value = aws_iam_role.task.arn }
output "execution_role_arn" { value = aws_iam_role.execution.arn }
output "family" { value = var.family }
