# The same flows for a real AWS account. The refiner runs from its ECR image (seed 003);
# set image_uri from the release tag the CI pipeline pushed.
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 5.100" }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}
variable "refiner_image_uri" {
  description = "e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/dibbs-ecr-refiner/lambda:v1.2.3"
  type        = string
}
variable "refiner_bucket_name" {
  type    = string
  default = "data-repository"
}

provider "aws" {
  region = var.region
}

resource "aws_ecr_repository" "refiner" {
  name                 = "dibbs-ecr-refiner/lambda"
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
}

module "refiner" {
  source      = "../../modules/refiner_flow"
  bucket_name = var.refiner_bucket_name
  image_uri   = var.refiner_image_uri
  tags        = { Project = "pipeline-harness", Environment = "aws" }
}

output "refiner" { value = module.refiner }
