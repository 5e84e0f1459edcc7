# The RabbitMQ broker (Amazon MQ) and the secret its clients read: credentials plus the
# AMQP endpoint. With `create = false` (local stacks) the secret points at `local_url`, the
# harness's RabbitMQ, so clients cannot tell the difference.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "name" { type = string }
variable "create" {
  type    = bool
  default = true
}
variable "instance_type" {
  type    = string
  default = "mq.t3.micro"
}
variable "engine_version" {
  type    = string
  default = "3.13"
}
variable "username" {
  type    = string
  default = "pipeline"
}
variable "password" {
  description = "Broker user password (create = true); at least 12 characters."
  type        = string
  default     = null
  sensitive   = true
}
variable "subnet_ids" {
  type    = list(string)
  default = []
}
variable "security_group_ids" {
  type    = list(string)
  default = []
}
variable "local_url" {
  description = "amqp://user:password@host:port/vhost of the stand-in used when create is false."
  type        = string
  default     = ""
}
variable "secret_recovery_window_days" {
  type    = number
  default = 30
}
variable "tags" {
  type    = map(string)
  default = {}
}

locals {
  # amqp://user:password@host:port[/vhost]
  local_parts = var.create ? null : regex("^(amqps?)://([^:@/]+):([^@]*)@([^:/]+):([0-9]+)/?(.*)$", var.local_url)
  secret = var.create ? {
    username = var.username
    password = var.password
    endpoint = aws_mq_broker.this[0].instances[0].endpoints[0]
    vhost    = "/"
    } : {
    username = local.local_parts[1]
    password = local.local_parts[2]
    endpoint = "${local.local_parts[0]}://${local.local_parts[3]}:${local.local_parts[4]}"
    vhost    = local.local_parts[5] == "" || local.local_parts[5] == "%2F" ? "/" : local.local_parts[5]
  }
}

resource "aws_mq_broker" "this" {
  count                      = var.create ? 1 : 0
  broker_name                = var.name
  engine_type                = "RabbitMQ"
  engine_version             = var.engine_version
  host_instance_type         = var.instance_type
  deployment_mode            = "SINGLE_INSTANCE"
  publicly_accessible        = false
  subnet_ids                 = var.subnet_ids
  security_groups            = var.security_group_ids
  auto_minor_version_upgrade = true
  user {
    username = var.username
    password = var.password
  }
  logs {
    general = true
  }
  tags = var.tags
}

module "secret" {
  source                  = "../json_secret"
  name                    = "${var.name}/rabbitmq"
  description             = "RabbitMQ credentials and endpoint of ${var.name}"
  recovery_window_in_days = var.secret_recovery_window_days
  value                   = local.secret
  tags                    = var.tags
}

output "secret_arn" { value = module.secret.arn }
output "secret_read_statement" { value = module.secret.read_policy_statement }
