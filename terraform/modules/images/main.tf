# The stack's container images: one ECR repository each (tags immutable, scanned on push)
# and the tag every consumer uses, derived from the content of the image's inputs, so a
# changed input is a new tag and an unchanged one is the tag already pushed. `make deploy`
# creates these repositories first, builds and pushes each image, then applies the rest.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "images" {
  description = "name -> {repository, dockerfile, inputs}: the Dockerfile and the files the build reads (paths relative to source_root)."
  type = map(object({
    repository = string
    dockerfile = string
    inputs     = list(string)
  }))
}
variable "source_root" {
  description = "The directory the Dockerfiles are built from (the build context)."
  type        = string
}
variable "keep_images" {
  description = "Untagged and old images beyond this many are expired by the lifecycle policy."
  type        = number
  default     = 20
}
variable "force_delete" {
  type    = bool
  default = false
}
variable "tags" {
  type    = map(string)
  default = {}
}

locals {
  # One hash over every input's own hash, in a fixed order: the image's content address.
  digests = {
    for name, image in var.images : name => sha256(join("\n", [
      for f in sort(distinct(concat([image.dockerfile], image.inputs))) : "${f} ${filesha256("${var.source_root}/${f}")}"
    ]))
  }
}

resource "aws_ecr_repository" "this" {
  for_each             = var.images
  name                 = each.value.repository
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_delete
  image_scanning_configuration {
    scan_on_push = true
  }
  # checkov:skip=CKV_AWS_136: images are encrypted with the ECR service key (AES-256); a customer-managed KMS key is an account-level decision
  # The Dockerfile this repository's images are built from (read by `make deploy` and by any
  # tool that must rebuild or reproduce the image).
  tags = merge(var.tags, { Dockerfile = each.value.dockerfile })
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each   = aws_ecr_repository.this
  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the newest ${var.keep_images} images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.keep_images
      }
      action = { type = "expire" }
    }]
  })
}

output "uris" {
  description = "name -> repository_url:tag, the pinned image every consumer runs."
  value       = { for name, repo in aws_ecr_repository.this : name => "${repo.repository_url}:${substr(local.digests[name], 0, 16)}" }
}
output "repository_arns" {
  value = { for name, repo in aws_ecr_repository.this : name => repo.arn }
}
output "builds" {
  description = "What `make deploy` builds and pushes: name -> {repository_url, tag, dockerfile}."
  value = {
    for name, repo in aws_ecr_repository.this : name => {
      repository_url = repo.repository_url
      tag            = substr(local.digests[name], 0, 16)
      dockerfile     = var.images[name].dockerfile
    }
  }
}
