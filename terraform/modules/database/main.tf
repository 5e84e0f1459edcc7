# RDS PostgreSQL for the ingest flow. The master password is managed by RDS in Secrets
# Manager (manage_master_user_password): it is never a Terraform variable and never in
# this configuration; clients read it from the secret whose ARN this module outputs.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "identifier" { type = string }
variable "db_name" { type = string }
variable "username" {
  type    = string
  default = "pipeline_admin"
}
variable "engine_version" {
  description = "A major version lets RDS pick its current minor (minor versions are retired yearly)."
  type        = string
  default     = "16"
}
variable "instance_class" {
  type    = string
  default = "db.t4g.micro"
}
variable "allocated_storage_gb" {
  type    = number
  default = 20
}
variable "multi_az" {
  type    = bool
  default = false
}
variable "backup_retention_days" {
  type    = number
  default = 7
}
variable "performance_insights" {
  description = "Performance Insights (not available on the db.t4g.micro minimum; needs db.t4g.medium or larger)."
  type        = bool
  default     = false
}
variable "deletion_protection" {
  type    = bool
  default = true
}
variable "subnet_ids" { type = list(string) }
variable "security_group_ids" { type = list(string) }
variable "tags" {
  type    = map(string)
  default = {}
}

resource "aws_db_subnet_group" "this" {
  name       = var.identifier
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_db_instance" "this" {
  identifier                          = var.identifier
  engine                              = "postgres"
  engine_version                      = var.engine_version
  instance_class                      = var.instance_class
  allocated_storage                   = var.allocated_storage_gb
  storage_type                        = "gp3"
  storage_encrypted                   = true
  db_name                             = var.db_name
  username                            = var.username
  manage_master_user_password         = true
  db_subnet_group_name                = aws_db_subnet_group.this.name
  vpc_security_group_ids              = var.security_group_ids
  publicly_accessible                 = false
  multi_az                            = var.multi_az
  backup_retention_period             = var.backup_retention_days
  copy_tags_to_snapshot               = true
  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  performance_insights_enabled        = var.performance_insights
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = !var.deletion_protection
  final_snapshot_identifier           = var.deletion_protection ? "${var.identifier}-final" : null
  # checkov:skip=CKV_AWS_157: Multi-AZ doubles the instance cost; it is the multi_az variable, off by default for the minimum deployment
  # checkov:skip=CKV_AWS_118: enhanced monitoring needs its own IAM role and costs per metric; CloudWatch's standard RDS metrics and Performance Insights are on
  # checkov:skip=CKV_AWS_353: Performance Insights does not run on the db.t4g.micro minimum; the performance_insights variable turns it on with a larger class
  # checkov:skip=CKV_AWS_354: Performance Insights uses the AWS-managed KMS key; a customer-managed key is an account-level decision
  # checkov:skip=CKV2_AWS_30: query logging (log_statement) is a parameter-group decision that depends on data sensitivity; postgresql logs are exported
  tags = var.tags
}

output "address" { value = aws_db_instance.this.address }
output "port" { value = aws_db_instance.this.port }
output "db_name" { value = aws_db_instance.this.db_name }
output "arn" { value = aws_db_instance.this.arn }
output "secret_arn" {
  description = "The RDS-managed secret holding the master username and password."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}
output "secret_read_statement" {
  description = "The one IAM statement a client needs to read the credentials."
  value = {
    Effect   = "Allow"
    Action   = ["secretsmanager:GetSecretValue"]
    Resource = aws_db_instance.this.master_user_secret[0].secret_arn
  }
}
