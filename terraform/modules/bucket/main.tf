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
  # checkov:skip=CKV_AWS_18: server access logging needs a separate log bucket per region and its storage cost; CloudTrail S3 data events are the account-level audit option
  # checkov:skip=CKV_AWS_144: cross-region replication doubles storage and transfer cost; versioning covers accidental overwrites and deletes in-region
  # checkov:skip=CKV_AWS_145: encrypted at rest with SSE-S3 (AES-256); SSE-KMS adds per-request KMS charges and a customer-managed key is an account-level decision
  tags = var.tags
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

# Every bucket has a lifecycle configuration: at least the rule that aborts incomplete
# multipart uploads (their parts are billed but never visible), plus one expiry rule per
# prefix of expire_after_days. Still a count, so the address stays this[0].
resource "aws_s3_bucket_lifecycle_configuration" "this" {
  count  = 1
  bucket = aws_s3_bucket.this.id
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {
      prefix = "" # the whole bucket
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
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
}

output "name" { value = aws_s3_bucket.this.bucket }
output "arn" { value = aws_s3_bucket.this.arn }
