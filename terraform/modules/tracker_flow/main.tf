# The tracker flow (seed 004): an item put into the tracker table with status = PENDING ->
# DynamoDB stream -> EventBridge Pipe filtered on PENDING -> SQS (+DLQ, which the seed
# lacked) -> an orchestrator Lambda, every minute, launches one EC2 worker (tag
# Role=rag-worker) when messages wait and none runs -> the worker copies data/input/... to
# data/output/..., sets status = FINISHED and terminates itself after an idle period.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "name" {
  type    = string
  default = "tracker"
}
variable "bucket_name" {
  type    = string
  default = "tracker-data"
}
variable "package" {
  description = "The tracker Lambda package in S3 (the orchestrator)."
  type = object({
    s3_bucket         = string
    s3_key            = string
    s3_object_version = optional(string)
    source_code_hash  = string
  })
}
variable "worker_bundle_path" {
  description = "The EC2 worker bundle (script, pinned requirements, their wheels), uploaded to the bucket; the instance installs it at boot."
  type        = string
}
variable "ami_parameter" {
  description = "Public SSM parameter naming the worker AMI (Amazon Linux 2023: its python3.11 package runs the worker)."
  type        = string
  default     = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}
variable "subnet_ids" { type = list(string) }
variable "worker_security_group_ids" { type = list(string) }
variable "instance_type" {
  type    = string
  default = "t3.micro"
}
variable "autoterminate_minutes" {
  type    = number
  default = 5
}
variable "key_name" {
  description = "EC2 key pair for SSH; empty for none (the default: no SSH)."
  type        = string
  default     = ""
}
variable "max_receive_count" {
  type    = number
  default = 3
}
variable "force_destroy" {
  type    = bool
  default = false
}
variable "tags" {
  type    = map(string)
  default = {}
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  tag_key    = "Role"
  tag_value  = "rag-worker"
  bundle_key = "scripts/rag-worker.zip"
  # New or changed rows whose new image says PENDING (REMOVE records have no NewImage).
  filter_pattern = jsonencode({
    eventName = ["INSERT", "MODIFY"]
    dynamodb  = { NewImage = { status = { S = ["PENDING"] } } }
  })
}

module "bucket" {
  source        = "../bucket"
  name          = var.bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_object" "worker_bundle" {
  bucket      = module.bucket.name
  key         = local.bundle_key
  source      = var.worker_bundle_path
  source_hash = filemd5(var.worker_bundle_path)
  tags        = var.tags
}

data "aws_ssm_parameter" "ami" {
  name = var.ami_parameter
}

resource "aws_dynamodb_table" "files" {
  name             = "${var.name}-files"
  billing_mode     = "PAY_PER_REQUEST"
  hash_key         = "id"
  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"
  attribute {
    name = "id"
    type = "S"
  }
  attribute {
    name = "status"
    type = "S"
  }
  global_secondary_index {
    name            = "status-index"
    hash_key        = "status"
    projection_type = "ALL"
  }
  # checkov:skip=CKV_AWS_119: encrypted at rest with the AWS-owned DynamoDB key (the default); a customer-managed KMS key is an account-level decision
  # checkov:skip=CKV_AWS_28: point-in-time recovery is billed per GB-month; the items are work-tracking state for files kept in the versioned tracker bucket
  tags = var.tags
}

module "queue" {
  source                     = "../queue_with_dlq"
  name                       = "${var.name}-work"
  max_receive_count          = var.max_receive_count
  visibility_timeout_seconds = 300
  tags                       = var.tags
}

# -- pipe: stream -> filter -> queue -------------------------------------------------------

resource "aws_iam_role" "pipe" {
  name = "${var.name}-pipe"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "pipes.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id } }
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "pipe" {
  name = "${var.name}-pipe"
  role = aws_iam_role.pipe.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
        Resource = aws_dynamodb_table.files.stream_arn
      },
      { Effect = "Allow", Action = ["sqs:SendMessage"], Resource = module.queue.arn },
    ]
  })
}

resource "aws_pipes_pipe" "pending" {
  name     = "${var.name}-pending"
  role_arn = aws_iam_role.pipe.arn
  source   = aws_dynamodb_table.files.stream_arn
  target   = module.queue.arn
  source_parameters {
    dynamodb_stream_parameters {
      starting_position = "LATEST"
      batch_size        = 1
    }
    filter_criteria {
      filter {
        pattern = local.filter_pattern
      }
    }
  }
  depends_on = [aws_iam_role_policy.pipe]
  tags       = var.tags
}

