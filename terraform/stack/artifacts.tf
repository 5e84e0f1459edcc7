# What the compute runs, built before `terraform plan` by `make package` (Lambda zips from
# pinned requirements, the EC2 worker bundle) and `make deploy` (container images):
# - Lambda packages are uploaded to an artifacts bucket and deployed from there (the way
#   packages beyond 50 MB must deploy); a rebuilt zip with the same inputs has the same hash,
#   so an unchanged build plans no change.
# - Images are pinned to a tag derived from the content of their inputs (modules/images).

locals {
  source_root = "${path.module}/../.."
  build_dir   = "${local.source_root}/build"
  # One package per group of functions that share code and dependencies.
  lambda_packages = toset(["refiner", "ingest", "broker", "tracker"])
  pipeline_code   = ["pipeline/__init__.py", "pipeline/common/__init__.py"]
  images = {
    batch_processor = {
      repository = "pipeline-batch/processor"
      dockerfile = "containers/batch-processor/Dockerfile"
      inputs = concat(
        ["containers/batch-processor/requirements.txt"],
        local.pipeline_code,
        sort(fileset(local.source_root, "pipeline/{common,batch}/*.py")),
      )
    }
    broker_worker = {
      repository = "broker/worker"
      dockerfile = "containers/broker-worker/Dockerfile"
      inputs = concat(
        ["containers/broker-worker/requirements.txt"],
        local.pipeline_code,
        sort(fileset(local.source_root, "pipeline/{common,broker}/*.py")),
      )
    }
  }
}

module "artifacts" {
  source        = "../modules/bucket"
  name          = "pipeline-artifacts${var.bucket_suffix}"
  force_destroy = !var.protect_data
  tags          = local.tags
}

resource "aws_s3_object" "lambda_package" {
  for_each    = local.lambda_packages
  bucket      = module.artifacts.name
  key         = "lambda/${each.key}.zip"
  source      = "${local.build_dir}/lambda/${each.key}.zip"
  source_hash = filemd5("${local.build_dir}/lambda/${each.key}.zip")
  tags        = local.tags
}

locals {
  packages = {
    for name, object in aws_s3_object.lambda_package : name => {
      s3_bucket         = object.bucket
      s3_key            = object.key
      s3_object_version = object.version_id
      source_code_hash  = filebase64sha256("${local.build_dir}/lambda/${name}.zip")
    }
  }
}

module "images" {
  source       = "../modules/images"
  images       = local.images
  source_root  = local.source_root
  force_delete = !var.protect_data
  tags         = local.tags
}
