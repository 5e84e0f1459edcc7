# The five flows, one per seed, each with the names its seed gives it.

module "refiner" {
  source        = "../modules/refiner_flow"
  bucket_name   = "data-repository${var.bucket_suffix}"
  package       = local.packages["refiner"]
  force_destroy = !var.protect_data
  tags          = local.tags
}

module "batch" {
  source               = "../modules/batch_flow"
  bucket_name          = "pipeline-batch-data${var.bucket_suffix}"
  image                = module.images.uris["batch_processor"]
  image_repository_arn = module.images.repository_arns["batch_processor"]
  subnet_ids           = module.network.private_subnet_ids
  security_group_ids   = [aws_security_group.client["batch_task"].id]
  force_destroy        = !var.protect_data
  tags                 = local.tags
}

module "ingest" {
  source        = "../modules/ingest_flow"
  environment   = "prod"
  bucket_suffix = var.bucket_suffix
  alert_email   = var.alert_email
  package       = local.packages["ingest"]
  database = {
    host                  = module.database.address
    port                  = module.database.port
    name                  = module.database.db_name
    secret_arn            = module.database.secret_arn
    secret_read_statement = module.database.secret_read_statement
  }
  vpc = {
    subnet_ids         = module.network.private_subnet_ids
    security_group_ids = [aws_security_group.client["ingest_lambdas"].id]
  }
  force_destroy = !var.protect_data
  tags          = local.tags
}

module "broker" {
  source                      = "../modules/broker_flow"
  bucket_suffix               = var.bucket_suffix
  package                     = local.packages["broker"]
  worker_image                = module.images.uris["broker_worker"]
  worker_image_repository_arn = module.images.repository_arns["broker_worker"]
  worker_count                = var.broker_worker_count
  rabbitmq_secret_arn         = module.broker_mq.secret_arn
  rabbitmq_secret_statement   = module.broker_mq.secret_read_statement
  redis_url                   = module.cache.url
  redis_auth_secret_arn       = module.cache.auth_secret_arn
  redis_auth_secret_statement = module.cache.auth_secret_read_statement
  subnet_ids                  = module.network.private_subnet_ids
  producer_security_group_ids = [aws_security_group.client["producer"].id]
  worker_security_group_ids   = [aws_security_group.client["broker_worker"].id]
  efs_security_group_ids      = [aws_security_group.store["efs"].id]
  force_destroy               = !var.protect_data
  tags                        = local.tags
}

module "tracker" {
  source                    = "../modules/tracker_flow"
  bucket_name               = "tracker-data${var.bucket_suffix}"
  package                   = local.packages["tracker"]
  worker_bundle_path        = "${local.build_dir}/ec2/rag-worker.zip"
  subnet_ids                = module.network.private_subnet_ids
  worker_security_group_ids = [aws_security_group.client["tracker_worker"].id]
  force_destroy             = !var.protect_data
  tags                      = local.tags
}
