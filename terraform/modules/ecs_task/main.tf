# An ECS Fargate task definition with its execution role, task role and log group.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "family" { type = string }
variable "container_name" { type = string }
variable "image" {
  description = "Image URI with a pinned tag or digest (never :latest)."
  type        = string
  validation {
    condition     = !endswith(var.image, ":latest") && can(regex("[:@][^/]+$", var.image))
    error_message = "image must carry a pinned tag or digest, not :latest or none."
  }
}
variable "image_repository_arn" {
  description = "The ECR repository the image is pulled from (the execution role may pull only from it)."
  type        = string
}
variable "command" {
  type = list(string)
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
  description = "EFS volumes: name -> {file_system_id, access_point_id, container_path}; mounted read-write over TLS."
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
  default = 365
}
variable "tags" {
  type    = map(string)
  default = {}
}

data "aws_region" "current" {}

resource "aws_cloudwatch_log_group" "this" {
  name              = var.log_group_name
  retention_in_days = var.log_retention_days
  # checkov:skip=CKV_AWS_158: logs are encrypted with the CloudWatch Logs service key; a customer-managed KMS key is an account-level decision
  tags = var.tags
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
        # GetAuthorizationToken has no resource-level permissions: AWS requires "*".
        Effect   = "Allow"
        Action   = ["ecr:GetAuthorizationToken"]
        Resource = "*"
      },
      {
        Effect   = "Allow"
        Action   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
        Resource = var.image_repository_arn
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
  family                   = var.family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
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
  # checkov:skip=CKV_AWS_336: the containers write temporary files (Python's tempfile, pip caches) to their root filesystem; scratch data goes to EFS
  tags = var.tags
}

output "task_definition_arn" { value = aws_ecs_task_definition.this.arn }
output "task_role_arn" { value = aws_iam_role.task.arn }
output "execution_role_arn" { value = aws_iam_role.execution.arn }
output "family" { value = var.family }
