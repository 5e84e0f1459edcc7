# A long-running ECS Fargate service: `desired_count` copies of a task definition, replaced
# when they stop. Where the emulator has no ECS, `create_ecs = false` records the service in
# a terraform_data resource; the harness supervises the tasks from either form.
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
variable "create_ecs" {
  type    = bool
  default = true
}
variable "tags" {
  type    = map(string)
  default = {}
}

resource "aws_ecs_service" "this" {
  count                              = var.create_ecs ? 1 : 0
  name                               = var.name
  cluster                            = var.cluster_arn
  task_definition                    = var.task_definition_arn
  desired_count                      = var.desired_count
  launch_type                        = "FARGATE"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  network_configuration {
    subnets          = var.subnets
    security_groups  = var.security_groups
    assign_public_ip = false
  }
  tags = var.tags
}

resource "terraform_data" "service" {
  count = var.create_ecs ? 0 : 1
  input = {
    kind            = "harness_ecs_service"
    name            = var.name
    cluster         = var.cluster_arn
    task_definition = var.task_definition_arn
    desired_count   = var.desired_count
  }
}

output "name" { value = var.name }
