# The stack the harness applies to the local AWS emulator (moto server or LocalStack).
# Same modules as envs/aws; only the provider and the backend-bound variables differ.
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
  backend "local" {}
}

variable "aws_endpoint" {
  description = "URL of the AWS emulator, e.g. http://127.0.0.1:4566."
  type        = string
}
variable "emulator" {
  description = "Which emulator serves the AWS APIs: moto or localstack."
  type        = string
  default     = "moto"
  validation {
    condition     = contains(["moto", "localstack"], var.emulator)
    error_message = "emulator must be moto or localstack."
  }
}
variable "package_path" {
  description = "Zip of the pipeline package built by the harness."
  type        = string
}
variable "rabbitmq_url" {
  description = "amqp:// URL of the harness's RabbitMQ (stands in for Amazon MQ)."
  type        = string
  default     = ""
}
variable "redis_url" {
  description = "redis:// URL of the harness's Redis (stands in for ElastiCache)."
  type        = string
  default     = ""
}
variable "postgres_url" {
  description = "postgresql:// URL of the harness's PostgreSQL (stands in for RDS)."
  type        = string
  default     = ""
}

locals {
  # What each emulator can create. Resource types a backend lacks are skipped here and the
  # harness binds the flow to its own service instead (RabbitMQ, Redis, PostgreSQL).
  capabilities = {
    moto       = { elasticache = false, pipes = true, ecs = true, ecr = true, mq = true, rds = true, efs = true }
    localstack = { elasticache = false, pipes = false, ecs = false, ecr = false, mq = false, rds = false, efs = false }
  }[var.emulator]
  services = [
    "cloudwatch", "dynamodb", "ec2", "ecr", "ecs", "efs", "elasticache", "events", "iam",
    "lambda", "logs", "mq", "pipes", "rds", "s3", "scheduler", "secretsmanager", "sns", "sqs",
    "ssm", "sts",
  ]
  tags = { Project = "pipeline-harness", Environment = "local" }
  # postgresql://user:password@host:port/dbname
  postgres = var.postgres_url == "" ? null : regex("^postgres(?:ql)?://([^:@/]+):([^@]*)@([^:/]+):([0-9]+)/(.+)$", var.postgres_url)
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  skip_region_validation      = true
  s3_use_path_style           = true
  endpoints {
    cloudwatch     = var.aws_endpoint
    dynamodb       = var.aws_endpoint
    ec2            = var.aws_endpoint
    ecr            = var.aws_endpoint
    ecs            = var.aws_endpoint
    efs            = var.aws_endpoint
    elasticache    = var.aws_endpoint
    events         = var.aws_endpoint
    iam            = var.aws_endpoint
    lambda         = var.aws_endpoint
    logs           = var.aws_endpoint
    mq             = var.aws_endpoint
    pipes          = var.aws_endpoint
    rds            = var.aws_endpoint
    s3             = var.aws_endpoint
    scheduler      = var.aws_endpoint
    secretsmanager = var.aws_endpoint
    sns            = var.aws_endpoint
    sqs            = var.aws_endpoint
    ssm            = var.aws_endpoint
    sts            = var.aws_endpoint
  }
}

module "refiner" {
  source        = "../../modules/refiner_flow"
  package_path  = var.package_path
  force_destroy = true
  tags          = local.tags
}

module "batch" {
  source        = "../../modules/batch_flow"
  create_ecs    = local.capabilities.ecs
  create_ecr    = local.capabilities.ecr
  force_destroy = true
  tags          = local.tags
}

module "cache" {
  source    = "../../modules/cache"
  create    = local.capabilities.elasticache
  local_url = var.redis_url
}

module "ingest" {
  source       = "../../modules/ingest_flow"
  environment  = "local"
  package_path = var.package_path
  database = {
    username = local.postgres[0]
    password = local.postgres[1]
    host     = local.postgres[2]
    port     = tonumber(local.postgres[3])
    dbname   = local.postgres[4]
  }
  secret_recovery_window_days = 0
  force_destroy               = true
  tags                        = local.tags
}

# Amazon MQ stands in as the harness's RabbitMQ: the module writes the broker secret either way.
module "broker_mq" {
  source                      = "../../modules/mq_broker"
  name                        = "broker"
  create                      = false
  local_url                   = var.rabbitmq_url
  secret_recovery_window_days = 0
  tags                        = local.tags
}

module "broker" {
  source                    = "../../modules/broker_flow"
  package_path              = var.package_path
  rabbitmq_secret_arn       = module.broker_mq.secret_arn
  rabbitmq_secret_statement = module.broker_mq.secret_read_statement
  redis_url                 = module.cache.url
  create_ecs                = local.capabilities.ecs
  create_efs                = local.capabilities.efs
  force_destroy             = true
  tags                      = local.tags
}

# Any Amazon Linux 2 image the emulator knows: the harness runs the worker's user data, not the AMI.
data "aws_ami" "worker" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "name"
    values = ["amzn2-ami-hvm-*-x86_64-gp2"]
  }
}

module "tracker" {
  source             = "../../modules/tracker_flow"
  package_path       = var.package_path
  worker_script_path = "${path.module}/../../../pipeline/tracker/sqs_worker.py"
  ami_id             = data.aws_ami.worker.id
  create_pipe        = local.capabilities.pipes
  force_destroy      = true
  tags               = local.tags
}

# Audit queues subscribed to the SNS topics, so scenarios can assert what was published
# (the `sns_messages` expectation reads them).
resource "aws_sqs_queue" "audit" {
  for_each = {
    alerts        = module.ingest.alerts_topic_arn
    notifications = module.broker.notifications_topic_arn
  }
  name = "harness-audit-${each.key}"
  tags = local.tags
}

resource "aws_sns_topic_subscription" "audit" {
  for_each             = aws_sqs_queue.audit
  topic_arn            = each.key == "alerts" ? module.ingest.alerts_topic_arn : module.broker.notifications_topic_arn
  protocol             = "sqs"
  endpoint             = each.value.arn
  raw_message_delivery = false
}

output "emulator" { value = var.emulator }
output "cache_url" { value = module.cache.url }
output "capabilities" { value = local.capabilities }
output "refiner" { value = module.refiner }
output "batch" { value = module.batch }
output "ingest" { value = module.ingest }
output "broker" { value = module.broker }
output "tracker" { value = module.tracker }
