# ElastiCache for Redis (a one-node replication group) with TLS in transit, encryption at
# rest and an AUTH token. The token is drawn from Secrets Manager's GetRandomPassword at the
# first apply and kept from then on (see mq_broker); clients read it from the secret whose
# ARN this module outputs, never from an environment variable.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "name" { type = string }
variable "node_type" {
  type    = string
  default = "cache.t4g.micro"
}
variable "engine_version" {
  type    = string
  default = "7.1"
}
variable "subnet_ids" { type = list(string) }
variable "security_group_ids" { type = list(string) }
variable "snapshot_retention_days" {
  type    = number
  default = 1
}
variable "secret_recovery_window_days" {
  type    = number
  default = 7
}
variable "tags" {
  type    = map(string)
  default = {}
}

data "aws_secretsmanager_random_password" "draw" {
  password_length     = 32
  exclude_punctuation = true # AUTH tokens allow only printable characters without @ " /
}

resource "terraform_data" "auth_token" {
  input = data.aws_secretsmanager_random_password.draw.random_password
  lifecycle {
    ignore_changes = [input]
  }
}

resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id       = var.name
  description                = "Redis for ${var.name}"
  engine                     = "redis"
  engine_version             = var.engine_version
  node_type                  = var.node_type
  num_cache_clusters         = 1
  port                       = 6379
  parameter_group_name       = "default.redis7"
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = var.security_group_ids
  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  auth_token                 = terraform_data.auth_token.output
  automatic_failover_enabled = false
  snapshot_retention_limit   = var.snapshot_retention_days
  auto_minor_version_upgrade = true
  # checkov:skip=CKV2_AWS_50: one node (num_cache_clusters = 1) is the minimum deployment; Multi-AZ failover needs a second node at twice the cost
  # checkov:skip=CKV_AWS_191: encrypted at rest with the ElastiCache service key; a customer-managed KMS key is an account-level decision
  tags = var.tags
}

resource "aws_secretsmanager_secret" "auth" {
  name                    = "${var.name}/redis-auth"
  description             = "AUTH token of the ${var.name} Redis replication group"
  recovery_window_in_days = var.secret_recovery_window_days
  # checkov:skip=CKV2_AWS_57: the token is rotated through ModifyReplicationGroup; that needs a rotation Lambda, not built here
  # checkov:skip=CKV_AWS_149: encrypted with the Secrets Manager service key; a customer-managed KMS key is an account-level decision
  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "auth" {
  secret_id     = aws_secretsmanager_secret.auth.id
  secret_string = jsonencode({ auth_token = terraform_data.auth_token.output })
}

output "url" {
  description = "rediss://host:port/0 of the primary, without credentials."
  value       = "rediss://${aws_elasticache_replication_group.this.primary_endpoint_address}:${aws_elasticache_replication_group.this.port}/0"
}
output "auth_secret_arn" { value = aws_secretsmanager_secret.auth.arn }
output "auth_secret_read_statement" {
  value = {
    Effect   = "Allow"
    Action   = ["secretsmanager:GetSecretValue"]
    Resource = aws_secretsmanager_secret.auth.arn
  }
}
