# The Redis cache (ElastiCache in AWS). Where the emulator cannot create ElastiCache
# (moto's engine-version parsing fails, community LocalStack has no ElastiCache), the local
# env sets create = false and the harness's own Redis is the cache: `url` is then that
# Redis, so every consumer reads one output either way.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "create" {
  type = bool
}
variable "name" {
  type    = string
  default = "pipeline-cache"
}
variable "node_type" {
  type    = string
  default = "cache.t3.micro"
}
variable "subnet_group_name" {
  type    = string
  default = null
}
variable "security_group_ids" {
  type    = list(string)
  default = []
}
variable "local_url" {
  description = "redis:// URL of the stand-in used when create is false."
  type        = string
  default     = ""
}

resource "aws_elasticache_cluster" "this" {
  count                = var.create ? 1 : 0
  cluster_id           = var.name
  engine               = "redis"
  engine_version       = "7.1"
  node_type            = var.node_type
  num_cache_nodes      = 1
  port                 = 6379
  subnet_group_name    = var.subnet_group_name
  security_group_ids   = var.security_group_ids
  parameter_group_name = "default.redis7"
}

output "url" {
  value = var.create ? "redis://${aws_elasticache_cluster.this[0].cache_nodes[0].address}:6379/0" : var.local_url
}
