# The broker flow (seed 000): an EventBridge Scheduler schedule fires the producer Lambda,
# which lists new objects in the input bucket, de-duplicates them in Redis (ElastiCache) and
# publishes one job each to RabbitMQ (Amazon MQ) with publisher confirms; a long-running ECS
# service (the worker) consumes the jobs, uses EFS for scratch space and writes results to
# the output bucket; "Object Created" events of the output bucket go EventBridge -> SQS
# (+DLQ) -> the post-process Lambda, which records completion in DynamoDB and notifies SNS.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "name" {
  type    = string
  default = "broker"
}
variable "bucket_suffix" {
  type    = string
  default = ""
}
variable "package" {
  description = "The broker Lambda package in S3 (producer and post-process)."
  type = object({
    s3_bucket         = string
    s3_key            = string
    s3_object_version = optional(string)
    source_code_hash  = string
  })
}
variable "worker_image" {
  description = "The worker image, pinned (repository_url:tag)."
  type        = string
}
variable "worker_image_repository_arn" { type = string }
variable "producer_schedule" {
  type    = string
  default = "rate(5 minutes)"
}
variable "worker_count" {
  description = "The worker service's desired_count."
  type        = number
  default     = 2
}
variable "job_delivery_limit" {
  description = "Deliveries of a job before RabbitMQ dead-letters it (quorum queue x-delivery-limit)."
  type        = number
  default     = 3
}
variable "rabbitmq_secret_arn" { type = string }
variable "rabbitmq_secret_statement" {
  description = "The IAM statement that reads the RabbitMQ secret."
  type        = any
}
variable "redis_url" {
  description = "rediss://host:port/0 of the de-duplication cache (no credentials)."
  type        = string
}
variable "redis_auth_secret_arn" { type = string }
variable "redis_auth_secret_statement" { type = any }
variable "subnet_ids" { type = list(string) }
variable "producer_security_group_ids" { type = list(string) }
variable "worker_security_group_ids" { type = list(string) }
variable "efs_security_group_ids" { type = list(string) }
variable "force_destroy" {
  type    = bool
  default = false
}
variable "tags" {
  type    = map(string)
  default = {}
}

locals {
  input_prefix  = "incoming/"
  output_prefix = "results/"
  job_queue     = "${var.name}-jobs"
  scratch_path  = "/mnt/efs"
}

module "input" {
  source        = "../bucket"
  name          = "${var.name}-input${var.bucket_suffix}"
  force_destroy = var.force_destroy
  tags          = var.tags
}

module "output" {
  source        = "../bucket"
  name          = "${var.name}-output${var.bucket_suffix}"
  eventbridge   = true
  force_destroy = var.force_destroy
  tags          = var.tags
}

# -- scratch space (EFS) and cluster ---------------------------------------------------------

resource "aws_efs_file_system" "scratch" {
  encrypted = true
  # checkov:skip=CKV_AWS_184: encrypted with the EFS service key; a customer-managed KMS key is an account-level decision
  tags = merge(var.tags, { Name = "${var.name}-scratch" })
}

resource "aws_efs_mount_target" "scratch" {
  count           = length(var.subnet_ids)
  file_system_id  = aws_efs_file_system.scratch.id
  subnet_id       = var.subnet_ids[count.index]
  security_groups = var.efs_security_group_ids
}

