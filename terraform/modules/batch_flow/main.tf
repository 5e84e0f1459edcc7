# The batch flow (seed 001): files under raw-data/YYYY-MM-DD/ in the data bucket; a daily
# EventBridge Scheduler schedule runs the ECS Fargate task `processor`, which aggregates
# the previous day into reports/YYYY-MM-DD.json.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "name" {
  type    = string
  default = "pipeline-batch"
}
variable "bucket_name" {
  type    = string
  default = "pipeline-batch-data"
}
variable "image" {
  description = "The processor image, pinned (repository_url:tag)."
  type        = string
}
variable "image_repository_arn" { type = string }
variable "subnet_ids" { type = list(string) }
variable "security_group_ids" { type = list(string) }
variable "schedule_expression" {
  type    = string
  default = "cron(30 2 * * ? *)"
}
variable "schedule_timezone" {
  type    = string
  default = "America/New_York"
}
variable "raw_retention_days" {
  type    = number
  default = 90
}
variable "report_retention_days" {
  type    = number
  default = 365
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
  container = "processor"
}

module "bucket" {
  source        = "../bucket"
  name          = var.bucket_name
  force_destroy = var.force_destroy
  expire_after_days = {
    "raw-data/" = var.raw_retention_days
    "reports/"  = var.report_retention_days
  }
  tags = var.tags
}

resource "aws_ecs_cluster" "this" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = var.tags
}

module "task" {
  source               = "../ecs_task"
  family               = "${var.name}-processor"
  container_name       = local.container
  image                = var.image
  image_repository_arn = var.image_repository_arn
  command              = ["python", "-m", "pipeline.batch.processor"]
  environment = {
    DATA_BUCKET    = module.bucket.name
    RAW_PREFIX     = "raw-data/"
    REPORTS_PREFIX = "reports/"
    LOG_LEVEL      = "INFO"
  }
  log_group_name = "/ecs/assignment"
  task_policy_statements = [
    { Effect = "Allow", Action = ["s3:ListBucket"], Resource = module.bucket.arn },
    { Effect = "Allow", Action = ["s3:GetObject"], Resource = "${module.bucket.arn}/raw-data/*" },
    { Effect = "Allow", Action = ["s3:GetObject", "s3:PutObject"], Resource = "${module.bucket.arn}/reports/*" },
  ]
  tags = var.tags
}

module "schedule" {
  source              = "../schedule"
  name                = "${var.name}-daily"
  schedule_expression = var.schedule_expression
  timezone            = var.schedule_timezone
  target_arn          = aws_ecs_cluster.this.arn
  # RunTask overrides: the processor learns the scheduled time, so a late or retried run
  # still processes the right day. jsonencode writes < and > as \u003c / \u003e, which
  # Scheduler would pass through literally instead of filling in the context attribute
  # (a local run caught this): put them back.
  target_input = replace(replace(jsonencode({
    containerOverrides = [{
      name        = local.container
      environment = [{ name = "SCHEDULE_TIME", value = "<aws.scheduler.scheduled-time>" }]
    }]
  }), "\\u003c", "<"), "\\u003e", ">")
  ecs = {
    task_definition_arn = module.task.task_definition_arn
    subnets             = var.subnet_ids
    security_groups     = var.security_group_ids
    pass_role_arns      = [module.task.task_role_arn, module.task.execution_role_arn]
  }
  tags = var.tags
}

output "bucket" { value = module.bucket.name }
output "cluster_arn" { value = aws_ecs_cluster.this.arn }
output "task_definition_arn" { value = module.task.task_definition_arn }
output "schedule" { value = module.schedule.name }
