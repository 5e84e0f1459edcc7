# Only what a real deployment needs. Every variable has a default that deploys the minimum
# stack; bucket_suffix must be set in a real account (S3 bucket names are global).

variable "region" {
  description = "AWS region of the whole stack."
  type        = string
  default     = "us-east-1"
}

variable "bucket_suffix" {
  description = "Appended to every bucket name, e.g. -123456789012 (S3 names are global: the seeds' names are taken)."
  type        = string
  default     = ""
  validation {
    condition     = can(regex("^[a-z0-9-]*$", var.bucket_suffix))
    error_message = "bucket_suffix may hold lower-case letters, digits and hyphens only."
  }
}

variable "alert_email" {
  description = "E-mail address subscribed to the ingest alerts topic; empty for none."
  type        = string
  default     = ""
}

variable "vpc_cidr" {
  type    = string
  default = "10.40.0.0/16"
}

variable "db_instance_class" {
  type    = string
  default = "db.t4g.micro"
}

variable "db_allocated_storage_gb" {
  type    = number
  default = 20
}

variable "db_multi_az" {
  type    = bool
  default = false
}

variable "mq_instance_type" {
  type    = string
  default = "mq.t3.micro"
}

variable "cache_node_type" {
  type    = string
  default = "cache.t4g.micro"
}

variable "broker_worker_count" {
  description = "Copies of the broker worker (ECS service desired_count)."
  type        = number
  default     = 2
}

variable "protect_data" {
  description = "Deletion protection on the database, no force-destroy of buckets and ECR repositories. Set false (and apply) before `terraform destroy`."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  type    = number
  default = 365
}
