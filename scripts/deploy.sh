#!/usr/bin/env bash
# Deploy the whole stack (terraform/stack) to the AWS account of the current credentials,
# from an empty account up, in three steps:
#   1. the ECR repositories (an image cannot be pushed to a repository that does not exist),
#   2. build and push each image once (tags are immutable and derived from the image's inputs,
#      so an image whose tag exists is already the right one),
#   3. everything else.
# Needs: aws CLI v2, Docker, Terraform >= 1.5, the project's venv (make venv).
# Settings (environment): BUCKET_SUFFIX (default: -<account id>), ALERT_EMAIL, AWS_REGION.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=terraform/stack
PY=${PYTHON:-.venv/bin/python}
region=${AWS_REGION:-us-east-1}
account=$(aws sts get-caller-identity --query Account --output text)
suffix=${BUCKET_SUFFIX:--$account}
vars=(-var "region=$region" -var "bucket_suffix=$suffix")
if [ -n "${ALERT_EMAIL:-}" ]; then vars+=(-var "alert_email=$ALERT_EMAIL"); fi

"$PY" scripts/build_packages.py
terraform -chdir="$ROOT" init -input=false
terraform -chdir="$ROOT" apply -input=false "${vars[@]}" -target=module.images

aws ecr get-login-password --region "$region" |
  docker login --username AWS --password-stdin "$account.dkr.ecr.$region.amazonaws.com"
terraform -chdir="$ROOT" output -json images |
  "$PY" -c 'import json, sys
for b in json.load(sys.stdin).values():
    print(b["repository_url"], b["tag"], b["dockerfile"])' |
  while read -r url tag dockerfile; do
    repository=${url#*/}
    if aws ecr describe-images --region "$region" --repository-name "$repository" \
        --image-ids "imageTag=$tag" >/dev/null 2>&1; then
      echo "deploy: $repository:$tag is already pushed"
      continue
    fi
    docker build --platform linux/amd64 -f "$dockerfile" -t "$url:$tag" .
    docker push "$url:$tag"
  done

terraform -chdir="$ROOT" apply -input=false "${vars[@]}"