# -- worker instance: network, role, profile ----------------------------------------------

resource "aws_iam_role" "worker" {
  name = "${var.name}-worker"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "worker" {
  name = "${var.name}-worker"
  role = aws_iam_role.worker.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
        Resource = module.queue.arn
      },
      { Effect = "Allow", Action = ["dynamodb:GetItem", "dynamodb:UpdateItem"], Resource = aws_dynamodb_table.files.arn },
      { Effect = "Allow", Action = ["s3:GetObject"], Resource = ["${module.bucket.arn}/data/input/*", "${module.bucket.arn}/${local.bundle_key}"] },
      { Effect = "Allow", Action = ["s3:PutObject"], Resource = "${module.bucket.arn}/data/output/*" },
      { Effect = "Allow", Action = ["s3:ListBucket"], Resource = module.bucket.arn },
      {
        # Only itself, in practice: workers carry the tag and nothing else is allowed.
        Effect    = "Allow"
        Action    = ["ec2:TerminateInstances"]
        Resource  = "arn:aws:ec2:*:*:instance/*"
        Condition = { StringEquals = { "ec2:ResourceTag/${local.tag_key}" = local.tag_value } }
      },
    ]
  })
}

resource "aws_iam_instance_profile" "worker" {
  name = "${var.name}-worker"
  role = aws_iam_role.worker.name
  tags = var.tags
}

# -- orchestrator, every minute ------------------------------------------------------------

module "orchestrator" {
  source      = "../lambda_function"
  name        = "${var.name}-orchestrator"
  handler     = "pipeline.tracker.orchestrator.handler"
  package     = var.package
  timeout     = 60
  memory_size = 256
  environment = {
    SQS_QUEUE_URL             = module.queue.url
    DYNAMODB_TABLE_NAME       = aws_dynamodb_table.files.name
    EC2_TAG_KEY               = local.tag_key
    EC2_TAG_VALUE             = local.tag_value
    EC2_AMI_ID                = nonsensitive(data.aws_ssm_parameter.ami.value)
    EC2_INSTANCE_TYPE         = var.instance_type
    EC2_AUTOTERMINATE_MINUTES = tostring(var.autoterminate_minutes)
    EC2_SUBNET_ID             = var.subnet_ids[0]
    EC2_SECURITY_GROUP_ID     = var.worker_security_group_ids[0]
    S3_BUCKET_NAME            = module.bucket.name
    EC2_KEY_NAME              = var.key_name
    EC2_INSTANCE_PROFILE_NAME = aws_iam_instance_profile.worker.name
    WORKER_BUNDLE_KEY         = local.bundle_key
    LOG_LEVEL                 = "INFO"
  }
  policy_statements = [
    { Effect = "Allow", Action = ["sqs:GetQueueAttributes"], Resource = module.queue.arn },
    { Effect = "Allow", Action = ["ec2:DescribeInstances"], Resource = "*" },
    {
      Effect   = "Allow"
      Action   = ["ec2:RunInstances", "ec2:CreateTags"]
      Resource = "*"
    },
    { Effect = "Allow", Action = ["iam:PassRole"], Resource = aws_iam_role.worker.arn },
  ]
  tags = var.tags
}

resource "aws_cloudwatch_event_rule" "every_minute" {
  name                = "${var.name}-orchestrator-every-minute"
  description         = "Run the tracker orchestrator every minute"
  schedule_expression = "rate(1 minute)"
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "orchestrator" {
  rule      = aws_cloudwatch_event_rule.every_minute.name
  target_id = "orchestrator"
  arn       = module.orchestrator.arn
}

resource "aws_lambda_permission" "events" {
  statement_id  = "AllowEventBridge"
  action        = "lambda:InvokeFunction"
  function_name = module.orchestrator.name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.every_minute.arn
}

output "bucket" { value = module.bucket.name }
output "table" { value = aws_dynamodb_table.files.name }
output "stream_arn" { value = aws_dynamodb_table.files.stream_arn }
output "queue_url" { value = module.queue.url }
output "dlq_url" { value = module.queue.dlq_url }
output "orchestrator" { value = module.orchestrator.name }
output "pipe" { value = "${var.name}-pending" }
output "worker_tag" { value = { (local.tag_key) = local.tag_value } }
