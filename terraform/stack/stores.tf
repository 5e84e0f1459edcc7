# The managed data stores the seeds name. Their credentials live in Secrets Manager only:
# RDS manages the database password itself; the broker password and the Redis AUTH token
# are drawn from GetRandomPassword at the first apply and kept in the secrets.

module "database" {
  source               = "../modules/database"
  identifier           = "data-pipeline"
  db_name              = "pipeline"
  instance_class       = var.db_instance_class
  allocated_storage_gb = var.db_allocated_storage_gb
  multi_az             = var.db_multi_az
  deletion_protection  = var.protect_data
  subnet_ids           = module.network.private_subnet_ids
  security_group_ids   = [aws_security_group.store["database"].id]
  tags                 = local.tags
}

module "broker_mq" {
  source             = "../modules/mq_broker"
  name               = "broker"
  instance_type      = var.mq_instance_type
  subnet_id          = module.network.private_subnet_ids[0]
  security_group_ids = [aws_security_group.store["mq"].id]
  tags               = local.tags
}

module "cache" {
  source             = "../modules/cache"
  name               = "broker-dedup"
  node_type          = var.cache_node_type
  subnet_ids         = module.network.private_subnet_ids
  security_group_ids = [aws_security_group.store["cache"].id]
  tags               = local.tags
}
