# A Secrets Manager secret holding one JSON document (credentials plus endpoint), so code
# reads connection details from the secret whose ARN it is given, never from plain env vars.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "name" { type = string }
variable "description" {
  type    = string
  default = ""
}
variable "value" {
  description = "The secret's fields; stored as a JSON SecretString."
  type        = map(string)
  sensitive   = true
}
variable "recovery_window_in_days" {
  description = "0 deletes at once (local stacks, tests); AWS's default is 30."
  type        = number
  default     = 30
}
variable "tags" {
  type    = map(string)
  default = {}
}

resource "aws_secretsmanager_secret" "this" {
  name                    = var.name
  description             = var.description
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "this" {
  secret_id     = aws_secretsmanager_secret.this.id
  secret_string = jsonencode(var.value)
}

output "arn" { value = aws_secretsmanager_secret.this.arn }
output "name" { value = aws_secretsmanager_secret.this.name }
output "read_policy_statement" {
  description = "The one IAM statement a consumer needs to read this secret."
  value = {
    Effect   = "Allow"
    Action   = ["secretsmanager:GetSecretValue"]
    Resource = aws_secretsmanager_secret.this.arn
  }
}
