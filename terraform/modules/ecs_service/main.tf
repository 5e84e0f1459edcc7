# A long-running ECS Fargate service: `desired_count` copies of a task definition in
# private subnets without public IPs, replaced when they stop.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "name" { type = string }
variable "cluster_arn" { type = string }
variable "task_definition_arn" { type = string }
variable "desired_count" {
  type    = number
  default = 1
}
variable "subnets" { type = list(string) }
variable "security_groups" { type = list(string) }
variable "tags" {
  type    = map(string)
  default = {}
}

resource "aws_ecs_service" "this" {
  name                               = var.name
  cluster                            = var.cluster_arn
  task_definition                    = var.task_definition_arn
  desired_count                      = var.desired_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST" # EFS volumes need 1.4.0 or later; LATEST is 1.4.0 or newer
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  propagate_tags                     = "SERVICE"
  enable_ecs_managed_tags            = true
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  network_configuration {
    subnets          = var.subnets
    security_groups  = var.security_groups
    assign_public_ip = false
  }
  tags = var.tags
}

output "name" { value = aws_ecs_service.this.name }