# The worker sees only its own directory, as uid/gid 1000, whatever the container runs as.
resource "aws_efs_access_point" "scratch" {
  file_system_id = aws_efs_file_system.scratch.id
  posix_user {
    uid = 1000
    gid = 1000
  }
  root_directory {
    path = "/broker-scratch"
    creation_info {
      owner_uid   = 1000
      owner_gid   = 1000
      permissions = "0750"
    }
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

# -- producer ------------------------------------------------------------------------------

module "producer" {
  source      = "../lambda_function"
  name        = "${var.name}-producer"
  handler     = "pipeline.broker.producer.handler"
  package     = var.package
  timeout     = 120
  memory_size = 256
  environment = {
    INPUT_BUCKET          = module.input.name
    INPUT_PREFIX          = local.input_prefix
    RABBITMQ_SECRET_ARN   = var.rabbitmq_secret_arn
    JOB_QUEUE             = local.job_queue
    JOB_DELIVERY_LIMIT    = tostring(var.job_delivery_limit)
    REDIS_URL             = var.redis_url
    REDIS_AUTH_SECRET_ARN = var.redis_auth_secret_arn
    LOG_LEVEL             = "INFO"
  }
  policy_statements = [
    {
      Effect    = "Allow"
      Action    = ["s3:ListBucket"]
      Resource  = module.input.arn
      Condition = { StringLike = { "s3:prefix" = ["${local.input_prefix}*"] } }
    },
    var.rabbitmq_secret_statement,
    var.redis_auth_secret_statement,
  ]
  vpc = {
    subnet_ids         = var.subnet_ids
    security_group_ids = var.producer_security_group_ids
  }
  tags = var.tags
}

module "schedule" {
  source              = "../schedule"
  name                = "${var.name}-producer"
  schedule_expression = var.producer_schedule
  timezone            = "UTC"
  target_arn          = module.producer.arn
  target_input = replace(replace(jsonencode({
    source         = "${var.name}-schedule"
    scheduled_time = "<aws.scheduler.scheduled-time>"
  }), "\\u003c", "<"), "\\u003e", ">")
  maximum_retry_attempts = 0 # the next firing retries; a retry would only race it
  tags                   = var.tags
}

# -- worker (ECS service) ------------------------------------------------------------------

module "worker_task" {
  source               = "../ecs_task"
  family               = "${var.name}-worker"
  container_name       = "worker"
  image                = var.worker_image
  image_repository_arn = var.worker_image_repository_arn
  command              = ["python", "-m", "pipeline.broker.worker"]
  environment = {
    INPUT_BUCKET        = module.input.name
    OUTPUT_BUCKET       = module.output.name
    OUTPUT_PREFIX       = local.output_prefix
    RABBITMQ_SECRET_ARN = var.rabbitmq_secret_arn
    JOB_QUEUE           = local.job_queue
    JOB_DELIVERY_LIMIT  = tostring(var.job_delivery_limit)
    PREFETCH            = "4"
    SCRATCH_DIR         = local.scratch_path
    LOG_LEVEL           = "INFO"
  }
  efs_volumes = {
    scratch = {
      file_system_id  = aws_efs_file_system.scratch.id
      access_point_id = aws_efs_access_point.scratch.id
      container_path  = local.scratch_path
    }
  }
  stop_timeout   = 30
  log_group_name = "/ecs/${var.name}-worker"
  # Least privilege: read inputs, write (and check) results, read the broker secret, mount EFS.
  task_policy_statements = [
    { Effect = "Allow", Action = ["s3:GetObject"], Resource = "${module.input.arn}/${local.input_prefix}*" },
    {
      Effect   = "Allow"
      Action   = ["s3:GetObject", "s3:PutObject"]
      Resource = "${module.output.arn}/${local.output_prefix}*"
    },
    {
      Effect    = "Allow"
      Action    = ["s3:ListBucket"]
      Resource  = module.output.arn
      Condition = { StringLike = { "s3:prefix" = ["${local.output_prefix}*"] } }
    },
    var.rabbitmq_secret_statement,
    {
      Effect    = "Allow"
      Action    = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
      Resource  = aws_efs_file_system.scratch.arn
      Condition = { StringEquals = { "elasticfilesystem:AccessPointArn" = aws_efs_access_point.scratch.arn } }
    },
  ]
  tags = var.tags
}

module "worker_service" {
  source              = "../ecs_service"
  name                = "${var.name}-worker"
  cluster_arn         = aws_ecs_cluster.this.arn
  task_definition_arn = module.worker_task.task_definition_arn
  desired_count       = var.worker_count
  subnets             = var.subnet_ids
  security_groups     = var.worker_security_group_ids
  tags                = var.tags
  depends_on          = [aws_efs_mount_target.scratch] # tasks mount EFS as they start
}

# -- post-process --------------------------------------------------------------------------

resource "aws_dynamodb_table" "completions" {
  name         = "${var.name}-completions"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "job_id"
  attribute {
    name = "job_id"
    type = "S"
  }
  # checkov:skip=CKV_AWS_119: encrypted at rest with the AWS-owned DynamoDB key (the default); a customer-managed KMS key is an account-level decision
  # checkov:skip=CKV_AWS_28: point-in-time recovery is billed per GB-month; every completion item is re-derivable from its object in the versioned output bucket
  tags = var.tags
}

resource "aws_sns_topic" "notifications" {
  name = "${var.name}-notifications"
  # checkov:skip=CKV_AWS_26: messages carry only job ids, S3 keys and record counts; alias/aws/sns cannot be granted to cross-account or AWS-service subscribers, and a CMK is an account-level decision
  tags = var.tags
}

module "postprocess" {
  source         = "../event_route"
  name           = "${var.name}-results"
  event_bus_name = "default"
  bucket_name    = module.output.name
  prefix         = local.output_prefix
  consumer = {
    name        = "${var.name}-post-process"
    handler     = "pipeline.broker.postprocess.handler"
    package     = var.package
    timeout     = 60
    memory_size = 256
    environment = {
      OUTPUT_BUCKET     = module.output.name
      OUTPUT_PREFIX     = local.output_prefix
      COMPLETIONS_TABLE = aws_dynamodb_table.completions.name
      NOTIFY_TOPIC_ARN  = aws_sns_topic.notifications.arn
      LOG_LEVEL         = "INFO"
    }
    policy_statements = [
      { Effect = "Allow", Action = ["s3:GetObject"], Resource = "${module.output.arn}/${local.output_prefix}*" },
      {
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
        Resource = aws_dynamodb_table.completions.arn
      },
      { Effect = "Allow", Action = ["sns:Publish"], Resource = aws_sns_topic.notifications.arn },
    ]
  }
  tags = var.tags
}

output "input_bucket" { value = module.input.name }
output "output_bucket" { value = module.output.name }
output "job_queue" { value = local.job_queue }
output "dead_letter_queue" { value = "${local.job_queue}.dlq" }
output "cluster_arn" { value = aws_ecs_cluster.this.arn }
output "worker_service" { value = module.worker_service.name }
output "producer" { value = module.producer.name }
output "post_process" { value = module.postprocess.function_name }
output "results_queue_url" { value = module.postprocess.queue_url }
output "results_dlq_url" { value = module.postprocess.dlq_url }
output "completions_table" { value = aws_dynamodb_table.completions.name }
output "notifications_topic_arn" { value = aws_sns_topic.notifications.arn }
output "schedule" { value = module.schedule.name }
