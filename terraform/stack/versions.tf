# THE root: all five flows of the pipeline for a real AWS account. The harness applies this
# same directory, unchanged, to a local emulator (its endpoints and test credentials go into
# an override file it generates in its own run directory).
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}

provider "aws" {
  region = var.region
}
